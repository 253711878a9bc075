"""Source of chapters/07_pretrain.ipynb. Edit here, then:

    python scripts/chapters/ch07_pretrain.py && python scripts/run_notebooks.py chapters/07_pretrain.ipynb

The chapter trains one small model live (about 10 s on one core); everything else uses the shipped
model in data/pretrained/shakespeare_char/ (configs/shakespeare_char.json, see data/README.md).
Scoring every validation window with the shipped model (dataset_loss) is the chapter's largest
cost, so it runs once, on a fast-path copy of the model (the same function, fused kernels).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 7. Pretraining and generation

**Why.** Chapter 6 assembled a GPT, but with random weights it predicts every character with
roughly the same probability. *Pretraining* is what turns those random numbers into a language
model: show it a large amount of text, measure how badly it predicts each next token, and nudge
every weight to predict a little better — thousands of times (1,600 here; about a hundred thousand
for GPT-3). *Generation* is what a pretrained
model is then used for: it only ever gives a probability for the next token, so text comes out one
token at a time, and the rule that picks each token (greedy, temperature, top-k, top-p) changes
what you read more than one might think. This chapter shows the training loop of `gptlib` piece by
piece, sets its defaults beside GPT-3's published recipe, trains a small model live, reads the
training log of the book's shipped model, compares decoding strategies on that model (greedy,
beam search, temperature, top-k, top-p), and explains the *key/value cache* that makes generation
fast.
"""),
code(r"""
import math
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import transformers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    ElectraConfig,
    ElectraForPreTraining,
)

from gptlib import set_seed, show
from gptlib.attention import KVCache
from gptlib.checkpoint import load_pretrained
from gptlib.data import (
    SPEAKER_HEADING,
    data_dir,
    encode_text,
    get_batch,
    load_plays,
    load_text,
    speaker_heading_mask,
    speaker_names,
)
from gptlib.generate import (
    beam_search,
    generate,
    generate_text,
    sample_next,
    top_p_filter,
)
from gptlib.model import GPT, GPTConfig
from gptlib.ngram import bigram_loss, bigram_probs, count_bigrams, ngram_loss
from gptlib.pretrain import (
    LanguageModelTask,
    TrainConfig,
    consecutive_windows,
    dataset_loss,
    estimate_loss,
    lr_at,
    make_optimizer,
    param_groups,
    train,
)
from gptlib.runconfig import read_log
from gptlib.viz import sampling_distribution, sampling_explorer

torch.set_num_threads(
    1
)  # tiny models: one thread is faster, and results do not depend on it
plt.rcParams["figure.dpi"] = 90
transformers.logging.set_verbosity_error()

SHIPPED = data_dir() / "pretrained" / "shakespeare_char"
model, tok, shipped = load_pretrained(
    SHIPPED
)  # model in eval mode, its tokenizer, config.json
V = tok.vocab_size
train_text, val_text = load_text("train"), load_text("val")
train_ids, val_ids = encode_text(train_text, tok), encode_text(val_text, tok)
print(
    f"shipped model: {model.num_parameters():,} parameters,"
    f" {model.config.n_layer} layers, width {model.config.n_embd}, context"
    f" {model.config.block_size}, vocabulary {V}"
)
print(
    f"train plays: {len(train_ids):,} characters; validation plays:"
    f" {len(val_ids):,}"
)
# the same function on PyTorch's fused kernels (tests/test_fast_path.py),
# about twice as fast: it scores whole splits below, on two threads (its
# large batches gain from a second core; the losses agree to 8 digits)
scorer = GPT(replace(model.config, fast=True)).eval()
scorer.load_state_dict(model.state_dict())
"""),
md(r"""
## The objective, again

Pretraining minimises the loss of chapter 1: the average negative log-probability that the model
gives to each actual next token. For a batch of $B$ windows of $T+1$ tokens cut from the training
text ($T$ inputs, each followed by its target), with the model's logits $Z \in \mathbb{R}^{B \times T \times V}$ (row $t$ predicts the token
after position $t$),

$$
\mathcal{L}(\theta) = -\frac{1}{BT} \sum_{b=1}^{B} \sum_{t=1}^{T} \log p_\theta\!\left(x_{b,t+1} \mid x_{b,\le t}\right),
\qquad p_\theta(\,\cdot \mid x_{b,\le t}) = \mathrm{softmax}(Z_{b,t}) .
$$

Every position of every window is a training example, and the causal mask (chapter 3) makes each
one honest: position $t$ cannot see $x_{t+1}$. The loss is in *nats per character* (natural log;
divide by $\ln 2$ for bits). Its scale is set by three baselines from chapter 1, recomputed here
on the validation plays: guessing uniformly among the $V$ characters costs $\ln V$; knowing only
how often each character occurs (the *unigram*) does better; knowing the previous character (the
*bigram*) better still. The counted models come from `gptlib.ngram` (chapter 1), with add-0.1
smoothing. The shipped GPT, which reads up to 128 characters back, is far below them; it is scored
by `dataset_loss` on *every* window of 128 characters of the validation plays, each character
once, and the loss of each character is kept (`per_token=True`) for a closer look later on:
"""),
code(r"""
uniform = math.log(V)
unigram = ngram_loss(train_ids, val_ids, 1, V, alpha=0.1).loss  # n = 1
bigram = bigram_loss(
    bigram_probs(count_bigrams(train_ids, V), alpha=0.1), val_ids
)
torch.set_num_threads(2)
val_token_loss = dataset_loss(scorer, val_ids, 128, per_token=True)  # (N,)
torch.set_num_threads(1)
shipped_val = val_token_loss.double().mean().item()
recorded = shipped["results"]["val_loss_all_windows"]  # by the training run
print(
    f"{len(val_token_loss):,} validation characters scored:"
    f" {shipped_val:.3f}; the training run recorded {recorded:.3f}, a"
    f" difference under 1e-4: {abs(shipped_val - recorded) < 1e-4}"
)
assert abs(shipped_val - recorded) < 1e-4
baselines = {
    f"uniform over {V} characters (ln V)": uniform,
    "unigram (character frequencies)": unigram,
    "bigram (chapter 1)": bigram,
    "shipped GPT (all validation windows)": shipped_val,
}
print(f"{'validation loss of':<40}{'nats/char':>10}{'bits/char':>10}")
for name, loss in baselines.items():
    print(f"{name:<40}{loss:>10.3f}{loss / math.log(2):>10.2f}")
assert uniform > unigram > bigram > shipped_val
"""),
md(r"""
## The loop

`gptlib.pretrain.train` is the whole training loop. Each optimizer step draws `grad_accum`
micro-batches of `batch_size` random windows, adds up their gradients, clips the gradient's norm,
sets the learning rate from the schedule and takes one AdamW step; every `eval_every` steps it
estimates the loss on the training and validation text, and, given a directory, it saves a
checkpoint every `checkpoint_every` steps and at the end:
"""),
code(r"""
show(train)
"""),
md(r"""
The loop itself does not know it is training a language model: *what* it trains on, and how that
is scored, comes from a `task` object. Pretraining's is `LanguageModelTask`, the default: a
micro-batch is `get_batch`'s random windows $x$ and the same windows shifted by one, $y$, both
$(B, T)$; the loss is the model's own next-token cross-entropy; an evaluation is `estimate_loss` on
the training and the validation text. (Chapter 8 hands the same loop a different task to
fine-tune.)
"""),
code(r"""
show(LanguageModelTask)
"""),
md(r"""
### AdamW, and which weights decay

Plain gradient descent moves every weight by $-\eta g$, the learning rate times its gradient.
Adam {cite:p}`kingma2015adam` keeps two running averages per weight — of the gradient,
$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$, and of its square, $v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$
— and moves each weight by $-\eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)$ ($\hat m, \hat v$: the
averages corrected for starting at zero; $\epsilon \approx 10^{-8}$ only guards against division by
zero; $\beta_1, \beta_2$ set how far back the averages reach, $(0.9, 0.99)$ in the shipped run). Dividing by $\sqrt{\hat v_t}$ gives every weight a step of
at most about $\eta$ whatever the scale of its gradient, which is what makes one learning rate work for
embeddings, attention and MLP weights alike.

*Weight decay* pulls weights towards zero, with a strength $\lambda$ ($\lambda = 0.1$ here). Adding
$\tfrac{\lambda}{2}\lVert\theta\rVert^2$ to the loss would route the pull through the gradient, where Adam's division by $\sqrt{\hat v}$ would
weaken it for exactly the weights with large gradients. AdamW {cite:p}`loshchilov2019decoupled`
*decouples* it: at every step each decayed weight also shrinks by $\eta \lambda \theta$ directly,
outside Adam's rescaling.

Which weights decay? `param_groups` splits the parameters by their number of dimensions: every
tensor with two or more — the Linear layers' weights and *both* embedding tables, the token table
`wte` (which is also the output layer) and the position table — decays; biases and the LayerNorms'
gains and biases do not. A LayerNorm's gain shrunk towards 0 switches its layer off rather than
making it simpler, and biases are few. This is nanoGPT's rule, `p.dim() >= 2`
{cite:p}`karpathy2022nanogpt`, and GPT-1's in words: "a modified version of L2 regularization
... with $w = 0.01$ on all non bias or gain weights" {cite:p}`radford2018improving`. It is not
universal: minGPT, nanoGPT's predecessor, exempted the embedding tables as well
{cite:p}`karpathy2020mingpt`; GPT-2's paper gives no optimiser settings at all
{cite:p}`radford2019language`, and GPT-3's says only "weight decay of 0.1"
{cite:p}`brown2020language`, not which weights.
"""),
code(r"""
show(param_groups)
"""),
code(r"""
names = {id(p): n for n, p in model.named_parameters()}
groups = param_groups(model, weight_decay=0.1)
for g in groups:
    n = sum(p.numel() for p in g["params"])
    kinds = sorted(
        {re.sub(r"^h\.\d+\.", "h.*.", names[id(p)]) for p in g["params"]}
    )
    print(
        f"weight_decay {g['weight_decay']}: {len(g['params']):2d} tensors,"
        f" {n:>7,} numbers ({n / model.num_parameters():.1%})  e.g."
        f" {', '.join(kinds[:4])}"
    )
assert (
    sum(p.numel() for g in groups for p in g["params"])
    == model.num_parameters()
)
decayed = [names[id(p)] for p in groups[0]["params"]]
all_names = decayed + [names[id(p)] for p in groups[1]["params"]]
outside = [n for n in decayed if not n.startswith("h.")]
print("decayed outside the blocks:", outside)
assert not any(
    ".ln_" in n or n.startswith("ln_f") or n.endswith(".bias") for n in decayed
)  # no norm, no bias
assert (
    all_names.count("wte.weight") == 1 and "wte.weight" in decayed
)  # the tied token table: once, decayed
assert "pos.wpe.weight" in decayed  # the position table decays too
"""),
md(r"""
Almost every number decays; the vectors that do not are under 1% of the model. (The output layer is not
listed separately: it *is* the token table `wte`, tied as in chapter 6, and `named_parameters`
lists a shared tensor once.)

### Warm-up, then a cosine

The learning rate $\eta$ changes at every one of the $S$ optimizer steps of a run (counted from 0).
For the first $S_w$ steps it rises linearly: a *warm-up*. It is older than its best-known
use. He et al. trained their 110-layer ResNet at 0.01 "until the training error is below 80%
(about 400 iterations)" before switching to the intended 0.1, which was too large to start
from {cite:p}`he2016deep`; the Transformer raised its rate linearly over its first
`warmup_steps` = 4,000 steps, then let it fall as $1/\sqrt{s}$ {cite:p}`vaswani2017attention`;
GPT-1 warmed up linearly over 2,000 updates, then followed a cosine {cite:p}`radford2018improving`;
and Goyal et al. made the linear ramp the standard remedy for large-batch SGD
{cite:p}`goyal2017accurate`. With Adam there is a further reason: its $\hat v$ is estimated from only
a few gradients, so the earliest updates are close to $\eta \cdot \mathrm{sign}(g)$, a full-size move
of every weight in a direction set by one noisy batch. The first gradients of a random network are
also large (printed with the schedule below: 5.8 at step 1 of the shipped log, against a median of 0.94
over its first 100 steps). Then the rate follows half a cosine {cite:p}`loshchilov2017sgdr` from the
peak $\eta_{\max}$ down to $\eta_{\min}$ at the last step $S - 1$, with $r$ the progress through the decay:

$$
\eta(s) = \begin{cases}
\eta_{\max}\,\dfrac{s+1}{S_w} & s < S_w \\[2ex]
\eta_{\min} + \tfrac12(\eta_{\max} - \eta_{\min})\left(1 + \cos \pi r\right),\quad r = \dfrac{s - S_w}{S - S_w - 1} & s \ge S_w
\end{cases}
$$

Large steps early cover ground; small steps late let the weights settle instead of bouncing
around a good spot. (`lr_at` calls the progress $r$ `p`.)
"""),
code(r"""
show(lr_at)
"""),
md(r"""
The shipped model was trained with the run config `configs/shakespeare_char.json`; `config.json`
keeps its training section. `train` writes the rate of every step into the training log, from
`lr_at`, so comparing the log with `lr_at` would only compare `lr_at` with itself. Two checks
that can fail instead: the log against the equation above, written out afresh from the config's
numbers (the peak reached exactly at the end of the warm-up, $\eta_{\min}$ exactly at the last
step), and, in the cell after, that the optimizer really moves the weights by the rate it logs.
"""),
code(r"""
shipped_cfg = TrainConfig.from_dict(shipped["train"])
log = read_log(SHIPPED / "train_log.csv")
steps = [r["step"] for r in log]  # 1-based: row s is step s - 1 below
logged = torch.tensor([r["lr"] for r in log], dtype=torch.float64)
S, S_w = shipped_cfg.steps, shipped_cfg.warmup_steps
eta_max, eta_min = shipped_cfg.lr, shipped_cfg.min_lr
step0 = torch.arange(S, dtype=torch.float64)  # the equation, not lr_at
progress = ((step0 - S_w) / (S - S_w - 1)).clamp(0, 1)
equation = torch.where(
    step0 < S_w,
    eta_max * (step0 + 1) / S_w,
    eta_min + 0.5 * (eta_max - eta_min) * (1 + torch.cos(math.pi * progress)),
)
worst = ((logged - equation).abs() / equation).max().item()
print(
    f"{S} steps, warm-up {S_w}, peak {eta_max:g}, final {eta_min:g},"
    f" {shipped_cfg.schedule}"
)
print(
    f"log vs the equation: largest relative difference {worst:.1e}"
    " (the log keeps 6 significant digits)"
)
print(
    f"logged rate at step {S_w}: {logged[S_w - 1].item():g} (the peak); at"
    f" the last step: {logged[-1].item():g}"
)
assert len(log) == S and worst < 1e-5
assert abs(logged[S_w - 1].item() - eta_max) < 1e-12
assert abs(logged[-1].item() - eta_min) < 1e-12
first_norms = torch.tensor([r["grad_norm"] for r in log[:100]])
print(
    f"gradient norm at step 1: {first_norms[0].item():.1f}; median over steps"
    f" 1-100: {first_norms.median().item():.2f}"
)
assert first_norms[0] > 4 * first_norms.median()

fig, axes = plt.subplots(1, 2, figsize=(7.4, 2.8))
for ax, last in zip(axes, (S, 200)):
    ax.plot(steps[:last], logged[:last] * 1e3, color="C0")
    ax.axvline(S_w, color="gray", ls=":", label="end of warm-up")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate (×10⁻³)")
axes[0].set_title("the shipped run: warm-up, cosine", fontsize=10)
axes[1].set_title("its first 200 steps", fontsize=10)
axes[0].legend(fontsize=9)
plt.tight_layout()
plt.show()
"""),
md(r"""
Does the optimizer use the logged rate? Adam's first step moves each weight by
$\eta\, \hat m_1 / \sqrt{\hat v_1} = \eta\, g / \lvert g \rvert = \pm\eta$, whatever the size of
its gradient (plus the decoupled decay $\eta\lambda\theta$, a hundredth of that or less). So after
one step of a fresh model nearly every weight must have moved by exactly the rate logged for that
step — with a warm-up of 20 steps to a peak of 0.006, the warm-up's first rate, not the peak.
The exceptions should be weights whose first gradient is so close to zero that Adam's
$\epsilon = 10^{-8}$ is not negligible beside it: above all the attention's query and key
projections, since attention starts out almost uniform and its scores barely matter yet. This small GPT (2 layers of
width 64) is the one trained live further down:
"""),
code(r"""
small_cfg = GPTConfig(
    vocab_size=V, block_size=64, n_layer=2, n_head=4, n_embd=64, fast=True
)


def small_model(seed=0, **changes):
    set_seed(seed)
    return GPT(replace(small_cfg, **changes))


one_step_cfg = TrainConfig(
    steps=300, batch_size=16, block_size=64, lr=6e-3, warmup_steps=20
)
net = small_model()
before = {n: p.detach().clone() for n, p in net.named_parameters()}
one = train(net, train_ids, one_step_cfg, callback=lambda record: True)
eta_1 = one.history[0]["lr"]
C = small_cfg.n_embd
off, n_qk, n_all = [], 0, 0  # weights that did not move by eta_1 (1%)
for n, p in net.named_parameters():
    bad = ((p.detach() - before[n]).abs() / eta_1 - 1).abs() > 0.01
    n_all += p.numel()
    off.append(bad.sum().item())
    if n.endswith("attn.c_attn.weight") or n.endswith("attn.c_attn.bias"):
        n_qk += bad[: 2 * C].sum().item()  # rows 0..2C-1: queries and keys
print(
    f"logged rate of step 1: {eta_1:.1e}; weights that moved by it (within"
    f" 1%): {1 - sum(off) / n_all:.1%} of {n_all:,}"
)
print(
    f"of the {sum(off):,} others, {n_qk / sum(off):.0%} are weights of the"
    " query and key projections"
)
assert one.steps == 1 and abs(eta_1 - 6e-3 / 20) < 1e-12
assert sum(off) / n_all < 0.05 and n_qk / sum(off) > 0.9
"""),
md(r"""
### Clipping the gradient

Before each update the gradients of all parameters, taken together as one long vector $g$, are
rescaled if their norm exceeds a threshold $c$ {cite:p}`pascanu2013difficulty`:
$g \leftarrow g \cdot \min(1, c / \lVert g \rVert)$. The direction is kept. It is meant for the
occasional huge gradient (a very unusual batch); as the table shows, in this run it also acts on
most late steps. `train` logs the norm
*before* clipping, so the log shows how often the clip acted in the shipped run ($c = 1$):
"""),
code(r"""
norms = torch.tensor([r["grad_norm"] for r in log])
clip = shipped_cfg.grad_clip
print(
    f"{'steps':<14}{'clipped':>9}{'median norm':>13}"
    f"{'median scale when clipped':>28}"
)
clipped = {}
for lo, hi in ((0, 100), (100, 400), (400, 800), (800, 1200), (1200, 1600)):
    part = norms[lo:hi]
    over = part[part > clip]
    clipped[lo + 1] = (
        (part > clip).float().mean().item(),
        (clip / over).median().item() if len(over) else 1.0,
    )  # share of steps clipped, median factor when clipped
    print(
        f"{lo + 1:>5}-{hi:<8}{clipped[lo + 1][0]:>9.0%}"
        f"{part.median().item():>13.2f}{clipped[lo + 1][1]:>28.2f}"
    )
assert 0.65 < clipped[1][1] < 0.8  # the warm-up: "about 0.7"
assert clipped[101][0] < clipped[1][0]  # then less often
assert clipped[1201][0] > 0.9 and 0.85 < clipped[1201][1] < 0.9  # late
"""),
md(r"""
The clip acted hardest during the warm-up, when the first gradients of a random network are large
(scaled by about 0.7 when clipped), then less often — and again in almost every late step, as the
gradient norm drifts up while the learning rate anneals. Late on the factor is about 0.87 at
almost every step. Because Adam divides by the running RMS of the gradient ($\sqrt{\hat v}$), a
nearly constant factor mostly cancels out: it scales $\hat m$ and $\sqrt{\hat v}$ alike. Only steps
clipped harder than their neighbours actually move less.

### The recipe is GPT-3's

Most defaults of `TrainConfig` are numbers from GPT-3's Appendix B {cite:p}`brown2020language`:
"Adam with β1 = 0.9, β2 = 0.95, and ε = 10⁻⁸, we clip the global norm of the gradient at 1.0, and
we use cosine decay for learning rate down to 10% of its value, over 260 billion tokens (after
260 billion tokens, training continues at 10% of the original learning rate). There is a linear
LR warmup over the first 375 million tokens. We also gradually increase the batch size linearly
from a small value (32k tokens) to the full value over the first 4-12 billion tokens of training,
depending on the model size. [...] All models use weight decay of 0.1". Which ones exactly? The
table reads each setting from an optimizer that `make_optimizer` built from a `TrainConfig` with
nothing but its required fields, so it shows what a run gets:
"""),
code(r"""
default_cfg = TrainConfig(steps=1000, batch_size=8, block_size=64)
group = make_optimizer(small_model(), default_cfg).param_groups[0]
ours = make_optimizer(small_model(), shipped_cfg).param_groups[0]
recipe = [  # setting, GPT-3 (Appendix B), gptlib's default, the shipped run
    ("Adam beta1, beta2", (0.9, 0.95), group["betas"], ours["betas"]),
    ("Adam epsilon", 1e-8, group["eps"], ours["eps"]),
    ("clip the global norm at", 1.0, default_cfg.grad_clip, clip),
    ("weight decay", 0.1, group["weight_decay"], ours["weight_decay"]),
    ("decay shape", "cosine", default_cfg.schedule, shipped_cfg.schedule),
    (
        "final lr / peak lr",
        0.1,
        default_cfg.min_lr / default_cfg.lr,
        shipped_cfg.min_lr / shipped_cfg.lr,
    ),
    (
        "warm-up",
        "375M tokens",
        f"{default_cfg.warmup_steps} steps",
        f"{S_w} steps",
    ),
    ("batch size", "32k tokens, ramped", "fixed", "fixed"),
]
print(
    f"{'setting':<24}{'GPT-3':>20}{'default':>13}{'same?':>7}{'shipped':>13}"
)
same_as_gpt3 = {}
for name, gpt3_value, default, shipped_value in recipe:
    same_as_gpt3[name] = default == gpt3_value
    print(
        f"{name:<24}{str(gpt3_value):>20}{str(default):>13}"
        f"{'yes' if default == gpt3_value else 'no':>7}"
        f"{str(shipped_value):>13}"
    )
assert [k for k, v in same_as_gpt3.items() if v] == [
    "Adam beta1, beta2",
    "Adam epsilon",
    "clip the global norm at",
    "weight decay",
    "decay shape",
]
"""),
md(r"""
Five settings are GPT-3's; the defaults differ in the other three. The cosine ends at `min_lr`,
which is 0 unless set (GPT-3: 10% of the peak; the shipped run sets it so); there is no warm-up
unless one is asked for; and the batch is the same at every step. The shipped run also takes
$\beta_2 = 0.99$ rather than 0.95, as nanoGPT does for its character model ("make a bit bigger
because number of tokens per iter is small", `config/train_shakespeare_char.py`
{cite:p}`karpathy2022nanogpt`): with 4,096 tokens a step, a longer average of $g^2$ is a less
noisy one. GPT-3 also counts its schedule in *tokens*, not steps, and grows its batch from 32k
tokens to the full batch (3.2M tokens for the 175B model, Table 2.1) while the rate warms up.
The cell computes both schedules step by step for GPT-3 175B (the paper gives the ramp's length
only as "4-12 billion tokens", so both ends are drawn) beside the shipped run's:
"""),
code(r"""
def gpt3_lr(tokens):  # a fraction of the peak, GPT-3's Appendix B
    warm, decay_end = 375e6, 260e9
    if tokens < warm:
        return tokens / warm
    r = min(1.0, (tokens - warm) / (decay_end - warm))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * r))


def gpt3_run(ramp, start=32e3, full=3.2e6, total=300e9):
    # (tokens seen before the step, batch of the step) for every step
    tokens, trace = 0.0, []
    while tokens < total:
        batch = (
            start + (full - start) * tokens / ramp if tokens < ramp else full
        )
        trace.append((tokens, batch))
        tokens += batch
    return trace


gpt3 = {ramp: gpt3_run(ramp) for ramp in (4e9, 12e9)}
for ramp, trace in gpt3.items():
    warm = sum(t < 375e6 for t, _ in trace)
    print(
        f"GPT-3 175B, batch ramp over {ramp / 1e9:.0f}B tokens:"
        f" {len(trace):,} steps; warm-up {warm:,} steps"
        f" ({warm / len(trace):.1%} of them, 0.125% of the tokens)"
    )
print(
    f"shipped run: {S:,} steps of {shipped_cfg.tokens_per_step:,} tokens;"
    f" warm-up {S_w} steps ({S_w / S:.1%})"
)
warm_steps = {r: sum(t < 375e6 for t, _ in tr) for r, tr in gpt3.items()}
assert 98_000 < len(gpt3[4e9]) < len(gpt3[12e9]) < 108_000  # ~100k steps
assert 2_900 < warm_steps[4e9] < 3_000 and 5_300 < warm_steps[12e9] < 5_400
assert all(0.02 < warm_steps[r] / len(gpt3[r]) < 0.06 for r in gpt3)

fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.0))
shipped_tokens = [r["tokens"] - shipped_cfg.tokens_per_step for r in log]
trace = gpt3[4e9]
axes[0].plot(
    [max(t, 1e3) for t, _ in trace],
    [gpt3_lr(t) for t, _ in trace],
    color="C3",
    label="GPT-3 175B",
)
axes[0].plot(
    [max(t, 1e3) for t in shipped_tokens],
    (logged / eta_max).tolist(),
    color="C0",
    label="shipped run",
)
axes[0].set_ylabel("learning rate / peak")
axes[0].legend(fontsize=9)
for (ramp, trace), ls in zip(gpt3.items(), ("-", "--")):
    axes[1].plot(
        [max(t, 1e3) for t, _ in trace],
        [b for _, b in trace],
        color="C3",
        ls=ls,
        label=f"GPT-3, ramp {ramp / 1e9:.0f}B",
    )
axes[1].plot(
    [max(t, 1e3) for t in shipped_tokens],
    [shipped_cfg.tokens_per_step] * S,
    color="C0",
    label="shipped run",
)
axes[1].set_yscale("log")
axes[1].set_ylabel("batch (tokens per step)")
axes[1].legend(fontsize=9)
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("tokens seen")
fig.suptitle("Two schedules in tokens", fontsize=11)
plt.tight_layout()
plt.show()
"""),
md(r"""
Measured in tokens, GPT-3's warm-up is tiny, 0.125% of its 300B tokens. Measured in steps it is
not: its batch is still small during the warm-up, so the warm-up takes 2,900 to 5,300 of its
98,000 to 107,000 steps (3 to 5%, depending on the ramp), the same order as the Transformer's
4,000 steps, and close to the shipped run's 100 of 1,600 (6%). (Both tokens axes are logarithmic: the shipped run's
6.6M tokens end where GPT-3's warm-up has barely begun.)

### Gradient accumulation

A batch too large for memory can be split into `grad_accum` micro-batches: run each, divide its
loss by `grad_accum`, call `backward()` on it (PyTorch *adds* gradients into `.grad`), and step once.
The mean of equal-sized means is the overall mean, so this is the same update as one big batch —
`train` even draws the same windows, since both take them from one seeded generator. Checked by
hand on one batch of 16 windows, then with `train` itself. The sums differ in the last bits of
float32, so the weights after the step are compared with a tolerance: Adam's first step is about
$\eta \cdot \mathrm{sign}(g)$, so a weight whose gradient is almost exactly zero could differ by up
to $2\eta$ between the two runs; in fact every weight agrees to within $10^{-3}$, six times smaller
than $\eta$ = 0.006:
"""),
code(r"""
x, y = get_batch(
    train_ids, 16, 64, torch.Generator().manual_seed(0)
)  # 16 windows (B, T)
net = small_model()
net(x, y)[1].backward()  # one batch of 16
big = [p.grad.clone() for p in net.parameters()]
net.zero_grad()
for part in (slice(0, 8), slice(8, 16)):  # 2 micro-batches of 8
    (net(x[part], y[part])[1] / 2).backward()  # .grad adds up
same_grads = all(
    torch.allclose(a, p.grad, rtol=1e-4, atol=1e-8)
    for a, p in zip(big, net.parameters())
)
print(
    "gradients of 16 windows == sum of the halved gradients of 2 x 8:",
    same_grads,
)
assert same_grads

net_one, net_two = small_model(), small_model()
r_one = train(
    net_one,
    train_ids,
    TrainConfig(steps=1, batch_size=16, block_size=64, lr=6e-3),
)
r_two = train(
    net_two,
    train_ids,
    TrainConfig(steps=1, batch_size=8, grad_accum=2, block_size=64, lr=6e-3),
)
a, b = r_one.history[0], r_two.history[0]
print(
    "train(): batch 16 and 2 x 8 give the same loss and gradient norm:",
    abs(a["train_loss"] - b["train_loss"]) < 1e-5
    and abs(a["grad_norm"] / b["grad_norm"] - 1) < 1e-4,
)
weight_gap = max(
    (p1 - p2).abs().max().item()
    for p1, p2 in zip(net_one.parameters(), net_two.parameters())
)
print(
    "... and the same weights after the step (every weight within 1e-3):",
    weight_gap < 1e-3,
)
assert (
    abs(a["train_loss"] - b["train_loss"]) < 1e-5
    and abs(a["grad_norm"] / b["grad_norm"] - 1) < 1e-4
)
assert weight_gap < 1e-3
"""),
md(r"""
### Evaluation and checkpoints

A training batch's loss is noisy and is measured *before* the update, with the weights still
moving. So every `eval_every` steps, and at the last, the task's `evaluate` calls `estimate_loss`
in evaluation mode, on `eval_batches` batches drawn with a freshly seeded generator: the *same*
windows at every evaluation, of the training text (`eval_train_loss`) and of the held-out plays (`val_loss`), so
each curve moves only because the weights did, not because the sample changed. (`dataset_loss` scores every window of a split once:
the number to report at the end.)

A checkpoint (`gptlib.checkpoint`) holds the weights, AdamW's running averages, the step, the
history, and the state of every random generator — the one that draws batches and PyTorch's global
one (dropout). With all of it restored, an interrupted run continues *exactly*: here a 12-step run
is stopped after step 5 and resumed from its checkpoint into a model with other random weights.
The first five losses of the resumed run come from the checkpoint's history, and each loss is
measured *before* its update, so the weights at the end are compared too. On disk, each save is a
new directory for its step, written in full before the file `latest` is switched to name it (one
atomic rename); so a run killed in the middle of a save still resumes, from the previous
checkpoint, which is kept until the new one is in place:
"""),
code(r"""
resume_cfg = TrainConfig(
    steps=12, batch_size=8, block_size=64, lr=6e-3, warmup_steps=3, seed=7
)
uninterrupted_model = small_model()
uninterrupted = train(uninterrupted_model, train_ids, resume_cfg)
with tempfile.TemporaryDirectory() as ckpt_dir:
    first = train(
        small_model(),
        train_ids,
        resume_cfg,
        checkpoint_dir=ckpt_dir,
        callback=lambda record: record["step"] == 5,
    )  # "interrupted" after step 5
    print(
        "checkpoint directory:",
        sorted(p.name for p in Path(ckpt_dir).iterdir()),
    )
    step_dir = Path(ckpt_dir) / (Path(ckpt_dir) / "latest").read_text().strip()
    print(f"{step_dir.name}/:", sorted(p.name for p in step_dir.iterdir()))
    resumed_model = small_model(seed=123)  # other weights: replaced on load
    resumed = train(resumed_model, train_ids, resume_cfg, resume_from=ckpt_dir)
same = [r["train_loss"] for r in resumed.history] == [
    r["train_loss"] for r in uninterrupted.history
]
print(
    f"first run stopped after {first.steps} steps; resumed run ends at step"
    f" {resumed.steps}"
)
same_weights = all(
    torch.equal(p1, p2)
    for p1, p2 in zip(
        resumed_model.parameters(), uninterrupted_model.parameters()
    )
)
print("resumed losses == uninterrupted losses, bit for bit:", same)
print(
    "final weights of the resumed run == those of the uninterrupted run, bit"
    " for bit:",
    same_weights,
)
assert first.steps == 5 and resumed.steps == 12 and same and same_weights
"""),
md(r"""
## A live training run

Now the real thing, small enough to watch: a GPT with 2 layers of width 64 and a context of 64
characters (0.11M parameters), 300 steps of 16 windows, evaluated every 50 steps on the training
and the held-out plays. Before training it is a random network, so its loss
should be close to $\ln V$, a little above it (chapter 6); why it starts where it does is measured
after the run. The timings in this cell depend on the machine, so its output is not checked; the
cell after it checks what matters.
"""),
code(r"""
live_model = small_model(seed=0)
live_cfg = TrainConfig(
    steps=300,
    batch_size=16,
    block_size=64,
    lr=6e-3,
    min_lr=6e-4,
    warmup_steps=20,
    eval_every=50,
    eval_batches=8,
    seed=0,
)
init_loss = estimate_loss(
    live_model,
    val_ids,
    live_cfg,
    8,
    torch.Generator().manual_seed(live_cfg.seed + 1),
)
print(
    f"{live_model.num_parameters():,} parameters; loss before training"
    f" {init_loss:.3f} (ln V = {uniform:.3f})"
)
t0 = time.perf_counter()
live = train(live_model, train_ids, live_cfg, val_ids)
print(
    f"{live.steps} steps, {live.tokens:,} tokens in"
    f" {time.perf_counter() - t0:.0f} s"
)
for r in live.history:
    if "val_loss" in r:
        print(
            f"step {r['step']:3d}  train {r['eval_train_loss']:.3f}  val"
            f" {r['val_loss']:.3f}"
        )
""", "nbval-ignore-output"),
code(r"""
evals = [r for r in live.history if "val_loss" in r]
print(
    "started at the uniform loss (within 0.1 of ln V):",
    abs(init_loss - uniform) < 0.1,
)
print(
    "validation loss fell at every evaluation:",
    all(a["val_loss"] > b["val_loss"] for a, b in zip(evals, evals[1:])),
)
print(
    "final validation loss below 2.6, far under the unigram's",
    f"{unigram:.2f}:",
    live.final_val_loss < 2.6,
)
assert abs(init_loss - uniform) < 0.1
assert all(a["val_loss"] > b["val_loss"] for a, b in zip(evals, evals[1:]))
print(
    "final validation loss below the bigram's:", live.final_val_loss < bigram
)
assert live.final_val_loss < 2.6 < unigram
assert live.final_val_loss < bigram
assert live_model.num_parameters() * 7.4 < model.num_parameters()  # "7.5x"
assert model.num_parameters() < 7.6 * live_model.num_parameters()
"""),
code(r"""
fig, ax = plt.subplots(figsize=(7.4, 3.4))
ax.plot(
    [r["step"] for r in live.history],
    [r["train_loss"] for r in live.history],
    color="C0",
    alpha=0.35,
    label="training batch (before its update)",
)
ax.plot(
    [r["step"] for r in evals],
    [r["eval_train_loss"] for r in evals],
    "o-",
    color="C0",
    label="train (evaluation)",
)
ax.plot(
    [r["step"] for r in evals],
    [r["val_loss"] for r in evals],
    "s-",
    color="C1",
    label="validation plays",
)
for (name, loss), style in zip(list(baselines.items())[:3], (":", "--", "-.")):
    ax.axhline(loss, color="gray", ls=style, lw=1, label=name)
ax.set_xlabel("optimizer step")
ax.set_ylabel("loss (nats/char)")
ax.set_title("The live run: 300 steps of a 2-layer, width-64 GPT")
ax.legend(fontsize=9, ncol=2)
plt.tight_layout()
plt.show()
"""),
md(r"""
In 300 steps the model leaves the uniform and unigram levels behind and reaches about the bigram's
loss (a little below it, as asserted; the 8-batch estimate is noisy): it has learnt which characters follow which,
and is beginning to use more context than one character. The shipped model, with about 7.5 times
as many parameters and trained for 1,600 steps of 32 windows of 128 characters, gets much further;
its log is the next section's. Two features of the live curve first.

### Why the loss starts above $\ln V$

At one position, with logits $z_1, \dots, z_V$, their mean $\bar z$ and the actual next character
$y$, the loss splits exactly into $\ln V$ and two parts:

$$
-\log p(y) = \ln V
+ \underbrace{\Big(\ln \textstyle\sum_v e^{z_v} - \bar z - \ln V\Big)}_{\text{spread}\;\ge\;0}
+ \underbrace{\big(\bar z - z_y\big)}_{\text{target}} .
$$

The *spread* part is never negative (a mean of $e^{z_v}$ is at least $e^{\bar z}$) and is about
$\sigma^2/2$ when the logits scatter by $\sigma$ around their mean: chapter 6's estimate, with
$\sigma = 0.02\sqrt{C}$, is $0.0002\,C = 0.013$ at width 64. The *target* part is zero on average
only if the random logits are unrelated to which character comes next. Both are measured on 256
validation windows, at five seeds, for this model with its output layer tied to the token table
(as trained here) and untied (`tie_weights=False`):
"""),
code(r"""
xi, yi = get_batch(val_ids, 256, 64, torch.Generator().manual_seed(5))
predicted = 0.0002 * small_cfg.n_embd  # chapter 6: sigma^2 / 2
init_rows = []
for tied in (True, False):
    for seed in range(5):
        net = small_model(seed, tie_weights=tied).eval()
        with torch.no_grad():
            z, loss = net(xi, yi)  # z: (256, 64, V)
        z_mean = z.mean(-1)
        init_rows.append(
            dict(
                tied=tied,
                seed=seed,
                excess=loss.item() - uniform,
                spread=(z.logsumexp(-1) - z_mean).mean().item() - uniform,
                half_var=((z - z_mean[..., None]) ** 2).mean().item() / 2,
                target=(z_mean - z.gather(-1, yi[..., None])[..., 0])
                .mean()
                .item(),
                own=(z.gather(-1, xi[..., None])[..., 0] - z_mean)
                .mean()
                .item(),  # the input character's logit, above the mean
            )
        )
print(
    f"{'output layer':<13}{'seed':>5}{'excess':>9}{'spread':>9}"
    f"{'sigma^2/2':>11}{'target':>9}{'input char':>12}"
)
for r in init_rows:
    print(
        f"{'tied' if r['tied'] else 'untied':<13}{r['seed']:>5}"
        f"{r['excess']:>+9.4f}{r['spread']:>9.4f}{r['half_var']:>11.4f}"
        f"{r['target']:>+9.4f}{r['own']:>+12.2f}"
    )
print(f"chapter 6's sigma^2/2 for width {small_cfg.n_embd}: {predicted:.4f}")
tied_rows = [r for r in init_rows if r["tied"]]
untied_rows = [r for r in init_rows if not r["tied"]]
assert all(abs(r["spread"] / predicted - 1) < 0.1 for r in untied_rows)
assert min(r["spread"] for r in tied_rows) > max(
    r["spread"] for r in untied_rows
)
assert all(0.6 < r["own"] < 0.8 for r in tied_rows)  # "about 0.7"
assert all(abs(r["own"]) < 0.1 for r in untied_rows)
targets = [r["target"] for r in init_rows]
assert -0.025 < min(targets) < 0 < max(targets) < 0.012  # "-0.02..+0.01"
assert any(r["excess"] < 0 for r in tied_rows)  # some start below ln V
assert abs(tied_rows[0]["excess"] - (init_loss - uniform)) < 0.01  # live run
"""),
md(r"""
Untied, the spread part is chapter 6's $\sigma^2/2$ at every seed. Tied, it is larger, because
`lm_head` *is* `wte` and the residual stream at each position still carries the input character's
own embedding: the logit of the character just read sits about 0.7 above the mean (last column),
one outlier among 70 that $\sigma = 0.02\sqrt C$ does not count. The target part is the rest, and
it belongs to the seed: random weights happen to favour some characters, and the loss moves by
between $-0.02$ and $+0.01$ nats depending on whether those are common in the plays. The live model is
the first row (its 8-batch estimate above agrees): 0.02 above $\ln V$, partly from tying, partly
from its seed. Other seeds of the same tied model start *below* $\ln V$.

### Spikes during the warm-up

The live curve jumps up twice near its start. A jump in a training batch's loss can be an
unusual batch or a bad update; the log tells them apart when a fixed batch is scored after every
update. Below: the steps whose batch loss rose by more than 0.2 nats over the step before, at three
seeds of the live recipe (the first 40 steps each; seed 0 is the live run), the seed-0 run replayed
with one fixed validation batch scored after each update, and the shipped run's log for
comparison:
"""),
code(r"""
def rises(history, threshold=0.2):
    # (step, lr / peak, rise of the batch loss, gradient norm) of each jump
    return [
        (
            b["step"],
            b["lr"] / live_cfg.lr,
            b["train_loss"] - a["train_loss"],
            b["grad_norm"],
        )
        for a, b in zip(history, history[1:])
        if b["train_loss"] - a["train_loss"] > threshold
    ]


def first_steps(n):
    return lambda record: record["step"] >= n


spikes = {0: rises(live.history[:40])}
for seed in (1, 2):
    run = train(
        small_model(seed), train_ids, live_cfg, callback=first_steps(40)
    )
    spikes[seed] = rises(run.history)
for seed, found in spikes.items():
    print(
        f"seed {seed}: "
        + (
            "; ".join(
                f"step {st} (lr {f:.0%} of the peak) +{rise:.2f} nats,"
                f" gradient norm {g:.1f}"
                for st, f, rise, g in found
            )
            or "no jump"
        )
    )
spike = spikes[0][0][0]  # the live run's first jump
assert spike == 13  # the prose below names updates 12 and 13
xf, yf = get_batch(val_ids, 64, 64, torch.Generator().manual_seed(9))
replay, fixed = small_model(0), []  # loss on (xf, yf) after each update


def score_fixed(record):
    with torch.no_grad():
        fixed.append(replay.eval()(xf, yf)[1].item())
    replay.train()
    return record["step"] >= spike


train(replay, train_ids, live_cfg, callback=score_fixed)
print(
    f"fixed batch after updates {spike - 2}, {spike - 1}, {spike}:"
    f" {fixed[spike - 3]:.3f}, {fixed[spike - 2]:.3f}, {fixed[spike - 1]:.3f}"
)
shipped_losses = torch.tensor([r["train_loss"] for r in log])
biggest = (shipped_losses[1:] - shipped_losses[:-1]).max().item()
print(
    f"shipped run (warm-up {S_w} steps to {eta_max:g}): largest rise from one"
    f" step to the next {biggest:.3f}"
)
jumps = [j for found in spikes.values() for j in found]
assert sum(bool(found) for found in spikes.values()) >= 2  # 2 of 3 seeds
assert all(
    st <= live_cfg.warmup_steps and 0.6 < f < 1 for st, f, _, _ in jumps
)
assert all(g > 5 * live_cfg.grad_clip for _, _, _, g in jumps)
assert fixed[spike - 2] - fixed[spike - 3] > 0.5  # the update made it worse
assert fixed[spike - 1] < fixed[spike - 3]  # ... and the next one undid it
assert biggest < 0.2
"""),
md(r"""
Every jump came inside the 20-step warm-up, at 65-90% of the peak rate, and it is the weights
that went wrong, not the batch: on the fixed batch the loss rose by almost a nat after update
12 and fell back below its earlier value after update 13. The gradient at the jump is many times
the clipping threshold; clipped to norm 1 and divided by Adam's running $\sqrt{\hat v}$, the next
step is an ordinary one, and it repairs the damage. That fits the reason for warming up given
above: Adam moves every weight by about $\eta$ whatever its gradient, so as $\eta$ grows there is a
rate at which such a step overshoots, while $\hat v$ still rests on a dozen noisy gradients. The
shipped run, which warmed up over 100 steps to a third of this peak rate, has no such jump in its
log: no step's batch loss rose by even 0.2 nats over the step before. (Its larger batches are less
noisy too, so this is not a controlled comparison.)
"""),
md(r"""
## The shipped model's training curves

`train_log.csv` has a row per step: the training batch's loss, the gradient norm, and every 200
steps the evaluation losses on fixed batches of the training and validation plays.
"""),
code(r"""
evaluated = [r for r in log if "val_loss" in r]
tokens_per_epoch = len(train_ids)
fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.2))
ax = axes[0]
window = 25
smooth = (
    torch.tensor([r["train_loss"] for r in log]).unfold(0, window, 1).mean(1)
)
ax.plot(
    steps[window - 1 :],
    smooth,
    color="C0",
    alpha=0.5,
    label=f"training batches ({window}-step mean)",
)
ax.plot(
    [r["step"] for r in evaluated],
    [r["eval_train_loss"] for r in evaluated],
    "o-",
    color="C0",
    label="train (evaluation)",
)
ax.plot(
    [r["step"] for r in evaluated],
    [r["val_loss"] for r in evaluated],
    "s-",
    color="C1",
    label="validation plays",
)
ax.axhline(bigram, color="gray", ls="-.", lw=1, label="bigram")
ax.set_ylim(1.3, 3.4)
ax.set_xlabel("optimizer step")
ax.set_ylabel("loss (nats/char)")
ax.set_title("the shipped run", fontsize=10)
ax.legend(fontsize=9)
ax = axes[1]
ax.plot(steps, norms, lw=0.6, color="C2")
ax.axhline(clip, color="k", ls=":", label=f"clip at {clip:g}")
ax.set_yscale("log")
ax.set_xlabel("optimizer step")
ax.set_ylabel("gradient norm before clipping")
ax.set_title("its gradient norm", fontsize=10)
ax.legend(fontsize=9)
plt.tight_layout()
plt.show()

print(f"{'step':>5}{'epochs':>8}{'train':>8}{'val':>8}{'gap':>8}")
for r in evaluated:
    print(
        f"{r['step']:>5}{r['tokens'] / tokens_per_epoch:>8.2f}"
        f"{r['eval_train_loss']:>8.3f}"
        f"{r['val_loss']:>8.3f}{r['val_loss'] - r['eval_train_loss']:>8.3f}"
    )
gaps = [r["val_loss"] - r["eval_train_loss"] for r in evaluated]
assert all(a < b for a, b in zip(gaps, gaps[1:]))  # the gap only grows
assert gaps[0] < 0.005 and gaps[1] > 0.01  # ... from step 400 on
assert all(
    a["val_loss"] > b["val_loss"] for a, b in zip(evaluated, evaluated[1:])
)  # val still falling
"""),
md(r"""
Two honest observations. First, the validation loss was still falling at the last evaluation: the
model is not yet over-trained, and a longer run, with its schedule stretched to match, would very
likely have gone lower. (Part of the last drop comes from the cosine's annealing, so these curves
alone do not show that simply adding steps would help.) Second, a gap between the training and
validation curves appeared after the first evaluation (0.000 at step 200, 0.016 at step 400) and
grew at every evaluation, to about 0.12 nats per character by the end, after the model had seen each training character fewer than twice on
average. Is it memorising the training plays? Mostly not, it turns out: the plays differ in
*who speaks*. Each speech starts with a heading, its speaker's name on a line of its own, ending
in a colon: in capitals for most parts (`FALSTAFF:`), in mixed case for many minor ones
(`First Merchant:`). `gptlib.data` recognises a heading by where it stands rather than by its
case — the first line of a block, ending in a colon (`SPEAKER_HEADING`) — and
`speaker_heading_mask` marks every character of a heading line, its newline included. Most of the
validation plays' speakers never speak in the training plays, so their names cannot be predicted.
Split the loss by whether the character is part of a heading, on every window of the validation
plays (the losses kept at the top of the chapter) and of one training play per genre (the
shortest of each, to save time):
"""),
code(r"""
print("a heading:", SPEAKER_HEADING.pattern)
train_names, val_names = speaker_names(train_text), speaker_names(val_text)
unseen = val_names - train_names
mixed = sorted(n for n in val_names if not n.isupper())
examples = [n for n in mixed if n.startswith("First")][:2]
print(
    f"{len(val_names)} speakers in the validation plays, {len(mixed)} of them"
    f" in mixed case (e.g. {', '.join(examples)}); {len(unseen)} never speak"
    " in the training plays"
)
by_genre = {}
for play in load_plays("train"):
    by_genre.setdefault(play.genre, []).append(play)
sample = [min(plays, key=lambda p: len(p.text)) for plays in by_genre.values()]
sample_text = "\n".join(p.text for p in sample)  # as the split joins plays
sample_ids = encode_text(sample_text, tok)
torch.set_num_threads(2)
sample_loss = dataset_loss(scorer, sample_ids, 128, per_token=True)
torch.set_num_threads(1)
print(
    f"training sample: {', '.join(p.slug for p in sample)}"
    f" ({len(sample_text):,} characters)"
)


def by_heading(text, token_loss):
    # token_loss[i] is the loss of text[i + 1]: the mask, shifted to targets
    heading = speaker_heading_mask(text)[1 : 1 + len(token_loss)]
    return {
        "headings": token_loss[heading].double().mean().item(),
        "speech": token_loss[~heading].double().mean().item(),
        "all": token_loss.double().mean().item(),
        "heading share": heading.float().mean().item(),
    }


parts = {
    "train": by_heading(sample_text, sample_loss),
    "val": by_heading(val_text, val_token_loss),
}
print(
    f"{'':<6}{'headings':>10}{'speech':>10}{'all':>8}{'share of headings':>19}"
)
for split, part in parts.items():
    print(
        f"{split:<6}{part['headings']:>10.3f}{part['speech']:>10.3f}"
        f"{part['all']:>8.3f}{part['heading share']:>19.1%}"
    )
# validation headings of speakers who never speak in the training plays
heading = speaker_heading_mask(val_text)
new_name = torch.zeros(len(val_text), dtype=torch.bool)
for m in SPEAKER_HEADING.finditer(val_text):
    if m.group(0)[:-1] in unseen:
        new_name[m.start() : m.end() + 1] = True  # with its newline
assert not (new_name & ~heading).any()  # inside the mask's headings
targets = slice(1, 1 + len(val_token_loss))
known = val_token_loss[(heading & ~new_name)[targets]].double().mean().item()
never = val_token_loss[new_name[targets]].double().mean().item()
print(
    f"validation headings of speakers also in the training plays: {known:.3f};"
    f" of the {len(unseen)} who are not: {never:.3f}"
)
tr, va = parts["train"], parts["val"]
gap = va["all"] - tr["all"]
# the validation loss if its headings cost what the training headings cost:
reweighted = (
    va["heading share"] * tr["headings"]
    + (1 - va["heading share"]) * va["speech"]
)
explained = (va["all"] - reweighted) / gap
print(
    f"gap {gap:.3f}; the share of it removed by giving the validation"
    f" headings the training headings' loss: {explained:.0%}"
)
assert abs(va["speech"] - tr["speech"]) < 0.02  # speech: no real gap
assert va["headings"] - tr["headings"] > 1.0  # names: a large one
assert never > 2 * known  # the names it never saw cost most
assert 0.9 < explained < 1.0  # ... which accounts for nearly all the gap
"""),
md(r"""
On the speech itself the model does about as well on plays it never saw as on those it trained on;
on the headings, about 7% of the text, it is far worse, because it has learnt the training plays'
cast list: a validation heading whose speaker also speaks in the training plays costs less than
half as much as one whose speaker never does. The headings account for nearly all of the gap on
these windows: had the validation headings cost what the training headings cost, the validation
loss would fall by the printed share of the gap; the small rest is the speech's own difference.
(On a corpus with more repetition, or after many more epochs, real memorisation would widen the
gap; then the validation loss stops falling, and that is when to stop training.)

## Generation: from a distribution to text

The model returns logits $z \in \mathbb{R}^V$ for the next token; generation is a loop that picks
one token, appends it and runs again. The *decoding strategy* is the rule for picking:

- **greedy**: $\arg\max_v z_v$, the single most likely token;
- **temperature** $\tau > 0$: sample from $p_\tau(v) = \mathrm{softmax}(z / \tau)_v$. $\tau < 1$
  sharpens the distribution towards the argmax ($\tau \to 0$ is greedy), $\tau > 1$ flattens it
  towards uniform;
- **top-k** {cite:p}`fan2018hierarchical`: sample only among the $k$ most likely tokens
  (renormalised);
- **top-p** or *nucleus* sampling {cite:p}`holtzman2020curious`: sort the tokens by probability
  and sample only among the smallest set whose probabilities add up to at least $p$. Unlike top-k
  the set adapts: a handful of tokens where the model is sure, many where it is not.

`sample_next` applies them to a batch of logits $(B, V)$: top-k first (it picks by rank, which
dividing by a temperature does not change), then the temperature, then top-p, which depends on
the tempered probabilities:
"""),
code(r"""
show(sample_next)
"""),
code(r"""
show(top_p_filter)
"""),
md(r"""
Five strategies, the same prompt, each with its own seeded generator so the page is reproducible.
Each continuation is 120 characters, which keeps prompt and continuation within the model's context
of 128:
"""),
code(r"""
prompt = "ROMEO:\n"
prompt_ids = torch.tensor([tok.encode(prompt)])
strategies = {
    "greedy": dict(temperature=0),
    "temperature 0.5": dict(temperature=0.5),
    "temperature 1.0": dict(temperature=1.0),
    "top-k, k = 5": dict(temperature=1.0, top_k=5),
    "top-p, p = 0.9": dict(temperature=1.0, top_p=0.9),
}
runs = {}
for name, kw in strategies.items():
    out, logits = generate(
        model,
        prompt_ids,
        120,
        generator=torch.Generator().manual_seed(0),
        return_logits=True,
        **kw,
    )
    runs[name] = (
        out[0, len(prompt) :],
        logits[0],
    )  # new tokens (120,), raw logits (120, V)
    print(f"--- {name} ---\n{prompt}{tok.decode(runs[name][0].tolist())}\n")
"""),
md(r"""
Greedy text falls at once into the model's most common words and starts repeating them;
temperature 0.5 is more varied but sticks to common words and short speeches; temperature 1.0
samples the model's distribution as it is, with its odd inventions; top-k and top-p cut the
unreliable tail of that distribution. **Prove it** — the claims behind these
strategies, checked on the runs above:

1. top-k never samples outside the $k$ largest logits, top-p never outside the nucleus;
2. as $\tau \to 0$, sampling becomes greedy decoding.
"""),
code(r"""
new, z = runs["top-k, k = 5"]
kth = z.topk(5, dim=-1).values[:, -1]  # the 5th largest logit at each step
print(
    "top-k: every sampled token among the 5 largest:",
    bool((z.gather(1, new[:, None])[:, 0] >= kth).all()),
)
assert (z.gather(1, new[:, None])[:, 0] >= kth).all()

new, z = runs["top-p, p = 0.9"]
probs = z.softmax(-1)
nucleus_sizes = []
for t in range(len(new)):
    p_sorted, order = probs[t].sort(descending=True)
    size = int(
        (p_sorted.cumsum(0) - p_sorted < 0.9).sum()
    )  # tokens before it hold < p
    assert new[t] in order[:size], t
    nucleus_sizes.append(size)
print(
    "top-p: every sampled token inside the nucleus; nucleus size from"
    f" {min(nucleus_sizes)} to {max(nucleus_sizes)} tokens (median"
    f" {sorted(nucleus_sizes)[len(nucleus_sizes) // 2]})"
)

greedy_new, greedy_z = runs["greedy"]
top2 = greedy_z.topk(2, dim=-1).values
margin = (top2[:, 0] - top2[:, 1]).min().item()
print(
    f"closest call along the greedy path: the top two logits {margin:.3f}"
    " apart"
)
for tau in (1.0, 0.1, 0.01, 0.001):
    p_tau = (greedy_z.double() / tau).softmax(-1)  # float64: 1 - p stays exact
    p_other = p_tau.sum(-1) - p_tau.max(-1).values  # 1 - p(argmax), each step
    print(
        f"  τ = {tau:<6} all other tokens together have a chance of at most"
        f" {p_other.max().item():.0e}"
    )
cold = generate(
    model,
    prompt_ids,
    120,
    temperature=0.001,
    generator=torch.Generator().manual_seed(1),
)
print(
    "sampling at τ = 0.001 == greedy decoding:",
    torch.equal(cold[0, len(prompt) :], greedy_new),
)
assert torch.equal(cold[0, len(prompt) :], greedy_new)
"""),
md(r"""
The nucleus shrinks to a single token where the model is sure and grows where it is not — what a
fixed $k$ cannot do. As for temperature: dividing the logits by $\tau$ multiplies every gap between
them by $1/\tau$, so the most likely token's probability goes to 1. How small $\tau$ must be
depends on the closest call: here two characters were nearly tied at one step, so at $\tau = 0.01$
the runner-up still had a fair chance there, and only at $\tau = 0.001$ is every draw, in effect,
the argmax: all other tokens together then have a chance of about $10^{-7}$ at the closest step.

### Greedy decoding loops — forever

Greedy decoding is deterministic, and the model sees at most its last 128 characters. So if the
same 128 characters ever occur twice in greedy output, everything after the second occurrence
repeats what came after the first: the text is periodic from then on, *provably*, for ever. Run
greedy decoding well past the context and look for a repeated 128-character window:
"""),
code(r"""
long_greedy = prompt + generate_text(model, tok, prompt, 400, temperature=0)
C_ = model.config.block_size
first_seen, loop = {}, None
for i in range(len(long_greedy) - C_ + 1):
    w = long_greedy[i : i + C_]
    if w in first_seen:
        loop = (first_seen[w], i)
        break
    first_seen[w] = i
start, again = loop
period = again - start
print(
    f"the 128 characters from position {start} occur again at position"
    f" {again}: a loop of period {period}, entered by character {start}"
)
print("the loop:", repr(long_greedy[start : start + period]))
assert (
    long_greedy[again:]
    == (long_greedy[start : start + period] * 20)[: len(long_greedy) - again]
)
"""),
md(r"""
Sampling does not get stuck this way. A simple measure of repetition is the share of 12-character
strings in a text that already occurred earlier in the same text. For 400 characters of greedy
output, of sampled output, and of a passage from the validation plays:
"""),
code(r"""
def repeated_share(text, n=12):
    # Share of the n-character windows of text that already occurred
    # earlier in it.
    seen, repeats = set(), 0
    for i in range(len(text) - n + 1):
        repeats += text[i : i + n] in seen
        seen.add(text[i : i + n])
    return repeats / (len(text) - n + 1)


sampled = {
    name: (
        prompt
        + generate_text(
            model,
            tok,
            prompt,
            400,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )
    )
    for name, kw in (
        ("temperature 1.0", dict(temperature=1.0)),
        ("top-p, p = 0.9", dict(temperature=1.0, top_p=0.9)),
    )
}
texts = {
    "greedy": long_greedy,
    **sampled,
    "validation plays": val_text[100_000 : 100_000 + len(long_greedy)],
}
shares = {name: repeated_share(t) for name, t in texts.items()}
for name, share in shares.items():
    print(
        f"{name:<18} {share:6.1%} of 12-character strings repeat an"
        " earlier one"
    )
xv, yv = consecutive_windows(val_ids, 128)  # the windows dataset_loss scored
with torch.no_grad():
    top1 = (scorer(xv[::20])[0].argmax(-1) == yv[::20]).float().mean().item()
print(
    "the model's most likely next character is the actual one for"
    f" {top1:.0%} of the characters of every 20th validation window"
)
assert 0.4 < top1 < 0.6  # "about half"
assert shares["greedy"] > 0.5 and all(
    shares["greedy"] > 3 * s for n, s in shares.items() if n != "greedy"
)
"""),
md(r"""
### Beam search: the most probable continuation

Greedy decoding takes the most probable *character* at each step, but the most probable
*continuation* may begin with a less probable one. Beam search {cite:p}`graves2012sequence`
searches for it. It scores a continuation $y_1 \dots y_n$ by its log-probability
$\sum_i \log p(y_i \mid \text{prompt}, y_{<i})$, keeps the `beam_width` best partial continuations
(the *beams*), extends every beam by every character and keeps the best `beam_width` of those
$w V$ candidates. Width 1 is greedy decoding; a beam as wide as all $V^{n-1}$ prefixes would find
the exact optimum (`tests/test_generate.py` checks both, the second by brute force on a tiny
model); in between it is a heuristic. It became the standard decoder of neural machine
translation {cite:p}`sutskever2014sequence`, where a good output is close to the most probable
one:
"""),
code(r"""
show(beam_search)
"""),
code(r"""
def logprob_of(new, z):
    # log p of the tokens new (n,) under their raw next-token logits z (n, V)
    return z.double().log_softmax(-1).gather(1, new[:, None]).sum().item()


found = {}
for width in (1, 4, 8):
    out, score = beam_search(model, prompt_ids, 120, beam_width=width)
    found[f"beam, width {width}"] = (out[0, len(prompt) :], score.item())
    if width > 1:
        text = tok.decode(out[0, len(prompt) :].tolist())
        print(f"--- beam, width {width} ---\n{prompt}{text}\n")
greedy_new, greedy_z = runs["greedy"]
assert torch.equal(found["beam, width 1"][0], greedy_new)  # width 1 = greedy
assert abs(found["beam, width 1"][1] - logprob_of(greedy_new, greedy_z)) < 1e-3
rows_lp = {"greedy": found.pop("beam, width 1")}
rows_lp.update(found)
for name, (new, z) in runs.items():
    if name != "greedy":
        rows_lp[name] = (new, logprob_of(new, z))
print(
    f"{'120 characters after ROMEO:':<28}{'log p per char':>15}{'repeats':>9}"
)
per_char, repeats = {}, {}
for name, (new, lp) in rows_lp.items():
    per_char[name] = lp / len(new)
    repeats[name] = repeated_share(prompt + tok.decode(new.tolist()))
    print(f"{name:<28}{per_char[name]:>15.2f}{repeats[name]:>9.0%}")
val_repeats = repeated_share(val_text[100_000 : 100_000 + 127])
print(f"{'the validation plays':<28}{-shipped_val:>15.2f}{val_repeats:>9.0%}")
assert (
    per_char["beam, width 8"] > per_char["beam, width 4"] > per_char["greedy"]
)
assert per_char["greedy"] > per_char["temperature 1.0"] + 0.3
sampled_names = [n for n in rows_lp if n not in found and n != "greedy"]
assert min(repeats[n] for n in found) > 0.05  # beams repeat themselves
assert all(repeats[n] == 0 for n in sampled_names)  # no sampled text does
assert val_repeats == 0  # nor a passage of the plays
assert per_char["temperature 1.0"] < -shipped_val  # as improbable or more
assert abs(per_char["temperature 0.5"] - per_char["greedy"]) < 0.1
assert max(per_char[n] for n in sampled_names) < per_char["greedy"]
"""),
md(r"""
Each wider beam finds a more probable continuation than the one before (a higher log-probability
per character), and like greedy decoding it repeats itself — the same phrases, the same speaker
twice ("repeats": the share of 12-character strings that already occurred earlier in the same
127 characters; none in any sampled text, nor in a passage of the plays). Sampled text is less
probable under the model — at temperature 0.5 about as probable as greedy's, yet without its
repeats; at temperature 1 as improbable as the plays themselves or more, which is the point. Holtzman et al.
{cite:p}`holtzman2020curious` found the same with GPT-2 Large: maximising probability, by greedy
decoding or by beam search, produces bland, repetitive text, because human text is not the most
probable text. People often pick a token the model ranks second or lower (here about half the
characters of the validation plays, printed above), while always taking the top choice
reinforces whatever was just said. A probable continuation is not a typical one.

## Play with it

Pick a prompt and move the sliders: the table shows the model's probabilities for the next
character (`model p`) beside the probabilities with which it is actually *sampled* after the
temperature and the top-p filter (greyed rows: filtered out), and below it a continuation sampled
with those settings (same seed every time). Temperature 0 is greedy decoding. (The sliders need a
running notebook; the HTML book shows the explorer as it was saved, and the figure below it shows
one prompt under four settings.) The explorer's distribution must be the one `sample_next` draws
from; 20,000 draws check it:
"""),
code(r"""
explorer_prompts = [
    "ROMEO:\nI will ",
    "KING HENRY V:\nNow, lords, ",
    "To be, or not to b",
]
with torch.no_grad():
    z_demo = model(torch.tensor([tok.encode(explorer_prompts[0])]))[0][0, -1]
gen = torch.Generator().manual_seed(0)
draws = sample_next(
    z_demo.expand(20_000, V), temperature=1.3, top_p=0.8, generator=gen
)
empirical = torch.bincount(draws, minlength=V).double() / len(draws)
expected = sampling_distribution(z_demo, temperature=1.3, top_p=0.8)
tv = 0.5 * (empirical - expected).abs().sum().item()
print(
    "total variation distance, 20,000 draws vs sampling_distribution:"
    f" {tv:.3f} (< 0.03)"
)
assert tv < 0.03 and empirical[expected == 0].sum() == 0
sampling_explorer(
    model, tok, explorer_prompts, temperature=1.0, top_p=0.9, n_chars=80
)
"""),
code(r"""
settings = {
    "τ = 1 (the model)": dict(temperature=1.0),
    "τ = 0.5": dict(temperature=0.5),
    "τ = 1.5": dict(temperature=1.5),
    "τ = 1, top-p 0.5": dict(temperature=1.0, top_p=0.5),
}
p_model = z_demo.softmax(-1).double()
order = p_model.argsort(descending=True)[:12]
labels = [{"\n": "⏎", " ": "␣"}.get(c, c) for c in tok.decode(order.tolist())]
fig, axes = plt.subplots(2, 2, figsize=(7.4, 5.4), sharey=True)
for ax, (name, kw) in zip(axes.flat, settings.items()):
    p = sampling_distribution(z_demo, **kw)
    ax.bar(
        range(12), p_model[order], color="none", edgecolor="gray", lw=0.8
    )  # the model's own p
    ax.bar(range(12), p[order], color="C0", alpha=0.8)
    ax.set_xticks(range(12), labels)
    kept = int((p > 0).sum())
    ax.set_title(f"{name}\n{kept} tokens can be sampled", fontsize=10)
for ax in axes[:, 0]:
    ax.set_ylabel("probability of being sampled")
fig.suptitle(
    f"the next character after {explorer_prompts[0]!r}, its 12 most likely:\n"
    "sampled with (bars) vs the model's probability (outlines)"
)
plt.tight_layout()
plt.show()
"""),
md(r"""
## The KV cache: generating without recomputing

Generating $n$ tokens naively runs the model $n$ times on ever longer inputs: step $t$ recomputes
every layer at all $t$ positions, although only the last position's logits are used. The causal
mask makes almost all of that work redundant. Write $L$ for the number of layers, $C$ for the
width, $H$ for the number of heads and $d = C/H$ for a head's width. At layer $\ell$, let $x_i$ be
the layer's (layer-normed) input at position $i$ — a vector of $C$ numbers, not the token itself.
Position $i$'s key and value in a head, $k_i = x_i W_K$ and $v_i = x_i W_V$, depend only on tokens
$\le i$, so they are the same at every later step. Only the new token needs computing: its query
$q_t$ (one row) attends to the stored keys and values of all earlier positions plus its own,

$$
y_t = \mathrm{softmax}\!\left(\frac{q_t K_{\le t}^{\top}}{\sqrt d}\right) V_{\le t},
\qquad q_t \in \mathbb{R}^{1 \times d}, \; K_{\le t}, V_{\le t} \in \mathbb{R}^{t \times d} \text{ per head} .
$$

The *key/value cache* stores, for every layer, $K$ and $V$ of shape $(B, H, T, d)$ and appends one
row per step. The prompt is run once, filling the cache; each later step feeds one token. Per token
and layer it holds $H \cdot d = C$ numbers for the keys and $C$ for the values: $2LC$ numbers per
token for the whole model. (Queries are not cached: an old query is never used again.)
"""),
code(r"""
show(KVCache)
"""),
code(r"""
cache = model.new_kv_cache()  # one KVCache per layer
with torch.no_grad():
    logits_prompt = model(prompt_ids, kv_cache=cache)[
        0
    ]  # the prompt: 7 positions at once
    step_logits = model(torch.tensor([[tok.encode("I")[0]]]), kv_cache=cache)[
        0
    ]  # one new token
c = model.config
L_, H_, d_ = c.n_layer, c.n_head, c.n_embd // c.n_head
print(
    f"{len(cache)} layers; layer 0 keys {tuple(cache[0].k.shape)} = (B, H, T,"
    f" d), values {tuple(cache[0].v.shape)}"
)
nbytes = sum(
    t.numel() * t.element_size() for layer in cache for t in (layer.k, layer.v)
)
per_token = 2 * L_ * c.n_embd * 4  # 2LC float32 numbers
print(
    f"cache for {cache[0].length} tokens: {nbytes:,} bytes = {cache[0].length}"
    f" x 2·L·C·4 = {cache[0].length} x {per_token:,} bytes"
)
assert (
    cache[0].k.shape == (1, H_, len(prompt) + 1, d_)
    and nbytes == cache[0].length * per_token
)
"""),
md(r"""
**Prove it.** With the cache, each step's logits must be those of a full forward pass over the whole
sequence. `generate(..., use_cache=False)` is that full pass; both paths, greedy and sampled, 100
steps each, compared logit by logit:
"""),
code(r"""
for kw in (dict(temperature=0), dict(temperature=1.0, top_p=0.9)):
    a, la = generate(
        model,
        prompt_ids,
        100,
        use_cache=True,
        return_logits=True,
        generator=torch.Generator().manual_seed(3),
        **kw,
    )
    b, lb = generate(
        model,
        prompt_ids,
        100,
        use_cache=False,
        return_logits=True,
        generator=torch.Generator().manual_seed(3),
        **kw,
    )
    worst = (la - lb).abs().max().item()
    print(
        f"{kw}: same tokens {torch.equal(a, b)}, largest logit difference <"
        f" 1e-4: {worst < 1e-4}"
    )
    assert torch.equal(a, b) and worst < 1e-4
"""),
md(r"""
### See it: time per token

Without the cache, step $t$ costs a forward pass over $t$ positions, about $L(tC^2 + t^2C)$
operations (projections and MLPs at every position, plus attention between all pairs), so the time
per token grows with the length; with it, a step is one position attending to $t$ cached ones,
about $L(C^2 + tC)$, and its time grows far more slowly. (`KVCache` keeps its keys and values in
buffers allocated once for the whole context, and `append` writes only the new row into them;
joining the new row on with `torch.cat` would copy the whole cache at every step, another $O(LtC)$
numbers moved.) Speed does not depend on the weights, so we time a randomly initialised model of
the shipped shape, with a context of 1,024 so that lengths beyond 128 can be measured. Each point is
the fastest of 9 runs of one generation step at that length, the two kinds of step alternating so
that both see the same load (timings vary by machine, so this cell's output is not checked, and
nothing is asserted about them):
"""),
code(r"""
set_seed(0)
timing_model = GPT(
    GPTConfig(
        vocab_size=V,
        block_size=1024,
        n_layer=4,
        n_head=4,
        n_embd=128,
        fast=True,
    )
).eval()
seq = torch.randint(V, (1, 1024), generator=torch.Generator().manual_seed(0))
lengths = [16, 64, 128, 256, 512, 768, 1024]


def seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


per_token = {"without cache": [], "with cache": []}
with torch.no_grad():
    for n in lengths:
        kv = timing_model.new_kv_cache()
        timing_model(
            seq[:, : n - 1], kv_cache=kv
        )  # the n - 1 earlier tokens, cached

        def one_step():
            for layer in kv:  # back to n - 1 cached tokens
                layer.truncate(n - 1)
            timing_model(seq[:, n - 1 : n], kv_cache=kv)  # the new token only

        runs_n = {"without cache": [], "with cache": []}
        for _ in range(9):  # alternate: both see the same load
            runs_n["without cache"].append(
                seconds(lambda: timing_model(seq[:, :n]))
            )  # all n positions
            runs_n["with cache"].append(seconds(one_step))
        for name, times in runs_n.items():
            per_token[name].append(min(times))
for n, a, b in zip(
    lengths, per_token["without cache"], per_token["with cache"]
):
    print(
        f"length {n:5d}: without cache {a * 1e3:7.2f} ms/token, with cache"
        f" {b * 1e3:6.2f} ms/token, x{a / b:5.1f}"
    )
""", "nbval-ignore-output"),
code(r"""
fig, ax = plt.subplots(figsize=(7, 3.2))
for (name, times), marker in zip(per_token.items(), "os"):
    ax.plot(lengths, [t * 1e3 for t in times], marker=marker, label=name)
ax.set_xlabel("sequence length when the token is generated")
ax.set_ylabel("ms per generated token")
ax.set_title("one generation step, 4 layers of width 128, one CPU thread")
ax.legend()
plt.tight_layout()
plt.show()
"""),
md(r"""
At these sizes the cached step costs about the same at any length: its fixed cost per call (Python
and the launch of each operation in each layer) outweighs its arithmetic, so its timings are flat
and somewhat noisy, and at the shortest lengths recomputing everything can even be faster. The
recomputing step grows with the length, as the operation count says.

The price is memory, $2LC$ numbers per token per sequence, and it grows with the context and the
batch. For the models of chapter 6, in 16-bit numbers (2 bytes) as they are usually served:
"""),
code(r"""
kv_models = {
    "shipped model (float32)": (4, 128, 128, 4),
    "GPT-2 small": (12, 768, 1024, 2),
    "GPT-3 175B": (96, 12288, 2048, 2),
}  # n_layer, C, context, bytes per number
print(f"{'model':<26}{'per token':>12}{'full context, 1 sequence':>26}")
full_context = {}
for name, (L, C_kv, ctx, nb) in kv_models.items():
    b = 2 * L * C_kv * nb
    full_context[name] = b * ctx
    print(f"{name:<26}{b / 2**10:>9,.0f} KiB{b * ctx / 2**20:>22,.1f} MiB")
# a real cache of GPT-3 175B's shape, from its Table 2.1 (96 layers of 96
# heads of 128, context 2048), on the "meta" device: shapes, no memory
gpt3_kv = [KVCache(max_length=2048) for _ in range(96)]
for layer in gpt3_kv:
    new = torch.empty(1, 96, 2048, 128, dtype=torch.float16, device="meta")
    layer.append(new, new)
cache_bytes = sum(
    t.numel() * t.element_size()
    for layer in gpt3_kv
    for t in (layer.k, layer.v)
)
print(
    f"KVCache buffers for GPT-3 175B, one full sequence:"
    f" {cache_bytes / 2**30:.2f} GiB"
)
assert cache_bytes == full_context["GPT-3 175B"]
assert 8.9 < cache_bytes / 2**30 < 9.1  # "nine gibibytes"
"""),
md(r"""
Nine gibibytes for one full-length GPT-3 sequence is why the cache, not the arithmetic, often limits
how many requests a server can batch together {cite:p}`pope2023efficiently`. *Multi-query
attention* {cite:p}`shazeer2019fast` shrinks it $H$-fold by giving all heads one shared key and
value head; PaLM uses it {cite:p}`chowdhery2023palm`. One caveat for this book's model: its position
table has 128 rows, so beyond 128 characters `generate` keeps the last 128 — and since every
token's position then changes at each step, the cached keys are stale and the cache is rebuilt
every step. (With positions relative to the query, such as RoPE or ALiBi from chapter 5, old keys
stay valid and a rolling cache can be kept. The result is then no longer identical to recomputing
the last 128 tokens, because deeper layers' cached keys still reflect tokens that have left the
window.)

## Samples from the shipped model

Two seeded samples of 300 characters each, at temperature 0.8 with top-p 0.95, from two prompts:
"""),
code(r"""
for i, start in enumerate(["KING HENRY V:\n", "JULIET:\nO "]):
    text = generate_text(
        model,
        tok,
        start,
        300,
        temperature=0.8,
        top_p=0.95,
        generator=torch.Generator().manual_seed(100 + i),
    )
    print(f"{start}{text}\n{'-' * 60}")
"""),
md(r"""
Speaker names in capitals, lines of verse of about the right length, punctuation, archaic forms
("thou", "thee") — all learnt from the 3.5M characters of the training plays. Meaning is mostly
absent: 0.82M parameters and 6.5M characters of training are tiny by the standards of the largest
GPT-2 (1.5B parameters) and GPT-3 (175B parameters, 300B tokens {cite:p}`brown2020language`). How loss
improves with parameters and data is measured by the scaling laws of
{cite:t}`kaplan2020scaling` and {cite:t}`hoffmann2022training`.

## Training faster

**Why.** Every experiment in this book waits for a model to train, so the time to a given loss is
worth shrinking. Two kinds of change shorten it: doing each step faster (the same arithmetic on
better kernels) and needing fewer steps (a better optimiser or schedule). To keep score we use a
public benchmark: nanoGPT's "baby GPT" on tiny-shakespeare, whose CPU recipe (4 layers, 4 heads,
width 128, context 64, batch 12, 2,000 steps at a learning rate of $10^{-3}$) reports a validation
loss of 1.88 {cite:p}`karpathy2022nanogpt`. The text is split as nanoGPT splits it (first 90%
train, last 10% validation, 65 characters), and the validation loss here is measured on *every*
window of the validation text (`dataset_loss`), not on a few random batches.

**The fast path.** `GPTConfig(fast=True)` runs every layer on PyTorch's fused kernels —
`F.layer_norm`, `F.gelu`, `F.scaled_dot_product_attention` with `is_causal` — and trains with the
fused AdamW. It computes the same function as the written-out teaching path that the rest of the
book shows (`tests/test_fast_path.py` checks forward, gradients and optimiser steps for every
option); only the speed differs (the time of one training step is shown, not checked: it
depends on the machine):
"""),
code(r"""
import importlib
import sys

sys.path.insert(0, "../scripts/experiments")
speedrun = importlib.import_module("speedrun")
set_seed(0)
same = dict(
    vocab_size=V, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False
)
paths = {
    "teaching": GPT(GPTConfig(**same)),
    "fast": GPT(GPTConfig(**same, fast=True)),
}
paths["fast"].load_state_dict(paths["teaching"].state_dict())
xb, yb = get_batch(train_ids, 12, 64, torch.Generator().manual_seed(0))
losses = {name: m(xb, yb)[1] for name, m in paths.items()}
print({name: f"{loss.item():.4f}" for name, loss in losses.items()})
assert abs(losses["teaching"].item() - losses["fast"].item()) < 1e-5
"""),
code(r"""
step_ms = {name: [] for name in paths}
opts = {
    name: torch.optim.AdamW(m.parameters(), fused=name == "fast")
    for name, m in paths.items()
}
for _ in range(10):  # alternate, so that both see the same load
    for name, m in paths.items():
        t0 = time.perf_counter()
        m(xb, yb)[1].backward()
        opts[name].step()
        opts[name].zero_grad()
        step_ms[name].append(1e3 * (time.perf_counter() - t0))
print(
    {name: f"{min(t):.0f} ms" for name, t in step_ms.items()},
    "per step (fastest of 10)",
)
""", "nbval-ignore-output"),
md(r"""
**Time to the target.** `scripts/experiments/speedrun.py` trains two models *side by side*: two
processes at the same time, each pinned to its own core with one thread, the two recipes swapping
cores from one seed to the next, so that whatever load the machine has falls on both alike and
the ratio of their times means something even where the times themselves would not. The
baseline is a reference model written in the benchmark with PyTorch's own modules, as nanoGPT
writes its model, trained with nanoGPT's recipe by gptlib's `train`. The candidates are gptlib
run configs, each a whole run through the command line's own function (`gptlib.runconfig.run`;
the recipe named `record` is `configs/tinyshakespeare_speedrun.json`), its last loss measured on
every validation window. Each line of `data/results/speedrun.json` is one run:
"""),
code(r"""
RESULTS = Path("../data/results/speedrun.json")
runs = speedrun.load(RESULTS)
rows = speedrun.summary(RESULTS)
"""),
md(r"""
With the reference model, nanoGPT's recipe ends at a validation loss of 1.90–1.91 on every window,
at all three seeds: on this measure it does *not* reach nanoGPT's 1.88 (which is an estimate on a
few random batches), so its whole run is the time to beat. The record recipe changes three
things at once: the fast path; Muon {cite:p}`jordan2024muon`, which replaces each hidden weight
matrix's momentum update by an approximately orthogonal matrix (five Newton–Schulz iterations),
with AdamW as before for the embeddings (the tied output layer) and the norms' gains
(`TrainConfig(optimizer="muon")`, built on `torch.optim.Muon`; its update is scaled to roughly
AdamW's size, `adjust_lr_fn="match_rms_adamw"` {cite:p}`liu2025muon`, so that one learning rate
and weight decay serve both); and a learning rate six times larger, with a shorter warm-up and a
cosine schedule that ends at 600 steps. At every seed it reaches the target (1.84–1.87) in 0.40–0.42
of the baseline's time, measured side by side: less than a third of the steps, but not a third
of the time, because each Muon step costs 1.3–1.4 baseline steps — five Newton–Schulz
iterations per matrix, each a few products of matrices the size of the weight, whatever the
batch.

Which change earns what? Two rows take the changes apart, each with one seed only:

- `fast` — nanoGPT's recipe on gptlib's fast path instead of the reference model — ends at the
  *same* loss as the reference to five decimals (the same function and the same seed, so the same
  training) in 0.98 of its time: the fast path matches PyTorch's own modules, and gains nothing
  in steps;
- `adamw-1000` — the fast path and the larger learning rate with a schedule of 1,000 steps, but
  AdamW — stops well above the target. A short schedule alone does not get there; with Muon one
  of 600 steps does.

What this does not show: the ablation rows are one seed each; Muon was not tried without the
short schedule, nor the short schedule with the teaching path; and the times are from one idle
2-core machine (other machines, other ratios — the per-step cost of Muon's bfloat16 products in
particular depends on the CPU).
"""),
code(r"""
by = {r["recipe"]: r for r in rows}
base, record = by["baseline"], by["record"]
pairs = {ln["pair"]: ln for ln in runs if ln["recipe"] == "baseline"}
muon_step = [
    (ln["time_s"] / ln["steps"])
    / (pairs[ln["pair"]]["time_s"] / pairs[ln["pair"]]["steps"])
    for ln in runs
    if ln["recipe"] == "record"
]
vals = {
    name: [ln["val_loss"] for ln in runs if ln["recipe"] == name]
    for name in ("baseline", "record")
}
print(
    "record: seeds",
    record["seeds"],
    "val",
    [f"{v:.3f}" for v in vals["record"]],
    "time / baseline",
    [f"{x:.2f}" for x in record["ratios"]],
)
print("baseline val (all its runs):", [f"{v:.3f}" for v in vals["baseline"]])
print("a Muon step / a baseline step:", [f"{x:.2f}" for x in muon_step])
fast_line = next(ln for ln in runs if ln["recipe"] == "fast")
base_0 = pairs[fast_line["pair"]]
print(
    f"fast: val {fast_line['val_loss']:.5f} vs reference"
    f" {base_0['val_loss']:.5f}, time ratio {by['fast']['ratios'][0]:.2f}"
)
assert record["seeds"] == [0, 1, 2] and record["reached"] == 3
assert all(r < 0.5 for r in record["ratios"])  # the goal, every seed
assert all(0.39 < r < 0.43 for r in record["ratios"])  # "0.40-0.42"
assert all(1.83 < v < 1.875 for v in vals["record"])  # "1.84-1.87"
assert all(1.9 < v < 1.915 for v in vals["baseline"])  # above the target
assert all(1.3 < x < 1.42 for x in muon_step)  # "1.3-1.4"
assert abs(fast_line["val_loss"] - base_0["val_loss"]) < 1e-5
assert 0.95 < by["fast"]["ratios"][0] < 1.01
assert by["adamw-1000"]["reached"] == 0 and by["adamw-1000"]["val_loss"] > 1.92
""", "hide-input"),
md(r"""
## The loss ladder, complete

Chapters 1-6 each put their minimal model on the *loss ladder*: trained on the same 3.07
million characters of the training plays (1,500 steps of 32 windows of 64), with a learning
rate chosen per model on the validation plays (at seed 0) and three seeds, and scored on every 64-character
window of the validation plays (`data/results/ladder.json`, written by
`scripts/experiments/ladder.py`). Chapter 7's rung is the book's shipped model, scored on the
same windows (1.650 here; on windows of its own context, 128, it scores 1.630, the number this
chapter quotes elsewhere). It is not one more component: it is the same architecture, wider (128 instead of
48), one block deeper, trained with a context of 128 on twice the characters (6.55 million) for
about two hours — one run, not three, which is why its row has a single point.
"""),
code(r"""
from gptlib.ladder import ladder_summary, ladder_table, read_ladder, rung_gap
from gptlib.viz.ladder import plot_ladder

ladder = read_ladder("../data/results/ladder.json")
print(ladder_table(ladder, upto_chapter=7))
plot_ladder(ladder, chapter=7)
plt.show()
"""),
md(r"""
Read top to bottom, the staircase is the book so far, and it is not a flattering one. The
counted bigram and its trained twin agree (chapter 1). One attention head with no positions
and no residual path ends up at the bigram, four heads a little below it (chapter 2); without
the mask it is worse (chapter 3). The residual path is the first clear step, LayerNorm a
smaller one, and stacking three blocks the first big one (chapter 4); positions are the next, RoPE the best of them (chapter 5). Tying the output
layer changes nothing measurable (chapter 6). And all the while one rung of chapter 1 stays
below every one of them: the best counted n-gram, a table with millions of entries. Only the
shipped model — wider, deeper, with a longer context and twice the data — comes out below it,
by less than the spread between seeds of the smaller GPT; it is a single run, so call it a
tie. That is the honest picture at this scale: a transformer's advantage is not that a small
one beats counting at once, but that it gets close with 0.1 to 0.8 million parameters instead
of 5.4 million counts, and keeps improving as it grows, where counts run out (chapter 1's U-shape;
chapter 9 measures the growth). The checks for this chapter's rung:
"""),
code(r"""
rows = {r["rung"]: r for r in ladder_summary(ladder, 7)}
best_small = min(
    (r for r in rows.values() if r["chapter"] <= 6), key=lambda r: r["mean"]
)
print(
    f"shipped {rows['shipped']['mean']:.3f}; the best rung of chapters 1-6:"
    f" {best_small['label']} {best_small['mean']:.3f}"
)
print(
    f"shipped vs the assembled GPT of chapter 6:"
    f" {rung_gap(ladder, 'shipped', 'gpt'):.3f} nats lower in the worst case"
)
assert best_small["rung"] == "ngram"  # the counted table, not a GPT
tie = rung_gap(ladder, "shipped", "ngram")
print(
    f"shipped below the best n-gram by {tie:.3f} nats; the chapter 6 GPT's"
    f" seed spread is {rows['gpt']['spread']:.3f}"
)
assert 0 < tie < rows["gpt"]["spread"]  # below it, by less than seed noise
assert abs(rows["shipped"]["mean"] - 1.650) < 5e-4  # on 64-character windows
assert abs(shipped_val - 1.630) < 5e-4  # on windows of its own context, 128
assert 1.9 < shipped["results"]["elapsed_s"] / 3600 < 2.1  # "about two hours"
assert 2 < shipped["results"]["tokens"] / 3_072_000 < 2.2  # "twice the data"
assert rung_gap(ladder, "shipped", "gpt") > 0.05
assert rows["shipped"]["parameters"] > 8 * rows["gpt"]["parameters"]
"""),
md(r"""
## Common misconceptions

```{admonition} Common misconception: "a pretrained model either looks facts up, or, since it only continues text, knows none"
:class: warning

Both claims are common, and both are wrong as general statements. What pretraining fits is a
distribution over continuations of text; whatever facts a model reproduces, it reproduces because
they were written down often and consistently enough in its training text for that distribution
to carry them. How many it carries depends on the model's size and data, so a small model tells
us little about a large one. This one, 0.82M parameters trained on 6.6M characters of plays,
memorised no facts that we could find. In eight pairs of statements the true completion flips
with the subject — ice is *cold*, fire is *hot* — and we measure which of the two words the model
prefers after each subject, by the log-probability of each completion. A model that had stored
the facts would change its preference with the subject.
```
"""),
code(r"""
def logprob(prefix, continuation):
    # log p(continuation | prefix) under the shipped model, summed over
    # its characters.
    ids = torch.tensor([tok.encode(prefix + continuation)])
    with torch.no_grad():
        logp = model(ids)[0][0].log_softmax(-1)
    return sum(
        logp[i - 1, ids[0, i]].item() for i in range(len(prefix), ids.size(1))
    )


flips = [
    ("Ice is ", "Fire is ", "cold", "hot"),
    ("Snow is ", "Coal is ", "white", "black"),
    ("The sun rises in the ", "The sun sets in the ", "east", "west"),
    ("The day is ", "The night is ", "light", "dark"),
    ("In summer it is ", "In winter it is ", "hot", "cold"),
    ("Sugar is ", "Vinegar is ", "sweet", "sour"),
    ("A mouse is ", "An elephant is ", "small", "large"),
    ("Lead is ", "A feather is ", "heavy", "light"),
]
same_choice = 0
print(
    f"{'true: first subject + a, second subject + b':<54}"
    f"{'prefers (1st)':>14}{'prefers (2nd)':>14}"
)
for s1, s2, a, b in flips:
    pick1 = a if logprob(s1, a) > logprob(s1, b) else b
    pick2 = a if logprob(s2, a) > logprob(s2, b) else b
    same_choice += pick1 == pick2
    print(f"{s1 + a + ' / ' + s2 + b:<54}{pick1:>14}{pick2:>14}")
print(
    f"the same word preferred after both subjects in {same_choice} of"
    f" {len(flips)} pairs"
)
assert same_choice == len(flips)
"""),
md(r"""
In every pair the model prefers the *same* word after both subjects, so it is right about exactly
one of the two — ice is "cold", and so is fire. For this model what decides is how the word fits
the plays' phrasing and how often it occurs there, not what is true. And a question or a modern
sentence is simply continued as more of a play:
"""),
code(r"""
for i, question in enumerate(
    [
        "Question: What is the capital of France?\nAnswer:",
        "Dear customer, your order",
        "The speed of light is",
    ]
):
    answer = generate_text(
        model,
        tok,
        question,
        100,
        temperature=0.8,
        generator=torch.Generator().manual_seed(i),
    )
    print(f"{question}{answer}\n{'-' * 60}")
assert 175e9 / model.num_parameters() > 200_000  # GPT-3's size, relative
"""),
md(r"""
Scale changes this. GPT-3 175B — over 200,000 times as many parameters, 300B tokens of web text,
books and Wikipedia — answers trivia questions *closed-book*, with no document to read, from
what its weights hold: 64.3% of TriviaQA zero-shot, 68.0% one-shot and 71.2% few-shot (Table 3.3
of {cite:t}`brown2020language`). Large models do store many facts. They store them unreliably:
the same table has GPT-3 at 14.6% zero-shot and 29.9% few-shot on Natural Questions, and even on
TriviaQA about three answers in ten are wrong — produced by the same continuation of text, as
fluently as the right ones. Adapting a pretrained model to a task is the job of fine-tuning
(chapter 8).

```{admonition} Common misconception: "BERT, RoBERTa, ALBERT, ELECTRA and GPT-2 are pretrained language models of one kind"
:class: warning

Explanations of GPT often list "popular pretrained language models" as one family — "BERT,
RoBERTa, ALBERT, ELECTRA, XLM, GPT-2" — as if any of them could serve as the pretrained model
behind a GPT. They are two different kinds of model, pretrained on two different objectives.

- **Encoders**: BERT {cite:p}`devlin2019bert`, RoBERTa {cite:p}`liu2019roberta` and ALBERT
  {cite:p}`lan2020albert` are *bidirectional*: no causal mask, every position attends to the
  tokens before *and after* it. They are pretrained to fill in tokens that were masked out of the
  input (*masked language modelling*); BERT adds next-sentence prediction and ALBERT sentence-order
  prediction, which RoBERTa drops. ELECTRA {cite:p}`clark2020electra` trains an encoder to tell
  which tokens of its input were replaced by a small generator's guesses. Neither objective gives
  $p(x_{t+1} \mid x_{\le t})$, so none of them generates text left to right; they are used to
  *represent* text (for classification, retrieval, tagging). (XLM {cite:p}`lample2019cross`, the
  cross-lingual model in that list, was released in both kinds, with masked and with causal
  objectives.)
- **Autoregressive decoders**: GPT {cite:p}`radford2018improving`, GPT-2
  {cite:p}`radford2019language` and GPT-3 {cite:p}`brown2020language` are causal stacks trained on
  the next-token loss of this chapter, which gives a model that generates directly, one token at a
  time, by the loop above. (Encoder–decoder models such as T5 {cite:p}`raffel2020exploring` and BART
  also generate, through a decoder trained on a similar next-token loss.)

The cell below builds a tiny BERT and a tiny ELECTRA discriminator from Hugging Face's configurations
(random weights, nothing downloaded) and checks both properties.
```
"""),
code(r"""
set_seed(0)
small = dict(
    vocab_size=V,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
)
bert = BertForMaskedLM(BertConfig(**small)).eval()
electra = ElectraForPreTraining(
    ElectraConfig(embedding_size=32, **small)
).eval()
x = torch.tensor([tok.encode("To be, or not")])
x_changed = x.clone()
x_changed[0, -1] = tok.encode("w")[0]  # change only the last token
with torch.no_grad():
    bert_first = (
        (bert(x).logits[0, 0] - bert(x_changed).logits[0, 0])
        .abs()
        .max()
        .item()
    )
    gpt_first = (
        (model(x)[0][0, 0] - model(x_changed)[0][0, 0]).abs().max().item()
    )
    electra_out = electra(x).logits
    electra_first = (
        (electra_out[0, 0] - electra(x_changed).logits[0, 0]).abs().item()
    )
print("changing the LAST token changes the output at the FIRST position:")
print(
    f"  BERT (encoder): {bert_first > 0}   ELECTRA (encoder):"
    f" {electra_first > 0}   shipped GPT (decoder): {gpt_first > 0}"
)
print(
    f"BERT's masked-LM output {tuple(bert(x).logits.shape)} = (B, T, V): a"
    " guess for each position, from both sides"
)
print(
    f"ELECTRA's discriminator output {tuple(electra_out.shape)} = (B, T): one"
    " 'was this token replaced?' score each"
)
assert (
    bert_first > 0
    and electra_first > 0
    and gpt_first == 0
    and electra_out.shape == x.shape
)
"""),
md(r"""
```{admonition} Common misconception: "first train a pretrained model (on a smaller dataset), then initialise GPT from it"
:class: warning

The same explanations describe training GPT in two stages: first obtain a *pretrained language
model*, then use its parameters to initialise GPT, and — the suggested improvement — pretrain on a
*smaller* dataset. Both parts are wrong. Pretraining *is* the training of GPT itself: it starts
from random weights, as the live run above did (its loss began at about $\ln V$, asserted), and the model
it produces is the pretrained model. GPT-3 was trained this way and then evaluated without any
fine-tuning at all, by putting examples of a task in its prompt {cite:p}`brown2020language`;
fine-tuning, when it is done, comes *after* pretraining (chapter 8). And pretraining wants *more*
data, not less: loss keeps falling with the amount of text, and compute-optimal training uses about
20 tokens per parameter {cite:p}`hoffmann2022training`, a rule fitted on more than 400 models of 70M
to 16B parameters — GPT-3 itself saw only 1.7. It is fine-tuning that works with small datasets.
```
"""),
code(r"""
seen, n_params = shipped["results"]["tokens"], model.num_parameters()
assert seen == log[-1]["tokens"] == S * shipped_cfg.tokens_per_step
print(
    f"shipped model: {seen:,} training characters for {n_params:,}"
    f" parameters = {seen / n_params:.1f} per parameter, about"
    f" {seen / n_params / 4:.1f} GPT-2 tokens per parameter at ~4 characters"
    f" a token; {seen / len(train_ids):.2f} passes over the training plays"
)
drops = [
    a["val_loss"] - b["val_loss"] for a, b in zip(evaluated, evaluated[1:])
]
print(
    "validation loss at each evaluation:",
    ", ".join(f"{r['val_loss']:.3f}" for r in evaluated),
    f"(the last drop: {drops[-1]:.3f})",
)
print(
    f"GPT-3 175B: 300B tokens for 175B parameters = {300e9 / 175e9:.1f} tokens"
    f" per parameter; the smallest model of the 20-tokens fit, 70M"
    f" parameters, is {70e6 / n_params:.0f} times the shipped model"
)
assert round(70e6 / n_params) == 86
assert drops[-1] > 0.01  # still falling at the end of training
"""),
md(r"""
The shipped model saw 8.0 characters per parameter: about 2 tokens per parameter in BPE terms,
the unit of that rule (a GPT-2 token is about 4 characters of English — a rule of thumb, not
measured on these plays). And its validation loss was still falling between its last two
evaluations. By the rule it is data-starved, not over-trained — the opposite of what a smaller
dataset would fix. The rule itself, though, was fitted on models 86 times this one's size and
more; for a 0.8M-parameter model it is an extrapolation, and the still-falling loss is the
evidence that counts.

## Exercises

**Exercise 1.** Express the shipped model's validation loss in bits per character and as a
*perplexity* $e^{\mathcal L}$ — the number of equally likely characters that would be as surprising.
Do the same for the uniform and bigram baselines. Then check the definition on one validation
batch: the perplexity computed directly from the model's probabilities, as the geometric mean of
$1/p$ (in bits: $2$ to the mean of $-\log_2 p$), must equal $e^{\mathcal L}$ of the model's own loss.
"""),
code(r"""
# Solution
for name, loss in (
    ("uniform", uniform),
    ("bigram", bigram),
    ("shipped GPT", shipped_val),
):
    bits = loss / math.log(2)
    print(f"{name:<12} {bits:.2f} bits/char, perplexity {math.exp(loss):5.2f}")
assert math.exp(shipped_val) < 6  # like choosing among ~5 characters
xb, yb = get_batch(val_ids, 16, 128, torch.Generator().manual_seed(0))
with torch.no_grad():
    logits_b, loss_b = model(xb, yb)
p_true = (
    logits_b.double().softmax(-1).gather(-1, yb[..., None])
)  # p of each actual next character
ppl_bits = 2 ** (
    -p_true.log2().mean().item()
)  # 2^(mean bits): no cross_entropy used
print(
    f"one validation batch: 2^(mean -log2 p) = {ppl_bits:.2f}, exp(model's"
    f" loss) = {math.exp(loss_b.item()):.2f}"
)
assert abs(ppl_bits / math.exp(loss_b.item()) - 1) < 1e-4
""", "hide-cell"),
md(r"""
**Exercise 2.** Show that `top_k=1` gives greedy decoding at any temperature (barring exact ties
in the top logits, which `top_k_filter` keeps together), and so does a tiny
top-p (say `top_p=0.01`). Why does top-p with a tiny $p$ never keep *zero* tokens?
"""),
code(r"""
# Solution
greedy = generate(model, prompt_ids, 60, temperature=0)
for kw in (dict(temperature=2.0, top_k=1), dict(temperature=2.0, top_p=0.01)):
    out = generate(
        model, prompt_ids, 60, generator=torch.Generator().manual_seed(0), **kw
    )
    print(kw, "== greedy:", torch.equal(out, greedy))
    assert torch.equal(out, greedy)
# top_p_filter keeps token i when the tokens before it (in sorted order) hold
# less than p;
# nothing comes before the most likely token, so it is always kept.
assert (top_p_filter(z_demo[None], 1e-9) > float("-inf")).sum() == 1
""", "hide-cell"),
md(r"""
**Exercise 3.** How much memory does GPT-2 small's KV cache take for one sequence of its full
context of 1,024 tokens, in float32? Compute it from $2LC$ numbers per token, then check it against
a real cache: build a one-layer model of GPT-2 small's width and heads (random weights, a 1,024-token
context), run 1,024 tokens through it with a cache, and multiply by its 12 layers.
"""),
code(r"""
# Solution
L2, C2, T2 = 12, 768, 1024
formula = 2 * L2 * C2 * T2 * 4
set_seed(0)
one_layer = GPT(
    GPTConfig(
        vocab_size=V,
        block_size=T2,
        n_layer=1,
        n_head=12,
        n_embd=C2,
        fused_attention=True,
    )
).eval()
kv1 = one_layer.new_kv_cache()
with torch.no_grad():
    one_layer(
        torch.randint(V, (1, T2), generator=torch.Generator().manual_seed(0)),
        kv_cache=kv1,
    )
measured = L2 * sum(t.numel() * t.element_size() for t in (kv1[0].k, kv1[0].v))
print(
    f"formula {formula / 2**20:.0f} MiB, measured {measured / 2**20:.0f} MiB;"
    f" layer 0's keys {tuple(kv1[0].k.shape)}"
)
assert measured == formula == 72 * 2**20
""", "hide-cell"),
md(r"""
## Key points

- Pretraining minimises the next-token cross-entropy over every position of random windows of the
  training text, from random weights. On the held-out plays: $\ln V$ = 4.25 nats/char for a uniform
  guess, 2.48 for the bigram, 1.63 for the shipped 0.82M-parameter GPT.
- `gptlib.pretrain.train`: AdamW with decoupled weight decay on every tensor of two or more
  dimensions (matrices and embedding tables, as in nanoGPT and GPT-1); linear warm-up then a cosine
  decay; the gradient's global norm clipped; optional gradient accumulation (the same update as one
  big batch); evaluation on fixed batches; checkpoints that resume bit for bit.
- Its defaults for β1, β2, ε, clipping, weight decay and the cosine are GPT-3's Appendix B; GPT-3
  also decays to 10% (the shipped run does; the default `min_lr` is 0), warms up over 375M tokens
  and ramps its batch, which gptlib does not.
- A random GPT starts near $\ln V$: $\sigma^2/2$ above it untied, more with a tied output layer (the
  input character's own logit stands out), plus or minus a part that depends on the seed (some seeds
  start below). The live run's loss spikes came inside its warm-up, at 65-90% of the peak rate, from
  updates that overshot; the next, clipped step repaired the one replayed on a fixed batch.
- The shipped model's train–validation gap (0.12 nats on the evaluation batches; 0.10 on every
  window of the validation plays against six training plays) comes almost entirely from speaker
  headings, above all of speakers it never saw; its validation loss was still falling when
  training stopped.
- Generation picks one token at a time. Greedy decoding provably loops once a context-length window
  repeats; beam search finds more probable continuations and repeats itself too; temperature
  rescales the distribution ($\tau \to 0$ is greedy); top-k and top-p sample only from the head of
  it, top-p with a set that adapts to the model's certainty.
- The KV cache stores each layer's keys and values, $(B, H, T, d)$, $2LC$ numbers per token: the
  same logits as recomputing everything, with a per-token time that grows far more slowly with the
  length. It is memory, not arithmetic, that it costs.
- A pretrained GPT continues text. The facts it reproduces are those its training text carried:
  none we could find in this small model, many but unreliably in GPT-3 (71.2% closed-book on
  TriviaQA few-shot). BERT-style encoders (BERT, RoBERTa, ALBERT, ELECTRA) are bidirectional and
  cannot generate left to right; GPTs are causal decoders.

## References

Adam and AdamW {cite:p}`kingma2015adam,loshchilov2019decoupled`; warm-up
{cite:p}`he2016deep,vaswani2017attention,goyal2017accurate`; cosine schedules
{cite:p}`loshchilov2017sgdr`; gradient clipping {cite:p}`pascanu2013difficulty`; nanoGPT's and
minGPT's training loops {cite:p}`karpathy2022nanogpt,karpathy2020mingpt`; beam search
{cite:p}`graves2012sequence,sutskever2014sequence`; top-k and nucleus sampling, and why maximising
probability degenerates {cite:p}`fan2018hierarchical,holtzman2020curious`; the KV cache in serving and
multi-query attention {cite:p}`pope2023efficiently,shazeer2019fast,chowdhery2023palm`; scaling
{cite:p}`kaplan2020scaling,hoffmann2022training`; GPT, GPT-2, GPT-3
{cite:p}`radford2018improving,radford2019language,brown2020language`; BERT, RoBERTa, ALBERT, ELECTRA
{cite:p}`devlin2019bert,liu2019roberta,lan2020albert,clark2020electra`; the Transformer
{cite:p}`vaswani2017attention`. Full entries are on the [References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "07_pretrain.ipynb", CELLS)
