"""Source of chapters/03_masking.ipynb. Edit here, then:

    python scripts/chapters/ch03_masking.py && python scripts/run_notebooks.py chapters/03_masking.ipynb
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 3. Masking: causality and padding

**Why.** Chapter 1 cut the corpus into windows of $T$ tokens, each holding $T$ next-token
predictions; chapter 2 built the attention that lets every position draw on the others. Put
together without care, the two cheat: the position that must predict token $t+1$ can attend to
token $t+1$ itself, copy it, and score perfectly without learning anything about language. The
*causal mask* is what stops this. It is a single line of code, and its purpose is often
misdescribed — a common explanation says it exists to save computation on long sequences. This
chapter proves what the mask does (nothing after position $t$ can reach the output at $t$), trains
a model without it to see what it learns instead, gets the details right (where the $-\infty$
goes, low-precision dtypes, rows with nothing to attend to, padded batches, packed documents),
measures that the mask saves no computation at all unless the kernel is written to skip it, and
puts the unmasked model on the book's loss ladder.
"""),
code(r"""
# errors shown on purpose print as "Type: message", without a traceback
%xmode Minimal
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.colors import LogNorm, PowerNorm
from matplotlib.patches import Patch
from torch.utils.flop_counter import FlopCounterMode

from gptlib import set_seed, show
from gptlib.attention import fused_attention, scaled_dot_product_attention
from gptlib.data import encode_text, get_batch, load_plays, load_text
from gptlib.generate import generate
from gptlib.ladder import (
    build_model,
    ladder_summary,
    ladder_table,
    read_ladder,
    rung_gap,
)
from gptlib.masking import (
    apply_mask,
    banded_causal_mask,
    causal_mask,
    combine_masks,
    document_mask,
    mask_after_softmax,
    padding_mask,
)
from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import TrainConfig, dataset_loss, train
from gptlib.tokenizer import CharTokenizer
from gptlib.viz.ladder import plot_ladder

plt.rcParams["figure.dpi"] = 90
torch.set_printoptions(precision=4)
torch.set_num_threads(
    1
)  # one thread: the same arithmetic whatever the number of cores
"""),
md(r"""
## The idea: one forward pass, $T$ honest predictions

**Teacher forcing.** A training window is $T$ token ids $x_1, \dots, x_T$; the target at position
$t$ is the next token, $y_t = x_{t+1}$. The model reads the whole window at once and returns one
vector of logits $\ell_t \in \mathbb{R}^{n_\text{vocab}}$ per position, and the window's loss is
the average over all $T$ positions:

$$
\ell_{1:T} = f_\theta(x_1, \dots, x_T), \qquad
\mathcal{L}(\theta) = -\frac{1}{T} \sum_{t=1}^{T} \ln \operatorname{softmax}(\ell_t)_{x_{t+1}} .
$$

Every prediction is conditioned on the *true* earlier tokens, never on the model's own guesses;
this is *teacher forcing* {cite:p}`williams1989learning`. It is what makes training efficient:
one pass yields $T$ training signals. But it is only honest if $\ell_t$ depends on
$x_1, \dots, x_t$ alone — the situation the model will face when it generates, where
$x_{t+1}$ does not exist yet. Nothing in $\ell_{1:T} = f_\theta(x_{1:T})$ guarantees that: if
$\ell_t$ can see $x_{t+1}$, the best "prediction" is a copy.

**Where can the future leak in?** Inside a GPT, the token and position embeddings, the
LayerNorms, the MLPs and the residual additions all act on each position separately. Attention is
the only place where positions exchange information, so it is the only place that needs a rule.
For one head, let the $T$ positions' queries, keys and values be the rows of
$Q, K \in \mathbb{R}^{T \times d}$ and $V \in \mathbb{R}^{T \times d_v}$ (here $V$ is the value
matrix, not the vocabulary; in code, with a batch of $B$ sequences and $H$ heads, these are
$(B, H, T, d)$ tensors). The scores are $S = QK^\top / \sqrt{d} \in \mathbb{R}^{T \times T}$, and
the **causal mask** $M \in \{0, 1\}^{T \times T}$ allows query $i$ to attend to key $j$ only if
$j \le i$:

$$
\begin{gathered}
M_{ij} = \begin{cases} 1 & j \le i \\ 0 & j > i \end{cases}, \qquad
\tilde S_{ij} = \begin{cases} S_{ij} & M_{ij} = 1 \\ -\infty & M_{ij} = 0 \end{cases}, \\
A = \operatorname{softmax}_\text{row}(\tilde S), \qquad O = A V .
\end{gathered}
$$

Because $e^{-\infty} = 0$, row $i$ of $A$ is $A_{ij} = e^{S_{ij}} / \sum_{k \le i} e^{S_{ik}}$ for
$j \le i$ and exactly $0$ for $j > i$: a probability distribution over positions $1, \dots, i$.
So $O_i = \sum_{j \le i} A_{ij} V_j$ depends on positions $\le i$ only. Each layer keeps that
property, so by induction the logits $\ell_t$ of the last layer depend on $x_1, \dots, x_t$
only, and $\operatorname{softmax}(\ell_t)$ is a genuine $p_\theta(x_{t+1} \mid x_{\le t})$, the
factor of chapter 1's chain rule. This is the masked decoder self-attention of the Transformer
{cite:p}`vaswani2017attention`, and every layer of GPT uses it
{cite:p}`radford2019language`.

## The code

The mask is a boolean tensor, `True` where query $i$ may attend to key $j$. `causal_mask` builds
it. Its `offset` covers incremental decoding (chapter 7), where $T_q$ new queries are the *last*
of $T_k$ positions because the earlier ones sit in a cache:
"""),
code(r"""
show(causal_mask)
"""),
code(r"""
print(causal_mask(5).int())
print(
    causal_mask(2, 5).int()
)  # 2 new queries after 3 cached positions: the last 2 rows
"""),
md(r"""
`apply_mask` puts the $-\infty$ in, *before* the softmax. Its docstring already lists the
pitfalls this chapter demonstrates:
"""),
code(r"""
show(apply_mask)
"""),
md(r"""
And this is the attention of chapter 2 that uses it. The lines about `empty` rows are explained
in the section on fully masked rows below.
"""),
code(r"""
show(scaled_dot_product_attention)
"""),
md(r"""
### See it

Left: the causal mask for the 12 characters `To be, or no` (black: `True`, the query may
attend to the key; white: `False`, masked). Middle: attention weights of random scores after
masking (the colour bar gives the weight; masked pairs get exactly 0); each row is a distribution
over the past and present only. Right: the mask of a decoding step with a cache, 3 new queries
after 9 cached positions — the bottom 3 rows of the left-hand mask.
"""),
code(r"""
chars = list("To be, or no")
T_demo = len(chars)
g = torch.Generator().manual_seed(0)
demo_scores = torch.randn(T_demo, T_demo, generator=g)
demo_weights = torch.softmax(
    apply_mask(demo_scores, causal_mask(T_demo)), dim=-1
)

MASK_LEGEND = [
    Patch(facecolor="black", label="True: may attend"),
    Patch(facecolor="white", edgecolor="grey", label="False: masked"),
]
fig, axes = plt.subplots(
    1, 3, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1, 1.25, 1]}
)
labels = ["␣" if c == " " else c for c in chars]
panels = [
    (causal_mask(T_demo).float(), "causal mask", "Greys"),
    (demo_weights, "weights: softmax of masked scores", "Blues"),
    (causal_mask(3, T_demo).float(), "3 new queries, 9 cached keys", "Greys"),
]
for ax, (img, title, cmap) in zip(axes, panels):
    im = ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks(range(T_demo), labels)
    rows = labels[-img.shape[0] :]
    ax.set_yticks(range(img.shape[0]), rows)
    ax.set_xlabel("key j (attended to)")
    ax.set_title(title, fontsize=10)
    if cmap == "Blues":
        fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
axes[0].set_ylabel("query i (attending)")
fig.legend(handles=MASK_LEGEND, loc="lower center", ncol=2, fontsize=9)
plt.tight_layout(rect=(0, 0.08, 1, 1))
plt.show()
"""),
code(r"""
# Row i must be the softmax of its allowed scores alone, computed without
# any mask: then the weights of j <= i sum to 1 and nothing is left for the
# future.
alone = [torch.softmax(demo_scores[i, : i + 1], -1) for i in range(T_demo)]
same = [
    torch.allclose(demo_weights[i, : i + 1], alone[i]) for i in range(T_demo)
]
print("row i == softmax(scores[i, :i + 1]) for every row:", all(same))
print(
    "row sums:", ", ".join(f"{r:.4f}" for r in demo_weights.sum(-1).tolist())
)
assert all(same)
assert torch.allclose(demo_weights.sum(-1), torch.ones(T_demo))
assert torch.equal(causal_mask(3, T_demo), causal_mask(T_demo)[-3:])
"""),
md(r"""
## Prove it: the future cannot reach the past

The claim is about whole models, not one attention layer, so we test it on a whole model and real
text. Two small GPTs (2 blocks, width 64, 4 heads) are built from the same seed, so their weights
are identical; they differ only in `GPTConfig.causal`, which removes the causal mask from every
block when `False`. They use rotary position embeddings (chapter 5), for a reason explained when
we train them below.
"""),
code(r"""
train_text, val_text = load_text("train"), load_text("val")
tok = CharTokenizer.train(train_text + val_text + load_text("test"))


def make_gpt(causal):
    set_seed(0)  # the same initial weights for both models
    config = GPTConfig(
        vocab_size=tok.vocab_size,
        block_size=64,
        n_layer=2,
        n_head=4,
        n_embd=64,
        pos_encoding="rope",
        causal=causal,
    )
    return GPT(config).eval()


masked, unmasked = make_gpt(causal=True), make_gpt(causal=False)
assert all(
    torch.equal(a, b)
    for a, b in zip(masked.parameters(), unmasked.parameters())
)
print(f"{masked.num_parameters():,} parameters each")
"""),
md(r"""
Take a line of a validation play and change one character of it, the `d` of "die" into an `l`.
Then compare, position by position, the logits before and after the change. With the mask,
every position before the change must be *bit for bit* unchanged; without it, nothing is safe.
"""),
code(r"""
line = "Therefore by law thou art condemned to die.\n"
assert line in val_text
x = torch.tensor([tok.encode(line)])  # (1, T), T = 44
t_change = line.index("die")
x_changed = x.clone()
x_changed[0, t_change] = tok.encode("l")[0]
print(repr(tok.decode(x[0].tolist())))
print(
    repr(tok.decode(x_changed[0].tolist())), "(position", t_change, "changed)"
)

with torch.no_grad():
    change = {
        name: (
            (model(x)[0] - model(x_changed)[0]).abs().amax(-1)[0]
        )  # (T,) largest change
        for name, model in (("masked", masked), ("unmasked", unmasked))
    }
for name, c in change.items():
    print(
        f"{name:>8}: positions < {t_change} bit-for-bit unchanged:"
        f" {bool((c[:t_change] == 0).all())}; positions >= {t_change} changed:"
        f" {bool((c[t_change:] > 0).all())}"
    )
"""),
code(r"""
assert (
    change["masked"][:t_change] == 0
).all()  # the past is untouched, exactly
assert (change["masked"][t_change:] > 0).all()  # (the change was real)
assert (change["unmasked"] > 0).all()  # without the mask, every position moved
"""),
md(r"""
One change, one answer. To see the whole picture, change *each* position $j$ in turn (to the next
character of the vocabulary) and measure how much the prediction at every position $i$ moves, as
the total variation distance between the two next-token distributions,
$\tfrac12 \sum_v |p_i(v) - p'_i(v)| \in [0, 1]$. The result is a $T \times T$ matrix of influence
$D_{ij}$: row $i$ says which inputs the prediction at $i$ actually depends on. It is a
measurement of the model's behaviour, not a picture of its mask.
"""),
code(r"""
def influence(model, x):
    # D[i, j] = total variation between the next-token distributions at
    # i, before and after
    # changing token j. One forward pass per j, batched: row j of
    # `changed` has token j changed.
    T = x.size(1)
    changed = x.repeat(T, 1)
    changed[torch.arange(T), torch.arange(T)] = (x[0] + 1) % tok.vocab_size
    with torch.no_grad():
        p = torch.softmax(model(x)[0], dim=-1)  # (1, T, V)
        p_changed = torch.softmax(
            model(changed)[0], dim=-1
        )  # (T, T, V): [j, i, :]
    return 0.5 * (p_changed - p).abs().sum(-1).T  # (T, T): [i, j]


D_before = {"masked": influence(masked, x), "unmasked": influence(unmasked, x)}


def plot_influence(D, title):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, (name, d) in zip(axes, D.items()):
        shown = d.clone()
        shown[shown == 0] = float("nan")  # exact zeros: left white
        im = ax.imshow(shown, norm=LogNorm(vmin=1e-6, vmax=1), cmap="viridis")
        ax.set_title(f"{name} model", fontsize=10)
        ax.set_xlabel("changed input position j")
        ax.set_ylabel("prediction at position i")
    fig.colorbar(im, ax=axes, shrink=0.8, label="influence (total variation)")
    fig.suptitle(title)
    plt.show()


plot_influence(
    D_before,
    "Which inputs move which predictions (untrained models; white ="
    " exactly 0)",
)
"""),
code(r"""
above = torch.ones(x.size(1), x.size(1), dtype=torch.bool).triu(
    diagonal=1
)  # j > i
for name, d in D_before.items():
    print(
        f"{name:>8}: influence of later tokens exactly 0:"
        f" {bool((d[above] == 0).all())}; of earlier tokens > 0:"
        f" {bool((d[~above] > 0).all())}"
    )
assert (D_before["masked"][above] == 0).all() and (
    D_before["masked"][~above] > 0
).all()
assert (D_before["unmasked"] > 0).all()
"""),
md(r"""
The masked model's influence matrix *is* the causal mask: recovered from behaviour alone. Note
that these models are untrained. Causality is a property of the architecture, not something the
model learns — and so is the leak.

**One pass equals $T$ separate passes.** For the masked model the teacher-forced logits at
position $t$ must equal the logits of the prefix $x_{\le t}$ fed on its own, scored at its last
position. The second way of computing them is how a model is used for generation — one new token
at a time — so it is also the honest way to evaluate a model that might be cheating. It costs $T$
forward passes instead of one:
"""),
code(r"""
def one_at_a_time(model, x):
    # Logits (B, T, V) in which position t is computed from the prefix
    # x[:, :t + 1] alone.
    with torch.no_grad():
        return torch.stack(
            [model(x[:, : t + 1])[0][:, -1] for t in range(x.size(1))], dim=1
        )


with torch.no_grad():
    for name, model in (("masked", masked), ("unmasked", unmasked)):
        same = torch.allclose(model(x)[0], one_at_a_time(model, x), atol=1e-5)
        print(f"{name:>8}: one pass == T prefix passes: {same}")
        assert same == (name == "masked")
"""),
md(r"""
## Train without the mask

Now the experiment everyone should run once. Train both models on the training plays with the
same budget (300 steps of 16 windows of 64 characters) and the *same batches*
(`TrainConfig.seed` fixes them), from the same initial weights. The only difference is the mask.

Why rotary positions? Without the mask, position $t$ can copy its answer only if it can single out
position $t+1$. With rotary embeddings an attention score depends on the *offset* between query and
key, so "look one step to the right" is one pattern, the same at every position, and a small model
finds it within this budget. With GPT-2's learned position table the same pattern has to be
assembled from 64 separately learned position vectors (we have not measured how fast that goes),
and with no positions at all it cannot be expressed (the loss ladder at the end of the chapter).
"""),
code(r"""
train_ids, val_ids = encode_text(train_text, tok), encode_text(val_text, tok)
cfg = TrainConfig(
    steps=300,
    batch_size=16,
    block_size=64,
    lr=3e-3,
    warmup_steps=30,
    eval_batches=10,
    seed=1,
)
runs = {}
for name, model in (("masked", masked), ("unmasked", unmasked)):
    start = time.perf_counter()
    runs[name] = train(model, train_ids, cfg, val_data=val_ids)
    print(
        f"{name:>8}: {time.perf_counter() - start:.1f} s; last training-batch"
        " losses",
        [round(h["train_loss"], 3) for h in runs[name].history[-3:]],
    )
""", "nbval-ignore-output"),
code(r"""
fig, ax = plt.subplots(figsize=(6.5, 3.4))
for name, run in runs.items():
    ax.plot(
        [h["step"] for h in run.history],
        [h["train_loss"] for h in run.history],
        lw=0.9,
        label=f"{name} (training batches)",
    )
ax.axhline(
    math.log(tok.vocab_size),
    color="k",
    ls=":",
    label=f"uniform guess, ln {tok.vocab_size}",
)
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats/token)")
ax.set_title("Same data, same budget: the unmasked model's loss collapses")
ax.legend()
plt.show()
"""),
md(r"""
At the end, `train` measures each model's *teacher-forced* loss on 10 fixed batches of training
windows and 10 of validation windows, from plays neither model has seen — the same batches for
both models:
"""),
code(r"""
for name, run in runs.items():
    print(
        f"{name:>8}: teacher-forced loss, train {run.final_train_loss:.2f},"
        f" validation {run.final_val_loss:.2f}"
    )
assert (
    runs["unmasked"].final_train_loss
    < 0.5
    < runs["masked"].final_train_loss - 1.0
)
assert (
    runs["unmasked"].final_val_loss < 0.5 < runs["masked"].final_val_loss - 1.0
)
"""),
md(r"""
Taken at face value the unmasked model is far better — on unseen plays too, so this is not
overfitting. The measurement itself is broken: the unmasked model reads the answer wherever the
answer is in the window, and the answer is in every validation window as well.

The honest test feeds each prefix alone and scores its last position, exactly as in generation
(`one_at_a_time` above), on 32 validation windows:
"""),
code(r"""
x_val, y_val = get_batch(
    val_ids, 32, 64, generator=torch.Generator().manual_seed(2)
)
honest, forced, honest_logits = {}, {}, {}
with torch.no_grad():
    for name, model in (("masked", masked), ("unmasked", unmasked)):
        logits = one_at_a_time(model, x_val)  # (32, 64, V)
        honest_logits[name] = logits
        honest[name] = F.cross_entropy(
            logits.transpose(1, 2), y_val, reduction="none"
        ).mean(0)  # (64,)
        forced[name] = model(x_val, y_val)[1].item()
for name in honest:
    digits = (
        2 if name == "masked" else 1
    )  # the unmasked run varies more from CPU to CPU
    print(
        f"{name:>8}: teacher-forced {forced[name]:.2f}   one token at a time"
        f" {honest[name].mean():.{digits}f}"
    )
"""),
code(r"""
assert (
    abs(honest["masked"].mean() - forced["masked"]) < 1e-4
)  # the same number, two ways
assert (
    honest["unmasked"].mean() > honest["masked"].mean() + 1.0
)  # far worse when honest
assert honest["unmasked"].mean() > forced["unmasked"] + 2.0
assert (
    honest["unmasked"][:3] > math.log(tok.vocab_size)
).all()  # worse than a uniform guess
"""),
code(r"""
fig, ax = plt.subplots(figsize=(6.5, 3.4))
for name, color in (("masked", "C0"), ("unmasked", "C1")):
    ax.plot(honest[name], color=color, label=f"{name}: one token at a time")
    ax.axhline(
        forced[name],
        color=color,
        ls="--",
        lw=1,
        label=f"{name}: teacher-forced",
    )
ax.axhline(
    math.log(tok.vocab_size),
    color="k",
    ls=":",
    label=f"uniform guess, ln {tok.vocab_size}",
)
ax.set_xlabel("position t in the window (context = t + 1 characters)")
ax.set_ylabel("validation loss (nats/token)")
ax.set_title("32 validation windows: loss at each position", fontsize=10)
ax.legend(fontsize=8)
plt.show()
"""),
md(r"""
For the masked model the two measurements are the same number, as they must be. The unmasked
model's honest loss is far worse than the masked model's, and at the first positions worse than
a uniform guess: it is confidently wrong. During training every one of its positions except the
last had its answer in view, so it learned to copy rather than to predict; at the end of a prefix
there is nothing to its right to copy.

**Why does its honest loss fall along the window?** Not because it learns to use the context.
At position $t$ of the honest evaluation the model sees a prefix of $t+1$ characters, and its
query sits at the last one. Its heads look for the key one step to the right, which is not there.
With a prefix of one character the only key is the query's own position, so the copy circuit
copies the character it is looking at and announces it as the next one. With a longer prefix,
more keys share the attention, none of them at the offset the heads want, and the output becomes
a blur of the context's characters: a less confident guess. Three measurements per position: the
probability the model gives to "the next character repeats the current one", the entropy of its
prediction, and the largest attention weight of the last query (averaged over the heads of the
first block):
"""),
code(r"""
p_unmasked = torch.softmax(honest_logits["unmasked"], dim=-1)  # (32, 64, V)
p_repeat = p_unmasked.gather(-1, x_val[..., None])[..., 0].mean(0)  # (64,)
entropy = -(p_unmasked * p_unmasked.clamp_min(1e-30).log()).sum(-1).mean(0)
text_repeats = (y_val == x_val).float().mean().item()


def last_query_weight(model, prefix):
    # The largest attention weight of the last query, first block, per head.
    block = model.h[0]
    with torch.no_grad():
        h = model.hidden_states(prefix)[0]
        _, w = block.attn(
            block.ln_1(h),
            rope=model.pos.rope,
            causal=block.causal,
            return_weights=True,
        )
    return w[:, :, -1].amax(-1).mean().item()  # mean over windows and heads


print(f"in these windows a character is followed by itself {text_repeats:.3f}")
print(" t   honest loss   p(next = current)   entropy   largest weight")
for t in (0, 1, 3, 10, 30, 63):
    weight = last_query_weight(unmasked, x_val[:, : t + 1])
    print(
        f"{t:2d}   {honest['unmasked'][t]:11.2f}   {p_repeat[t]:17.2f}"
        f"   {entropy[t]:7.2f}   {weight:14.2f}"
    )
""", "nbval-ignore-output"),
code(r"""
assert text_repeats < 0.05  # repeats are rare in text ...
assert p_repeat[:4].mean() > 0.8  # ... but short prefixes predict one
assert p_repeat[-8:].mean() < 0.3
assert entropy[:4].mean() < 0.5 and entropy[-8:].mean() > 1.5
assert last_query_weight(unmasked, x_val[:, :1]) > 0.99  # one key: all on it
assert last_query_weight(unmasked, x_val) < 0.8  # 64 keys: spread out
assert honest["unmasked"][:4].mean() > honest["unmasked"][-8:].mean() + 2
assert (honest["unmasked"] > honest["masked"]).all()  # never catches up
"""),
md(r"""
The first positions cost so much because the model is nearly certain of a repeat, which the text
almost never makes; later positions cost less because the model is *less sure*, not because it
found the answer. At every one of the 64 positions the masked model does better.

Where exactly does it get its answers? The influence matrices of the trained models show it:
"""),
code(r"""
D_after = {"masked": influence(masked, x), "unmasked": influence(unmasked, x)}
plot_influence(
    D_after, "After training: the unmasked model reads position i + 1"
)
"""),
code(r"""
T_line = x.size(1)
reads_next = int(
    (D_after["unmasked"][:-1].argmax(-1) == torch.arange(1, T_line)).sum()
)
print(
    "unmasked: position i is most influenced by position i + 1 at"
    f" {reads_next} of {T_line - 1} positions"
)
print(
    "unmasked: mean influence of position i + 1 on position i:"
    f" {D_after['unmasked'].diagonal(1).mean():.1f}"
)
assert reads_next > 0.9 * (T_line - 1)
assert D_after["unmasked"].diagonal(1).mean() > 0.9
assert (D_after["masked"][above] == 0).all()
"""),
md(r"""
Nearly all of each prediction moves with the very character it is supposed to predict: the
unmasked model has learned to copy its target from the next position.

**Samples.** Generating one token at a time puts every model in the honest situation.
`gptlib.generate` (chapter 7) does it: eight samples of 200 characters from each model, after
the same 42-character prompt. Rotary positions have no table, so nothing stops these models
from reading a longer context than they were trained on; `max_context=64` conditions each new
token on the last 64 characters (the training length), and `use_cache=False` recomputes the
whole window at every step (a KV cache would be wrong for the unmasked model: exercise 1). We
judge the samples by a crude but model-free measure: the fraction of their 4-character pieces
that occur anywhere in the training plays. One sample of each model is printed.
"""),
code(r"""
train_4grams = {train_text[i : i + 4] for i in range(len(train_text) - 3)}


def real_4gram_fraction(s):
    pieces = [s[i : i + 4] for i in range(len(s) - 3)]
    return sum(p in train_4grams for p in pieces) / len(pieces)


def sample(model, prompt, n_new, n_samples=8, seed=0):
    ids = torch.tensor([tok.encode(prompt)] * n_samples)
    out = generate(
        model,
        ids,
        n_new,
        max_context=64,
        use_cache=False,
        generator=torch.Generator().manual_seed(seed),
    )
    return [tok.decode(row[len(prompt) :].tolist()) for row in out]


prompt = "Therefore by law thou art condemned to die"
samples = {
    name: sample(model, prompt, 200)
    for name, model in (("masked", masked), ("unmasked", unmasked))
}
"""),
code(r"""
for name, texts in samples.items():
    print(
        f"--- {name}: real 4-character pieces"
        f" {[round(real_4gram_fraction(s), 2) for s in texts]}"
    )
    print(prompt + texts[0])
""", "nbval-ignore-output"),
code(r"""
real = {
    name: sum(map(real_4gram_fraction, texts)) / len(texts)
    for name, texts in samples.items()
}
assert real["masked"] > 0.6  # mostly pieces of real English
assert real["unmasked"] < real["masked"] - 0.15  # far fewer
"""),
md(r"""
The masked model, after 300 steps, writes misspelt pseudo-Shakespeare with the layout of a play.
The unmasked model's text is not English: what it mostly learned is how to copy, which is of no
use when the answer is absent. The lesson: a model that can see its target during training,
and can find it, learns to look rather than to predict, and a loss measured the same leaky way
will not tell you. (The ladder at the end of the chapter shows the other case: a model that
cannot find its target does not collapse, but it is still worse honestly than with the mask.) (Models that *should* read in both directions, such as BERT {cite:p}`devlin2019bert`,
therefore train on a different task: they hide some input tokens and predict those.)

## Where the $-\infty$ goes

### Before the softmax, not after

The mask must act before the softmax. Zeroing the masked weights *after* it is a classic mistake,
kept in `gptlib.masking` as an exhibit:
"""),
code(r"""
show(mask_after_softmax)
"""),
code(r"""
g = torch.Generator().manual_seed(1)
scores = torch.randn(5, 5, generator=g)
mask = causal_mask(5)
right = torch.softmax(apply_mask(scores, mask), dim=-1)
wrong = mask_after_softmax(scores, mask)
print(
    "row sums, -inf before the softmax:",
    ", ".join(f"{r:.4f}" for r in right.sum(-1).tolist()),
)
print(
    "row sums, zeroed after           :",
    ", ".join(f"{r:.4f}" for r in wrong.sum(-1).tolist()),
)
"""),
md(r"""
Each row of the wrong version sums to less than 1 — except the last, which masks nothing. Worse,
the masked keys still took part in the normaliser, so the weights on the *allowed* keys depend on
the *future* scores: change only the masked scores, and the wrong weights change while the right
ones do not. Masking after the softmax leaks, just more quietly.
"""),
code(r"""
future_changed = scores + 3.0 * (
    ~mask
)  # change only the masked (future) scores
print(
    "right weights unchanged:",
    torch.equal(torch.softmax(apply_mask(future_changed, mask), -1), right),
)
print(
    "wrong weights unchanged:",
    torch.allclose(mask_after_softmax(future_changed, mask), wrong),
)
assert (
    torch.allclose(right.sum(-1), torch.ones(5))
    and (wrong.sum(-1)[:-1] < 1 - 1e-3).all()
)
assert torch.equal(torch.softmax(apply_mask(future_changed, mask), -1), right)
assert not torch.allclose(mask_after_softmax(future_changed, mask), wrong)
"""),
md(r"""
### Low precision: $-\infty$, not "a large negative number"

A common shortcut writes a large finite number such as $-10^9$ instead of $-\infty$, often as an
additive mask, `scores + (1 - mask) * -1e9`. In float32 that works. In float16, whose largest
magnitude is 65,504, the number does not exist: stored in a float16 tensor it becomes $-\infty$.
"""),
code(r"""
print("-1e9 stored as float16:", torch.tensor(-1e9, dtype=torch.float16))
print("most negative float16 :", torch.finfo(torch.float16).min)
scores16 = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float16)
keep = torch.tensor([True, True, False])  # the third key is in the future
"""),
md(r"""
What happens next depends on how the constant reaches the scores. `masked_fill` refuses it:
"""),
code(r"""
scores16.masked_fill(~keep, -1e9)
""", "raises-exception"),
md(r"""
The additive recipe with a Python number *works*. PyTorch does not turn the Python number into
float16 before multiplying; it computes the product and rounds only that: $0 \cdot (-10^9) = -0$,
and $1 \cdot (-10^9)$ rounds to $-\infty$, which is exactly what `apply_mask` puts there. A mask
precomputed in float32 and then cast to float16 works too: its zeros stay zero. The recipe breaks
in two cases. (1) The constant is a float16 tensor *before* the multiplication (for instance
written as `torch.tensor(-1e9, dtype=scores.dtype)` to match dtypes): it is already $-\infty$,
and $0 \cdot (-\infty)$ is NaN at every allowed position; one NaN score makes the whole softmax
row NaN. (2) A row whose keys are *all* masked becomes all $-\infty$ and its softmax is
$0/0$ = NaN, where float32's $-10^9$ would have left a finite (uniform) row.
"""),
code(r"""
mask16 = 1 - keep.half()  # 0 at allowed keys, 1 at masked ones
nothing = torch.zeros(3, dtype=torch.bool)  # a row with no key allowed
recipes = {
    "Python constant": scores16 + mask16 * -1e9,
    "float32 mask, cast": scores16 + ((1 - keep.float()) * -1e9).half(),
    "constant cast first": scores16 + mask16 * torch.tensor(-1e9).half(),
    "all keys masked": scores16 + (1 - nothing.half()) * -1e9,
    "all masked, float32": scores16.float() + (1 - nothing.float()) * -1e9,
}
weights16 = {}
for name, masked_scores in recipes.items():
    weights16[name] = torch.softmax(masked_scores, dim=-1)
    scores_text = ", ".join(f"{v:.4g}" for v in masked_scores.tolist())
    weights_text = ", ".join(f"{v:.4f}" for v in weights16[name].tolist())
    print(f"{name:>20}: scores [{scores_text}]  weights [{weights_text}]")
"""),
code(r"""
reference = torch.softmax(torch.tensor([1.0, 2.0]), dim=-1)
for name in ("Python constant", "float32 mask, cast"):
    w = weights16[name]
    assert w[2] == 0 and torch.allclose(w[:2].float(), reference, atol=1e-3)
assert torch.isnan(recipes["constant cast first"][keep]).all()
assert torch.isnan(weights16["constant cast first"]).all()
assert torch.isnan(weights16["all keys masked"]).all()
assert torch.allclose(
    weights16["all masked, float32"], torch.full((3,), 1 / 3)
)
"""),
md(r"""
`apply_mask` puts $-\infty$ itself in place, with `masked_fill`: nothing is multiplied, so there
is no $0 \cdot (-\infty)$. The other safe constant is `torch.finfo(dtype).min`, the most negative
*finite* number of the dtype, which is what Hugging Face's `transformers` fills its masks with.
It exists in every dtype, so `masked_fill` accepts it, and used additively it adds exactly 0 at
every real position ($0 \cdot \text{finite} = 0$): the real scores are untouched, and a masked
score becomes $-65{,}504$ (or $-\infty$ if the sum overflows), whose weight underflows to
exactly 0. Both give float32's weights:
"""),
code(r"""
finfo16 = torch.finfo(torch.float16).min
candidates = {
    "apply_mask (-inf)": apply_mask(scores16, keep),
    "masked_fill finfo.min": scores16.masked_fill(~keep, finfo16),
    "additive finfo.min": scores16 + mask16 * finfo16,
}
for name, masked_scores in candidates.items():
    w = torch.softmax(masked_scores, dim=-1)
    print(
        f"{name:>21}:",
        w,
        "real scores unchanged:",
        torch.equal(masked_scores[keep], scores16[keep]),
    )
    assert torch.equal(masked_scores[keep], scores16[keep])
    assert w[2] == 0 and torch.allclose(w[:2].float(), reference, atol=1e-3)
"""),
md(r"""
The difference between $-\infty$ and `finfo.min` shows only in a row with nothing to attend to
(see *Rows with nothing to attend to* below).

The opposite failure happens in float32 with a constant that is too *small* in magnitude, such
as $-10^4$ (which does fit in float16): a real score can be more negative than that, and then the
masked key wins.
"""),
code(r"""
scores32 = torch.tensor(
    [-2e4, 0.0]
)  # a large negative real score; key 2 is masked
keep2 = torch.tensor([True, False])
leaky = torch.softmax(scores32.masked_fill(~keep2, -1e4), dim=-1)
exact = torch.softmax(apply_mask(scores32, keep2), dim=-1)
print("-1e4:", leaky, "  -inf:", exact)
assert leaky[1] > 0.99 and torch.equal(exact, torch.tensor([1.0, 0.0]))
"""),
md(r"""
### Rows with nothing to attend to

With $-\infty$ one case needs care: a query whose keys are *all* masked. Its row of scores is all
$-\infty$, and the softmax computes $0/0$ = NaN. This is not exotic: with left padding (below),
the pad positions at the start of a sequence may attend to nothing at all. Ignoring those
positions' outputs is not enough, because NaN spreads: in the next layer the real positions give
the pad positions weight exactly 0, and $0 \cdot \text{NaN} = \text{NaN}$.

Two layers of bare attention ($Q = K = V = X$, no weights) over a sequence whose first two
positions are padding:
"""),
code(r"""
def naive_attention(x, mask):  # the formula, with no special case
    return (
        torch.softmax(
            apply_mask(x @ x.T / math.sqrt(x.size(-1)), mask), dim=-1
        )
        @ x
    )


g = torch.Generator().manual_seed(2)
seq = torch.randn(5, 8, generator=g)  # (T, d): 2 pads, then 3 real tokens
left_mask = combine_masks(
    causal_mask(5), padding=padding_mask([3], max_len=5, side="left")
)[0, 0]
print(left_mask.int())
layer1 = naive_attention(seq, left_mask)
layer2 = naive_attention(layer1, left_mask)
print("NaN rows after layer 1:", torch.isnan(layer1).any(-1).tolist())
print("NaN rows after layer 2:", torch.isnan(layer2).any(-1).tolist())
assert torch.isnan(layer1[:2]).all() and not torch.isnan(layer1[2:]).any()
assert torch.isnan(layer2).all()  # the real positions are lost too
"""),
md(r"""
A common patch replaces $-\infty$ by `finfo.min`: then an empty row has no NaN, but its softmax is
uniform over *all* keys — the masked ones included. `gptlib` instead defines the weights and the
output of an empty row to be 0 (the `empty` lines in `scaled_dot_product_attention` above, and
the same in `fused_attention`): no NaN, no attention to anything masked, and the real positions
are what they would be without the pads.
"""),
code(r"""
patched = torch.softmax(
    (seq @ seq.T / math.sqrt(8)).masked_fill(
        ~left_mask, torch.finfo(torch.float32).min
    ),
    -1,
)
print("finfo.min, empty row 0:", patched[0])
q = k = v = seq[None, None]  # (1, 1, T, d)
out, w = scaled_dot_product_attention(q, k, v, left_mask, return_weights=True)
print("gptlib,    empty row 0:", w[0, 0, 0])
alone = scaled_dot_product_attention(
    seq[None, None, 2:],
    seq[None, None, 2:],
    seq[None, None, 2:],
    causal_mask(3),
)
assert torch.allclose(
    patched[0], torch.full((5,), 0.2)
)  # attends uniformly, to masked keys
assert (
    (w[0, 0, :2] == 0).all()
    and (out[0, 0, :2] == 0).all()
    and torch.isfinite(out).all()
)
assert torch.allclose(
    out[0, 0, 2:], alone[0, 0], atol=1e-6
)  # real positions as without pads
"""),
md(r"""
## Padding: batches of unequal length

A batch is a rectangle, $(B, T)$. Sequences of different lengths are made to fit by *padding*
them with a filler token up to the longest, and a **padding mask** $P \in \{0,1\}^{B \times T}$
records which entries are real. In attention it is a mask over *keys*: query $i$ of sequence $b$
may attend to key $j$ if $M_{ij} = 1$ and $P_{bj} = 1$. `combine_masks` lifts $P$ to
$(B, 1, 1, T)$ so that it broadcasts over heads and queries, and takes the logical AND with the
causal mask:
"""),
code(r"""
lengths = [6, 3, 4]
print(padding_mask(lengths).int())  # right padding: real tokens first
print(
    padding_mask(lengths, side="left").int()
)  # left padding: real tokens last
print(combine_masks(causal_mask(6), padding=padding_mask(lengths)).shape)
"""),
code(r"""
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
for ax, side in zip(axes, ("right", "left")):
    m = combine_masks(
        causal_mask(6), padding=padding_mask([3], max_len=6, side=side)
    )[0, 0]
    ax.imshow(m.float(), cmap="Greys", vmin=0, vmax=1)
    tokens = (
        ["a", "b", "c", "pad", "pad", "pad"]
        if side == "right"
        else ["pad", "pad", "pad", "a", "b", "c"]
    )
    ax.set_xticks(range(6), tokens)
    ax.set_yticks(range(6), tokens)
    ax.set_xlabel("key")
    ax.set_title(f"{side} padding: causal AND padding", fontsize=10)
    empty = ~m.any(-1)
    for i in torch.nonzero(empty).flatten().tolist():
        ax.text(
            2.5,
            i,
            "nothing to attend to",
            ha="center",
            va="center",
            color="C3",
            fontsize=8,
        )
axes[0].set_ylabel("query")
fig.legend(handles=MASK_LEGEND, loc="lower center", ncol=2, fontsize=9)
plt.tight_layout(rect=(0, 0.08, 1, 1))
plt.show()
"""),
md(r"""
**Training pads on the right.** Put three validation lines of different lengths into one
right-padded batch: at every real position the trained masked model must give the same logits as
for each line alone. The loss must skip the padding as well: a target of `-100` is ignored by the
cross-entropy, so the padded batch's loss equals the token-weighted average of the lines' losses.
"""),
code(r"""
lines = [
    "Merchant of Syracuse, plead no more;",
    "AEGEON:",
    "Well, Syracusian, say",
]
ids = [torch.tensor(tok.encode(s)) for s in lines]
n = [len(i) for i in ids]
T_pad, pad_id = max(n), 0
batch = torch.full((3, T_pad), pad_id)
targets = torch.full((3, T_pad), -100)  # -100: no loss at this position
for b, seq_ids in enumerate(ids):
    batch[b, : n[b]] = seq_ids
    targets[b, : n[b] - 1] = seq_ids[
        1:
    ]  # predict each next character of the line
keys = padding_mask(n)

with torch.no_grad():
    logits, loss = masked(batch, targets, padding_mask=keys)
    same, losses = [], []
    for b, seq_ids in enumerate(ids):
        alone, alone_loss = masked(seq_ids[None], targets[b : b + 1, : n[b]])
        same.append(torch.allclose(logits[b, : n[b]], alone[0], atol=1e-5))
        losses.append(alone_loss.item() * (n[b] - 1))
print("real positions equal to each line alone:", same)
print(
    f"padded-batch loss {loss.item():.2f} = weighted mean of the lines' losses"
    f" {sum(losses) / sum(m - 1 for m in n):.2f}"
)
assert (
    all(same) and abs(loss.item() - sum(losses) / sum(m - 1 for m in n)) < 1e-5
)
"""),
md(r"""
**Generation pads on the left.** To generate for a batch of prompts, the model needs each row's
*last* position: that is where the next-token distribution is, and the new token is appended
after it. With right padding the last real positions are in different columns, and a new column
of tokens would land *after* the padding of the shorter rows, at the wrong distance from their
text. With left padding every row ends in the last column: `logits[:, -1]` is every row's
prediction, and each step appends one column for all rows.

Our models use rotary positions, which depend only on the offset between tokens, so shifting a
prompt to the right by its padding changes nothing. (With an absolute position table such as
GPT-2's it would; `gptlib`'s `GPT` counts each row's positions over its real tokens, read from
the padding mask, so a padded row gets the positions it has alone.) One greedy step, then a
second with the chosen tokens appended, for both paddings — and for right padding also with the
positions counted by column (`position_ids`), as a model without that bookkeeping would:
"""),
code(r"""
prompts = ["Merchant of Syracuse", "AEGEON:\nYet", "Well"]
ids = [torch.tensor(tok.encode(s)) for s in prompts]
n = [len(i) for i in ids]
T_pad = max(n)


def padded(side):
    batch = torch.full((3, T_pad), pad_id)
    for b, seq_ids in enumerate(ids):
        if side == "right":
            batch[b, : n[b]] = seq_ids
        else:
            batch[b, T_pad - n[b] :] = seq_ids
    return batch, padding_mask(n, side=side)


with torch.no_grad():
    alone = [masked(i[None])[0][0, -1] for i in ids]  # each prompt on its own
    nxt = torch.stack(alone).argmax(-1)  # greedy next tokens (3,)
    alone2 = [
        masked(torch.cat([i, nxt[b : b + 1]])[None])[0][0, -1]
        for b, i in enumerate(ids)
    ]
    for side in ("left", "right"):
        batch, keys = padded(side)
        logits = masked(batch, padding_mask=keys)[0]
        last = (
            logits[:, -1]
            if side == "left"
            else logits[range(3), torch.tensor(n) - 1]
        )
        step1 = all(
            torch.allclose(last[b], alone[b], atol=1e-4) for b in range(3)
        )
        batch2 = torch.cat([batch, nxt[:, None]], dim=1)  # append one column
        keys2 = torch.cat([keys, torch.ones(3, 1, dtype=torch.bool)], dim=1)
        logits2 = masked(batch2, padding_mask=keys2)[0][:, -1]
        step2 = [
            torch.allclose(logits2[b], alone2[b], atol=1e-4) for b in range(3)
        ]
        print(
            f"{side:>5} padding: step 1 matches each prompt alone: {step1};"
            f" step 2: {step2}"
        )
        assert step1 and all(step2) and torch.isfinite(logits).all()
        if side == "right":  # positions 0, 1, 2, ... by column
            columns = torch.arange(batch2.size(1)).expand_as(batch2)
            logits3 = masked(batch2, padding_mask=keys2, position_ids=columns)[
                0
            ]
            step2 = [
                torch.allclose(logits3[b, -1], alone2[b], atol=1e-4)
                for b in range(3)
            ]
            print(f"right padding, positions by column: step 2: {step2}")
            assert step2[0] and not step2[1] and not step2[2]
"""),
md(r"""
Both paddings give the right first step (for right padding, only if we pick each row's last real
column). After appending, the new token of a right-padded row sits behind its padding: it is at
the right distance from its text only because the model counts positions over the real tokens;
counted by column, it is wrong for every row that had padding. Left padding needs no such care:
every row ends in the last column, and each step appends one column for all rows. With left
padding, the pad positions are also the queries that have nothing to attend to — where `gptlib`'s
definition of empty rows keeps the logits finite.

## More masks: sliding windows and packed documents

The causal mask is the one a GPT cannot do without, but a mask is any rule for who may see whom,
and two more are in wide use. Both keep the causal rule and remove more.

**A sliding window** (locally banded attention): each query sees only its `band` most recent
keys, itself included. GPT-3 alternates dense layers with locally banded ones
{cite:p}`brown2020language`, after the Sparse Transformer {cite:p}`child2019generating`; the
dense layers in between carry information further. `banded_causal_mask(T, band)` builds it.

**Packed documents.** Our corpus is the plays one after another, and `get_batch` cuts windows
anywhere, so a window that straddles the end of one play lets the opening lines of the next play
attend to the last lines of the previous one. GPT-3 trains exactly like that: documents packed
into full windows "not masked in any special way", separated only by an end-of-text token
{cite:p}`brown2020language`. The alternative is a **document mask**, causal within each document
and closed between documents: a block-diagonal causal mask. Llama 3 uses one
{cite:p}`dubey2024llama`. `document_mask` builds it from the document of each token:
"""),
code(r"""
show(document_mask)
"""),
md(r"""
A 64-character window of the validation plays that spans the end of *The Comedy of Errors* and
the start of *King John*, and its three masks:
"""),
code(r"""
val_plays = load_plays("val")
boundary = val_text.find(val_plays[1].text)  # where the second play starts
assert val_text.startswith(val_plays[0].text) and boundary > 0
assert [p.title for p in val_plays[:2]] == [
    "The Comedy of Errors",
    "King John",
]
start = boundary - 40
window = torch.tensor([tok.encode(val_text[start : start + 64])])  # (1, 64)
doc_ids = (torch.arange(start, start + 64) >= boundary).long()  # (64,)
print(
    repr(val_text[start:boundary]), "|", repr(val_text[boundary : start + 64])
)
print("document ids:", "".join(map(str, doc_ids.tolist())))

fig, axes = plt.subplots(1, 3, figsize=(11, 4.4))
masks_64 = {
    "causal": causal_mask(64),
    "sliding window, band = 16": banded_causal_mask(64, 16),
    "document mask (2 plays)": document_mask(doc_ids),
}
for ax, (title, m) in zip(axes, masks_64.items()):
    ax.imshow(m.float(), cmap="Greys", vmin=0, vmax=1)
    ax.axvline(40 - 0.5, color="C3", lw=1)  # where King John begins
    ax.axhline(40 - 0.5, color="C3", lw=1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("key j")
axes[0].set_ylabel("query i")
handles = MASK_LEGEND + [
    plt.Line2D([], [], color="C3", lw=1, label="start of the second play")
]
fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9)
plt.tight_layout(rect=(0, 0.08, 1, 1))
plt.show()
"""),
md(r"""
Prove it on the trained masked model. `GPT`'s forward pass takes a padding mask but no other
mask, so `logits_with_mask` runs its blocks by hand, each block combining the extra mask with its
causal one. With the document mask, the *King John* part of the window must get exactly the
logits it gets on its own; with the causal mask alone it reads the end of the other play.
Rotary positions depend only on the distance between tokens, so the positions need no
correction; a model with a learned position table would also need positions that restart at
each document (`gptlib.masking.document_positions`, passed as `position_ids`).
"""),
code(r"""
def logits_with_mask(model, idx, mask=None):
    # GPT.forward (no position table: rotary positions act inside the
    # attention) with an extra mask that every block ANDs with its causal one.
    x = model.wte(idx)
    for block in model.h:
        x = block(x, mask, None, model.pos.rope)
    return model.lm_head(model.ln_f(x))


with torch.no_grad():
    plain = masked(window)[0]
    assert torch.allclose(logits_with_mask(masked, window), plain, atol=1e-5)
    packed = logits_with_mask(masked, window, document_mask(doc_ids))
    first_alone = masked(window[:, :40])[0]
    second_alone = masked(window[:, 40:])[0]
for name, logits in (("document mask", packed), ("causal mask only", plain)):
    first = torch.allclose(logits[:, :40], first_alone, atol=1e-4)
    second = torch.allclose(logits[:, 40:], second_alone, atol=1e-4)
    print(
        f"{name:>16}: first play as alone: {first}; second play as alone:"
        f" {second}"
    )
assert torch.allclose(packed[:, :40], first_alone, atol=1e-4)
assert torch.allclose(packed[:, 40:], second_alone, atol=1e-4)
assert not torch.allclose(plain[:, 40:], second_alone, atol=1e-2)
"""),
md(r"""
How much does it matter here? A training window of 64 characters and its targets cross a play
boundary only if it starts in the 64 positions before one:
"""),
code(r"""
train_plays = load_plays("train")
play_starts = [train_text.find(p.text) for p in train_plays[1:]]
assert all(b > 0 for b in play_starts)
crossing = 64 * len(play_starts) / (len(train_ids) - 64)
print(
    f"{len(train_plays)} training plays: {crossing:.4%} of the training"
    " windows cross a boundary"
)
assert 1 / 2500 < crossing < 1 / 1500
"""),
md(r"""
About one window in 2,000: for this book the document mask would change almost nothing,
and `get_batch` does without it. It matters when many short documents (web pages, chat
transcripts) are packed into long windows, where most positions would otherwise share a window
with unrelated text.

## Play with it

Pick a mask and a query position, and see which positions that query may attend to. For the two
trained models the shading shows the attention weights of one head (the last head of the second
block) on the line from above: the masked model's head spreads its attention over the past; the
unmasked model's head looks one step ahead. (The controls need a running notebook; in the HTML
book the explorer shows the state it was saved in, and the figure below shows every query at
once.)
"""),
code(r"""
def head_weights(model, x, layer=1, head=3):
    # Attention weights (T, T) of one head, from the input of block `layer`.
    block = model.h[layer]
    with torch.no_grad():
        h = model.hidden_states(x)[layer]
        _, w = block.attn(
            block.ln_1(h),
            rope=model.pos.rope,
            causal=block.causal,
            return_weights=True,
        )
    return w[0, head]


T_line = x.size(1)
chars = list(line)
n_pad = 8
views = {
    "causal (trained masked model)": (
        chars,
        causal_mask(T_line),
        head_weights(masked, x),
    ),
    "none (trained unmasked model)": (
        chars,
        torch.ones(T_line, T_line, dtype=torch.bool),
        head_weights(unmasked, x),
    ),
    "causal + right padding": (
        chars[: T_line - n_pad] + ["·"] * n_pad,
        combine_masks(
            causal_mask(T_line),
            padding=padding_mask([T_line - n_pad], max_len=T_line),
        )[0, 0],
        None,
    ),
    "causal + left padding": (
        ["·"] * n_pad + chars[: T_line - n_pad],
        combine_masks(
            causal_mask(T_line),
            padding=padding_mask(
                [T_line - n_pad], max_len=T_line, side="left"
            ),
        )[0, 0],
        None,
    ),
}
"""),
code(r"""
from gptlib.viz import mask_explorer

mask_explorer(views, query=t_change)
"""),
code(r"""
fig, axes = plt.subplots(
    2, 2, figsize=(8, 8.2), layout="constrained"
)  # two to a row: full size
for ax, (name, (labels_v, mask_v, weights_v)) in zip(axes.flat, views.items()):
    if weights_v is None:  # the mask alone
        ax.imshow(mask_v.float() * 0.35, cmap="Blues", vmin=0, vmax=1)
    else:  # weights; square-root scale shows small ones
        im = ax.imshow(
            weights_v, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1)
        )
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("key")
for ax in axes[:, 0]:
    ax.set_ylabel("query")
fig.colorbar(
    im,
    ax=axes,
    shrink=0.6,
    label="attention weight (square-root scale)",
)
fig.legend(
    handles=[
        Patch(facecolor=plt.cm.Blues(0.35), label="bottom row: may attend"),
        Patch(facecolor="white", edgecolor="grey", label="masked"),
    ],
    loc="outside lower center",
    ncol=2,
    fontsize=9,
)
plt.show()
"""),
md(r"""
The head shown is no exception: every head of the unmasked model's second block puts nearly all
its weight on the next position, and every head of the masked model puts exactly none there.
"""),
code(r"""
for name, model in (("masked", masked), ("unmasked", unmasked)):
    ahead = [
        head_weights(model, x, head=h).diagonal(1).mean() for h in range(4)
    ]
    print(
        f"{name:>8}, second block: mean weight on position i + 1, smallest"
        f" over the 4 heads {min(ahead):.1f}, largest {max(ahead):.1f}"
    )
    if name == "unmasked":
        assert all(a > 0.8 for a in ahead)
    else:
        assert all(a == 0 for a in ahead)
"""),
md(r"""
## Does the mask save computation?

A frequently repeated explanation says the opposite of what we just saw: that the mask exists
to *save work* on long sequences. Count the work. `FlopCounterMode` counts the floating-point
operations of every matrix multiplication PyTorch executes — an exact count, not a timing. First
one attention call, with and without the causal mask; then a forward pass of our two models:
"""),
code(r"""
def flops(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


g = torch.Generator().manual_seed(3)
q, k, v = (torch.randn(1, 4, 256, 16, generator=g) for _ in range(3))
attn_plain = flops(lambda: scaled_dot_product_attention(q, k, v))
attn_masked = flops(
    lambda: scaled_dot_product_attention(q, k, v, causal_mask(256))
)
print(
    f"attention, T = 256: no mask {attn_plain:,} FLOPs, causal mask"
    f" {attn_masked:,} FLOPs"
)
with torch.no_grad():
    model_masked = flops(lambda: masked(x_val))
    model_unmasked = flops(lambda: unmasked(x_val))
print(
    f"GPT forward on (32, 64): masked {model_masked:,} FLOPs, unmasked"
    f" {model_unmasked:,} FLOPs"
)
assert (
    attn_plain == attn_masked == 2 * (2 * 4 * 256 * 256 * 16)
)  # QK^T and AV, full squares
assert model_masked == model_unmasked
"""),
md(r"""
Exactly equal. The written-out attention computes all $T^2$ scores, sets the masked ones to
$-\infty$, computes a softmax over all of them and multiplies the zero weights by the values.
Masking saves none of that work and *adds* some that a FLOP count does not see: the check for
rows with nothing to attend to and the `-inf` fill are passes over all $T^2$ scores (the timing
below shows it is not negligible). Only a kernel built for it skips the masked half: when a
fused kernel is *told* the mask is causal (`is_causal=True` in PyTorch's
`scaled_dot_product_attention`), FlashAttention-style implementations
{cite:p}`dao2022flashattention` process the score matrix in tiles and skip every tile that lies
entirely above the diagonal. What there is to skip: the fraction of the $T \times T$ scores that
get a nonzero weight is $\frac{T(T+1)/2}{T^2}$, just over half, counted here from the weights the
masked attention returns for random queries and keys:
"""),
code(r"""
g = torch.Generator().manual_seed(5)
for T in (64, 1024, 2048):
    q1, k1 = (torch.randn(1, 1, T, 16, generator=g) for _ in range(2))
    _, w = scaled_dot_product_attention(
        q1, k1, k1, causal_mask(T), return_weights=True
    )
    used = int((w > 0).sum())
    print(
        f"T = {T:4d}: {used:,} of {T * T:,} weights are nonzero"
        f" ({used / T**2:.4f})"
    )
    assert used == T * (T + 1) // 2
"""),
md(r"""
Timings depend on the machine and its load, so they are shown here, never asserted. One thread,
$T = 1024$, 4 heads of dimension 32. Expect the explicit path to be clearly *slower* with the
mask, although its FLOPs are the same: with a head dimension of 32 each score costs only 32
multiply-adds in $QK^\top$ and 32 in $AV$, so a few extra passes over the 4 million scores (the
empty-row check, the `-inf` fill) are a sizeable part of the time; the line "masking steps alone"
times just those. The fused kernel should be faster with `is_causal=True`, which lets it skip
work instead of adding it.
"""),
code(r"""
g = torch.Generator().manual_seed(4)
q, k, v = (torch.randn(1, 4, 1024, 32, generator=g) for _ in range(3))
mask_1024 = causal_mask(1024)
variants = {
    "explicit, no mask": lambda: scaled_dot_product_attention(q, k, v),
    "explicit, causal mask": lambda: scaled_dot_product_attention(
        q, k, v, mask_1024
    ),
    "masking steps alone": lambda: apply_mask(
        scores_1024, mask_1024 | ~mask_1024.any(-1, keepdim=True)
    ),
    "fused, no mask": lambda: fused_attention(q, k, v),
    "fused, is_causal=True": lambda: fused_attention(q, k, v, is_causal=True),
}
scores_1024 = q @ k.transpose(-2, -1) / math.sqrt(32)
best = {}
for name, fn in variants.items():
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    best[name] = min(times)
    print(f"{name:>22}: {1000 * best[name]:6.1f} ms")
slower = best["explicit, causal mask"] / best["explicit, no mask"] - 1
print(f"the causal mask made the explicit path {100 * slower:+.0f}% slower")
""", "nbval-ignore-output"),
md(r"""
## The loss ladder so far

The loss ladder (chapter 1) measures each chapter's minimal model with one yardstick: the
validation loss in nats per character on every 64-character window of the validation plays,
every neural rung trained under the same budget (1,500 steps of 32 windows of 64 characters,
3.07 million tokens) at the learning rate chosen for it on validation (seed 0), three seeds each;
`scripts/experiments/ladder.py` wrote the file. This chapter's rung is chapter 2's four-head
model (token embeddings, four attention heads, output layer; no positions, no MLP) trained
**without the causal mask**. It is scored honestly, one token at a time
(`gptlib.ladder.honest_loss`: this chapter's `one_at_a_time` over every validation window; the
same number chose its learning rate). The file also keeps its *leaky* loss, the teacher-forced
number it reports when it can see its targets.
"""),
code(r"""
ladder = read_ladder("../data/results/ladder.json")
print(ladder_table(ladder, upto_chapter=3))
plot_ladder(ladder, chapter=3)
plt.show()
"""),
md(r"""
With the mask, the four heads reach 2.430 nats (chapter 2's rung); without it, scored
honestly, the same model reaches 2.731 (means over three seeds, in the table): removing the mask
costs about 0.3 nats per character, and leaves the model worse than chapter 1's counted bigram.
Its leaky loss, printed below, is lower than its honest loss, as it must be for a model that
peeks — but by a fraction of a nat, where the demo model above went from 4.1 honest to 0.06
teacher-forced. The two models differ in much (depth, MLPs, residual connections, learning
rate), but one difference alone rules out copying: this rung has no positions, and without them
attention sees a window as a *bag* of characters: a score depends on which characters the query
and the key are, not on where they stand. The unmasked rung cannot single out "the key one step
to the right", so it cannot copy its target. Shuffle every token of a window except one, and
that one's prediction does not move (untrained weights will do: it is a property of the
architecture):
"""),
code(r"""
set_seed(0)
rung_model = build_model("attn-4heads-unmasked", tok.vocab_size).eval()
t_probe = 20
others = torch.tensor([i for i in range(64) if i != t_probe])
shuffle = others[
    torch.randperm(63, generator=torch.Generator().manual_seed(0))
]
w_orig = x_val[:4]  # four windows (4, 64)
w_shuffled = w_orig.clone()
w_shuffled[:, others] = w_orig[:, shuffle]  # every token but t_probe moved
with torch.no_grad():
    same = torch.allclose(
        rung_model(w_orig)[0][:, t_probe],
        rung_model(w_shuffled)[0][:, t_probe],
        atol=1e-5,
    )
print(
    f"prediction at {t_probe}, the other 63 tokens shuffled: unchanged",
    same,
)
assert same and not torch.equal(w_orig, w_shuffled)
"""),
md(r"""
All that peeking can tell this model is which characters its window contains, its target among
them, and the leaky loss credits it with exactly that. It pays for it when it is honest: in
training, every position saw all 64 characters of its window, the answer among them; one token
at a time, the prediction at position $t$ sees only $t + 1$ characters and never the answer. (At
the last position of a window the two ways coincide: both see exactly the window.) The demo
model of this chapter has rotary positions, which make "one step to the right" a single pattern,
and so it cheats completely. The numbers, in the worst case over seeds, and the demo model's
masked half on the ladder's yardstick:
"""),
code(r"""
summary = {r["rung"]: r for r in ladder_summary(ladder, upto_chapter=3)}
unmasked_runs = [
    r
    for r in ladder["runs"]
    if r["rung"] == "attn-4heads-unmasked" and r.get("final", True)
]
leaky = [r["leaky_val_loss"] for r in unmasked_runs]
honest_runs = [r["val_loss"] for r in unmasked_runs]
seed_spread = max(
    summary[n]["spread"] for n in ("attn-4heads", "attn-4heads-unmasked")
)
ngram_run = next(r for r in ladder["runs"] if r["rung"] == "ngram")
demo_loss = dataset_loss(masked, val_ids, 64)  # the yardstick, our demo model
paired = [h - lk for h, lk in zip(honest_runs, leaky)]  # same model, 2 ways
gaps = {
    "masked 4 heads below unmasked (honest)": rung_gap(
        ladder, "attn-4heads", "attn-4heads-unmasked"
    ),
    "counted bigram below unmasked (honest)": rung_gap(
        ladder, "bigram", "attn-4heads-unmasked"
    ),
    "unmasked: leaky below honest, same seed": min(paired),
}
for name, gap in gaps.items():
    print(f"{name:40s} {gap:+.3f} nats (worst case over seeds)")
print(f"largest seed spread of the two rungs: {seed_spread:.3f} nats")
print(
    "unmasked rung, leaky / honest by seed:",
    ", ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(leaky, honest_runs)),
)
print(
    f"demo model (2 blocks, RoPE, 300 steps of 16 windows): {demo_loss:.2f};"
    f" best n-gram (n = {ngram_run['n']}, alpha = {ngram_run['alpha']}):"
    f" {ngram_run['val_loss']:.3f}"
)
masked_gain = gaps["masked 4 heads below unmasked (honest)"]
assert masked_gain > 0.25 and masked_gain > 4 * seed_spread
assert gaps["counted bigram below unmasked (honest)"] > 0.2
assert min(paired) > max(0.09, seed_spread)  # every seed: leaky below honest
assert max(paired) < 0.2  # ... by a fraction of a nat,
masked_runs = summary["attn-4heads"]["losses"]
assert min(leaky) - max(masked_runs) > seed_spread  # even leaky: above masked
assert honest["unmasked"].mean() - forced["unmasked"] > 3  # demo: > 3 nats
bigram_loss = summary["bigram"]["mean"]
assert demo_loss < bigram_loss - 0.2  # the demo model beats the bigram,
assert demo_loss < min(summary["attn-4heads"]["losses"]) - 0.2  # chapter 2,
assert demo_loss > ngram_run["val_loss"] + 0.3  # ... but not the best n-gram
"""),
md(r"""
At this budget the causal mask is worth at least 0.26 nats per character in the worst case
over seeds, four times the largest seed spread (0.064): the unmasked rung is a step *down* the
ladder, worse than chapter 1's counted bigram by at least 0.21 nats. Every seed's leaky loss is
below its own honest loss, by 0.10 to 0.19 nats — and even the leaky loss is worse than the
masked rung. Without the mask and without positions, all 64 positions of a window attend over
the same bag of characters, so its 64 predictions differ only through their queries, the
current characters; with the mask, position $t$ attends over the first $t + 1$ characters, a
context of its own (at position 1: the previous character and itself).

The demo model's masked half (2 blocks with MLPs and rotary positions, trained for only 300
steps of 16 windows: 0.31 million characters, a tenth of the ladder's budget) scores 2.18 on
the ladder's yardstick: better than the counted bigram (2.482) and than every rung of chapter 2,
but far short of chapter 1's best counted n-gram, a 5-gram at 1.667 (printed above, with its
smoothing). The mask makes a model honest; it does not make it good. The next chapters add the
MLP, residual connections, depth and positions, and the ladder measures what each is worth.
"""),
md(r"""
```{admonition} Common misconception: "the mask exists to avoid long computation on long sequences"
:class: warning

A common explanation of GPT says that masked multi-head attention "exists to prevent the long
computation caused by overly long sequences: it sets the future part to $-\infty$, so that it does
not take part in the computation." The $-\infty$ is right; the reason is wrong, twice.

1. **The mask is about information, not cost.** It exists so that one teacher-forced pass trains
   $T$ honest next-token predictions: the prediction at $t$ must not see token $t+1$, its own
   answer. We proved that the masked model's outputs before a changed token do not move by a
   single bit, and trained a model without the mask: it learned to copy the answer, and its
   teacher-forced loss collapsed to nearly 0, while one token at a time — the way it would be
   used — its loss is far worse than the masked model's and its samples are garbage.
2. **Masking does not reduce the computation.** The masked scores *are* computed, then replaced
   by $-\infty$; they do not take part in the *result*, but they took part in the work. We counted
   exactly the same FLOPs with and without the mask. Saving the masked half needs a kernel that
   knows the mask is causal and skips those tiles (`is_causal=True`, FlashAttention
   {cite:p}`dao2022flashattention`) — and even then attention's cost still grows as $T^2$.
```

## Exercises

**Exercise 1 — a KV cache needs the causal mask.** During generation, a KV cache (chapter 7)
stores each position's keys and values and never recomputes them. Feed the first 40 characters of
`x` to each trained model with a cache (`model.new_kv_cache()`), then the last 4 in one more call,
and compare the last position's logits with a single pass over all 44. Which mask do those last 4
queries use? Explain why the cache is exact for the masked model and wrong for the unmasked one.
"""),
code(r"""
# Solution. The 4 new queries are the last 4 of 44 positions: causal_mask(4,
# 44), whose offset
# (40) lets query i see the 40 cached keys and the new ones up to itself. For
# the masked model
# a cached key/value of position j depends on tokens <= j only, so it never
# goes stale. Without
# the mask, the keys and values of the first 40 positions (in layer 2) depend
# on *later* tokens;
# the cache holds the versions computed before the last 4 tokens arrived.
assert torch.equal(causal_mask(4, 44), causal_mask(44)[-4:])
with torch.no_grad():
    for name, model in (("masked", masked), ("unmasked", unmasked)):
        cache = model.new_kv_cache()
        model(x[:, :40], kv_cache=cache)
        cached = model(x[:, 40:], kv_cache=cache)[0][0, -1]
        full = model(x)[0][0, -1]
        exact = torch.allclose(cached, full, atol=1e-5)
        print(f"{name:>8}: cached == full pass: {exact}")
        assert exact == (name == "masked")
""", "hide-cell"),
md(r"""
**Exercise 2 — how much can a causal kernel skip?** Take a fused kernel that works on tiles of
$64 \times 64$ scores; it can skip a tile only if the mask is `False` on *all* of it. For
$T = 1024$, count the skippable tiles from `causal_mask(1024)` itself, and check the count
against a formula in $n = T / 64$.
"""),
code(r"""
# Solution. Reshape the mask into (n, 64, n, 64) tiles; a tile is skippable
# if none of it is
# allowed. Those are the tiles strictly above the diagonal of tiles: n(n -
# 1)/2 of n^2.
T, tile = 1024, 64
n_tiles = T // tile
tiles = (
    causal_mask(T).view(n_tiles, tile, n_tiles, tile).any(dim=(1, 3))
)  # (n, n): any allowed?
skippable = int((~tiles).sum())
print(
    f"{skippable} of {n_tiles**2} tiles skippable"
    f" ({skippable / n_tiles**2:.4f})"
)
assert skippable == n_tiles * (n_tiles - 1) // 2
""", "hide-cell"),
md(r"""
**Exercise 3 — when is the padding mask needed?** For the right-padded batch that
`padded("right")` builds in the padding section, show that the masked model gives the same logits
at the real positions *without* a padding mask; then show that for `padded("left")` it does not.
Explain both.
"""),
code(r"""
# Solution. With right padding every pad comes after every real token, so the
# causal mask
# already hides the pads from all real queries: the padding mask changes
# nothing there (the loss
# still has to skip the pad targets). With left padding the pads come
# *before* the real tokens,
# so only the padding mask keeps the real queries from attending to them.
with torch.no_grad():
    for side in ("right", "left"):
        batch, keys = padded(side)
        with_mask = masked(batch, padding_mask=keys)[0]
        without = masked(batch)[0]
        real = keys[:, :, None].expand_as(with_mask)
        same = torch.allclose(with_mask[real], without[real], atol=1e-5)
        print(
            f"{side:>5} padding: same logits at real positions without a"
            f" padding mask: {same}"
        )
        assert same == (side == "right")
""", "hide-cell"),
md(r"""
## Key points

- Teacher forcing trains all $T$ next-token predictions of a window in one pass. That is only
  honest if the output at $t$ depends on tokens $\le t$; attention is the only place positions
  mix, so the **causal mask** in attention is what makes it so.
- We proved it by behaviour: changing a token leaves every earlier output of the masked model
  bit-for-bit unchanged, and the influence matrix of the model is the mask itself.
- Without the mask a model that can locate the next position (here: rotary positions) learns
  to **copy its target**: its teacher-forced loss (even on validation text) collapses while its
  real, one-token-at-a-time loss and its samples are far worse. A leaky evaluation cannot detect
  a leaky model. One without positions cannot copy, but is still worse than with the mask.
- Put $-\infty$ into the scores **before** the softmax. Zeroing weights after it leaves rows that
  do not sum to 1 and still depend on the future. $-10^9$ does not exist in float16 (it becomes
  $-\infty$): `masked_fill` refuses it, and the additive recipe gives NaN when the constant is
  cast to float16 before it meets the 0/1 mask ($0 \cdot -\infty$) or when a row has every key
  masked. $-10^4$ is not small enough in float32. `torch.finfo(dtype).min` leaves the real
  scores untouched and is safe except in fully masked rows.
- A row with nothing to attend to must be defined (gptlib: weights and output 0), or its NaN
  spreads to every position in the next layer.
- **Padding masks** hide pad keys. Training pads on the right (the loss skips pad targets);
  generation pads on the left, so every row's next token is predicted at, and appended after,
  the last column.
- Other masks narrow the causal one further: a **sliding window** (`banded_causal_mask`) and,
  for documents packed into one window, a **block-diagonal document mask** (`document_mask`)
  that gives each document exactly the outputs it gets alone.
- The mask does **not** save computation: naive masked attention does exactly the same FLOPs,
  plus passes over the scores that make it slower. Only kernels told `is_causal`
  (FlashAttention) skip the masked tiles.

## References

Teacher forcing {cite:p}`williams1989learning`; the masked decoder self-attention of the
Transformer {cite:p}`vaswani2017attention`; GPT-2 {cite:p}`radford2019language`; bidirectional
pre-training with a different objective, BERT {cite:p}`devlin2019bert`; FlashAttention
{cite:p}`dao2022flashattention`; rotary position embeddings {cite:p}`su2021roformer`; locally
banded attention in GPT-3 {cite:p}`brown2020language` after the Sparse Transformer
{cite:p}`child2019generating`; document masks for packed sequences in Llama 3
{cite:p}`dubey2024llama`. Full entries are on the [References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "03_masking.ipynb", CELLS)
