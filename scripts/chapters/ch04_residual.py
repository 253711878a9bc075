"""Source of chapters/04_residual.ipynb. Edit here, then:

    python scripts/chapters/ch04_residual.py && python scripts/run_notebooks.py chapters/04_residual.ipynb
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 4. Residual connections, LayerNorm and the transformer block

**Why.** Chapters 2 and 3 built masked self-attention: one layer in which every position gathers
information from the positions before it. A GPT stacks many such layers — GPT-2 small has 12,
GPT-3 96 — and a stack is harder to get working than any one layer. The signal that tells a
bottom layer how to change must travel back through every layer above it, and every token's
vector travels forward through all of them. Two pieces of plumbing make deep stacks of attention
trainable: *residual connections*, which make each layer add to a running representation instead
of replacing it, and *normalisation*, which rescales each token's vector to a standard size before
a layer reads it. Together with a small per-position network, the MLP, they make up the
transformer *block*. This chapter builds the block, measures what each piece does, and answers
with an experiment a question readers of transformer code ask again and again: why does GPT put
the LayerNorm *before* each sublayer, when the original Transformer put it after?
"""),
code(r"""
# errors shown on purpose print as "Type: message", without a traceback
%xmode Minimal
import json
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gptlib import set_seed, show
from gptlib.data import encode_text, get_batch, load_text
from gptlib.model import GPT, GPTConfig
from gptlib.block import MLP, Block, gelu_tanh
from gptlib.ladder import (
    build_model,
    ladder_summary,
    ladder_table,
    read_ladder,
    rung_gap,
)
from gptlib.ngram import ngram_loss
from gptlib.normalization import LayerNorm, RMSNorm
from gptlib.pretrain import TrainConfig, train
from gptlib.tokenizer import CharTokenizer
from gptlib.viz.ladder import plot_ladder

plt.rcParams["figure.dpi"] = 90
torch.set_printoptions(precision=4)
# The models in this chapter are tiny: more threads buy little, and on a busy
# machine they slow everything down.
torch.set_num_threads(1)
"""),
md(r"""
## The idea: every sublayer adds to a residual stream

A block reads the sequence of token vectors $x \in \mathbb{R}^{T \times C}$ — one row of $C$
features per position (a batch adds a leading dimension $B$) — and returns a tensor of the same
shape. GPT-2's block is

$$
\begin{aligned}
x' &= x + \mathrm{Attn}\big(\mathrm{LN}_1(x)\big),\\
x'' &= x' + \mathrm{MLP}\big(\mathrm{LN}_2(x')\big),
\end{aligned}
$$

where $\mathrm{Attn}$ is chapter 2's masked multi-head self-attention, $\mathrm{MLP}$ a two-layer
network applied to each position on its own, and $\mathrm{LN}_1, \mathrm{LN}_2$ layer
normalisations. The two "$x + \cdots$" are the **residual connections** (or *skip connections*)
{cite:p}`he2016deep`: a sublayer does not replace its input, it computes a change that is added to
it. Number the $2L$ sublayers of a stack of $L$ blocks $F_1, \dots, F_{2L}$ and call $x_k$ the
vector after the $k$-th; the additions unroll into a sum,

$$
x_{2L} \;=\; x_0 \;+\; \sum_{k=1}^{2L} F_k\big(\mathrm{LN}_k(x_{k-1})\big),
$$

where $x_0$ is the token embedding plus the position embedding. The running vector is called the
**residual stream**: each sublayer reads a normalised copy of it and writes its result into it by
addition. The sum shapes the gradient too. One step $x_k = x_{k-1} + F_k(\mathrm{LN}_k(x_{k-1}))$
has the Jacobian $I + J_k$, where $J_k = \partial F_k(\mathrm{LN}_k(x_{k-1})) / \partial x_{k-1}$
is the Jacobian of the sublayer's branch, so by the chain rule

$$
\begin{aligned}
\frac{\partial x_{2L}}{\partial x_k} &= (I + J_{2L})(I + J_{2L-1}) \cdots (I + J_{k+1}) \\
&= I + \sum_{j=k+1}^{2L} J_j + (\text{products of two or more } J\text{s}).
\end{aligned}
$$

The identity term carries the gradient of the loss from the top of the stack to every layer
unchanged, whatever the sublayers do. Without the skips, $x_k = F_k(\cdots)$ and the same
derivative is the bare product $J_{2L} J_{2L-1} \cdots J_{k+1}$ of $2L - k$ matrices, whose size
tends to grow or shrink geometrically with the number of factors unless each factor is kept near
size 1.

**Layer normalisation** {cite:p}`ba2016layer` standardises one position's vector
$x \in \mathbb{R}^C$ over its $C$ features:

$$
\mu = \frac{1}{C}\sum_{i=1}^{C} x_i, \qquad
\sigma^2 = \frac{1}{C}\sum_{i=1}^{C} (x_i - \mu)^2, \qquad
\mathrm{LN}(x)_i = \gamma_i\, \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i,
$$

with a learned gain $\gamma \in \mathbb{R}^C$ (initially 1), a learned bias
$\beta \in \mathbb{R}^C$ (initially 0) and $\epsilon = 10^{-5}$. The mean and variance are taken
over the features of *one* token at *one* position — never over other positions or other
sequences. Whatever the size of the vector in the stream, the sublayer reads it at a standard
size: mean 0 and variance 1 across its features, before $\gamma$ and $\beta$ (provided the vector
is not tiny next to $\sqrt{\epsilon}$; exercise 2 shows what happens when it is).

**The MLP** widens each position's vector to four times its width, applies a nonlinearity and
narrows it back: $\mathrm{MLP}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2$ with
$W_1 \in \mathbb{R}^{4C \times C}$ and $W_2 \in \mathbb{R}^{C \times 4C}$. Attention moves
information *between* positions; the MLP transforms each position's vector *on its own*.

- *Why four times.* The factor is inherited, not derived: the original Transformer had width
  $d_\text{model} = 512$ and an inner MLP width $d_\text{ff} = 2048$ {cite:p}`vaswani2017attention`;
  GPT-1 kept the ratio (768 and 3,072) {cite:p}`radford2018improving`, and GPT-2, which largely
  follows GPT-1's model {cite:p}`radford2019language`, keeps it too (3,072 in GPT-2 small). It makes the MLP the largest part of the block:
  $8C^2$ of its $12C^2$ weights, and per token $16C^2$ of the $24C^2$ floating-point operations
  (FLOPs) of the block's weight matrices — a matrix of $n$ weights costs $2n$ FLOPs per token,
  one multiply and one add each — against $4TC$ for the attention scores over a context of $T$
  (a cell below counts both).
- *Why GELU.* The Transformer's nonlinearity was the ReLU, $\max(0, z)$; GPT-1 used the
  GELU instead {cite:p}`hendrycks2016gaussian`, $\mathrm{GELU}(z) = z\,\Phi(z)$ with $\Phi$ the standard
  normal distribution function: the input weighted by the probability that a standard normal lies
  below it. Unlike the ReLU it is smooth at 0 and not exactly zero for negative inputs (it dips to
  about $-0.17$ near $z = -0.75$), so a negative pre-activation still passes a small gradient.
  Hendrycks and Gimpel found it improved on the ReLU in every task they tried; this chapter
  does not measure the difference. GPT-2's code computes the tanh approximation
  $\tfrac12 z \big(1 + \tanh\big(\sqrt{2/\pi}\,(z + 0.044715\,z^3)\big)\big)$, which `gelu_tanh`
  implements and a cell below compares with the exact $z\,\Phi(z)$.
- *Dropout* {cite:p}`srivastava2014dropout`, the last piece of the block's code, is a regulariser:
  in training mode it sets each element of a tensor to 0 with probability $p$ and multiplies the
  survivors by $1/(1-p)$, so that every element keeps its expected value; in evaluation mode it is
  the identity. GPT-1 used $p = 0.1$ on the residual branches, the embeddings and the attention
  weights {cite:p}`radford2018improving` (Hugging Face's GPT-2 configuration defaults to the same),
  and `gptlib` puts it in the same three places: at the end of each sublayer (before the
  addition), on the attention weights, and on the embeddings. This chapter trains with $p = 0$;
  the loss ladder below trains on less than one pass over the training plays, where there is
  little repetition for dropout to counter (training with it is not measured here).

The original Transformer {cite:p}`vaswani2017attention` normalised *after* the addition:

$$
x' = \mathrm{LN}_1\big(x + \mathrm{Attn}(x)\big), \qquad x'' = \mathrm{LN}_2\big(x' + \mathrm{MLP}(x')\big).
$$

This is **post-LN**; GPT-2's placement is **pre-LN** {cite:p}`radford2019language`. In post-LN
the stream itself is normalised twice per block, so the sum above no longer holds and no path from
the loss to a lower layer is a pure identity: every one passes through the normalisations of all
the blocks above. An experiment below trains both.

## The code

LayerNorm, written out (a test checks it against `torch.nn.LayerNorm`, forward and gradients):
"""),
code(r"""
show(LayerNorm.forward)
"""),
md(r"""
The MLP, with GPT-2's names (`c_fc` widens, `c_proj` projects back) and the GELU written out:
"""),
code(r"""
show(MLP.forward)
"""),
code(r"""
show(gelu_tanh)
"""),
md(r"""
How good is the approximation? On a fine grid, in double precision, against PyTorch's exact
`F.gelu` (the erf form, $z\,\Phi(z)$), and beside the ReLU:
"""),
code(r"""
z = torch.linspace(-10, 10, 2_000_001, dtype=torch.float64)
exact = F.gelu(z)  # z * Phi(z), through erf
error = (gelu_tanh(z) - exact).abs()
z_worst = z[error.argmax()].item()
print(
    f"max |tanh approximation - exact GELU| on [-10, 10]: "
    f"{error.max().item():.1e} (at z = {z_worst:.2f})"
)
print(
    f"GELU's minimum: {exact.min().item():.3f} at z = "
    f"{z[exact.argmin()].item():.2f}; ReLU's: 0 for every z <= 0"
)
assert 1e-4 < error.max().item() < 1e-3
assert abs(exact.min().item() + 0.170) < 1e-3
"""),
md(r"""
The two GELUs differ by less than $5 \times 10^{-4}$ on $[-10, 10]$ (beyond it both are within
$10^{-6}$ of $z$ or of 0; a test checks): small, but not zero, so a model trained with one runs
almost, not exactly, the same with the other.
"""),
md(r"""
And the block. `norm_position` chooses pre-LN or post-LN; `residual=False` removes the two
skip connections and keeps everything else — a switch that exists only for the experiments below.
"""),
code(r"""
show(Block.forward)
"""),
md(r"""
### The block's parameters, by hand

Every parameter of a block sits in one of six places. With $C$ the width:

| part | weights | biases | total |
|---|---|---|---|
| `attn.c_attn` (queries, keys, values: $C \to 3C$) | $3C^2$ | $3C$ | |
| `attn.c_proj` (mix the heads: $C \to C$) | $C^2$ | $C$ | attention: $4C^2 + 4C$ |
| `mlp.c_fc` ($C \to 4C$) | $4C^2$ | $4C$ | |
| `mlp.c_proj` ($4C \to C$) | $4C^2$ | $C$ | MLP: $8C^2 + 5C$ |
| `ln_1`, `ln_2` ($\gamma$ and $\beta$ each) | | | $4C$ |

$$
N_\text{block} = 12C^2 + 13C .
$$

The number of heads does not appear: splitting $C$ features into $H$ heads of $C/H$ changes how
the features are grouped, not how many weights there are. For $C = 64$ that is
$12 \cdot 4096 + 13 \cdot 64 = 49{,}984$; for GPT-2 small's $C = 768$ it is $7{,}087{,}872$, so
its 12 blocks hold 85 of its 124 million parameters.
"""),
code(r"""
def n_params(module):
    return sum(p.numel() for p in module.parameters())


block = Block(64, n_heads=4)
for name, child in block.named_children():
    print(f"{name:>5}: {n_params(child):>6,} parameters")
print(f"block: {n_params(block):,}")
for C, H in ((64, 4), (64, 16), (768, 12)):
    assert n_params(Block(C, H)) == 12 * C**2 + 13 * C, (C, H)
print("12 C^2 + 13 C for C = 768:", f"{12 * 768**2 + 13 * 768:,}")
"""),
md(r"""
What the MLP's 4x width costs, for this chapter's $C = 64$ with a context of
$T = 64$ and for GPT-2 small ($C = 768$, $T = 1024$), forward pass, per token:
"""),
code(r"""
def block_flops(C, T):
    # forward FLOPs per token: 2 per weight, plus q.k and weights.v scores
    return {
        "attention weights": 2 * 4 * C * C,
        "attention scores": 2 * 2 * T * C,
        "MLP weights": 2 * 8 * C * C,
    }


for C, T in ((64, 64), (768, 1024)):
    f = block_flops(C, T)
    share = f["MLP weights"] / sum(f.values())
    mlp = MLP(C)
    print(
        f"C = {C:>3}, T = {T:>4}: MLP {n_params(mlp):>9,} of the block's "
        f"{n_params(Block(C, 4)):>9,} parameters; "
        f"{share:.0%} of its {sum(f.values()):,} FLOPs per token"
    )
    assert n_params(mlp) == 8 * C**2 + 5 * C
"""),
md(r"""
## See it: the residual stream is a sum

Take a 6-block GPT (chapter 6 assembles it; here it only carries the blocks), record with forward
hooks what every attention and MLP sublayer returns, and compare the stream at the top with the
embedding plus all those writes. The model is untrained; the identity holds for any weights.
"""),
code(r"""
train_text, val_text = load_text("train"), load_text("val")
tok = CharTokenizer.train(train_text + val_text + load_text("test"))
train_ids, val_ids = encode_text(train_text, tok), encode_text(val_text, tok)
V = tok.vocab_size

set_seed(0)
model = GPT(
    GPTConfig(vocab_size=V, block_size=64, n_layer=6, n_head=4, n_embd=64)
)
writes = []  # what each sublayer adds to the stream, in order
hooks = [
    sub.register_forward_hook(
        lambda module, inputs, output: writes.append(output)
    )
    for blk in model.h
    for sub in (blk.attn, blk.mlp)
]
sample, _ = get_batch(
    val_ids, 1, 64, generator=torch.Generator().manual_seed(0)
)
with torch.no_grad():
    stream = model.hidden_states(
        sample
    )  # [x_0, after block 1, ..., after block 6]
for hook in hooks:
    hook.remove()
print(len(writes), "writes of shape", tuple(writes[0].shape))
"""),
md(r"""
**Prove it.** The top of the stream equals the embedding plus the twelve writes, and each block's
output equals its input plus its two writes. `Block.forward` builds pre-LN that way, so the check
is only worth something if it *can* fail: the function below runs the same decomposition on any
GPT, and we apply it to the same stack rebuilt post-LN and rebuilt without the skips, where the
sum must not hold. (It would also catch a `Block` that, say, normalised the stream in place.)
"""),
code(r"""
def stream_is_a_sum(model, x):
    # (x_top == x_0 + all writes, each block == its input + its two writes)
    writes = []
    hooks = [
        sub.register_forward_hook(lambda mod, inp, out: writes.append(out))
        for blk in model.h
        for sub in (blk.attn, blk.mlp)
    ]
    with torch.no_grad():
        states = model.hidden_states(x)
    for hook in hooks:
        hook.remove()
    total = torch.allclose(states[-1], states[0] + sum(writes), atol=1e-6)
    per_block = all(
        torch.allclose(
            states[i + 1],
            states[i] + writes[2 * i] + writes[2 * i + 1],
            atol=1e-6,
        )
        for i in range(len(model.h))
    )
    return total, per_block


def six_blocks(**changes):
    set_seed(0)
    return GPT(
        GPTConfig(
            vocab_size=V,
            block_size=64,
            n_layer=6,
            n_head=4,
            n_embd=64,
            **changes,
        )
    )


checks = {
    "pre-LN (GPT-2)": stream_is_a_sum(model, sample),
    "post-LN": stream_is_a_sum(six_blocks(norm_position="post"), sample),
    "pre-LN, no skips": stream_is_a_sum(six_blocks(residual=False), sample),
}
for name, (total, per_block) in checks.items():
    print(
        f"{name:>16}: x_12 == x_0 + all writes: {total!s:>5}; "
        f"each block adds exactly its two writes: {per_block}"
    )
assert checks["pre-LN (GPT-2)"] == (True, True)
assert not any(checks["post-LN"]) and not any(checks["pre-LN, no skips"])
"""),
code(r"""
t = 20  # one position of the sequence
rows = [stream[0][0, t]] + [w[0, t] for w in writes] + [stream[-1][0, t]]
sublayers = [f"{kind} {i + 1}" for i in range(6) for kind in ("attn", "mlp")]
labels = ["embedding $x_0$"] + sublayers + ["= top of stream"]
fig, ax = plt.subplots(figsize=(8, 4.2))
lim = max(r.abs().max().item() for r in rows)
im = ax.imshow(
    torch.stack(rows).numpy(),
    cmap="RdBu_r",
    vmin=-lim,
    vmax=lim,
    aspect="auto",
)
ax.axhline(len(rows) - 1.5, color="k", lw=1.5)
ax.set_yticks(range(len(rows)), labels, fontsize=8)
ax.set_xlabel("feature (64 per position)")
ax.set_title(
    f"Position {t}: the top row is the column sum of all the rows above it"
)
fig.colorbar(im, ax=ax, shrink=0.8)
plt.show()
"""),
md(r"""
At initialisation the writes are faint next to the embedding. That is deliberate. The GPT-2 paper
scales the weights of the residual layers at initialisation by $1/\sqrt{N}$, where $N$ is the
number of residual layers {cite:p}`radford2019language`, and gives no base value. The code that
`gptlib` follows — Hugging Face's `GPT2Model` (its `initializer_range` is 0.02) and nanoGPT
{cite:p}`karpathy2022nanogpt` — draws every weight with standard deviation 0.02 and every `c_proj`
(the layers that write into the stream) with $0.02/\sqrt{2L}$, counting $N = 2L$ residual layers,
two per block. Each write's variance is then about proportional to $1/(2L)$, so the sum of the
$2L$ writes has about the same size however deep the stack. Training makes the writes grow
(exercise 3 looks).

## Prove it: gradients through 24 blocks, with and without the skips

Now the experiment the equations above predict. Build a GPT with 24 blocks, take one batch of real
text, compute the loss and its gradient *at initialisation*, and measure the size (Euclidean norm)
of the gradient of each block's parameters — the signal each block would learn from. Four variants
of the same stack: with and without the residual connections, with and without the LayerNorms
inside the blocks. Everything else — weights, data, the final LayerNorm and the output layer — is
the same. (`GPT` gives GPT-2's initialisation; the variants are made by flipping `Block`'s
`residual` switch and replacing the norms with `nn.Identity`.)
"""),
code(r"""
def gradient_profile(depth, residual=True, norms=True, seed=0, **config):
    # Per-block gradient norms (bottom block first) and the stream, for
    # one batch at init.
    set_seed(seed)
    model = GPT(
        GPTConfig(
            vocab_size=V,
            block_size=64,
            n_layer=depth,
            n_head=4,
            n_embd=64,
            **config,
        )
    )
    for blk in model.h:
        blk.residual = residual  # x + F(...)  or just  F(...)
        if not norms:
            blk.ln_1 = blk.ln_2 = (
                nn.Identity()
            )  # no normalisation inside the blocks
    x, y = get_batch(
        train_ids, 8, 64, generator=torch.Generator().manual_seed(seed)
    )
    _, loss = model(x, y)
    loss.backward()
    grads = [
        torch.cat([p.grad.flatten() for p in blk.parameters()]).norm().item()
        for blk in model.h
    ]
    with torch.no_grad():
        states = model.hidden_states(x)
    return grads, states


def position_similarity(h):
    # Mean cosine similarity of the vectors of two positions of a
    # sequence; h: (B, T, C)
    u = h / h.norm(dim=-1, keepdim=True)
    cos = u @ u.transpose(1, 2)  # (B, T, T), ones on the diagonal
    T = h.size(1)
    return ((cos.sum(dim=(1, 2)) - T) / (T * (T - 1))).mean().item()


VARIANTS = {
    (True, True): "residual + LayerNorm (GPT-2)",  # (residual, norms)
    (True, False): "residual, no norms",
    (False, True): "LayerNorm, no residual",
    (False, False): "neither",
}
STYLES = ("C0o-", "C2s--", "C1^-", "C3x-")
DEPTH = 24
runs = {key: gradient_profile(DEPTH, *key) for key in VARIANTS}
for key, label in VARIANTS.items():
    g = runs[key][0]
    ratio = g[0] / g[-1]
    shown = f"{ratio:.1f}" if ratio > 1e-30 else "below 1e-30 (it underflowed)"
    print(f"{label:>29}: gradient of bottom block / top block = {shown}")
"""),
code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
blocks = np.arange(1, DEPTH + 1)
for (key, label), style in zip(VARIANTS.items(), STYLES):
    grads, states = runs[key]
    g = np.array(grads)
    ax1.semilogy(blocks, np.where(g > 0, g, np.nan), style, ms=3, label=label)
    if key != (
        False,
        False,
    ):  # (without either, the vectors shrink to exactly 0)
        ax2.plot(
            [position_similarity(h) for h in states], style, ms=3, label=label
        )
