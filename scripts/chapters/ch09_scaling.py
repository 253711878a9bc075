"""Source of chapters/09_scaling.ipynb. Edit here, then:

    python scripts/chapters/ch09_scaling.py && python scripts/run_notebooks.py chapters/09_scaling.ipynb

The chapter launches three 2-process torchrun runs (gloo on the CPU) of a tiny model, trains a few
small models in this process, and reads the sweep of scripts/experiments/scaling.py from
data/results/scaling.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 9. Scaling up: many processes, less memory, lower precision, the laws of scale

**Why.** GPT-3 {cite:p}`brown2020language` is first of all a matter of scale: 175 billion
parameters trained on 300 billion tokens, about $3.14 \times 10^{23}$ floating-point operations.
Everything in chapters 1–8 ran in one CPU process; GPT-3 could not have.
Its weights, gradients and optimiser state alone are 2.8 TB (16 bytes per parameter), 35 times
the memory of one 80 GB GPU, and its arithmetic would keep one such GPU busy for about 80 years
(both computed in this chapter). This chapter is about the tools and the arithmetic of going past one
device: PyTorch's own distributed engine (`torch.distributed`, launched with `torchrun`), which
splits the *data* (DDP) or the *model state* (FSDP) across processes; where the memory goes, and
how activation checkpointing and 16-bit numbers reduce it; the sparse attention layers GPT-3
alternates with dense ones; and the empirical *laws of scale* that told its authors how big to
go. Every piece runs here for real — two processes on a 2-core CPU with the `gloo` backend — and
runs unchanged on GPUs with `nccl`.
"""),
code(r"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import FormatStrFormatter, NullFormatter
import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

import gptlib
from gptlib import distributed as gdist
from gptlib import scaling, set_seed, show
from gptlib.data import data_dir, encode_text, load_text
from gptlib.masking import attended_pairs, banded_causal_mask, causal_mask
from gptlib.model import GPT, GPTConfig
from gptlib.block import Block
from gptlib.pretrain import TrainConfig, train
from gptlib.runconfig import read_log, run
from gptlib.tokenizer import CharTokenizer
from gptlib.viz import run_plan, scale_explorer

torch.set_num_threads(1)  # tiny models: one thread each; 2 ranks share 2 cores
plt.rcParams["figure.dpi"] = 90
ROOT = Path(gptlib.__file__).resolve().parent.parent
WORK = Path(tempfile.mkdtemp(prefix="ch09-"))
"""),
md(r"""
## 1. Many processes: data parallelism

**The idea.** The loss of a training step is a mean over a batch of $B$ windows,
$L = \frac{1}{B}\sum_{i=1}^{B} \ell_i$, so its gradient is a mean of per-window gradients. Split
the batch into $N$ equal slices of $b = B/N$ windows, one per process (a *rank*
$r = 0, \dots, N-1$), and let each rank compute the gradient of the mean over its own slice,
$g_r = \frac{1}{b}\sum_{i \in \text{slice } r} \nabla \ell_i$. Then

$$
\nabla L \;=\; \frac{1}{B}\sum_{i=1}^{B}\nabla \ell_i \;=\; \frac{1}{N}\sum_{r=0}^{N-1} g_r ,
$$

the mean of the ranks' gradients. Computing that mean on every rank is an **all-reduce**; after
it every rank holds $\nabla L$, takes the same AdamW step, and the $N$ copies of the model stay
identical. Each rank's forward pass sees a $(b, T)$ batch instead of $(B, T)$: $N$ processes do
the work of one, in about $1/N$ of the time if the all-reduce is cheap. It is the same arithmetic as
gradient accumulation (chapter 7), done side by side instead of one micro-batch after another.

PyTorch's `DistributedDataParallel` (DDP, {cite:t}`li2020pytorch`) does the all-reduce, in buckets
that overlap with the backward pass. The program is started $N$ times by `torchrun`, which tells
each copy its rank through environment variables; `gptlib.distributed` reads them and joins the
process group, with the `nccl` backend when the process has a CUDA device and `gloo` otherwise:
"""),
code(r"""
show(gdist.init_from_env)
"""),
md(r"""
What each rank trains on is decided in `gptlib.pretrain.train`: every rank draws the *whole*
global batch of `batch_size` windows from the same seeded generator, and keeps its own contiguous
slice. So $N$ ranks see exactly the windows one process would see with the same `batch_size`, and
a resumed run continues with the same draws:
"""),
code(r"""
show(gdist.batch_slice)
"""),
code(r"""
show(gdist.wrap)
"""),
md(r"""
Inside `train` only a few lines change under `torchrun`: the batch is sliced, the model is wrapped,
the logged loss and token count are summed over the ranks (`gdist.all_sum`, for the log only —
the gradients are DDP's business), and only rank 0 writes checkpoints; `gptlib.runconfig` exports
the model from rank 0 alone. A checkpoint written by $N$ ranks refuses to resume under another
$N$, and a global batch that does not divide by $N$ is refused before the first step.

**A live run.** Below, the chapter's own command line trains a two-layer model on 300,000
characters of the training plays, first with `torchrun --nproc_per_node 2` (this cell launches it
as a subprocess; `python -m torch.distributed.run` is the program behind the `torchrun` command),
then in this notebook's single process, then once more in one process with half the batch and
`grad_accum=2`. All three see the same 16 windows per step.
"""),
code(r"""
text = WORK / "plays.txt"
text.write_text(load_text("train")[:300_000], encoding="utf-8")
CONFIG = {
    "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0},
    "train": {
        "steps": 40,
        "batch_size": 16,
        "block_size": 32,
        "lr": 3e-3,
        "warmup_steps": 5,
        "eval_every": 10,
        "eval_batches": 4,
        "seed": 0,
    },
    "data": {"source": "text", "path": str(text), "tokenizer": "char"},
}


def write_config(name, **train_changes):
    cfg = json.loads(json.dumps(CONFIG))
    cfg["train"].update(train_changes)
    path = WORK / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def torchrun(config, out, nproc=2):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "-m",
        "gptlib.pretrain",
        "--config",
        str(config),
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


t0 = time.perf_counter()
proc = torchrun(write_config("ddp"), WORK / "ddp")
print(proc.stdout.strip())
print(f"2 processes: {time.perf_counter() - t0:.0f} s, including start-up")
print((WORK / "ddp" / "COMMAND").read_text().split(" --config")[0])
""", "nbval-ignore-output"),
code(r"""
t0 = time.perf_counter()
one = run(write_config("one"), out_dir=WORK / "one", progress=False)
print(f"1 process: {time.perf_counter() - t0:.0f} s")
acc = run(
    write_config("acc", batch_size=8, grad_accum=2),
    out_dir=WORK / "acc",
    progress=False,
)
""", "nbval-ignore-output"),
code(r"""
def weights(d):
    return load_file(WORK / d / "model.safetensors")


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


ddp_w, one_w, acc_w = weights("ddp"), weights("one"), weights("acc")
log = {d: read_log(WORK / d / "train_log.csv") for d in ("ddp", "one", "acc")}
diffs = {
    "DDP vs 1 process": max_diff(ddp_w, one_w),
    "DDP vs grad_accum=2": max_diff(ddp_w, acc_w),
}
model_cfg = GPTConfig.from_dict(
    json.loads((WORK / "one" / "config.json").read_text())["model"]
)
set_seed(0)  # run() initialises the model after set_seed(train.seed)
moved = max_diff(one_w, GPT(model_cfg).state_dict())
ddp_meta = json.loads((WORK / "ddp" / "config.json").read_text())
print("exported by the 2-process run:", sorted(os.listdir(WORK / "ddp")))
print("world size recorded:", ddp_meta["results"]["world_size"])
print(
    "bit for bit the weights of grad_accum=2:",
    diffs["DDP vs grad_accum=2"] == 0.0,
)
print(
    "the weights of one process, batch 16 (|diff| < 5e-4):",
    diffs["DDP vs 1 process"] < 5e-4,
)
print("training moved the weights by more than 0.05:", moved > 0.05)
assert diffs["DDP vs grad_accum=2"] == 0.0
assert diffs["DDP vs 1 process"] < 5e-4 and moved > 0.05
assert [r["tokens"] for r in log["ddp"]] == [r["tokens"] for r in log["one"]]
assert (
    max(
        abs(a["train_loss"] - b["train_loss"])
        for a, b in zip(log["ddp"], log["one"])
    )
    < 1e-4
)
assert abs(log["ddp"][-1]["val_loss"] - log["one"][-1]["val_loss"]) < 1e-4
"""),
code(r"""
print(
    "max |weight difference|, DDP vs one process: "
    f"{diffs['DDP vs 1 process']:.1e}; vs grad_accum=2: "
    f"{diffs['DDP vs grad_accum=2']:.1e}; moved: {moved:.2f}"
)
""", "nbval-ignore-output"),
md(r"""
The two ranks together computed exactly what gradient accumulation computes one half-batch at a
time — bit for bit, and for a reason: each rank's backward pass is the same computation as one
micro-batch's, and the mean of two gradients, $(g_0 + g_1)/2$, rounds exactly like
$g_0/2 + g_1/2$ (halving is exact in binary floating point). One process with the whole batch of
16 sums in another order — one mean over 16 windows instead of two means over 8 — so its weights
differ in the last bits, and Adam's division by $\sqrt{\hat v}$ magnifies those differences for
weights whose gradients are tiny: after 40 steps they agree to about $10^{-4}$ (the assert allows
$5 \times 10^{-4}$), while training moved the weights by more than $0.05$, and the logged losses
agree to $10^{-4}$ at every step.
`tests/test_distributed.py` checks the same on a tiny model, and also that an interrupted and
resumed 2-rank run equals an uninterrupted one and that only rank 0 writes files.
"""),
md(r"""
## 2. Sharding the model state: FSDP

DDP makes training faster, not bigger: every rank holds the whole model, its gradients and
AdamW's two moments. **Fully sharded data parallelism** (FSDP; ZeRO stage 3 in
{cite:t}`rajbhandari2020zero`; PyTorch's FSDP {cite:p}`zhao2023pytorch`, here its second version,
`fully_shard`) keeps data parallelism's arithmetic but stores each of those tensors in $N$
pieces, one per rank. Before a block computes, its full weights are gathered from all ranks
(an *all-gather*) and dropped again afterwards; after its backward pass, the gradients are summed
and scattered so that each rank keeps only the mean gradient of its own piece (a
*reduce-scatter*); each rank then updates its piece with its piece of the AdamW state. For $\Psi$
parameters at 16 bytes each, a rank stores $16\Psi$ bytes under DDP and $16\Psi / N$ under FSDP.

`train.parallel = "fsdp"` in a run config switches the same command line to `fully_shard`:
"""),
code(r"""
proc = torchrun(write_config("fsdp", parallel="fsdp"), WORK / "fsdp")
print(proc.stdout.strip())
""", "nbval-ignore-output"),
code(r"""
fsdp_log = read_log(WORK / "fsdp" / "train_log.csv")
loss_gap = max(
    abs(a["train_loss"] - b["train_loss"])
    for a, b in zip(fsdp_log, log["ddp"])
)
val_gap = abs(fsdp_log[-1]["val_loss"] - log["ddp"][-1]["val_loss"])
print(
    "FSDP's losses equal DDP's at every step (|diff| < 1e-4):", loss_gap < 1e-4
)
print(
    "FSDP's weights equal DDP's (|diff| < 5e-4):",
    max_diff(weights("fsdp"), ddp_w) < 5e-4,
)
assert loss_gap < 1e-4 and val_gap < 1e-4
assert max_diff(weights("fsdp"), ddp_w) < 5e-4

per_rank = {
    p: json.loads((WORK / p / "config.json").read_text())["results"][
        "state_bytes_rank0"
    ]
    for p in ("ddp", "fsdp")
}
n_params = GPT(model_cfg).num_parameters()
print(
    f"\n{'bytes on rank 0':>16} {'parameters':>11} {'gradients':>10} "
    f"{'AdamW':>8} {'total':>8}"
)
for p, b in per_rank.items():
    print(
        f"{p:>16} {b['parameters']:>11,} {b['gradients']:>10,} "
        f"{b['optimizer']:>8,} {b['total']:>8,}"
    )
print(f"parameters: {n_params:,}; 16 bytes each = {16 * n_params:,}")
assert per_rank["ddp"]["total"] == 16 * n_params  # 4 + 4 + 8 B: fp32 AdamW
assert 0.5 <= per_rank["fsdp"]["total"] / per_rank["ddp"]["total"] < 0.52
"""),
code(r"""
print(
    f"FSDP vs DDP: largest train-loss gap {loss_gap:.1e}, "
    f"final val-loss gap {val_gap:.1e}"
)
""", "nbval-ignore-output"),
md(r"""
Same losses, same weights, half the bytes per rank (a little over half: a tensor whose first
dimension is odd is split into unequal pieces, padded). Two ranks halve it, 64 ranks divide it by
64. The price is communication: every step gathers every weight twice (for forward, and again for
backward) and reduce-scatters every gradient, $3\Psi$ values per rank against the $2\Psi$ of
DDP's gradient all-reduce — 1.5 times the traffic {cite:p}`rajbhandari2020zero` — which is why
large runs combine sharding with *tensor* and *pipeline* parallelism inside a node — Megatron-LM
{cite:p}`shoeybi2019megatron` — and GPT-3's own training used "a mixture of model parallelism
within each matrix multiply and model parallelism across the layers of the network"
{cite:p}`brown2020language`.

```{admonition} Common misconception: "data parallelism lets a model bigger than one device train"
:class: warning
A common explanation of distributed training says that spreading a run over more GPUs lets it
train a model too big for one. Data parallelism does not: the table above shows DDP's rank 0
holding all 16 bytes per parameter, exactly what one process holds, whatever the number of ranks.
More DDP ranks process more data per second; the largest model they can train is still the one
that fits on a single device. What makes a bigger model fit is *sharding* the state (FSDP/ZeRO,
1/N per rank, as measured) or splitting the computation itself (tensor and pipeline parallelism).
```

Not run here: on GPUs `init_from_env` picks `nccl` and puts each rank on `cuda:LOCAL_RANK`; this
chapter ran only on a CPU, with `gloo`. The code path is the same, but the nccl branch is untested
in this book.
"""),
md(r"""
## 3. Where the memory goes

**Model state.** Training with AdamW keeps, for each parameter, the weight, its gradient and two
moments. In fp32 that is $4 + 4 + 8 = 16$ bytes. *Mixed precision* {cite:p}`micikevicius2018mixed`
computes in 16-bit numbers but keeps an fp32 master copy for the update: 2 (bf16 weights) + 2
(bf16 gradients) + 4 (fp32 master) + 8 (moments) — still **16 bytes**. Lower precision saves
activation memory and time, not model state. For six of the eight GPT-3 sizes
({cite:t}`brown2020language`, Table 2.1):
"""),
code(r"""
GPT3_FAMILY = {
    "GPT-3 Small": 125e6,
    "GPT-3 Medium": 350e6,
    "GPT-3 XL": 1.3e9,
    "GPT-3 6.7B": 6.7e9,
    "GPT-3 13B": 13e9,
    "GPT-3 175B": 175e9,
}
print(
    f"{'model':>13} {'params':>8} {'fp32 state':>11} {'mixed':>9} "
    f"{'80 GB GPUs':>11}"
)
for name, n in GPT3_FAMILY.items():
    fp32 = scaling.training_state_bytes(n, "fp32")["total"]
    mixed = scaling.training_state_bytes(n, "mixed")["total"]
    print(
        f"{name:>13} {n / 1e9:>7.3g}B {fp32 / 1e9:>9,.0f}GB "
        f"{mixed / 1e9:>7,.0f}GB {scaling.devices_needed(mixed):>11,}"
    )
gpt3_state = scaling.training_state_bytes(175e9)
print(scaling.BYTES_PER_PARAM["mixed"])
assert gpt3_state["total"] == 2.8e12 and scaling.devices_needed(2.8e12) == 35
"""),
md(r"""
**Activations.** Backward needs some of the forward pass's intermediate tensors, and they scale
with the batch and the sequence, not the parameters. {cite:t}`korthikanti2023reducing` count what
one transformer layer keeps, for sequence length $s$, micro-batch $b$, width $h$ and $a$ heads,
with 16-bit values and dropout:

$$
\text{activations per layer} = s\,b\,h\left(34 + 5\,\frac{a\,s}{h}\right)\ \text{bytes}.
$$

The $34\,sbh$ are the layer's $(s, b, h)$ and $(s, b, 4h)$ tensors (the norms' and linears'
inputs, $Q$, $K$, $V$, the GELU's input and output, dropout masks); the $5\,as^2b$ are the
$(b, a, s, s)$ attention scores' softmax, its dropout mask and its output. `scaling.activation_bytes`
breaks the count down by operation. Check it against PyTorch: `saved_activation_bytes` records
every tensor autograd saves for backward during one block's forward pass (weights excluded) —
first with this book's written-out LayerNorm and GELU, then with PyTorch's fused `LayerNorm`
and `GELU`, which save only their inputs as the formula assumes.
"""),
code(r"""
show(scaling.activation_bytes)
"""),
code(r"""
show(scaling.saved_activation_bytes)
"""),
code(r"""
s, b, h, a = 64, 4, 64, 4
torch.manual_seed(0)
block = Block(h, a)
x = torch.randn(b, s, h, requires_grad=True)
weights_of_block = list(block.parameters())
written_out = scaling.saved_activation_bytes(
    block, x, exclude=weights_of_block
)
block.ln_1, block.ln_2 = nn.LayerNorm(h), nn.LayerNorm(h)  # PyTorch's own
block.mlp.gelu = nn.GELU(approximate="tanh")
weights_of_block = list(block.parameters())
fused = scaling.saved_activation_bytes(block, x, exclude=weights_of_block)
formula = scaling.activation_bytes(
    s, b, h, a, bytes_per_value=4, dropout=False
)
extra = 2 * 2 * 4 * s * b + s * s  # norms' mean and 1/std; bool causal mask
print(
    "formula (fp32, no dropout), bytes:",
    ", ".join(f"{k} {v:,}" for k, v in formula.items()),
)
print(
    f"measured, fused norms/GELU: {fused:,} "
    f"= formula + {fused - formula['total']:,}"
)
print(
    f"measured, written-out:      {written_out:,} "
    f"({written_out / formula['total']:.2f}x the formula)"
)
assert fused == formula["total"] + extra
paper = s * b * h * (34 + 5 * a * s / h)  # eq. 1, 16-bit, with dropout
assert scaling.activation_bytes(s, b, h, a)["total"] == paper
"""),
md(r"""
With PyTorch's fused modules the measurement is the formula to the byte, plus what the formula
leaves out as negligible: each LayerNorm's two per-token statistics and the $T \times T$ boolean
causal mask. The book's written-out LayerNorm keeps three $(s, b, h)$ tensors instead of one, and
its written-out tanh-GELU four $(s, b, 4h)$ tensors instead of one, hence 1.8 times the bytes:
teaching code is not memory-frugal. For GPT-3 ($s = 2048$, $h = 12288$, $a = 96$, 96 layers) the
formula gives, per sequence:
"""),
code(r"""
g3 = scaling.GPT3
per_layer = scaling.activation_bytes(
    g3["n_ctx"], 1, g3["d_model"], g3["n_head"]
)
print(
    f"one layer, one sequence: {per_layer['total'] / 1e9:.2f} GB; "
    f"96 layers: {96 * per_layer['total'] / 1e9:.0f} GB"
)
assert 2.8e9 < per_layer["total"] < 2.9e9
"""),
md(r"""
Nearly 3 GB per layer and 275 GB per 2,048-token sequence, more than three 80 GB devices for one
sequence's activations. Two remedies are in this library. **Activation checkpointing**
{cite:p}`chen2016training` keeps only each block's input and recomputes the block's forward pass
during backward (`GPTConfig(activation_checkpointing=True)`, through `torch.utils.checkpoint`):
activation memory falls from the sum of all layers' tensors to one block's plus the inputs, for
one extra forward pass (about a third more compute). And a fused attention kernel that never
stores the $(s \times s)$ softmax (FlashAttention, {cite:t}`dao2022flashattention`;
`GPTConfig(fused_attention=True)`) removes the $5as/h$ term. Measured on a 4-layer model:
"""),
code(r"""
CK = dict(vocab_size=65, block_size=128, n_layer=4, n_head=4, n_embd=64)
set_seed(0)
plain = GPT(GPTConfig(**CK)).train()
ckpt = GPT(GPTConfig(**CK, activation_checkpointing=True)).train()
ckpt.load_state_dict(plain.state_dict())
xb = torch.randint(0, 65, (8, 128), generator=torch.Generator().manual_seed(0))
saved = {}
for name, m in (("plain", plain), ("checkpointed", ckpt)):
    saved[name] = scaling.saved_activation_bytes(
        lambda: m(xb, xb)[1], exclude=list(m.parameters())
    )
    m.zero_grad()
    m(xb, xb)[1].backward()
same = all(
    torch.allclose(p.grad, q.grad, atol=1e-6)
    for p, q in zip(plain.parameters(), ckpt.parameters())
)
fused = GPT(GPTConfig(**CK, fused_attention=True)).train()
saved["fused attention"] = scaling.saved_activation_bytes(
    lambda: fused(xb, xb)[1], exclude=list(fused.parameters())
)
print(
    "saved for backward:",
    ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in saved.items()),
)
print("same gradients (atol 1e-6):", same)
assert same and saved["checkpointed"] < 0.1 * saved["plain"]
# the (b, a, s, s) softmax output of every layer, 4-byte floats:
softmax_bytes = CK["n_layer"] * 8 * CK["n_head"] * 128 * 128 * 4
print(
    "fused attention saves exactly the softmax outputs:",
    saved["plain"] - saved["fused attention"] == softmax_bytes,
)
assert saved["plain"] - saved["fused attention"] == softmax_bytes
"""),
code(r"""
def step_time(m, reps=5):
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        m(xb, xb)[1].backward()
        best = min(best, time.perf_counter() - t0)
    return best


