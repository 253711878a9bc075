"""Source of chapters/06_gpt.ipynb. Edit here, then:

    python scripts/chapters/ch06_gpt.py && python scripts/run_notebooks.py chapters/06_gpt.ipynb
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 6. The assembled GPT, its parameters, and GPT-2 compatibility

**Why.** The previous chapters built the parts one at a time: tokens and the next-token loss
(chapter 1), attention (chapter 2), the causal mask (chapter 3), residual blocks with LayerNorm and
an MLP (chapter 4), and positions (chapter 5). This chapter claims that a GPT is *nothing more*
than those parts stacked, and then tests the claim as hard as it can be tested: it gives the
assembled model GPT-2's weight layout and checks, number for number, that it computes what Hugging
Face's implementation of GPT-2 computes. Once the model is on the table we can also count it: where
its parameters sit, why GPT-2 small has exactly 124,439,808 of them, and how three numbers from the
GPT-3 paper, with the size of GPT-2's vocabulary, fix GPT-3's 175 billion and the compute it took to
train.
"""),
code(r"""
# errors shown on purpose print as "Type: message", without a traceback
%xmode Minimal
import dataclasses
import math
import os
import tempfile

import matplotlib.pyplot as plt
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

from gptlib import set_seed, show
from gptlib.attention import (
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from gptlib.data import encode_text, get_batch, load_text
from gptlib.gpt2 import (
    config_from_hf,
    from_hf,
    load_hf_checkpoint,
    to_hf,
    to_hf_state_dict,
)
from gptlib.masking import causal_mask
from gptlib.model import (
    GPT,
    PARAMETER_GROUPS,
    GPTConfig,
    count_gpt_flops_per_token,
    count_gpt_parameters,
    training_flops,
)
from gptlib.tokenizer import CharTokenizer
from gptlib.viz import (
    GPT_PRESETS,
    parameter_explorer,
    parameter_groups,
    plot_gpt_architecture,
)

plt.rcParams["figure.dpi"] = 90
torch.set_printoptions(precision=4)
# transformers reports through the `logging` module to stderr, which the
# notebook tests compare:
# keep only its errors, and no progress bars.
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
"""),
md(r"""
## The idea: one stream of vectors, written to by every block

The input is a sequence of $T$ token ids $x_1, \dots, x_T$, with $T$ at most the context length
$T_{\max}$ (`block_size`). Name the sizes once, in the book's notation: $V$ tokens in the
vocabulary, width $C$ (`n_embd`), $H$ attention heads of width $d = C/H$; and two symbols this
chapter adds to it, $T_{\max}$ for the context length and $L$ for the number of blocks
(`n_layer`). A GPT-2-style model computes, for a batch of $B$ sequences:

1. **Embed.** Look up each token's row of the token table $W_E \in \mathbb{R}^{V \times C}$ and
   add the row of the position table $W_P \in \mathbb{R}^{T_{\max} \times C}$ for its position:

   $$
   \begin{gathered}
   X^{(0)}_t = W_E[x_t] + W_P[t], \\
   X^{(0)} \in \mathbb{R}^{T \times C} \text{ per sequence, } (B, T, C) \text{ per batch.}
   \end{gathered}
   $$

   (In code, positions count from 0.) $X^{(0)}$ is the start of the *residual stream*: a
   $C$-vector per position that every later layer reads from and adds to.

   *Dropout* {cite:p}`srivastava2014dropout` can act here, on the attention weights after the
   softmax, and on the output of every sub-layer; GPT-1 used these three, at rate 0.1
   {cite:p}`radford2018improving`. For GPT-2 there is no published rate: the paper gives none,
   and the model code OpenAI released with the weights has no dropout at all
   {cite:p}`openai2019gpt2code` (the training code was not released). The 0.1 that GPT-2
   configurations carry (`embd_pdrop`, `attn_pdrop`, `resid_pdrop`) is the default of Hugging
   Face's `GPT2Config` {cite:p}`wolf2020transformers`, the same as GPT-1's. `gptlib`'s
   `GPTConfig` has one rate for all three places, 0 by default. Dropout acts only in training;
   in evaluation, and everywhere in this chapter, it is off.

2. **Blocks.** For $\ell = 1, \dots, L$, a pre-LayerNorm block (chapter 4) adds the output of
   causal multi-head self-attention (chapters 2 and 3), then the output of a position-wise MLP:

   $$
   \begin{aligned}
   A^{(\ell)} &= X^{(\ell-1)} + \mathrm{MHA}_\ell\!\left(\mathrm{LN}_{\ell,1}(X^{(\ell-1)})\right), \\
   X^{(\ell)} &= A^{(\ell)} + \mathrm{MLP}_\ell\!\left(\mathrm{LN}_{\ell,2}(A^{(\ell)})\right),
   \end{aligned}
   $$

   with $\mathrm{MLP}(u) = \mathrm{GELU}(u W_1 + b_1)\, W_2 + b_2$, $W_1 \in \mathbb{R}^{C \times 4C}$,
   $W_2 \in \mathbb{R}^{4C \times C}$. GPT-2 uses GELU's tanh approximation
   {cite:p}`hendrycks2016gaussian`,
   $\mathrm{GELU}(z) \approx \tfrac12 z\,\bigl(1 + \tanh\bigl(\sqrt{2/\pi}\,(z + 0.044715\,z^3)\bigr)\bigr)$
   (`gelu_new` in Hugging Face's configuration), and so does `gptlib`. The exact, erf-based GELU
   differs from it by up to $5 \times 10^{-4}$ per activation, so a model meant to reproduce
   GPT-2's numbers must use the same approximation. Attention is the only place
   where positions exchange information, and the causal mask lets position $t$ read positions
   $\le t$ only. Every block maps $(B, T, C)$ to $(B, T, C)$, which is why they can be stacked.

3. **Read out.** A final LayerNorm, then a product with the *same* token table, transposed:

   $$
   Z = \mathrm{LN}_f\!\left(X^{(L)}\right) W_E^{\top} \in \mathbb{R}^{T \times V}, \qquad
   p_\theta(x_{t+1} = v \mid x_{\le t}) = \mathrm{softmax}(Z_t)_v .
   $$

   Row $t$ of the logits $Z$ is the prediction for the token *after* position $t$. Using $W_E$ at
   both ends is *weight tying* {cite:p}`press2017using`: a token's input vector is also the vector
   its output score is measured against, and one $V \times C$ matrix is stored instead of two.

That is the whole of GPT-2 {cite:p}`radford2019language`, and of GPT before it
{cite:p}`radford2018improving` (which put the LayerNorm after each sub-layer). There is no
encoder, and nothing in a block reads anything but the sequence itself.

### See it: the assembled GPT

The three steps in one picture, with GPT-2 small's sizes (`GPTConfig()`'s defaults), drawn by
`gptlib.viz.plot_gpt_architecture`. The thick vertical line is the residual stream, $(B, T, C)$
from the first sum to `ln_f`; each block branches off it twice, normalises, computes, and adds
its result back. The colours are those of the parameter charts further down: embeddings blue,
attention orange, MLP green, norms red. The dashed link is the weight tying: `lm_head` owns no
matrix of its own.
"""),
code(r"""
plot_gpt_architecture(GPTConfig())
plt.show()
"""),
md(r"""
## The code

`gptlib.model.GPT` builds exactly these pieces, with GPT-2's names for them — `wte` ($W_E$),
`wpe` ($W_P$), `h` (the blocks), `ln_f`, `lm_head` — so that GPT-2's weights can later be loaded by
name. The constructor also ties the output layer to `wte` and applies GPT-2's initialisation as
Hugging Face and nanoGPT implement it: every weight matrix and embedding table drawn from a normal
distribution with standard deviation 0.02, biases zero, and the weights of the two projections in
each block that write into the residual stream drawn with a standard deviation smaller by
$1/\sqrt{2L}$ — the scaling the GPT-2 paper describes, by one over the square root of the number
of residual layers. (OpenAI's released GPT-2 code differs in details, e.g. it drew the position
table with standard deviation 0.01.)
"""),
code(r"""
show(GPT.__init__)
"""),
md(r"""
The forward pass is two methods. `hidden_states` computes the residual stream — the embeddings
and the output of each block — and `forward` reads out the logits and, given targets, the loss:
"""),
code(r"""
show(GPT.hidden_states)
"""),
code(r"""
show(GPT.forward)
"""),
md(r"""
We build a small model for this chapter, on the 70-character vocabulary of chapter 1, with
3 blocks of width 48 and 4 heads, reading at most 64 characters. PyTorch prints the module tree:
token table, position table, three identical blocks, final norm, output layer.
"""),
code(r"""
char_tok = CharTokenizer.train(
    load_text("train") + load_text("val") + load_text("test")
)
V = char_tok.vocab_size
config = GPTConfig(vocab_size=V, block_size=64, n_layer=3, n_head=4, n_embd=48)
set_seed(0)
model = GPT(config).eval()
print(model)
print(
    "lm_head.weight is wte.weight:", model.lm_head.weight is model.wte.weight
)
"""),
md(r"""
The model checks its inputs at the boundary and says what is wrong. A token id must exist in the
vocabulary (ids are row numbers of `wte`), and a sequence may not be longer than the context: a
learned position table has no row for position 64.
"""),
code(r"""
model(torch.tensor([[3, 70, 5]]))  # ids run from 0 to 69
""", "raises-exception"),
code(r"""
model(torch.zeros(1, 65, dtype=torch.long))  # 65 positions, the table has 64
""", "raises-exception"),
md(r"""
### See it: shapes through one forward pass

Now the forward pass by hand, step by step, for two 10-character sequences, using the model's own
submodules and the attention functions of chapter 2. `trace` records each intermediate tensor and
*asserts* that its shape is the symbolic one in the middle column, with $B = 2$, $T = 10$, $C = 48$,
$H = 4$, $d = 12$, $V = 70$.
"""),
code(r"""
idx = torch.tensor(
    [char_tok.encode("To be, or "), char_tok.encode("Now is the")]
)
B, T = idx.shape
C, H = config.n_embd, config.n_head
dims = {
    "B": B,
    "T": T,
    "C": C,
    "H": H,
    "d": C // H,
    "3C": 3 * C,
    "4C": 4 * C,
    "V": V,
}
rows = []


def trace(step, tensor, shape):
    expected = tuple(dims[s] for s in shape.split())
    assert tuple(tensor.shape) == expected, (
        step,
        tuple(tensor.shape),
        expected,
    )
    rows.append(
        (step, "(" + ", ".join(shape.split()) + ")", tuple(tensor.shape))
    )
    return tensor


with torch.no_grad():
    trace("token ids idx", idx, "B T")
    tok = trace("token embeddings wte(idx)", model.wte(idx), "B T C")
    pos = trace(
        "position embeddings wpe(0..T-1)", model.wpe(torch.arange(T)), "T C"
    )
    x = x_in = trace(
        "residual stream: tok + pos", model.drop(tok + pos), "B T C"
    )
    block = model.h[0]
    a = trace("block 0: ln_1(x)", block.ln_1(x), "B T C")
    qkv = trace(
        "block 0: c_attn(.) = q | k | v", block.attn.c_attn(a), "B T 3C"
    )
    q, k, v = (split_heads(t, H) for t in qkv.split(C, dim=2))
    trace("block 0: q, k, v split into heads", q, "B H T d")
    y, weights = scaled_dot_product_attention(
        q, k, v, causal_mask(T), return_weights=True
    )
    trace("block 0: softmax(q kᵀ/√d), masked", weights, "B H T T")
    trace("block 0: weights @ v", y, "B H T d")
    y = trace("block 0: heads merged", merge_heads(y), "B T C")
    x = trace("block 0: x + c_proj(y)", x + block.attn.c_proj(y), "B T C")
    u = trace(
        "block 0: mlp.c_fc(ln_2(x))", block.mlp.c_fc(block.ln_2(x)), "B T 4C"
    )
    u = trace("block 0: gelu(.)", block.mlp.gelu(u), "B T 4C")
    x = trace("block 0: x + mlp.c_proj(u)", x + block.mlp.c_proj(u), "B T C")
    block0_by_hand = x
    for i in range(1, config.n_layer):
        x = trace(f"block {i}", model.h[i](x), "B T C")
    x = trace("ln_f(x)", model.ln_f(x), "B T C")
    logits = trace(
        "logits = ln_f(x) @ wte.weightᵀ", x @ model.wte.weight.T, "B T V"
    )

print(f"{'step':<36}{'shape':<14}{'here':<16}")
for step, symbolic, concrete in rows:
    print(f"{step:<36}{symbolic:<14}{str(concrete):<16}")
"""),
md(r"""
The residual stream keeps the shape $(B, T, C)$ from the embeddings to `ln_f`. Inside a block it
fans out — three times as wide for $q, k, v$, split into $H$ heads of width $d$, four times as wide
in the MLP — and always comes back to $C$. The vocabulary appears only at the two ends, as a look-up
going in and a matrix product coming out. The one tensor that grows with $T^2$ is the attention
weights, $(B, H, T, T)$.

**Prove it.** The hand-assembled pass must *be* the model: block 0 written out equals
`model.h[0]`, and the logits built from the tied token table equal `model(idx)`'s.
"""),
code(r"""
with torch.no_grad():
    model_logits, _ = model(idx)
    block0 = model.h[0](x_in)
print(
    "block 0 by hand == model.h[0]:",
    torch.allclose(block0_by_hand, block0, atol=1e-6),
)
print(
    "logits by hand == model(idx): ",
    torch.allclose(logits, model_logits, atol=1e-6),
)
assert torch.allclose(block0_by_hand, block0, atol=1e-6)
assert torch.allclose(logits, model_logits, atol=1e-6)
assert len(model.hidden_states(idx)) == config.n_layer + 1
"""),
md(r"""
## Counting the parameters

Every parameter of a GPT-2-style model is in one of the matrices and vectors above, so the count
follows from $V$, $T_{\max}$, $L$ and $C$ alone (the number of heads splits the width but adds no
parameters). Per block, with a bias on every linear layer:

| part | weights | biases | total |
|---|---|---|---|
| attention: `c_attn` ($C \to 3C$) and `c_proj` ($C \to C$) | $3C^2 + C^2$ | $3C + C$ | $4C^2 + 4C$ |
| MLP: `c_fc` ($C \to 4C$) and `c_proj` ($4C \to C$) | $4C^2 + 4C^2$ | $4C + C$ | $8C^2 + 5C$ |
| LayerNorms `ln_1`, `ln_2` (a gain and a bias each) | | | $4C$ |
| **block** | | | $12C^2 + 13C$ |

Around the blocks sit the token table ($VC$), the position table ($T_{\max} C$) and `ln_f` ($2C$);
the output layer adds nothing, because it *is* the token table. So

$$
N \;=\; \underbrace{V C + T_{\max} C}_{\text{embeddings}} \;+\; L\,(12 C^2 + 13 C) \;+\; 2C .
$$

`count_gpt_parameters` is this formula (with switches for the variants other chapters use):
"""),
code(r"""
show(count_gpt_parameters)
"""),
md(r"""
For GPT-2 small, $V = 50{,}257$, $T_{\max} = 1{,}024$, $L = 12$, $C = 768$. The formula's terms,
worked out below, and `count_gpt_parameters` are one count; the independent counts are those of
the models themselves, `sum(p.numel() for p in model.parameters())` for our `GPT` and for Hugging
Face's `GPT2LMHeadModel`, both built from GPT-2 small's configuration on PyTorch's `meta` device —
parameters with shapes but no memory and no values, so nothing is allocated, initialised or
downloaded. (`parameters()` yields the tied matrix once.)
"""),
code(r"""
Vg, Tg, Lg, Cg = 50257, 1024, 12, 768
terms = {
    "token table V·C": Vg * Cg,
    "position table T·C": Tg * Cg,
    "blocks L·(12C² + 13C)": Lg * (12 * Cg**2 + 13 * Cg),
    "ln_f 2C": 2 * Cg,
}
for name, n in terms.items():
    print(f"{name:<24}{n:>14,}")
n_gpt2 = count_gpt_parameters(Vg, Tg, Lg, Cg)
print(f"{'count_gpt_parameters':<24}{n_gpt2:>14,}")

with torch.device("meta"):
    ours_small = GPT(GPTConfig())  # GPTConfig()'s defaults are GPT-2 small
    hf_small = GPT2LMHeadModel(GPT2Config())  # so are GPT2Config()'s
n_ours = sum(p.numel() for p in ours_small.parameters())
n_hf = sum(p.numel() for p in hf_small.parameters())
print(f"gptlib GPT: {n_ours:,}   Hugging Face GPT2LMHeadModel: {n_hf:,}")
assert n_gpt2 == sum(terms.values())
assert n_gpt2 == n_ours == n_hf  # the closed form against two built models
"""),
md(r"""
### See it: where the parameters are

`gptlib.viz.parameter_groups` sorts a built model's parameters into embeddings, attention, MLP
and norms by their names; `count_gpt_parameters(..., by_group=True)` gives the same four numbers
in closed form, and the cell below asserts that the two agree (and that Hugging Face's names sort
the same). They are shown for this chapter's character model and for GPT-2 small and GPT-3 175B
(next section), the last two built on the meta device.
"""),
code(r"""
gpt3_config = GPTConfig(
    vocab_size=50257, block_size=2048, n_layer=96, n_head=96, n_embd=12288
)
with torch.device("meta"):
    ours_gpt3 = GPT(gpt3_config)
models = {
    "character model (this chapter)": model,
    "GPT-2 small": ours_small,
    "GPT-3 175B": ours_gpt3,
}
groups = {}
for name, m in models.items():
    c = m.config
    groups[name] = count_gpt_parameters(
        c.vocab_size, c.block_size, c.n_layer, c.n_embd, by_group=True
    )
    assert groups[name] == parameter_groups(m)  # closed form == the model's
    assert sum(groups[name].values()) == sum(p.numel() for p in m.parameters())
assert (
    parameter_groups(hf_small) == groups["GPT-2 small"]
)  # Hugging Face's names sort the same
for name, g in groups.items():
    total = sum(g.values())
    print(
        f"{name:<32}{total:>17,}  "
        + "  ".join(f"{k} {v / total:6.1%}" for k, v in g.items())
    )
"""),
code(r"""
colours = {"embeddings": "C0", "attention": "C1", "MLP": "C2", "norms": "C3"}
fig, ax = plt.subplots(figsize=(7.4, 2.7))
for row, (name, g) in enumerate(groups.items()):
    total, left = sum(g.values()), 0.0
    for group in PARAMETER_GROUPS:
        share = g[group] / total
        ax.barh(
            row,
            share,
            left=left,
            color=colours[group],
            label=group if row == 0 else None,
        )
        if share > 0.06:
            ax.text(
                left + share / 2,
                row,
                f"{share:.0%}",
                ha="center",
                va="center",
                color="white",
                fontsize=10,
                fontweight="bold",
            )
        left += share
ax.set_yticks(
    range(len(groups)),
    [f"{name}\nN = {sum(g.values()):,}" for name, g in groups.items()],
    fontsize=9.5,
)
ax.invert_yaxis()
ax.set_xlim(0, 1)
ax.set_xlabel("share of the parameters")
ax.legend(ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
plt.tight_layout()
plt.show()
"""),
md(r"""
Two facts the formula predicts are visible. Inside the blocks the MLP always holds almost exactly
twice what attention holds ($8C^2$ against $4C^2$, up to the biases). And the embeddings' share falls as the model grows: they
grow like $VC$, the blocks like $12LC^2$. In the character model the blocks dominate because $V$
is tiny; in GPT-2 small the 50,257-row token table is still almost a third of the model; in GPT-3
it is 0.4%. The norms hold under 1% everywhere. The scaling-law study of {cite:t}`kaplan2020scaling`
counts only the *non-embedding* parameters, which for large models are close to $12LC^2$; their
reason is empirical: with the embeddings left out, the loss of models of different shapes follows
one much cleaner power law in $N$.

## GPT-3: 175 billion, from three numbers and a vocabulary

{cite:t}`brown2020language` describe GPT-3 175B as $L = 96$ layers of width $C = 12{,}288$ with
96 heads and a context of $T_{\max} = 2{,}048$. The paper does not print a vocabulary size: it
says GPT-3 reuses GPT-2's tokenization, whose vocabulary has $V = 50{,}257$ tokens. (Its
attention alternates dense and locally banded sparse patterns; a pattern decides which positions
are attended, not how many weights there are, so the count is unaffected.) The formula:

$$
\begin{aligned}
N &= \underbrace{50257 \cdot 12288}_{617.6\text{M}} + \underbrace{2048 \cdot 12288}_{25.2\text{M}} \\
  &\quad + 96 \cdot \underbrace{(12 \cdot 12288^2 + 13 \cdot 12288)}_{1.812\text{B per block}}
  + 2 \cdot 12288 \;\approx\; 174.6 \times 10^9 .
\end{aligned}
$$
"""),
code(r"""
n_gpt3 = count_gpt_parameters(
    vocab_size=50257, block_size=2048, n_layer=96, n_embd=12288
)
print(f"GPT-3: N = {n_gpt3:,} = {n_gpt3 / 1e9:.1f}B parameters")
print(f"of which 12·L·C² = {12 * 96 * 12288**2 / n_gpt3:.1%}")
print(f"in 16-bit floats: {2 * n_gpt3 / 1e9:.0f} GB of weights")
assert n_gpt3 == ours_gpt3.num_parameters()
assert abs(n_gpt3 - 175e9) / 175e9 < 0.01  # "175B"
"""),
md(r"""
**Training compute.** A weight matrix of size $n \times m$ costs $2nm$ floating-point operations
per token in the forward pass (a multiply and an add per weight) and about twice that in the
backward pass (gradients with respect to the input and to the weight): $6$ FLOPs per parameter per
token. Training on $D$ tokens therefore costs

$$
F_{\text{train}} \approx 6 N D \quad \text{FLOPs}
$$

{cite:p}`kaplan2020scaling`. Every GPT-3 model was trained on $D = 300$ billion tokens, and
{cite:t}`brown2020language` (appendix D) report $3.14 \times 10^{23}$ FLOPs for the 175B model.
"""),
code(r"""
flops_gpt3 = training_flops(n_gpt3, 300e9)
print(
    f"6·N·D = 6 × {n_gpt3:.3e} × 3e11 = {flops_gpt3:.3e} FLOPs (Brown et al."
    " 2020: 3.14e+23)"
)
assert abs(flops_gpt3 - 3.14e23) / 3.14e23 < 0.01
"""),
md(r"""
`6ND` counts only the weights. The attention scores $QK^\top$ and the weighted sum of values are
matrix products too, with no parameters: $2 \cdot 2TC$ FLOPs per token and layer forward, three
times that for training, $12 L T C$ per token when the whole $T \times T$ square is computed
({cite:t}`chowdhery2023palm`, appendix B).
`count_gpt_flops_per_token` adds them to $6N'$, where $N'$ is $N$ less the position table (a
table look-up costs no arithmetic; the token table stays, because, tied, it is also the output
layer's $C \times V$ matrix product). `GPT.flops_per_token` is this function applied to the
model's configuration:
"""),
code(r"""
show(count_gpt_flops_per_token)
"""),
md(r"""
**Prove it.** A formula for FLOPs can be checked against a count that does not use it. PyTorch's
`torch.utils.flop_counter.FlopCounterMode` records every matrix product a pass runs, forward and
backward, and counts its FLOPs from the operands' shapes. We run a real forward and backward pass
of the character model on 4 sequences of 64 tokens, and one of GPT-3 on a sequence of 2,048
tokens on the meta device (shapes only: no memory, no arithmetic; with the fused attention kernel,
`fast=True`, the same function, because the written-out attention looks at its mask's values,
which a meta tensor does not have). The counter sees only matrix products, so the closed form,
which also charges 6 FLOPs per token to every bias and norm gain, must exceed its count by
exactly $6 \times$ the number of those vector parameters, and by under 2% in all.
"""),
code(r"""
# FLOPs per token of one forward and backward pass of m on idx, as PyTorch
# counts them, by kind of matmul: the weights' (mm, addmm) and attention's
# (bmm, batched over heads)
def counted_flops(m, idx, targets=None):
    with FlopCounterMode(display=False) as counter:
        logits, loss = m(idx, targets)
        (logits.sum() if loss is None else loss).backward()
    m.zero_grad(set_to_none=True)
    counts = counter.get_flop_counts()["Global"]
    return {
        str(op).removeprefix("aten."): n / idx.numel()
        for op, n in counts.items()
    }


g = torch.Generator().manual_seed(0)
tokens = torch.randint(0, V, (4, 65), generator=g)
char_ops = counted_flops(model, tokens[:, :-1], tokens[:, 1:])  # real pass
with torch.device("meta"):
    gpt3_fast = GPT(dataclasses.replace(gpt3_config, fast=True))
gpt3_ops = counted_flops(gpt3_fast, torch.zeros(1, 2048, dtype=torch.long))

for name, m, ops in (
    ("character model", model, char_ops),
    ("GPT-3 175B", gpt3_fast, gpt3_ops),
):
    counted, formula = sum(ops.values()), m.flops_per_token()
    vectors = sum(p.numel() for p in m.parameters() if p.ndim == 1)
    print(
        f"{name:<16} closed form {formula:.4e}  counted {counted:.4e}  "
        f"excess {formula / counted - 1:.2%} (6 × biases and gains:"
        f" {6 * vectors / counted:.2%})"
    )
    assert formula - counted == 6 * vectors
    assert 0 < formula / counted - 1 < 0.02
attention = gpt3_ops["bmm"] / (gpt3_ops["mm"] + gpt3_ops["addmm"])
print(f"GPT-3 at 2,048 tokens: attention's matmuls add {attention:.1%}")
assert attention < 0.03
"""),
md(r"""
The closed form holds, to the last FLOP the counter can see. And at GPT-3's context, attention's
matrix products add under 3% to the weights', which is why $6ND$ is the standard estimate; GPT-3's
locally banded sparse layers, which alternate with the dense ones, compute only part of the
square, so its true share is smaller still. Exercise 3 finds the context length at which attention
would match the weights.

## The loss at initialisation

Chapter 1's uniform baseline was $\ln V$: the loss of a model that gives every token probability
$1/V$. A freshly initialised GPT is almost that model. Its logits are dot products of the final
normalised vector (mean 0, variance 1 over its $C$ features, so of length $\sqrt C$) with rows of
$W_E$ drawn from $\mathcal{N}(0, 0.02^2)$, so each logit is roughly $\mathcal{N}(0, \sigma^2)$ with
$\sigma = 0.02\sqrt{C}$: small, and unrelated to the right answer. Here is the character model on
real validation text:
"""),
code(r"""
val_ids = encode_text(load_text("val"), char_tok)
g = torch.Generator().manual_seed(0)
xb, yb = get_batch(val_ids, batch_size=16, block_size=64, generator=g)
with torch.no_grad():
    _, loss = model(xb, yb)
print(
    f"loss at initialisation {loss.item():.2f}   ln V = ln {V} ="
    f" {math.log(V):.2f}"
)
assert abs(loss.item() - math.log(V)) < 0.05
"""),
md(r"""
With GPT-2's vocabulary the same reasoning gives $\ln 50257 \approx 10.82$ nats. Small random
logits do not average out exactly, though: for $V$ independent logits of spread $\sigma$,
$\ln \sum_v e^{z_v} \approx \ln V + \sigma^2/2$, so the expected loss starts slightly *above*
$\ln V$, by $\sigma^2/2 = 0.0002\,C$. In the width-128 model below that is 0.026 nats, about the
sampling noise of a loss measured on 128 random targets (a standard error near
$\sigma/\sqrt{128} \approx 0.02$), so the cell checks only the logits' spread and that the loss is
near $\ln V$; exercise 4 averages over every possible target and
checks the $\sigma^2/2$ at GPT-2's width, 768. One block is enough for the check: `ln_f`
normalises whatever the blocks produce.
"""),
code(r"""
set_seed(0)
wide = GPT(
    GPTConfig(vocab_size=50257, block_size=64, n_layer=1, n_head=4, n_embd=128)
).eval()
g = torch.Generator().manual_seed(1)
ids, targets = torch.randint(
    0, 50257, (2, 2, 64), generator=g
)  # targets unrelated to ids
with torch.no_grad():
    wide_logits, wide_loss = wide(ids, targets)
sigma = 0.02 * math.sqrt(128)
print(f"logit spread {wide_logits.std().item():.3f} (0.02·√C = {sigma:.3f})")
print(
    f"loss at initialisation {wide_loss.item():.2f}   ln V ="
    f" {math.log(50257):.2f}"
)
assert abs(wide_logits.std().item() - sigma) < 0.05 * sigma
assert abs(wide_loss.item() - math.log(50257)) < 0.1
"""),
md(r"""
A loss well above $\ln V$ at step 0 is usually a sign of a bug: in the initialisation (logits far
larger than $\sigma$, so the model starts out confidently wrong), or in how the targets are built.

## GPT-2 compatibility, checked live

The strongest test of "a GPT is just these parts" is to compare with an implementation written by
other people. Hugging Face `transformers` has one for GPT-2. Loading GPT-2's released weights needs
the network, so we build a GPT-2 *locally* from a `GPT2Config` with random weights — the same
architecture, the same code path, the same layout — and convert that. Hugging Face initialises every
LayerNorm to gain 1, bias 0 and every bias to 0; we randomise those too, so that a LayerNorm or a
bias loaded into the wrong place would show.
"""),
code(r"""
set_seed(1)
hf_config = GPT2Config(
    vocab_size=V,
    n_positions=64,
    n_layer=3,
    n_head=4,
    n_embd=48,
    bos_token_id=V - 1,
    eos_token_id=V - 1,
)
# (GPT2Config's default bos/eos id, 50256, would lie outside a 70-token
# vocabulary)
hf = GPT2LMHeadModel(hf_config).eval()
with torch.no_grad():
    for name, p in hf.named_parameters():
        if "ln_" in name or name.endswith("bias"):
            p.add_(0.1 * torch.randn_like(p))
print(config_from_hf(hf_config))
rates = {
    f: getattr(hf_config, f)
    for f in ("embd_pdrop", "attn_pdrop", "resid_pdrop")
}
print(
    "GPT2Config's dropout defaults:",
    rates,
    "| GPTConfig's:",
    GPTConfig().dropout,
)
assert set(rates.values()) == {config_from_hf(hf_config).dropout}
"""),
md(r"""
`config_from_hf` translates the configuration: `n_positions` is our `block_size`, and the
`dropout=0.1` it prints is `GPT2Config`'s default for its three dropout rates, which the GPT-2
paper does not give and OpenAI's GPT-2 code does not have (see the start of the chapter); `eval()`
turns it off in both models. The weights need one twist besides renaming: GPT-2's code stores its
linear layers as `Conv1D` modules, whose weight is the transpose of `nn.Linear`'s. `from_hf`
transposes the four such matrices per block:
"""),
code(r"""
ours = from_hf(hf)
print(
    "HF   h.0.mlp.c_fc.weight:",
    tuple(hf.transformer.h[0].mlp.c_fc.weight.shape),
    "(in, out)",
)
print(
    "ours h.0.mlp.c_fc.weight:",
    tuple(ours.h[0].mlp.c_fc.weight.shape),
    "(out, in)",
)
print(
    "transposes of each other:",
    torch.equal(
        ours.h[0].mlp.c_fc.weight, hf.transformer.h[0].mlp.c_fc.weight.T
    ),
)
print(
    "same number of parameters:",
    ours.num_parameters() == sum(p.numel() for p in hf.parameters()),
)
"""),
md(r"""
**Prove it.** On real text, the converted model must produce Hugging Face's logits, and its
residual stream must match Hugging Face's hidden states layer by layer. One detail: Hugging Face's
*last* hidden state is taken after `ln_f`, while `GPT.hidden_states` returns every block's output
before it. So the last entry matches only once `ln_f` is applied.
"""),
code(r"""
with torch.no_grad():
    out = hf(xb, output_hidden_states=True)
    ours_logits, _ = ours(xb)
    states = ours.hidden_states(xb)


def max_diff(a, b):
    return (a - b).abs().max().item()


print(
    "logits: max |difference| < 1e-5:",
    max_diff(ours_logits, out.logits) < 1e-5,
)
print(
    f"{len(states)} gptlib states, {len(out.hidden_states)} Hugging Face"
    " states"
)
for i, (mine, theirs) in enumerate(zip(states, out.hidden_states)):
    label = "embeddings" if i == 0 else f"after block {i}"
    print(f"  {label:<16} equal: {max_diff(mine, theirs) < 1e-5}", end="")
    if i == len(states) - 1:
        print(
            f"   equal after ln_f: {max_diff(ours.ln_f(mine), theirs) < 1e-5}",
            end="",
        )
    print()
assert max_diff(ours_logits, out.logits) < 1e-5
assert all(
    max_diff(a, b) < 1e-5 for a, b in zip(states[:-1], out.hidden_states[:-1])
)
assert max_diff(ours.ln_f(states[-1]), out.hidden_states[-1]) < 1e-5
assert max_diff(states[-1], out.hidden_states[-1]) > 1e-2
"""),
md(r"""
The conversion also runs backwards: `to_hf_state_dict` renames and transposes again, and must give
back Hugging Face's state dict *exactly*, bit for bit; `to_hf` builds a working `GPT2LMHeadModel`
from it.
"""),
code(r"""
hf_sd, back_sd = hf.state_dict(), to_hf_state_dict(ours)
same_keys = set(hf_sd) == set(back_sd)
bit_equal = same_keys and all(
    torch.equal(back_sd[key], hf_sd[key]) for key in hf_sd
)
back = to_hf(ours)
with torch.no_grad():
    back_equal = max_diff(back(xb).logits, out.logits) < 1e-5
print(
    f"round trip: same {len(hf_sd)} keys: {same_keys}, bit-equal tensors:"
    f" {bit_equal}, same logits: {back_equal}"
)
assert same_keys and bit_equal and back_equal
"""),
md(r"""
Checkpoints on the Hugging Face Hub are laid out as `save_pretrained` writes them: a
`config.json` and the weights in `safetensors` files. `load_hf_checkpoint` reads such a directory with `safetensors` alone (never
a pickled `.bin`, which can run code when loaded). Saving our random GPT-2 and loading it back
exercises the same path a downloaded checkpoint takes:
"""),
code(r"""
with tempfile.TemporaryDirectory() as directory:
    hf.save_pretrained(directory)
    print(sorted(os.listdir(directory)))
    loaded = load_hf_checkpoint(directory)
with torch.no_grad():
    print(
        "loaded from disk, same logits:",
        max_diff(loaded(xb)[0], out.logits) < 1e-5,
    )
    assert max_diff(loaded(xb)[0], out.logits) < 1e-5
"""),
md(r"""
**Online?** The real GPT-2 is one call away. This book runs offline, so the code below is not
executed here; `from_pretrained` downloads the checkpoint (about half a gigabyte for GPT-2 small)
into the Hugging Face cache once, then converts it with the functions tested above.

```python
from transformers import AutoTokenizer
from gptlib.gpt2 import from_pretrained

gpt2 = from_pretrained("gpt2")          # or "gpt2-medium", "gpt2-large", "gpt2-xl"
tokenizer = AutoTokenizer.from_pretrained("gpt2")
ids = torch.tensor([tokenizer.encode("Hello world!")])
logits, _ = gpt2(ids)                   # (1, 3, 50257)
states = gpt2.hidden_states(ids)        # 13 tensors (1, 3, 768)
```

## A GPT-2 snippet, corrected

A code snippet that circulates in explanations of GPT reads GPT-2's hidden states like this
(after loading the tokenizer and `GPT2Model.from_pretrained('gpt2')`):

```python
# Initialize hidden state with zeros
hidden_states = torch.zeros((1, len(indexed_tokens), model.config.n_embd))

with torch.no_grad():
    outputs, _ = model(tokens_tensor, past=None, attention_mask=None, token_type_ids=None,
                       position_ids=None, head_mask=None)
    # Get hidden states for each layer
    hidden_states = outputs[2][-1].permute(1, 0, 2).squeeze().numpy()
```

It was written for the `transformers` of before version 4, whose models returned plain tuples and
whose cache argument was called `past`, and it could not have worked even there: judging by the
source of the 2.x releases (we cannot run them here), `GPT2Model` returned
`(last_hidden_state, presents)`, so `outputs[2]` indexed the batch dimension, of size 1; the
per-layer hidden states came back, as a third element, only when switched on. Against today's
library (5.24 here) it goes wrong in three ways, two of them silently:

1. **A model output is a dictionary, not a tuple.** `model(...)` returns a `ModelOutput`, an
   ordered dictionary with attribute access, and unpacking a dictionary yields its *keys*:
   `outputs, _ = ...` "succeeds" with `outputs == 'last_hidden_state'`, and the error surfaces
   two lines later: `outputs[2][-1]` is the string `'s'`, which has no `.permute`.
2. **Unknown keyword arguments vanish.** The forward method takes `**kwargs`, so `past=` (the
   cache is now `cache`; it was `past_key_values` in between) and `head_mask=` are dropped
   without a word. With `None` that is harmless; with a real cache it is a silent bug: the new
   tokens are read as if they started the sequence.
3. **Hidden states are returned only when asked for**, with `output_hidden_states=True`. (The
   zero tensor on the first line is dead code: a transformer has no recurrent state to
   initialise.)

The first two, replayed on our local GPT-2 (`hf.transformer` is a `GPT2Model`, GPT-2 without the
output layer):
"""),
code(r"""
model_hf = hf.transformer
assert isinstance(model_hf, GPT2Model)
tokens_tensor = torch.tensor([char_tok.encode("Hello world!")])
seq = xb[:1, :12]  # 12 characters of validation text
with torch.no_grad():
    outputs, _ = model_hf(tokens_tensor, past=None, head_mask=None)
    full = hf(seq).logits  # (1, 12, V)
    stale = hf(seq[:, :8], use_cache=True).cache  # the first 8 tokens
    ignored = hf(seq[:, 8:], past=stale).logits  # `past` is swallowed
    fresh = hf(seq[:, 8:]).logits  # the last 4 tokens with no context
print("outputs, _ = model(...) gives:", repr(outputs), repr(_))
print(
    "outputs[2][-1] is",
    repr(outputs[2][-1]),
    "| has .permute:",
    hasattr(outputs[2][-1], "permute"),
)
print(
    "past= ignored (== no context at all):",
    torch.equal(ignored, fresh),
    "| == the right continuation:",
    max_diff(ignored, full[:, 8:]) < 1e-5,
)
assert outputs == "last_hidden_state"
assert torch.equal(ignored, fresh) and max_diff(ignored, full[:, 8:]) > 1e-2
"""),
md(r"""
The corrected code reads fields by name, asks for the hidden states, and passes the cache by its
current name. Its results must be `gptlib`'s: the same hidden states layer by layer (with `ln_f`
applied to the last, Hugging Face's convention), and, fed 8 tokens and then the remaining 4 one
at a time through the cache, the logits of the full 12-token pass, as `gptlib`'s own KV cache
(`new_kv_cache()`, chapter 7) gives them:
"""),
code(r"""
with torch.no_grad():
    out = model_hf(tokens_tensor, output_hidden_states=True)
    hidden_states = out.hidden_states[-1][0].numpy()  # (T, C): last layer
    our_states = ours.hidden_states(tokens_tensor)
    our_states[-1] = ours.ln_f(our_states[-1])

    first = hf(seq[:, :8], use_cache=True)
    cache, pieces = first.cache, [first.logits]
    kv = ours.new_kv_cache()
    our_pieces = [ours(seq[:, :8], kv_cache=kv)[0]]
    for t in range(8, 12):
        step = seq[:, t : t + 1]
        pieces.append(hf(step, cache=cache, use_cache=True).logits)
        our_pieces.append(ours(step, kv_cache=kv)[0])
incremental = torch.cat(pieces, dim=1)
our_incremental = torch.cat(our_pieces, dim=1)

print(type(out).__name__, list(out.keys()))
print(
    f"{len(out.hidden_states)} hidden states of shape"
    f" {tuple(out.hidden_states[0].shape)}; the last as numpy:"
    f" {hidden_states.shape}"
)
same = [max_diff(a, b) < 1e-5 for a, b in zip(our_states, out.hidden_states)]
print("gptlib's hidden states equal, layer by layer:", same)
print("HF with cache == full pass:", max_diff(incremental, full) < 1e-5)
print(
    "gptlib with KV cache == full pass:",
    max_diff(our_incremental, full) < 1e-5,
)
assert len(same) == config.n_layer + 1 and all(same)
assert max_diff(incremental, full) < 1e-5
assert max_diff(our_incremental, full) < 1e-5
"""),
md(r"""
## The loss ladder so far

What does assembling the GPT add to the loss? The *loss ladder* (chapters 1-5) trains the
minimal model of each chapter on the same 3.07 million training characters, with a learning
rate chosen per model on the validation plays (at seed 0) and three seeds, and scores it on every
64-character window of the validation plays (`data/results/ladder.json`, written by
`scripts/experiments/ladder.py`). Chapter 6's rung is the character GPT of this chapter's small
config — three blocks of width 48, four heads, learned positions — which is chapter 5's
learned-position rung with one change: the output layer is tied to the token embeddings, as in
GPT-2, instead of being a matrix of its own. Everything else the assembled GPT has (the final
LayerNorm, GPT-2's initialisation, pre-LN blocks) the earlier rungs already had, because they
are built by the same `GPT` class with parts switched off.
"""),
code(r"""
from gptlib.ladder import ladder_summary, ladder_table, read_ladder, rung_gap
from gptlib.viz.ladder import plot_ladder

ladder = read_ladder("../data/results/ladder.json")
print(ladder_table(ladder, upto_chapter=6))
plot_ladder(ladder, chapter=6)
plt.show()
"""),
md(r"""
At this size, tying changes the loss by less than the spread between seeds: it is not a rung
that goes down, and the chapter does not pretend it is. What tying buys is parameters — one
$V \times C$ matrix fewer ($70 \times 48 = 3{,}360$ here; 38.6 million in GPT-2 small, where
$V = 50{,}257$ and $C = 768$) — and the sense of reading and writing tokens with the same
vectors {cite:p}`press2017using`. The checks:
"""),
code(r"""
rows = {r["rung"]: r for r in ladder_summary(ladder, 6)}
tied, untied = rows["gpt"], rows["pos-learned"]
diff = tied["mean"] - untied["mean"]
print(
    f"tied {tied['mean']:.3f} vs untied {untied['mean']:.3f}: difference"
    f" {diff:+.3f} nats (seed spreads {tied['spread']:.3f},"
    f" {untied['spread']:.3f})"
)
print(
    f"parameters: tied {tied['parameters']:,}, untied {untied['parameters']:,}"
)
assert abs(diff) < min(tied["spread"], untied["spread"])  # within seed noise
assert untied["parameters"] - tied["parameters"] == V * 48
assert rung_gap(ladder, "gpt", "3-blocks") > 0.1  # what positions bought
assert rung_gap(ladder, "gpt", "ngram") < 0  # chapter 1's counted table wins
"""),
md(r"""
Two more things the table says. The assembled GPT uses learned positions, as GPT-2 does, not
the best encoding of chapter 5 (RoPE is lower still). And it is still above chapter 1's best
counted n-gram: at 91 thousand parameters and 3 million training characters, no rung of
chapters 2-6 beats a table of counts with millions of entries. The shipped model of chapter 7 —
the same class, larger and trained longer — is the first to draw level with it.
"""),
md(r"""
## Play with it

Move the sliders to change depth, width, vocabulary and context, or pick a preset; the table shows
the four parameter groups and the total $N$. Its compute rows use one count throughout,
$N' = N - T_{\max}C$, the parameters less the position table (a table look-up costs no
arithmetic), as `GPT.flops_per_token` does: the training FLOPs per token at full context,
$6N' + 12LT_{\max}C$, and the training compute $6N'D$ for $D$ tokens. $D$ starts at 300B, the
budget every GPT-3 model was trained on (next cell). The drop-down names a preset only while the
sliders hold its values, and says "custom" otherwise. Every number in the table comes from the
two closed forms of this chapter, `count_gpt_parameters` and `count_gpt_flops_per_token`, which
the cells above checked against models built on the meta device and against PyTorch's FLOP
counter; `training_flops` gives the compute. (The sliders need a running notebook; the HTML book
shows the state the explorer was saved in, and the figure below it shows the same numbers across
a whole model family.) The cell checks that the explorer's presets are the models of this
chapter, and that the table it starts with shows GPT-2 small's parameters as the meta-device
model counts them:
"""),
code(r"""
for preset, m in (
    ("character model (chapter 6)", model),
    ("GPT-2 small", ours_small),
    ("GPT-3 175B", ours_gpt3),
):
    c = m.config
    assert GPT_PRESETS[preset] == (
        c.vocab_size,
        c.block_size,
        c.n_layer,
        c.n_embd,
    )
explorer = parameter_explorer(
    "GPT-2 small", n_tokens=300e9
)  # D: GPT-3's budget
table = explorer.children[-1].value  # the HTML table it shows
wpe_size = ours_small.wpe.weight.numel()
for n in (*parameter_groups(ours_small).values(), n_ours, n_ours - wpe_size):
    assert f">{n:,}<" in table  # each group, N and N' as the model counts
assert "D = 300B tokens" in table
explorer
"""),
md(r"""
GPT-3 was not one model but eight, all trained on 300B tokens with the same vocabulary and context
{cite:p}`brown2020language` (table 2.1). Their depths and widths give their sizes — each within 2%
of the size the paper names it by — and show the embeddings' share shrinking from about a third
to under 1%:
"""),
code(r"""
# name in Brown et al. (2020), table 2.1: (n_layer, n_embd, parameters as
# named)
gpt3_family = {
    "Small": (12, 768, 125e6),
    "Medium": (24, 1024, 350e6),
    "Large": (24, 1536, 760e6),
    "XL": (24, 2048, 1.3e9),
    "2.7B": (32, 2560, 2.7e9),
    "6.7B": (32, 4096, 6.7e9),
    "13B": (40, 5140, 13e9),
    "175B": (96, 12288, 175e9),
}
# 13B: the table gives d_model 5140, but also 40 heads of d_head 128, i.e.
# 5120; 5140 is likely a
# typo. Kept as printed: either width gives a count within 2% of 13B.
family_groups = {}
for name, (L, C_, named) in gpt3_family.items():
    family_groups[name] = count_gpt_parameters(
        50257, 2048, L, C_, by_group=True
    )
    n = sum(family_groups[name].values())
    assert abs(n - named) / named < 0.02, (name, n)
embedding_share = {
    n: g["embeddings"] / sum(g.values()) for n, g in family_groups.items()
}
assert 0.3 < embedding_share["Small"] < 0.35 and embedding_share["175B"] < 0.01

fig, ax = plt.subplots(figsize=(7.4, 3.6))
names = list(family_groups)
bottom = [0.0] * len(names)
for group in PARAMETER_GROUPS:
    shares = [
        family_groups[n][group] / sum(family_groups[n].values()) for n in names
    ]
    ax.bar(names, shares, bottom=bottom, color=colours[group], label=group)
    bottom = [b + s for b, s in zip(bottom, shares)]
for i, n in enumerate(names):
    total = sum(family_groups[n].values())
    size = f"{total / 1e9:.4g}B" if total >= 1e9 else f"{total / 1e6:.4g}M"
    ax.text(i, 1.01, size, ha="center", va="bottom", fontsize=9.5)
ax.set_ylim(0, 1.1)
ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
ax.set_ylabel("share of the parameters")
ax.set_xlabel(
    "GPT-3 model (Brown et al. 2020); the computed size above each bar"
)
ax.legend(
    ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False
)
plt.tight_layout()
plt.show()
"""),
md(r"""
## Common misconceptions

```{admonition} Common misconception: "GPT-3 is Microsoft's model, with countless parameters"
:class: warning

An explanation of GPT-3 that circulates widely opens with "微软提出了GPT-3模型" (Microsoft proposed
the GPT-3 model) and says it trains "无穷多的模型参数" (countless, literally *infinitely many*,
parameters). Both claims are wrong.

1. **GPT-3 is OpenAI's.** It was introduced by {cite:t}`brown2020language`, a paper by OpenAI
   researchers, as the successor of OpenAI's GPT {cite:p}`radford2018improving` and GPT-2
   {cite:p}`radford2019language`. Microsoft appears in the paper as the provider of the computing
   cluster the models were trained on, not as their author.
2. **Its size is a definite number that anyone can compute.** Three numbers from the paper — 96
   layers, width 12,288, context 2,048 — and the size of GPT-2's vocabulary, which GPT-3 reuses,
   50,257, give $N$ = 174,604,259,328 parameters
   by the formula of this chapter, asserted above to be the paper's "175B"; the
   same formula reproduces all eight GPT-3 sizes to within 2%. Finite, too, in the plainest sense:
   stored as 16-bit numbers, the weights take 349 GB. And the compute follows from the count:
   $6ND \approx 3.14 \times 10^{23}$ FLOPs for 300B tokens, as the paper reports.
```

```{admonition} Common misconception: "GPT is an encoder–decoder Transformer"
:class: warning

Explanations of GPT often begin with the Transformer's encoder and decoder, and describe GPT as
having both. It has no encoder. The original Transformer {cite:p}`vaswani2017attention` was built
for translation: an encoder reads the source sentence, and each decoder block has *three*
sub-layers — masked self-attention, **cross-attention** to the encoder's output, and an MLP. GPT
{cite:p}`radford2018improving` is a stack of decoder blocks only, without the cross-attention, which
would have no encoder output to attend to: each block is masked self-attention plus an MLP, and
every vector in the model is computed from the input tokens alone. The code below checks it in
both implementations.
```
"""),
code(r"""
print(
    "gptlib GPT modules:", sorted({type(m).__name__ for m in model.modules()})
)
assert not any(
    "cross" in name or "encoder" in name for name, _ in model.named_modules()
)
print(
    "Hugging Face GPT-2 block:",
    [name for name, _ in hf.transformer.h[0].named_children()],
)
print("GPT2Config().add_cross_attention:", GPT2Config().add_cross_attention)
with torch.device("meta"):
    gpt2_as_decoder = GPT2LMHeadModel(GPT2Config(add_cross_attention=True))
print(
    "with add_cross_attention=True:",
    [name for name, _ in gpt2_as_decoder.transformer.h[0].named_children()],
)
try:
    config_from_hf(gpt2_as_decoder.config)
except ValueError as err:
    print("gptlib refuses it:", err)
"""),
md(r"""
Hugging Face can bolt a cross-attention sub-layer (`crossattention`, `ln_cross_attn`) onto each
block, for using GPT-2 as the decoder half of an encoder–decoder model; that is an add-on, off by
default and absent from every GPT-2 checkpoint. So in "decoder-only", "decoder" means *causal*:
change the last token of a sequence, and the logits at every earlier position stay exactly as they
were.
"""),
code(r"""
changed = idx.clone()
changed[:, -1] = (idx[:, -1] + 1) % V
with torch.no_grad():
    before, after = model(idx)[0], model(changed)[0]
print(
    "earlier positions unchanged:",
    torch.equal(before[:, :-1], after[:, :-1]),
    "| last position changed:",
    not torch.allclose(before[:, -1], after[:, -1]),
)
assert torch.equal(before[:, :-1], after[:, :-1]) and not torch.allclose(
    before[:, -1], after[:, -1]
)
"""),
md(r"""
## Exercises

**Exercise 1.** The GPT-2 paper {cite:p}`radford2019language` lists four model sizes: 117M, 345M,
762M and 1542M parameters, for $(L, C)$ = (12, 768), (24, 1024), (36, 1280) and (48, 1600), all with
$V = 50{,}257$ and $T_{\max} = 1{,}024$. Compute the parameter counts of models built from these
configurations, check the largest against Hugging Face's `GPT2LMHeadModel` on the meta device
(`n_head=25`), and compare with the listed sizes.
"""),
code(r"""
# Solution
listed = {
    (12, 768): 117e6,
    (24, 1024): 345e6,
    (36, 1280): 762e6,
    (48, 1600): 1542e6,
}
counts = {shape: count_gpt_parameters(50257, 1024, *shape) for shape in listed}
for (L, C_), n in counts.items():
    print(
        f"L={L:2d} C={C_:4d}: {n:>13,}  listed {listed[L, C_] / 1e6:5.0f}M "
        f" difference {n / listed[L, C_] - 1:+.1%}"
    )
with torch.device("meta"):
    xl = GPT2LMHeadModel(GPT2Config(n_layer=48, n_embd=1600, n_head=25))
assert sum(p.numel() for p in xl.parameters()) == counts[48, 1600]
assert all(
    n > listed[shape] for shape, n in counts.items()
)  # every listed size is an undercount
# OpenAI later relabelled the released models 124M, 355M, 774M and 1558M (in
# its gpt-2 repository): exactly these counts, rounded to millions.
relabelled = {
    (12, 768): 124,
    (24, 1024): 355,
    (36, 1280): 774,
    (48, 1600): 1558,
}
print("relabelled:", ", ".join(f"{m}M" for m in relabelled.values()))
assert all(round(counts[shape] / 1e6) == m for shape, m in relabelled.items())
""", "hide-cell"),
md(r"""
**Exercise 2.** How many parameters would GPT-2 small have *without* weight tying, with a separate
$C \times V$ output matrix? What fraction of the tied model is that? Check your number against
Hugging Face's model built with `tie_word_embeddings=False` and `gptlib`'s `GPT` built with
`tie_weights=False` (the loss ladder's untied rung), both on the meta device, and show that
`gptlib`'s GPT-2 converter, `config_from_hf`, which loads GPT-2's tied layout only, refuses such
a checkpoint.
"""),
code(r"""
# Solution
untied = count_gpt_parameters(50257, 1024, 12, 768, tied=False)
with torch.device("meta"):
    hf_untied = GPT2LMHeadModel(GPT2Config(tie_word_embeddings=False))
    ours_untied = GPT(GPTConfig(tie_weights=False))
print(
    f"untied: {untied:,} parameters, {untied / n_gpt2 - 1:.1%} more than tied"
)
assert (
    untied
    == sum(p.numel() for p in hf_untied.parameters())
    == sum(p.numel() for p in ours_untied.parameters())
)
try:
    config_from_hf(hf_untied.config)
    raise AssertionError("an untied GPT-2 should be refused")
except ValueError as err:
    print(err)
""", "hide-cell"),
md(r"""
**Exercise 3.** Per token, training GPT-2 small costs about $6N'$ FLOPs in its weights ($N'$: all
parameters but the position table, as `count_gpt_flops_per_token` counts) plus $12 L T C$ in
attention, which grows with the context $T$. ($N'$ is not Kaplan et al.'s non-embedding count,
which also leaves out the token table: in a tied model that table is also the output layer, a
$C \times V$ matrix product at every position, so it costs compute like any weight matrix.) At
what $T$ does the attention part equal the weights part? Check your answer with PyTorch's FLOP
counter (`counted_flops` above) on a meta-device model, then do the same for GPT-3. Hint: a model
without a position table (`pos_encoding="none"`) has the same $N'$ and accepts any length.
"""),
code(r"""
# Solution
def crossover(c):  # 12 L T C = 6 N'  <=>  T = N' / (2 L C)
    shape = (c.vocab_size, c.block_size, c.n_layer, c.n_embd)
    n_prime = count_gpt_parameters(*shape, non_embedding=True)
    return round(n_prime / (2 * c.n_layer * c.n_embd))


for name, c in (("GPT-2 small", ours_small.config), ("GPT-3", gpt3_config)):
    t = crossover(c)
    with torch.device("meta"):  # no position table: same N', any length
        m = GPT(dataclasses.replace(c, pos_encoding="none", fast=True))
    ops = counted_flops(m, torch.zeros(1, t, dtype=torch.long))
    ratio = ops["bmm"] / (ops["mm"] + ops["addmm"])
    print(
        f"{name}: T = {t:,} tokens (its context is {c.block_size:,});"
        f" counted attention / weights FLOPs = {ratio:.3f}"
    )
    assert abs(ratio - 1) < 0.01
""", "hide-cell"),
md(r"""
**Exercise 4.** At initialisation the expected loss for a target unrelated to the input is about
$\ln V + \sigma^2/2$ with $\sigma = 0.02\sqrt C$. Check it at GPT-2 small's width $C = 768$ with the
character vocabulary (cheap to run: the prediction depends on $C$, not on $L$). Average the loss over
*every* possible target — `logsumexp(z) - mean(z)` per position — instead of sampling targets, so
that the check is not drowned in sampling noise.
"""),
code(r"""
# Solution
set_seed(0)
width768 = GPT(
    GPTConfig(vocab_size=V, block_size=64, n_layer=1, n_head=12, n_embd=768)
).eval()
with torch.no_grad():
    z, _ = width768(xb[:4])
expected_loss = (torch.logsumexp(z, dim=-1) - z.mean(dim=-1)).mean().item()
predicted = math.log(V) + (0.02 * math.sqrt(768)) ** 2 / 2
print(
    f"expected loss {expected_loss:.2f}   ln V + σ²/2 = {predicted:.2f}   ln V"
    f" = {math.log(V):.2f}"
)
assert abs(expected_loss - predicted) < 0.02
assert expected_loss - math.log(V) > 0.1
""", "hide-cell"),
md(r"""
## Key points

- A GPT is token embeddings plus position embeddings, $L$ identical pre-LayerNorm blocks (causal
  self-attention and an MLP, each added to the residual stream), a final LayerNorm, and an output
  layer tied to the token embeddings. The residual stream keeps the shape $(B, T, C)$ throughout.
- It has no encoder and no cross-attention: every block reads only the sequence, and only the past
  of it.
- The parameter count is a formula: $N = VC + T_{\max}C + L(12C^2 + 13C) + 2C$. GPT-2 small:
  124,439,808, as the models themselves count, ours and Hugging Face's; GPT-3: 174.6 billion, the
  "175B" of OpenAI's GPT-3 paper. Training costs about $6ND$ FLOPs: $3.14 \times 10^{23}$ for
  GPT-3's 300B tokens. Per token the closed form is $6N' + 12LTC$, and PyTorch's FLOP counter
  agrees with it up to the 6 FLOPs it charges each bias and norm gain.
- Dropout is a training-time choice, and for GPT-2 not a published one: the paper gives no rate,
  OpenAI's released code has no dropout, and the 0.1 in GPT-2 configurations is Hugging Face's
  default (GPT-1's rate).
- At initialisation the loss is $\ln V$ plus a small $\sigma^2/2$: a check worth running before any
  training.
- `gptlib`'s GPT, given weights in GPT-2's layout (tested here on random GPT-2 models), computes
  what Hugging Face's GPT-2 computes: the same logits and hidden states (Hugging Face's last one is
  after `ln_f`), and the conversion round-trips bit for bit.
- With `transformers`, read outputs by attribute (`out.hidden_states`, `out.last_hidden_state`),
  ask for hidden states with `output_hidden_states=True`, and pass the cache by its current name
  (`cache` in 5.24): an unknown keyword argument, such as the old `past=`, is silently ignored.

## References

GPT, GPT-2 and GPT-3 {cite:p}`radford2018improving,radford2019language,brown2020language`, and
OpenAI's GPT-2 code {cite:p}`openai2019gpt2code`; the Transformer {cite:p}`vaswani2017attention`;
GELU {cite:p}`hendrycks2016gaussian`; dropout {cite:p}`srivastava2014dropout`; weight tying
{cite:p}`press2017using`; Hugging Face `transformers` {cite:p}`wolf2020transformers`; parameter
and compute counting {cite:p}`kaplan2020scaling,chowdhery2023palm`. Full entries are on the
[References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "06_gpt.ipynb", CELLS)