ax1.set_xlabel("block (1 = bottom, next to the embeddings)")
ax1.set_ylabel("norm of the block's parameter gradient")
ax1.set_title("Gradient reaching each block at initialisation")
ax1.legend(fontsize=8)
ax2.set_xlabel("layer (0 = embeddings)")
ax2.set_ylabel("mean cosine similarity of two positions")
ax2.set_title("How alike the positions' vectors are")
ax2.set_ylim(-0.05, 1.05)
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()
"""),
md(r"""
Three different things happened.

- **With the residual connections** — with or without norms — every block gets a gradient of
  about the same size, from the top of the stack to the bottom: the identity path at work.
- **Without residuals and without norms** ("neither") the gradient falls by orders of magnitude per
  block and soon underflows to exactly zero (the curve stops): each sublayer at GPT-2's
  initialisation *shrinks* its input, and the gradient reaching a block is a product of one such
  shrinking factor per sublayer above it. This is the textbook vanishing gradient.
- **Without residuals but with LayerNorm** the gradient does *not* vanish at this depth: each norm
  scales its input back up to variance 1, so the factors of the product stay near size 1. Something
  else breaks instead (right panel): after a few blocks, the vectors of all positions of a sequence
  point the same way. At initialisation the attention scores are all close to zero (queries and
  keys come from weights of size 0.02), so the attention weights are close to uniform and each
  attention sublayer replaces every position by an average over its prefix; repeated, the
  averaging makes the positions indistinguishable, and nothing at the top can tell which token
  stood where. With a skip connection the average is *added* to the position's own vector, which
  survives. This is the *rank collapse* that {cite:t}`dong2021attention` proved for pure
  attention: without skip connections, a stack of self-attention layers drives the matrix of the
  positions' vectors towards rank 1 (every row the same) doubly exponentially fast in depth, and
  skip connections prevent it. Their theorem is about attention alone; in our stack the MLPs and
  the LayerNorms did not prevent the collapse at initialisation, and the skips did.

