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
goes, low-precision dtypes, rows with nothing to attend to, padded batches), and measures that the
mask saves no computation at all unless the kernel is written to skip it.
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
from torch.utils.flop_counter import FlopCounterMode

from gptlib import set_seed, show
from gptlib.attention import fused_attention, scaled_dot_product_attention
from gptlib.data import encode_text, get_batch, load_text
from gptlib.generate import sample_next
from gptlib.masking import (
    apply_mask,
    causal_mask,
    combine_masks,
    mask_after_softmax,
    padding_mask,
)
from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import TrainConfig, train
from gptlib.tokenizer import CharTokenizer

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

Left: the causal mask for the 12 characters `To be, or no`. Middle: attention weights of random
scores after masking; each row is a distribution over the past and present only. Right: the mask
of a decoding step with a cache, 3 new queries after 9 cached positions — the bottom 3 rows of the
left-hand mask.
"""),
code(r"""
chars = list("To be, or no")
T_demo = len(chars)
g = torch.Generator().manual_seed(0)
demo_scores = torch.randn(T_demo, T_demo, generator=g)
demo_weights = torch.softmax(
    apply_mask(demo_scores, causal_mask(T_demo)), dim=-1
)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
labels = ["␣" if c == " " else c for c in chars]
panels = [
    (causal_mask(T_demo).float(), "causal mask: True = may attend", "Greys"),
    (demo_weights, "weights: softmax of masked scores", "Blues"),
    (causal_mask(3, T_demo).float(), "3 new queries, 9 cached keys", "Greys"),
]
for ax, (img, title, cmap) in zip(axes, panels):
    ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks(range(T_demo), labels)
    rows = labels[-img.shape[0] :]
    ax.set_yticks(range(img.shape[0]), rows)
    ax.set_xlabel("key j (attended to)")
    ax.set_title(title, fontsize=10)
axes[0].set_ylabel("query i (attending)")
plt.tight_layout()
plt.show()
"""),
code(r"""
assert torch.allclose(
    demo_weights.sum(-1), torch.ones(T_demo)
)  # every row is a distribution
assert (demo_weights.triu(diagonal=1) == 0).all()  # ... over positions j <= i
assert torch.equal(causal_mask(3, T_demo), causal_mask(T_demo)[-3:])
print(
    "row sums:", ", ".join(f"{r:.4f}" for r in demo_weights.sum(-1).tolist())
)
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
finds it within this budget. With GPT-2's learned position table the same pattern would have to be
assembled from 64 separately learned position vectors.
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
honest, forced = {}, {}
with torch.no_grad():
    for name, model in (("masked", masked), ("unmasked", unmasked)):
        logits = one_at_a_time(model, x_val)  # (32, 64, V)
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
ax.legend(fontsize=8)
plt.show()
"""),
md(r"""
For the masked model the two measurements are the same number, as they must be. The unmasked
model's honest loss is far worse than the masked model's, and at the first positions worse than
a uniform guess: it is confidently wrong. During training every one of its positions except the
last had its answer in view, so it learned to copy rather than to predict; at the end of a prefix
there is nothing to its right to copy.

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

**Samples.** Generating one token at a time puts every model in the honest situation. Eight
samples of 200 characters from each model, after the same 42-character prompt; each new token is
predicted from the last 64 characters (the training length). We judge them by a crude but
model-free measure: the fraction of their 4-character pieces that occur anywhere in the training
plays. One sample of each model is printed.
"""),
code(r"""
train_4grams = {train_text[i : i + 4] for i in range(len(train_text) - 3)}


def real_4gram_fraction(s):
    pieces = [s[i : i + 4] for i in range(len(s) - 3)]
    return sum(p in train_4grams for p in pieces) / len(pieces)