times = {
    n: step_time(m) for n, m in (("plain", plain), ("checkpointed", ckpt))
}
print(
    f"forward + backward, best of 5: plain {times['plain'] * 1e3:.0f} ms, "
    f"checkpointed {times['checkpointed'] * 1e3:.0f} ms "
    f"({times['checkpointed'] / times['plain']:.2f}x)"
)
""", "nbval-ignore-output"),
md(r"""
The checkpointed model stores less than a tenth of the bytes for the same gradients (to $10^{-6}$;
what it still stores: the block inputs and the final norm and output layer's tensors, which are
not inside a checkpointed block; during backward one block's activations exist again at a time).
The fused attention kernel stores exactly the softmax outputs less — the $5as/h$ term, which
without dropout and in fp32 is one $(b, a, s, s)$ tensor per layer. The price of checkpointing
is time: the printed ratio was measured on a shared machine and is not a claim of the book, but the count is simple — a training step costs about three forward
passes (backward is about twice forward), and checkpointing adds a fourth, about 4/3 of the
time.
"""),
md(r"""
## 4. Lower precision

A float is a sign, an exponent and a mantissa. **fp16** (IEEE half) has 5 exponent bits and 10
mantissa bits; **bf16** ("brain float", {cite:t}`kalamkar2019study`) keeps fp32's 8 exponent bits
and only 7 mantissa bits. So bf16 covers fp32's range with less precision, and fp16 is more
precise but overflows above 65,504 and flushes small numbers to zero:
"""),
code(r"""
print(
    f"{'':>9} {'largest':>10} {'smallest normal':>16} {'smallest > 0':>13} "
    f"{'eps (1 -> next)':>16}"
)
for dt in (torch.float32, torch.bfloat16, torch.float16):
    fi = torch.finfo(dt)
    print(
        f"{str(dt)[6:]:>9} {fi.max:>10.3g} {fi.tiny:>16.3g} "
        f"{fi.tiny * fi.eps:>13.3g} {fi.eps:>16.3g}"
    )
tiny_grad = torch.tensor(1e-8)
print(
    "1e-8 in fp16:",
    tiny_grad.half().item(),
    " in bf16:",
    f"{tiny_grad.bfloat16().item():.3g}",
)
print(
    "1 + 1e-3 in bf16:",
    (torch.tensor(1.0) + 1e-3).bfloat16().item(),
    " in fp16:",
    f"{(torch.tensor(1.0) + 1e-3).half().item():.4f}",
)
assert tiny_grad.half().item() == 0.0 and tiny_grad.bfloat16().item() > 0
"""),
md(r"""
**Why fp16 needs loss scaling.** Gradients are often far smaller than the activations: in fp16
the smallest positive number is $6 \times 10^{-8}$ (a *subnormal*; below $6 \times 10^{-5}$ the
precision already thins out), and anything below half of it rounds to exactly zero — the update
for that weight is lost. {cite:t}`micikevicius2018mixed` multiply the loss by a large
factor $S$ before backward (so every gradient is $S$ times larger and stays representable), and
divide the gradients by $S$ in fp32 before the update; `torch.amp.GradScaler` does this and
lowers $S$ whenever an overflow appears. Here are the real gradients of a small GPT's loss,
divided by 1,000 so that the effect shows on a model this small (deep models and long averages
make such gradients), rounded to fp16 with and without a scale of $2^{16}$:
"""),
code(r"""
set_seed(0)
lm = GPT(
    GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=64)
)
xg = torch.randint(0, 65, (8, 64), generator=torch.Generator().manual_seed(1))
lm(xg, xg)[1].backward()
grads = torch.cat([p.grad.flatten() for p in lm.parameters()])
grads = grads[grads != 0] * 1e-3  # as if the loss were 1000x smaller
S = 2.0**16
plain16 = grads.half().float()
scaled16 = (grads * S).half().float() / S  # unscaled in fp32
for name, g16 in (("fp16", plain16), ("fp16, loss scale 2^16", scaled16)):
    zero = (g16 == 0).float().mean().item()
    err = ((g16 - grads).norm() / grads.norm()).item()
    print(
        f"{name:>22}: {zero:6.1%} of the gradients become 0; "
        f"error of the gradient vector {err:.1e}"
    )