The asserts state these findings with wide margins, and check the near-uniform attention on the
first block of a fresh model:
"""),
code(r"""
g = {key: np.array(runs[key][0]) for key in VARIANTS}
sim_top = {
    key: position_similarity(runs[key][1][-1])
    for key in VARIANTS
    if key != (False, False)
}
for key in ((True, True), (True, False)):  # residual: flat within a factor 3
    assert g[key].max() / g[key].min() < 3, key
neither, norms_only = g[(False, False)], g[(False, True)]
assert neither[0] < 1e-10 * neither[-1]  # neither: vanishes, > 10 orders
assert (
    1 / 20 < norms_only[0] / norms_only[-1] < 20
)  # LayerNorm only: no vanishing
assert sim_top[(False, True)] > 0.95  # ... but the positions collapse
assert max(sim_top[(True, True)], sim_top[(True, False)]) < 0.3
print(
    "similarity of two positions at the top:",
    {VARIANTS[k]: round(v, 2) for k, v in sim_top.items()},
)

with torch.no_grad():
    blk = model.h[0]  # the fresh 6-block model from above
    _, weights = blk.attn(
        blk.ln_1(stream[0]), causal=True, return_weights=True
    )  # (1,H,T,T)
prefix_average = torch.tril(torch.ones(64, 64)) / torch.arange(1, 65)[:, None]
near_uniform = (weights - prefix_average).abs().max().item() < 0.05
print(
    "attention weights at initialisation within 0.05 of a plain prefix"
    " average:",
    near_uniform,
)
assert near_uniform
"""),
md(r"""
So the precise statement is not "residual connections prevent vanishing gradients". A residual
connection gives every layer an identity path: gradients arrive at full size *and* each position
keeps its own vector, whatever the sublayers do at the start of training. Normalisation without
the skips can keep the gradient's size up (and only while the signal is large compared to
$\sqrt{\epsilon}$ — exercise 2), but it cannot keep the positions apart. {cite:t}`he2016deep` made
the same observation for image networks: their deep networks without skips trained worse even
though, thanks to batch normalisation, their gradients had healthy norms.

