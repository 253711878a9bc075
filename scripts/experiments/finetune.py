"""Chapter 8's experiment: what pretraining's features are worth, against counted baselines.

    python scripts/experiments/finetune.py          # writes data/results/finetune.json

Two classification tasks on 128-character passages, trained on the *fit* plays (the training
split less two plays per class), with every setting chosen on the *dev* plays (those held-out
training plays), and scored once on the twelve plays of the validation and test splits, which
nothing here trains or tunes on:

* ``genre``: comedy / history / tragedy (``THREE_CLASSES``), 300 passages per class;
* ``shuffled``: real passage or the same passage with its words shuffled (``real_or_shuffled``),
  the same 900 passages, half of them shuffled. A bag of words is identical in both classes.

Methods, each at seeds 0, 1, 2 (the seed draws the training passages, the shuffles and the
random model; dev and evaluation passages are fixed):

* ``naive bayes (words)`` and ``naive bayes (word pairs)`` (``gptlib.baselines``), smoothing
  alpha chosen on dev from ``ALPHAS``;
* ``probe (pretrained)``: a linear probe (``gptlib.probe.fit_linear_probe``, L-BFGS to
  convergence) on the mean-pooled final features of the book's pretrained model, frozen;
* ``probe (random init)``: the same probe on the same architecture at its random
  initialisation (``GPT(config)`` after ``set_seed(seed)``): what the architecture alone gives;
  weight decay chosen on dev from ``WEIGHT_DECAYS``.

Scores: accuracy and macro-averaged accuracy (the mean per-class recall) on the evaluation plays,
and the dev score that chose the setting. Each finished run is cached in
``build/finetune_runs.jsonl``, so an interrupted run loses nothing.
``tests/test_finetune_experiment.py`` re-runs one seed of the cheap methods and compares.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "data" / "results" / "finetune.json"
CACHE = ROOT / "build" / "finetune_runs.jsonl"

TASKS = ("genre", "shuffled")
METHODS = ("naive bayes (words)", "naive bayes (word pairs)", "probe (pretrained)",
           "probe (random init)")
SEEDS = (0, 1, 2)
ALPHAS = (0.1, 0.3, 1.0, 3.0)
WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)
DATA = dict(n_per_class=300, passage_chars=128, dev_per_play=50, eval_per_play=50,
            dev_seed=2, eval_seed=1)


def macro(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over classes of the fraction of that class's examples predicted as it."""
    k = int(y.max()) + 1
    return sum(((pred == c) & (y == c)).sum().item() / (y == c).sum().item()
               for c in range(k)) / k


def datasets(task: str, seed: int, tok):
    """(train, dev, eval) ``ClassificationData`` of one task at one seed."""
    from gptlib.finetune import THREE_CLASSES, dev_plays, genre_dataset, real_or_shuffled

    fit, dev = dev_plays(THREE_CLASSES)
    common = dict(passage_chars=DATA["passage_chars"])
    train = genre_dataset("train", tok, THREE_CLASSES, n_per_class=DATA["n_per_class"],
                          seed=seed, plays=fit, **common)
    dv = genre_dataset("train", tok, THREE_CLASSES, n_per_play=DATA["dev_per_play"],
                       seed=DATA["dev_seed"], plays=dev, **common)
    ev = genre_dataset(("val", "test"), tok, THREE_CLASSES, n_per_play=DATA["eval_per_play"],
                       seed=DATA["eval_seed"], **common)
    if task == "shuffled":
        train = real_or_shuffled(train, tok, seed=100 + seed)
        dv, ev = real_or_shuffled(dv, tok, seed=200), real_or_shuffled(ev, tok, seed=300)
    return train, dv, ev


def score(pred, data) -> dict:
    return {"accuracy": (pred == data.labels).float().mean().item(),
            "macro": macro(pred, data.labels)}


def run_method(task: str, method: str, seed: int, pretrained, tok, sets=None) -> dict:
    """One run: fit on the train passages, choose the setting on dev, score on the evaluation."""
    from gptlib import set_seed
    from gptlib.baselines import NaiveBayes
    from gptlib.finetune import GPTClassifier
    from gptlib.model import GPT
    from gptlib.probe import classifier_features, fit_linear_probe

    train, dv, ev = sets or datasets(task, seed, tok)
    t0 = time.perf_counter()
    if method.startswith("naive bayes"):
        features = "words" if "(words)" in method else "word pairs"
        tried = {}
        for alpha in ALPHAS:
            nb = NaiveBayes(features, alpha).fit(train.texts, train.labels, len(train.classes))
            tried[alpha] = (macro(nb.predict(dv.texts), dv.labels), nb)
        setting = max(tried, key=lambda a: tried[a][0])
        pred = tried[setting][1].predict(ev.texts)
        name = "alpha"
    else:
        if method == "probe (pretrained)":
            backbone = pretrained
        else:
            set_seed(seed)
            backbone = GPT(pretrained.config)
        clf = GPTClassifier(backbone, len(train.classes), pooling="mean")
        feats = {k: classifier_features(clf, d) for k, d in (("train", train), ("dev", dv),
                                                             ("eval", ev))}
        tried = {}
        for wd in WEIGHT_DECAYS:
            fit_linear_probe(clf, train, weight_decay=wd, features=feats["train"])
            with torch.no_grad():
                dev_pred = clf.head(feats["dev"]).argmax(1)
                eval_pred = clf.head(feats["eval"]).argmax(1)
            tried[wd] = (macro(dev_pred, dv.labels), eval_pred)
        setting = max(tried, key=lambda w: tried[w][0])
        pred = tried[setting][1]
        name = "weight_decay"
    return {"task": task, "method": method, "seed": seed, name: setting,
            "dev_macro": tried[setting][0], **score(pred, ev),
            "n_train": len(train), "n_eval": len(ev), "time_s": time.perf_counter() - t0}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    torch.set_num_threads(args.threads)
    from gptlib.data import data_dir
    from gptlib.finetune import load_backbone
    from gptlib.utils import results_json

    pretrained, tok = load_backbone(data_dir() / "pretrained" / "shakespeare_char")
    CACHE.parent.mkdir(exist_ok=True)
    cached = {}
    if CACHE.exists():
        for line in CACHE.read_text().splitlines():
            r = json.loads(line)
            cached[(r["task"], r["method"], r["seed"])] = r
    start, runs = time.perf_counter(), []
    for task in TASKS:
        for seed in SEEDS:
            sets = None
            for method in METHODS:
                key = (task, method, seed)
                if key not in cached:
                    sets = sets or datasets(task, seed, tok)
                    cached[key] = run_method(task, method, seed, pretrained, tok, sets)
                    with CACHE.open("a") as f:
                        f.write(json.dumps(cached[key]) + "\n")
                    r = cached[key]
                    print(f"{task:<9}{method:<26}seed {seed}  eval macro {r['macro']:.3f}  "
                          f"dev {r['dev_macro']:.3f}  {r['time_s']:.0f} s", flush=True)
                runs.append(cached[key])
    results = {
        "experiment": "finetune",
        "command": "python " + " ".join(shlex.quote(a) for a in
                                        ["scripts/experiments/finetune.py", *(argv or sys.argv[1:])]),
        "settings": {"tasks": TASKS, "methods": METHODS, "seeds": SEEDS, "alphas": ALPHAS,
                     "weight_decays": WEIGHT_DECAYS, **DATA, "pooling": "mean",
                     "pretrained": "data/pretrained/shakespeare_char"},
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": args.threads},
        "total_s": time.perf_counter() - start,
        "runs": runs,
    }
    args.out.write_text(results_json(results), encoding="utf-8")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
