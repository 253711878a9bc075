"""Time-to-loss on tiny-shakespeare: how fast can a CPU core train a character model to val 1.88?

    nice -n 10 python scripts/experiments/speedrun.py --pairs baseline:record --seeds 0 1 2
    nice -n 10 python scripts/experiments/speedrun.py --pairs baseline:lr4e-3 --trace

The text (``--data``, default ``../shared/data/tinyshakespeare.txt``) is split as nanoGPT does:
the first 90% trains, the last 10% validates; the vocabulary is its 65 characters. The target is
nanoGPT's published "baby GPT on a CPU" loss, 1.88, measured here on *every* window of the
validation text (``dataset_loss``), not on a sample of batches.

Runs go in pairs, side by side: two processes at the same time, each pinned to its own core with
one torch thread, so the machine's load (it is shared) hits both alike and their ratio of times is
meaningful even when the absolute times are not. ``baseline`` is the reference model of
``benchmarks/reference_model.py`` (written as nanoGPT writes its model, with PyTorch's modules)
trained with nanoGPT's CPU recipe (2000 steps of batch 12, lr 1e-3, 100 warm-up steps, cosine to
1e-4, beta2 0.99, weight decay 0.1, clipping 1.0) by ``gptlib.pretrain.train``; every other
recipe is a gptlib run config trained through the command line's own function
(``gptlib.runconfig.run``, what ``python -m gptlib.pretrain --config`` calls).

Two modes. Default: the recipe's full run, one evaluation of every window at its end; ``time_s``
is the training time (``TrainResult.elapsed_s``). ``--trace``: a full-validation evaluation every
``--eval-every`` steps once a cheap 4-batch estimate is below 2.0 (evaluation time is excluded
from the clock), to find the first step at which the target is reached, and the training time
spent up to it. One JSON line per run is appended to ``data/results/speedrun.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"   # beside the checkout
RESULTS = ROOT / "data" / "results" / "speedrun.json"
TARGET = 1.88

MODEL = dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)
NANOGPT = dict(steps=2000, batch_size=12, block_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=100,
               schedule="cosine", weight_decay=0.1, betas=[0.9, 0.99], grad_clip=1.0,
               eval_every=0, eval_batches=1)


def recipe(model=None, **train):
    return {"model": dict(MODEL, **(model or {})), "train": dict(NANOGPT, **train)}


# Each recipe changes one thing from the one it names in "from" (the ablation's ladder).
RECIPES = {
    "baseline": dict(recipe(), reference=True, note="reference model, nanoGPT's recipe"),
    "gptlib-teaching": dict(recipe(), note="gptlib's teaching path, nanoGPT's recipe"),
    "fast": dict(recipe({"fast": True}), note="gptlib's fast path, nanoGPT's recipe"),
    "lr4e-3": dict(recipe({"fast": True}, lr=4e-3, min_lr=4e-4, steps=1200),
                   note="fast + lr 4e-3, 1200 steps"),
    "muon": dict(recipe({"fast": True}, optimizer="muon", lr=4e-3, min_lr=4e-4, steps=1200),
                 note="fast + lr 4e-3, 1200 steps + Muon"),
    "muon-800": dict(recipe({"fast": True}, optimizer="muon", lr=6e-3, min_lr=6e-4, steps=800,
                            warmup_steps=50),
                     note="fast + Muon, lr 6e-3, 800 steps"),
    "adamw-1000": dict(recipe({"fast": True}, lr=4e-3, min_lr=4e-4, steps=1000, warmup_steps=50),
                       note="fast + lr 4e-3, the schedule ending at 1000 steps (AdamW)"),
    "record": dict(recipe({"fast": True}, optimizer="muon", lr=6e-3, min_lr=6e-4, steps=600,
                          warmup_steps=50),
                   note="fast + Muon, lr 6e-3, the schedule ending at 600 steps"),
    "rope": dict(recipe({"fast": True, "pos_encoding": "rope"}, optimizer="muon", lr=6e-3,
                        min_lr=6e-4, steps=800, warmup_steps=50),
                 note="muon-800 + RoPE"),
}


def build_config(name: str, seed: int) -> dict:
    r = copy.deepcopy(RECIPES[name])
    r["train"]["seed"] = seed
    if os.environ.get("SPEEDRUN_STEPS"):          # for a quick test of the script only
        r["train"].update(steps=int(os.environ["SPEEDRUN_STEPS"]), warmup_steps=2)
    r["data"] = {"source": "text", "path": str(DATA), "val_fraction": 0.1, "tokenizer": "char"}
    return r


def worker(name: str, seed: int, trace: bool, eval_every: int, core: int | None) -> dict:
    """One run in this process (pinned to ``core``, one thread); returns its result line."""
    import torch
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from reference_model import ReferenceGPT
    from gptlib.model import GPT, GPTConfig
    from gptlib.pretrain import TrainConfig, dataset_loss, estimate_loss, train
    from gptlib.runconfig import prepare_data, run
    from gptlib.utils import set_seed

    cfg = build_config(name, seed)
    tcfg = TrainConfig.from_dict(cfg["train"])
    tok, train_ids, val_ids = prepare_data(dict(cfg["data"], train_split=None, val_split=None))
    line = {"recipe": name, "seed": seed, "mode": "trace" if trace else "final",
            "note": RECIPES[name]["note"], "model": cfg["model"], "train": cfg["train"],
            "vocab": tok.vocab_size, "target": TARGET}
    if not trace and not RECIPES[name].get("reference"):
        import tempfile
        with tempfile.TemporaryDirectory() as out:            # the command line's own function
            cfg_run = {k: cfg[k] for k in ("model", "train", "data")}
            result = run(cfg_run, out_dir=out, progress=False)
            results = json.loads((Path(out) / "config.json").read_text())["results"]
        return dict(line, steps=result.steps, time_s=result.elapsed_s,
                    val_loss=results["val_loss_all_windows"],
                    reached=results["val_loss_all_windows"] <= TARGET)
    set_seed(seed)
    mcfg = dict(cfg["model"], vocab_size=tok.vocab_size, block_size=tcfg.block_size)
    if RECIPES[name].get("reference"):
        mcfg = {k: v for k, v in mcfg.items() if k in ("vocab_size", "block_size", "n_layer",
                                                       "n_head", "n_embd", "bias", "dropout")}
        model = ReferenceGPT(**mcfg)
    else:
        model = GPT(GPTConfig(**mcfg))
    trace_points, clock = [], {"train": 0.0, "t": time.perf_counter()}

    def callback(rec):
        if not trace or (rec["step"] % eval_every and rec["step"] != tcfg.steps):
            return False
        clock["train"] += time.perf_counter() - clock["t"]
        est = estimate_loss(model, val_ids, (32, tcfg.block_size), 4,
                            torch.Generator().manual_seed(1))
        full = dataset_loss(model, val_ids, tcfg.block_size) if est < 2.0 else None
        trace_points.append((rec["step"], round(clock["train"], 2), est, full))
        print(f"[{name} seed {seed}] step {rec['step']} train {clock['train']:.0f} s "
              f"est {est:.3f} full {full}", file=sys.stderr, flush=True)
        model.train()
        clock["t"] = time.perf_counter()
        return full is not None and full <= TARGET - 0.03     # well past the target: stop

    result = train(model, train_ids, tcfg, callback=callback)
    if not trace:
        val = dataset_loss(model, val_ids, tcfg.block_size)
        return dict(line, steps=result.steps, time_s=result.elapsed_s, val_loss=val,
                    reached=val <= TARGET)
    hit = next((p for p in trace_points if p[3] is not None and p[3] <= TARGET), None)
    return dict(line, steps=result.steps, trace=trace_points, time_s=trace_points[-1][1],
                steps_to_target=None if hit is None else hit[0],
                time_to_target_s=None if hit is None else hit[1],
                val_loss=trace_points[-1][3], reached=hit is not None)


def run_pair(a: str, b: str, seed: int, trace: bool, eval_every: int) -> list[dict]:
    """Run recipes ``a`` and ``b`` at the same time, one core each; return both lines."""
    procs = []
    for i, name in enumerate((a, b)):
        core = (i + seed) % 2                          # each recipe on each core, by seed
        cmd = [sys.executable, __file__, "--worker", name, "--seed", str(seed),
               "--eval-every", str(eval_every), "--core", str(core)] + (["--trace"] if trace else [])
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                      env=dict(os.environ, PYTHONPATH=str(ROOT))))
    lines = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"worker failed ({p.returncode}): {out[-2000:]}")
        lines.append(json.loads(out.strip().splitlines()[-1]))
    pair = f"{a}:{b}:{seed}:{int(time.time())}"
    for line in lines:
        line["pair"] = pair
    return lines


def load(path=RESULTS) -> list[dict]:
    """The result lines of ``path`` (one JSON object per line)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def paired_ratios(lines: list[dict], recipe: str, mode: str = "final") -> list[float]:
    """``recipe``'s time over the baseline's, for every pair in which both ran side by side: in
    final mode the two whole runs; in trace mode ``recipe``'s time to the target (if it got
    there) over the baseline's whole run."""
    out = []
    for line in lines:
        if line["recipe"] != recipe or line["mode"] != mode:
            continue
        partner = next((o for o in lines if o["pair"] == line["pair"]
                        and o["recipe"] == "baseline"), None)
        if partner is None:
            continue
        t = line["time_s"] if mode == "final" else line.get("time_to_target_s")
        if t is not None:                 # (final runs count whether or not they reached it)
            out.append(t / partner["time_s"])
    return out