assert (plain16 == 0).float().mean() > 0.05
assert (scaled16 == 0).float().mean() < 0.01
assert ((scaled16 - grads).norm() / grads.norm()) < 1e-3
""", "nbval-ignore-output"),
md(r"""
bf16 has fp32's exponent range, so it needs no loss scaling, which is why it is the usual choice
today. `TrainConfig(precision="bf16")` runs the forward pass under `torch.autocast` in bf16 (the
matrix products in bf16, the softmax, norms and loss in fp32, PyTorch's autocast rules), while
the weights, gradients and AdamW stay fp32. Three seeds, 50 steps each, fp32 vs bf16:
"""),
code(r"""
small_text = load_text("train")[:200_000]
char_tok = CharTokenizer.train(small_text)
plays = encode_text(small_text, char_tok)
PREC = dict(
    vocab_size=char_tok.vocab_size,
    block_size=64,
    n_layer=2,
    n_head=4,
    n_embd=32,
)
curves, wall = {}, {}
for precision in ("fp32", "bf16"):
    for seed in (0, 1, 2):
        set_seed(seed)
        m = GPT(GPTConfig(**PREC))
        cfg = TrainConfig(
            steps=50,
            batch_size=8,
            block_size=64,
            lr=3e-3,
            warmup_steps=10,
            seed=seed,
            precision=precision,
        )
        res = train(m, plays, cfg)
        curves[precision, seed] = np.array(
            [r["train_loss"] for r in res.history]
        )
        wall[precision, seed] = res.elapsed_s
gaps = [np.abs(curves["fp32", s] - curves["bf16", s]).max() for s in (0, 1, 2)]
speed = sum(wall["fp32", s] for s in range(3)) / sum(
    wall["bf16", s] for s in range(3)
)
print(
    "largest |fp32 - bf16| train-loss gap per seed:",
    [f"{g:.3f}" for g in gaps],
)
print("final losses fp32:", [f"{curves['fp32', s][-1]:.3f}" for s in range(3)])
print(
    f"bf16 time / fp32 time: {1 / speed:.2f} (this CPU: "
    f"{torch.backends.cpu.get_cpu_capability()}, a shared machine)"
)
""", "nbval-ignore-output"),
code(r"""
print(
    "bf16 tracks fp32 within 0.02 nats at every step, every seed:",
    max(gaps) < 0.02,
)
print(
    "both learn (loss falls by more than 0.7 nats):",
    all(curves[k][0] - curves[k][-1] > 0.7 for k in curves),
)
print("bf16 changed the losses (autocast was on):", max(gaps) > 0)
assert 0 < max(gaps) < 0.02
assert all(curves[k][0] - curves[k][-1] > 0.7 for k in curves)
"""),
md(r"""
The two curves agree to within 0.02 nats at every step of every seed. How much faster bf16 is depends
on the hardware: on a CPU with bf16 matrix units (Intel AMX) the matmuls run several times
faster; on one without, autocast can even be slower, since every product pays for conversions.
The ratio printed above is this machine's and is not a claim of the book. On GPUs bf16 runs on
the tensor cores, which is where most of GPT-scale training's speed comes from.
"""),
md(r"""
## 5. GPT-3's sparse layers

GPT-3 is GPT-2's architecture with one change in the attention: "we use alternating dense and
locally banded sparse attention patterns in the layers of the transformer, similar to the Sparse
Transformer" {cite:p}`brown2020language,child2019generating`. A *locally banded* layer lets token
$i$ attend only to the $w$ most recent tokens, $i - w < j \le i$; the dense layers in between
see the whole causal context, so information still travels any distance, one dense layer at a
time. The paper does not give the band width $w$; `GPTConfig(attention_layout="alternating",
sparse_band=w)` makes layers 0, 2, 4, … dense and 1, 3, 5, … banded.
"""),
code(r"""
show(banded_causal_mask)
"""),
code(r"""
T, w = 24, 6
fig, axes = plt.subplots(
    1,
    3,
    figsize=(8, 3.2),
    layout="constrained",
    gridspec_kw={"width_ratios": [1, 1, 1.25]},
)
panels = (
    ("dense: layers 0, 2, ...", causal_mask(T)),
    (f"banded, w = {w}: layers 1, 3, ...", banded_causal_mask(T, w)),
)
for ax, (title, m) in zip(axes[:2], panels):
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set(xlabel="key position j", ylabel="query position i")
bar = fig.colorbar(im, ax=axes[:2], ticks=[0, 1], shrink=0.7, pad=0.02)
bar.ax.set_yticklabels(["masked", "attended"])
t_grid = np.arange(1, 2049)
axes[2].plot(
    t_grid, [attended_pairs(int(t)) for t in t_grid], label="dense causal"
)
axes[2].plot(
    t_grid,
    [attended_pairs(int(t), 256) for t in t_grid],
    label="banded, w = 256",
)
axes[2].set(xlabel="context length T", ylabel="(query, key) pairs")
axes[2].set_title("scores per layer", fontsize=9)
axes[2].legend(fontsize=8)
plt.show()
"""),
code(r"""
set_seed(0)
SP = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=32)
dense = GPT(GPTConfig(**SP)).eval()
sparse = GPT(
    GPTConfig(**SP, attention_layout="alternating", sparse_band=16)
).eval()
sparse.load_state_dict(dense.state_dict())
x = torch.randint(0, 65, (2, 64), generator=torch.Generator().manual_seed(2))
with torch.no_grad():
    d, s_ = dense(x)[0], sparse(x)[0]
    y = x.clone()
    y[:, 40:] = (y[:, 40:] + 1) % 65  # change every token from 40 on
    s_y = sparse(y)[0]
