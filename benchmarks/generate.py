"""Generation speed with and without the KV cache, 500 new tokens (greedy, batch 1).

    python benchmarks/generate.py
    python benchmarks/generate.py --new-tokens 1000 --threads 2

Without the cache, step t re-runs the model on all t tokens so far: O(t) work per token, O(n^2)
in total. With it, each step runs one token through the model and attends to the cached keys and
values: the per-token cost stays almost flat. Both paths run alternately in one process (the
ratio is meaningful on a busy machine, the absolute tokens/s less so) and must produce the same
tokens. Models have random weights (speed does not depend on them) and a 1024-token context,
except the last row: the shipped model, whose 128-token context is shorter than the output, so
past it both paths slide a window and the cache has to be rebuilt every step — the cache only
helps within a model's context when positions are absolute (learned position table).

The last column compares the cached path with the model's best case, one forward pass over the
whole generated sequence at once (prompt + new tokens, all positions in parallel, as in
training): ``forward tok/s`` is that sequence's length over the time of that single pass, and
``cached / forward`` how close one-token-at-a-time decoding comes to it. The cache is
preallocated (``KVCache``), so a step copies only its own keys and values.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from gptlib.generate import generate
from gptlib.model import GPT, GPTConfig

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "pretrained" / "shakespeare_char"
SHAPES = {"4L/128 (shipped shape)": dict(n_layer=4, n_head=4, n_embd=128),
          "4L/256": dict(n_layer=4, n_head=8, n_embd=256),
          "6L/384 (nanoGPT baby GPT)": dict(n_layer=6, n_head=6, n_embd=384)}


def shipped_model() -> tuple[str, GPT]:
    if (SHIPPED / "config.json").is_file():
        from gptlib.checkpoint import load_pretrained
        return "shipped model (context 128)", load_pretrained(SHIPPED)[0]
    torch.manual_seed(0)
    return "shipped shape, context 128", GPT(GPTConfig(vocab_size=65, block_size=128, n_layer=4,
                                                         n_head=4, n_embd=128))


def bench(model: GPT, prompt: torch.Tensor, new: int, repeats: int) -> dict:
    times = {True: [], False: []}
    outs = {}
    for _ in range(repeats):
        for cache in (True, False):                 # alternate: both see the same load
            t0 = time.perf_counter()
            outs[cache] = generate(model, prompt, new, temperature=0, use_cache=cache)
            times[cache].append(time.perf_counter() - t0)
    seq = outs[True][:, -model.config.block_size:]               # the whole generated sequence
    forward = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(seq)
            forward.append(time.perf_counter() - t0)
    return {"cached": new / statistics.median(times[True]),
            "uncached": new / statistics.median(times[False]),
            "forward": seq.size(1) / statistics.median(forward),
            "same": torch.equal(outs[True], outs[False])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--new-tokens", type=int, default=500)
    p.add_argument("--prompt-tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--teaching", action="store_true",
                   help="random models on the teaching path (default: the fast path)")
    p.add_argument("--shapes", nargs="*", default=list(SHAPES)[:2],
                   help=f"model shapes, from {list(SHAPES)}")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"greedy decoding of {args.new_tokens} tokens after a {args.prompt_tokens}-token prompt, "
          f"batch 1, float32, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of {args.repeats}, cached and uncached alternating")
    print(f"{'model':<30} {'params':>8} {'context':>8} {'cached tok/s':>13} {'uncached tok/s':>15} "
          f"{'speed-up':>9} {'same tokens':>12} {'forward tok/s':>14} {'cached/forward':>15}")
    models = []
    for name in args.shapes:
        torch.manual_seed(0)
        models.append((name, GPT(GPTConfig(vocab_size=65, block_size=1024, fast=not args.teaching,
                                           **SHAPES[name]))))
    models.append(shipped_model())
    for name, model in models:
        model.eval()
        prompt = torch.randint(model.config.vocab_size, (1, args.prompt_tokens),
                               generator=torch.Generator().manual_seed(0))
        r = bench(model, prompt, args.new_tokens, args.repeats)
        print(f"{name:<30} {model.num_parameters() / 1e6:>7.2f}M {model.config.block_size:>8} "
              f"{r['cached']:>13.0f} {r['uncached']:>15.0f} {r['cached'] / r['uncached']:>8.1f}x "
              f"{str(r['same']):>12} {r['forward']:>14.0f} {r['cached'] / r['forward']:>15.3f}",
              flush=True)


if __name__ == "__main__":
    main()
