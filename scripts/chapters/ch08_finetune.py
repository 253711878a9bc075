"""Source of chapters/08_finetune.ipynb. Edit here, then:

    python scripts/chapters/ch08_finetune.py && python scripts/run_notebooks.py chapters/08_finetune.ipynb
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 8. Fine-tuning: a pretrained GPT, a new head, and what to train

**Why.** Pretraining (chapter 7) teaches a model one thing: to predict the next character of
Shakespeare. Along the way it has to learn a great deal about the text — spelling, metre, who
speaks, what kind of scene this is. Fine-tuning is how that knowledge is put to another use, with
far less data and compute than pretraining took: start from the pretrained weights instead of
random ones, and keep training, on the new task. This chapter does it twice with the book's
pretrained character model. First a new *task*: from a 128-character passage of a play it has
never seen, say whether the play is a comedy, a history or a tragedy — with a new output layer (a
*head*), and five choices of what to train. Then a new *distribution*: the same language model,
adapted to one speaker's voice, and the price paid on everything else (*catastrophic
forgetting*). Along the way: LoRA, the low-rank adapters that train a few thousand numbers instead
of the whole model, and loading Hugging Face GPT-2 weights to fine-tune them.
"""),
code(r"""
import os
import re
import tempfile
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

from gptlib import set_seed, show
from gptlib.data import data_dir, encode_text, load_plays
from gptlib.finetune import (THREE_CLASSES, GPTClassifier, count_trainable, evaluate_classifier,
                             finetune, freeze, genre_dataset, load_backbone)
from gptlib.generate import generate_text
from gptlib.lora import LoRALinear, apply_lora, lora_parameters, merge_lora
from gptlib.model import GPT
from gptlib.pretrain import TrainConfig, dataset_loss, train

torch.set_num_threads(1)     # small models: one thread is as fast, and the results do not vary
plt.rcParams["figure.dpi"] = 90
# transformers reports through `logging` to stderr, which the notebook tests compare:
# keep only its errors, and no progress bars.
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
"""),
md(r"""
## The idea: same network, same weights, one more layer

Pretraining produced parameters $\theta_0$ for a GPT with $L$ blocks of width $C$. For a
classification task with $K$ classes we keep that network *exactly* — the same architecture, the
pretrained weights loaded into it — and read a feature vector $h \in \mathbb{R}^C$ from its final
hidden states $X^{(L)} \in \mathbb{R}^{T \times C}$ (after the final LayerNorm):

$$
h = \mathrm{LN}_f\!\bigl(X^{(L)}_{T}\bigr) \quad\text{(last token)} \qquad\text{or}\qquad
h = \frac{1}{T}\sum_{t=1}^{T} \mathrm{LN}_f\!\bigl(X^{(L)}_{t}\bigr) \quad\text{(mean)},
$$

then a new linear *head* $W_h \in \mathbb{R}^{K \times C}$, $b_h \in \mathbb{R}^K$ maps it to
class scores, trained with the cross-entropy of the right class $y$:

$$
z = W_h h + b_h \in \mathbb{R}^K, \qquad \mathcal{L}(\theta, W_h, b_h) = -\log \mathrm{softmax}(z)_y .
$$

GPT {cite:p}`radford2018improving` classified exactly this way, from the last token's state: with
causal attention it is the only position that has read the whole input. Mean pooling averages
every position instead. Training starts at $\theta = \theta_0$ and the head at small random
values; what differs between fine-tuning methods is only *which* parameters move:

| method | trains | parameters (this chapter's model) |
|---|---|---|
| head only (a *linear probe*) | $W_h, b_h$ | $K(C+1)$ |
| last block | the last block, $\mathrm{LN}_f$, the head | $12C^2 + 13C + 2C + K(C+1)$ |
| full fine-tuning | everything | all of $\theta$ and the head |
| LoRA | low-rank updates $B A$ beside frozen weights, the head | $r(\text{in} + \text{out})$ per adapted matrix |

A *from-scratch* model — the same architecture trained from a random initialisation — is the
control: whatever the pretrained models do better is what pretraining contributed.

## The code

`GPTClassifier` wraps a `GPT` backbone. `features` computes $h$; padded batches are handled by
moving the real tokens of each row to the front first, so every passage is read from position 0,
as in pretraining:
"""),
code(r"""
show(GPTClassifier.features)
"""),
md(r"""
`freeze` chooses what trains, by switching `requires_grad`; frozen parameters get no gradient, so
the optimizer leaves them out (no update, no weight decay):
"""),
code(r"""
show(freeze)
"""),
md(r"""
The training loop, `finetune`, is pretraining's step — AdamW, warm-up and cosine schedule, gradient
clipping, from `gptlib.pretrain` — with batches of labelled passages instead of windows of text.

## LoRA: a low-rank update beside a frozen matrix

Full fine-tuning stores a new copy of every weight for every task. LoRA {cite:p}`hu2022lora` keeps
each pretrained matrix $W \in \mathbb{R}^{\text{out} \times \text{in}}$ frozen and learns a
low-rank correction to it:

$$
y = W x + \frac{\alpha}{r}\, B A x, \qquad A \in \mathbb{R}^{r \times \text{in}},\;
B \in \mathbb{R}^{\text{out} \times r},\; r \ll \min(\text{in}, \text{out}).
$$

$A$ starts random and $B$ at zero, so at the start $BA = 0$ and the adapted model computes
*exactly* what the pretrained one does; training moves $r(\text{in} + \text{out})$ numbers per
matrix instead of $\text{in} \cdot \text{out}$. The factor $\alpha/r$ keeps the update's size
comparable when $r$ changes. After training, $W + \frac{\alpha}{r} BA$ is again one
$\text{out} \times \text{in}$ matrix: merged, the fine-tuned model is a plain model and costs
nothing extra to run. (LoRA is one of several *parameter-efficient* methods; adapters
{cite:p}`houlsby2019parameter` insert small trainable layers instead.) Here is `gptlib`'s layer:
"""),
code(r"""
show(LoRALinear.forward)
"""),
code(r"""
show(LoRALinear.merge)
"""),
md(r"""
We load the book's pretrained model — 4 blocks of width $C = 128$, a context of 128 characters,
trained on the 26 training plays (`data/README.md`) — and put LoRA on the attention's two matrices
in every block, `c_attn` ($C \to 3C$: queries, keys and values) and `c_proj` ($C \to C$), with
$r = 8$, $\alpha = 16$.

**Prove it.** With $B = 0$ the adapted model's logits equal the pretrained model's; after a change
to $B$ (as training would make), merging gives a plain model with the same outputs.
"""),
code(r"""
SHIPPED = data_dir() / "pretrained" / "shakespeare_char"
pretrained, tok = load_backbone(SHIPPED)
C = pretrained.config.n_embd
print(pretrained.config)

adapted = apply_lora(load_backbone(pretrained)[0], r=8, alpha=16,
                     generator=torch.Generator().manual_seed(0))
layer = adapted.h[0].attn.c_attn
print(layer)
print("W:", tuple(layer.base.weight.shape), " A:", tuple(layer.lora_A.shape),
      " B:", tuple(layer.lora_B.shape), " scale alpha/r:", layer.scale)

x = torch.tensor([tok.encode("Now is the winter of our discontent")])
with torch.no_grad():
    same = torch.equal(adapted(x)[0], pretrained(x)[0])
    for p in lora_parameters(adapted):
        if p.shape[1] == 8:                       # every B: (out, r)
            p.normal_(0, 0.02, generator=torch.Generator().manual_seed(p.shape[0]))
    changed = adapted(x)[0]
    merged = merge_lora(adapted)
    merged_out = merged(x)[0]
print("B = 0: outputs identical to the pretrained model:", same)
print("B != 0: outputs change:", not torch.allclose(changed, pretrained(x)[0], atol=1e-3))
print("merged into plain nn.Linear:", type(merged.h[0].attn.c_attn).__name__,
      "| same outputs:", torch.allclose(merged_out, changed, atol=1e-5))
assert same and torch.allclose(merged_out, changed, atol=1e-5)
assert not any(isinstance(m, LoRALinear) for m in merged.modules())
"""),
md(r"""
Counting: each block has one $128 \times 384$ and one $128 \times 128$ adapted matrix, so LoRA adds
$8(128 + 384) + 8(128 + 128) = 6{,}144$ numbers per block, against $12C^2 + 13C = 198{,}272$
parameters in the block itself.
"""),
code(r"""
n_lora = sum(p.numel() for p in lora_parameters(adapted))
per_block = 8 * (C + 3 * C) + 8 * (C + C)
print(f"LoRA parameters: {n_lora:,} = {pretrained.config.n_layer} blocks x {per_block:,}")
print(f"the pretrained model: {pretrained.num_parameters():,}  ({n_lora / pretrained.num_parameters():.1%})")
assert n_lora == pretrained.config.n_layer * per_block
"""),
md(r"""
## Task 1: the genre of a passage

The corpus is split *by play*: the 26 training plays, and validation and test splits of six plays
each that no model in this book has trained on. The source of the corpus files each play in one of
six folders — comedies, histories, problem plays, Roman plays, romances, tragedies — and the
validation and test splits hold one play of each. Six classes would therefore be judged on one
test play per class: a score that says more about six particular plays than about genres. So we
merge them into three classes (`THREE_CLASSES`): the problem plays and the romances are comedies in
form (they end in marriage or reconciliation, not death), and the Roman plays are tragedies.
"""),
code(r"""
for split in ("train", "test"):
    print(f"{split}:")
    for name, genres in THREE_CLASSES.items():
        titles = [p.title for p in load_plays(split) if p.genre in genres]
        print(f"  {name:<8} {len(titles):>2} plays: {', '.join(titles) if len(titles) < 5 else '...'}")
"""),
md(r"""
A passage is 128 characters — the model's whole context — starting at a line. We draw a balanced
training set from the training plays, and evaluate on 600 passages of the six *test* plays, 200 per
class, so that no play is on both sides. With 600 passages an accuracy is known to about
$\pm 2$ percentage points (one standard error, $\sqrt{p(1-p)/600}$); chance is $1/3$.
"""),
code(r"""
train_set = genre_dataset("train", tok, THREE_CLASSES, n_per_class=1000, passage_chars=128, seed=0)
test_set = genre_dataset("test", tok, THREE_CLASSES, n_per_class=200, passage_chars=128, seed=1)
print(f"train: {len(train_set)} passages from {len(set(train_set.sources))} plays; "
      f"test: {len(test_set)} passages from {len(set(test_set.sources))} plays")
print("plays in both:", set(train_set.sources) & set(test_set.sources))
print("class counts in test:", torch.bincount(test_set.labels).tolist())
i = test_set.texts.index(next(t for t, s in zip(test_set.texts, test_set.sources) if s == "richard-ii"))
print(f"\n[{test_set.classes[test_set.labels[i]]}, {test_set.sources[i]}]\n{test_set.texts[i]}")
assert not set(train_set.sources) & set(test_set.sources)
"""),
md(r"""
### Five ways to spend the same budget

Every run below gets the same budget: `STEPS` optimizer steps of `BATCH` passages (printed below
the table), the same seed and hence the same batches, the same warm-up and cosine schedule, and mean
pooling (exercise 2 tries the last token instead).
Only the starting point, what trains, and the peak learning rate differ: methods that train few,
freshly initialised parameters (the head, LoRA's factors) are given a larger one, as is usual.
"""),
code(r"""
STEPS, BATCH = 100, 8
METHODS = {  # name: (start from the pretrained weights?, freeze mode, k, peak learning rate)
    "from scratch": (False, "all", None, 2e-3),
    "head only": (True, "head", None, 1e-2),
    "last block": (True, "last_k", 1, 2e-3),
    "full fine-tuning": (True, "all", None, 2e-3),
    "LoRA (r = 8)": (True, "lora", None, 5e-3),
}


def make_classifier(pretrained_start, mode, k, seed=0):
    set_seed(seed)
    backbone = load_backbone(pretrained)[0] if pretrained_start else GPT(pretrained.config)
    if mode == "lora":
        apply_lora(backbone, r=8, alpha=16, generator=torch.Generator().manual_seed(seed))
    return freeze(GPTClassifier(backbone, len(THREE_CLASSES), pooling="mean"), mode, k)


def config(lr, seed=0):
    return TrainConfig(steps=STEPS, batch_size=BATCH, block_size=128, lr=lr, min_lr=lr / 10,
                       warmup_steps=STEPS // 10, weight_decay=0.0, seed=seed)


runs = {}
for name, (pretrained_start, mode, k, lr) in METHODS.items():
    clf = make_classifier(pretrained_start, mode, k)
    result = finetune(clf, train_set, config(lr))
    runs[name] = {"model": clf, "history": result.history, "time_s": result.elapsed_s,
                  "trainable": count_trainable(clf), "test": evaluate_classifier(clf, test_set)}
for name, run in runs.items():
    print(f"{name:<18} trained in {run['time_s']:5.1f} s")
""", "nbval-ignore-output"),
code(r"""
n_test = len(test_set)
print(f"budget: {STEPS} steps x {BATCH} passages = {STEPS * BATCH} passages seen, seed 0")
print(f"{'method':<18}{'trainable parameters':>22}{'test accuracy':>16}{'correct':>10}")
for name, run in runs.items():
    correct = run["test"]["confusion"].trace().item()
    print(f"{name:<18}{run['trainable']:>22,}{correct / n_test:>16.1%}{correct:>6}/{n_test}")
acc = {name: run["test"]["accuracy"] for name, run in runs.items()}
assert runs["head only"]["trainable"] == 3 * (C + 1)
assert runs["LoRA (r = 8)"]["trainable"] == n_lora + 3 * (C + 1)
assert runs["full fine-tuning"]["trainable"] == pretrained.num_parameters() + 3 * (C + 1)
""", "nbval-ignore-output"),
md(r"""
(The table is not compared by the notebook tests: training every weight at these rates amplifies
the last-bit differences between CPUs: with PyTorch's generic CPU kernels instead of the vector ones
(`ATEN_CPU_CAPABILITY=default`), full fine-tuning scored a few
passages differently. The claims below are asserted.)

**Prove it.** Starting from the pretrained weights beats starting from random ones by a clear
margin: the best pretrained start, training the last block, is asserted to beat from scratch by
8 percentage points, four standard errors of a 600-passage accuracy:
"""),
code(r"""
best = max((n for n in acc if n != "from scratch"), key=acc.get)
print(f"from scratch: {acc['from scratch']:.1%}   best pretrained start ({best}): {acc[best]:.1%}")
print("last block beats from scratch by >= 8 points:", acc["last block"] - acc["from scratch"] >= 0.08)
assert best == "last block" and acc["last block"] - acc["from scratch"] >= 0.08
"""),
md(r"""
The wall-clock time of each run (not compared by the tests: it depends on the machine). Training
fewer parameters saves the backward pass through the frozen part only where nothing below needs a
gradient: the head-only run never goes backward into the network, but LoRA's adapters sit in every
block, so its backward pass goes through every block too.
"""),
code(r"""
for name, run in runs.items():
    print(f"{name:<18}{run['time_s']:6.1f} s")
""", "nbval-ignore-output"),
md(r"""
### See it: the learning curves and the confusions
"""),
code(r"""
def smooth(values, n=10):
    return [sum(values[max(0, i - n + 1):i + 1]) / len(values[max(0, i - n + 1):i + 1])
            for i in range(len(values))]


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
for name, run in runs.items():
    steps = [r["step"] for r in run["history"]]
    ax1.plot(steps, smooth([r["train_loss"] for r in run["history"]]), label=name)
    ax2.plot(steps, smooth([r["train_accuracy"] for r in run["history"]]), label=name)
ax1.axhline(torch.log(torch.tensor(3.0)).item(), color="grey", ls=":", lw=1)
ax1.set(xlabel="step", ylabel="training loss (10-step mean)", title="loss; dotted: ln 3 (chance)")
ax2.axhline(1 / 3, color="grey", ls=":", lw=1)
ax2.set(xlabel="step", ylabel="training accuracy (10-step mean)", title="accuracy on the batches")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()
"""),
code(r"""
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, name in zip(axes, ("from scratch", best)):
    m = runs[name]["test"]["confusion"]
    ax.imshow(m, cmap="Blues", vmin=0, vmax=200)
    for i in range(3):
        for j in range(3):
            ax.text(j, i, int(m[i, j]), ha="center", va="center",
                    color="white" if m[i, j] > 120 else "black")
    ax.set_xticks(range(3), test_set.classes)
    ax.set_yticks(range(3), test_set.classes)
    ax.set(xlabel="predicted", ylabel="true", title=f"{name}: {acc[name]:.1%}")
plt.tight_layout()
plt.show()
"""),
md(r"""
Per held-out play, for the best method: how often its passages got their play's class.
"""),
code(r"""
best_model = runs[best]["model"]
with torch.no_grad():
    idx, mask, labels = test_set.batch(torch.arange(n_test))
    pred = best_model(idx, mask)[0].argmax(-1)
for slug in dict.fromkeys(test_set.sources):
    rows = torch.tensor([s == slug for s in test_set.sources])
    right = (pred[rows] == labels[rows]).sum().item()
    print(f"{slug:<28}{test_set.classes[labels[rows][0]]:<9}{right:>4}/{rows.sum().item():<4}"
          f"{right / rows.sum().item():6.1%}")
assert (pred == labels).sum().item() == runs[best]["test"]["confusion"].trace().item()
"""),
md(r"""
What the runs show, each claim asserted in the next cell: the model trained from scratch is still
at chance after this budget, its test predictions piled on one class; every pretrained start is
above it; and training inside the network (the last block, LoRA, everything) beats training the
head alone. The pretrained features are not a finished genre detector — a linear probe on them is
the weakest pretrained start — but they are a far better place to start from than random weights.
Nor is the task easy: 128 characters of an unseen play are a few lines of verse or prose, and the
best accuracy here is well below 60%.
"""),
code(r"""
scratch_pred = runs["from scratch"]["test"]["confusion"].sum(0)
print(f"from scratch: {acc['from scratch']:.1%}; its most-predicted class gets "
      f"{scratch_pred.max().item()} of {n_test} passages")
pretrained_starts = [n for n in acc if n != "from scratch"]
print("every pretrained start beats from scratch:",
      all(acc[n] > acc["from scratch"] for n in pretrained_starts))
print("head only is the weakest pretrained start:",
      acc["head only"] < min(acc[n] for n in pretrained_starts if n != "head only"))
assert acc["from scratch"] < 0.40 and scratch_pred.max().item() > 0.8 * n_test
assert all(acc[n] > acc["from scratch"] for n in pretrained_starts)
assert acc["head only"] < min(acc[n] for n in pretrained_starts if n != "head only")
assert max(acc.values()) < 0.60
"""),
md(r"""

## Task 2: fine-tuning the language model itself

A classifier needs a head; adapting the *language model* to new text needs nothing new at all —
the same loss, the same loop (`gptlib.pretrain.train`), on the new text. Our new text: the speeches
of one character, Sir John Falstaff, in the two parts of *Henry IV*; and to see whether the model
learned *him* rather than those two plays, we measure on his speeches in another play, *The Merry
Wives of Windsor*. (All three plays are training plays, so pretraining saw these lines among 3.5
million other characters; fine-tuning makes them the whole world.)

Catastrophic forgetting {cite:p}`mccloskey1989catastrophic` is what a network loses of its old
skill while it trains on the new one. We measure it as the change of the loss on the held-out
plays of the validation split: a fixed sample, the first 4,096 characters (32 windows of 128) of
each of its six plays, scored with `dataset_loss`, which predicts every character of the sample
once. (The shipped model's training log ends with an estimate on random validation windows; the
sample's loss is close to it.)
"""),
code(r"""
plays = {p.slug: p for p in load_plays()}


def speeches(slug, speaker="FALSTAFF"):
    pattern = rf"^{speaker}:\n.*?(?=\n\n|\Z)"
    return [m.group(0) for m in re.finditer(pattern, plays[slug].text, re.S | re.M)]


falstaff_train = "\n\n".join(speeches("henry-iv-part-1") + speeches("henry-iv-part-2")) + "\n\n"
falstaff_target = "\n\n".join(speeches("the-merry-wives-of-windsor")) + "\n\n"
falstaff_ids, target_ids = encode_text(falstaff_train, tok), encode_text(falstaff_target, tok)
val_sample = {p.slug: encode_text(p.text[:32 * 128 + 1], tok) for p in load_plays("val")}
print(f"fine-tuning text: {len(falstaff_train):,} characters; target text: {len(falstaff_target):,}")
print(falstaff_train[:300])


def losses(model):
    val = {slug: dataset_loss(model, ids, 128) for slug, ids in val_sample.items()}
    return {"val": sum(val.values()) / len(val), "target": dataset_loss(model, target_ids, 128),
            "per_play": val}


before = losses(pretrained)
log = (SHIPPED / "train_log.csv").read_text().split()
logged_val = float(log[-1].split(",")[log[0].split(",").index("val_loss")])
print(f"\npretrained: val sample {before['val']:.3f} (training log's estimate: {logged_val:.3f}), "
      f"Falstaff (Merry Wives) {before['target']:.3f}")
assert abs(before["val"] - logged_val) < 0.1
"""),
md(r"""
Now the same 40 steps of 8 windows of 128 characters (about 41,000 characters, two-thirds of the
Falstaff text) twice: full fine-tuning, and LoRA with $r = 8$ on the attention matrices, the
output layer frozen as in {cite:t}`hu2022lora`. The pretrained model ended its training at a
learning rate of $2 \times 10^{-4}$; full fine-tuning continues at a similar $3 \times 10^{-4}$,
and LoRA's zero-initialised factors get $3 \times 10^{-3}$.
"""),
code(r"""
GEN_STEPS = 40
gen_runs = {}
for name, lr in (("full fine-tuning", 3e-4), ("LoRA (r = 8)", 3e-3)):
    set_seed(0)
    lm = load_backbone(pretrained)[0]
    if name.startswith("LoRA"):
        freeze(apply_lora(lm, r=8, alpha=16, generator=torch.Generator().manual_seed(0)), "lora")
    cfg = TrainConfig(steps=GEN_STEPS, batch_size=8, block_size=128, lr=lr, min_lr=lr / 10,
                      warmup_steps=4, seed=0)
    result = train(lm, falstaff_ids, cfg)
    gen_runs[name] = {"model": lm, "trainable": count_trainable(lm), "time_s": result.elapsed_s,
                      **losses(lm)}
    print(f"{name:<18} {result.elapsed_s:5.1f} s")
""", "nbval-ignore-output"),
code(r"""
print(f"{'':<18}{'trainable':>11}{'Falstaff (Merry Wives)':>24}{'val sample':>12}")
print(f"{'pretrained':<18}{'':>11}{before['target']:>24.3f}{before['val']:>12.3f}")
for name, run in gen_runs.items():
    print(f"{name:<18}{run['trainable']:>11,}{run['target']:>24.3f}{run['val']:>12.3f}")
print()
for name, run in gen_runs.items():
    gain, forgot = before["target"] - run["target"], run["val"] - before["val"]
    print(f"{name:<18} target improved by {gain:.3f} nats/char; val loss rose by {forgot:.3f} "
          f"({forgot / gain:.2f} nats of forgetting per nat gained)")
full_ft, lora_ft = gen_runs["full fine-tuning"], gen_runs["LoRA (r = 8)"]
print("LoRA forgot less than full fine-tuning:",
      lora_ft["val"] - before["val"] < full_ft["val"] - before["val"])
for run in (full_ft, lora_ft):
    assert run["target"] < before["target"] - 0.01                         # better on Falstaff
    assert run["val"] - before["val"] > before["target"] - run["target"]   # lost more than gained
"""),
md(r"""
Both runs moved the model towards Falstaff on a play they did not train on, and both paid for it on
the held-out plays: measured in nats, the model lost more on the validation plays than it gained
on the target. Which method forgot less is printed above: LoRA changes far fewer numbers, but
fewer numbers changed is not the same as less forgetting — it has to be measured. The rise is not
uniform across plays:
"""),
code(r"""
names = list(before["per_play"])
fig, ax = plt.subplots(figsize=(9, 3.2))
for i, (name, run) in enumerate(gen_runs.items()):
    rise = [run["per_play"][s] - before["per_play"][s] for s in names]
    ax.bar([j + 0.38 * i for j in range(len(names))], rise, width=0.38, label=name)
ax.axhline(0, color="black", lw=0.8)
ax.set_xticks([j + 0.19 for j in range(len(names))],
              [plays[s].title.replace("The ", "") for s in names], fontsize=8)
ax.set_ylabel("change of the loss (nats/char)")
ax.set_title("Forgetting, play by play: the validation plays after fine-tuning on Falstaff")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
"""),
md(r"""
Samples from the same seed and prompt, before and after. (Fixed seeds make them reproducible;
any single sample is one draw, and the losses above are the measurement.)
"""),
code(r"""
prompt = "\n\n"
for name, model in (("pretrained", pretrained), ("full fine-tuning", full_ft["model"])):
    text = generate_text(model, tok, prompt, 240, generator=torch.Generator().manual_seed(1))
    print(f"--- {name} ---{text}\n")
"""),
md(r"""
## Loading GPT-2's weights the right way

A pretrained model is a set of weights *and* the architecture they belong to. Fine-tuning GPT-2
therefore means: build the GPT-2 architecture, load GPT-2's weights into it, add a head, train.
`load_backbone` accepts a directory written by Hugging Face's `save_pretrained` (reading its
`config.json` and safetensors weights; no pickles) and returns a `gptlib` GPT. Downloading the
real GPT-2 needs the network, so we build a small GPT-2 with random weights locally, save it,
load it, check the two compute the same logits, and fine-tune it on our genre task for a step.
Its vocabulary is our 70 characters, so our passages are valid input.
"""),
code(r"""
set_seed(0)
V = tok.vocab_size
hf_model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=128, n_layer=2, n_head=2,
                                      n_embd=32, bos_token_id=V - 1, eos_token_id=V - 1)).eval()
with tempfile.TemporaryDirectory() as directory:
    hf_model.save_pretrained(directory)
    print("saved:", sorted(os.listdir(directory)))
    gpt2_backbone, _ = load_backbone(directory)
idx, mask, labels = train_set.batch(torch.arange(8))
with torch.no_grad():
    diff = (gpt2_backbone(idx)[0] - hf_model(idx).logits).abs().max().item()
print(type(gpt2_backbone).__name__, gpt2_backbone.config)
print("same logits as Hugging Face's GPT-2:", diff < 1e-5)
assert diff < 1e-5

gpt2_clf = GPTClassifier(gpt2_backbone, 3, pooling="mean")
before_step = {n: p.detach().clone() for n, p in gpt2_clf.named_parameters()}
result = finetune(gpt2_clf, train_set, TrainConfig(steps=1, batch_size=8, block_size=128, lr=1e-3))
moved = sum(not torch.equal(p, before_step[n]) for n, p in gpt2_clf.named_parameters())
print(f"one fine-tuning step: loss {result.final_train_loss:.2f}; "
      f"{moved} of {len(before_step)} parameter tensors changed")
assert moved == len(before_step)
"""),
md(r"""
## Play with it

Type or paste a passage: the explorer shows the genre probabilities of this chapter's best
classifier (at most the last 128 characters are read; characters outside the model's 70 are
dropped). The box needs a running notebook; the HTML book shows the explorer as it was saved, and
the figure below it shows the probabilities for one test passage of each class.
"""),
code(r"""
def genre_probabilities(model, text):
    ids = [tok.stoi[c] for c in text if c in tok.stoi][-128:]
    if not ids:
        return None
    with torch.no_grad():
        return torch.softmax(model(torch.tensor([ids]))[0][0], -1)


def genre_explorer(model, text):
    box = widgets.Textarea(value=text, layout=widgets.Layout(width="95%", height="7em"))
    out = widgets.HTML()

    def update(change=None):
        probs = genre_probabilities(model, box.value)
        if probs is None:
            out.value = "<p>Type some text.</p>"
            return
        rows = "".join(
            f"<tr><td style='padding-right:8px'>{name}</td><td style='width:260px'>"
            f"<div style='background:#4c72b0;height:14px;width:{round(260 * p)}px'></div></td>"
            f"<td style='padding-left:8px'>{round(100 * p)}%</td></tr>"
            for name, p in zip(test_set.classes, probs.tolist()))
        out.value = f"<table>{rows}</table>"

    box.observe(update, names="value")
    update()
    return widgets.VBox([box, out])


genre_explorer(best_model, "KING HENRY IV:\nSo shaken as we are, so wan with care,\n"
                           "Find we a time for frighted peace to pant,")
"""),
code(r"""
examples = [next(i for i, l in enumerate(test_set.labels.tolist()) if l == k) for k in range(3)]
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
for ax, i in zip(axes, examples):
    probs = genre_probabilities(best_model, test_set.texts[i])
    ax.bar(test_set.classes, probs.tolist(), color=["C0", "C1", "C2"])
    ax.set_title(f"{test_set.sources[i]} ({test_set.classes[test_set.labels[i]]})", fontsize=9)
    ax.text(0.02, 0.97, test_set.texts[i][:70].replace("\n", " / ") + "...", transform=ax.transAxes,
            fontsize=6.5, va="top", wrap=True)
    ax.set_ylim(0, 1.15)
axes[0].set_ylabel("probability")
plt.tight_layout()
plt.show()
"""),
md(r"""
## Common misconception

```{admonition} Common misconception: "initialise by generating outputs with the pretrained model, then freeze them"
:class: warning

A widely circulated explanation of GPT-3 describes "pretrain, then fine-tune" like this (translated
from Chinese): "the authors suggest that during training, one randomly selects some input
sequences, randomly samples some words, uses the pretrained model to *generate results* for these
sequences, and takes these as the initialisation. This is in effect a kind of *frozen training*
that discards part of the data." It goes on to recommend "directly using the pretrained model's
*results* as the initialisation", and illustrates it with code that runs GPT-2 once under
`torch.no_grad()` and keeps its hidden states as numpy arrays.

That is not what initialising from a pretrained model means. What is carried over is the
**weights** — every matrix of the network — not outputs the network generated. Fine-tuning loads
those weights into the *same architecture*, puts a head on top if the task needs one, and trains
with ordinary gradient descent on the new task's data: every parameter (full fine-tuning), some of
them (the last blocks, the head), or small adapters beside frozen weights (LoRA). This is how GPT
{cite:p}`radford2018improving` and ULMFiT {cite:p}`howard2018universal` did it, and everything in
this chapter is an instance of it. Nothing generated by the pretrained model is used, and no data
is discarded. Features computed once under `no_grad` and kept fixed do exist as a method — it is
the *head only* row of the table above, a linear probe — but it is the weakest of the four starts
here, not the definition of fine-tuning. (The code has its own bugs: GPT-2's forward pass has no
`past=` argument, so it is swallowed silently — chapter 6 — and the hidden states are only
returned when asked for with `output_hidden_states=True`.)
```

The cells below check the chapter's fine-tuned classifiers against that description: the runs
*started* from the pretrained weights, the head-only run left every one of them untouched, and full
fine-tuning moved every one of them.
"""),
code(r"""
start = dict(pretrained.named_parameters())
for name in ("head only", "full fine-tuning"):
    backbone = runs[name]["model"].backbone
    moved = [n for n, p in backbone.named_parameters() if not torch.equal(p, start[n])]
    print(f"{name:<18} backbone tensors changed: {len(moved)} of {len(start)}")
head_backbone = runs["head only"]["model"].backbone
full_backbone = runs["full fine-tuning"]["model"].backbone
assert all(torch.equal(p, start[n]) for n, p in head_backbone.named_parameters())
assert all(not torch.equal(p, start[n]) for n, p in full_backbone.named_parameters())
"""),
md(r"""
## Exercises

**Exercise 1.** GPT-2 small has $L = 12$ blocks of width $C = 768$. How many parameters does LoRA
with $r = 8$ add when it adapts `c_attn` and `c_proj` in every block? What fraction of GPT-2
small's 124,439,808 is that? Check with `apply_lora` on a GPT-2-small `GPT` built on the meta
device.
"""),
code(r"""
# Solution
from gptlib.model import GPTConfig

Cg, Lg, r = 768, 12, 8
by_hand = Lg * (r * (Cg + 3 * Cg) + r * (Cg + Cg))
with torch.device("meta"):
    small = apply_lora(GPT(GPTConfig()), r=r)
counted = sum(p.numel() for p in lora_parameters(small))
print(f"LoRA r=8 on GPT-2 small: {by_hand:,} parameters, {by_hand / 124_439_808:.2%} of the model")
assert by_hand == counted == 442_368
""", "hide-cell"),
md(r"""
**Exercise 2.** The chapter used mean pooling. Train the *last block* method again with
`pooling="last"` (everything else the same) and compare the test accuracy.
"""),
code(r"""
# Solution
set_seed(0)
last_clf = freeze(GPTClassifier(load_backbone(pretrained)[0], 3, pooling="last"), "last_k", 1)
finetune(last_clf, train_set, config(METHODS["last block"][3]))
acc_last = evaluate_classifier(last_clf, test_set)["accuracy"]
print(f"last block, last-token pooling: {acc_last:.1%}   mean pooling: {acc['last block']:.1%}")
assert acc_last < acc["last block"]
""", "hide-cell"),
md(r"""
**Exercise 3.** Merge the Falstaff LoRA model (`merge_lora`) and check that it is a plain `GPT`
with no `LoRALinear` left, the same size as the pretrained model, and the same loss on the target
text as the unmerged one.
"""),
code(r"""
# Solution
merged_lm = merge_lora(lora_ft["model"])
assert not any(isinstance(m, LoRALinear) for m in merged_lm.modules())
assert merged_lm.num_parameters() == pretrained.num_parameters()
merged_loss = dataset_loss(merged_lm, target_ids, 128)
print(f"target loss: LoRA {lora_ft['target']:.3f}, merged {merged_loss:.3f}")
assert abs(merged_loss - lora_ft["target"]) < 1e-4
""", "hide-cell"),
md(r"""
## Key points

- Fine-tuning starts from the pretrained *weights*, loaded into the same architecture; a task head
  is added if needed, and training continues with the same loss machinery and loop. Nothing the
  pretrained model generated is used.
- What differs between methods is which parameters train: the head only (a linear probe), the last
  blocks, everything, or LoRA's low-rank factors $B A$ (zero at the start, mergeable at the end).
- On genre classification of held-out plays, under one small budget, starting from the pretrained
  weights beat the same network trained from scratch; training some of the network beat training
  the head alone.
- Fine-tuning a language model on narrow text improves it there and costs it elsewhere: the loss on
  the held-out plays rises (catastrophic forgetting). Measure both.
- GPT-2's weights load into `gptlib` from a `save_pretrained` directory and compute the same logits
  as Hugging Face's model; from there fine-tuning is the same as for the book's own model.

## References

GPT's fine-tuning recipe {cite:p}`radford2018improving`, and GPT-2 {cite:p}`radford2019language`;
ULMFiT {cite:p}`howard2018universal`; BERT {cite:p}`devlin2019bert`; LoRA {cite:p}`hu2022lora`;
adapters {cite:p}`houlsby2019parameter`; catastrophic forgetting
{cite:p}`mccloskey1989catastrophic,kirkpatrick2017overcoming`; AdamW
{cite:p}`loshchilov2019decoupled`. Full entries are on the [References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "08_finetune.ipynb", CELLS)
