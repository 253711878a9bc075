"""Chapter 10's experiment: few-shot learning of a task family, at two model sizes.

    python scripts/experiments/few_shot.py        # writes data/results/few_shot.json

Each run trains one of the two configs (``configs/fewshot_small.json``, ``fewshot_large.json``:
2 attention-only layers of width 16 or 64) with the chapter-7 command line's ``run`` (the one
training loop, ``gptlib.pretrain.train``), changing only the seed, on sequences of 16
demonstrations (a query token ``x?``, then the answer token ``x->f(x)``) in which every sequence
draws its own random letter substitution ``f`` (``gptlib.synthetic.FewShotRule``). Each trained model is then scored on 2,048 sequences with
*fresh* rules (a generator seed no training used): the accuracy of its most likely output after
``i`` shots (earlier pairs), ``i = 0..15``, split by whether the query's input occurred among the
shots. The same sequences score four baselines that need no training:

- ``chance``: a uniform guess among the 8 outputs (1/8);
- ``most_frequent``: the output seen most often so far (ties: the first letter);
- ``copy``: the output of the same input if it occurred in a shot, else a uniform guess;
- ``optimal``: ``copy``, but a new input guesses among the outputs not yet used (the rule is a
  permutation): the best any predictor can do.

Seed 0 of each size is the shipped model ``data/pretrained/fewshot_SIZE`` (made by the same
config through ``python -m gptlib.pretrain``); it is loaded rather than retrained unless
``--retrain`` is given. Runs are deterministic on a given machine (one thread). Results: one
line per run in ``data/results/few_shot.json``. ``tests/test_few_shot_experiment.py`` re-runs a
reduced version.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "data" / "results" / "few_shot.json"
SIZES = ("small", "large")
SEEDS = (0, 1, 2)
EVAL = dict(n=2048, seed=20_240)


def config_path(size: str) -> Path:
    return ROOT / "configs" / f"fewshot_{size}.json"


def eval_batch(source, n: int = EVAL["n"], seed: int = EVAL["seed"]):
    """The held-out sequences every model and baseline is scored on (fresh rules)."""
    return source.sample(n, 2 * source.n_pairs - 1, torch.Generator().manual_seed(seed))


def correct_by_shots(model, batch) -> torch.Tensor:
    """(n, n_pairs) bool: the model's most likely token for pair i's answer is right."""
    from gptlib.synthetic import per_token_loss
    _, logits = per_token_loss(model, batch)
    q = batch.masks["query"]
    return (logits.argmax(-1) == batch.tokens[:, 1:])[q].view(len(q), -1)


def baselines(batch, n_symbols: int) -> dict[str, torch.Tensor]:
    """Expected accuracy (n, n_pairs) of each baseline on ``batch`` (see the module docstring)."""
    xs, ys = batch.info["inputs"], batch.info["outputs"]
    n, k = xs.shape
    seen = batch.info["seen"].float()
    used = torch.zeros(n, k)
    counts = torch.zeros(n, k, n_symbols)
    for i in range(1, k):
        counts[:, i] = counts[:, i - 1] + torch.nn.functional.one_hot(ys[:, i - 1], n_symbols)
    used = (counts > 0).sum(-1).float()                           # distinct outputs so far
    guess = counts.argmax(-1)                                     # first of the most frequent
    return {"chance": torch.full((n, k), 1 / n_symbols),
            "most_frequent": (guess == ys).float(),
            "copy": seen + (1 - seen) / n_symbols,
            "optimal": seen + (1 - seen) / (n_symbols - used).clamp(min=1)}


def summarise(correct: torch.Tensor, seen: torch.Tensor) -> dict:
    """Accuracy by number of shots, overall and split by seen/unseen inputs (4 decimals)."""
    c, s = correct.float(), seen
    def r(v):
        return [None if x is None else round(float(x), 4) for x in v]
    return {"accuracy_by_shots": r(c.mean(0)),
            "seen_accuracy_by_shots": r([c[s[:, i], i].mean() if s[:, i].any() else None
                                         for i in range(c.size(1))]),
            "unseen_accuracy_by_shots": r([c[~s[:, i], i].mean() for i in range(c.size(1))]),
            "accuracy": round(float(c.mean()), 4),
            "unseen_accuracy": round(float(c[~s].mean()), 4)}


def run_one(size: str, seed: int, steps: int | None = None, retrain: bool = False) -> dict:
    """Train (or load the shipped seed-0 model) and score one run; returns its result line."""
    from gptlib.checkpoint import load_pretrained
    from gptlib.runconfig import load_run_config, run
    from gptlib.synthetic import prepare
    config = json.loads(config_path(size).read_text())
    config["train"]["seed"] = seed
    if steps is not None:
        config["train"]["steps"] = steps
        config["train"]["warmup_steps"] = min(config["train"]["warmup_steps"], steps)
    shipped = ROOT / config["out_dir"]
    if seed == 0 and steps is None and not retrain and (shipped / "model.safetensors").exists():
        model, _, meta = load_pretrained(shipped)
        origin = str(shipped.relative_to(ROOT))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(config, out_dir=tmp, progress=False)
            model, _, meta = load_pretrained(tmp)
        origin = "trained by this script"
    cfg = load_run_config(config)
    _, source, _ = prepare(cfg["data"])
    batch = eval_batch(source)
    out = {"size": size, "seed": seed, "steps": config["train"]["steps"], "model": origin,
           "parameters": model.num_parameters(),
           "final_val_loss": round(meta["results"]["final_val_loss"], 4)}
    out.update(summarise(correct_by_shots(model, batch), batch.info["seen"]))
    return out


def dumps(results: dict) -> str:
    """JSON with one line per run (and per baseline)."""
    head = {k: v for k, v in results.items() if k not in ("runs", "baselines")}
    lines = ["{", *(f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()),
             ' "baselines": [']
    lines += [f"  {json.dumps(b)}," for b in results["baselines"]]
    lines[-1] = lines[-1].rstrip(",")
    lines.append(" ],")
    lines.append(' "runs": [')
    lines += [f"  {json.dumps(r)}," for r in results["runs"]]
    lines[-1] = lines[-1].rstrip(",")
    lines += [" ]", "}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--steps", type=int, help="override every run's steps (a quick check)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--retrain", action="store_true", help="retrain seed 0 too")
    p.add_argument("--reuse", help="a results file of an earlier invocation: its runs (same "
                   "size, seed and steps) are taken from it instead of being trained again")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from gptlib.runconfig import load_run_config
    from gptlib.synthetic import prepare
    _, source, _ = prepare(load_run_config(config_path("large"))["data"])
    batch = eval_batch(source)
    seen = batch.info["seen"]
    base = [{"baseline": name, **summarise(acc, seen)} for name, acc in
            baselines(batch, source.n_symbols).items()]
    runs, earlier = [], {}
    if args.reuse:
        for r in json.loads(Path(args.reuse).read_text())["runs"]:
            earlier[r["size"], r["seed"], r["steps"]] = r
    for size in SIZES:
        for seed in args.seeds:
            steps = args.steps or json.loads(config_path(size).read_text())["train"]["steps"]
            if (size, seed, steps) in earlier:
                runs.append(earlier[size, seed, steps])
            else:
                runs.append(run_one(size, seed, args.steps, args.retrain))
            print(json.dumps({k: runs[-1][k] for k in ("size", "seed", "accuracy",
                                                       "unseen_accuracy")}), flush=True)
    argv = sys.argv[1:] if argv is None else argv
    results = {"command": shlex.join(["python", "scripts/experiments/few_shot.py", *argv]),
               "settings": {"sizes": {s: str(config_path(s).relative_to(ROOT)) for s in SIZES},
                            "seeds": args.seeds, "eval": EVAL,
                            "torch_version": torch.__version__, "threads": 1},
               "baselines": base, "runs": runs}
    Path(args.out).write_text(dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