## LayerNorm, not BatchNorm: statistics per token

Batch normalisation {cite:p}`ioffe2015batch` normalises each *feature* by its mean and variance
over the batch — for sequences, over all $B \times T$ positions of the batch — and keeps running
averages of those statistics to use at inference. It made deep image networks trainable; for a
language model it is the wrong choice, for three reasons:

1. **It mixes positions.** The statistics that normalise position $t$ include the positions after
   $t$, so position $t$'s output depends on the future — a leak around the causal mask of chapter 3.
2. **It depends on the batch.** A sequence's output changes with the other sequences it is batched
   with, and with how much padding they carry.
3. **It fails at generation.** Generating with a KV cache feeds one new token of one sequence at a
   time: one value per feature, no variance to compute. In evaluation mode BatchNorm falls back on
   its running averages from training, which is a different function from the one it trained as.

LayerNorm's statistics come from the one vector being normalised, so none of this can happen. The
first and third reasons, checked:
"""),
code(r"""
set_seed(0)
C = 64
h = torch.randn(4, 16, C)  # activations (B, T, C)
h_future = h.clone()
h_future[:, -1] += 3.0  # change only the LAST position of every sequence
bn = nn.BatchNorm1d(C)  # per feature, over (B, T); it wants (B, C, T)
ln = LayerNorm(C)
with torch.no_grad():
    bn_pos0 = [
        bn(a.transpose(1, 2)).transpose(1, 2)[:, 0] for a in (h, h_future)
    ]
    ln_pos0 = [ln(a)[:, 0] for a in (h, h_future)]
print("position 0 changed when the last position changed")
print("  BatchNorm:", not torch.equal(*bn_pos0))
print("  LayerNorm:", not torch.equal(*ln_pos0))
assert not torch.equal(*bn_pos0) and torch.equal(*ln_pos0)
"""),
code(r"""
one_token = torch.randn(1, 1, C)  # generation: one sequence, one new token
y = ln(one_token)
print(
    f"LayerNorm on one token: |mean| {abs(y.mean().item()):.4f}, "
    f"std {y.std(unbiased=False).item():.4f}"
)
bn(
    one_token.transpose(1, 2)
)  # BatchNorm in training mode: nothing to average over
""", "raises-exception"),
md(r"""
### RMSNorm: LayerNorm without the centring

{cite:t}`zhang2019root` found that the re-centring ($-\mu$, and with it the bias $\beta$) can be
dropped without hurting the models they trained, leaving a division by the root mean square:

$$
\mathrm{RMSNorm}(x)_i = \gamma_i\,\frac{x_i}{\sqrt{\frac{1}{C}\sum_{j=1}^{C} x_j^2 + \epsilon}} .
$$

It is cheaper (one statistic instead of two); T5 and LLaMA, among others, use it. For a vector whose mean is already 0 the two norms agree — so LayerNorm is RMSNorm applied
to the centred vector. Both of ours equal PyTorch's modules, given the same gains and biases:
"""),
code(r"""
show(RMSNorm.forward)
"""),
code(r"""
set_seed(1)
x = torch.randn(2, 5, C) * 3 + 1  # not centred, not unit scale
ours_ln, torch_ln = LayerNorm(C), nn.LayerNorm(C)
ours_rms, torch_rms = RMSNorm(C), nn.RMSNorm(C)
with torch.no_grad():
    for p in (ours_ln.weight, ours_ln.bias, ours_rms.weight):
        p.normal_()
    torch_ln.weight.copy_(ours_ln.weight)
    torch_ln.bias.copy_(ours_ln.bias)
    torch_rms.weight.copy_(ours_rms.weight)
    centred = x - x.mean(dim=-1, keepdim=True)
    checks = {
        "LayerNorm == torch.nn.LayerNorm": torch.allclose(
            ours_ln(x), torch_ln(x), atol=1e-5
        ),
        "RMSNorm == torch.nn.RMSNorm": torch.allclose(
            ours_rms(x), torch_rms(x), atol=1e-5
        ),
        "RMSNorm(x - mean) == LayerNorm(x)": torch.allclose(
            RMSNorm(C, eps=1e-5)(centred), LayerNorm(C)(x), atol=1e-5
        ),
    }
    y = LayerNorm(C)(x)
for name, ok in checks.items():
    print(f"{name:>34}: {ok}")
std = y.std(dim=-1, unbiased=False)
print(
    "after LayerNorm, every token: |mean| <="
    f" {y.mean(dim=-1).abs().max().item():.4f}, std in"
    f" [{std.min().item():.4f}, {std.max().item():.4f}]"
)
assert all(checks.values())
"""),
md(r"""
## Pre-LN against post-LN: train both

Where should the norm go? Train the same model both ways. A 6-block GPT ($C = 64$, 4 heads,
context 64) learns to predict the characters of the training plays for 250 steps of
`gptlib.pretrain.train` (chapter 7 explains the loop): AdamW, batches of 8 windows of 64
characters, the gradient clipped to norm 1, the learning rate decayed along a cosine from its
peak. Two runs compare the placements at a high peak learning rate of $3 \times 10^{-3}$ reached
at once, without warm-up; a third gives post-LN a gentler schedule, the kind the original
Transformer was trained with {cite:p}`vaswani2017attention`: a lower peak of $2 \times 10^{-3}$,
reached by a linear **warm-up** over the first 100 steps. All three start from the same weights
(one seed; the two placements have the same parameters) and see the same batches.
"""),
code(r"""
import time

STEPS = 250


def train_char_gpt(norm_position, lr, warmup_steps=0, seed=0):
    set_seed(seed)
    model = GPT(
        GPTConfig(
            vocab_size=V,
            block_size=64,
            n_layer=6,
            n_head=4,
            n_embd=64,
            norm_position=norm_position,
            fused_attention=True,
        )
    )
    cfg = TrainConfig(
        steps=STEPS,
        batch_size=8,
        block_size=64,
        lr=lr,
        warmup_steps=warmup_steps,
        eval_batches=10,
        seed=seed,
    )
    return model, train(model, train_ids, cfg, val_data=val_ids)


RUNS = {
    ("pre", 3e-3, 0): "pre-LN, lr 3e-3",
    ("post", 3e-3, 0): "post-LN, lr 3e-3",
    ("post", 2e-3, 100): "post-LN, lr 2e-3 after 100-step warm-up",
}
trained, results = {}, {}
for key, label in RUNS.items():
    start = time.perf_counter()
    trained[key], results[key] = train_char_gpt(*key)
    print(
        f"{label:>39}: validation loss {results[key].final_val_loss:.4f} "
        f"({time.perf_counter() - start:.0f} s)"
    )