print(
    "equal to dense while T <= band:",
    torch.allclose(d[:, :16], s_[:, :16], atol=1e-5),
)
print(
    "different beyond the band:",
    not torch.allclose(d[:, 16:], s_[:, 16:], atol=1e-3),
)
print(
    "positions < 40 unchanged by tokens >= 40:",
    torch.allclose(s_[:, :40], s_y[:, :40], atol=1e-5),
)
assert torch.allclose(d[:, :16], s_[:, :16], atol=1e-5)
assert not torch.allclose(d[:, 16:], s_[:, 16:], atol=1e-3)
assert torch.allclose(s_[:, :40], s_y[:, :40], atol=1e-5)
"""),
code(r"""
n_ctx, band = 2048, 256
dense_pairs, banded_pairs = attended_pairs(n_ctx), attended_pairs(n_ctx, band)
half = (dense_pairs + banded_pairs) / 2 / dense_pairs
print(
    f"T = {n_ctx}: dense {dense_pairs:,} pairs, banded (w = {band}) "
    f"{banded_pairs:,} = {banded_pairs / dense_pairs:.1%}"
)
print(f"alternating layers: {half:.1%} of the dense model's scores")
mem = {}
for name, m in (("dense", dense), ("alternating", sparse)):
    m.train()
    mem[name] = scaling.saved_activation_bytes(
        lambda: m(x, x)[1], exclude=list(m.parameters())
    )
