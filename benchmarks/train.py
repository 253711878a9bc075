"""Training speed: gptlib against a reference model written with PyTorch's modules, and time-to-loss.

    python benchmarks/train.py --threads 1
    python benchmarks/train.py --threads 1 --data ../shared/data/tinyshakespeare.txt

1. **Peak**: the best float32 matmul rate of this machine (square matmuls), and which CPU kernel
   (ATen's vectorised code path, the BLAS) ran.
2. **Throughput**: one training step (forward, backward, gradient clipping, AdamW) of three
   models with the same weights' shapes and parameter count (asserted), the steps alternating in
   one process so that all see the same machine load: ``reference`` is
   ``benchmarks/reference_model.py``, written the way nanoGPT's ``model.py`` is (``nn.Linear``,
   ``F.layer_norm``, ``nn.GELU(approximate="tanh")``, ``F.scaled_dot_product_attention(
   is_causal=True)``, AdamW as nanoGPT makes it on a CPU); ``fast`` is ``GPT(GPTConfig(fast=True))``
   with ``make_optimizer`` (fused AdamW); ``teaching`` the written-out default path. Shapes:
   nanoGPT's CPU recipe (4 layers, 4 heads, width 128, block 64, batch 12, no bias, dropout 0) and
   a wider one (6 layers, 6 heads, width 384, block 256, batch 4). Printed: ms per step (median
   and fastest), tokens/s, MFU = ``flops_per_token`` x tokens/s / peak, and the throughput
   ratios fast / reference (target >= 1.0) and teaching / reference (target >= 0.8), from the
   medians of the alternating steps.
3. **Time-to-loss** (``--data FILE``): one side-by-side pair of ``scripts/experiments/speedrun.py``
   — the reference model with nanoGPT's recipe against the book's record recipe, each on its own
   core at the same time — and the ratio of their training times; then the summary of the
   committed runs in ``data/results/speedrun.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import TrainConfig, make_optimizer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from reference_model import ReferenceGPT, make_reference_optimizer  # noqa: E402

SHAPES = {"nanoGPT CPU recipe 4L/128, T64, B12": (dict(n_layer=4, n_head=4, n_embd=128,
                                                         block_size=64), 12),
          "wide 6L/384, T256, B4": (dict(n_layer=6, n_head=6, n_embd=384, block_size=256), 4)}
KINDS = ("reference", "fast", "teaching")


def matmul_peak(sizes=(256, 512, 1024, 2048), repeats=5) -> float:
    """Best float32 GFLOP/s over square matmuls (2 n^3 FLOPs each)."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        best = max(best, 2 * n ** 3 / min(times) / 1e9)
    return best


def cpu_kernel() -> str:
    """Which vectorised CPU code path ATen dispatches to, and the BLAS library behind matmuls."""
    cfg = torch.__config__.show()
    blas = next((line.split("=")[1].strip() for line in cfg.splitlines()
                 if "BLAS_INFO" in line), "unknown")
    return (f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()}, BLAS {blas}, "
            f"oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}")


def build(kind: str, mcfg: dict, vocab: int = 65):
    """(model, optimizer) of one kind; the same initial weights for all kinds."""
    cfg = dict(vocab_size=vocab, bias=False, dropout=0.0, **mcfg)
    torch.manual_seed(0)
    if kind == "reference":
        model = ReferenceGPT(**cfg)
        return model.train(), make_reference_optimizer(model)
    model = GPT(GPTConfig(**cfg, fast=kind == "fast")).train()
    tcfg = TrainConfig(steps=10, batch_size=1, block_size=mcfg["block_size"], betas=(0.9, 0.99))
    return model, make_optimizer(model, tcfg)


def step_times(mcfg: dict, batch: int, repeats: int, warmup: int = 2) -> dict:
    """Seconds per training step for each kind, the kinds alternating step by step."""
    state = {kind: build(kind, mcfg) for kind in KINDS}
    n = {kind: sum(p.numel() for p in m.parameters()) for kind, (m, _) in state.items()}
    assert len(set(n.values())) == 1, f"parameter counts differ: {n}"
    x = torch.randint(65, (batch, mcfg["block_size"]), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, 1)

    def one(kind):
        model, opt = state[kind]
        t0 = time.perf_counter()
        model(x, y)[1].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for _ in range(warmup):
        for kind in KINDS:
            one(kind)
    times = {kind: [] for kind in KINDS}
    for i in range(repeats):
        for kind in (KINDS if i % 2 == 0 else KINDS[::-1]):         # no kind always goes first
            times[kind].append(one(kind))
    return times, n["reference"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="a plain-text file (tinyshakespeare.txt): also run the "
                                  "time-to-loss pair")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=15, help="timed steps per kind and shape")
    p.add_argument("--shapes", nargs="*", default=list(SHAPES), help=f"from {list(SHAPES)}")
    p.add_argument("--seed", type=int, default=0, help="seed of the time-to-loss pair")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 on CPU")
    print(f"CPU kernel: {cpu_kernel()}")
    peak = matmul_peak()
    print(f"\n1. matmul peak: {peak:.1f} GFLOP/s (best of square float32 matmuls, n = 256..2048)")
    print(f"\n2. training step (forward + backward + clip + AdamW), {args.repeats} steps per kind, "
          f"kinds alternating")
    print(f"{'shape':<36} {'kind':<10} {'params':>8} {'median ms':>10} {'best ms':>8} "
          f"{'tokens/s':>9} {'MFU':>6} {'vs ref':>7}")
    for name in args.shapes:
        mcfg, batch = SHAPES[name]
        times, n_params = step_times(mcfg, batch, args.repeats)
        flops = GPT(GPTConfig(vocab_size=65, bias=False, **mcfg)).flops_per_token()
        med = {k: statistics.median(t) for k, t in times.items()}
        for kind in KINDS:
            rate = batch * mcfg["block_size"] / med[kind]
            print(f"{name:<36} {kind:<10} {n_params / 1e6:>7.2f}M {1e3 * med[kind]:>10.1f} "
                  f"{1e3 * min(times[kind]):>8.1f} {rate:>9.0f} {100 * flops * rate / 1e9 / peak:>5.1f}% "
                  f"{med['reference'] / med[kind]:>6.2f}x")
        print(f"  throughput fast / reference {med['reference'] / med['fast']:.2f}x "
              f"(target >= 1.0), teaching / reference {med['reference'] / med['teaching']:.2f}x "
              f"(target >= 0.8); from the fastest steps: "
              f"{min(times['reference']) / min(times['fast']):.2f}x and "
              f"{min(times['reference']) / min(times['teaching']):.2f}x", flush=True)
    if args.data:
        sys.path.insert(0, str(HERE.parent / "scripts" / "experiments"))
        import speedrun
        print(f"\n3. time-to-loss on {args.data}: val loss <= {speedrun.TARGET} on every window of "
              f"the last 10%; the reference with nanoGPT's recipe and the record recipe side by "
              f"side, one core each (seed {args.seed})")
        lines = speedrun.run_pair("baseline", "record", args.seed, trace=False, eval_every=0)
        for line in lines:
            print(f"  {line['recipe']:<9} {line['steps']:>5} steps {line['time_s']:>7.1f} s  "
                  f"val loss {line['val_loss']:.3f}  target reached: {line['reached']}")
        base, rec = lines
        print(f"  record / reference time: {rec['time_s'] / base['time_s']:.2f}x (target <= 0.5, "
              f"and the record must reach the target)")
        speedrun.summary()


if __name__ == "__main__":
    main()
