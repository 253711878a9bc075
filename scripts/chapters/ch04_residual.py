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
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from gptlib import set_seed, show
from gptlib.data import encode_text, get_batch, load_text
from gptlib.model import GPT, GPTConfig
from gptlib.normalization import MLP, Block, LayerNorm, RMSNorm, gelu_tanh
from gptlib.pretrain import TrainConfig, train
from gptlib.tokenizer import CharTokenizer

plt.rcParams["figure.dpi"] = 90
torch.set_printoptions(precision=4)
# The models in this chapter are tiny: more threads buy little, and on a busy
# machine they
# slow everything down.
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

**The MLP** widens each position's vector to four times its width, applies a nonlinearity and narrows it back:
$\mathrm{MLP}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2$ with $W_1 \in \mathbb{R}^{4C \times C}$
and $W_2 \in \mathbb{R}^{C \times 4C}$. Attention moves information *between* positions; the MLP
transforms each position's vector *on its own*. GPT-2's nonlinearity is the GELU
{cite:p}`hendrycks2016gaussian`, $\mathrm{GELU}(z) = z\,\Phi(z)$ with $\Phi$ the standard normal
distribution function, in its tanh approximation
$\tfrac12 z \big(1 + \tanh\big(\sqrt{2/\pi}\,(z + 0.044715\,z^3)\big)\big)$.

The original Transformer {cite:p}`vaswani2017attention` normalised *after* the addition:

$$
x' = \mathrm{LN}_1\big(x + \mathrm{Attn}(x)\big), \qquad x'' = \mathrm{LN}_2\big(x' + \mathrm{MLP}(x')\big).
$$

This is **post-LN**; GPT-2's placement is **pre-LN** {cite:p}`radford2019language`. In post-LN
the stream itself is normalised twice per block, so the sum above no longer holds and no path from
the loss to a lower layer is a pure identity: every one passes through the normalisations of all
the blocks above. The last experiment of this chapter trains both.

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
output equals its input plus its two writes:
"""),
code(r"""
total = stream[0] + sum(writes)
print(
    "x_12 == x_0 + sum of all writes:",
    torch.allclose(stream[-1], total, atol=1e-6),
)
per_block = all(
    torch.allclose(
        stream[i + 1], stream[i] + writes[2 * i] + writes[2 * i + 1], atol=1e-6
    )
    for i in range(6)
)
print("each block adds exactly its two writes:", per_block)
assert torch.allclose(stream[-1], total, atol=1e-6) and per_block
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
At initialisation the writes are faint next to the embedding. That is deliberate: GPT-2 starts
every `c_proj` (the layers that write into the stream) with weights of standard deviation
$0.02/\sqrt{2L}$ {cite:p}`radford2019language`, so that the sum of $2L$ writes stays about as large
as the embedding however deep the stack. Training makes the writes grow (exercise 3 looks).

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
  survives.

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
function, tested equal, and faster.) A yardstick for the curves: a model that ignores the context
and predicts every character with its frequency in the training text scores the *unigram* loss.
"""),
code(r"""
counts = torch.bincount(train_ids, minlength=V).double()
val_counts = torch.bincount(val_ids, minlength=V).double()
frequencies = counts / counts.sum()
unigram = (
    -(val_counts * frequencies.log()).sum().item() / val_counts.sum().item()
)
print(
    f"unigram loss on the validation plays: {unigram:.2f} nats/character "
    f"(ln V = {math.log(V):.2f})"
)

fig, ax = plt.subplots(figsize=(8, 3.8))
for key, style in zip(RUNS, ("C0-", "C3-", "C3--")):
    hist = results[key].history
    loss = np.convolve(
        [r["train_loss"] for r in hist], np.ones(10) / 10, mode="valid"
    )
    ax.plot(np.arange(10, len(hist) + 1), loss, style, label=RUNS[key])
ax.axhline(
    unigram,
    color="gray",
    ls=":",
    label="unigram: letter frequencies, no context",
)
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
more: its loss stays on the unigram line. With the gentler schedule,
post-LN trains as well — the placement is not broken, it tolerates a narrower range of learning
rates. What went wrong at $3 \times 10^{-3}$ is the failure we met at initialisation
without residual connections: the vectors of all positions collapsed onto one, so the model makes
the same prediction whatever the context. **Prove it**, on the validation plays:
"""),
code(r"""
final = {key: results[key].final_val_loss for key in RUNS}
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
assert final[("post", 3e-3, 0)] > unigram - 0.1 and same_everywhere
assert final[("pre", 3e-3, 0)] < unigram - 0.3
assert final[("post", 2e-3, 100)] < unigram - 0.3
assert top_similarity[("post", 3e-3, 0)] > 0.99
assert (
    max(top_similarity[("pre", 3e-3, 0)], top_similarity[("post", 2e-3, 100)])
    < 0.99
)
"""),
md(r"""
{cite:t}`xiong2020layer` analysed this difference. They show that at initialisation the expected
gradient of the last layer's parameters in a post-LN transformer does not shrink as the model gets
deeper, whereas in pre-LN it shrinks like $1/\sqrt{L}$, so that a large learning rate makes
post-LN's first updates too big. Their remedy for post-LN is the warm-up, and they found that
pre-LN trains without one. The third run above changed two things at once, the peak and the
warm-up; trials outside this notebook (the same model and 250 steps, seeds 0 to 2) separate them:

| post-LN, peak learning rate | no warm-up | 100-step warm-up |
|---|---|---|
| $1 \times 10^{-3}$ | trained, more slowly (2 of 2 seeds) | |
| $2 \times 10^{-3}$ | stuck on the unigram line for 2 of 3 seeds | trained (3 of 3) |
| $3 \times 10^{-3}$ | stuck (3 of 3) | stuck for 1 of 2 seeds |

Pre-LN trained in every trial, with or without warm-up, up to $10^{-2}$ (tried with batches of
16). So a warm-up widened post-LN's range of usable learning rates, as Xiong et al. found, but did
not make it as forgiving as pre-LN. GPT-2 put the norms in front of the sublayers and added a last
LayerNorm before the output layer {cite:p}`radford2019language`; GPT-3 was still trained with a
warm-up {cite:p}`brown2020language` — pre-LN makes the schedule forgiving, not unnecessary.
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
   $3 \times 10^{-3}$ our post-LN model learnt nothing beyond letter frequencies, the pre-LN one
   trained.
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
above. Does the identity still hold? Which sublayer writes the largest vectors (average norm over
positions), and are the writes still faint next to the embedding?
"""),
code(r"""
# Solution
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
assert torch.allclose(trained_stream[-1], total, atol=1e-5)
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
- Post-LN, the original placement, collapsed at a learning rate at which pre-LN trained without
  warm-up; a warm-up widened post-LN's usable range in our trials {cite:p}`xiong2020layer`.

## References

Residual connections {cite:p}`he2016deep`; layer normalisation {cite:p}`ba2016layer`; batch
normalisation {cite:p}`ioffe2015batch`; RMSNorm {cite:p}`zhang2019root`; GELU
{cite:p}`hendrycks2016gaussian`; the Transformer, post-LN {cite:p}`vaswani2017attention`; GPT-2,
pre-LN {cite:p}`radford2019language`; why pre-LN trains without warm-up {cite:p}`xiong2020layer`.
Full entries are on the [References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "04_residual.ipynb", CELLS)