""", "nbval-ignore-output"),
md(r"""
(`fused_attention=True` computes chapter 2's attention with PyTorch's fused kernel: the same
function, tested equal, and faster.) The script `scripts/experiments/norm_position.py` ran the
same training over three seeds and more schedules (below); the three runs here are its seed-0
runs, retrained so that we can look inside the models:
"""),
code(r"""
with open("../data/results/norm_position.json") as f:
    norm_runs = json.load(f)
by_key = {
    (r["norm_position"], r["lr"], r["warmup_steps"], r["seed"]): r
    for r in norm_runs["runs"]
}
final = {key: results[key].final_val_loss for key in RUNS}
for key, label in RUNS.items():
    same = abs(final[key] - by_key[(*key, 0)]["final_val_loss"]) < 0.02
    print(f"{label:>39}: as in the results file (within 0.02): {same}")
    assert same, key
"""),
md(r"""
Two yardsticks from chapter 1 for these runs, both counted with `gptlib.ngram.ngram_loss`: the
*unigram* — letter frequencies, no context, the best that a model ignoring the context can do —
and the counted *bigram*, which reads one character back. Both are scored, as in chapter 1 and
the loss ladder, on every validation character (scoring only the first 100,000 characters, as
an earlier version of chapter 1 did, gives 3.370 for the unigram):
"""),
code(r"""
train_list, val_list = train_ids.tolist(), val_ids.tolist()
unigram = ngram_loss(train_list, val_list, 1, V, alpha=0.1).loss
unigram_100k = ngram_loss(train_list, val_list[:100_000], 1, V, alpha=0.1).loss
ladder = read_ladder("../data/results/ladder.json")
rungs = {r["rung"]: r for r in ladder_summary(ladder, upto_chapter=4)}
bigram = rungs["bigram"]["mean"]
print(f"unigram, all {len(val_list):,} validation characters: {unigram:.3f}")
print(f"unigram, their first 100,000 only: {unigram_100k:.3f}")
print(
    f"the ladder's unigram rung: {rungs['unigram']['mean']:.3f}; "
    f"its counted bigram: {bigram:.3f}"
)
assert abs(unigram - rungs["unigram"]["mean"]) < 1e-3
assert abs(unigram_100k - 3.370) < 5e-4  # the text scored changes it
assert abs(unigram - norm_runs["settings"]["unigram_val_loss"]) < 1e-3

fig, ax = plt.subplots(figsize=(8, 3.8))
for key, style in zip(RUNS, ("C0-", "C3-", "C3--")):
    hist = results[key].history
    loss = np.convolve(
        [r["train_loss"] for r in hist], np.ones(10) / 10, mode="valid"
    )
    ax.plot(np.arange(10, len(hist) + 1), loss, style, label=RUNS[key])
ax.axhline(unigram, color="gray", ls=":", label="counted unigram")
ax.axhline(bigram, color="gray", ls="-.", label="counted bigram")
ax.set_ylim(2.3, 4.4)
ax.set_xlabel("step")
ax.set_ylabel("training loss (mean of 10 steps)")
ax.set_title(
    "Same model, data and start; the norm's position and the schedule differ"
)
ax.legend(fontsize=8)
plt.show()
"""),
md(r"""
Pre-LN trains (after a bump in its first twenty steps, which it recovers from). Post-LN at the
same learning rate learns the letter frequencies in its first few dozen steps and then nothing
more: its loss stays on the unigram line. With the gentler schedule, post-LN trains as well — the
placement is not broken, it tolerates a narrower range of learning rates. None of the three is a
good model yet: 250 steps of 8 windows are 128,000 characters, 4% of the loss ladder's budget, and
after them even the pre-LN model (a validation loss of 2.54, mean of three seeds; `train`'s
estimate on 10 batches of validation windows) has not caught up with the counted bigram: on
average it is above the bigram's loss, and its best seed only level with it.
This experiment asks whether training takes off at a given learning rate, not how good a model
gets; the loss ladder at the end of the chapter measures that.

What does a stuck post-LN model compute? **Prove it**, on the validation plays:
"""),
code(r"""
stuck = trained[("post", 3e-3, 0)]
with torch.no_grad():
    probs = stuck(sample)[0].softmax(dim=-1)  # (1, 64, V)
    same_everywhere = (
        probs - probs.mean(dim=1, keepdim=True)
    ).abs().max().item() < 1e-3
    top_similarity = {
        key: position_similarity(trained[key].hidden_states(sample)[-1])
        for key in RUNS
    }
print(
    "post-LN at 3e-3 is no better than letter frequencies:",
    final[("post", 3e-3, 0)] > unigram - 0.1,
)
print(
    "... and predicts the same distribution at every position:",
    same_everywhere,
)
for key, label in RUNS.items():
    print(
        f"{label}: beats the unigram by more than 0.3 nats:"
        f" {final[key] < unigram - 0.3}, positions collapsed:"
        f" {top_similarity[key] > 0.99}"
    )
pre_losses = [by_key[("pre", 3e-3, 0, s)]["final_val_loss"] for s in (0, 1, 2)]
pre_mean = np.mean(pre_losses)
print(
    f"pre-LN after 250 steps, mean of 3 seeds: {pre_mean:.2f}, "
    f"above the counted bigram's {bigram:.2f}: {pre_mean > bigram}"
)
assert final[("post", 3e-3, 0)] > unigram - 0.1 and same_everywhere
assert final[("pre", 3e-3, 0)] < unigram - 0.3
assert final[("post", 2e-3, 100)] < unigram - 0.3
assert top_similarity[("post", 3e-3, 0)] > 0.99
assert (
    max(top_similarity[("pre", 3e-3, 0)], top_similarity[("post", 2e-3, 100)])
    < 0.99
)
assert pre_mean > bigram + 0.03 and abs(min(pre_losses) - bigram) < 0.02
"""),
md(r"""
The symptom is the one we met at initialisation in the stack *without* residual connections: the
vectors of all positions have collapsed onto one, so the model makes the same prediction whatever
the context. But post-LN keeps its skips, and it did not start collapsed (its positions are as
distinct at initialisation as pre-LN's, as the probe below prints): the collapse happened during
training. So the explanation of that experiment — uniform attention averaging the positions
together, with nothing to preserve each one's own vector — does not carry over.

{cite:t}`xiong2020layer` offer an explanation for post-LN's trouble. With mean-field theory they
show that at initialisation the expected gradient of the parameters near the output layer of a
post-LN transformer is large and does not shrink with depth, while in pre-LN it shrinks like
$1/\sqrt{L}$; a large learning rate applied to those large gradients makes training
unstable. Does our post-LN model show that at initialisation? Measure each block's gradient, as
in the 24-block experiment, for the two placements of this section's 6-block model:
"""),
code(r"""
init_grads, init_similarity = {}, {}
for position in ("pre", "post"):
    grads, states = gradient_profile(6, norm_position=position)
    init_grads[position] = np.array(grads)
    init_similarity[position] = position_similarity(states[-1])
    print(
        f"{position:>4}-LN at init, gradient norm per block (bottom first): "
        + " ".join(f"{g:.3f}" for g in grads)
    )
    print(
        f"      positions' similarity at the top: "
        f"{init_similarity[position]:.2f}"
    )
top_ratio = init_grads["post"][-1] / init_grads["pre"][-1]
print(f"top block, post-LN / pre-LN: {top_ratio:.2f}")
assert max(init_similarity.values()) < 0.5  # neither starts collapsed
assert top_ratio < 0.2  # post-LN's top block gets the SMALLER gradient
assert init_grads["post"][0] > 10 * init_grads["post"][1:].max()
"""),
md(r"""
Not with our initialisation. Under GPT-2's small initial weights, post-LN's *top* blocks receive
gradients about twenty times smaller than pre-LN's; only its bottom block gets a large one (the
first norm divides the small embedding-plus-write by its standard deviation, and the backward
pass multiplies by the same large factor). Xiong et al.'s analysis makes its own assumptions
about the initialisation; under GPT-2's $0.02$ weights this measurement does not reproduce its
prediction. So this chapter shows *what* goes wrong with post-LN at a high learning rate without
warm-up — its positions collapse during training and it ends at the unigram — and *what*
avoids it (below), but not the mechanism of the collapse; tracing it would need a look at the
first training steps that this chapter does not take.