def table(lines: list[dict]) -> list[dict]:
    """One row per (recipe, mode): seeds, how many reached the target, mean steps and training
    time (trace mode: to the target, over the runs that reached it; final mode: the whole run),
    mean final validation loss, and the paired time ratios to the baseline."""
    rows = []
    for key in dict.fromkeys((ln["recipe"], ln["mode"]) for ln in lines):
        runs = [ln for ln in lines if (ln["recipe"], ln["mode"]) == key]
        hits = [ln for ln in runs if ln["reached"]]
        mean = (lambda xs: sum(xs) / len(xs) if xs else None)
        if key[1] == "trace":             # to the target: only the runs that reached it
            steps = [ln["steps_to_target"] for ln in hits]
            times = [ln["time_to_target_s"] for ln in hits]
        else:                             # the whole run
            steps, times = [ln["steps"] for ln in runs], [ln["time_s"] for ln in runs]
        rows.append({"recipe": key[0], "mode": key[1], "note": runs[0]["note"],
                     "seeds": sorted(ln["seed"] for ln in runs), "reached": len(hits),
                     "steps": mean(steps), "time_s": mean(times),
                     "val_loss": mean([ln["val_loss"] for ln in runs if ln["val_loss"] is not None]),
                     "ratios": paired_ratios(lines, key[0], key[1])})
    return rows