print(
    "bytes saved for backward, dense vs alternating:",
    f"{mem['dense']:,} {mem['alternating']:,}",
)
g3 = scaling.GPT3
score_flops = 12 * g3["n_layer"] * g3["n_ctx"] * g3["d_model"]  # per token
weight_flops = 6 * g3["params"]
share = score_flops / (score_flops + weight_flops)
print(
    f"GPT-3, training FLOPs per token: weights 6N = {weight_flops:.3g}, "
    f"scores {score_flops:.3g} ({share:.1%})"
)
assert abs(banded_pairs / dense_pairs - 0.234) < 0.001
assert abs(half - 0.617) < 0.001
assert mem["dense"] == mem["alternating"]  # the mask saves nothing here
assert share < 0.03
"""),
md(r"""
At GPT-3's context of 2,048 tokens a band of 256 (an assumption; the paper does not say) computes
23% of the dense layer's scores, so alternating layers need 62% of the dense model's attention
scores — and nothing of its other work, which for GPT-3 is almost all of the FLOPs: $6N$ per
token for the weights against $12\,n_\text{layer} T h$ for the scores at full context, under 3%
(printed). And the asserts show the chapter 3 lesson again: this library's attention computes the
full $T \times T$ score matrix and *then* masks it, so the banded model stores exactly as many
bytes as the dense one and does the same arithmetic. A
mask only saves work when a kernel never computes the masked blocks — the Sparse Transformer's
block-sparse GPU kernels {cite:p}`child2019generating`, or a FlashAttention-style kernel with a
sliding window {cite:p}`dao2022flashattention`.
"""),
md(r"""
## 6. The laws of scale