The warm-up is not Xiong et al.'s remedy: it was already standard practice for post-LN (the
original Transformer warmed up over 4,000 steps {cite:p}`vaswani2017attention`), and their theory
explains why post-LN needs it. Their remedy is the placement: put the norms inside the residual
branches (pre-LN), and the warm-up can be dropped; they trained pre-LN transformers without one
to results comparable with their post-LN baselines, in less time. The third run above changed two
things at once, the peak and the warm-up. The script's runs separate them, three seeds each; a
run counts as *trained* when its validation loss ends more than 0.3 nats below the unigram's,
and as *stuck* when it ends within 0.1 nats of it with its positions collapsed at the top
(similarity above 0.99):
"""),
code(r"""
def outcome(run):
    if run["final_val_loss"] < unigram - 0.3:
        return "trained"
    collapsed = run["top_similarity"] > 0.99
    if collapsed and run["final_val_loss"] > unigram - 0.1:
        return "stuck"
    return "between"


seeds = norm_runs["settings"]["seeds"]
grid = [tuple(g) for g in norm_runs["settings"]["grid"]]
outcomes = {}
print(
    f"{'placement':>9} {'peak lr':>8} {'warm-up':>8}  trained  stuck   "
    f"val loss per seed (250 steps)"
)
for position, lr, warmup in grid:
    runs_here = [by_key[(position, lr, warmup, s)] for s in seeds]
    found = outcomes[(position, lr, warmup)] = [outcome(r) for r in runs_here]
    losses = "  ".join(f"{r['final_val_loss']:.3f}" for r in runs_here)
    print(
        f"{position + '-LN':>9} {lr:>8.0e} {warmup:>8}  "
        f"{found.count('trained')} of {len(seeds)}   "
        f"{found.count('stuck')} of {len(seeds)}   {losses}"
    )
assert len(seeds) >= 3


def n_outcome(position, lr, warmup, what):
    return outcomes[(position, lr, warmup)].count(what)


def losses_of(position, lr, warmup):
    return [by_key[(position, lr, warmup, s)]["final_val_loss"] for s in seeds]


