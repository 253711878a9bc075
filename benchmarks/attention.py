"""Explicit vs. fused causal attention, forward + backward, over the sequence length T.

    python benchmarks/attention.py                 # CPU, float32, T = 64 .. 1024
    python benchmarks/attention.py --device cuda --T 256 1024 4096

Both paths run side by side in the same process, alternating, so the ratio explicit/fused is
meaningful even on a busy machine (the absolute milliseconds are not). Memory is measured as the
bytes of the tensors autograd saves for the backward pass (``saved_tensors_hooks``, each storage
counted once): the activation memory of one attention call, independent of the device and the
allocator. The explicit path keeps the (B, H, T, T) weights, so it grows as T^2; the fused kernel
(FlashAttention, Dao et al. 2022) keeps only q, k, v, the output and one number per row. On CUDA
the peak allocated memory (``torch.cuda.max_memory_allocated``) is printed as well.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gptlib.attention import fused_attention, scaled_dot_product_attention
from gptlib.masking import causal_mask


def explicit(q, k, v):
    return scaled_dot_product_attention(q, k, v, causal_mask(q.size(-2), device=q.device))


def fused(q, k, v):
    return fused_attention(q, k, v, is_causal=True)


def step(fn, q, k, v):
    """One forward + backward pass."""
    out = fn(q, k, v)
    out.backward(torch.ones_like(out))
    q.grad = k.grad = v.grad = None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_bytes(fn, q, k, v) -> int:
    """Bytes of the distinct storages autograd saves for the backward pass of ``fn``."""
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(q, k, v)
    del out
    return sum(storages.values())


def peak_cuda_bytes(fn, q, k, v) -> int:
    torch.cuda.synchronize(q.device)
    torch.cuda.reset_peak_memory_stats(q.device)
    base = torch.cuda.memory_allocated(q.device)
    step(fn, q, k, v)
    torch.cuda.synchronize(q.device)
    return torch.cuda.max_memory_allocated(q.device) - base


def bench(T, args, device, dtype):
    g = torch.Generator(device=device).manual_seed(T)
    q, k, v = (torch.randn(args.B, args.H, T, args.d, generator=g, device=device, dtype=dtype)
               .requires_grad_() for _ in range(3))
    with torch.no_grad():  # same function: check before timing
        diff = (explicit(q, k, v) - fused(q, k, v)).abs().max().item()
    for _ in range(args.warmup):
        step(explicit, q, k, v)
        step(fused, q, k, v)
    times = {explicit: [], fused: []}
    for _ in range(args.repeats):
        for fn in (explicit, fused):            # alternate: both see the same machine load
            sync(device)
            t0 = time.perf_counter()
            step(fn, q, k, v)
            sync(device)
            times[fn].append(time.perf_counter() - t0)
    row = dict(T=T, diff=diff,
               ms_e=1e3 * statistics.median(times[explicit]), ms_f=1e3 * statistics.median(times[fused]),
               saved_e=saved_bytes(explicit, q, k, v), saved_f=saved_bytes(fused, q, k, v),
               tt=args.B * args.H * T * T * q.element_size())
    if device.type == "cuda":
        row["peak_e"], row["peak_f"] = peak_cuda_bytes(explicit, q, k, v), peak_cuda_bytes(fused, q, k, v)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    p.add_argument("--B", type=int, default=2)
    p.add_argument("--H", type=int, default=4)
    p.add_argument("--d", type=int, default=64, help="head dim")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "float64"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    mib = 2.0 ** 20
    print(f"causal attention, forward+backward, B={args.B} H={args.H} d={args.d} {args.dtype} on "
          f"{device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of {args.repeats} after {args.warmup} warm-up, explicit and fused alternating")
    print("saved MiB = tensors autograd keeps for backward (measured); BHTT MiB = one (B,H,T,T) "
          "tensor (analytic)" + ("; peak MiB = torch.cuda.max_memory_allocated" if device.type == "cuda" else ""))
    head = f"{'T':>6} {'explicit ms':>12} {'fused ms':>10} {'ratio e/f':>10} {'saved MiB e':>12} " \
           f"{'saved MiB f':>12} {'BHTT MiB':>9}"
    if device.type == "cuda":
        head += f" {'peak MiB e':>11} {'peak MiB f':>11}"
    print(head + f" {'max |diff|':>10}")
    for T in args.T:
        r = bench(T, args, device, dtype)
        line = f"{T:>6} {r['ms_e']:>12.2f} {r['ms_f']:>10.2f} {r['ms_e'] / r['ms_f']:>10.2f} " \
               f"{r['saved_e'] / mib:>12.2f} {r['saved_f'] / mib:>12.2f} {r['tt'] / mib:>9.2f}"
        if device.type == "cuda":
            line += f" {r['peak_e'] / mib:>11.2f} {r['peak_f'] / mib:>11.2f}"
        print(line + f" {r['diff']:>10.1e}", flush=True)


if __name__ == "__main__":
    main()
