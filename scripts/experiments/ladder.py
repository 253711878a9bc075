"""The loss ladder (chapters 1-7): every chapter's minimal model under one budget, one yardstick.

    python scripts/experiments/ladder.py --jobs 2          # writes data/results/ladder.json

The rungs, the budget and the recipe are defined in ``gptlib.ladder`` (the chapters train their
rung from there too). For every trained rung this script

1. trains it at seed 0 at each learning rate of its starting grid (``LR_GRID``), then at the
   next value of ``LR_VALUES`` beyond the best for as long as the best sits at an end of what was
   tried, and keeps the learning rate with the lowest loss on the *validation* plays (the test
   plays are never used to choose anything);
2. trains it at seeds 1 and 2 at that learning rate;

and scores every run on every window of the validation plays. The counted n-grams choose their
order and smoothing the same way (on validation); they have no seed, so each is one run. The shipped model (chapter 7) is one trained model, scored the same way. Every run is
one line of the results file, with its parameters, tokens, wall time and losses.

Runs are deterministic on a given machine (each uses one thread and seeds everything); ``--jobs``
runs that many side by side without changing a number. Each finished run is appended to a cache
(``--cache``, one JSON line per run) and a run found there is not trained again, so an
interrupted invocation resumes where it stopped. ``tests/test_ladder_experiment.py``
re-runs a reduced version through ``run_one`` and checks it against the committed file.
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
DEFAULT_OUT = ROOT / "data" / "results" / "ladder.json"
SHIPPED = ROOT / "data" / "pretrained" / "shakespeare_char"
SEEDS = (0, 1, 2)


def load_data():
    """Chapter 1's character tokenizer and the train / val / test ids, (N,) int64 each."""
    from gptlib.data import encode_text, load_text
    from gptlib.tokenizer import CharTokenizer

    texts = {s: load_text(s) for s in ("train", "val", "test")}
    tok = CharTokenizer.train(texts["train"] + texts["val"] + texts["test"])
    return tok, {s: encode_text(t, tok) for s, t in texts.items()}


def run_count(n: int, alpha: float, data=None) -> dict:
    """A counted n-gram with add-alpha smoothing, scored on the neural rungs' windows
    (``gptlib.ladder.ngram_window_loss``: the context restarts at each window, so the first
    targets of a window back off to shorter contexts) as ``val_loss``, and on every validation
    token with its full n-1 tokens of context (``gptlib.ngram.ngram_loss``, chapter 1's number)
    as ``val_loss_full_context``."""
    from gptlib.ladder import BUDGET, ngram_window_loss
    from gptlib.ngram import ngram_loss

    tok, ids = load_data() if data is None else data
    train, val_ids = ids["train"].tolist(), ids["val"].tolist()
    t0 = time.perf_counter()
    full = ngram_loss(train, val_ids, n, tok.vocab_size, alpha=alpha)
    windowed = ngram_window_loss(train, val_ids, n, tok.vocab_size, alpha, BUDGET["block_size"])
    return {"n": n, "alpha": alpha, "val_loss": round(windowed, 4),
            "val_loss_full_context": round(full.loss, 4),
            "parameters": full.contexts * tok.vocab_size,
            "tokens": len(train), "train_s": round(time.perf_counter() - t0, 1)}


def run_one(name: str, lr: float, seed: int, data=None, steps: int | None = None) -> dict:
    """Train rung ``name`` at ``lr`` and ``seed`` and score it; a JSON-ready dict."""
    from gptlib import set_seed
    from gptlib.ladder import BUDGET, build_model, honest_loss, rung, train_config
    from gptlib.pretrain import dataset_loss, train

    torch.set_num_threads(1)
    tok, ids = load_data() if data is None else data
    r = rung(name)
    set_seed(seed)
    model = build_model(name, tok.vocab_size)
    cfg = train_config(lr, seed, steps=steps)
    t0 = time.perf_counter()
    result = train(model, ids["train"], cfg)           # (its own final estimate: unused)
    elapsed = time.perf_counter() - t0
    block = BUDGET["block_size"]
    score = honest_loss if r.honest else dataset_loss
    out = {"rung": name, "chapter": r.chapter, "seed": seed, "lr": lr,
           "val_loss": round(score(model, ids["val"], block), 4),
           "parameters": sum(p.numel() for p in model.parameters()),
           "tokens": result.tokens, "train_s": round(elapsed, 1)}
    if r.honest:          # what the same model reports when it can see the next token
        out["leaky_val_loss"] = round(dataset_loss(model, ids["val"], block), 4)
    return out


def run_shipped(data=None) -> dict:
    """The shipped model of chapter 7, scored on the ladder's windows."""
    from gptlib.checkpoint import load_pretrained
    from gptlib.ladder import BUDGET
    from gptlib.pretrain import dataset_loss

    torch.set_num_threads(1)
    _, ids = load_data() if data is None else data
    model, _, info = load_pretrained(SHIPPED)
    block = BUDGET["block_size"]
    return {"rung": "shipped", "chapter": 7, "seed": info["train"]["seed"],
            "lr": info["train"]["lr"], "val_loss": round(dataset_loss(model, ids["val"], block), 4),
            "parameters": model.num_parameters(), "tokens": info["results"]["tokens"],
            "train_s": round(info["results"]["elapsed_s"], 1),
            "note": "one trained model (about 2 h on one core); trained with context 128, "
                    "scored here on the ladder's windows of 64"}


