"""Source of chapters/02_attention.ipynb. Edit here, then:

    python scripts/chapters/ch02_attention.py && python scripts/run_notebooks.py chapters/02_attention.ipynb
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 2. Self-attention from scratch

**Why.** Chapter 1 ended with a wish. Counting contexts fails because every context is its own
row of a table, and almost every long context is new. We want a layer with a *fixed* set of
parameters that reads a context of any length and decides, from the content of the tokens
themselves, which earlier tokens matter for the current one. Attention is that layer: each
position asks a question (a *query*), every position it may see advertises what it holds (a
*key*) and what it will hand over (a *value*), and the answer is an average of the values,
weighted by how well each key matches the query.

Attention is older than the transformer. {cite:t}`graves2013generating` let a recurrent network
that writes handwriting slide a soft window along the text it is writing, and
{cite:t}`bahdanau2015neural` let a translation model look up the words of the source sentence
(their additive score appears below). Nor was the transformer the first network without
recurrence to rest on attention: the decomposable attention model of
{cite:t}`parikh2016decomposable` compares two sentences with attention and feed-forward layers
alone. What {cite:t}`vaswani2017attention` claim is narrower and exact: the Transformer is "the
first sequence transduction model based entirely on attention", the first to map one sequence to
another (a sentence to its translation) with no recurrence or convolution. Its other parts
(embeddings, MLPs, normalisation, residual connections) were standard before it.

By the end of this chapter you should be able to write attention from memory, say why each
piece is there, and trust that the readable version computes what PyTorch's fast kernel computes.
The chapter ends by training the smallest language model built on attention and putting it on
the book's loss ladder, where it is measured against chapter 1's counted models, and by showing
what such a model, alone, cannot do.
"""),
code(r"""
# errors shown on purpose print as "Type: message", without a traceback
%xmode Minimal
import inspect
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from gptlib import set_seed, show
from gptlib.attention import (
    MultiHeadAttention,
    fused_attention,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from gptlib.data import load_text
from gptlib.masking import causal_mask
from gptlib.tokenizer import CharTokenizer

plt.rcParams["figure.dpi"] = 90
torch.set_printoptions(precision=4)


def fmt(values):
    "Numbers rounded to 4 decimals, for printing."
    return "  ".join(f"{float(v):.4f}" for v in values)
"""),
md(r"""
## The idea: a soft dictionary look-up

A Python dictionary answers a query by finding the one key that *equals* it and returning that
key's value. Attention answers by comparing the query with *every* key, turning the similarities
into weights that are positive and sum to 1, and returning the weighted average of the values.
A key that matches well contributes most; nothing is required to match exactly.

For one query $q \in \mathbb{R}^{d}$ and $T_k$ key–value pairs $(k_j, v_j)$ with
$k_j \in \mathbb{R}^{d}$ and $v_j \in \mathbb{R}^{d_v}$:

$$
s_j = \frac{q \cdot k_j}{\sqrt{d}}, \qquad
a_j = \frac{e^{s_j}}{\sum_{j'=1}^{T_k} e^{s_{j'}}}, \qquad
o = \sum_{j=1}^{T_k} a_j \, v_j .
$$

The *score* $s_j$ measures how well key $j$ matches the query (a dot product, divided by
$\sqrt d$ for a reason we measure below); the softmax turns the $T_k$ scores into *attention
weights* $a_j \ge 0$ with $\sum_j a_j = 1$; the output $o \in \mathbb{R}^{d_v}$ is a convex
combination of the values. Stacking $T_q$ queries as the rows of a matrix
$Q \in \mathbb{R}^{T_q \times d}$, the keys as $K \in \mathbb{R}^{T_k \times d}$ and the values as
$V \in \mathbb{R}^{T_k \times d_v}$ gives the form of {cite:t}`vaswani2017attention` (their eq. 1):

$$
\mathrm{Attention}(Q, K, V) = \underbrace{\mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right)}_{A \,\in\, \mathbb{R}^{T_q \times T_k}} V \;\in\; \mathbb{R}^{T_q \times d_v},
$$

with the softmax taken along each row, so row $i$ of the weight matrix $A$ is query $i$'s
distribution over the keys.

**Self-attention** is the case where queries, keys and values all come from the same sequence.
A layer holds three learned matrices $W_Q, W_K \in \mathbb{R}^{C \times d}$ and
$W_V \in \mathbb{R}^{C \times d_v}$; for a sequence of $T$ token vectors
$X \in \mathbb{R}^{T \times C}$ (one row per token, $C$ numbers each, the model *width*),

$$
Q = X W_Q, \qquad K = X W_K, \qquad V = X W_V ,
$$

so every token produces its own query, key and value, and every token looks up every token.
The number of parameters ($C d + C d + C d_v$) does not depend on $T$: the same layer reads
a context of any length. That is what counting could not do.

### A look-up you can check by hand

Three tokens, $d = 2$. The query points along $(1, 1)$; the first key points the same way, the
second is perpendicular to it, the third points the opposite way:

$$
\begin{gathered}
q = (1, 1), \quad k_1 = (1, 1), \quad k_2 = (1, -1), \quad k_3 = (-1, -1), \\
v_1 = (1, 0), \quad v_2 = (0, 1), \quad v_3 = (1, 1).
\end{gathered}
$$

By hand: the dot products are $2, 0, -2$; divided by $\sqrt 2$ they are $\sqrt 2, 0, -\sqrt 2$;
$e^{\sqrt 2} \approx 4.1133$ and $e^{-\sqrt 2} \approx 0.2431$, whose sum with $e^0 = 1$ is
$5.3564$; so the weights are $4.1133/5.3564 \approx 0.7679$, $1/5.3564 \approx 0.1867$ and
$0.2431/5.3564 \approx 0.0454$, and the output is
$0.7679\,(1, 0) + 0.1867\,(0, 1)$ $+\; 0.0454\,(1, 1)$ $\approx (0.8133, 0.2321)$. The library
function wants 4-D tensors `(B, H, T, d)` (batch, heads, positions, width; both explained below),
so we add two leading dimensions of size 1:
"""),
code(r"""
q = torch.tensor([[1.0, 1.0]])  # (T_q, d) = (1, 2)
K = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])  # (T_k, d) = (3, 2)
V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (T_k, d_v) = (3, 2)


def look_up(q, K, V):
    # Attention of the (T_q, d) queries over (K, V), through the library
    # function (B = H = 1).
    out, w = scaled_dot_product_attention(
        q[None, None], K[None, None], V[None, None], return_weights=True
    )
    return out[0, 0], w[0, 0]


out, w = look_up(q, K, V)
print("weights:", fmt(w[0]), "  sum:", f"{w.sum().item():.4f}")
print("output: ", fmt(out[0]))

# the same numbers with nothing but the formula and math.exp
s = [
    (1 * 1 + 1 * 1) / math.sqrt(2),
    (1 * 1 + 1 * -1) / math.sqrt(2),
    (1 * -1 + 1 * -1) / math.sqrt(2),
]
e = [math.exp(x) for x in s]
hand_w = [x / sum(e) for x in e]
hand_out = [hand_w[0] * 1 + hand_w[2] * 1, hand_w[1] * 1 + hand_w[2] * 1]
assert all(abs(a - b) < 1e-6 for a, b in zip(w[0].tolist(), hand_w))
assert all(abs(a - b) < 1e-6 for a, b in zip(out[0].tolist(), hand_out))
assert [round(x, 4) for x in hand_w] == [0.7679, 0.1867, 0.0454]
"""),
md(r"""
The *length* of the query sets how decisive the look-up is. Multiply $q$ by a number $c$ and
every score is multiplied by $c$: with $c = 0$ all scores are equal and the output is the plain
average of the values; as $c$ grows the weight concentrates on the best-matching key and the
output approaches $v_1$ — the hard look-up of a Python dictionary, recovered as a limit.
"""),
code(r"""
for c in (0.0, 1.0, 3.0, 10.0):
    out_c, w_c = look_up(c * q, K, V)
    print(f"c = {c:4.1f}: weights {fmt(w_c[0])}   output {fmt(out_c[0])}")

assert torch.allclose(
    look_up(0 * q, K, V)[0], V.mean(0, keepdim=True)
)  # c = 0: average
assert torch.allclose(
    look_up(10 * q, K, V)[0], V[:1], atol=1e-5
)  # c large: v_1
"""),
md(r"""
### See it
"""),
code(r"""
fig, (ax1, ax2) = plt.subplots(
    1, 2, figsize=(9.5, 3.8), gridspec_kw={"width_ratios": [1, 1.3]}
)
for j, (kj, wj) in enumerate(zip(K, w[0])):
    ax1.annotate(
        "",
        xy=kj.tolist(),
        xytext=(0, 0),
        arrowprops=dict(arrowstyle="-|>", color="C0", lw=1 + 6 * float(wj)),
    )
    ax1.text(
        float(kj[0]) * 1.12,
        float(kj[1]) * 1.12 - 0.08,
        f"$k_{j + 1}$: {float(wj):.2f}",
        ha="center",
        color="C0",
    )
ax1.annotate(
    "",
    xy=(0.7, 0.7),
    xytext=(0, 0),
    arrowprops=dict(arrowstyle="-|>", color="C3", lw=2),
)
ax1.text(0.35, 0.6, "$q$", color="C3", fontsize=12)
ax1.set(
    xlim=(-1.6, 1.6),
    ylim=(-1.6, 1.6),
    aspect="equal",
    title="keys (width = attention weight)",
)
ax1.axhline(0, color="grey", lw=0.5)
ax1.axvline(0, color="grey", lw=0.5)

cs = [0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0]
weights_c = torch.stack([look_up(c * q, K, V)[1][0] for c in cs])
for j in range(3):
    ax2.plot(cs, weights_c[:, j], "o-", label=f"weight on $k_{j + 1}$")
ax2.set(
    xlabel="query length multiplier c",
    ylabel="attention weight",
    title="From an average (c = 0) to a look-up (c large)",
)
ax2.legend()
plt.tight_layout()
plt.show()
"""),
md(r"""
### Masked self-attention, as GPT uses it

A GPT is trained to predict token $t+1$ from tokens $1, \dots, t$ at every position at once
(chapter 1). If position $t$ could attend to position $t+1$, it could read the answer. So GPT's
self-attention is *masked* (or *causal*): before the softmax, the scores of the keys $j > i$ are
set to $-\infty$, which gives them weight exactly $0$ while the allowed weights still sum to 1.
The mask is a boolean $T \times T$ matrix, `True` where query $i$ may attend to key $j$, i.e. on
and below the diagonal:
"""),
code(r"""
print(causal_mask(5).int())
"""),
md(r"""
Chapter 3 is about masks (why before the softmax, padding, what goes wrong otherwise); in this
chapter we simply use the causal mask wherever GPT would.

## The code

Here is the library's attention, the version every later chapter uses. It is the formula
above, one line per step: scores, scale, (optional additive bias), mask, softmax, weighted sum.
The tensors carry two leading dimensions, batch `B` and heads `H`, which the matrix products
treat as independent copies; `@` multiplies the last two dimensions.
"""),
code(r"""
show(scaled_dot_product_attention)
"""),
md(r"""
**Prove it.** On random inputs with a causal mask, the weights are non-negative, every row sums
to 1, masked keys get exactly zero weight, and the output equals PyTorch's fused
`torch.nn.functional.scaled_dot_product_attention` (the library's `fused_attention` calls it).
In float64 the two agree to at least 12 significant digits:
"""),
code(r"""
g = torch.Generator().manual_seed(0)
B, H, T, d = 2, 3, 7, 8
q, k, v = (
    torch.randn(B, H, T, d, generator=g, dtype=torch.float64) for _ in range(3)
)
mask = causal_mask(T)
out, weights = scaled_dot_product_attention(q, k, v, mask, return_weights=True)

print("weights shape (B, H, T_q, T_k):", tuple(weights.shape))
print("all weights >= 0:         ", bool((weights >= 0).all()))
print(
    "every row sums to 1:      ",
    torch.allclose(weights.sum(-1), torch.ones(B, H, T, dtype=torch.float64)),
)
print("masked weights exactly 0: ", bool((weights[..., ~mask] == 0).all()))
print(
    "equals torch's SDPA:      ",
    torch.allclose(
        out,
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
        rtol=1e-12,
        atol=1e-12,
    ),
)
print(
    "equals fused_attention:   ",
    torch.allclose(
        out, fused_attention(q, k, v, is_causal=True), rtol=1e-12, atol=1e-12
    ),
)
assert (weights >= 0).all() and torch.allclose(
    weights.sum(-1), torch.ones(B, H, T, dtype=torch.float64)
)
assert (weights[..., ~mask] == 0).all()
assert torch.allclose(
    out,
    F.scaled_dot_product_attention(q, k, v, is_causal=True),
    rtol=1e-12,
    atol=1e-12,
)
"""),
md(r"""
## Why divide by $\sqrt{d}$

Suppose the $d$ components of a query are independent with mean 0 and variance $\sigma_q^2$,
those of a key likewise with variance $\sigma_k^2$, and query and key are independent. Each
product $q_i k_i$ then has mean 0 and variance
$\mathbb{E}[q_i^2]\,\mathbb{E}[k_i^2] = \sigma_q^2 \sigma_k^2$, and the $d$ products are
uncorrelated, so

$$
\operatorname{Var}(q \cdot k) = \sum_{i=1}^{d} \operatorname{Var}(q_i k_i)
= d\,\sigma_q^2 \sigma_k^2,
\qquad
\operatorname{Var}\!\left(\frac{q \cdot k}{\sqrt d}\right) = \sigma_q^2 \sigma_k^2 .
$$

The point is the factor $d$: whatever the size of the coordinates, the raw scores' variance grows
linearly with the head width, and dividing by $\sqrt d$ removes exactly that growth
{cite:p}`vaswani2017attention`. The scale that is left, $\sigma_q^2\sigma_k^2$, is not 1 in
general; it is whatever the projections make it, and training changes it. Let us measure the
scaling for widths $d = 2, 4, \dots, 1024$ (GPT-2's heads have $d = 64$, GPT-3 175B's
$d = 128$), with 4,000 random pairs each, at two coordinate scales: $\sigma_q = \sigma_k = 1$,
and $\sigma_q = 0.3$, $\sigma_k = 2$:
"""),
code(r"""
g = torch.Generator().manual_seed(1)
ds = [2**i for i in range(1, 11)]
sigmas = {"unit": (1.0, 1.0), "other": (0.3, 2.0)}  # (sigma_q, sigma_k)
var_raw = {name: [] for name in sigmas}
var_scaled = {name: [] for name in sigmas}
for name, (sq, sk) in sigmas.items():
    print(
        f"sigma_q = {sq}, sigma_k = {sk}:"
        f" sigma_q^2 sigma_k^2 = {(sq * sk) ** 2:.2f}"
    )
    for d in ds:
        q = sq * torch.randn(4000, d, generator=g, dtype=torch.float64)
        k = sk * torch.randn(4000, d, generator=g, dtype=torch.float64)
        s = (q * k).sum(-1)  # 4000 raw scores q . k
        var_raw[name].append(s.var().item())
        var_scaled[name].append((s / math.sqrt(d)).var().item())
        if d in (2, 64, 1024):
            print(
                f"  d = {d:4d}: Var(q.k) = {var_raw[name][-1]:8.2f}"
                f"   Var(q.k) / d"
                f" = {var_raw[name][-1] / d:.2f}   Var(q.k / sqrt(d)) ="
                f" {var_scaled[name][-1]:.2f}"
            )
"""),
code(r"""
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, colour in (("unit", "C0"), ("other", "C1")):
    sq, sk = sigmas[name]
    tag = rf"$\sigma_q = {sq}, \sigma_k = {sk}$"
    ax.loglog(ds, var_raw[name], "o-", color=colour, label="raw, " + tag)
    ax.loglog(
        ds, var_scaled[name], "s--", color=colour, label="scaled, " + tag
    )
ax.loglog(ds, ds, "k:", label="Var = d")
ax.set_xscale("log", base=2)
ax.set(
    xlabel="width d",
    ylabel="variance of the scores",
    title="Raw scores grow with d; scaled ones do not",
)
ax.legend()
plt.show()
"""),
md(r"""
**Prove it.** At both coordinate scales the raw variance grows linearly in $d$ (a straight line
of slope 1 on the log–log plot), and the scaled variance stays at $\sigma_q^2\sigma_k^2$ —
1 in the first case, $0.36$ in the second — whatever $d$ is:
"""),
code(r"""
def loglog_slope(xs, ys):
    a = torch.tensor([[math.log(x), 1.0] for x in xs], dtype=torch.float64)
    b = torch.tensor([[math.log(y)] for y in ys], dtype=torch.float64)
    return torch.linalg.lstsq(a, b).solution[0, 0].item()


for name, (sq, sk) in sigmas.items():
    slope = loglog_slope(ds, var_raw[name])
    scale = (sq * sk) ** 2
    print(
        f"sigma_q = {sq}, sigma_k = {sk}: log-log slope of Var(q.k) {slope:.2f}"
    )
    assert 0.95 < slope < 1.05
    assert all(0.9 < v / (d * scale) < 1.1 for v, d in zip(var_raw[name], ds))
    assert all(0.9 < v / scale < 1.1 for v in var_scaled[name])
"""),
md(r"""
What does a freshly initialised GPT produce? Not unit variance. GPT-2's initialisation draws
every weight from a normal distribution of standard deviation 0.02 (`gptlib.model`), token
embeddings included, so a query coordinate is a sum of $C$ products of two such small numbers.
Here is the attention layer of the model we train at the end of this chapter (width $C = 48$,
four heads of $d = 12$), fresh, on a window of real text:
"""),
code(r"""
from gptlib.ladder import build_model

tok = CharTokenizer.train(
    load_text("train") + load_text("val") + load_text("test")
)
window = torch.tensor([tok.encode(load_text("val")[:64])])  # (1, 64) ids
set_seed(0)
fresh = build_model("attn-4heads", tok.vocab_size)
with torch.no_grad():
    h0 = fresh.wte(window)  # (1, 64, 48) token embeddings
    layer0 = fresh.h[0].attn
    q0, k0, _ = (
        split_heads(t, layer0.n_heads)
        for t in layer0.c_attn(h0).split(layer0.n_embd, dim=2)
    )
fresh_scores = q0 @ k0.transpose(-2, -1) / math.sqrt(layer0.head_dim)
print(
    f"fresh GPT layer: head width d = {layer0.head_dim}; std of a query"
    f" coordinate {q0.std():.1e}, of a key coordinate {k0.std():.1e}"
)
print(f"std of the scaled scores q.k / sqrt(d): {fresh_scores.std():.1e}")
assert q0.std() < 0.01 and k0.std() < 0.01 and fresh_scores.std() < 1e-4
"""),
md(r"""
So at initialisation a GPT's scaled scores are tiny and its softmax is almost exactly uniform;
the $1/\sqrt d$ is not what keeps it there (the small weights are). The scale matters for what
the argument above is about: as $d$ changes, the same coordinates give scores whose spread
changes by $\sqrt d$ unless we divide by it. The experiment that follows uses coordinates of
variance 1, where the softmax is neither flat nor saturated, to show what the spread does.
"""),
md(r"""
Why does the spread matter? The softmax only cares about *differences* between scores, and
$e^{\Delta}$ grows fast: when the scores spread by $\sqrt{d} \approx 32$ (for $d = 1024$), the
largest is typically many units above the next, and the softmax puts nearly all the weight on it.
The attention *saturates* into a hard look-up before anything has been learned. Worse, a
saturated softmax passes almost no gradient. The derivative of the weights $a = \mathrm{softmax}(s)$
with respect to the scores is the $T_k \times T_k$ Jacobian

$$
\frac{\partial a_i}{\partial s_j} = a_i(\delta_{ij} - a_j), \qquad
J = \mathrm{diag}(a) - a a^\top ,
$$

which is the zero matrix when $a$ is one-hot (one $a_i = 1$, the rest 0). Every gradient that
reaches the queries and keys passes through $J$, so a saturated layer stops learning where to
look. First, a check that the formula for $J$ is what autograd computes:
"""),
code(r"""
s_row = torch.randn(
    6, generator=torch.Generator().manual_seed(2), dtype=torch.float64
)
a_row = torch.softmax(s_row, -1)
J_formula = torch.diag(a_row) - torch.outer(a_row, a_row)
J_autograd = torch.autograd.functional.jacobian(
    lambda s: torch.softmax(s, -1), s_row
)
print(
    "J = diag(a) - a a^T matches autograd:",
    torch.allclose(J_formula, J_autograd),
)
assert torch.allclose(J_formula, J_autograd)
"""),
md(r"""
Now the experiment: 500 random queries, each attending over $T_k = 64$ random keys, for each
width $d$, once with raw scores and once with scaled ones. We record the largest weight of each
row (1 = a hard look-up), the row's entropy $-\sum_j a_j \ln a_j$ ($\ln 64 \approx 4.16$ for a
uniform row, 0 for a one-hot row), and the size of its Jacobian, $\lVert J \rVert_F$. We report
medians over the 500 rows.
"""),
code(r"""
g = torch.Generator().manual_seed(3)
T_k = 64
stats = {
    "raw": [],
    "scaled": [],
}  # per d: (median max weight, median entropy, median |J|_F)
for d in ds:
    q = torch.randn(500, 1, d, generator=g, dtype=torch.float64)
    k = torch.randn(500, T_k, d, generator=g, dtype=torch.float64)
    raw = (q @ k.transpose(-2, -1))[:, 0]  # (500, T_k) scores
    for name, scores in (("raw", raw), ("scaled", raw / math.sqrt(d))):
        a = torch.softmax(scores, dim=-1)
        entropy = -(a * torch.log(a.clamp_min(1e-300))).sum(-1)
        J = (
            torch.diag_embed(a) - a[:, :, None] * a[:, None, :]
        )  # (500, T_k, T_k)
        stats[name].append(
            (
                a.max(-1).values.median().item(),
                entropy.median().item(),
                J.flatten(1).norm(dim=-1).median().item(),
            )
        )
for name in stats:
    print(name)
    for d, (top, ent, jn) in zip(ds, stats[name]):
        print(
            f"  d = {d:4d}: max weight {top:.3f}   entropy {ent:.3f}   |J|_F"
            f" {jn:.4f}"
        )
"""),
code(r"""
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
titles = [
    "median largest weight",
    "median entropy (nats)",
    r"median $\|J\|_F$ (gradient size)",
]
for i, (ax, title) in enumerate(zip(axes, titles)):
    for name, marker in (("raw", "o-"), ("scaled", "s-")):
        ax.plot(ds, [row[i] for row in stats[name]], marker, label=name)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="width d", title=title)
axes[1].axhline(math.log(T_k), color="k", ls=":", label="uniform: ln 64")
axes[2].set_yscale("log")
axes[1].legend()
fig.suptitle(
    "Without the 1/sqrt(d) scale the softmax saturates and its gradient"
    " vanishes as d grows"
)
plt.tight_layout()
plt.show()
"""),
md(r"""
**Prove it.** Without scaling, the typical row moves steadily towards one-hot as $d$ grows —
largest weight up, entropy down at every step — and its gradient collapses by orders of
magnitude. With scaling, all three barely move over a 512-fold range of $d$ (what change there
is happens at small $d$, where the spread of one query's scores, $\lVert q \rVert / \sqrt d$,
itself varies from query to query):
"""),
code(r"""
top_raw, ent_raw, j_raw = zip(*stats["raw"])
top_sc, ent_sc, j_sc = zip(*stats["scaled"])
assert all(
    a < b for a, b in zip(top_raw, top_raw[1:])
)  # raw: sharper at every d
assert all(a > b for a, b in zip(ent_raw, ent_raw[1:]))
assert top_raw[-1] > 0.99 and ent_raw[-1] < 0.05  # d = 1024: a hard look-up
assert j_raw[-1] < j_sc[-1] / 100  # ... with a vanishing gradient
assert (
    max(top_sc) < 0.1 and max(ent_sc) - min(ent_sc) < 0.2
)  # scaled: nearly unchanged
assert max(j_sc) - min(j_sc) < 0.03
assert j_raw[0] > j_sc[0]  # d = 2: the raw scores' gradient is the larger
print(f"d = 1024, median |J|_F: raw {j_raw[-1]:.1e}, scaled {j_sc[-1]:.3f}")
"""),
md(r"""
(At $d = 2$ the raw gradient is *larger* than the scaled one — the assert above checks it: a
spread of 1 is not where $\lVert J \rVert_F$ is largest. What the scale buys is that the
starting point no longer depends on $d$; how sharp the look-ups should be is left to training,
and the model trained at the end of this chapter shows that training does sharpen them.) The division by $\sqrt d$ is also what the explorer below
lets you undo: a *temperature* $\tau$ divides the scores once more, $\mathrm{softmax}(s/\tau)$,
and $\tau \to 0$ is the saturated limit.

## Multi-head attention

One attention computation gives each query *one* distribution over the keys, hence one
weighted average: one thing looked up. But a token typically needs several things at once —
the previous word, the subject of the sentence, the name of the speaker. *Multi-head*
attention {cite:p}`vaswani2017attention` runs $H$ attentions side by side, each in its own
$d = C/H$-dimensional slice, and mixes their results:

$$
\begin{gathered}
\mathrm{head}_h = \mathrm{Attention}\big(X W_Q^{(h)},\; X W_K^{(h)},\; X W_V^{(h)}\big) \in \mathbb{R}^{T \times d},
\\ W_Q^{(h)}, W_K^{(h)}, W_V^{(h)} \in \mathbb{R}^{C \times d},
\end{gathered}
$$

$$
\mathrm{MultiHead}(X) = \big[\mathrm{head}_1, \dots, \mathrm{head}_H\big]\, W_O \in \mathbb{R}^{T \times C},
\qquad W_O \in \mathbb{R}^{C \times C},
$$

where $[\cdot]$ concatenates the $H$ outputs side by side into $T \times C$. GPT-2 stores all
$3H$ projection matrices side by side in one linear layer `c_attn` ($C \to 3C$, with a bias) and
$W_O$ as `c_proj` ($C \to C$). Because the heads split the width rather than multiply it,
splitting costs nothing: the parameters are $4C^2 + 4C$ for any $H$, and the score computation
is $H \cdot T^2 \cdot d = T^2 C$ multiply–adds for any $H$. What each head gives up is room: it
compares queries and keys in $d = C/H$ dimensions instead of $C$.
"""),
code(r"""
C = 32
for H in (1, 2, 4, 8):
    n = sum(p.numel() for p in MultiHeadAttention(C, H).parameters())
    print(
        f"C = {C}, H = {H}: head width d = {C // H:2d}, parameters {n} (4C^2 +"
        f" 4C = {4 * C * C + 4 * C})"
    )
    assert n == 4 * C * C + 4 * C
"""),
md(r"""
The width must split evenly. A layer that cannot do so refuses to be built, and says what to do:
"""),
code(r"""
MultiHeadAttention(30, 4)
""", "raises-exception"),
md(r"""
### The code

The two reshapes that make heads are `split_heads`, which cuts the $C$ channels of each token
into $H$ consecutive groups of $d$ and moves the head dimension forward, and `merge_heads`, its
inverse:
"""),
code(r"""
show(split_heads)
"""),
code(r"""
show(merge_heads)
"""),
md(r"""
The layer itself. (The `mask`, `bias`, `rope` and `kv_cache` arguments belong to chapters 3, 5
and 7; here only `x` and `causal` matter, and `dropout`, explained below it.)
"""),
code(r"""
show(MultiHeadAttention)
"""),
md(r"""
### Dropout on the weights, in training only

The layer has one more argument, `dropout`, a probability $p$ (Hugging Face's
`GPT2Config` calls it `attn_pdrop`, 0.1 by default). While the model trains,
`scaled_dot_product_attention` sets each attention weight $a_{ij}$ to zero with probability
$p$, independently, and divides the survivors by $1 - p$ (*inverted* dropout,
{cite:p}`srivastava2014dropout`), so that every weight keeps its expected value. A query then
averages over a random subset of the keys it may see, and its row of weights no longer sums to
exactly 1 (it does on average). The intent, as with dropout anywhere, is a regulariser: the
network should not come to rely on any single look-up. The layer's output gets the same
treatment (`resid_dropout`). Both are off in evaluation: `forward` passes $p$ only while
`self.training` is true, and `model.eval()` sets it false, so evaluation and generation are
deterministic. (The weights that `return_weights=True` returns are those before dropout. To
see the dropped ones, give every key a one-hot value: then the output *is* the row of weights
that was used.) The models of this chapter and of the loss ladder train with $p = 0$.
"""),
code(r"""
from transformers import GPT2Config

print("GPT2Config().attn_pdrop:", GPT2Config().attn_pdrop)
g = torch.Generator().manual_seed(6)
T_p = 200
q_p, k_p = (
    torch.randn(1, 1, T_p, 8, generator=g, dtype=torch.float64)
    for _ in range(2)
)
eye = torch.eye(T_p, dtype=torch.float64)[None, None]  # one-hot values
mask_p = causal_mask(T_p)
kept = scaled_dot_product_attention(
    q_p, k_p, eye, mask_p, dropout_p=0.1, generator=g
)  # (1, 1, T, T): the weights after dropout
_, a_p = scaled_dot_product_attention(
    q_p, k_p, eye, mask_p, return_weights=True
)  # before dropout
allowed = mask_p.expand_as(a_p)
dropped = (kept == 0) & allowed
print(
    f"share of allowed weights dropped: {dropped[allowed].double().mean():.3f}"
)
survivors = torch.allclose(
    kept[~dropped & allowed], a_p[~dropped & allowed] / 0.9
)
print("survivors are a / (1 - p):", survivors)
row_sums = kept.sum(-1)[0, 0, 10:]  # queries that see at least 11 keys
print(
    f"row sums: from {row_sums.min():.3f} to {row_sums.max():.3f},"
    f" mean {row_sums.mean():.3f}"
)
assert 0.08 < dropped[allowed].double().mean() < 0.12 and survivors
assert (
    abs(row_sums.mean() - 1) < 0.05 and row_sums.max() - row_sums.min() > 0.1
)

layer_p = MultiHeadAttention(8, 2, dropout=0.1)
x_p = torch.randn(1, 5, 8, generator=g)
layer_p.train()
train_differs = not torch.equal(
    layer_p(x_p, causal=True), layer_p(x_p, causal=True)
)
layer_p.eval()
eval_same = torch.equal(layer_p(x_p, causal=True), layer_p(x_p, causal=True))
print("training mode, two calls differ:", train_differs)
print("eval mode, two calls equal:     ", eval_same)
assert train_differs and eval_same
"""),
md(r"""
### Shapes, traced through a real input

We run the layer on real text: two windows of 36 characters from the validation plays, each
character turned into a $C = 32$-dimensional vector by a random (seeded) embedding table —
chapter 6 learns this table; any vectors will do to follow the shapes. The layer has $H = 4$
heads of width $d = 8$ and is *untrained*: its weights are PyTorch's random initialisation.
"""),
code(r"""
val_text = load_text("val")
tok = CharTokenizer.train(load_text("train") + val_text + load_text("test"))
lines = val_text.splitlines()
windows = [lines[1][:36], lines[2][:36]]
print(windows)
ids = torch.tensor([tok.encode(w) for w in windows])  # (B, T) token ids
embedding = torch.randn(
    tok.vocab_size, 32, generator=torch.Generator().manual_seed(4)
)
x = embedding[ids]  # (B, T, C)
set_seed(4)
mha = MultiHeadAttention(n_embd=32, n_heads=4).eval()
B, T, C = x.shape
H, d = mha.n_heads, mha.head_dim
print(
    f"ids {tuple(ids.shape)} -> x {tuple(x.shape)}: B = {B}, T = {T}, C = {C};"
    f" H = {H}, d = {d}"
)
"""),
code(r"""
qkv = mha.c_attn(x)  # one matrix product makes q, k and v
print("c_attn(x):", tuple(qkv.shape), "= (B, T, 3C)")
q, k, v = qkv.split(C, dim=2)
print("q, k, v:  ", tuple(q.shape), "each = (B, T, C)")
"""),
code(r"""
qh, kh, vh = (split_heads(t, H) for t in (q, k, v))
print("split_heads:", tuple(qh.shape), "= (B, H, T, d)")
# head 2 of token 5 is channels 2*d .. 3*d - 1 of that token's query: a view,
# no copying
print(
    "qh[0, 2, 5] is q[0, 5, 16:24]:", torch.equal(qh[0, 2, 5], q[0, 5, 16:24])
)
assert torch.equal(qh[0, 2, 5], q[0, 5, 16:24])
"""),
code(r"""
scores = (
    qh @ kh.transpose(-2, -1) / math.sqrt(d)
)  # every head compares all pairs
print("scores:  ", tuple(scores.shape), "= (B, H, T, T)")
scores = scores.masked_fill(~causal_mask(T), float("-inf"))  # no looking ahead
weights = torch.softmax(scores, dim=-1)
print(
    "weights: ",
    tuple(weights.shape),
    "= (B, H, T, T); each row sums to 1:",
    torch.allclose(weights.sum(-1), torch.ones(B, H, T)),
)
"""),
code(r"""
yh = weights @ vh
print("weights @ v: ", tuple(yh.shape), "= (B, H, T, d)")
y = merge_heads(yh)
print("merge_heads: ", tuple(y.shape), "= (B, T, C)")
out = mha.c_proj(y)
print("c_proj:      ", tuple(out.shape), "= (B, T, C), the layer's output")
"""),
md(r"""
**Prove it.** The cell-by-cell computation is exactly what the layer does on its explicit path;
the layer's fused path (PyTorch's kernel) gives the same output; and so does PyTorch's own
`torch.nn.MultiheadAttention` given the same weights. Its `in_proj_weight` stacks $W_Q, W_K, W_V$
in the same order as `c_attn`, and its boolean `attn_mask` means the opposite of ours (`True` =
*not* allowed). In float32 "the same" means equal to within $10^{-5}$ (rounding differs
between the paths):
"""),
code(r"""
with torch.no_grad():
    y_explicit, w_explicit = mha(x, causal=True, return_weights=True)
    mha.fused = True
    y_fused = mha(x, causal=True)
    mha.fused = False

    torch_mha = nn.MultiheadAttention(C, H, batch_first=True).eval()
    torch_mha.in_proj_weight.copy_(mha.c_attn.weight)
    torch_mha.in_proj_bias.copy_(mha.c_attn.bias)
    torch_mha.out_proj.weight.copy_(mha.c_proj.weight)
    torch_mha.out_proj.bias.copy_(mha.c_proj.bias)
    y_torch, w_torch = torch_mha(
        x, x, x, attn_mask=~causal_mask(T), average_attn_weights=False
    )

checks = {
    "traced cells == layer (explicit path)": torch.allclose(
        out, y_explicit, atol=1e-6
    ),
    "traced weights == layer's weights": torch.allclose(
        weights, w_explicit, atol=1e-6
    ),
    "explicit path == fused path": torch.allclose(
        y_explicit, y_fused, atol=1e-5
    ),
    "layer == torch.nn.MultiheadAttention": torch.allclose(
        y_explicit, y_torch, atol=1e-5
    ),
    "weights == torch's per-head weights": torch.allclose(
        w_explicit, w_torch, atol=1e-6
    ),
}
for name, ok in checks.items():
    print(f"{name:40s} {ok}")
assert all(checks.values())
"""),
md(r"""
### See it: heads on real text

What can separate heads do that one cannot? To see it plainly we *set* the weights of a small
layer by hand ($C = 8$, $H = 2$, $d = 4$) instead of learning them. Each character becomes a
vector of hand-made features: channel 0 is 1 for a space or newline, channel 1 is 1 for a
capital letter, channel 4 is always 1. Head 0's key reads channel 0 and head 1's key reads
channel 1; both heads' queries read the constant channel with weight $\beta = 16$. So head 0's
score for key $j$ is $\beta/\sqrt d = 8$ if $j$ is a space and 0 otherwise: every query looks for
the spaces before it. Head 1 looks for capitals. Each head's value copies channels 0–3.
"""),
code(r"""
def features(text):
    # (T,) characters -> (1, T, 8) hand-made features: 0 = space/newline,
    # 1 = capital, 4 = constant 1.
    f = torch.zeros(1, len(text), 8)
    for t, ch in enumerate(text):
        f[0, t, 0] = float(ch in " \n")
        f[0, t, 1] = float(ch.isupper())
        f[0, t, 4] = 1.0
    return f


beta = 16.0
hand = MultiHeadAttention(n_embd=8, n_heads=2).eval()
with torch.no_grad():
    Wq, Wk, Wv = (
        torch.zeros(8, 8),
        torch.zeros(8, 8),
        torch.zeros(8, 8),
    )  # (out, in) like nn.Linear
    Wq[0, 4] = Wq[4, 4] = (
        beta  # head 0 (rows 0-3) and head 1 (rows 4-7): query = beta * constant
    )
    Wk[0, 0] = 1.0  # head 0's key: "is a space"
    Wk[4, 1] = 1.0  # head 1's key: "is a capital"
    Wv[0:4, 0:4] = Wv[4:8, 0:4] = torch.eye(
        4
    )  # both heads' values: channels 0-3
    hand.c_attn.weight.copy_(torch.cat([Wq, Wk, Wv]))
    hand.c_attn.bias.zero_()
    hand.c_proj.weight.copy_(torch.eye(8))
    hand.c_proj.bias.zero_()

snippet = windows[0]
with torch.no_grad():
    _, hand_w = hand(
        features(snippet), causal=True, return_weights=True
    )  # (1, 2, T, T)
    _, rand_w = mha(x[:1], causal=True, return_weights=True)  # (1, 4, T, T)
print(repr(snippet), "->", tuple(hand_w.shape), tuple(rand_w.shape))
"""),
code(r"""
T_show = 24  # the figure shows the first 24 characters
labels = ["␣" if ch == " " else ch for ch in snippet[:T_show]]
panels = [
    ("hand-set head 0: spaces", hand_w[0, 0]),
    ("hand-set head 1: capitals", hand_w[0, 1]),
]
panels += [(f"untrained head {h}", rand_w[0, h]) for h in range(4)]


def heatmap(ax, wt, title):
    # one (T_show, T_show) block of weights, characters as ticks
    im = ax.imshow(wt[:T_show, :T_show], cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(T_show), labels, fontsize=8)
    ax.set_yticks(range(T_show), labels, fontsize=8)
    ax.set_title(title, fontsize=10)
    return im


fig, axes = plt.subplots(3, 2, figsize=(7.5, 11), layout="constrained")
for ax, (title, wt) in zip(axes.flat, panels):
    im = heatmap(ax, wt, title)
for ax in axes[:, 0]:
    ax.set_ylabel("query (attending from)", fontsize=9)
for ax in axes[-1]:
    ax.set_xlabel("key (attended to)", fontsize=9)
fig.colorbar(im, ax=axes, shrink=0.5, label="attention weight")
fig.suptitle(
    f"Attention weights on {snippet[:T_show]!r}\n(causal: nothing above the"
    " diagonal)",
    fontsize=10,
)
plt.show()
"""),
md(r"""
The two hand-set heads do two different look-ups at the same time: every query of head 0 puts
its weight on the spaces it can see (vertical stripes), every query of head 1 on the capitals
(`P`, `S`). A head that finds nothing to look for — the first eight queries of head 0, which
see no space yet — spreads its weight evenly over what it can see: the weights must sum to 1,
so a softmax cannot say "nothing here". (The figure shows the first 24 of the 36 characters:
in a causal layer the weights of those queries do not depend on the characters after them, so
this block is exactly what the layer computes on the 24-character prefix. The cell below checks
it.)

The four *untrained* heads show no linguistic pattern, and should not be read as if they did:
their weights come from random projections of random embeddings. What they do show is what
attention looks like at initialisation: the scores are small, so every row stays near the
uniform average of what the query can see (weight $\approx 1/(t+1)$ on each of the $t+1$
visible keys, the fading triangle). Training makes the scores larger; the model trained at the
end of this chapter measures by how much. One pattern is structural: the layer sees tokens, not positions, so two occurrences of the same
character have the same key, and every query gives them exactly the same weight. (Chapter 5
adds positions.)

**Prove it.** (1) Each hand-set head puts almost all of its weight on its own kind of key,
wherever one is visible. (2) One head looking for both kinds (the sum of the two keys) must
share a single distribution between them: at queries that can see both kinds it never puts
more than 90% of its weight on the spaces. (3) The untrained heads' scaled scores are small,
and no weight is more than 4 times the uniform $1/(t+1)$. (4) In every untrained head, a query
gives two equal characters equal weight. (5) The figure's block is the layer's output on the
prefix.
"""),
code(r"""
is_space = features(snippet)[0, :, 0].bool()
is_cap = features(snippet)[0, :, 1].bool()
sees_space = (causal_mask(T) & is_space).any(
    -1
)  # (T,) query t can see a space
sees_cap = (causal_mask(T) & is_cap).any(-1)
mass_space = hand_w[0, 0][:, is_space].sum(-1)  # head 0's weight on spaces
mass_cap = hand_w[0, 1][:, is_cap].sum(-1)  # head 1's weight on capitals
print(
    "head 0, weight on spaces (queries that can see one):   min"
    f" {mass_space[sees_space].min():.4f}"
)
print(
    "head 1, weight on capitals (queries that can see one): min"
    f" {mass_cap[sees_cap].min():.4f}"
)
assert mass_space[sees_space].min() > 0.98 and mass_cap[sees_cap].min() > 0.98

# (2) one head, one query, looking for both kinds at once
f = features(snippet)
q1 = beta * f[..., 4:5]  # (1, T, 1): the same query
k1 = f[..., 0:1] + f[..., 1:2]  # (1, T, 1): space or capital
_, w1 = scaled_dot_product_attention(
    q1[:, None],
    k1[:, None],
    f[:, None],
    causal_mask(T),
    scale=1 / math.sqrt(4),
    return_weights=True,
)
one_head_space = w1[0, 0][:, is_space].sum(-1)
both = sees_space & sees_cap
print(
    "one head for both, weight on spaces where both are visible: max"
    f" {one_head_space[both].max():.4f}"
)
assert one_head_space[both].max() < 0.9

# (3) untrained heads: small scores, weights near uniform
with torch.no_grad():
    rand_scores = (qh @ kh.transpose(-2, -1))[0] / math.sqrt(
        d
    )  # (H, T, T), window 0
visible = causal_mask(T)
score_std = rand_scores[:, visible].std().item()
max_ratio = (
    (rand_w[0] * torch.arange(1, T + 1)[:, None])[:, visible].max().item()
)
print(
    f"untrained heads: std of the scaled scores {score_std:.2f}, largest"
    f" weight / uniform {max_ratio:.2f}"
)
assert score_std < 0.5 and max_ratio < 4

# (4) untrained heads: equal characters, equal weight (for every query that
# sees both)
pairs = [
    (i, j) for i in range(T) for j in range(i) if snippet[i] == snippet[j]
]
same = all(
    torch.allclose(rand_w[0, :, t, i], rand_w[0, :, t, j], atol=1e-7)
    for i, j in pairs
    for t in range(i, T)
)
print(
    f"{len(pairs)} pairs of equal characters get equal weight in every head:"
    f" {same}"
)
assert same and len(pairs) > 20

# (5) the shown block is what the layer computes on the 24-character prefix
with torch.no_grad():
    _, prefix_w = mha(x[:1, :T_show], causal=True, return_weights=True)
print(
    "24x24 block == weights on the prefix:",
    torch.allclose(prefix_w[0], rand_w[0, :, :T_show, :T_show], atol=1e-6),
)
assert torch.allclose(prefix_w[0], rand_w[0, :, :T_show, :T_show], atol=1e-6)
"""),
md(r"""
## Play with it

Pick a head and a *temperature*: the explorer divides the head's scaled scores by $\tau$
before the softmax. A small $\tau$ sharpens every row towards a hard look-up of its best key (the
saturated regime of the $\sqrt d$ experiment); a large $\tau$ flattens every row towards the
plain average of what the query can see. Hover a cell for its weight. (The controls need a
running notebook; in the HTML book the explorer shows the state it was saved in, and the figure
below shows two heads at three temperatures.)
"""),
code(r"""
from gptlib.viz import attention_explorer, attention_summary, attention_weights

with torch.no_grad():
    hand_q, hand_k, _ = (
        split_heads(t, 2)
        for t in hand.c_attn(features(snippet)).split(8, dim=2)
    )
    head_scores = {
        "hand-set 0: spaces": (
            (hand_q @ hand_k.transpose(-2, -1))[0, 0] / math.sqrt(4)
        ),
        "hand-set 1: capitals": (
            (hand_q @ hand_k.transpose(-2, -1))[0, 1] / math.sqrt(4)
        ),
    }
    for h in range(H):
        head_scores[f"untrained {h}"] = (qh @ kh.transpose(-2, -1))[
            0, h
        ] / math.sqrt(d)

attention_explorer(
    head_scores,
    list(snippet),
    causal_mask(T),
    temperature=1.0,
    head="hand-set 0: spaces",
)
"""),
code(r"""
temperatures = [0.25, 1.0, 4.0]
shown = ["hand-set 0: spaces", "untrained 0"]
fig, axes = plt.subplots(3, 2, figsize=(7.5, 11), layout="constrained")
for col, name in enumerate(shown):
    for row, tau in enumerate(temperatures):
        wt = attention_weights(head_scores[name], causal_mask(T), tau)
        top, entropy = attention_summary(wt, causal_mask(T))
        im = heatmap(
            axes[row, col],
            wt,
            f"{name}, τ = {tau}\nmean max weight {top:.2f}, entropy"
            f" {entropy:.2f}",
        )
fig.colorbar(im, ax=axes, shrink=0.5, label="attention weight")
fig.suptitle(
    "Temperature: sharper (top) or flatter (bottom) look-ups, same scores\n"
    "(first 24 characters; the numbers are over all 36 queries)",
    fontsize=10,
)
plt.show()
"""),
md(r"""
**Prove it.** Raising the temperature flattens every head (the mean largest weight falls and
the entropy rises), and at a very high temperature each query's weights are uniform over the
$t+1$ keys it may see:
"""),
code(r"""
mask = causal_mask(T)
uniform = mask / mask.sum(-1, keepdim=True)  # 1 / (t + 1) on each allowed key
for name, sc in head_scores.items():
    tops, ents = zip(
        *(
            attention_summary(attention_weights(sc, mask, tau), mask)
            for tau in (0.25, 1.0, 4.0)
        )
    )
    assert tops[0] >= tops[1] >= tops[2] and ents[0] <= ents[1] <= ents[2], (
        name
    )
    assert (attention_weights(sc, mask, 1e4) - uniform).abs().max() < 1e-2, (
        name
    )
print(
    "flatter with temperature, uniform in the limit: all",
    len(head_scores),
    "heads",
)
"""),
md(r"""
## Self-attention versus encoder–decoder attention

The Transformer of {cite:t}`vaswani2017attention` was built for translation and has two stacks.
The **encoder** reads the source sentence with (unmasked) self-attention. The **decoder** writes
the translation, and each of its layers has *two* attentions: masked self-attention over the
translation so far, and **encoder–decoder attention** (also called *cross-attention*), whose
queries come from the decoder and whose keys and values come from the encoder's output
$M \in \mathbb{R}^{T_{src} \times C}$:

$$
\begin{gathered}
\mathrm{CrossAttention}(X, M) = \mathrm{softmax}\!\left(\frac{(X W_Q)(M W_K)^\top}{\sqrt d}\right) M W_V ,
\\ X \in \mathbb{R}^{T_{tgt} \times C}, \quad A \in \mathbb{R}^{T_{tgt} \times T_{src}} .
\end{gathered}
$$

Each target position looks things up in the *source*. (The attention with which
{cite:t}`bahdanau2015neural` began attention in translation was of this kind — a recurrent
decoder looking up the states of a recurrent encoder — with another score, shown below.)
Self-attention is the special case $M = X$. In
code, the two are one function; the only difference is where the keys and values come from.
Here is a function that projects queries from one sequence and keys and values from another,
using the weights of the layer `mha` traced above:
"""),
code(r"""
def attend(layer, x_query, x_memory, mask=None):
    # Multi-head attention of x_query (B, T_q, C) over x_memory (B, T_k,
    # C) with layer's weights.
    Wq, Wk, Wv = layer.c_attn.weight.split(layer.n_embd)  # each (C, C)
    bq, bk, bv = layer.c_attn.bias.split(layer.n_embd)
    q = split_heads(x_query @ Wq.T + bq, layer.n_heads)  # (B, H, T_q, d)
    k = split_heads(x_memory @ Wk.T + bk, layer.n_heads)  # (B, H, T_k, d)
    v = split_heads(x_memory @ Wv.T + bv, layer.n_heads)  # (B, H, T_k, d)
    y, w = scaled_dot_product_attention(q, k, v, mask, return_weights=True)
    return layer.c_proj(merge_heads(y)), w


source = embedding[
    torch.tensor([tok.encode("Proceed, Solinus, to procure my fall")])
]  # (1, 36, C)
target = embedding[torch.tensor([tok.encode("And by the doom")])]  # (1, 15, C)
with torch.no_grad():
    y_cross, w_cross = attend(mha, target, source)
    y_self, _ = attend(mha, x, x, causal_mask(T))
print(
    "cross-attention: output",
    tuple(y_cross.shape),
    " weights",
    tuple(w_cross.shape),
    "= (B, H, T_tgt, T_src)",
)
print(
    "rows of the cross weights sum to 1:",
    torch.allclose(w_cross.sum(-1), torch.ones(1, H, 15)),
)
print(
    "attend(x, x, causal) == the GPT layer mha(x, causal=True):",
    torch.allclose(y_self, y_explicit, atol=1e-6),
)
assert w_cross.shape == (1, H, 15, 36) and torch.allclose(
    y_self, y_explicit, atol=1e-6
)
"""),
md(r"""
### Bahdanau's additive score

The dot product is not the only way to score a query against a key. In the translation model
of {cite:t}`bahdanau2015neural` (their eq. 6 and appendix A.1.2) a small network does it: both
are projected into a hidden space of width $d_a$, added, passed through $\tanh$, and read out by
a vector $w \in \mathbb{R}^{d_a}$,

$$
s_{ij} = w^\top \tanh\!\big(W_q^\top q_i + W_k^\top k_j\big),
\qquad W_q \in \mathbb{R}^{d_q \times d_a},\; W_k \in \mathbb{R}^{d_k \times d_a},
$$

where $q_i$ is the decoder's state and $k_j$ the encoder's state at source word $j$. The rest
is what we have: a softmax over $j$ and a weighted average. Because the score is a network, the
query and key need not have the same width; because $|\tanh| < 1$, no score can exceed
$\lVert w \rVert_1$ in size, however long the query. The dot product has neither property, and
it wins on speed: all the scores of a sequence are one matrix product, with no
$T_q \times T_k \times d_a$ hidden tensor. {cite:t}`vaswani2017attention` chose it for that
reason, and added the $1/\sqrt d$ to keep it from saturating (their section 3.2.1). The
library's version, for tensors of any leading shape:
"""),
code(r"""
from gptlib.attention import additive_scores

show(additive_scores)
"""),
md(r"""
On the hand example from the start of the chapter ($q = (1, 1)$, the three keys and values), with
$W_q = W_k = I$ ($d_a = 2$) and $w = (1, 1)$, the scores are
$s_j = \tanh(1 + k_{j,1}) + \tanh(1 + k_{j,2})$: $2\tanh 2 \approx 1.9281$ for $k_1$,
$\tanh 2 + \tanh 0 \approx 0.9640$ for $k_2$ and $0$ for $k_3$. The same ranking as the dot
product's, with a softer spread. And a query 100 times longer does not sharpen it, as it would
sharpen the dot product: it saturates every $\tanh$, all three scores reach
$\lVert w \rVert_1 = 2$, and the weights become uniform:
"""),
code(r"""
q_hand = torch.tensor(
    [[1.0, 1.0]]
)  # the hand example's query, (T_q, d) = (1, 2)
s_add = additive_scores(q_hand, K, torch.eye(2), torch.eye(2), torch.ones(2))
w_add = torch.softmax(s_add, dim=-1)
print("additive scores: ", fmt(s_add[0]))
print("weights:         ", fmt(w_add[0]))
print("output:          ", fmt((w_add @ V)[0]))
print("dot-product weights, for comparison:", fmt(look_up(q_hand, K, V)[1][0]))
by_hand = [2 * math.tanh(2), math.tanh(2) + math.tanh(0), 0.0]
assert all(abs(a - b) < 1e-6 for a, b in zip(s_add[0].tolist(), by_hand))
w_dot = look_up(q_hand, K, V)[1][0]
assert torch.equal(w_add[0].argsort(), w_dot.argsort())  # same ranking
assert w_add.max() < w_dot.max()  # softer
# a 100 times longer query saturates every tanh: all scores -> |w|_1 = 2
s_long = additive_scores(
    100 * q_hand, K, torch.eye(2), torch.eye(2), torch.ones(2)
)
print("query x 100, additive scores:", fmt(s_long[0]))
print("               weights:", fmt(torch.softmax(s_long, -1)[0]))
assert s_long.abs().max() <= 2
assert torch.allclose(torch.softmax(s_long, -1), torch.full((1, 3), 1 / 3))
"""),
md(r"""
The library's `MultiHeadAttention.forward` (shown above) has no second sequence to take keys
from: its first line computes `q, k, v = self.c_attn(x).split(...)` from the one input `x`. A GPT
block is that layer plus an MLP. Compare the layers of the two architectures — PyTorch's
encoder–decoder `nn.TransformerDecoderLayer`, this book's GPT `Block` (chapter 4), and the
GPT-2 of Hugging Face `transformers` (built from a configuration, nothing downloaded):
"""),
code(r"""
from transformers import GPT2Config, GPT2Model
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention

from gptlib.block import Block


def attention_children(layer, kind):
    return [name for name, m in layer.named_children() if isinstance(m, kind)]


dec = nn.TransformerDecoderLayer(d_model=32, nhead=4, batch_first=True)
gpt_block = Block(32, 4)
hf_gpt2 = GPT2Model(GPT2Config(n_layer=1, n_embd=32, n_head=4))
hf_gpt2_as_decoder = GPT2Model(
    GPT2Config(n_layer=1, n_embd=32, n_head=4, add_cross_attention=True)
)

print(
    "nn.TransformerDecoderLayer:",
    attention_children(dec, nn.MultiheadAttention),
    "  forward needs a memory:",
    "memory" in inspect.signature(dec.forward).parameters,
)
print(
    "gptlib Block (GPT):        ",
    attention_children(gpt_block, MultiHeadAttention),
    "             forward needs a memory:",
    "memory" in inspect.signature(gpt_block.forward).parameters,
)
print(
    "Hugging Face GPT-2 block:  ",
    attention_children(hf_gpt2.h[0], GPT2Attention),
    "  add_cross_attention by default:",
    GPT2Config().add_cross_attention,
)
print(
    "GPT-2 made into a decoder: ",
    attention_children(hf_gpt2_as_decoder.h[0], GPT2Attention),
)
assert attention_children(gpt_block, MultiHeadAttention) == ["attn"]
assert attention_children(hf_gpt2.h[0], GPT2Attention) == ["attn"]
assert len(attention_children(dec, nn.MultiheadAttention)) == 2
"""),
md(r"""
```{admonition} Common misconception: "encoder–decoder attention is at the core of GPT"
:class: warning

A common explanation of how GPT-3 works opens its list of basic concepts with the Transformer's
"Encoder-Decoder Attention Layer", and presents the encoder and the decoder as core modules of
the model. GPT has no encoder, so it has no encoder–decoder attention.

GPT is **decoder-only**: "a multi-layer Transformer decoder" {cite:p}`radford2018improving`,
which is the decoder of the original Transformer with its encoder–decoder sublayer removed,
since there is no encoder output to attend to. GPT-2 and GPT-3 keep this design
{cite:p}`radford2019language,brown2020language`. Every attention layer in them is **masked
multi-head self-attention**: queries, keys and values are all computed from the same sequence,
and each position sees only itself and the positions before it. The cells above show both
halves of the truth: cross-attention is the same function fed keys and values from a second
sequence, and GPT's blocks (this book's and Hugging Face's GPT-2) contain one attention, which
takes a single sequence. Cross-attention appears in GPT-2's code only if you ask for it
(`add_cross_attention=True`), to use it as the decoder of an encoder–decoder model.
```

## The cost: time and memory grow as $T^2$

Every query is compared with every key, so one head computes a $T \times T$ matrix of scores.
Per layer and sequence, $QK^\top$ and $AV$ each cost $H \cdot T^2 \cdot d = T^2 C$
multiply–adds, against $4TC^2$ for the four projections, so attention's own share grows with
$T$ and dominates once $T > 2C$. The explicit path also *stores* the weights $A$: $B \cdot H
\cdot T^2$ numbers, kept for the backward pass. For GPT-2 small ($H = 12$, $T = 1024$) that is
12 million numbers per layer per sequence. A fused kernel such as FlashAttention
{cite:p}`dao2022flashattention` computes the same output tile by tile, never storing $A$: it
keeps $q, k, v$, the output and one number per row (the softmax's normaliser) — memory linear
in $T$. It does the same $T^2$ arithmetic, so for long enough sequences its time grows as $T^2$
too; it is usually faster because it does not write the $T \times T$ weights to memory and read
them back.

First the arithmetic, counted by PyTorch's `FlopCounterMode`, which records every matrix
product an operation runs (2 FLOPs per multiply–add), independently of our formulas. The
projections run as `addmm` (a matrix product plus the bias), the two attention products as
batched `bmm`. At $C = 64$, for several $T$ and $H$:
"""),
code(r"""
from torch.utils.flop_counter import FlopCounterMode

C_f = 64
print(
    f"{'T':>4} {'H':>2} {'projections':>12} {'4TC^2':>9}"
    f"  {'attention':>10} {'2T^2C':>9}"
)
for T_f in (64, 128, 256):
    for H_f in (1, 4, 16):
        layer_f = MultiHeadAttention(C_f, H_f).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            layer_f(torch.randn(1, T_f, C_f), causal=True)
        ops = {
            str(op): n for op, n in counter.get_flop_counts()["Global"].items()
        }
        proj, att = (
            ops["aten.addmm"] // 2,
            ops["aten.bmm"] // 2,
        )  # multiply-adds
        print(
            f"{T_f:>4} {H_f:>2} {proj:>12,} {4 * T_f * C_f**2:>9,}  {att:>10,}"
            f" {2 * T_f**2 * C_f:>9,}"
        )
        assert proj == 4 * T_f * C_f**2 and att == 2 * T_f**2 * C_f
        assert set(ops) == {"aten.addmm", "aten.bmm"}  # nothing else counted
"""),
md(r"""
The counts match the formulas at every $T$ and $H$: the number of heads changes nothing, and at
$T = 2C = 128$ attention's own products cost exactly as much as the projections. Then the
memory. The weights tensor has $B \cdot H \cdot T^2$ numbers, and the explicit path keeps it
for the backward pass — autograd's `saved_tensors_hooks` show every tensor a forward pass saves,
so we can check that a $(B, H, T, T)$ tensor is among them, rather than take it on trust:
"""),
code(r"""
def saved_tensors(fn, *args):
    # (shape, bytes of its storage) of every tensor autograd saves from fn's
    # forward pass for the backward pass
    saved = []

    def pack(t):
        saved.append((tuple(t.shape), t.untyped_storage().nbytes()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args)
    return saved


B, H_c, d_c = 1, 4, 64
for T_c in (256, 1024):
    g = torch.Generator().manual_seed(T_c)
    q, k, v = (
        torch.randn(B, H_c, T_c, d_c, generator=g).requires_grad_()
        for _ in range(3)
    )
    kept = saved_tensors(
        scaled_dot_product_attention, q, k, v, causal_mask(T_c)
    )
    square = [n for shape, n in kept if shape == (B, H_c, T_c, T_c)]
    print(
        f"T = {T_c:4d}: saved (B, H, T, T) tensors of {square[0] / 2**20:.0f}"
        f" MiB; B*H*T^2 * 4 bytes = {B * H_c * T_c * T_c * 4 / 2**20:.0f} MiB"
    )
    assert square and all(n == B * H_c * T_c * T_c * 4 for n in square)
gpt2_bytes = 12 * 1024**2 * 4
print(
    "GPT-2 small, one layer, one sequence of 1024 tokens:"
    f" {gpt2_bytes / 2**20:.0f} MiB of float32 weights"
)
"""),
md(r"""
Now the two paths over $T$, forward and backward, $B = 1$, $H = 4$, $d = 64$, causal, float32,
on one CPU thread. We measure the thread's CPU time (`time.thread_time`), which other programs
running on the machine do not inflate the way they inflate wall-clock time. Timings still depend
on the machine, so this cell's output is not checked by the tests (it is tagged
`nbval-ignore-output`); the memory that follows is.
"""),
code(r"""
def explicit(q, k, v):
    return scaled_dot_product_attention(q, k, v, causal_mask(q.size(-2)))


def fused(q, k, v):
    return fused_attention(q, k, v, is_causal=True)


def step_time(fn, q, k, v, repeats=3):
    # Median CPU seconds of one forward + backward pass on one thread,
    # after one warm-up pass.
    times = []
    for i in range(repeats + 1):
        t0 = time.thread_time()
        out = fn(q, k, v)
        out.backward(torch.ones_like(out))
        if i:
            times.append(time.thread_time() - t0)
    return sorted(times)[len(times) // 2]


Ts = [64, 128, 256, 512, 1024]
timing = {"explicit": [], "fused": []}
threads = torch.get_num_threads()
torch.set_num_threads(
    1
)  # one thread: its CPU time is not inflated by other programs
for T_c in Ts:
    g = torch.Generator().manual_seed(T_c)
    q, k, v = (
        torch.randn(1, 4, T_c, 64, generator=g).requires_grad_()
        for _ in range(3)
    )
    timing["explicit"].append(step_time(explicit, q, k, v))
    timing["fused"].append(step_time(fused, q, k, v))
    print(
        f"T = {T_c:4d}: explicit {1e3 * timing['explicit'][-1]:7.1f} ms  "
        f" fused {1e3 * timing['fused'][-1]:7.1f} ms"
    )
torch.set_num_threads(threads)

fig, ax = plt.subplots(figsize=(6, 3.8))
ax.loglog(
    Ts,
    [1e3 * t for t in timing["explicit"]],
    "o-",
    label="explicit (stores the weights)",
)
ax.loglog(
    Ts,
    [1e3 * t for t in timing["fused"]],
    "s-",
    label="fused (F.scaled_dot_product_attention)",
)
ref = 1e3 * timing["explicit"][-1]
ax.loglog(
    Ts, [ref * (T_c / Ts[-1]) ** 2 for T_c in Ts], "k:", label=r"$\propto T^2$"
)
ax.set_xscale("log", base=2)
ax.set(
    xlabel="sequence length T",
    ylabel="CPU ms per forward + backward",
    title="Attention time over T (one CPU thread, this run)",
)
ax.legend()
plt.show()
""", "nbval-ignore-output"),
md(r"""
Memory can be measured exactly: autograd's `saved_tensors_hooks` show every tensor that a
forward pass keeps for its backward pass; we add up their bytes (each storage once).
"""),
code(r"""
def saved_bytes(fn, q, k, v):
    # Bytes of the distinct tensors autograd keeps from fn's forward pass
    # for the backward pass.
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(q, k, v)
    return sum(storages.values())


saved = {"explicit": [], "fused": []}
print(
    f"{'T':>5} {'explicit MiB':>13} {'fused MiB':>10}"
    f" {'one (B,H,T,T) float32 MiB':>26}"
)
for T_c in Ts:
    g = torch.Generator().manual_seed(T_c)
    q, k, v = (
        torch.randn(1, 4, T_c, 64, generator=g).requires_grad_()
        for _ in range(3)
    )
    saved["explicit"].append(saved_bytes(explicit, q, k, v))
    saved["fused"].append(saved_bytes(fused, q, k, v))
    print(
        f"{T_c:>5} {saved['explicit'][-1] / 2**20:>13.2f}"
        f" {saved['fused'][-1] / 2**20:>10.2f}"
        f" {4 * T_c * T_c * 4 / 2**20:>26.2f}"
    )
"""),
md(r"""
**Prove it.** The explicit path keeps at least the $(B, H, T, T)$ weights, so its memory grows
as $T^2$ (times 4 per doubling, once the $T^2$ term dominates); the fused path keeps the same
number of bytes *per position* at every $T$ — exactly linear:
"""),
code(r"""
for T_c, e_b, f_b in zip(Ts, saved["explicit"], saved["fused"]):
    assert e_b >= 1 * 4 * T_c * T_c * 4  # holds the weights
per_position = {f_b // T_c for T_c, f_b in zip(Ts, saved["fused"])}
assert len(per_position) == 1 and all(
    f_b % T_c == 0 for T_c, f_b in zip(Ts, saved["fused"])
)
growth = saved["explicit"][-1] / saved["explicit"][-2]
print(
    f"fused: {per_position.pop()} bytes per position at every T; explicit:"
    f" x{growth:.2f} from T = 512 to 1024"
)
assert 3 < growth <= 4
"""),
md(r"""
## Attention alone, trained on Shakespeare

Everything so far ran on random or hand-set weights. Chapter 1 ended by promising that attention
supplies what the bigram lacks — context — so let us train the smallest language model built on
it and measure. `gptlib.ladder.build_model("attn-4heads", n_vocab)` makes it from the library's
parts: a table of token embeddings ($n_\mathrm{vocab} \times 48$; we write the vocabulary size
$n_\mathrm{vocab}$, since $V$ is the value matrix in this chapter), one causal four-head
attention layer of this chapter ($C = 48$, $d = 12$), and an output layer that turns the
layer's 48 numbers into $n_\mathrm{vocab}$ logits. Nothing else: no positions, no residual
connection, no normalisation, no MLP. The whole model is three lines:
"""),
code(r"""
from gptlib.data import encode_text
from gptlib.ladder import BUDGET, read_ladder, train_config
from gptlib.pretrain import dataset_loss, train

ladder = read_ladder("../data/results/ladder.json")
ids = {s: encode_text(load_text(s), tok) for s in ("train", "val")}
n_vocab = tok.vocab_size
set_seed(0)
model = build_model("attn-4heads", n_vocab)
n_params = sum(p.numel() for p in model.parameters())
print(f"vocabulary: {n_vocab} characters; parameters: {n_params:,}")
print(
    f"positions: {type(model.pos).__name__}; residual: {model.config.residual};"
    f" norm: {model.config.norm}; MLP: {model.config.mlp}"
)


def attention_only(model, idx):
    # the whole model, written out: embed, attend, read out
    h = model.wte(idx)  # (B, T, C) token embeddings, nothing added
    y = model.h[0].attn(h, causal=True)  # (B, T, C) the heads' average
    return model.lm_head(y)  # (B, T, n_vocab) logits


with torch.no_grad():
    same_fn = torch.allclose(
        model(window)[0], attention_only(model, window), atol=1e-6
    )
print("model(idx) == lm_head(attn(wte(idx))):", same_fn)
assert same_fn
"""),
md(r"""
We train it exactly as the loss ladder does (chapter 1 introduced it): 1,500 steps of 32
windows of 64 characters, AdamW with warm-up and cosine decay, at the learning rate the ladder
chose for this rung on validation text, on one thread and from seed 0, so the run reproduces the
results file's seed-0 number. Before training we record two statistics of its attention on 400
validation windows: the spread (standard deviation) of the scaled scores over the pairs a query
may see, and the mean entropy of a row of weights.
"""),
code(r"""
def attention_stats(model, x):
    # x: (B, T) windows -> (weights (B, H, T, T), std of the scaled scores over
    # visible pairs, mean entropy of a row in nats)
    layer = model.h[0].attn
    with torch.no_grad():
        h = model.wte(x)
        q, k, _ = (
            split_heads(t, layer.n_heads)
            for t in layer.c_attn(h).split(layer.n_embd, dim=2)
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(layer.head_dim)
        _, w = layer(h, causal=True, return_weights=True)
    visible = causal_mask(x.size(1))
    plogp = torch.where(w > 0, w * w.log(), torch.zeros_like(w))
    return w, scores[..., visible].std().item(), -plogp.sum(-1).mean().item()


x_val = ids["val"][: 400 * 64].view(400, 64)  # 400 validation windows
_, std_before, ent_before = attention_stats(model, x_val)

final = {
    r["seed"]: r
    for r in ladder["runs"]
    if r["rung"] == "attn-4heads" and r.get("final")
}
lr_4 = final[0]["lr"]
threads = torch.get_num_threads()
torch.set_num_threads(1)  # as the ladder script: one thread
t0 = time.perf_counter()
train(model, ids["train"], train_config(lr_4, seed=0))
live_per_token = dataset_loss(
    model, ids["val"], BUDGET["block_size"], per_token=True
)
torch.set_num_threads(threads)
live_loss = live_per_token.mean().item()
print(f"lr {lr_4:g}: trained and scored in {time.perf_counter() - t0:.0f} s")
print(
    f"validation loss {live_loss:.4f}; results file, seed 0:"
    f" {final[0]['val_loss']:.4f}"
)
""", "nbval-ignore-output"),
code(r"""
reproduced = abs(live_loss - final[0]["val_loss"]) < 2e-3  # seeds: 3e-3 apart
print(
    "the live run reproduces the file's seed-0 loss (within 2e-3):", reproduced
)
assert reproduced
"""),
md(r"""
**Training sharpens the heads.** At initialisation the scores are tiny (the small weights of
GPT-2's initialisation, measured above) and every row is almost exactly the uniform average of
what its query can see. After training:
"""),
code(r"""
w_val, std_after, ent_after = attention_stats(model, x_val)
uniform_entropy = torch.log(torch.arange(1.0, 65.0)).mean().item()
print(
    f"std of the scaled scores: before {std_before:.1e}, after {std_after:.2f}"
)
print(
    f"mean entropy of a row: before {ent_before:.3f} (uniform rows:"
    f" {uniform_entropy:.3f}), after {ent_after:.3f} nats"
)
""", "nbval-ignore-output"),
code(r"""
sharper = std_after > 1e4 * std_before and std_after > 1
flat_before = abs(ent_before - uniform_entropy) < 1e-3
lower_entropy = ent_after < ent_before - 0.5
print("scores 10,000 times more spread out, and above 1:", sharper)
print("uniform rows before training:", flat_before)
print("entropy lower by more than 0.5 nats after:", lower_entropy)
assert sharper and flat_before and lower_entropy
"""),
md(r"""
So training did what the $\sqrt d$ section left to it: starting from uniform rows, it made the
scores larger and the look-ups sharper.

**What the layer cannot do.** Two things are missing, and both can be shown on the trained
model. *No positions*: a key is computed from its character alone, so a query cannot tell the
character just before it from an earlier copy of the same character, nor its own position from
an earlier copy of its own character: equal characters get exactly equal weight. The
prediction at position $t$ is then a function of the current character and of the *bag* of
characters before it, in no order: shuffle them and nothing changes. A trigram, which knows
which character came just before, is out of reach once the window holds more than two
characters. *No residual path*: the output at $t$ is the
attention average $\sum_j a_{tj} v_j$ and nothing else, so the current character — the one
thing a bigram uses — reaches the output only with the weight that the keys of its own character win in the softmax.
"""),
code(r"""
x0, w0 = x_val[0], w_val[0]  # one window (T,) and its weights (H, T, T)
pairs = [(i, j) for j in range(64) for i in range(j) if x0[i] == x0[j]]
equal = all(
    torch.allclose(w0[:, t, i], w0[:, t, j], atol=1e-6)
    for i, j in pairs
    for t in range(j, 64)
)
print(
    f"{len(pairs)} pairs of equal characters, equal weight in every head:",
    equal,
)
assert equal and len(pairs) > 50

ctx = tok.encode(snippet)  # 'Proceed, Solinus, to procure my fall'
perm = torch.randperm(len(ctx) - 1, generator=torch.Generator().manual_seed(7))
shuffled = [ctx[i] for i in perm.tolist()] + ctx[-1:]  # keep the last one
with torch.no_grad():
    p_orig = torch.softmax(model(torch.tensor([ctx]))[0][0, -1], -1)
    p_shuf = torch.softmax(model(torch.tensor([shuffled]))[0][0, -1], -1)
print(f"{snippet!r} and {tok.decode(shuffled)!r}:")
print(
    "  the same next-character distribution:",
    torch.allclose(p_orig, p_shuf, atol=1e-6),
)
assert torch.allclose(p_orig, p_shuf, atol=1e-6)
"""),
md(r"""
Now the cost of each, position by position: the model's validation loss at each position $t$
of the 64-character windows, against the counted bigram's on the same tokens (add-$\alpha$
smoothing as the ladder chose it), and the weight the trained heads put on the query's own
position and on all keys of the query's own character, against the share $1/(t+1)$ that a
uniform row gives each key.
"""),
code(r"""
from gptlib.ngram import bigram_probs, count_bigrams

bigram_run = next(r for r in ladder["runs"] if r["rung"] == "bigram")
ngram_run = next(r for r in ladder["runs"] if r["rung"] == "ngram")
probs = bigram_probs(
    count_bigrams(ids["train"], n_vocab), alpha=bigram_run["alpha"]
)
n_w = len(live_per_token) // 64
xs = ids["val"][: n_w * 64].view(n_w, 64)
ys = ids["val"][1 : n_w * 64 + 1].view(n_w, 64)
bigram_pos = -probs[xs, ys].log().mean(0).double()  # (64,) per position
attn_pos = live_per_token.view(n_w, 64).mean(0).double()
same_char = (x_val[:, :, None] == x_val[:, None, :]) & causal_mask(64)
on_self = torch.diagonal(w_val, dim1=-2, dim2=-1).mean((0, 1))  # (64,)
on_same = (w_val * same_char[:, None]).sum(-1).mean((0, 1))  # (64,)

ts = torch.arange(64)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 3.4), layout="constrained")
ax1.plot(ts, attn_pos, label="attention alone (trained)")
ax1.plot(ts, bigram_pos, label="counted bigram")
ax1.axhline(ngram_run["val_loss"], color="grey", ls="--", label="best n-gram")
ax1.set_xlabel("position t in the window", fontsize=9)
ax1.set_ylabel("validation loss (nats)", fontsize=9)
ax1.set_title("Loss by position", fontsize=10)
ax1.legend(fontsize=8)
ax2.plot(ts, on_self, label="on its own position")
ax2.plot(ts, on_same, label="on its own character")
ax2.plot(ts, 1 / (ts + 1), "k:", label="uniform: 1/(t+1)")
ax2.set_yscale("log")
ax2.set_xlabel("position t (the query)", fontsize=9)
ax2.set_ylabel("attention weight", fontsize=9)
ax2.set_title("Where the query looks", fontsize=10)
ax2.legend(fontsize=8)
for ax in (ax1, ax2):
    ax.tick_params(labelsize=8)
plt.show()
print(
    f"loss at t = 0: {attn_pos[0]:.2f} (bigram {bigram_pos[0]:.2f}); best at"
    f" t = {attn_pos.argmin()}: {attn_pos.min():.2f}; last 16 positions:"
    f" {attn_pos[48:].mean():.2f} (bigram {bigram_pos[48:].mean():.2f})"
)
print(
    f"weight on its own position: t = 1 {on_self[1]:.2f}, t = 63"
    f" {on_self[63]:.3f} (uniform {1 / 64:.3f})"
)
""", "nbval-ignore-output"),
md(r"""
**Prove it.** At $t = 0$ the query sees only itself: its weight is 1 and the output is a function
of the current character alone — a bigram model, though a worse one than the counted bigram:
the same embeddings and value vectors serve all 64 positions, and position 0 is only one of
them. A few
positions in, the bag of the last few characters helps, and the model beats the bigram. As the
window fills, the query's own position loses weight (it cannot be singled out among earlier
copies of its character, and competes with every other key), the bag grows too large to say
which characters came last, and the loss climbs back towards the bigram's:
"""),
code(r"""
checks = {
    "t = 0: worse than the counted bigram by > 0.1": bool(
        attn_pos[0] > bigram_pos[0] + 0.1
    ),
    "t = 1..16: better than the bigram by > 0.05": bool(
        (attn_pos[1:17] < bigram_pos[1:17] - 0.05).all()
    ),
    "last 16 positions: worse than t = 1..16 by > 0.03": bool(
        attn_pos[48:].mean() > attn_pos[1:17].mean() + 0.03
    ),
    "weight on its own position: > 0.5 at t = 1, < 0.15 at t = 63": bool(
        on_self[1] > 0.5 and on_self[63] < 0.15
    ),
    "own position: above the uniform share at every t > 0": bool(
        (on_self[1:] > 1 / (ts[1:] + 1)).all()
    ),
    "bigram here == the ladder's bigram (within 1e-4)": bool(
        abs(bigram_pos.mean() - bigram_run["val_loss"]) < 1e-4
    ),
}
for name, ok in checks.items():
    print(f"{name:62s} {ok}")
assert all(checks.values())
"""),
md(r"""
## The loss ladder so far

The loss ladder (chapter 1) measures each chapter's minimal model with one yardstick: the
validation loss in nats per character on every 64-character window of the validation plays,
every neural rung trained under the same budget (1,500 steps of 32 windows of 64 characters,
3.07 million tokens) at the learning rate chosen for it on validation (seed 0), three seeds each;
`scripts/experiments/ladder.py` wrote the file. This chapter adds two rungs: the model trained
above (four heads of width 12), and the same model with one head of width 48.
"""),
code(r"""
from gptlib.ladder import ladder_summary, ladder_table, rung_gap
from gptlib.viz.ladder import plot_ladder

print(ladder_table(ladder, upto_chapter=2))
plot_ladder(ladder, chapter=2)
plt.show()
"""),
md(r"""
What the ladder says, in the worst case over seeds (the cell below asserts each statement):

- **Four heads beat one head**, by about 0.05 nats, many times the spread of either rung's seeds:
  with the same parameters, four look-ups of width 12 do better than one of width 48.
- **One head does not beat the counted bigram.** Its three seeds land within 0.01 nats of it, on
  both sides of it: at this budget a single head is worth a table of character pairs, no more.
- **Four heads beat the counted bigram, but only by about 0.05 nats** (less than 0.1), and both
  attention rungs stay about 0.8 nats above the best counted n-gram, which reads the last few
  characters *in order* (the cell prints which order won).

So attention alone, without positions and without a residual connection, buys little over
counting pairs at this budget; the figure by position above shows the gain is largest in the
first positions of each window, where the bag of visible characters is small enough to stand
in for the last few, and shrinks, without vanishing, later in the window. It cannot tell the order of what it sees (no positions),
and the current character reaches the output only through the average (no residual path). The
next chapters add what it lacks, one piece at a time: chapter 3 asks what the causal mask is
worth; chapter 4 adds the residual path, through which the current token reaches the output
whatever the weights, and the MLP; chapter 5 adds positions, so that a query can find the
character just before it.
"""),
code(r"""
summary = {r["rung"]: r for r in ladder_summary(ladder, upto_chapter=2)}
seed_spread = max(summary[n]["spread"] for n in ("attn-1head", "attn-4heads"))
gaps = {
    "4 heads below 1 head": rung_gap(ladder, "attn-4heads", "attn-1head"),
    "4 heads below the counted bigram": rung_gap(
        ladder, "attn-4heads", "bigram"
    ),
    "1 head below the counted bigram": rung_gap(
        ladder, "attn-1head", "bigram"
    ),
    "best n-gram below 4 heads": rung_gap(ladder, "ngram", "attn-4heads"),
}
for name, gap in gaps.items():
    print(f"{name:34s} {gap:+.3f} nats (worst case over seeds)")
print(
    f"largest seed spread of the two attention rungs: {seed_spread:.3f} nats"
)
print(f"best n-gram: n = {ngram_run['n']}, alpha = {ngram_run['alpha']}")
assert max(0.03, 5 * seed_spread) < gaps["4 heads below 1 head"] < 0.1
# one head vs the bigram: neither is below the other at every seed, and the
# one-head seeds are all within 0.01 of the bigram
assert gaps["1 head below the counted bigram"] < 0
assert rung_gap(ladder, "bigram", "attn-1head") < 0
one_head, bigram_loss = (
    summary["attn-1head"]["losses"],
    summary["bigram"]["mean"],
)
assert all(abs(x - bigram_loss) < 0.01 for x in one_head)
assert min(one_head) < bigram_loss < max(one_head)  # on both sides of it
assert 0.03 < gaps["4 heads below the counted bigram"] < 0.1
assert 0.7 < gaps["best n-gram below 4 heads"] < 0.9
"""),
md(r"""
## Exercises

**Exercise 1.** In the hand example, choose a query $q = c\,k_2$ (pointing at the second key)
and find, by hand, the smallest $c$ for which the second key gets at least 90% of the weight.
Check your answer with the library, and check that a slightly smaller $c$ falls short.
"""),
code(r"""
# Solution. q = c k2 gives scores c*2/sqrt(2) = c*sqrt(2) for k2 and 0 for k1
# and k3
# (both are perpendicular to k2). Weight on k2 = e^(c sqrt 2) / (e^(c sqrt 2)
# + 2) >= 0.9
# <=> e^(c sqrt 2) >= 18 <=> c >= ln(18) / sqrt(2).
c_min = math.log(18) / math.sqrt(2)
w_at = look_up(c_min * K[1:2], K, V)[1][0, 1].item()
w_below = look_up(0.98 * c_min * K[1:2], K, V)[1][0, 1].item()
print(
    f"c_min = {c_min:.4f}: weight on k2 = {w_at:.4f}; at 0.98 c_min:"
    f" {w_below:.4f}"
)
assert abs(w_at - 0.9) < 1e-5 and w_below < 0.9
""", "hide-cell"),
md(r"""
**Exercise 2.** Attention without a mask treats its input as a *set*: shuffle the tokens and
the outputs are shuffled the same way, nothing else changes (*permutation equivariance*).
Show it for the layer `mha` on `x`; then show that the causal mask breaks it, so with the mask
order matters — but only through who may see whom, not through any notion of position.
"""),
code(r"""
# Solution
perm = torch.randperm(T, generator=torch.Generator().manual_seed(5))
with torch.no_grad():
    y_plain, y_plain_perm = mha(x), mha(x[:, perm])
    y_causal, y_causal_perm = mha(x, causal=True), mha(x[:, perm], causal=True)
equivariant = torch.allclose(y_plain_perm, y_plain[:, perm], atol=1e-6)
causal_equivariant = torch.allclose(
    y_causal_perm, y_causal[:, perm], atol=1e-6
)
print("no mask: shuffled input -> shuffled output:", equivariant)
print("causal:  shuffled input -> shuffled output:", causal_equivariant)
assert equivariant and not causal_equivariant
""", "hide-cell"),
md(r"""
**Exercise 3.** GPT-3 175B {cite:p}`brown2020language` has 96 layers of 96 heads and a context
of $T = 2048$. If its attention weights were stored in 16-bit floats, how many bytes would one
layer's weights take for one sequence? All 96 layers? And with a context four times longer?
"""),
code(r"""
# Solution: H * T^2 numbers of 2 bytes per layer; 4x the context is 16x the
# memory.
per_layer = 96 * 2048**2 * 2
print(
    f"one layer: {per_layer / 2**20:.0f} MiB; 96 layers:"
    f" {96 * per_layer / 2**30:.0f} GiB; T = 8192:"
    f" {96 * 96 * 8192**2 * 2 / 2**30:.0f} GiB"
)


# A check by the library itself: the weights that scaled_dot_product_attention
# returns at GPT-3's shapes (96 heads of width 128), on PyTorch's "meta"
# device, which computes shapes and dtypes but allocates no memory.
def weights_bytes(T_m):
    q_m = torch.empty(1, 96, T_m, 128, dtype=torch.float16, device="meta")
    _, w_m = scaled_dot_product_attention(q_m, q_m, q_m, return_weights=True)
    return w_m.nbytes


print(
    f"library, meta device: {weights_bytes(2048) / 2**20:.0f} MiB per layer"
    f" at T = 2048, {weights_bytes(8192) / 2**30:.0f} GiB at T = 8192"
)
assert weights_bytes(2048) == per_layer
assert weights_bytes(8192) == 16 * per_layer
""", "hide-cell"),
md(r"""
## Key points

- Attention is a soft dictionary look-up: scores $q \cdot k_j / \sqrt d$, a softmax over the keys,
  a weighted average of the values. In self-attention $Q$, $K$, $V$ are three projections of the
  same sequence, with a number of parameters that does not depend on its length.
- The variance of $q \cdot k$ is $d\,\sigma_q^2\sigma_k^2$: it grows linearly with the head width
  $d$, whatever the coordinates' scale. Dividing by $\sqrt d$ removes that growth. Without it the
  scores spread as $\sqrt d$, the softmax saturates into a hard look-up and its gradient,
  $\mathrm{diag}(a) - aa^\top$, vanishes. (A fresh GPT's scores are far smaller than 1; training
  makes them larger and the look-ups sharper.)
- Multi-head attention runs $H$ look-ups in $C/H$-dimensional slices for the same parameters
  and arithmetic as one head; `split_heads` and `merge_heads` are reshapes. The library's
  explicit path, its fused path and `torch.nn.MultiheadAttention` compute the same function.
- Cross-attention is the same function with keys and values from a second sequence. GPT is
  decoder-only: every attention layer is masked self-attention over one sequence.
- Attention costs $T^2$ in time, and in memory when the weights are stored; fused kernels keep
  memory linear in $T$ but not the time.
- Trained alone on Shakespeare (token embeddings, one attention layer, an output layer), one head
  ties the counted bigram and four heads beat it by about 0.05 nats, about 0.8 nats short of
  the best counted n-gram: without positions a query cannot tell the order of what it sees, and
  without a residual path the current character reaches the output only through the average.

## References

A soft window over a text, for handwriting {cite:p}`graves2013generating`; attention over the
states of an encoder, with an additive score {cite:p}`bahdanau2015neural`; attention without
recurrence for sentence pairs {cite:p}`parikh2016decomposable`; dropout
{cite:p}`srivastava2014dropout`; scaled dot-product,
multi-head and encoder–decoder attention in the Transformer {cite:p}`vaswani2017attention`; the
decoder-only GPT, GPT-2 and GPT-3 {cite:p}`radford2018improving,radford2019language,brown2020language`;
FlashAttention {cite:p}`dao2022flashattention`. Full entries are on the
[References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "02_attention.ipynb", CELLS)
