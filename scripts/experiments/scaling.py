"""Chapter 9's experiment: the laws of scale in small — six model sizes, three token budgets.

    nice -n 10 python scripts/experiments/scaling.py --jobs 1    # writes data/results/scaling.json

Every run trains a character-level GPT (``gptlib.model.GPT``) with ``gptlib.pretrain.train`` on
the training plays; only the width/depth (``SIZES``), the number of steps (``BUDGETS``, hence the
tokens seen) and the seed change. The batch (16 windows of 64 characters = 1,024 tokens per
step) and the learning-rate schedule (warm-up, cosine to a tenth) are the same for all. Each
trained model is scored with ``dataset_loss`` on the first ``VAL_CHARS`` characters of the
validation plays (every window, no sampling), so every model is scored on the same text.

N is counted as Kaplan et al. (2020) count it: the non-embedding parameters (neither the token
table nor the position table), ``model.num_parameters(non_embedding=True) - wte.numel()``.
D is the number of tokens trained on. Runs are deterministic on a given machine (one thread,
seeded initialisation and batches). ``tests/test_scaling_experiment.py`` re-runs two of them.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "data" / "results" / "scaling.json"

# (n_layer, n_head, n_embd): non-embedding parameters from ~0.9k to ~200k (~230x)
SIZES = ((1, 2, 8), (1, 2, 16), (2, 2, 16), (2, 4, 32), (3, 4, 48), (4, 4, 64))
BUDGETS = (100, 300, 900)                  # optimizer steps; x 1,024 tokens each
BLOCK_SIZE = 64
TRAIN = dict(batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=30, weight_decay=0.1,
             grad_clip=1.0, eval_batches=2)
VAL_CHARS = 100_000


def load_data():
    """The character tokenizer and the train/val ids, (N,) int64 each (chapter 1's tokenizer)."""
    from gptlib.data import encode_text, load_text
    from gptlib.tokenizer import CharTokenizer

    train_text, val_text = load_text("train"), load_text("val")
    tok = CharTokenizer.train(train_text + val_text + load_text("test"))
    return tok, encode_text(train_text, tok), encode_text(val_text[:VAL_CHARS], tok)


def kaplan_n(model) -> int:
    """Non-embedding parameters, as in Kaplan et al. 2020: no token table, no position table."""
    return model.num_parameters(non_embedding=True) - model.wte.weight.numel()


def run_one(size, steps: int, seed: int = 0, data=None) -> dict:
    """Train one model of ``size = (n_layer, n_head, n_embd)`` for ``steps``; JSON-ready dict."""
    from gptlib import set_seed
    from gptlib.model import GPT, GPTConfig
    from gptlib.pretrain import TrainConfig, dataset_loss, train

    torch.set_num_threads(1)
    tok, train_ids, val_ids = load_data() if data is None else data
    n_layer, n_head, n_embd = size
    set_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=BLOCK_SIZE, n_layer=n_layer,
                          n_head=n_head, n_embd=n_embd, dropout=0.0))
    warmup = min(TRAIN["warmup_steps"], steps)
    cfg = TrainConfig(steps=steps, block_size=BLOCK_SIZE, seed=seed,
                      **{**TRAIN, "warmup_steps": warmup})
    t0 = time.perf_counter()
    result = train(model, train_ids, cfg)
    elapsed = time.perf_counter() - t0
    return {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "steps": steps, "seed": seed,
            "N": kaplan_n(model), "params_all": model.num_parameters(), "tokens": result.tokens,
            "flops": model.flops_per_token(BLOCK_SIZE) * result.tokens,
            "final_train_loss": round(result.history[-1]["train_loss"], 4),
            "val_loss": round(dataset_loss(model, val_ids, BLOCK_SIZE), 4),
            "train_s": round(elapsed, 1)}


def _job(args):
    size, steps, seed = args
    r = run_one(size, steps, seed)
    print(f"L{size[0]} C{size[2]:>3} N={r['N']:>7} steps {steps:>5} seed {seed}: "
          f"val {r['val_loss']:.4f}  ({r['train_s']:.0f} s)", flush=True)
    return r


def dumps(results: dict) -> str:
    """The results as JSON: settings indented, one line per run (``gptlib.utils.results_json``)."""
    from gptlib.utils import results_json
    return results_json(results)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="seeds of the largest budget (the smaller budgets use the first)")
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side (one thread each)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    todo = [(size, steps, seed) for size in SIZES for steps in BUDGETS
            for seed in (args.seeds if steps == BUDGETS[-1] else args.seeds[:1])]
    todo.sort(key=lambda t: -t[0][2] ** 2 * t[0][0] * t[1])   # longest first, for --jobs
    t0 = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(_job, todo))
    else:
        runs = [_job(t) for t in todo]
    results = {
        "command": shlex.join(["python", "scripts/experiments/scaling.py", *argv]),
        "settings": {"sizes": [list(s) for s in SIZES], "budgets_steps": list(BUDGETS),
                     "block_size": BLOCK_SIZE, "train": TRAIN, "seeds": args.seeds,
                     "val_chars": VAL_CHARS, "tokenizer": "characters (chapter 1)",
                     "N": "non-embedding parameters (Kaplan et al. 2020)",
                     "threads_per_run": 1},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine()},
        "total_s": round(time.perf_counter() - t0),
        "runs": sorted(runs, key=lambda r: (r["N"], r["steps"], r["seed"])),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps(results))
    print(f"wrote {args.out} ({results['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