def _key(args) -> str:
    return json.dumps(list(args))


def _job(args):
    kind, *rest = args
    if kind == "count":
        return ("count", run_count(*rest))
    if kind == "shipped":
        return ("shipped", run_shipped())
    r = run_one(*rest)
    print(f"{r['rung']:>22} lr {r['lr']:g} seed {r['seed']}: val {r['val_loss']:.4f} "
          f"({r['train_s']:.0f} s)", flush=True)
    return ("gpt", r)


class _Cache:
    """Finished runs, one JSON line each (``{"job": ..., "result": ...}``), appended as they end."""

    def __init__(self, path: Path):
        self.path, self.done = path, {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.done[entry["job"]] = entry["result"]

    def map(self, pool, jobs: list) -> list:
        todo = [j for j in jobs if _key(j) not in self.done]
        for job, result in zip(todo, pool.map(_job, todo)):
            self.done[_key(job)] = result
            with self.path.open("a") as f:
                f.write(json.dumps({"job": _key(job), "result": result}) + "\n")
        return [tuple(self.done[_key(j)]) for j in jobs]


def _count_runs(counted: list[dict], vocab_size_note: str) -> list[dict]:
    """The counted rungs from the grid: unigram; bigram and best n-gram chosen on validation."""
    from gptlib.ladder import rung

    def best(rows):
        return min(rows, key=lambda r: r["val_loss"])

    out = []
    for name, rows in (("unigram", [r for r in counted if r["n"] == 1]),
                       ("bigram", [r for r in counted if r["n"] == 2]),
                       ("ngram", [r for r in counted if r["n"] > 1])):
        b = best(rows)
        out.append({"rung": name, "chapter": rung(name).chapter, "seed": None, **b,
                    "note": f"counted: no seed; order and smoothing chosen on validation from "
                            f"{len(rows)} settings ({vocab_size_note})"})
    return out


def main(argv=None) -> int:
    from gptlib.ladder import (BUDGET, LR_GRID, LR_VALUES, NGRAM_GRID, RECIPE, RUNGS, STACK,
                               TABLE_LR_GRID, next_lr)
    from gptlib.utils import results_json

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side (one thread each)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "ladder_runs.jsonl",
                    help="finished runs, reused if the script is run again")
    ap.add_argument("--note", default=None, help="how this file was made, if not in one go")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    trained = [r.name for r in RUNGS if r.kind in ("table", "gpt")]
    t0 = time.perf_counter()
    counts = [("count", 1, 0.1)] + [("count", n, a) for n in NGRAM_GRID["n"]
                                    for a in NGRAM_GRID["alpha"]]
    tuning = [("gpt", r.name, lr, SEEDS[0]) for r in RUNGS if r.name in trained
              for lr in r.lr_grid]
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    cache = _Cache(args.cache)
    with ProcessPoolExecutor(args.jobs) as pool:
        first = cache.map(pool, tuning + counts + [("shipped",)])
        tuned = [r for k, r in first if k == "gpt"]
        while True:           # widen the grid where the best learning rate sits at its edge
            more = []
            for name in trained:
                nxt = next_lr({r["lr"]: r["val_loss"] for r in tuned if r["rung"] == name})
                if nxt is not None:
                    more.append(("gpt", name, nxt, SEEDS[0]))
            if not more:
                break
            tuned += [r for _, r in cache.map(pool, more)]
        best = {name: min((r for r in tuned if r["rung"] == name), key=lambda r: r["val_loss"])
                for name in trained}
        rest = [("gpt", name, best[name]["lr"], s) for name in trained for s in SEEDS[1:]]
        second = [r for _, r in cache.map(pool, rest)]
    runs = _count_runs([r for k, r in first if k == "count"], "unigram: alpha 0.1")
    for name in trained:
        for r in tuned:
            if r["rung"] == name:
                runs.append({**r, "final": r["lr"] == best[name]["lr"]})
        runs += [{**r, "final": True} for r in second if r["rung"] == name]
    runs += [{**r, "final": True} for k, r in first if k == "shipped"]
    order = {r.name: i for i, r in enumerate(RUNGS)}
    runs.sort(key=lambda r: (order[r["rung"]], not r.get("final", True), r.get("lr") or 0,
                             r.get("seed") or 0))
    results = {
        "command": shlex.join(["python", "scripts/experiments/ladder.py", *argv]),
        "settings": {"budget": BUDGET, "recipe": {**RECIPE, "betas": list(RECIPE["betas"])},
                     "lr_grid": list(LR_GRID), "table_lr_grid": list(TABLE_LR_GRID),
                     "lr_values": list(LR_VALUES),
                     "ngram_grid": NGRAM_GRID, "stack": STACK,
                     "seeds": list(SEEDS), "tokenizer": "characters (chapter 1)",
                     "evaluation": "neural rungs: gptlib.pretrain.dataset_loss on every window "
                                   f"of {BUDGET['block_size']} characters (the unmasked rung: "
                                   "gptlib.ladder.honest_loss); counted rungs: the same "
                                   "windows (gptlib.ladder.ngram_window_loss), and every token "
                                   "with its n-1 predecessors as val_loss_full_context",
                     "selection": "learning rate (and n, alpha) by val_loss on the validation "
                                  "plays; the test plays are not used",
                     "threads_per_run": 1, "note": args.note},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine()},
        "total_s": round(time.perf_counter() - t0),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(results_json(results))
    print(f"wrote {args.out} ({results['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
