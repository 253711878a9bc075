"""Source of chapters/05_positions.ipynb. Edit here, then:

    python scripts/chapters/ch05_positions.py && python scripts/run_notebooks.py chapters/05_positions.ipynb

The training experiment is too slow for the chapter's time budget; it runs in
scripts/experiments/positional.py, which writes data/results/positional.json (loaded below).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 5. Positional encodings: one-hot, learned, sinusoidal — and RoPE, ALiBi

**Why.** Self-attention (chapter 2) compares every token with every other by *content*: a query
meets a key and a dot product says how well they match. Nothing in that computation says where a
token sits. Left alone, attention cannot tell "dog bites man" from "man bites dog" — the same
three words, the same pairwise dot products, opposite meanings. A language model has to be told
the order of its input, and there are two places to tell it: add a *position vector* to each
token's embedding before the first layer (an **absolute** encoding — one-hot, learned,
sinusoidal), or change the attention scores themselves so that they depend on how far apart two
tokens are (a **relative** encoding — RoPE, ALiBi). This chapter builds all of them, shows the
property that defines each, and trains the same small GPT with each one to see what the choice
changes — at the training length and beyond it.
"""),
code(r"""
# errors shown on purpose print as "Type: message", without a traceback
%xmode Minimal
import copy
import json
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from gptlib import set_seed, show
from gptlib.model import GPT, GPTConfig
from gptlib.positional import (
    POS_ENCODINGS,
    LearnedPositional,
    OneHotPositional,
    RotaryEmbedding,
    alibi_bias,
    alibi_slopes,
    build_positional,
    rope_permutation,
    sinusoidal_shift_matrix,
    sinusoidal_table,
)
from gptlib.viz import cosine_similarity_matrix, position_explorer

# figures at most 7.2 in wide, so the book shows them unshrunk; text >= 9 pt
# at 90 dpi, which the book's 96 px per inch show as >= 8.4 pt
plt.rcParams.update(
    {
        "figure.dpi": 90,
        "font.size": 10,
        "axes.titlesize": 10,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
    }
)
torch.set_printoptions(precision=4, sci_mode=False)
"""),
md(r"""
## The problem: attention sees a set

Write the $T$ token vectors of a sequence as the rows of $X \in \mathbb{R}^{T \times C}$. One head
of attention computes $Q = XW_Q$, $K = XW_K$, $V = XW_V$ and

$$
\mathrm{Attn}(X) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d}}\right) V \qquad (T \times d).
$$

Reorder the tokens with a permutation matrix $P$ ($T \times T$, one 1 in every row and column,
$P^\top P = I$). The queries, keys and values are reordered the same way, $PQ$, $PK$, $PV$, so

$$
\begin{aligned}
\mathrm{Attn}(PX) &= \mathrm{softmax}\!\left(\frac{P\,QK^\top P^\top}{\sqrt{d}}\right) P V \\
&= P\,\mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d}}\right) P^\top P V = P\,\mathrm{Attn}(X).
\end{aligned}
$$

(The softmax acts on each row separately, so permuting the rows and columns of its input permutes
the rows and columns of its output.) The token embedding, the MLP and LayerNorm act on each
token on its own, so they commute with $P$ too. The whole network is **permutation-equivariant**:
shuffle the input and you get the same outputs, shuffled. Each token's output depends on *which*
tokens are present, never on their order.

Let us check it on a whole GPT from `gptlib`, with no positional encoding and — for the moment —
without the causal mask (`causal=False`), on two sentences over a vocabulary of three words
(and a full stop, needed later):
"""),
code(r"""
vocab = {"dog": 0, "bites": 1, "man": 2, ".": 3}


def ids(sentence):
    return torch.tensor([[vocab[w] for w in sentence.split()]])


def tiny_gpt(pos_encoding, causal=False, n_layer=2, seed=0):
    set_seed(seed)
    cfg = GPTConfig(
        vocab_size=len(vocab),
        block_size=8,
        n_layer=n_layer,
        n_head=2,
        n_embd=16,
        pos_encoding=pos_encoding,
        causal=causal,
    )
    return GPT(cfg).eval()


a, b = ids("dog bites man"), ids("man bites dog")
swap = [2, 1, 0]  # b is a with the first and last word exchanged
model = tiny_gpt("none")
with torch.no_grad():
    out_a, out_b = model(a)[0][0], model(b)[0][0]  # next-token logits, (3, V)
for i, word in enumerate("dog bites man".split()):
    j = swap[i]
    print(
        f"{word!r:>8}: position {i} in a, {j} in b; same output:"
        f" {torch.allclose(out_a[i], out_b[j], atol=1e-6)}"
    )
assert torch.allclose(
    out_b, out_a[swap], atol=1e-6
)  # outputs of b = outputs of a, reordered
"""),
md(r"""
The model computes exactly the same thing for "dog" whether it bites or is bitten. Add a position
to each token — here a learned table, GPT-2's choice, with its random initial values — and the
symmetry is gone:
"""),
code(r"""
model = tiny_gpt("learned")
with torch.no_grad():
    out_a, out_b = model(a)[0][0], model(b)[0][0]
print(
    "same output for 'dog' in both sentences:",
    torch.allclose(out_a[0], out_b[2], atol=1e-6),
)
assert not torch.allclose(out_b, out_a[swap], atol=1e-3)
"""),
md(r"""
**What about the causal mask?** A GPT masks attention so that position $t$ sees only positions
$\le t$ (chapter 3). That mask is not symmetric under permutations, so a causal GPT without any
positional encoding is *not* fully blind to order — but it learns order only indirectly. In one
layer, the last token attends to the *set* of tokens before it, so its output cannot depend on
their order. From the second layer on, it reads the first layer's outputs, and those did see
different prefixes: order leaks in through depth. (Trained causal models without positions do
learn to exploit this, as {cite:t}`haviv2022transformer` found; the experiment below measures how well.)
"""),
code(r"""
a, b = ids("dog bites man ."), ids("man bites dog .")
for n_layer in (1, 2):
    model = tiny_gpt("none", causal=True, n_layer=n_layer)
    with torch.no_grad():
        last_a, last_b = model(a)[0][0, -1], model(b)[0][0, -1]
    print(
        f"causal, no positions, {n_layer} layer(s): prediction after '.'"
        f" identical: {torch.allclose(last_a, last_b, atol=1e-6)}"
    )
    assert torch.allclose(last_a, last_b, atol=1e-6) == (n_layer == 1)
"""),
md(r"""
## Two ways to put position in

`gptlib.positional` implements every option behind one interface, chosen by
`GPTConfig(pos_encoding=...)`. An encoding can act in three places, and each uses one of them:

- `embed(x, offset)` — **absolute**: add a vector $p_t$ to the token embedding at position $t$,
  once, below the first layer: `onehot`, `learned`, `sinusoidal`;
- `rope(q, k, offset)` — **relative**: rotate every query and key inside every attention layer:
  `rope`;
- `attn_bias(...)` — **relative**: add a distance penalty to every attention score: `alibi`.

Here is what each costs in the small model this chapter trains later (context $T = 32$, width
$C = 64$, 4 heads):
"""),
code(r"""
print(
    f"{'encoding':>10}  {'acts on':<22} {'parameters':>10} "
    f" {'longest input':>13}"
)
for kind in POS_ENCODINGS:
    enc = build_positional(kind, block_size=32, n_embd=64, n_heads=4)
    where = (
        "token embeddings"
        if kind in ("onehot", "learned", "sinusoidal")
        else (
            "queries and keys"
            if enc.rope is not None
            else "attention scores"
            if kind == "alibi"
            else "nothing"
        )
    )
    n_params = sum(p.numel() for p in enc.parameters())
    longest = enc.max_positions or "any"
    print(f"{kind:>10}  {where:<22} {n_params:>10,}  {longest!s:>13}")
"""),
md(r"""
## One-hot positions

The most literal encoding: position $t$ is the vector $e_t \in \{0, 1\}^{N}$ with a single 1 at
index $t$, where $N$ is the longest sequence allowed. There are two ways to combine it with the
token embedding $E[x_t] \in \mathbb{R}^{C}$:

- **Concatenate**: $[E[x_t];\, e_t] \in \mathbb{R}^{C + N}$. Every layer above now works at width
  $C + N$ instead of $C$ — with GPT-2's $N = 1024$ and $C = 768$, more than twice as wide. This
  is the real "dimension explosion" of one-hot positions.
- **Project** with a matrix $W \in \mathbb{R}^{C \times N}$ and add: $E[x_t] + W e_t$. The width
  stays $C$. But $W e_t$ just picks column $t$ of $W$:

$$
\begin{gathered}
W e_t = W_{:,t} \qquad\Longrightarrow\qquad E[x_t] + W e_t = E[x_t] + P[t] \\
\text{with}\quad P = W^\top \in \mathbb{R}^{N \times C}.
\end{gathered}
$$

A projected one-hot vector *is* a row of a learned table. `gptlib` projects (its docstring says
why):
"""),
code(r"""
show(OneHotPositional)
"""),
md(r"""
**Prove it.** Give a `LearnedPositional` table the transposed projection matrix as its rows, and
the two encodings give identical outputs, at any offset:
"""),
code(r"""
set_seed(0)
onehot, learned = OneHotPositional(32, 64), LearnedPositional(32, 64)
with torch.no_grad():
    learned.wpe.weight.copy_(onehot.proj.weight.T)  # P = W^T
x = torch.randn(2, 10, 64)
same = torch.allclose(
    onehot.embed(x, offset=5), learned.embed(x, offset=5), rtol=0, atol=1e-7
)
print("one-hot x W == table lookup:", same)
assert same
"""),
md(r"""
The two differ only in cost: the projection multiplies a $T \times N$ matrix of zeros and ones
by $W^\top$, the lookup copies $T$ rows. And as raw vectors, one-hot positions know nothing about
*nearness*: $e_s \cdot e_t = 0$ for every $s \neq t$, so position 5 is as unlike position 6 as it
is unlike position 500. Whatever structure the projected table ends up with is learned from data.

## Learned absolute positions (GPT-2)

The first GPT {cite:p}`radford2018improving` replaced the Transformer's sinusoids (next
section) with a table $P \in \mathbb{R}^{N \times C}$ of trainable position vectors, $N = 512$
("we used learned position embeddings instead of the sinusoidal version", their §4.1). GPT-2
{cite:p}`radford2019language` kept it and grew it to $N = 1024$ (the table is `wpe` in its
released weights), and BERT {cite:p}`devlin2019bert` uses one too. Row $t$ is added to the token
embedding:

$$
h^{(0)}_t = E[x_t] + P[t], \qquad t = 0, 1, \dots, N - 1.
$$

It is initialised randomly like every other weight and trained with them. The price is in the
subscript: a table has $N$ rows, and position $N$ has none.
"""),
code(r"""
show(LearnedPositional)
"""),
code(r"""
gpt2_wpe = LearnedPositional(1024, 768)  # GPT-2 small's table
print(
    f"GPT-2's wpe: {tuple(gpt2_wpe.wpe.weight.shape)},"
    f" {gpt2_wpe.wpe.weight.numel():,} parameters, longest input"
    f" {gpt2_wpe.max_positions} tokens"
)
"""),
md(r"""
## Sinusoidal positions (Vaswani et al., 2017)

The original Transformer {cite:p}`vaswani2017attention` adds a *fixed* vector instead, built
from sines and cosines. For position $t$ and $i = 0, \dots, C/2 - 1$:

$$
\mathrm{PE}[t, 2i] = \sin(\omega_i t), \qquad \mathrm{PE}[t, 2i+1] = \cos(\omega_i t),
\qquad \omega_i = 10000^{-2i/C}.
$$

Each pair of coordinates is a point going round a circle, one turn every $2\pi/\omega_i$
positions: from $2\pi \approx 6.3$ positions for the first pair to $2\pi \cdot 10000^{(C-2)/C}$
for the last. Read across the pairs, the fast ones distinguish neighbours and the slow ones tell
far-apart positions apart — like the hands of a clock. There are no parameters, and the formula
gives a vector for any $t$: no maximum length.
"""),
code(r"""
show(sinusoidal_table)
"""),
code(r"""
pe = sinusoidal_table(128, 64)  # (positions, C)
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7.2, 6), layout="constrained")
im = ax1.imshow(pe.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
ax1.set_xlabel("position t")
ax1.set_ylabel("coordinate\n(2i: sin, 2i+1: cos)")
ax1.set_title("Sinusoidal encodings, C = 64")
fig.colorbar(im, ax=ax1, label="value")
for j in (0, 8, 16, 32):
    ax2.plot(
        pe[:, j],
        lw=1,
        label=f"coordinate {j}: period {2 * math.pi / 10000 ** (-j / 64):.0f}",
    )
ax2.set_xlabel("position t")
ax2.set_ylabel("value")
ax2.set_title("Four coordinates (sines)")
ax2.legend(loc="lower left", ncols=2)
plt.show()
"""),
md(r"""
**Prove it.** Two properties make the sinusoids a good choice.

1. *A shift is a fixed linear map.* By the angle-sum formulas, moving from $t$ to $t + k$ rotates
   every (sin, cos) pair by the angle $\omega_i k$, whatever $t$ is. So there is one matrix $M_k$
   (block-diagonal, made of $2 \times 2$ rotations) with $\mathrm{PE}(t + k) = M_k\,
   \mathrm{PE}(t)$ for *every* $t$ — the property {cite:t}`vaswani2017attention` give for choosing
   them: a layer can learn to look $k$ positions back with one linear map.
2. *Similarity depends only on distance.* $\mathrm{PE}(s) \cdot \mathrm{PE}(t) = \sum_i
   \big(\sin\omega_i s \sin\omega_i t + \cos\omega_i s \cos\omega_i t\big) = \sum_i \cos\big(\omega_i (t - s)\big)$:
   a function of $t - s$ alone, largest ($= C/2$) at $t = s$.
"""),
code(r"""
pe = sinusoidal_table(200, 64).double()
for k in (1, 7, 50):
    M = sinusoidal_shift_matrix(k, 64).double()
    one_map = torch.allclose(
        pe[:-k] @ M.T, pe[k:], atol=1e-5
    )  # all 200 - k positions at once
    print(f"PE(t + {k}) = M_{k} PE(t) for every t: {one_map}")
    assert one_map

gram = pe @ pe.T  # (200, 200) dot products
freq = 10000.0 ** (-torch.arange(0, 64, 2, dtype=torch.float64) / 64)
offsets = torch.arange(200.0, dtype=torch.float64)
formula = torch.cos(
    (offsets[None, :] - offsets[:, None])[..., None] * freq
).sum(-1)
print(
    "PE(s) . PE(t) = sum_i cos(w_i (t - s)):",
    torch.allclose(gram, formula, atol=1e-6),
)
print(
    f"PE(t) . PE(t) = {gram.diagonal().min():.4f} .."
    f" {gram.diagonal().max():.4f} (C/2 = 32)"
)
assert torch.allclose(gram, formula, atol=1e-6)
"""),
md(r"""
Note what the dot product cannot do: $\cos$ is even, so $\mathrm{PE}(t)$ is exactly as similar
to $\mathrm{PE}(t - k)$ as to $\mathrm{PE}(t + k)$ — the *before/after* information is in
$M_k \neq M_{-k}$, which the network has to learn to use. And all of this is about the *inputs*.
The first attention layer compares $(E[x_s] + \mathrm{PE}(s))\,W_Q$ with
$(E[x_t] + \mathrm{PE}(t))\,W_K$: through the learned matrices and the cross terms with the token
embeddings, its scores need not depend on $t - s$ alone. The relative encodings put the
dependence on distance where the comparison happens: in the attention score itself.

## Relative positions: where the family starts

{cite:t}`shaw2018self` were the first to do so in a Transformer. They left the token embeddings
alone and gave every attention layer a learned vector for each *clipped distance* between a
query $i$ and a key $j$, added to the key before the comparison:

$$
e_{ij} = \frac{x_i W_Q \,\big(x_j W_K + w_{\mathrm{clip}(j - i)}\big)^\top}{\sqrt{d}},
\qquad \mathrm{clip}(r) = \max(-k, \min(k, r)),
$$

with one learned $w_r \in \mathbb{R}^{d}$ for each distance $r = -k, \dots, k$ (every distance
beyond $k$ shares the last one; a second set is added to the values). On WMT 2014 translation
it beat the Transformer's absolute sinusoids by 1.3 BLEU (English-German) and 0.3 BLEU
(English-French), and adding absolute positions back gained nothing. T5
{cite:p}`raffel2020exploring` reduced the learned vector to a learned *scalar* added to the
score: each head has 32 of them, one per *bucket* of distances — a bucket for every small
distance, buckets growing logarithmically wider up to 128, and one bucket for everything
beyond — shared by all layers. Both learn a parameter per distance or bucket. The two schemes
below, the ones today's GPT-style models use, learn none: RoPE puts the offset into the dot
product by rotating $q$ and $k$; ALiBi is T5's bias with the learned scalars replaced by a fixed
straight line.

## Rotary position embedding, RoPE (Su et al., 2021)

RoPE {cite:p}`su2021roformer` adds nothing to the embeddings. Inside every attention layer, it
rotates each query and key by an angle proportional to its position. Split a head's vector
$q \in \mathbb{R}^{d}$ into $d/2$ pairs $(q_{2i}, q_{2i+1})$ and rotate pair $i$ by $m\,\theta_i$
at position $m$, with the sinusoids' frequencies $\theta_i = 10000^{-2i/d}$:

$$
R(m)\,q\;:\quad
\begin{pmatrix} q_{2i} \\ q_{2i+1} \end{pmatrix} \mapsto
\begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i \end{pmatrix}
\begin{pmatrix} q_{2i} \\ q_{2i+1} \end{pmatrix}.
$$

Rotations keep lengths and compose by adding angles ($R(m)^\top R(n) = R(n - m)$), so the score
between a query at position $m$ and a key at position $n$ is

$$
\big(R(m)\,q\big) \cdot \big(R(n)\,k\big) = q^\top R(m)^\top R(n)\, k = q \cdot R(n - m)\,k :
$$

it depends on the *content* $q, k$ and the *offset* $n - m$, never on $m$ or $n$ alone. Each
vector is rotated by its own absolute position, and only the difference survives the dot
product: a relative encoding built from absolute rotations.
"""),
code(r"""
show(RotaryEmbedding.forward)
"""),
code(r"""
show(RotaryEmbedding._rotate)
"""),
md(r"""
**Which features form a pair** is a convention, and two are in use. RoFormer's equation (the
one above, `gptlib`'s default `layout="interleaved"`) pairs neighbours $(q_{2i}, q_{2i+1})$, and
so do GPT-J and Meta's reference code for LLaMA {cite:p}`touvron2023llama`. GPT-NeoX
{cite:p}`black2022gpt` (which rotates only the first quarter of each head's features) and the
Hugging Face implementations of GPT-NeoX and LLaMA pair the two *halves* of the vector,
$(q_i, q_{i + d/2})$ — their `rotate_half` — which `gptlib` offers as `layout="half"`:
"""),
code(r"""
show(RotaryEmbedding._rotate_half)
"""),
md(r"""
The two layouts are the same rotation with the features listed in a different order:
`rope_permutation(d)` $= (0, 2, 4, \dots, 1, 3, 5, \dots)$ moves pair $i$ from features
$(2i, 2i+1)$ to $(i, i + d/2)$, and a permutation applied to both $q$ and $k$ leaves their dot
product alone. So the scores agree once the features (the rows of each head's block of $W_Q$ and
$W_K$) are permuted — the permutation Hugging Face's conversion script applies to Meta's LLaMA
checkpoints — and disagree without it. **Weights of GPT-NeoX, or of LLaMA in the Hugging Face
format, need the half layout**; read with the interleaved one, every score comes out wrong:
"""),
code(r"""
set_seed(0)
q, k = torch.randn(2, 1, 4, 10, 16, dtype=torch.float64)  # (B, H, T, d)
P = rope_permutation(16)
print("permutation:", P.tolist())
inter = RotaryEmbedding(16)(q, k, offset=7)
half = RotaryEmbedding(16, layout="half")(q[..., P], k[..., P], offset=7)
wrong = RotaryEmbedding(16, layout="half")(q, k, offset=7)


def scores(qk):
    return qk[0] @ qk[1].transpose(-1, -2)  # (B, H, T, T)


same = torch.allclose(scores(half), scores(inter), atol=1e-9)
gap = (scores(wrong) - scores(inter)).abs().max().item()
print(f"half layout on permuted q, k = interleaved scores: {same}")
print(f"half layout on the same q, k: scores off by up to {gap:.2f}")
assert same and torch.allclose(half[0], inter[0][..., P], atol=1e-9)
assert gap > 1.0
"""),
md(r"""
**Prove it.** Rotate a random query and key for one head ($d = 16$) at positions $(m, n)$ and at
$(m + s, n + s)$ for large shifts $s$: the lengths do not change, and neither does the score.
"""),
code(r"""
set_seed(0)
rope = RotaryEmbedding(16)
q, k = torch.randn(2, 16, dtype=torch.float64)


def at(v, position):
    "v (16,) rotated as if it sat at `position`."
    return rope(v[None, None, None], v[None, None, None], offset=position)[0][
        0, 0, 0
    ]


m, n = 3, 10
base_score = at(q, m) @ at(k, n)
print(f"|q| = {q.norm():.4f}, |R(m) q| = {at(q, m).norm():.4f}")
for s in (0, 100, 5000):
    score = at(q, m + s) @ at(k, n + s)
    print(f"positions ({m + s}, {n + s}): score {score:.4f}")
    assert torch.allclose(score, base_score, atol=1e-9)
assert torch.allclose(at(q, m).norm(), q.norm())
print(
    f"positions (3, 11): score {at(q, 3) @ at(k, 11):.4f}  (a different"
    " offset, a different score)"
)
"""),
md(r"""
How does the score vary with the offset? {cite:t}`su2021roformer` (their §3.4.3) write it as a
sum over the pairs, with each pair read as a complex number: for an offset $r = m - n$,

$$
\big(R(m)\,q\big) \cdot \big(R(n)\,k\big) = \mathrm{Re} \sum_{i=0}^{d/2-1} h_i\, e^{\mathrm{i} r \theta_i},
\qquad h_i = (q_{2i} + \mathrm{i}\, q_{2i+1})\,\overline{(k_{2i} + \mathrm{i}\, k_{2i+1})}.
$$

Summing by parts (Abel summation), with the partial sums $S_j = \sum_{i < j} e^{\mathrm{i} r \theta_i}$
and $h_{d/2} = 0$, gives their bound

$$
\Big|\sum_{i=0}^{d/2-1} h_i\, e^{\mathrm{i} r \theta_i}\Big|
\le \Big(\max_i\, |h_{i+1} - h_i|\Big) \sum_{j=1}^{d/2} |S_j| .
$$

The first factor depends on $q$ and $k$, the second only on the offset, and what Su et al. call
RoPE's **long-term decay** is that $\frac{1}{d/2}\sum_j |S_j|$ shrinks as $|r|$ grows (their
Figure 2). It is an *upper bound* on the score's magnitude, valid for every $q$ and $k$ — a
ceiling, not a typical value. Averages over random directions behave differently, depending on
what is averaged. For a vector scored against itself at an offset ($k = q$, random unit $q$) the
mean score is $\frac{1}{d/2}\sum_i \cos(r\theta_i)$, the sinusoids' sum of cosines, which also
falls on the whole. For *independent* random unit $q$ and $k$, $R(r)\,k$ is as random as $k$
itself, so the mean $|\text{score}|$ is the same at every offset: no decay at all. The figure
draws all three, each relative to its value at offset 0, for this chapter's head size
($d = 16$) and for LLaMA's ($d = 128$); the cell checks the bound on every sampled pair.
"""),
code(r"""
def scores_at_offsets(q, k, offsets):
    # q . R(r) k for every row pair (q, k) and offset r: (N, len(offsets)),
    # with RotaryEmbedding doing the rotation (q stays at position 0);
    # 32 offsets at a time, to keep the memory small.
    d, out = q.shape[-1], []
    for chunk in offsets.split(32):
        k_at = k[:, None, None, :].expand(-1, 1, len(chunk), d)  # (N,1,R,d)
        where = chunk[None].expand(len(k), -1)  # (N, R) positions
        rotated = RotaryEmbedding(d)(k_at, k_at, positions=where)[0][:, 0]
        out.append((q[:, None, :] * rotated).sum(-1))
    return torch.cat(out, dim=1)


def su_bound_factor(d, offsets):
    # (1/(d/2)) sum_j |S_j(r)|, S_j = sum_{i<j} exp(i r theta_i): Su et al.
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    S = torch.cumsum(torch.exp(1j * offsets[:, None].double() * theta), dim=1)
    return S.abs().mean(1)


def unit(n, d):
    v = torch.randn(n, d, dtype=torch.float64)
    return v / v.norm(dim=1, keepdim=True)


set_seed(1)
offsets = torch.arange(0, 257)
curves = {}
for d_head in (16, 128):
    q, k = unit(1000, d_head), unit(1000, d_head)
    self_scores = scores_at_offsets(q, q, offsets)  # k = q
    cross = scores_at_offsets(q, k, offsets)  # independent q and k
    bound = su_bound_factor(d_head, offsets)
    # the bound itself, for each pair: max_i |h_(i+1) - h_i| * sum_j |S_j|
    h = (
        torch.complex(q[:, 0::2], q[:, 1::2])
        * torch.complex(k[:, 0::2], k[:, 1::2]).conj()
    )
    h = torch.cat([h, torch.zeros(len(h), 1, dtype=h.dtype)], dim=1)
    ceiling = (
        (h[:, 1:] - h[:, :-1]).abs().amax(1)[:, None] * bound * d_head / 2
    )
    theta = 10000.0 ** (
        -torch.arange(0, d_head, 2, dtype=torch.float64) / d_head
    )
    cosines = torch.cos(offsets[:, None].double() * theta).mean(1)
    assert (cross.abs() <= ceiling + 1e-12).all()  # Su et al.'s bound holds
    assert torch.allclose(self_scores.mean(0), cosines, atol=0.05)
    curves[d_head] = {
        "Su et al.'s bound factor (1/(d/2)) sum_j |S_j|": bound / bound[0],
        "mean score q . R(r) q (k = q)": self_scores.mean(0),
        "mean |score|, independent q and k": (
            cross.abs().mean(0) / cross.abs().mean(0)[0]
        ),
    }
    flat = curves[d_head]["mean |score|, independent q and k"]
    r_min = int(bound.argmin())
    print(
        f"d = {d_head:>3}: bound factor at offsets 32, 128, 256: "
        + ", ".join(f"{bound[r] / bound[0]:.2f}" for r in (32, 128, 256))
        + f" of offset 0 (lowest {bound.min() / bound[0]:.2f} at {r_min});"
        f" independent mean |score| within {(flat - 1).abs().max():.0%}"
    )
    assert bound[128] < 0.5 * bound[0] and (flat - 1).abs().max() < 0.1
    # 8 pairs: the bound stops falling; 64 pairs: it keeps falling
    assert (bound[256] / bound[0] > 0.3) == (d_head == 16)

fig, axes = plt.subplots(
    2, 1, figsize=(7.2, 6.6), sharex=True, layout="constrained"
)
for ax, (d_head, lines) in zip(axes, curves.items()):
    for (label, y), style in zip(lines.items(), ("-", "-", "--")):
        ax.plot(
            offsets, y, style, lw=1.5, label=label if d_head == 16 else None
        )
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("relative to offset 0")
    ax.set_title(f"RoPE, head size d = {d_head}")
axes[1].set_xlabel("offset r = m - n")
fig.legend(loc="outside lower center", ncols=2)
plt.show()
"""),
md(r"""
With 64 pairs ($d = 128$) the bound factor falls steadily, to 0.20 of its offset-0 value at
offset 256 — the decay Su et al. draw. With this chapter's 8 pairs ($d = 16$) it falls to about
a third by offset 32 and then stops falling (0.40 at offsets 128 and 256, its lowest 0.23 at
offset 106): a few frequencies keep re-aligning. The mean self-score has the bound's shape,
while the mean $|\text{score}|$ of unrelated $q$ and $k$ stays within 10% of its offset-0 value
at every offset. Whatever decay with distance a trained model's attention shows, it comes from
what the model learns to put into $q$ and $k$; the bound is only a ceiling.
"""),
md(r"""
## ALiBi: attention with linear biases (Press et al., 2022)

ALiBi {cite:p}`press2022train` is the simplest relative scheme: leave queries, keys and
embeddings alone, and subtract from every attention score a penalty proportional to the distance
between query $i$ and key $j \le i$:

$$
s^{(h)}_{ij} = \frac{q_i \cdot k_j}{\sqrt{d}} - m_h\,(i - j).
$$

Each head $h = 1, \dots, H$ has a fixed slope $m_h$, a geometric sequence: for $H$ a power of two,
$m_h = 2^{-8h/H}$ (8 heads: $\tfrac12, \tfrac14, \dots, \tfrac1{256}$). With equal content scores,
a head's attention weights fall by a factor $e^{-m_h}$ per token of distance: steep heads look at
the last few tokens, shallow heads average over hundreds. Nothing is learned and nothing depends
on the length of the input, which is the point: the paper's title is *Train Short, Test Long*.
"""),
code(r"""
show(alibi_slopes)
"""),
code(r"""
print("8 heads:", [f"1/{1 / s:.0f}" for s in alibi_slopes(8).tolist()])
# the values Press et al. print for 8 heads (sec. 3): 1/2, 1/4, ..., 1/256
paper_8 = [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625]
assert alibi_slopes(8).tolist() == paper_8
# and their rule for 16 heads: the 8 slopes, with the geometric mean of each
# consecutive pair in between (starting from 1 before 1/2)
s16, s8 = alibi_slopes(16).double(), torch.tensor([1.0] + paper_8).double()
assert torch.allclose(s16[1::2], s8[1:])
assert torch.allclose(s16[0::2], (s8[:-1] * s8[1:]).sqrt())
print("16 heads: the 8-head slopes and their pairwise geometric means: True")
print(
    "4 heads (this chapter's model):",
    [f"1/{1 / s:.0f}" for s in alibi_slopes(4).tolist()],
)
print("bias of head 1 (slope 1/4), 5 tokens; rows: queries, columns: keys")
print(alibi_bias(4, 5, 5)[0, 0] + 0.0)  # (+ 0.0 turns -0.0 into 0.0)
"""),
code(r"""
distance = torch.arange(0, 129)
fig, ax = plt.subplots(figsize=(7.2, 4.8), layout="constrained")
for h, m in enumerate(alibi_slopes(8).tolist()):
    ax.plot(
        distance,
        torch.exp(-m * distance.double()),
        lw=1.2,
        label=(
            f"head {h + 1}: m = 1/{1 / m:.0f}, halves every"
            f" {math.log(2) / m:.1f}"
        ),
    )
ax.set_xlabel("distance i - j")
ax.set_ylabel("weight relative to distance 0")
ax.set_title("ALiBi with equal content scores: each head's window")
fig.legend(loc="outside lower center", ncols=2)
plt.show()
"""),
md(r"""
## See it: how each encoding relates positions

Each encoding defines, for a pair of positions $(s, t)$, how alike they look. For the absolute
encodings that is the cosine similarity of the two position vectors; for RoPE, the score of a
unit vector placed at both positions, $u \cdot R(t - s)\,u$ with $u = (1, 0, 1, 0, \dots)/\sqrt{d/2}$
(equal weight in every pair, so that its score is exactly the mean score $q \cdot R(r)\,q$
above); for ALiBi,
the bias $-m_h |t - s|$ (a causal model only uses $s \le t$; the mask removes the rest). The
learned table is the one from the trained `learned` model of the experiment below (seed 0), read
from its results file.
"""),
code(r"""
results = json.loads(Path("../data/results/positional.json").read_text())
settings = results["settings"]
T, C, H = (
    settings["block_size"],
    settings["model"]["n_embd"],
    settings["model"]["n_head"],
)
d = C // H
trained_wpe = torch.tensor(
    next(
        r["wpe"]
        for r in results["runs"]
        if r["encoding"] == "learned" and r["seed"] == 0
    )
)

u = torch.zeros(d, dtype=torch.float64)
u[0::2] = 1 / math.sqrt(d / 2)  # a unit vector
rope_vectors = RotaryEmbedding(d)(u.expand(1, 1, T, d), u.expand(1, 1, T, d))[
    0
][0, 0]  # (T, d)
slopes = alibi_slopes(H)

vectors = {
    "one-hot": torch.eye(T),
    "learned (trained)": trained_wpe,
    "sinusoidal": sinusoidal_table(T, C),
    f"RoPE (head size {d})": rope_vectors,
    f"ALiBi head 1 (m = 1/{1 / slopes[0]:.0f})": None,
    f"ALiBi head {H} (m = 1/{1 / slopes[-1]:.0f})": None,
}
similarity = {
    name: cosine_similarity_matrix(v)
    for name, v in vectors.items()
    if v is not None
}
similarity[f"ALiBi head 1 (m = 1/{1 / slopes[0]:.0f})"] = alibi_bias(H, T, T)[
    0, 0
].double()
similarity[f"ALiBi head {H} (m = 1/{1 / slopes[-1]:.0f})"] = alibi_bias(
    H, T, T
)[0, -1].double()
print({name: tuple(s.shape) for name, s in similarity.items()})
"""),
code(r"""
def value_name(name):
    # what the colour (or the y axis) of an encoding's panel measures
    if name.startswith("ALiBi"):
        return "bias -m|t - s|"
    if name.startswith("RoPE"):
        return "score u . R(t - s) u"
    return "cosine similarity"


fig, axes = plt.subplots(3, 2, figsize=(7.2, 9.6), layout="constrained")
for ax, (name, sim) in zip(axes.flat, similarity.items()):
    lim = sim.abs().max().item()
    im = ax.imshow(sim, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(name)
    ax.set_xlabel("position t")
    ax.set_ylabel("position s")
    fig.colorbar(im, ax=ax, label=value_name(name), shrink=0.9)
fig.suptitle(
    f"Position against position, {T} positions (red: alike; white: 0,"
    " unrelated\nor no penalty; blue: unlike or penalised; each panel its"
    " own scale)",
    fontsize=10,
)
plt.show()
"""),
md(r"""
The one-hot matrix is the identity: every position is equally unlike every other (white: a
cosine similarity of 0). The formulas
(sinusoidal, RoPE, ALiBi) give Toeplitz matrices — constant along each diagonal, because they
depend on $t - s$ only. The trained table started from random values, with no notion of
nearness, yet its matrix has the same banded look, and more: far-apart positions have become
*opposite* (blue corners). Average each matrix over all pairs at the same distance to compare:
"""),
code(r"""
def by_distance(sim):
    "Mean of sim[s, t] over the pairs with t - s = k, for k = 0..T-1."
    return torch.stack([sim.diagonal(k).mean() for k in range(sim.shape[0])])


fig, ax = plt.subplots(figsize=(6.5, 3))
for name in list(similarity)[:4]:
    ax.plot(by_distance(similarity[name]), "o-", ms=2.5, lw=1, label=name)
ax.set_xlabel("distance t - s")
ax.set_ylabel("mean cosine similarity")
ax.set_title("Similarity against distance")
ax.legend()
plt.show()

learned_tables = {
    r["seed"]: torch.tensor(r["wpe"], dtype=torch.float64)
    for r in results["runs"]
    if r["encoding"] == "learned"
}
for seed, table in learned_tables.items():
    curve = by_distance(cosine_similarity_matrix(table))
    print(
        f"trained table, seed {seed}: mean similarity at distance 1:"
        f" {curve[1]:.2f}, at distances 20 to {T - 1}: {curve[20:].mean():.2f}"
    )
    assert (
        curve[1] > 0.8 and curve[20:].mean() < -0.5
    )  # near: alike; far: opposite
"""),
md(r"""
How does a table of 32 independent rows come to know that position 20 is far from position 3?
Look at its principal components: subtract the mean row and find the directions along which the
rows vary most (a singular value decomposition). In every seed, a single direction carries about
four fifths of the variation, and each position's coordinate along it falls *monotonically* with
$t$ — almost linearly, and almost identically in the three runs. Training turned the table into a ruler. Nothing told the model that 6 follows 5: the order
came from the training signal alone.
"""),
code(r"""
coords = {}
fig, ax = plt.subplots(figsize=(6.5, 3))
for seed, table in learned_tables.items():
    centred = table - table.mean(0)
    U, S, _ = torch.linalg.svd(centred, full_matrices=False)
    share = (S[0] ** 2 / (S**2).sum()).item()
    coord = U[:, 0] * S[0]
    coord = coord * torch.sign(
        coord[0]
    )  # an SVD direction's sign is arbitrary
    steps = coord[1:] - coord[:-1]
    print(
        f"seed {seed}: first direction carries {share:.0%} of the variation;"
        " coordinate falls at every step from t to t + 1:"
        f" {bool((steps < 0).all())}"
    )
    assert share > 0.6 and (steps < 0).all()
    coords[seed] = coord
    ax.plot(coord, "o-", ms=3, lw=1, label=f"seed {seed} ({share:.0%})")
ax.axhline(0, color="k", lw=0.5)
ax.set_xlabel("position t")
ax.set_ylabel("coordinate on the first direction")
ax.set_title("Trained position table: one direction orders the positions")
ax.legend()
plt.show()
spread = (
    torch.stack(list(coords.values())).amax(0)
    - torch.stack(list(coords.values())).amin(0)
).max()
print(f"largest difference between the seeds' coordinates: {spread:.2f}")
assert spread < 0.1
"""),
md(r"""
## Prove it: the same GPT, six encodings

Now the experiment. One small character-level GPT — 2 layers, 4 heads, width 64, context
$T = 32$ characters — is trained on the training plays with `gptlib.pretrain.train`, once per
encoding and per seed, with everything else equal: the same seeds, the same batches, the same optimiser and schedule (AdamW, learning rate $3 \times 10^{-3}$, warm-up, cosine
decay), the same 1,000 steps of 32 windows. Each trained model is then scored on the
*validation* plays, with windows of $T$, $2T$ and $4T$ characters — the same windows for every
model. The encodings with a table (one-hot, learned) cannot read windows longer than $T$ at all.
A seventh run, `sinusoidal-scaled`, is a control explained below.

Training 21 models takes far longer than this chapter may, so the script
`scripts/experiments/positional.py` does it and writes `data/results/positional.json`, with the
command that produced it and every setting inside; a test (`tests/test_positional_experiment.py`)
re-runs a reduced version and checks that it agrees. Here we load the file:
"""),
code(r"""
print("command:", results["command"])
print({k: settings[k] for k in ("steps", "block_size", "seeds", "multiples")})
print("model:", settings["model"])
print("train:", settings["train"])
print("eval:", settings["eval"])
runs = results["runs"]
encodings = settings["encodings"]
lengths = [m * T for m in settings["multiples"]]


def losses(encoding, length):
    # Validation losses at a window length, one per seed (None if the
    # encoding cannot read it).
    vals = [
        r["val_loss"].get(str(length))
        for r in runs
        if r["encoding"] == encoding
    ]
    return None if None in vals else vals


def mean(values):
    return sum(values) / len(values)


print(
    f"\nvalidation loss (nats/char): mean over seeds {settings['seeds']} [min,"
    " max]"
)
print(
    f"{'encoding':>17}"
    + "".join(f"{f'{L} chars ({L // T}x)':>23}" for L in lengths)
)
for e in encodings:
    row = [
        (
            f"{'cannot read':>23}"
            if losses(e, L) is None
            else (
                f"{mean(losses(e, L)):>9.3f} [{min(losses(e, L)):.3f},"
                f" {max(losses(e, L)):.3f}]"
            )
        )
        for L in lengths
    ]
    print(f"{e:>17}" + "".join(row))
"""),
md(r"""
**At the training length** (the first column), four things stand out, and the cell below checks
each of them for every seed separately:

1. Every model that is *told* positions directly beats `none`, which has only the causal mask to
   go on, by a wide margin — with one exception, point 4.
2. One-hot and learned positions score the same, as they must: they are the same model (a
   one-hot vector times a matrix is a table lookup), differing only in how the random initial
   values were laid out.
3. RoPE is the best of all.
4. The sinusoidal model is the *worst* of all — worse even than no positions.
"""),
code(r"""
one_x = {e: losses(e, T) for e in encodings}
told = ("onehot", "learned", "rope", "alibi")
for s, seed in enumerate(settings["seeds"]):
    gap = one_x["none"][s] - max(one_x[e][s] for e in told)
    print(
        f"seed {seed}: 'none' is {gap:.2f} nats/char worse than the worst of"
        f" {told}"
    )
    assert gap > 0.1
    others = min(one_x[e][s] for e in encodings if e != "rope")
    print(
        f"seed {seed}: RoPE {one_x['rope'][s]:.2f}, the next best {others:.2f}"
    )
    assert one_x["rope"][s] < others - 0.02
    assert one_x["sinusoidal"][s] > one_x["none"][s]
diff = abs(mean(one_x["onehot"]) - mean(one_x["learned"]))
print(f"one-hot vs learned, mean over seeds: difference {diff:.3f}")
assert diff < 0.03
"""),
md(r"""
Why do the sinusoids fail here, when the Transformer was built on them? Because of *scale*. The
sinusoids have values in $[-1, 1]$: every position vector has length $\sqrt{C/2} = \sqrt{32}
\approx 5.7$. GPT-2's initialisation, which `gptlib` uses, draws token embeddings with standard
deviation 0.02: length about $0.02\sqrt{64} = 0.16$. Added together, the position outweighs the
token by a factor of 35, and the first LayerNorm sees almost nothing but position — two different
characters at the same position look nearly identical to the first layer:
"""),
code(r"""
set_seed(0)
for kind in ("learned", "sinusoidal"):
    m = GPT(
        GPTConfig(
            vocab_size=70,
            block_size=T,
            n_layer=2,
            n_head=H,
            n_embd=C,
            pos_encoding=kind,
        )
    ).eval()
    with torch.no_grad():
        tokens = torch.arange(70)[None, :T]  # 32 different characters
        same_position = [
            m.h[0].ln_1(m.pos.embed(m.wte(torch.tensor([[c] * T])), 0))[0, 5]
            for c in (10, 40)
        ]  # two characters at position 5
        cos = torch.nn.functional.cosine_similarity(*same_position, dim=0)
        ratio = (
            m.pos.embed(torch.zeros(1, T, C), 0)[0].norm(dim=-1).mean()
            / m.wte(tokens)[0].norm(dim=-1).mean()
        )
    print(
        f"{kind:>10} at initialisation: |position| / |token| = {ratio:5.1f};"
        " two characters at position 5 after LayerNorm: cosine similarity"
        f" {cos:.2f}"
    )
    assert (cos > 0.99) == (kind == "sinusoidal")
"""),
md(r"""
The original Transformer does not leave its token embeddings small: {cite:t}`vaswani2017attention`
multiply them by $\sqrt{C}$ (their §3.4). The control run `sinusoidal-scaled` does the converse:
it multiplies the sinusoids by $0.02\sqrt{2}$, so that their root-mean-square value per
coordinate is 0.02, like a freshly initialised learned table. With that one change the
sinusoids beat no positions (every seed), though in this short training they stay behind the
learned table. The lesson is not "sinusoids are bad": an encoding added to the embeddings has to
be on the embeddings' scale.
"""),
code(r"""
for s, seed in enumerate(settings["seeds"]):
    print(
        f"seed {seed}: sinusoidal {one_x['sinusoidal'][s]:.2f}, scaled"
        f" {one_x['sinusoidal-scaled'][s]:.2f}, none {one_x['none'][s]:.2f},"
        f" learned {one_x['learned'][s]:.2f}"
    )
    assert (
        one_x["learned"][s]
        < one_x["sinusoidal-scaled"][s]
        < one_x["none"][s]
        < one_x["sinusoidal"][s]
    )
"""),
md(r"""
**Beyond the training length.** Now the windows of 64 and 128 characters. A model that has
learned something general about *relative* position should do at least as well on a longer
window — each prediction has more context, never less. The upper plot shows the mean loss over
each window; the lower one the loss at each position of the 128-character windows, averaged over
seeds (the dashed line marks the training length: everything to its right is a position no model
saw in training; the unscaled sinusoids leave the plot).
"""),
code(r"""
readers = [e for e in encodings if losses(e, lengths[-1]) is not None]
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7.2, 7.6), layout="constrained")
for i, e in enumerate(readers):
    ys = [losses(e, L) for L in lengths]
    ax1.errorbar(
        lengths,
        [mean(y) for y in ys],
        yerr=[[mean(y) - min(y) for y in ys], [max(y) - mean(y) for y in ys]],
        marker="o",
        capsize=3,
        label=e,
        color=f"C{i}",
    )
    by_pos = torch.tensor(
        [r["loss_by_position"] for r in runs if r["encoding"] == e]
    ).mean(0)
    ax2.plot(range(1, len(by_pos) + 1), by_pos, lw=1, label=e, color=f"C{i}")
for e in ("onehot", "learned"):
    ax1.plot(
        [T], [mean(losses(e, T))], "x", ms=8, label=f"{e} (cannot read more)"
    )
ax1.set_xscale("log", base=2)
ax1.set_xticks(lengths, [f"{L} ({L // T}x)" for L in lengths])
ax1.set_xlabel("evaluation window (characters)")
ax1.set_ylabel("validation loss (nats/char)")
ax1.set_title("Mean loss per window (bars: min-max over seeds)")
ax1.legend(loc="upper left", ncols=2)
ax2.axvline(T, color="k", ls="--", lw=0.8)
ax2.set_ylim(1.4, 4.5)
ax2.set_xlabel("position in a 128-character window (1 = first)")
ax2.set_ylabel("loss at that position")
ax2.set_title(
    "Loss by position, 4x windows (mean over seeds; colours as above)"
)
plt.show()
"""),
md(r"""
ALiBi is the only encoding whose loss does not rise past the training length: its attention
scores depend only on distances, and a distance of 40 characters is penalised exactly as the
formula says whether or not training ever produced one. RoPE is also relative, and it is the
best model at the training length — but its loss climbs beyond position 32 (slowly at first,
then steeply, in the lower plot), as
{cite:t}`press2022train` found for rotary embeddings. Relative is not the same as
length-independent: RoPE's scores depend on the offset through the angles $(n - m)\theta_i$, and
for its slowly turning pairs, offsets beyond 31 produce angles that never occurred in training
(the cell below lists them) — a likely reason, though this experiment does not isolate it. The
sinusoids degrade as soon as the window passes 32 characters — badly unscaled, clearly when
scaled: from position 32 on, the first layer receives position vectors it never saw. No
positions at all degrades more gently. The checks, again for every seed:
"""),
code(r"""
theta = 10000.0 ** (-torch.arange(0, d, 2) / d)
print("RoPE pairs whose angle had not yet made a full turn at offset 31:")
for i, th in enumerate(theta.tolist()):
    if (T - 1) * th < 2 * math.pi:
        print(
            f"  pair {i}: angles up to {(T - 1) * th:.2f} rad in training, up"
            f" to {(4 * T - 1) * th:.2f} rad at 4x"
        )

rise = {
    e: [b - a for a, b in zip(losses(e, T), losses(e, lengths[-1]))]
    for e in readers
}
for s, seed in enumerate(settings["seeds"]):
    print(
        f"seed {seed}: rise from {T} to {lengths[-1]} characters: "
        + ", ".join(f"{e} {rise[e][s]:+.2f}" for e in readers)
    )
    assert rise["alibi"][s] < 0.05  # ALiBi holds its level
    assert all(
        rise[e][s] > rise["alibi"][s] + 0.1 for e in readers if e != "alibi"
    )
    assert (
        rise["sinusoidal"][s] > 1.0 and rise["sinusoidal-scaled"][s] > 0.3
    )  # absolute: breaks
    at_4x = {e: losses(e, lengths[-1])[s] for e in readers}
    assert min(at_4x, key=at_4x.get) == "alibi"  # best model on long windows
    assert at_4x["rope"] > at_4x["none"] - 0.02  # RoPE's lead is gone
"""),
md(r"""
## Position interpolation: squeezing a long window into the trained range

{cite:t}`chen2023extending` proposed a fix for models already trained with RoPE: to read a
window of $L' > L$ tokens with a model trained on $L$, *divide every position by $L'/L$* before
the rotation. Position $m$ becomes $m L/L'$, so every angle lies in the range that training
produced; the price is that neighbours are now $L'/L$ times closer in angle than the model ever
saw. They extended LLaMA models (7B to 65B parameters) from 2,048 up to 32,768 tokens this way,
showed that the interpolated attention scores have a far smaller upper bound than the
extrapolated ones — but they *fine-tuned* every model at the new length, for up to 1,000 steps,
before using it. In `gptlib`, `RotaryEmbedding(d, scale=...)` multiplies the positions:
$L' = 4L$ is `scale=1/4`.

Interpolation needs the trained model itself, which the results file does not store, so the next
cell trains the experiment's seed-0 RoPE model again — the same settings and batches, on one
thread like each run of the experiment (tens of seconds) — and scores it on the experiment's
128-character windows, once as trained and once with its positions scaled by 1/4:
"""),
code(r"""
from torch.nn import functional as F

from gptlib.data import encode_text, get_batch, load_text
from gptlib.pretrain import TrainConfig, train
from gptlib.tokenizer import CharTokenizer

torch.set_num_threads(1)  # as each run of the experiment: the same sums
train_text, val_text = load_text("train"), load_text("val")
tok = CharTokenizer.train(train_text + val_text + load_text("test"))
train_ids, val_ids = encode_text(train_text, tok), encode_text(val_text, tok)
ev = settings["eval"]


@torch.no_grad()
def loss_by_position(model, length):
    # Mean loss at each position of the experiment's validation windows
    # (its generator seed, batch size and number of batches): (length,).
    g = torch.Generator().manual_seed(ev["seed"])
    model.eval()
    total = torch.zeros(length, dtype=torch.float64)
    for _ in range(ev["n_batches"]):
        x, y = get_batch(val_ids, ev["batch_size"], length, g)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
        total += loss.double().sum(0)
    return total / (ev["batch_size"] * ev["n_batches"])


def with_rope(model, **options):
    # A copy of the model whose RoPE has these options (RoPE has no weights).
    other = copy.deepcopy(model)
    other.pos = RotaryEmbedding(d, **options)
    return other


def report(curves):
    print(f"{'':>36} {'positions 1-32':>14} {'33-128':>7} {'all':>6}")
    for name, c in curves.items():
        print(
            f"{name:>36} {c[:T].mean():>14.4f} {c[T:].mean():>7.4f}"
            f" {c.mean():>6.4f}"
        )


set_seed(0)
rope_model = GPT(
    GPTConfig(
        vocab_size=tok.vocab_size,
        block_size=T,
        pos_encoding="rope",
        **settings["model"],
    )
)
start = time.perf_counter()
train(
    rope_model,
    train_ids,
    TrainConfig(
        steps=settings["steps"], block_size=T, seed=0, **settings["train"]
    ),
    val_ids,
)
print(f"trained in {time.perf_counter() - start:.0f} s")
L = lengths[-1]  # 4T = 128 characters
rope_at_T = loss_by_position(rope_model, T).mean().item()
by_pos = {
    "RoPE as trained": loss_by_position(rope_model, L),
    "RoPE, positions x 1/4": loss_by_position(
        with_rope(rope_model, scale=T / L), L
    ),
}
print(f"loss on {T}-character windows: {rope_at_T:.4f}")
report(by_pos)
""", "nbval-ignore-output"),
md(r"""
Chen et al. always fine-tune after interpolating, so the next cell does a small version of
that: 100 steps on 128-character windows (8 windows a step, the same 1,024 characters per step
as pre-training; learning rate $10^{-3}$ with warm-up and cosine decay), once for the model as
trained and once for the interpolated one, from the same weights and with the same batches:
"""),
code(r"""
tune = TrainConfig(
    steps=100,
    block_size=L,
    batch_size=8,
    lr=1e-3,
    min_lr=1e-4,
    warmup_steps=10,
    weight_decay=0.1,
    grad_clip=1.0,
    eval_batches=2,
    seed=100,
)
start = time.perf_counter()
for name, scale in (
    ("RoPE, fine-tuned", 1.0),
    ("RoPE x 1/4, fine-tuned", T / L),
):
    tuned = with_rope(rope_model, scale=scale)
    train(tuned, train_ids, tune, val_ids)
    by_pos[name] = loss_by_position(tuned, L)
print(f"fine-tuned in {time.perf_counter() - start:.0f} s")
report(by_pos)
""", "nbval-ignore-output"),
code(r"""
seed0 = {r["encoding"]: r for r in runs if r["seed"] == 0}
retrained = (
    abs(rope_at_T - seed0["rope"]["val_loss"][str(T)]) < 0.02
    and abs(
        by_pos["RoPE as trained"].mean() - seed0["rope"]["val_loss"][str(L)]
    )
    < 0.02
)
near = {name: c[:T].mean().item() for name, c in by_pos.items()}
far = {name: c[T:].mean().item() for name, c in by_pos.items()}
plain, squeezed = "RoPE as trained", "RoPE, positions x 1/4"
plain_ft, squeezed_ft = "RoPE, fine-tuned", "RoPE x 1/4, fine-tuned"
checks = {
    "the experiment's seed-0 model, retrained here": retrained,
    "interpolated: worse than as trained beyond 32": (
        far[squeezed] > far[plain] + 0.3
    ),
    "interpolated: worse within the first 32 too": (
        near[squeezed] > near[plain] + 0.5
    ),
    "interpolated: worse than no positions at all": (
        by_pos[squeezed].mean() > seed0["none"]["val_loss"][str(L)] + 0.3
    ),
    "fine-tuning repairs both beyond 32": (
        far[plain_ft] < far[plain] - 0.4
        and far[squeezed_ft] < far[squeezed] - 0.8
    ),
    "fine-tuned: as trained beats interpolated": (
        far[plain_ft] < far[squeezed_ft] - 0.05
    ),
}
# the values the text below quotes, to within 0.05
quoted = [  # (measured, as the text says)
    (far[squeezed], 3.25),
    (far[plain], 2.58),
    (near[squeezed], 3.11),
    (near[plain], 1.90),
    (far[plain_ft], 1.89),
    (far[squeezed_ft], 2.04),
    (by_pos[squeezed].mean().item(), 3.22),
    (seed0["none"]["val_loss"][str(L)], 2.40),
]
checks["the values quoted below"] = all(
    abs(got - said) < 0.05 for got, said in quoted
)
for claim, holds in checks.items():
    print(f"{claim}: {holds}")
assert all(checks.values())

fig, ax = plt.subplots(figsize=(7.2, 4), layout="constrained")
positions = range(1, L + 1)
for (name, curve), style in zip(by_pos.items(), ("-", "-", "--", "--")):
    ax.plot(positions, curve, style, lw=1.2, label=name)
ax.plot(
    positions,
    seed0["alibi"]["loss_by_position"],
    ":",
    color="k",
    lw=1,
    label="ALiBi (seed 0, not fine-tuned)",
)
ax.axvline(T, color="k", ls="--", lw=0.8)
ax.set_ylim(1.4, 4.5)
ax.set_xlabel("position in a 128-character window (1 = first)")
ax.set_ylabel("loss at that position")
ax.set_title("Position interpolation on the seed-0 RoPE model, 4x windows")
ax.legend(loc="upper right", ncols=2)
plt.show()
"""),
md(r"""
Without fine-tuning, interpolation does not rescue this model; it makes it worse, before
position 32 and beyond. Beyond position 32 its loss is 3.25 nats per character against 2.58 for
RoPE as trained, and over the first 32 positions, which the model as trained reads exactly as in
training, it is 3.11 against 1.90. Over the whole window (3.22) it is worse than the seed-0
model with no positions at all (2.40). The price named above is the likely reason: the fast pairs, with which a character model
tells the last few characters apart, now turn by a quarter of their trained angle per
character — angles that training never put between neighbours. (Later methods interpolate only
the slow pairs and leave the fast ones alone, e.g. YaRN {cite:p}`peng2024yarn`.) After 100 steps
of fine-tuning both recover, and here the model fine-tuned *without* interpolation ends lower
beyond position 32 (1.89 against 2.04). That is not what Chen et al. found for LLaMA, where
fine-tuning the extrapolating model extended its usable context only slowly; their models,
windows (thousands of tokens) and head size (128) are far from a 2-layer model reading 128
characters, and one seed of a toy cannot say which difference matters. What it does show is
that interpolation is a starting point for fine-tuning, not a free longer context.
"""),
md(r"""
## The loss ladder so far

Chapters 1-4 measured each piece of the model on one yardstick, the *loss ladder*: every rung
trained on the same 3.07 million characters of the training plays (1,500 steps of 32 windows
of 64), its learning rate chosen on the validation plays (at seed 0), three seeds, and scored on every
64-character window of the validation plays (`scripts/experiments/ladder.py` writes
`data/results/ladder.json`; `gptlib.ladder` defines every rung). Chapter 4 ended with three
pre-LN blocks and *no* positions. This chapter's rungs add each encoding to that same stack,
which is a different setting from the experiment above (width 48 instead of 64, three blocks
instead of two, windows of 64 instead of 32, and a learning rate tuned for each model):
"""),
code(r"""
from gptlib.ladder import ladder_summary, ladder_table, read_ladder, rung_gap
from gptlib.viz.ladder import plot_ladder

ladder = read_ladder("../data/results/ladder.json")
print(ladder_table(ladder, upto_chapter=5))
plot_ladder(ladder, chapter=5)
plt.show()
"""),
md(r"""
Three encodings — learned, RoPE, ALiBi — beat no positions at every seed, by a wide margin,
and RoPE is again the best. The unscaled sinusoids are the exception, in a new form: at two
seeds they beat no positions, at the third they are worse, and their spread over seeds is
several times that of any other rung of chapters 4 and 5, while the experiment above, in a different setting
(width 64, two blocks, windows of 32, a fixed learning rate of $3 \times 10^{-3}$), found them
worse than no positions at every seed. This ladder does not isolate which difference matters;
what both agree on is that unscaled sinusoids, added to GPT-2-sized embeddings, are the weakest
and least reliable of the four.

One rung has not been passed: chapter 1's best counted n-gram, a table of next-character
counts for every 4-character context of the training plays, is still below every model here.
Scored on the same 64-character windows, a count table with millions of entries beats a
transformer of 92 thousand parameters that has seen 3 million characters. The transformer's
advantages are that it gets close with far fewer numbers, and that it keeps improving with
size and data where the counts run out (chapter 1's U-shape); chapter 7's larger shipped model
is the first rung to draw level with the table. The checks, in the worst case over seeds:
"""),
code(r"""
rows = {r["rung"]: r for r in ladder_summary(ladder, 5)}
steady = ("learned", "rope", "alibi")
spread = max(
    rows[name]["spread"]
    for name in ("3-blocks", "pos-learned", "pos-rope", "pos-alibi")
)
print(f"largest seed spread of 3-blocks, learned, RoPE, ALiBi: {spread:.3f}")
for e in steady + ("sinusoidal",):
    gap = rung_gap(ladder, f"pos-{e}", "3-blocks")
    print(f"{e:>10}: below no positions by {gap:+.3f} nats in the worst case")
    if e in steady:
        assert gap > 0.1 and gap > 4 * spread
sin = rows["pos-sinusoidal"]
print(f"sinusoidal seeds {sin['losses']}, spread {sin['spread']:.3f}")
assert sin["spread"] > 4 * spread
none = rows["3-blocks"]["losses"]
assert sum(x < min(none) for x in sin["losses"]) == 2  # two seeds better
assert sum(x > max(none) for x in sin["losses"]) == 1  # one seed worse
rope_lead = min(
    rung_gap(ladder, "pos-rope", f"pos-{e}")
    for e in ("learned", "sinusoidal", "alibi")
)
print(f"RoPE beats every other encoding by at least {rope_lead:.3f} nats")
assert rope_lead > 2 * spread
ngram = rows["ngram"]
ngram_n = next(r["n"] for r in ladder["runs"] if r["rung"] == "ngram")
print(
    f"best counted n-gram (n = {ngram_n}): {ngram['mean']:.3f};"
    f" RoPE is above it by {-rung_gap(ladder, 'pos-rope', 'ngram'):.3f} nats"
)
assert rung_gap(ladder, "pos-rope", "ngram") < 0  # the table still wins
"""),
md(r"""
## Play with it

Pick an encoding and a position $t$: the explorer shows the vector that encodes $t$ (for the
absolute encodings and RoPE's rotated unit vector) and how $t$ relates to every other position —
the row $t$ of the matrices above. (The controls need a running notebook; the book shows the
explorer as it was saved, and the figure below shows row $t = 16$ of every encoding at once.)
"""),
code(r"""
notes = {
    "one-hot": (
        "A single 1 at index t: every other position has similarity 0, near or"
        " far."
    ),
    "learned (trained)": (
        "Row t of the trained table (seed 0): similarity was learned, not"
        " given."
    ),
    "sinusoidal": (
        "sin/cos pairs at 32 frequencies; similarity depends only on t - s."
    ),
    f"RoPE (head size {d})": (
        "A unit vector rotated to position t: the score with position s"
        " depends only on t - s."
    ),
    f"ALiBi head 1 (m = 1/{1 / slopes[0]:.0f})": (
        "No vector; the score bias -m|t - s| (steepest head; a causal model"
        " uses only s <= t)."
    ),
    f"ALiBi head {H} (m = 1/{1 / slopes[-1]:.0f})": (
        "No vector; the score bias -m|t - s| (shallowest head; a causal model"
        " uses only s <= t)."
    ),
}
position_explorer(
    similarity, vectors, notes, encoding="sinusoidal", position=16
)
"""),
code(r"""
fig, axes = plt.subplots(
    3, 2, figsize=(7.2, 7.6), sharex=True, layout="constrained"
)
for ax, (name, sim) in zip(axes.flat, similarity.items()):
    ax.plot(sim[16], "o-", ms=2.5, lw=1)
    ax.axvline(16, color="C3", ls="--", lw=0.8)
    ax.set_title(name)
    ax.set_ylabel(value_name(name))
for ax in axes[-1]:
    ax.set_xlabel("position s")
fig.suptitle("Position t = 16 against every position s")
plt.show()
"""),
md(r"""
## Common misconceptions

```{admonition} Common misconception: "learned position embeddings need no maximum length"
:class: warning

A common description of GPT's position embeddings says that, learned like word embeddings, they
need no maximum length to be set. The opposite is true. A learned table has one row per
position, so its number of rows *is* the maximum length, fixed before training begins: 1024 for
GPT-2 (its `wpe` above has 1024 rows), 2048 for GPT-3 {cite:p}`brown2020language`, 512 for
BERT. Position 1024 has no row, no vector and no trained weights. The cell below feeds 1025
tokens to a GPT whose table has GPT-2's 1024 rows; `gptlib` refuses with an error that says why,
instead of failing somewhere inside the lookup.
The experiment above shows the practical consequence: the one-hot and learned models could not
even be *asked* about windows longer than 32 characters.
```
"""),
code(r"""
set_seed(0)
gpt2_sized = GPT(
    GPTConfig(
        vocab_size=70,
        block_size=1024,
        n_layer=1,
        n_head=4,
        n_embd=64,
        pos_encoding="learned",
    )
)
gpt2_sized(torch.zeros(1, 1025, dtype=torch.long))
""", "raises-exception"),
md(r"""
The encodings computed from a formula have no such limit: the same model with sinusoidal,
RoPE or ALiBi positions reads the 1025 tokens (how *well* it reads them is the question the
experiment answered):
"""),
code(r"""
for kind in ("sinusoidal", "rope", "alibi"):
    set_seed(0)
    m = GPT(
        GPTConfig(
            vocab_size=70,
            block_size=1024,
            n_layer=1,
            n_head=4,
            n_embd=64,
            pos_encoding=kind,
        )
    ).eval()
    with torch.no_grad():
        logits, _ = m(torch.zeros(1, 1025, dtype=torch.long))
    print(
        f"{kind:>10}: logits {tuple(logits.shape)}, all finite:"
        f" {bool(torch.isfinite(logits).all())}"
    )
    assert logits.shape == (1, 1025, 70) and torch.isfinite(logits).all()
"""),
md(r"""
```{admonition} Common misconception: "one-hot positions and learned position embeddings are different methods"
:class: warning

Explanations of GPT sometimes list one-hot positions as a method of their own, with the drawback
that they "explode the dimension". The drawback is real for one way of using them: one-hot
vectors are as long as the maximum sequence, and *concatenating* them to the token embeddings
would widen every layer of the model. The usual way is to multiply the one-hot vector by a
matrix $W$ and add the result — and $W e_t$ is column $t$ of $W$. One-hot positions times a learned matrix *are* a learned position
table (we proved the outputs equal above); the "dimension explosion" is avoided by the very
lookup that GPT-2 uses. What one-hot and learned tables share is the fixed maximum length. The
cell below counts what concatenation would cost GPT-2 small.
```
"""),
code(r"""
from gptlib.block import Block


def block_parameters(width, n_heads):
    # Parameters of one GPT-2 block of gptlib at this width (built on the
    # meta device: no memory).
    with torch.device("meta"):
        return sum(p.numel() for p in Block(width, n_heads).parameters())


concat_width = 768 + 1024
plain, concat = block_parameters(768, 12), block_parameters(concat_width, 14)
print(f"GPT-2 block at width 768: {plain:>12,} parameters")
print(
    f"with 1024 one-hot features concatenated (width {concat_width}):"
    f" {concat:>12,} ({concat / plain:.1f}x)"
)
print(
    f"projected instead (= the learned table): + {1024 * 768:,} parameters"
    " once, width stays 768"
)
"""),
md(r"""
## Exercises

**Exercise 1.** Shifting by $a$ and then by $b$ should be shifting by $a + b$. Show with
`sinusoidal_shift_matrix` that $M_b M_a = M_{a+b}$, that $M_k$ is orthogonal ($M_k^\top M_k = I$,
so a shift never changes a vector's length), and that $M_{-k} = M_k^\top$ (shifting back undoes
shifting forward).
"""),
code(r"""
# Solution
M = lambda k: sinusoidal_shift_matrix(k, 64).double()
I = torch.eye(64, dtype=torch.float64)
for a_, b_ in [(3, 4), (10, -25), (100, 1)]:
    assert torch.allclose(M(b_) @ M(a_), M(a_ + b_), atol=1e-6)
for k in (1, 17, 300):
    assert torch.allclose(M(k).T @ M(k), I, atol=1e-6)
    assert torch.allclose(M(-k), M(k).T, atol=1e-6)
print("M_b M_a = M_(a+b), M_k orthogonal, M_-k = M_k^T: checked")
""", "hide-cell"),
md(r"""
**Exercise 2.** RoPE and the sinusoidal encoding use the same frequencies. Show that if a query
and a key both equal $(1, 0, 1, 0, \dots)$ (length 64), the RoPE score between positions $s$ and
$t$ equals the sinusoidal dot product $\mathrm{PE}(s) \cdot \mathrm{PE}(t)$ with $C = 64$, for
all $s, t < 100$. Why? (Hint: what does RoPE do to the pair $(1, 0)$ at position $t$?)
"""),
code(r"""
# Solution: R(t) turns the pair (1, 0) into (cos t*theta_i, sin t*theta_i) --
# the sinusoidal pair,
# with sin and cos swapped -- so the RoPE-rotated vectors have the same Gram
# matrix as PE.
v = torch.zeros(64, dtype=torch.float64)
v[0::2] = 1.0
x = v.expand(1, 1, 100, 64)
rq, rk = RotaryEmbedding(64)(x, x)
rope_scores = rq[0, 0] @ rk[0, 0].T  # (100, 100)
pe = sinusoidal_table(100, 64).double()
print(
    "RoPE scores == sinusoidal dot products:",
    torch.allclose(rope_scores, pe @ pe.T, atol=1e-6),
)
assert torch.allclose(rope_scores, pe @ pe.T, atol=1e-6)
""", "hide-cell"),
md(r"""
**Exercise 3.** With equal content scores, ALiBi head $h$ gives a key at distance $k$ a weight
proportional to $e^{-m_h k}$, so the weight halves every $\ln 2 / m_h$ tokens. For a model with
12 heads (not a power of two), compute the half-weight distance of every head from
`alibi_slopes(12)`. Then check that `gptlib`'s attention really applies the bias that way: take
a `MultiHeadAttention` with 12 heads, zero its query weights (so every content score is 0), run
it causally on 500 random vectors with `ALiBiPositional(12)`'s bias, and compare, for the
steepest and the shallowest head, the last query's weight on the key $\ln 2/m_h$ tokens back
(rounded to a whole token) with its weight on itself.
"""),
code(r"""
# Solution
from gptlib.attention import MultiHeadAttention
from gptlib.positional import ALiBiPositional

slopes12 = alibi_slopes(12)
half = math.log(2) / slopes12
print("half-weight distance per head:", [f"{h:.1f}" for h in half.tolist()])
set_seed(0)
attn = MultiHeadAttention(12 * 8, 12).double().eval()
with torch.no_grad():
    attn.c_attn.weight[: 12 * 8] = 0.0  # the query rows: content scores 0
    attn.c_attn.bias[: 12 * 8] = 0.0
x = torch.randn(1, 500, 12 * 8, dtype=torch.float64)
bias = ALiBiPositional(12).attn_bias(500, 500, 0)
with torch.no_grad():
    _, w = attn(x, bias=bias.double(), causal=True, return_weights=True)
for h in (int(slopes12.argmax()), int(slopes12.argmin())):
    k = round(half[h].item())
    ratio = (w[0, h, 499, 499 - k] / w[0, h, 499, 499]).item()
    print(
        f"head with m = {slopes12[h]:.4f}: weight {k} tokens back / weight on"
        f" itself = {ratio:.3f}"
    )
    # e^(-m k) exactly (the bias enters the scores unscaled), about a half
    assert abs(ratio - math.exp(-slopes12[h].item() * k)) < 1e-9
    assert 0.4 < ratio < 0.6
""", "hide-cell"),
md(r"""
## Key points

- Attention without positions is permutation-equivariant: it sees a set of tokens. Order has to
  be put in. A causal mask lets some order leak in through depth, but only indirectly.
- **Absolute** encodings add a vector per position to the token embeddings. One-hot vectors times
  a matrix are exactly a learned table (GPT-2's `wpe`); both fix a maximum length. A trained
  table, though it starts with no notion of nearness, lays its positions out in order along one
  direction. Sinusoids
  (Vaswani et al.) are fixed, exist for every position, turn a shift into a fixed linear map,
  and make similarity a function of distance.
- **Relative** encodings act inside attention. The family starts with Shaw et al.'s learned
  vectors per clipped distance and T5's learned scalar bias per distance bucket. RoPE rotates
  queries and keys so that scores depend on the offset; ALiBi subtracts a fixed per-head linear
  distance penalty.
- RoPE's pairs come in two layouts: adjacent features (RoFormer, `gptlib`'s default) or the two
  halves of the vector (GPT-NeoX, Hugging Face's LLaMA). They differ by a permutation of the
  features, so weights trained with one need that one. Su et al.'s "long-term decay" is an upper
  bound on the score that shrinks with distance; the score of two unrelated random vectors does
  not decay at all.
- An encoding added to the embeddings must match their scale: unit-size sinusoids swamp GPT-2's
  small token embeddings, and then they do worse than no positions at all.
- In one small GPT trained on 32-character windows, every encoding on the right scale beat no
  encoding at the training length, and RoPE was best. On windows 4× longer, only ALiBi kept its
  loss; RoPE's lead was gone and both sinusoidal models degraded. Relative is not the same as
  length-independent.
- Position interpolation (dividing RoPE's positions by 4) made the seed-0 RoPE model worse on
  4× windows without fine-tuning, within the training length and beyond it; after 100 steps of fine-tuning it recovered,
  but less than the same fine-tuning without interpolation. It is a starting point for
  fine-tuning, as Chen et al. use it, not a free extension.

## References

The sinusoidal encoding and the Transformer {cite:p}`vaswani2017attention`; learned position
tables in GPT {cite:p}`radford2018improving`, GPT-2 {cite:p}`radford2019language` and BERT
{cite:p}`devlin2019bert`; relative position representations {cite:p}`shaw2018self` and T5's
relative bias {cite:p}`raffel2020exploring`; rotary embeddings {cite:p}`su2021roformer`, their
layouts in LLaMA {cite:p}`touvron2023llama` and GPT-NeoX {cite:p}`black2022gpt`, and position
interpolation {cite:p}`chen2023extending` (and YaRN {cite:p}`peng2024yarn`); ALiBi and length
extrapolation {cite:p}`press2022train`. Causal language models without positional encodings
{cite:p}`haviv2022transformer`. Full entries are on the [References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "05_positions.ipynb", CELLS)