def sample(model, prompt, n_new, n_samples=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor([tok.encode(prompt)] * n_samples)
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(ids[:, -64:])[0][
                :, -1
            ]  # the last position sees only the past
            ids = torch.cat(
                [ids, sample_next(logits, generator=g)[:, None]], dim=1
            )
    return [tok.decode(row[len(prompt) :].tolist()) for row in ids]


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
use when the answer is absent. The lesson is general: a model that can see its target during
training learns to look, not to predict, and a loss measured the same leaky way will not tell
you. (Models that *should* read in both directions, such as BERT {cite:p}`devlin2019bert`,
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

A common shortcut writes a large finite number such as $-10^9$ instead of $-\infty$ (or adds
`(1 - mask) * -1e9` to the scores). In float32 that works. In float16, whose largest magnitude is
65,504, the number does not exist:
"""),
code(r"""
print("-1e9 stored as float16:", torch.tensor(-1e9, dtype=torch.float16))
print("most negative float16 :", torch.finfo(torch.float16).min)
scores16 = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float16)
keep = torch.tensor([True, True, False])  # the third key is in the future
"""),
md(r"""
Filling the masked scores with it is an error in PyTorch:
"""),
code(r"""
scores16.masked_fill(~keep, -1e9)
""", "raises-exception"),
md(r"""
The additive recipe fails silently, which is worse: the constant becomes $-\infty$, and at every
*allowed* position the recipe multiplies it by 0. $0 \cdot (-\infty)$ is NaN, and a single NaN
score makes the whole softmax row NaN.
"""),
code(r"""
neg = torch.tensor(-1e9).to(
    torch.float16
)  # the constant, in the model's dtype
additive = scores16 + (1 - keep.half()) * neg
print("masked scores:", additive)
print("weights      :", torch.softmax(additive, dim=-1))
assert (
    torch.isnan(additive[keep]).all()
    and torch.isnan(torch.softmax(additive, -1)).all()
)
"""),
md(r"""
The right way is $-\infty$ itself (`apply_mask`), or `torch.finfo(dtype).min` with `masked_fill`,
which replaces the score instead of adding to it and so cannot overflow:
"""),
code(r"""
reference = torch.softmax(torch.tensor([1.0, 2.0]), dim=-1)
for masked_scores in (
    apply_mask(scores16, keep),
    scores16.masked_fill(~keep, torch.finfo(torch.float16).min),
):
    w = torch.softmax(masked_scores, dim=-1)
    print(
        w,
        "matches float32:",
        torch.allclose(w[:2].float(), reference, atol=1e-3),
    )
    assert w[2] == 0 and torch.allclose(w[:2].float(), reference, atol=1e-3)
"""),
md(r"""
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
plt.tight_layout()
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
fig, axes = plt.subplots(2, 2, figsize=(8, 7.6))  # two to a row: full size
for ax, (name, (labels_v, mask_v, weights_v)) in zip(axes.flat, views.items()):
    if weights_v is None:  # the mask alone
        ax.imshow(mask_v.float() * 0.35, cmap="Blues", vmin=0, vmax=1)
    else:  # weights; square-root scale shows small ones
        ax.imshow(weights_v, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1))
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("key")
for ax in axes[:, 0]:
    ax.set_ylabel("query")
plt.tight_layout()
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
$-\infty$, computes a softmax over all of them and multiplies the zero weights by the values:
masking *adds* a little work (the `masked_fill` and the check for empty rows), and saves none. Only a kernel built for it skips
the masked half: when a fused kernel is *told* the mask is causal (`is_causal=True` in PyTorch's
`scaled_dot_product_attention`), FlashAttention-style implementations {cite:p}`dao2022flashattention`
process the score matrix in tiles and skip every tile that lies entirely above the diagonal. The
fraction of the $T \times T$ scores a causal mask keeps is $\frac{T(T+1)/2}{T^2}$, just over half:
"""),
code(r"""
for T in (64, 1024, 2048):
    kept = int(causal_mask(T).sum())
    print(
        f"T = {T:4d}: the causal mask keeps {kept:,} of {T * T:,} scores"
        f" ({kept / T**2:.4f})"
    )
    assert kept == T * (T + 1) // 2
"""),
md(r"""
Timings depend on the machine and its load, so they are shown here, never asserted. One thread,
$T = 1024$: expect the explicit path to be *slower* with the mask (applying it is extra work) and
the fused kernel to be faster with `is_causal=True`.
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
    "fused, no mask": lambda: fused_attention(q, k, v),
    "fused, is_causal=True": lambda: fused_attention(q, k, v, is_causal=True),
}
best = {}
for name, fn in variants.items():
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    best[name] = min(times)
    print(f"{name:>22}: {1000 * best[name]:6.1f} ms")
""", "nbval-ignore-output"),
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
- Without the mask a model learns to **copy its target** from the next position: its
  teacher-forced loss (even on validation text) collapses while its real, one-token-at-a-time
  loss and its samples are far worse. A leaky evaluation cannot detect a leaky model.
- Put $-\infty$ into the scores **before** the softmax. Zeroing weights after it leaves rows that
  do not sum to 1 and still depend on the future. Large finite constants overflow in float16
  ($-10^9 \to -\infty$, then $0 \cdot -\infty$ = NaN) or are not small enough in float32 ($-10^4$).
- A row with nothing to attend to must be defined (gptlib: weights and output 0), or its NaN
  spreads to every position in the next layer.
- **Padding masks** hide pad keys. Training pads on the right (the loss skips pad targets);
  generation pads on the left, so every row's next token is predicted at, and appended after,
  the last column.
- The mask does **not** save computation: naive masked attention does exactly the same FLOPs.
  Only kernels told `is_causal` (FlashAttention) skip the masked tiles.

## References

Teacher forcing {cite:p}`williams1989learning`; the masked decoder self-attention of the
Transformer {cite:p}`vaswani2017attention`; GPT-2 {cite:p}`radford2019language`; bidirectional
pre-training with a different objective, BERT {cite:p}`devlin2019bert`; FlashAttention
{cite:p}`dao2022flashattention`; rotary position embeddings {cite:p}`su2021roformer`. Full
entries are on the [References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "03_masking.ipynb", CELLS)