def summary(path=RESULTS) -> list[dict]:
    """Print ``table`` for the runs in ``path``; return its rows."""
    rows = table(load(path))
    print(f"{'recipe':<16} {'mode':<6} {'seeds':>5} {'reached':>8} {'steps':>6} {'time s':>7} "
          f"{'val':>6}  time / baseline (side by side)")
    print("(trace: steps and time to the target; final: the whole run. val: the last loss on "
          "every validation window)")
    for r in rows:
        fmt = (lambda v, f: "-" if v is None else format(v, f))
        print(f"{r['recipe']:<16} {r['mode']:<6} {len(r['seeds']):>5} "
              f"{r['reached']:>4}/{len(r['seeds']):<3} {fmt(r['steps'], '.0f'):>6} "
              f"{fmt(r['time_s'], '.0f'):>7} {fmt(r['val_loss'], '.3f'):>6}  "
              + " ".join(f"{x:.2f}" for x in r["ratios"]))
    for name in dict.fromkeys(r["recipe"] for r in rows):
        t = RECIPES[name]["train"]
        print(f"  {name}: {RECIPES[name]['note']} (batch {t['batch_size']}, lr {t['lr']:g}, "
              f"{t['steps']} steps, {t.get('optimizer', 'adamw')})")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", nargs="*", default=["baseline:record"], help="A:B recipe pairs")
    p.add_argument("--seeds", nargs="*", type=int, default=[0])
    p.add_argument("--trace", action="store_true")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--summary", action="store_true", help="print the table of --out and stop")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--core", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.seed, args.trace, args.eval_every, args.core)))
        return
    if args.summary:
        summary(args.out)
        return
    for seed in args.seeds:
        for pair in args.pairs:
            a, b = pair.split(":")
            lines = run_pair(a, b, seed, args.trace, args.eval_every)
            with open(args.out, "a", encoding="utf-8") as f:
                for line in lines:
                    f.write(json.dumps(line) + "\n")
            for line in lines:
                t = line.get("time_s", line.get("time_to_target_s"))
                print(f"seed {seed} {line['recipe']:<16} {line['mode']:<6} steps "
                      f"{line.get('steps_to_target') or line['steps']} time {t} "
                      f"val {line['val_loss']} reached {line['reached']}", flush=True)


if __name__ == "__main__":
    main()
