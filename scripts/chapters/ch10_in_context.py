"""Source of chapters/10_in_context.ipynb. Edit here, then:

    python scripts/chapters/ch10_in_context.py && python scripts/run_notebooks.py chapters/10_in_context.ipynb

Uses the shipped models data/pretrained/induction_1l, induction_2l, fewshot_small, fewshot_large
(configs/*.json, see data/README.md) and data/results/few_shot.json
(scripts/experiments/few_shot.py).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 10. In-context learning: GPT-3's result, built and taken apart

**Why.** GPT-3's paper is called *Language Models are Few-Shot Learners*
{cite:p}`brown2020language`. Its result is that a large enough language model can do a task it
was never trained for from a few examples written into its prompt — with no gradient step, no
change to a single weight. The "learning" happens inside one forward pass, in the activations.
That sounds like magic until one finds a mechanism that does it. This chapter builds the
simplest one, the *induction head* {cite:p}`elhage2021mathematical,olsson2022context`, in
transformers small enough to train on a CPU in minutes, and takes the trained models apart with
the tools that find such heads — attention patterns, per-head scores, ablations. (A two-layer
model forms them within a minute of training, in a sudden phase change; a one-layer model
cannot.) It then trains small models on a family of tasks, each sequence with its own secret rule, to see
accuracy rise with the number of examples in the context while the weights stay fixed.
"""),
code(r"""
import hashlib

import matplotlib.pyplot as plt
import torch

from gptlib import set_seed, show
from gptlib.checkpoint import load_pretrained
from gptlib.data import data_dir
from gptlib.interp import (
    ablate_heads,
    attention_patterns,
    head_scores,
    induction_score,
    k_composition,
    logits_with_input_removed,
    previous_token_score,
    record_attention,
)
from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import train
from gptlib.runconfig import load_run_config, read_log
from gptlib.synthetic import (
    FewShotRule,
    RepeatedSegments,
    SequenceTask,
    gpt3_prompt,
    per_token_loss,
)
from gptlib.viz.in_context import (
    in_context_explorer,
    plot_last_token,
    plot_patterns,
)

torch.set_num_threads(1)  # a fixed count: results must not depend on the
# machine's cores
plt.rcParams["figure.dpi"] = 90
PRETRAINED = data_dir() / "pretrained"
ROOT = data_dir().parent
"""),
md(r"""
## 1. GPT-3's framing: zero-, one- and few-shot

Brown et al. evaluate GPT-3 (175 billion parameters, 96 layers, a context of 2,048 tokens) in
three settings, defined in their Figure 2.1 with an English-to-French example. The prompt is a
task description, then $K$ demonstrations, then the query; the model continues the text:

- **zero-shot** ($K = 0$): only the description and the query;
- **one-shot** ($K = 1$): one demonstration;
- **few-shot**: as many as fit in the context, typically $K = 10$ to $100$.

The same figure contrasts them with **fine-tuning**, where every training example is a gradient
update of the weights. In zero-, one- and few-shot use *no* weight changes: the demonstrations are
only text that the model reads. Here are the formats, built by a small function:
"""),
code(r"""
show(gpt3_prompt)
"""),
code(r"""
shots = [
    ("sea otter", "loutre de mer"),
    ("peppermint", "menthe poivrée"),
    ("plush girafe", "girafe peluche"),
]
for k, name in ((0, "zero-shot"), (1, "one-shot"), (3, "few-shot")):
    print(f"--- {name}")
    print(gpt3_prompt("Translate English to French:", shots[:k], "cheese"))
"""),
md(r"""
GPT-3's headline numbers (175B model, accuracy in %, their Tables 3.2 and 3.3) rise with $K$ on
most tasks; on LAMBADA the one-shot score is *below* the zero-shot one, which the authors put down
to the format being unclear from one example:

| task | zero-shot | one-shot | few-shot | state of the art before GPT-3 |
| --- | --- | --- | --- | --- |
| LAMBADA (last word of a passage) | 76.2 | 72.5 | 86.4 | 68.0 |
| TriviaQA (closed-book questions) | 64.3 | 68.0 | 71.2 | 68.0 |

(The last column is the paper's own comparison. LAMBADA's 68.0 is Turing-NLG, itself a language
model, not a fine-tuned one; TriviaQA's 68.0 is RAG, fine-tuned *and* reading retrieved documents,
so open-domain rather than closed-book.)

Their Figure 1.2 draws the chapter's other theme: on a simple task (removing random symbols from
a word), accuracy grows with the number of examples in the context much faster for the 175B model
than for the 1.3B one — "larger models make increasingly efficient use of in-context
information". Section 4 of this chapter measures that shape at toy scale.

What changes with $K$ is only the input. The cell below shows it in the smallest possible case,
with a model shipped with the book (section 4 tells how it was trained): a random letter
substitution $f$ of the letters `a`–`h` into `A`–`H`, drawn at random for every sequence. (There
are only $8! = 40{,}320$ such rules, so about half of those drawn here also occurred somewhere in
training; but nothing in a sequence says which rule it uses until its demonstrations are read.) Each demonstration is two tokens, a question `x?` and its answer
`x->f(x)` (one token, like one word of a prompt). We score the model's answer to the question
after $K$ earlier demonstrations (one trained model, seed 0), and hash every weight before and
after: a demonstration rather than a test, since evaluating a PyTorch model never changes its
weights, but it makes the point of this chapter concrete — nothing but the prompt changed:
"""),
code(r"""
def weights_hash(model):
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().numpy().tobytes())
    return h.hexdigest()


fewshot, _, _ = load_pretrained(PRETRAINED / "fewshot_large")
family = FewShotRule(n_symbols=8, n_pairs=16)
# the 2,048 held-out sequences that section 4 scores every model on
batch = family.sample(2048, 31, torch.Generator().manual_seed(20_240))
before = weights_hash(fewshot)
_, logits = per_token_loss(fewshot, batch)
answers = logits.argmax(-1)[:, 0::2]  # the prediction after each question
right = answers == batch.tokens[:, 1::2]  # (2048, 16): pair i, after i shots
after = weights_hash(fewshot)
print("a prompt with K = 4:", family.describe(batch.tokens[0, :9]), "-> ?")
for k in (0, 1, 2, 4, 8, 15):
    print(f"K = {k:2d} shots: accuracy {right[:, k].float().mean():.2f}")
print("weights unchanged:", before == after)
"""),
code(r"""
acc = right.float().mean(0)
assert before == after  # in-context: no weight changed
assert abs(acc[0] - 1 / 8) < 0.05  # zero-shot: chance (1 in 8)
assert acc[1] > acc[0] + 0.05  # rises with the number of shots
assert acc[15] > acc[1] + 0.3
"""),
md(r"""
The rest of the chapter opens such models up to see *how* reading the prompt can do this.
"""),
md(r"""
## 2. Induction heads: the idea

Take a sequence in which something occurred before: `… r e d … r` . A good guess for the next
token is `e`, whatever `r` and `e` mean — look back for the earlier occurrence of the current
token and predict what followed it. Elhage et al. {cite:p}`elhage2021mathematical` found that
two-layer attention-only transformers implement exactly this rule with two heads in series, and
called the second one an **induction head**; Olsson et al. {cite:p}`olsson2022context` found
that such heads form abruptly during training, at the same time as most of a model's in-context
learning ability, and argued — with causal evidence for small attention-only models, only
correlational evidence for the large ones (up to 13 billion parameters) — that they carry much of
it.

Recall chapter 2: head $h$ of a layer reads the residual stream $X \in \mathbb{R}^{T \times C}$
(after `ln_1`) and computes

$$
\begin{gathered}
A^h = \operatorname{softmax}\!\Big(\operatorname{mask}\big(\tfrac{1}{\sqrt d}\,
X W_Q^{h} (X W_K^{h})^\top\big)\Big) \in \mathbb{R}^{T \times T}, \\
\text{out}^h = A^h X W_V^h W_O^h \in \mathbb{R}^{T \times C},
\end{gathered}
$$

with $W_Q^h, W_K^h, W_V^h \in \mathbb{R}^{C \times d}$, $W_O^h \in \mathbb{R}^{d \times C}$,
$d = C/H$. The output is *added* to the stream (chapter 4), so a later layer sees
$X + \sum_h \text{out}^h$. Our models use RoPE (chapter 5): the stream holds only token
embeddings, and positions enter the scores alone, by rotating each query and key by its
position, so that a score depends on position only through the offset $t - j$. Write $e_x$ for token $x$'s embedding.

1. **Previous-token head** (layer 0). Its queries and keys have a part that is the same for
   every token (a bias, or a direction all embeddings share); RoPE rotates that part by position,
   so the head can attend from $t$ to $t-1$ whatever the tokens: $A_{t,t-1} \approx 1$. It writes $e_{x_{t-1}} W_V W_O$, information about the
   *previous* token, into position $t$.
2. **Induction head** (layer 1). Its query at $t$ is made from the current token $x_t$; its keys
   at $j$ are made from the stream at $j$, which now holds the previous-token head's message
   about $x_{j-1}$. With $W_{QK} = W_Q W_K^\top$ and $W_{OV} = W_V W_O$, the part of the score
   that matters is (leaving out RoPE's rotation by $t - j$, which sits between $W_Q$ and
   $W_K^\top$)

   $$
   \text{score}(t, j) \;\ni\; e_{x_t}\, W_{QK}\, \big(e_{x_{j-1}} W_{OV}^{\text{prev}}\big)^\top ,
   $$

   large when $x_{j-1} = x_t$: the head attends to the token *after* an earlier occurrence of the
   current token. Its value at $j$ carries $x_j$, which its $W_{OV}$ turns into a vote for
   predicting $x_j$ next. Because the induction head's *keys* read what the earlier head wrote,
   this is called **K-composition**. One layer cannot do it: a key at $j$ made from $e_{x_j}$
   alone knows nothing about $x_{j-1}$.

A single layer *can* copy if the earlier occurrence sits at a fixed distance — it then attends by
position. So the training data must put the repeats at varying distances.

### The data

`RepeatedSegments` draws sequences of 65 tokens from a vocabulary of 64 (shown as `a`–`z`,
`A`–`Z`, `0`–`9`, `?`, `!`) in which a random segment of 8–32 tokens repeats. The models of this
section are trained on Olsson et al.'s *repeated random tokens* (`placement="tile"`): the segment
repeated end to end. Its length $L$, and so the distance between copies, changes from sequence to
sequence. The first copy cannot be predicted (at best $\ln 64 = 4.16$ nats per token); every
later one can, by looking back. A vocabulary of 64 rather than a few letters makes the look-up far less
ambiguous: a segment of average length (20 tokens) drawn from 16 letters holds on average only
11.6 distinct letters, so "what followed it last time" would often have several answers; drawn
from 64 tokens it holds 17.2. `placement="random"` puts one repeat of a
segment anywhere among random tokens, at any distance: section 3 tests the models on it, although
they never trained on it.
"""),
code(r"""
show(RepeatedSegments.sample)
"""),
code(r"""
repeats = RepeatedSegments(
    vocab_size=64, min_len=8, max_len=32, placement="tile"
)
example = repeats.sample(1, 64, torch.Generator().manual_seed(3))
tok = repeats.tokenizer()
L = int(example.info["length"][0])
print(tok.decode(example.tokens[0].tolist()))
print("^" * L + "~" * (65 - L), f"  a segment of {L}, then repeats of it")
once = RepeatedSegments(
    vocab_size=64, min_len=8, max_len=32, placement="random"
)
example = once.sample(1, 64, torch.Generator().manual_seed(3))
a, b, L = (int(example.info[k][0]) for k in ("a", "b", "length"))
print(tok.decode(example.tokens[0].tolist()))
print(" " * a + "^" * L + " " * (b - a - L) + "~" * L, "  placement='random'")
"""),
md(r"""
Training is the chapter-7 loop, `gptlib.pretrain.train`, with a task that draws fresh sequences
for every batch (no sequence is seen twice) and logs, at each evaluation, the loss on the first
and on the later copies of the segment, and Olsson et al.'s *in-context learning score*: the loss
on late tokens minus the loss on early ones (they use token 500 minus token 50 of natural text;
here the last 8 targets of 64 minus targets 1–8, counting from 0 — the very first target has no
context at all):
"""),
code(r"""
show(SequenceTask)
"""),
md(r"""
The models are attention-only, as in Elhage et al.: `GPTConfig(mlp=False)` drops each block's
MLP and its `ln_2`, so a block is $x \leftarrow x + \text{attn}(\text{ln}_1(x))$.
`python -m gptlib.pretrain --config configs/induction_2l.json` trained the shipped two-layer
model (width 64, 2 heads per layer, RoPE, 2,000 steps of 32 sequences, about a minute on one
core: 56 s in its log); `configs/induction_1l.json` the one-layer one, the same in every other respect. Here is
the start of the same run, live, checked against the shipped model's log — same config, same
seed, so the same batches and (to within 1e-4 nats) the same losses:
"""),
code(r"""
run = load_run_config(ROOT / "configs" / "induction_2l.json")
cfg = run["train"]
print("model:", run["model"])
print("data:", run["data"]["task"])
set_seed(cfg.seed)
live = GPT(GPTConfig(vocab_size=64, block_size=cfg.block_size, **run["model"]))
spec = {k: v for k, v in run["data"]["task"].items() if k != "name"}
source = RepeatedSegments(**spec)
result = train(
    live,
    source,
    cfg,
    source,
    task=SequenceTask(),
    callback=lambda r: r["step"] >= 100,
)  # the first 100 steps
shipped_log = read_log(PRETRAINED / "induction_2l" / "train_log.csv")
for r in result.history[24::25]:
    print(
        f"step {r['step']}: train loss {r['train_loss']:.4f}, shipped log "
        f"{shipped_log[r['step'] - 1]['train_loss']:.4f}"
    )
""", "nbval-ignore-output"),
code(r"""
ours = torch.tensor([r["train_loss"] for r in result.history])
theirs = torch.tensor([r["train_loss"] for r in shipped_log[:100]])
diff = (ours - theirs).abs().max().item()
print(
    len(ours),
    f"steps; largest difference from the shipped log: {diff:.1e} nats",
)
assert diff < 1e-4
"""),
md(r"""
## 3. Taking the models apart

### What an induction head looks like

Before opening a trained model, here are the two patterns the theory predicts, built by hand on
a segment of 32 tokens repeated once, and the scores `gptlib.interp` gives them. (`tests/
test_interp.py` checks these scores, and that the hooks below record exactly the attention a
model used.) The previous-token head is a line just below the diagonal; the induction head, in
the second copy, a line 31 below the diagonal (30 below the previous-token line) — each token looks at the token after its earlier
occurrence:
"""),
code(r"""
show(induction_score)
"""),
code(r"""
segment = torch.randint(
    64, (256, 32), generator=torch.Generator().manual_seed(7)
)
doubled = torch.cat([segment, segment], dim=1)  # (256, 64)
T = 64
ideal_prev = torch.zeros(T, T)
ideal_prev[0, 0] = 1.0
ideal_prev[torch.arange(1, T), torch.arange(T - 1)] = 1.0
ideal_ind = ideal_prev.clone()
ideal_ind[32:] = 0.0
ideal_ind[torch.arange(32, T), torch.arange(1, T - 31)] = 1.0  # t -> t - 31
ideal = torch.stack([ideal_prev, ideal_ind])[None]  # (1, 2, T, T)
print(
    "previous-token scores:",
    " ".join(f"{v:.2f}" for v in previous_token_score(ideal)),
)
ideal_scores = induction_score(ideal.expand(256, 2, T, T), doubled)
print("induction scores:     ", " ".join(f"{v:.2f}" for v in ideal_scores))
labels = list(tok.decode(doubled[0].tolist()))
plot_patterns(
    {
        "previous-token head (ideal)": ideal_prev,
        "induction head (ideal)": ideal_ind,
    },
    labels,
)
plt.show()
"""),
md(r"""
The ideal induction head scores 0.85, not 1: a query in the *first* copy whose token happens to
have occurred earlier in that copy (about 7 of the 32, with 64 tokens) also has an induction
target, and the ideal head still looks one back there. Both scores use only where a head looks,
so a head can be told apart by them without knowing anything else about the model.

### The phase change

The shipped log has the evaluation every 50 steps, on the same 256 held-out sequences. On the
first copy both models stay at or above $\ln 64 = 4.16$ (nothing can predict it; it rises *above*
chance because the models learn to bet on tokens that occurred before, which in the first copy is
a losing bet). On the repeats the two models part:
"""),
code(r"""
logs = {
    n: read_log(PRETRAINED / f"induction_{n}" / "train_log.csv")
    for n in ("1l", "2l")
}
evals = {n: [r for r in log if "repeat_loss" in r] for n, log in logs.items()}
fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
for n, style in (("2l", "-"), ("1l", "--")):
    steps = [r["step"] for r in evals[n]]
    ax.plot(
        steps,
        [r["first_loss"] for r in evals[n]],
        style,
        color="tab:gray",
        label=f"{n[0]} layer: first copy",
    )
    ax.plot(
        steps,
        [r["repeat_loss"] for r in evals[n]],
        style,
        color="tab:blue",
        label=f"{n[0]} layer: repeats",
    )
    bx.plot(
        steps,
        [r["icl_score"] for r in evals[n]],
        style,
        color="tab:red",
        label=f"{n[0]} layer",
    )
ax.set_xlabel("training step"), ax.set_ylabel("loss (nats per token)")
ax.set_title("held-out loss on the copies", fontsize=11)
bx.set_xlabel("training step")
bx.set_ylabel("late-token minus early-token loss")
bx.set_title("in-context learning score", fontsize=11)
ax.legend(fontsize=9), bx.legend(fontsize=9)
fig.tight_layout()
plt.show()
"""),
code(r"""
by_step = {n: {r["step"]: r for r in e} for n, e in evals.items()}
two_l = by_step["2l"]
change = next(s for s in sorted(two_l) if two_l[s]["repeat_loss"] < 1.0)
before, at = two_l[change - 150], two_l[change]
start = two_l[50]
print(
    f"2 layers: repeat loss {start['repeat_loss']:.2f} at step 50, "
    f"{before['repeat_loss']:.2f} at step {change - 150}, "
    f"{at['repeat_loss']:.2f} at step {change}, "
    f"{evals['2l'][-1]['repeat_loss']:.2f} at the end"
)
print(
    f"          icl score {before['icl_score']:.2f} -> {at['icl_score']:.2f}"
)
print(
    "1 layer:  repeat loss at the end "
    f"{evals['1l'][-1]['repeat_loss']:.2f}, lowest "
    f"{min(r['repeat_loss'] for r in evals['1l']):.2f}"
)
"""),
code(r"""
# a cliff: the first 250 steps lower the repeat loss by less than 0.4 nats,
# the next 150 by more than 2.5
assert change == 450
assert start["repeat_loss"] - before["repeat_loss"] < 0.4
assert before["repeat_loss"] - at["repeat_loss"] > 2.5
assert min(r["repeat_loss"] for r in evals["1l"]) > 3.1  # never copies
"""),
md(r"""
For 300 steps the two-layer model improves on the repeats about as slowly as the one-layer model;
then, within 150 steps, its loss on them falls from 3.6 nats to 0.8, and the in-context learning
score from −0.7 to −4.3: the phase change. The one-layer model never gets below 3.1 nats. The
curves are one training run (seed 0) of each model. `scripts/experiments/induction.py` trained
each model at three seeds, and a third model: the two-layer one with *learned absolute positions* (chapter 5) instead of RoPE. It
writes `data/results/induction.json`, one line per run, with each run's *phase-change step*: the
first evaluation at which its repeat loss is below 1 nat.
"""),
code(r"""
import json

ind = json.loads((ROOT / "data" / "results" / "induction.json").read_text())
ind_runs = ind["runs"]
names = {
    "2l": "2 layers, RoPE",
    "1l": "1 layer, RoPE",
    "2l_learned": "2 layers, learned positions",
}
print(
    f"{'model':29s} seed  phase change  tile: first  repeat   gap   "
    "one repeat: gap"
)
for r in ind_runs:
    step = r["phase_change_step"] if r["phase_change_step"] else "never"
    print(
        f"{names[r['variant']]:29s} {r['seed']:4d}  {step!s:>12}  "
        f"{r['tile']['first_loss']:11.2f} {r['tile']['repeat_loss']:7.2f} "
        f"{r['tile']['gap']:5.2f}   {r['random']['gap']:15.2f}"
    )
"""),
code(r"""
def of(variant, *keys):
    out = []
    for r in ind_runs:
        if r["variant"] == variant:
            for k in keys:
                r = r[k]
            out.append(r)
    return out


assert len(of("2l", "seed")) == len(of("1l", "seed")) == 3
assert sorted(of("2l", "phase_change_step")) == [450, 450, 500]
assert of("1l", "phase_change_step") == [None] * 3
# every 2-layer seed copies, every 1-layer seed does not: the gaps are
# more than 2.5 nats apart, and the seeds within 0.3 of each other
for placement in ("tile", "random"):
    two_gaps, one_gaps = of("2l", placement, "gap"), of("1l", placement, "gap")
    assert min(two_gaps) > max(one_gaps) + 2.5
    assert max(two_gaps) - min(two_gaps) < 0.3
    assert max(one_gaps) - min(one_gaps) < 0.3
assert all(r < 1.0 for r in of("2l", "random", "repeat_loss"))
assert all(r > 3.0 for r in of("1l", "tile", "repeat_loss"))  # never copies
# the cliff at every seed: some 150 steps lower the repeat loss by > 2.5 nats
for curve in of("2l", "curve"):
    rep = {step: repeat for step, _, repeat, _ in curve}
    assert max(rep[s - 150] - rep[s] for s in rep if s - 150 in rep) > 2.5
"""),
md(r"""
At every seed the two-layer model's phase change comes at step 450 or 500, with a fall of more
than 2.5 nats within 150 steps, and afterwards its loss on the repeats is 4.16–4.32 nats below
the first copy's on fresh tiled sequences, and 4.28–4.42 below on a single repeat placed anywhere
among random tokens, which it never trained on: it learnt a general
look-up, not the tiling. The one-layer model gains about 1.1 nats at every seed, and its repeat
loss stays above 3: it has learnt that a token that occurred before is likelier than one that did
not, which a single layer can do (attend to earlier tokens, boost them), but it cannot tell which
earlier token comes *next*. (The learned-positions rows are discussed at the end of this section.)

### The heads

`gptlib.interp` records each head's pattern with PyTorch hooks on the unmodified model: a
pre-hook asks every attention layer for its weights, a forward hook keeps them and passes the
output on:
"""),
code(r"""
show(record_attention)
"""),
code(r"""
two, _, _ = load_pretrained(PRETRAINED / "induction_2l")
one, _, _ = load_pretrained(PRETRAINED / "induction_1l")
scores = {
    name: head_scores(m, doubled)
    for name, m in (("1 layer", one), ("2 layers", two))
}
for name, sc in scores.items():
    for layer in range(sc["induction"].size(0)):
        prev = " ".join(f"{v:.2f}" for v in sc["previous_token"][layer])
        ind_ = " ".join(f"{v:.2f}" for v in sc["induction"][layer])
        print(
            f"{name}, layer {layer}: previous-token {prev}  induction {ind_}"
        )
uniform = torch.ones(T, T).tril()
uniform = (uniform / uniform.sum(-1, keepdim=True))[None, None]
flat = {
    "previous_token": previous_token_score(uniform).item(),
    "induction": induction_score(uniform.expand(256, 1, T, T), doubled).item(),
}
print(
    "a head attending uniformly to all earlier tokens:",
    ", ".join(f"{k} {v:.2f}" for k, v in flat.items()),
)
"""),
code(r"""
s2, s1 = scores["2 layers"], scores["1 layer"]
assert (s2["induction"][1] > 0.6).all()  # both layer-1 heads: induction
assert (s2["previous_token"][0] > 0.3).all()  # both layer-0 heads: look back
assert (s2["induction"][0] < 0.1).all() and (
    s2["previous_token"][1] < 0.1
).all()
# the 1-layer model has neither: no head above the uniform head's scores
assert (s1["previous_token"] < flat["previous_token"] + 0.05).all()
assert (s1["induction"] < flat["induction"] + 0.05).all()
# the same in every seed of the results file
assert all(min(sc[1]) > 0.6 for sc in of("2l", "induction_score"))
assert all(min(sc[0]) > 0.3 for sc in of("2l", "previous_token_score"))
"""),
md(r"""
The circuit of section 2 is there, twice: both layer-1 heads are induction heads (0.79 and 0.82,
against 0.85 for the ideal head and 0.04 for one that spreads its attention evenly), and the two
layer-0 heads put 0.48 and 0.38 of their attention on the previous token (the ideal head: 1; these
two are blurred versions of it). The one-layer model's heads score what a uniform head scores. Here are a layer-0
and a layer-1 head of the two-layer model on one of the doubled segments:
"""),
code(r"""
patterns = attention_patterns(two, doubled[:1])
plot_patterns(
    {
        "layer 0, head 0 (previous token)": patterns[0][0, 0],
        "layer 1, head 1 (induction)": patterns[1][0, 1],
    },
    labels,
)
plt.show()
"""),
md(r"""
### Ablations: which heads carry the copying

A score says where a head looks, not whether the model needs it. `ablate_heads` zeroes chosen
heads' outputs before the output projection `c_proj`, which removes exactly their term from the
residual stream (tested):
"""),
code(r"""
show(ablate_heads)
"""),
code(r"""
tile_batch = repeats.sample(512, 64, torch.Generator().manual_seed(2024))


def copy_gap(model):
    # loss on the first copy minus loss on the repeats, on fresh sequences
    losses, _ = per_token_loss(model, tile_batch)
    m = tile_batch.masks
    return (losses[m["first"]].mean() - losses[m["repeat"]].mean()).item()


intact = copy_gap(two)
cases = {
    "layer 0 head 0": [(0, 0)],
    "layer 0 head 1": [(0, 1)],
    "layer 1 head 0": [(1, 0)],
    "layer 1 head 1": [(1, 1)],
    "both layer-0 heads": [(0, 0), (0, 1)],
    "both layer-1 heads": [(1, 0), (1, 1)],
}
ablated = {}
for name, heads in cases.items():
    with ablate_heads(two, heads):
        ablated[name] = copy_gap(two)
print(f"intact: gap {intact:.2f} nats (1-layer model: {copy_gap(one):.2f})")
for name, g in ablated.items():
    print(f"without {name:18s}: gap {g:5.2f} nats")
"""),
code(r"""
one_gap = copy_gap(one)
assert ablated["both layer-1 heads"] < 0.1 * intact  # no induction heads
assert abs(ablated["both layer-0 heads"] - one_gap) < 0.3  # the 1-layer gap
for h in (0, 1):  # one induction head left
    assert 0.35 < ablated[f"layer 1 head {h}"] / intact < 0.45
# layer 0: head 1 is needed (as much as both), head 0 only half as much
assert ablated["layer 0 head 1"] < ablated["both layer-0 heads"] + 0.1
assert 0.45 < ablated["layer 0 head 0"] / intact < 0.6
for r in ind_runs:  # every seed, its own gap
    if r["variant"] == "2l":
        g = r["tile"]["gap"]
        assert r["tile_gap_layer_ablated"]["layer1"] < 0.1 * g
        assert abs(r["tile_gap_layer_ablated"]["layer0"] - one_gap) < 0.4
        assert all(0.35 < a / g < 0.75 for a in r["tile_gap_ablated"][1])
"""),
md(r"""
Without both induction heads the copying is gone (the gap is even slightly below zero). Without
both previous-token heads the gap falls to about 1 nat, what the one-layer model gets: layer 1
can still favour tokens seen before, but no longer knows which one comes next. Either induction
head alone keeps 40% of the gap: in layer 1 the model built the circuit twice, and the two copies
share the work. In layer 0 it leans on head 1: without it the gap is 1.07, as low as without both,
while without head 0 it keeps half — although head 0 has the *higher* previous-token score (0.48
against 0.38). A score ranks where heads look, not how much the model needs them; that takes an
ablation. No head of the shipped model is left outside the circuit to serve as a control; the
one-layer model plays that role. The other seeds (results file, `tile_gap_ablated`) agree on
both layers and differ in the details: one induction head alone keeps 40–70% of the gap, and in
seed 2 one of the two layer-0 heads can be removed at no cost (gap 4.37 without it, 4.32
intact) — that model relies on a single previous-token head.

### K-composition, tested

Section 2 claimed that the induction head's *keys* read the previous-token head. The weights give
a first hint: Elhage et al.'s composition score (`k_composition`, how much of what a layer-0 head
writes a layer-1 head's $W_{QK}$ reads on the key side) of the shipped model is about twice that
of the same architecture at one random initialisation:
"""),
code(r"""
torch.manual_seed(0)
untrained = GPT(two.config)
for name, m in (("trained", two), ("untrained", untrained)):
    kc = k_composition(m)  # (layer-0 head, layer-1 head)
    print(
        f"{name:9s}: "
        + "   ".join(
            f"L0 H{h} -> L1 H{g}: {kc[h, g]:.2f}"
            for h in range(2)
            for g in range(2)
        )
    )
assert k_composition(two).min() > 1.8 * k_composition(untrained).max()
"""),
md(r"""
That score ignores RoPE's rotation and reads weights only. A direct test removes the layer-0
heads' output from *one input* of layer 1 at a time — from its queries, its keys or its values —
and leaves everything else intact (`logits_with_input_removed`: two passes, one to record the
stream without those heads, one that computes only the chosen third of `c_attn`'s output from it;
`tests/test_interp.py` checks it against the same computation written out by hand):
"""),
code(r"""
show(logits_with_input_removed)
"""),
code(r"""
def copy_losses(logits):
    # (first-copy loss, repeat loss) in nats on tile_batch
    losses = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), tile_batch.tokens[:, 1:], reduction="none"
    )
    m = tile_batch.masks
    return losses[m["first"]].mean().item(), losses[m["repeat"]].mean().item()


layer0 = [(0, 0), (0, 1)]
removed = {"none": copy_losses(per_token_loss(two, tile_batch)[1])}
for parts in ("q", "k", "v"):
    removed[parts] = copy_losses(
        logits_with_input_removed(two, tile_batch.x, layer0, 1, parts)
    )
for parts, (first, repeat) in removed.items():
    what = (
        "intact"
        if parts == "none"
        else f"layer 0 removed from layer 1's {parts}"
    )
    print(f"{what:36s}: first copy {first:.2f}, repeats {repeat:.2f} nats")
"""),
code(r"""
chance = torch.log(torch.tensor(64.0)).item()
repeat = {k: v[1] for k, v in removed.items()}
assert repeat["k"] > chance - 0.2  # keys: no copying at all
assert repeat["q"] < 1.0 and repeat["v"] < repeat["none"] + 0.05  # still copy
assert 2.5 * repeat["none"] < repeat["q"]  # ... the queries: less well
for r in of("2l", "tile_gap_layer0_removed_from"):  # every seed (gaps)
    assert r["k"] < 0.1 * r["q"] and r["k"] < 0.1 * r["v"]
"""),
md(r"""
Taking the previous-token heads away from the keys alone destroys the copying: the loss on the
repeats goes to 4.61 nats, chance. Taken away from the queries, it rises from 0.31 to 0.98 —
copying survives, less well; from the values, it does not rise at all (the first-copy loss does,
to 6.51, worse than chance, which we have not looked into). The induction heads read the
previous-token heads through their keys: K-composition, as section 2 predicted. These losses are
the shipped model's; the results file records the gaps for all three seeds, and in every seed
removing layer 0 from the keys leaves less than a tenth of the gap left by removing it from the
queries or the values.

### Why RoPE: the same model with learned positions

A previous-token head must attend to "one back" at every position. With RoPE that is one
rotation, the same at every $t$; with learned absolute positions (chapter 5) the model has to
learn 64 position vectors such that each $t$ matches $t - 1$ — a plausible reason for what
follows, which we have not tested. The third model
of the results file is exactly the two-layer model with learned positions:
"""),
code(r"""
learned = [r for r in ind_runs if r["variant"] == "2l_learned"]
for r in learned:
    prev0 = max(r["previous_token_score"][0])
    ind1 = max(r["induction_score"][1])
    print(
        f"seed {r['seed']}: phase change {r['phase_change_step']}, "
        f"tile gap {r['tile']['gap']:.2f}, best previous-token head "
        f"{prev0:.2f}, best induction head {ind1:.2f}"
    )
"""),
code(r"""
assert all(r["phase_change_step"] is None for r in learned)
assert all(r["tile"]["gap"] < 1.45 for r in learned)  # 1-layer-like
assert all(max(r["induction_score"][1]) < 0.1 for r in learned)
"""),
md(r"""
At none of the three seeds did the learned-positions model form the circuit within the same
2,000 steps at the same learning rate and width: its gap stays near the one-layer model's, and no
head scores as an induction head. Learned positions do not prevent induction heads in general
(large models with them, GPT-2 among them, have such heads); how much longer ours would need we
did not measure. Within this budget, the choice of chapter 5 decides whether the circuit forms.
"""),
md(r"""
## 4. Few-shot learning of a task family, at two sizes

Copying a segment is in-context learning in its barest form. Closer to GPT-3's prompts: each
sequence is 16 demonstrations, and each sequence draws its *own* rule, a random one-to-one letter
substitution from `a`–`h` to `A`–`H` (after Garg et al. {cite:p}`garg2022what`, who draw a
random linear function per prompt). A demonstration is a question token `x?` followed by its
answer token `x->f(x)`: 8 question tokens and 64 answer tokens, one for every (input, output)
pair. Training sees 32,000 sequences (1,000 steps of 32; about 22,100 distinct rules of the
40,320), and the test sequences are drawn with a seed no training used; only the answers are trained on. (Writing the answer as one token makes the look-up a job for a single head: the
question `x?` can match the answer tokens of the same input directly. With `x` and `f(x)` as two
separate tokens it would need the two-head induction circuit of section 3.)
"""),
code(r"""
show(FewShotRule.sample)
"""),
code(r"""
pairs = family.sample(1, 31, torch.Generator().manual_seed(1))
print(family.describe(pairs.tokens[0]))
rule = pairs.info["rules"][0].tolist()
print(
    "rule:",
    " ".join(f"{a}->{'ABCDEFGH'[b]}" for a, b in zip("abcdefgh", rule)),
)
"""),
md(r"""
What can be learnt from the context is bounded: an output can be known only if its input
occurred in an earlier pair; otherwise the best guess is an output not used yet (the rule is a
permutation). The experiment scores every model on the same 2,048 sequences with fresh rules
against four baselines that need no training: **chance** (1 in 8), **most frequent** (repeat the
commonest output so far), **copy** (the output of the same input if it was shown, else chance),
and **optimal** (copy, and otherwise guess among the unused outputs).
`scripts/experiments/few_shot.py` trains two sizes, width 16 with 2 heads and width 64 with 4
heads (head size 8 and 16; both 2 attention-only layers with learned positions — one head that
matches `x?` to `x->f(x)` by content needs no previous-token head, so section 3's point about
positions does not arise), with three seeds each, and writes `data/results/few_shot.json`:
"""),
code(r"""
import json

results = json.loads((ROOT / "data" / "results" / "few_shot.json").read_text())
runs, base = results["runs"], {b["baseline"]: b for b in results["baselines"]}
curves = {
    size: torch.tensor(
        [r["accuracy_by_shots"] for r in runs if r["size"] == size]
    )
    for size in ("small", "large")
}
params = {r["size"]: r["parameters"] for r in runs}
ks = (0, 1, 2, 4, 8, 15)
print("shots K:           " + " ".join(f"{k:5d}" for k in ks))
for size, c in curves.items():
    row = " ".join(f"{c[:, k].mean():5.2f}" for k in ks)
    spread_ = (c.max(0).values - c.min(0).values).max()
    print(
        f"{size:5s} ({params[size]:5d} p.){row}   seeds: {c.size(0)}, "
        f"max spread {spread_:.2f}"
    )
for name, b in base.items():
    row = " ".join(f"{b['accuracy_by_shots'][k]:5.2f}" for k in ks)
    print(f"{name:18s}{row}")
"""),
code(r"""
fig, ax = plt.subplots(figsize=(7, 4))
K = range(16)
for name, b in base.items():
    ax.plot(K, b["accuracy_by_shots"], ":", label=f"baseline: {name}")
for size, c in curves.items():
    half = (c.max(0).values - c.min(0).values) / 2
    ax.errorbar(
        K,
        c.mean(0),
        yerr=half,
        marker="o",
        ms=3,
        capsize=2,
        label=f"{size} model ({params[size]:,} parameters)",
    )
ax.set_xlabel("number of shots K (earlier pairs in the context)")
ax.set_ylabel("accuracy on fresh rules")
ax.legend(fontsize=8)
plt.show()
"""),
md(r"""
At zero shots both sizes are at chance: nothing in the weights says what this sequence's rule
is. With every demonstration added, accuracy rises, at fixed weights. The small model (width 16)
follows the **copy** baseline: it looks the question up among the earlier answers, and guesses
at chance when the input is new. The large model (width 64) does better than copying, from two
shots on, in every seed, and its accuracy on *new* inputs is above chance: it has also learnt that the rule is
a permutation, and avoids the outputs already taken — closer to the **optimal** curve, which no
model can beat. That points the same way as GPT-3's Figure 1.2, at toy scale: the larger of our
two models gets more out of the same context. The cell below asserts it, in every seed. Honest
limits: it is two sizes trained for one budget (1,000 steps each), three seeds each — not a
trend with scale, and the small model may lack training as much as width; the gap between the
sizes is a few points (0.87 against 0.90 at 15 shots), and the large model is still below
optimal; and the *zero-shot* points do not differ, because here no
prior knowledge could help (unlike natural-language tasks, where larger models also know more).
"""),
code(r"""
small, large = curves["small"], curves["large"]
unseen = {
    s: torch.tensor([r["unseen_accuracy"] for r in runs if r["size"] == s])
    for s in ("small", "large")
}
copy = torch.tensor(base["copy"]["accuracy_by_shots"])
best = torch.tensor(base["optimal"]["accuracy_by_shots"])
spread = max(
    (c.max(0).values - c.min(0).values).max() for c in curves.values()
)
print(
    "seeds per size:",
    small.size(0),
    large.size(0),
    f"  largest spread {spread:.2f}",
)
print(
    "accuracy on inputs not shown before, by seed:",
    {s: [f"{v:.2f}" for v in u] for s, u in unseen.items()},
)
seen = {
    s: (
        torch.tensor(
            [
                [v for v in r["seen_accuracy_by_shots"] if v is not None]
                for r in runs
                if r["size"] == s
            ]
        ).mean(1)
    )
    for s in ("small", "large")
}
print(
    "accuracy on inputs shown before, by seed:",
    {s: [f"{v:.2f}" for v in u] for s, u in seen.items()},
)
assert small.size(0) >= 3 and large.size(0) >= 3
assert (abs(small[:, 0] - 1 / 8) < 0.03).all()  # zero-shot: chance
assert (abs(large[:, 0] - 1 / 8) < 0.03).all()
assert small.mean(0)[15] > 0.8 and large.mean(0)[15] > 0.8
# every curve of every seed rises with every added shot
assert (small.diff(dim=1) > 0).all() and (large.diff(dim=1) > 0).all()
# the small model: a look-up when the input was shown, chance when it was not
assert (seen["small"] > 0.95).all() and (
    (unseen["small"] - 1 / 8).abs() < 0.02
).all()
# the small model copies: within 3 points of the copy baseline at every K
assert ((small.mean(0) - copy).abs() < 0.03).all()
# the large one beats copying from K = 2 on, in every seed; on average by
# more than the spread between seeds
assert (large[:, 2:].min(0).values > copy[2:] + 0.01).all()
assert large[:, 2:].mean() - copy[2:].mean() > spread
assert (large.min(0).values[2:] > small.max(0).values[2:]).all()
# the large model uses that the rule is a permutation; nobody beats optimal
assert unseen["large"].min() > unseen["small"].max() + 0.03
assert unseen["large"].min() > 1 / 8 + 0.04  # above chance on new inputs
assert (large.mean(0) <= best + 0.01).all()
"""),
md(r"""
## Play with it

Type tokens (`a`–`z`, `A`–`Z`, `0`–`9`, `?`, `!`) or pick an example, and see, for every head
of the two-layer model of section 3, where the *last* token looks, and what the model predicts
next. Try a segment that
repeats end to end, as in its training; then a single repeat among random letters; then break
the repeat. (The explorer needs a running kernel; the
figure below shows its first example for readers of the HTML book.)
"""),
code(r"""
examples = {
    "tiled: 'abcdefghij' repeated": "abcdefghijabcdefghijabcdef",
    "one repeat among random letters": "pmoknbacfhgjlikdebacfh",
    "no repeat": "pmoknbacfhgjlikde",
}
in_context_explorer(two, tok, examples)
"""),
code(r"""
plot_last_token(two, tok, examples["tiled: 'abcdefghij' repeated"])
plt.show()
"""),
md(r"""
## Common misconception

```{admonition} Common misconception: "GPT-3 is adapted to each task by fine-tuning it"
:class: warning

A widely read explanation of GPT-3 says (translated from Chinese) that its training "is completed
in two steps: the first initialises it with a pretrained model; the second is the fine-tune stage,
which retrains the model with its own data", and that "one can also fine-tune for its tasks to
achieve better results". It is the GPT-1 recipe {cite:p}`radford2018improving`, not GPT-3's.
GPT-3 was pretrained once, from random weights, on its corpus — and then evaluated on dozens of
tasks with **no fine-tuning at all**: the task is described and demonstrated in the prompt, and
the model's weights are the same for every task and every $K$ {cite:p}`brown2020language`. That
is what "few-shot learner" means. The "learning" is done inside one forward pass, by
mechanisms such as the induction head of section 2. Section 1 checked it on a small scale: accuracy rose from
chance to far above it as shots were added, and the hash of every weight was identical before and
after. The opposite error is common too — "few-shot prompting teaches the model": nothing is
stored; the next prompt, without the examples, gets chance again.
```
"""),
md(r"""
## Exercises

**Exercise 1.** Build by hand the pattern of a head that attends from every position to the
token *two* back ($t \to t - 2$), score it with `previous_token_score` and `induction_score` on
`doubled`, and explain both numbers.
"""),
code(r"""
# solution
two_back = torch.zeros(T, T)
two_back[0, 0] = two_back[1, 0] = 1.0
two_back[torch.arange(2, T), torch.arange(T - 2)] = 1.0
p = previous_token_score(two_back[None, None])
i = induction_score(two_back[None, None].expand(256, 1, T, T), doubled)
print(f"previous-token {p.item():.2f}, induction {i.item():.2f}")
assert p.item() < 0.05  # only position 1 looks one back
# t - 2 is a target only when x[t-3] happens to equal x[t] (about 1 in 64):
# below even the uniform head's score, far from the ideal head's 0.85
assert i.item() < flat["induction"] and i.item() < 0.05
""", "hide-cell"),
md(r"""
**Exercise 2.** Here are the four heads of the two-layer model on one doubled segment, in a
shuffled order. Which are previous-token heads and which induction heads? Decide from the
pictures, then check with `previous_token_score` and `induction_score` on that one sequence.
"""),
code(r"""
order = [(1, 1), (0, 1), (1, 0), (0, 0)]  # shuffled; hidden from the reader
shown = {
    f"head {name}": patterns[layer][0, head]
    for name, (layer, head) in zip("ABCD", order)
}
plot_patterns(shown, labels)
plt.show()
"""),
code(r"""
# solution: score each pattern on its own sequence
kind = {}
for name, w in shown.items():
    p = previous_token_score(w[None, None]).item()
    i = induction_score(w[None, None], doubled[:1]).item()
    kind[name] = "induction" if i > p else "previous-token"
    print(f"{name}: previous-token {p:.2f}, induction {i:.2f} -> {kind[name]}")
# induction heads sit in layer 1, previous-token heads in layer 0
assert [kind[f"head {n}"] == "induction" for n in "ABCD"] == [
    layer == 1 for layer, _ in order
]
""", "hide-cell"),
md(r"""
## Key points

- GPT-3's zero-, one- and few-shot settings differ only in the prompt: $K$ demonstrations of the
  task are text the model reads. No weight changes — unlike fine-tuning, where each example is a
  gradient step.
- The attention of chapter 2 can implement a look-up in the context: a **previous-token head**
  (built from the positions of chapter 5) writes "the token before me" into each position, and an
  **induction head** in the next layer matches its query against those keys (K-composition) and
  copies the token that followed the earlier occurrence. One layer cannot, unless the repeat is at
  a fixed distance, when position alone finds it.
- The mechanism appears in a sudden **phase change**, as Olsson et al. found: our two-layer model
  improves slowly for 300 steps, then its loss on repeats falls by 2.8 nats in 150 steps, at every
  seed; the one-layer model never copies. Head scores find the two kinds of heads, ablations show
  that the copying needs them, and removing the previous-token heads from the induction heads'
  keys alone (not their queries or values) shows the K-composition directly.
- The positions of chapter 5 matter: with RoPE "one back" is the same rotation everywhere, and the
  circuit forms within a minute; with learned absolute positions it had not formed at any of three
  seeds in the same budget.
- Trained on a family of tasks, each sequence with its own rule, small models learn to infer the
  rule from the examples in their context: accuracy rises with $K$ at fixed weights, and the
  larger of our two models gets a few points more out of the same examples in all three seeds
  (it also uses that the rule is a permutation) — two sizes, not a scaling law.
  Compare with baselines (chance, copying, the best possible) before calling it learning.

## References

GPT-3 and its zero-, one- and few-shot evaluation {cite:p}`brown2020language`; GPT-1's
fine-tuning recipe {cite:p}`radford2018improving`; transformer circuits, attention-only models and
K-composition {cite:p}`elhage2021mathematical`; induction heads and the phase change
{cite:p}`olsson2022context`; in-context learning of function classes {cite:p}`garg2022what`.
Full entries are on the [References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "10_in_context.ipynb", CELLS)