{cite:t}`kaplan2020scaling` trained transformer language models over seven orders of magnitude
of size and found the test loss falling as a power law in the number of non-embedding parameters
$N$ (when data and compute are not the limit), $L(N) = (N_c / N)^{\alpha_N}$ with
$\alpha_N \approx 0.076$, and similar laws in the dataset size $D$ and in compute $C \approx 6ND$.
{cite:t}`hoffmann2022training` ("Chinchilla") refitted with a loss floor,
$L(N, D) = E + A/N^{\alpha} + B/D^{\beta}$ ($\alpha = 0.34$, $\beta = 0.28$), and concluded that
for a fixed compute budget $N$ and $D$ should grow equally, about **20 tokens per parameter** —
far more data per parameter than GPT-3 used. In small, the same experiment:
`scripts/experiments/scaling.py` trains six character-level GPTs from 0.9k to 200k non-embedding
parameters (225×) for 100, 300 and 900 steps of 1,024 characters (three seeds at 900 steps, one
at 100 and 300) and scores each on the same 100,000 validation characters. We fit
$L(N) = L_\infty + (N_c/N)^{\alpha}$ to the 900-step runs (the mean of the seeds) with
`fit_power_law`:
"""),
code(r"""
show(scaling.fit_power_law)
"""),
code(r"""
sweep = json.loads((data_dir() / "results" / "scaling.json").read_text())
runs = sweep["runs"]
budgets = sweep["settings"]["budgets_steps"]
sizes = sorted({r["N"] for r in runs})
mean_loss = {
    (n, st): np.mean(
        [r["val_loss"] for r in runs if r["N"] == n and r["steps"] == st]
    )
    for n in sizes
    for st in budgets
}
seeds_spread = max(
    np.ptp(
        [
            r["val_loss"]
            for r in runs
            if r["N"] == n and r["steps"] == budgets[-1]
        ]
    )
    for n in sizes
)
fit = scaling.fit_power_law(sizes, [mean_loss[n, budgets[-1]] for n in sizes])
print(
    f"{len(runs)} runs, N from {sizes[0]:,} to {sizes[-1]:,} "
    f"({sizes[-1] / sizes[0]:.0f}x); largest spread between seeds: "
    f"{seeds_spread:.3f} nats"
)
print(
    f"fit at {budgets[-1]} steps: L_inf = {fit['l_inf']:.2f}, "
    f"alpha = {fit['alpha']:.2f}, N_c = {fit['n_c']:.3g}, "
    f"rmse = {fit['rmse']:.3f} nats"
)
print(
    f"published: Kaplan alpha_N = {scaling.KAPLAN['alpha_N']}, "
    f"Chinchilla alpha = {scaling.CHINCHILLA['alpha']}"
)
"""),
code(r"""
fig, axes = plt.subplots(2, 1, figsize=(8, 7.5))
n_grid = np.geomspace(sizes[0] / 1.5, sizes[-1] * 3, 100)
for st, marker in zip(budgets, "o^s"):
    axes[0].plot(
        sizes,
        [mean_loss[n, st] for n in sizes],
        marker,
        ls="-",
        label=f"{st} steps ({st * 1024 / 1e6:.2f}M tokens)",
    )
fitted = scaling.power_law(n_grid, fit["l_inf"], fit["n_c"], fit["alpha"])
axes[0].plot(
    n_grid,
    fitted,
    "k--",
    label=f"fit: {fit['l_inf']:.2f} + (N_c/N)^{fit['alpha']:.2f}",
)
axes[0].set(
    xscale="log",
    yscale="log",
    xlabel="non-embedding parameters N",
    ylabel="validation loss (nats/char)",
    title="loss against size",
)
axes[0].legend(fontsize=8)
reducible = [mean_loss[n, budgets[-1]] - fit["l_inf"] for n in sizes]
axes[1].plot(
    sizes, reducible, "s", label=f"measured - L_inf ({budgets[-1]} steps)"
)
axes[1].plot(
    n_grid,
    (fit["n_c"] / n_grid) ** fit["alpha"],
    "k--",
    label=f"slope -{fit['alpha']:.2f} (fit)",
)
for name, alpha, style in (
    ("Kaplan", scaling.KAPLAN["alpha_N"], ":"),
    ("Chinchilla", scaling.CHINCHILLA["alpha"], "-."),
):
    axes[1].plot(
        n_grid,
        reducible[0] * (sizes[0] / n_grid) ** alpha,
        style,
        label=f"slope -{alpha} ({name}), through the first point",
    )
axes[1].set(
    xscale="log",
    yscale="log",
    xlabel="non-embedding parameters N",
    ylabel="reducible loss L - L_inf",
    title="log-log: the exponent is the slope",
)
axes[1].legend(fontsize=8)
for ax, ticks in zip(axes, ([2, 2.5, 3, 3.5], [0.3, 0.5, 1, 2, 3])):
    ax.set_yticks(ticks)  # plain numbers on the log-scaled axes
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
    ax.yaxis.set_minor_formatter(NullFormatter())
fig.tight_layout()
plt.show()
"""),
code(r"""
def seeds(n, st):
    return [r["val_loss"] for r in runs if r["N"] == n and r["steps"] == st]