assert n_outcome("post", 3e-3, 0, "stuck") == 3
assert n_outcome("post", 2e-3, 0, "stuck") == 2
assert n_outcome("post", 1e-3, 0, "trained") == 3
assert n_outcome("post", 2e-3, 100, "trained") == 3
assert n_outcome("post", 3e-3, 100, "trained") == 1
assert n_outcome("post", 3e-3, 100, "stuck") == 1
assert all(
    o == "trained" for k, v in outcomes.items() if k[0] == "pre" for o in v
)
# post-LN at 1e-3 trains, but slower than pre-LN at 3e-3
assert min(losses_of("post", 1e-3, 0)) > max(losses_of("pre", 3e-3, 0)) + 0.05
# pre-LN at 1e-2: trained either way, clearly better with the warm-up
assert min(losses_of("pre", 1e-2, 0)) > max(losses_of("pre", 1e-2, 100)) + 0.2
"""),
md(r"""
Over three seeds, post-LN without warm-up was stuck at a peak of $3 \times 10^{-3}$ in 3 runs of
3 and at $2 \times 10^{-3}$ in 2 of 3; at $10^{-3}$ it trained every time, but more slowly (2.71 to
2.98 after 250 steps, against pre-LN's 2.48 to 2.59 at $3 \times 10^{-3}$). The 100-step warm-up
rescued $2 \times 10^{-3}$ (3 of 3) but not $3 \times 10^{-3}$: one seed trained, one was stuck and
one ended in between, 0.11 nats below the unigram. Pre-LN trained in all 12 of its runs, with or
without warm-up, up to $10^{-2}$ — but at $10^{-2}$ without warm-up it ended far worse (2.83 to
2.87) than with one (2.45 to 2.50). So a warm-up widened post-LN's range of usable learning
rates (the behaviour Xiong et al.'s analysis predicts, although the gradient measurement
above does not show their mechanism at this initialisation), but did not make it as forgiving
as pre-LN; and pre-LN
still profits from a warm-up at a high learning rate.

GPT-2 put the norms in front of the sublayers and added a last LayerNorm before the output layer
{cite:p}`radford2019language`; GPT-3 was still trained with a warm-up {cite:p}`brown2020language`
— pre-LN makes the schedule forgiving, not unnecessary.
"""),
md(r"""
## The loss ladder so far

Chapters 1 to 3 put every model of the book on one yardstick: the validation loss (nats per
character, on every 64-character window of the validation plays) of the minimal model of each
chapter, each trained under one budget — 1,500 steps of 32 windows, 3.07 million characters, with
the learning rate that was best on validation at seed 0 — at three seeds (`scripts/experiments/ladder.py`,
read from `data/results/ladder.json`). Chapter 4 adds four rungs, each one change to the rung
before it: **+ MLP** (chapter 2's four heads followed by an MLP; no skip, no norm), **+ residual
connections**, **+ LayerNorm** (pre-LN: with it the rung is one complete GPT-2 block) and
**3 blocks**. None of them has positions yet; chapter 5 adds them.
"""),
code(r"""
print(ladder_table(ladder, upto_chapter=4))
plot_ladder(ladder, chapter=4)
plt.show()
"""),
md(r"""
Each of chapter 4's additions, against the rung it builds on (for the MLP that is chapter 2's
four causal heads; chapter 3's unmasked rung was a detour). The asserts below use `rung_gap`, the
worst case over seeds, and require a claimed gain to exceed the spread between seeds (and the
MLP's to stay within it):

- **+ MLP: no real gain at this budget** — 2.423 against the four heads' 2.430, a gain of 0.006
  nats, no more than the spread between seeds (0.007; every seed is below every seed of the four
  heads, but by as little as 0.002). Why is looked at below.
- **+ residual connections: 0.057 nats** (2.366), the first clear step.
- **+ LayerNorm: 0.020 nats** (2.347). Small, but more than twice the largest seed spread of
  these rungs (0.008).
- **3 blocks: 0.43 nats** (1.915), the largest step of the chapter.

Against chapter 1's counted rungs: one full block (2.347) beats the counted bigram by more than
0.1 nats — trained to the ladder's budget, this chapter's pre-LN block is not worse than the
bigram, as the 250-step runs above still were — and three blocks beat it by more than 0.5. But
**no rung of this chapter reaches the best counted n-gram**: three blocks are more than 0.2 nats
behind it, with 91,632 parameters against the millions of entries of the n-gram's table (the
cell prints the gaps; the table above, the sizes).

"""),
code(r"""
STEPS_4 = [
    ("mlp", "attn-4heads"),
    ("residual", "mlp"),
    ("layernorm", "residual"),
    ("3-blocks", "layernorm"),
]
gain, worst, spread = {}, {}, {}
for better, worse in STEPS_4:
    key = (better, worse)
    gain[key] = rungs[worse]["mean"] - rungs[better]["mean"]
    worst[key] = rung_gap(ladder, better, worse)
    spread[key] = max(rungs[better]["spread"], rungs[worse]["spread"])
    print(
        f"{better:>9} vs {worse:<11}: mean gain {gain[key]:+.3f}, "
        f"worst case over seeds {worst[key]:+.3f}, "
        f"largest seed spread {spread[key]:.3f}"
    )
for name in ("layernorm", "3-blocks"):
    for baseline in ("bigram", "ngram"):
        print(
            f"{name:>9} vs counted {baseline:<6}: worst case "
            f"{rung_gap(ladder, name, baseline):+.3f}"
        )
spread_max = max(spread.values())
assert spread_max < 0.01  # seeds agree to within 0.01 nats on every rung
# + MLP: every seed is below every seed of the four heads, but by no more
# than the seed spread: no gain worth the name
assert 0 < worst[("mlp", "attn-4heads")] < spread[("mlp", "attn-4heads")]
assert gain[("mlp", "attn-4heads")] < 0.01
# + residual, + LayerNorm, 3 blocks: gains larger than any seed spread
assert worst[("residual", "mlp")] > 0.05 > 5 * spread_max
assert worst[("layernorm", "residual")] > max(0.015, 2 * spread_max)
assert worst[("3-blocks", "layernorm")] > 0.4
# the counted n-grams of chapter 1
assert rung_gap(ladder, "layernorm", "bigram") > 0.1
assert rung_gap(ladder, "3-blocks", "bigram") > 0.5
assert rung_gap(ladder, "ngram", "3-blocks") > 0.2  # the n-gram still wins
assert rungs["ngram"]["parameters"] > 1_000_000  # "millions of entries"
"""),
md(r"""
Why does the MLP add nothing, and LayerNorm so little? The results file also holds every
learning rate tried for each rung (seed 0; the rung's final runs use the best). Side by side:
"""),
code(r"""
def sweep(name):  # learning rate -> validation loss of seed 0
    return {
        r["lr"]: r["val_loss"]
        for r in ladder["runs"]
        if r["rung"] == name and r["seed"] == 0
    }


names = ("attn-4heads", "mlp", "residual", "layernorm")
sweeps = {name: sweep(name) for name in names}
lrs = sorted(set().union(*sweeps.values()))
print("peak lr " + "".join(f"{name:>13}" for name in names))
for lr in lrs:
    row = "".join(
        f"{sweeps[n][lr]:>13.3f}" if lr in sweeps[n] else f"{'-':>13}"
        for n in names
    )
    print(f"{lr:>7g} {row}")
budget = ladder["settings"]["budget"]
seen = budget["steps"] * budget["batch_size"] * budget["block_size"]
print(
    f"characters trained on: {seen:,}, "
    f"{seen / len(train_ids):.2f} passes over the training plays"
)


def both(a, b):  # the learning rates tried for both rungs
    return sorted(set(sweeps[a]) & set(sweeps[b]))


best = {n: min(sweeps[n], key=sweeps[n].get) for n in names}
mlp_behind = [lr for lr in both("mlp", "attn-4heads") if lr != best["mlp"]]
# the MLP is behind the four heads at every learning rate but its best ...
assert len(mlp_behind) >= 3
assert all(sweeps["mlp"][lr] > sweeps["attn-4heads"][lr] for lr in mlp_behind)
# ... and at the largest one it collapses to letter frequencies
assert sweeps["mlp"][max(sweeps["mlp"])] > unigram - 0.1
# the skips help at every learning rate
assert all(
    sweeps["residual"][lr] < sweeps["mlp"][lr] - 0.04
    for lr in both("residual", "mlp")
)
# LayerNorm: a large gain at the smallest learning rate, a small one at
# each rung's best
low = min(both("layernorm", "residual"))
assert sweeps["residual"][low] - sweeps["layernorm"][low] > 0.1
assert (
    sweeps["residual"][best["residual"]] - min(sweeps["layernorm"].values())
    < 0.03
)
assert seen < len(train_ids)  # less than one pass
"""),
md(r"""
- **The MLP slows training down.** Without a skip connection it makes the network one two-layer
  stage deeper, and the signal and the gradient must pass through it. At every learning rate but
  its best the MLP rung is *worse* than the four heads without it, and at the largest it
  collapses to the unigram's loss; only at its best does it draw level. At this budget the harder
  optimisation appears to cancel whatever the MLP adds. (Without the skip the MLP also sees only
  what the one attention layer hands it: a weighted average over the characters so far, in which
  the current character is one term among many, never its vector on its own.)
- **The residual connections help at every learning rate**, by 0.04 nats or more.
- **LayerNorm's gain depends on the learning rate**: at $10^{-3}$ it is worth more than 0.1 nats,
  at each rung's best learning rate 0.02. The norm makes the block train well over a wide range of
  learning rates; choosing the learning rate for each rung, as the ladder does, recovers most of
  the difference without it. (Why the gap nearly closes at the best learning rate is not measured
  here; the 24-block experiment above showed where norms matter most, in deep stacks.)

The same cell shows that the ladder's models see 3.07 million characters, 0.87 passes over the
training plays: dropout counters a model fitting data it has seen many times better than new
data, and here there is little repetition to counter (training with dropout is not measured here).
"""),
md(r"""
And why do three blocks stay behind a counted n-gram? The n-gram knows exactly which $n - 1$
characters came before, *in order*. None of this chapter's rungs has positions, and attention by
itself ignores order: a single block's prediction at position $t$ depends on the characters
before $t$ only as a weighted *set* — shuffle them and it does not change, for any weights. A
stack of blocks recovers some order through the causal mask — after one block, the vector at
position $s$ is an average over its $s + 1$ characters, which depends on where $s$ stands — but
only indirectly. Checked on fresh models of the two rungs, with the first 31 characters of a
32-character window shuffled:
"""),
code(r"""
window = sample[:, :32]
shuffle = torch.randperm(31, generator=torch.Generator().manual_seed(0))
shuffled = torch.cat([window[:, shuffle], window[:, 31:]], dim=1)
changed = {}
for name in ("layernorm", "3-blocks"):
    set_seed(0)
    m = build_model(name, V).eval()
    with torch.no_grad():
        a, b = (m(w)[0][0, -1] for w in (window, shuffled))  # logits (V,)
    changed[name] = (a - b).abs().max().item()
    print(
        f"{name:>9}: last position's logits change by at most "
        f"{changed[name]:.0e} (they are up to {a.abs().max().item():.2f})"
    )
assert changed["layernorm"] < 1e-5  # one block: float rounding only
assert changed["3-blocks"] > 1e-3  # three blocks: the order leaks in
"""),
md(r"""
Chapter 5 gives the stack positions.
"""),
md(r"""
## Play with it

Choose a depth and switch the residual connections and the norms on and off; the chart shows the
gradient norm of every block at initialisation, against GPT-2's configuration (dashed). The
profiles were computed when the notebook ran (the widget needs a running kernel to switch between
them; in the HTML book it shows the state it was saved in). The figure below it summarises every
setting the explorer offers: the bottom block's gradient relative to the top block's.
"""),
code(r"""
from gptlib.viz import gradient_flow_explorer

DEPTHS = (6, 12, 24, 48)
profiles = {(DEPTH, *key): runs[key][0] for key in VARIANTS}
for depth in DEPTHS:
    for key in VARIANTS:
        if (depth, *key) not in profiles:
            profiles[(depth, *key)] = gradient_profile(depth, *key)[0]
gradient_flow_explorer(profiles, depth=24, residual=False, norms=True)
"""),
code(r"""
fig, ax = plt.subplots(figsize=(6.5, 3.6))
for (key, label), style in zip(VARIANTS.items(), STYLES):
    ratio = np.array(
        [profiles[(d, *key)][0] / profiles[(d, *key)][-1] for d in DEPTHS]
    )
    ax.semilogy(DEPTHS, np.where(ratio > 0, ratio, np.nan), style, label=label)
    for d, r in zip(DEPTHS, ratio):
        if r == 0:
            ax.annotate("0", (d, 1e-38), color=style[:2], ha="center")
ax.set_ylim(1e-40, 1e3)
ax.set_xticks(DEPTHS)
ax.set_xlabel("number of blocks")
ax.set_ylabel("gradient: bottom block / top block")
ax.set_title('Does the gradient reach the bottom? ("0": it underflowed)')
ax.legend(fontsize=8)
plt.show()
"""),
md(r"""
```{admonition} Common misconception: "residual connections stop vanishing gradients, LayerNorm stabilises each layer's output distribution"
:class: warning

A common explanation of the transformer says that its weight updates suffer from "vanishing or
exploding gradients", that residual connections are there to avoid vanishing gradients, and that
layer normalisation "standardises the output of each layer so that its distribution is stable".
Each part is imprecise.

1. **A residual connection gives every layer an identity path**, for the gradient (the $I$ in
   $\prod (I + J_j)$) and for the signal (the stream is a sum, so each position keeps its own
   vector). With it, nothing vanished: at initialisation all 24 blocks of GPT-2's configuration
   received gradients within a factor of 3 of each other. Without it, vanishing gradients are one
   thing that can go wrong, not the only one: our 24-block stack without skips but with LayerNorm
   had gradients of healthy size at every block — and all its positions collapsed onto the same
   vector. {cite:t}`he2016deep` likewise found healthy gradient norms in their plain, normalised
   networks, which nonetheless trained worse.
2. **LayerNorm normalises each token's feature vector**, not "a layer's output distribution": the
   mean and variance are over the $C$ features of one position (the check above: mean 0, standard
   deviation 1 for every token), never over the batch or the sequence. Statistics over the batch
   are BatchNorm's, and for a language model they leak later tokens into earlier ones and fail on
   a single token. Nor does GPT-2 normalise "each layer's output": in a pre-LN block the residual
   stream itself is never normalised — only the copies the sublayers read, and once more before
   the output layer.
3. **Where the norm sits matters.** The same LayerNorm after the addition (post-LN) or before the
   sublayer (pre-LN) gives models that behave differently under the same learning rate: at
   $3 \times 10^{-3}$ without warm-up our post-LN model learnt nothing beyond letter frequencies
   (3 seeds of 3), the pre-LN one trained (3 of 3).
```

## Exercises

**Exercise 1.** Work out by hand the parameter count of a block with RMSNorm instead of LayerNorm
(`norm="rmsnorm"`), and of a block without any biases (`bias=False`, which also drops the
LayerNorms' $\beta$), then check both against the code for $C = 64$ and $C = 768$.
"""),
code(r"""
# Solution. RMSNorm has a gain and no bias: the norms hold 2C, not 4C ->
# 12C^2 + 11C.
# Without biases the Linear layers lose 9C (3C + C + 4C + C); the norms keep
# their gains (2C).
for C, H in ((64, 4), (768, 12)):
    assert n_params(Block(C, H, norm="rmsnorm")) == 12 * C**2 + 11 * C
    assert n_params(Block(C, H, bias=False)) == 12 * C**2 + 2 * C
print(
    f"C = 768: RMSNorm block {12 * 768**2 + 11 * 768:,}, "
    f"bias-free block {12 * 768**2 + 2 * 768:,}"
)
""", "hide-cell"),
md(r"""
**Exercise 2.** The explorer shows the stack with LayerNorm but without residuals *losing* its
gradient at 48 blocks, though not at 24. Find out why. Hint: LayerNorm divides by
$\sqrt{\sigma^2 + \epsilon}$, not by $\sigma$; measure the size (standard deviation over the
features, averaged over positions) of each block's output and compare it with
$\sqrt{\epsilon} \approx 0.003$. Then rebuild the 48-block stack with `layer_norm_eps=1e-10`.
"""),
code(r"""
# Solution. GPT-2's initialisation scales each c_proj by 1/sqrt(2L), so at 48
# blocks a
# sublayer turns a unit-size input into an output of size ~0.003 or less:
# comparable to
# sqrt(eps). The next norm then divides by sqrt(sigma^2 + eps) > sigma and
# cannot restore
# unit size; every sublayer shrinks the signal by a constant factor, and the
# gradient
# shrinks with it. A smaller eps lets the norms rescale again. (At
# initialisation a
# sublayer's output grows in proportion to C: at GPT-2's widths it is over
# ten times larger.)
def output_sizes(states):
    return [h.std(dim=-1, unbiased=False).mean().item() for h in states[1:]]


g_default, states_default = gradient_profile(
    48, residual=False, layer_norm_eps=1e-5
)
g_tiny_eps, states_tiny_eps = gradient_profile(
    48, residual=False, layer_norm_eps=1e-10
)
size_default, size_tiny_eps = (
    output_sizes(states_default),
    output_sizes(states_tiny_eps),
)
print(
    f"eps = 1e-5 : block outputs shrink from {size_default[0]:.0e} "
    f"to {size_default[-1]:.0e}"
)
print(
    f"eps = 1e-10: block outputs stay between {min(size_tiny_eps):.0e} "
    f"and {max(size_tiny_eps):.0e}"
)
assert size_default[-1] < 1e-3 * size_default[0] and size_default[
    0
] < math.sqrt(1e-5)
assert max(size_tiny_eps) / min(size_tiny_eps) < 3
assert (
    g_default[0] / g_default[-1] < 1e-5 < 1e-2 < g_tiny_eps[0] / g_tiny_eps[-1]
)
""", "hide-cell"),
md(r"""
**Exercise 3.** Decompose the residual stream of the *trained* pre-LN model, as in "See it"
above. Does the identity still hold, and why could it not fail? Which sublayer writes the largest vectors (average norm over
positions), and are the writes still faint next to the embedding?
"""),
code(r"""
# Solution. The identity holds for any weights: pre-LN's Block.forward adds
# each write to the stream, so training cannot break it (only a post-LN or a
# skip-free block can, as "See it" showed).
trained_model = trained[("pre", 3e-3, 0)]
trained_writes = []
hooks = [
    sub.register_forward_hook(
        lambda module, inputs, out: trained_writes.append(out)
    )
    for blk in trained_model.h
    for sub in (blk.attn, blk.mlp)
]
with torch.no_grad():
    trained_stream = trained_model.hidden_states(sample)
for hook in hooks:
    hook.remove()
total = trained_stream[0] + sum(trained_writes)
print("still a sum:", torch.allclose(trained_stream[-1], total, atol=1e-5))
sizes = [w.norm(dim=-1).mean().item() for w in trained_writes]
embedding_size = trained_stream[0].norm(dim=-1).mean().item()
print(
    f"largest write: {sublayers[int(np.argmax(sizes))]}; "
    f"mean write / embedding: {np.mean(sizes) / embedding_size:.1f}"
)
assert np.mean(sizes) > embedding_size
""", "hide-cell"),
md(r"""
## Key points

- A transformer block is two sublayers, each wrapped as $x + F(\mathrm{LN}(x))$ in GPT-2 (pre-LN).
  The residual stream is a sum: the embedding plus every sublayer's write.
- A block has $12C^2 + 13C$ parameters: $4C^2$ in attention, $8C^2$ in the MLP, the rest biases
  and norm gains.
- Residual connections give an identity path. At initialisation, 24 blocks with skips received
  gradients of the same size at every depth; without skips the positions' vectors collapsed onto
  one (with LayerNorm) or the gradient vanished to zero (without).
- LayerNorm standardises each token's vector over its $C$ features. Batch statistics would mix
  positions — leaking the future — and cannot normalise a single token at generation. RMSNorm drops
  the centring and is what most recent models use.
- Post-LN, the original placement, collapsed at learning rates at which pre-LN trained without
  warm-up; a warm-up widened post-LN's usable range but less than pre-LN's (three seeds each).
  Xiong et al.'s remedy is pre-LN {cite:p}`xiong2020layer`; why post-LN collapses here is not
  shown: at GPT-2's initialisation its top blocks get *smaller* gradients than pre-LN's.
- On the loss ladder (the same budget for every rung, three seeds), the MLP alone adds nothing at
  this budget (0.006 nats, the seeds' spread); residual connections add 0.057, LayerNorm 0.020 and
  three blocks 0.43, to 1.915 — more than 0.5 nats below the counted bigram, but more than 0.2
  behind the best counted n-gram. Without positions the stack barely sees the order of its
  context; chapter 5 adds positions, which help a great deal but still leave every small model
  of the ladder behind the counted table.

## References

Residual connections {cite:p}`he2016deep`; layer normalisation {cite:p}`ba2016layer`; batch
normalisation {cite:p}`ioffe2015batch`; RMSNorm {cite:p}`zhang2019root`; GELU
{cite:p}`hendrycks2016gaussian`; the Transformer, post-LN {cite:p}`vaswani2017attention`; GPT-2,
pre-LN {cite:p}`radford2019language`; why pre-LN trains without warm-up {cite:p}`xiong2020layer`;
rank collapse of attention without skips {cite:p}`dong2021attention`; dropout
{cite:p}`srivastava2014dropout`; GPT-1 (GELU, the 4x MLP, dropout 0.1) {cite:p}`radford2018improving`;
the 0.02 initialisation as code {cite:p}`karpathy2022nanogpt`.
Full entries are on the [References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "04_residual.ipynb", CELLS)