last = budgets[-1]
# every seed of each size beats every seed of the size below it
size_gain = all(
    max(seeds(big, last)) < min(seeds(small, last))
    for small, big in zip(sizes, sizes[1:])
)
# 100 and 300 steps have one seed: ask for a margin of twice the largest
# spread between seeds measured at 900 steps
margin = 2 * seeds_spread
more_data = all(
    mean_loss[n, a] - mean_loss[n, b] > margin
    for n in sizes
    for a, b in zip(budgets, budgets[1:])
)
efficient = (
    mean_loss[sizes[0], last] - mean_loss[sizes[-1], budgets[1]] > margin
)
print(
    f"at {last} steps, every seed of each size beats every seed of the "
    "size below:",
    size_gain,
)
print(
    f"every size gains from every increase in tokens (by > {margin:.2f}):",
    more_data,
)
print(
    f"the largest model at {budgets[1]} steps beats the smallest at "
    f"{last} (by > {margin:.2f}):",
    efficient,
)
assert size_gain and more_data and efficient
tokens_per_param = last * 1024 / sizes[-1]
print(f"the largest model's tokens per parameter: {tokens_per_param:.1f}")
assert fit["rmse"] < 0.03 and sizes[-1] / sizes[0] > 30
assert seeds_spread < 0.05
assert fit["l_inf"] < 0.1  # the fit chooses (almost) no floor
assert 0.02 < fit["alpha"] < 0.15  # the order of Kaplan's 0.076
assert tokens_per_param < 5
"""),
md(r"""
How far does a character model on Shakespeare follow the published laws? In shape, further than
one might expect; in numbers, not at all. The loss falls with every increase in size (with no
overlap between the seeds of neighbouring sizes), every model gains from more tokens, and larger
models are more sample-efficient (the largest, after a third of the tokens, beats the smallest
after all of them) — Kaplan et al.'s qualitative picture. The last two rest on single runs at 100
and 300 steps, so the assert asks each difference to exceed twice the largest spread between
seeds measured at 900 steps.
Allowed any floor $L_\infty \ge 0$, the least-squares fit chooses none: over this range the six
points are best described by a pure power law, Kaplan's form, with an exponent (printed above) of
the same order as their $\alpha_N = 0.076$ and far from Chinchilla's $0.34$, and the fit misses
the points by a few hundredths of a nat. The exponents are not comparable, though, and a close
one would be luck: theirs come from $N$ between $10^3$ and $10^9$ on WebText2's or MassiveText's
BPE tokens, trained near convergence; ours from $N$ up to $2 \times 10^5$ on 65 characters and
0.9M training tokens, so the largest model saw under 5 tokens per parameter — about a quarter
of Chinchilla's 20 — and is limited by data as much as by size (Chinchilla's exponent also belongs to
a different formula, with a data term). The laws themselves say that the exponent is a property
of the data and the model family; our $\alpha$ describes this sweep only, and the right panel
compares slopes, not values. A test (`tests/test_scaling_experiment.py`) re-runs two of the
sweep's runs and checks them against the committed file.

**GPT-3's compute, spent optimally.** With $C = 6ND$ and Chinchilla's $D \approx 20N$,
$C = 120 N^2$:
"""),
code(r"""
C = scaling.training_compute(scaling.GPT3["params"], scaling.GPT3["tokens"])
opt = scaling.chinchilla_optimal(C)
print(
    f"GPT-3: N = 175B, D = 300B tokens, C = 6ND = {C:.3g} FLOPs, "
    f"{scaling.GPT3['tokens'] / scaling.GPT3['params']:.1f} tokens/param"
)
print(
    f"the same C at 20 tokens/parameter: N = {opt['params'] / 1e9:.0f}B on "
    f"{opt['tokens'] / 1e12:.2f}T tokens"
)
loss_gpt3 = scaling.chinchilla_loss(175e9, 300e9)
loss_opt = scaling.chinchilla_loss(opt["params"], opt["tokens"])
print(
    f"Chinchilla's fitted loss: GPT-3 {loss_gpt3:.3f}, "
    f"compute-optimal {loss_opt:.3f} nats"
)
print(f"Brown et al. report {scaling.GPT3['train_flops']:.3g} FLOPs")
assert abs(C / scaling.GPT3["train_flops"] - 1) < 0.005  # 6ND is their count
assert 50e9 < opt["params"] < 52e9 and 1e12 < opt["tokens"] < 1.05e12
assert scaling.chinchilla_loss(
    opt["params"], opt["tokens"]
) < scaling.chinchilla_loss(175e9, 300e9)
"""),
md(r"""
The same compute would have been best spent, by Chinchilla's fit, on a model of about 51B
parameters trained on about 1 trillion tokens (6ND agrees with the paper's own count of
$3.14 \times 10^{23}$ to 0.5%); its fitted loss is lower than GPT-3's (both values
are on Chinchilla's own data, so only the difference means something). Kaplan et al.'s earlier fit
had recommended growing $N$ much faster than $D$ ($N \propto C^{0.73}$), which is the choice
GPT-3 made. Chinchilla (70B parameters, 1.4T tokens) then beat the 280B-parameter Gopher trained
with the same compute {cite:p}`hoffmann2022training`.
"""),
md(r"""
## Play with it

Choose a model size, a number of tokens, a number of devices, the precision and the kind of
parallelism: the explorer gives the training compute $6ND$, the model state per device (does it
fit in 80 GB?), the fewest devices that can hold it sharded, the days of training (at 40% of an
A100's 312 bf16 TFLOP/s on every device), and the compute-optimal split of the same compute.
Every number comes from `gptlib.scaling` (through `gptlib.viz.run_plan`), and the sliders start
exactly at GPT-3's 175B parameters and 300B tokens (the next cell checks what it shows). (It
needs a running kernel; the HTML book shows its saved state, and the figure below shows GPT-3's
case.)
"""),
code(r"""
explorer = scale_explorer(n_params=175e9, tokens=300e9, devices=1024)
table = explorer.children[-1].value  # the HTML table it shows
assert [w.label for w in explorer.children[:3]] == ["175B", "300B", "1,024"]
assert "3.15e+23 FLOPs" in table and "28.5 days" in table
explorer
"""),
code(r"""
devices = np.unique(np.geomspace(1, 4096, 60).astype(int))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for parallel, style in (("ddp", "-"), ("fsdp", "--")):
    per_device = [
        run_plan(175e9, 300e9, int(n), parallel=parallel)["state_gb"]
        for n in devices
    ]
    axes[0].plot(devices, per_device, style, label=parallel.upper())
axes[0].axhline(80, color="gray", lw=1)
axes[0].text(1.2, 95, "80 GB device")
axes[0].set(
    xscale="log",
    yscale="log",
    xlabel="devices",
    ylabel="model state per device (GB)",
    title="GPT-3 175B, mixed precision",
    ylim=(0.3, 1e4),
)
axes[0].legend()
axes[1].plot(
    devices, [run_plan(175e9, 300e9, int(n))["days"] for n in devices]
)
axes[1].set(
    xscale="log",
    yscale="log",
    xlabel="devices",
    ylabel="days",
    title="at 40% of 312 TFLOP/s each",
)
fig.tight_layout()
plt.show()
plan = run_plan(175e9, 300e9, 1024)
one_gpu_years = run_plan(175e9, 300e9, 1)["days"] / 365.25
print(
    f"1,024 devices: {plan['days']:.1f} days; one device: "
    f"{one_gpu_years:.0f} years"
)
assert run_plan(175e9, 300e9, 4096, parallel="ddp")["state_gb"] == 2800
assert plan["fits"] and 25 < plan["days"] < 32 and 75 < one_gpu_years < 85
"""),
md(r"""
```{admonition} Common misconception: "GPT-3 trains an unlimited number of parameters and is a brand-new kind of model"
:class: warning
A common explanation says that GPT-3 "learns from a large amount of text and then trains an
unlimited number of model parameters", that it was proposed by Microsoft, and that in complexity
it "surpasses all previous neural network models, which means it is a completely new model type".
None of this holds. GPT-3 was built by OpenAI {cite:p}`brown2020language` (Microsoft provided the
computing cluster); its largest model has a fixed, finite 175 billion parameters, and that
finiteness is exactly its cost: 2.8 TB of training state, 35 devices' worth before a single
activation, $3 \times 10^{23}$ FLOPs, as computed above. And the architecture is GPT-2's — the
same decoder blocks as chapter 6 — except for the alternating dense and banded attention layers
of section 5. What was new was the scale, and the laws of scale that predicted what it would buy.
```
"""),
md(r"""
## Exercises

**Exercise 1.** A run on 8 devices of 80 GB trains a 20B-parameter model in mixed precision.
Does it fit under DDP? Under FSDP? What is the largest model FSDP can hold on those 8 devices
(model state only)?
"""),
code(r"""
# Solution
ddp_gb = scaling.training_state_bytes(20e9, "mixed")["total"] / 1e9
fsdp_gb = scaling.training_state_bytes(20e9, "mixed", shards=8)["total"] / 1e9
largest = 8 * 80e9 / 16  # all 8 devices' memory, 16 bytes per parameter
print(
    f"DDP {ddp_gb:.0f} GB per device, FSDP {fsdp_gb:.0f} GB; "
    f"largest under FSDP: {largest / 1e9:.0f}B parameters"
)
assert ddp_gb == 320 and fsdp_gb == 40
assert not run_plan(20e9, 1e9, 8, parallel="ddp")["fits"]
assert run_plan(20e9, 1e9, 8, parallel="fsdp")["fits"]
assert run_plan(largest, 1e9, 8, parallel="fsdp")["fits"]
assert not run_plan(1.01 * largest, 1e9, 8, parallel="fsdp")["fits"]
""", "hide-cell"),
md(r"""
**Exercise 2.** Korthikanti et al.'s formula has a term linear in $s$ and one quadratic in $s$.
At which sequence length does the attention-score term $5as^2b$ equal the $34sbh$ term for GPT-3's
shape ($h = 12288$, $a = 96$)? Check your answer with `scaling.activation_bytes`.
"""),
code(r"""
# Solution: 5 a s^2 b = 34 s b h  <=>  s = 34 h / (5 a)
s_equal = 34 * 12288 / (5 * 96)
print(f"s = {s_equal:.1f}")


def quadratic_over_linear(s):  # (total - 34 sbh) / 34 sbh, from the library
    linear = 34 * s * 12288
    total = scaling.activation_bytes(s, 1, 12288, 96)["total"]
    return (total - linear) / linear


assert quadratic_over_linear(870) < 1 < quadratic_over_linear(871)
""", "hide-cell"),
md(r"""
**Exercise 3.** Under the same compute as GPT-3 ($3.15 \times 10^{23}$ FLOPs), how many tokens per
parameter would a 13B model get? Is that closer to Chinchilla's 20 than GPT-3's 1.7?
"""),
code(r"""
# Solution
tokens_13b = C / (6 * 13e9)
ratio = tokens_13b / 13e9
print(f"{tokens_13b / 1e12:.2f}T tokens, {ratio:.0f} tokens per parameter")
gpt3_ratio = scaling.GPT3["tokens"] / scaling.GPT3["params"]
assert math.isclose(scaling.training_compute(13e9, tokens_13b), C)
assert abs(ratio - 20) > abs(gpt3_ratio - 20)  # farther from 20 than GPT-3
""", "hide-cell"),
md(r"""
## Key points

- `torchrun --nproc_per_node N -m gptlib.pretrain --config …` runs the book's training on N
  processes: each rank trains on its slice of the same seeded global batch, DDP averages the
  gradients, rank 0 alone writes. Measured here: bit for bit the weights of `grad_accum=2`, and
  those of one process with the same global batch to within $5 \times 10^{-4}$ (rounding order).
- Data parallelism does not make room for a bigger model: each DDP rank holds 16 bytes per
  parameter. FSDP's `fully_shard` trains to the same losses with half of that per rank on 2
  ranks, $1/N$ on $N$.
- Training state is 16 bytes per parameter with AdamW in fp32 *and* in mixed precision: 2.8 TB
  for GPT-3. Activations add $sbh(34 + 5as/h)$ bytes per layer (measured to the byte with fused
  modules, once the norms' statistics and the causal mask are added); activation checkpointing trades an extra forward pass for most of them.
- bf16 keeps fp32's range (no loss scaling) with 7 mantissa bits; a bf16-autocast run tracked
  fp32 within 0.02 nats on 3 seeds. fp16 rounds gradients below $3 \times 10^{-8}$ (half its
  smallest subnormal) to zero unless the loss is scaled.
- GPT-3 alternates dense and locally banded attention; a banded mask saves compute only in a
  kernel that skips the masked blocks.
- In a small sweep of character models loss falls with N as a power law too (the fit chose no
  floor), with an exponent of the order of Kaplan's; the exponents depend on data, model family
  and training budget, so the agreement in form is the finding, not the number.
- Chinchilla's 20 tokens per parameter puts GPT-3's compute at ~51B parameters and ~1T tokens.

## References

GPT-3 {cite:p}`brown2020language`; sparse attention {cite:p}`child2019generating`; DDP
{cite:p}`li2020pytorch`; ZeRO and FSDP {cite:p}`rajbhandari2020zero,zhao2023pytorch`; Megatron-LM
{cite:p}`shoeybi2019megatron`; activation memory and checkpointing
{cite:p}`korthikanti2023reducing,chen2016training`; mixed precision and bf16
{cite:p}`micikevicius2018mixed,kalamkar2019study`; FlashAttention {cite:p}`dao2022flashattention`;
the laws of scale {cite:p}`kaplan2020scaling,hoffmann2022training`. Full entries are on the
[References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "09_scaling.ipynb", CELLS)
