"""Chapter 10's experiment: induction heads in attention-only models, at three seeds.

    python scripts/experiments/induction.py       # writes data/results/induction.json

Three models, each trained at seeds 0, 1 and 2 with the chapter-7 command line's ``run`` (the
one training loop, ``gptlib.pretrain.train``) on ``gptlib.synthetic.RepeatedSegments`` (a random
segment of 8-32 of 64 tokens, repeated end to end), changing only the seed:

- ``2l``: ``configs/induction_2l.json`` (2 attention-only layers, 2 heads each, RoPE);
- ``1l``: ``configs/induction_1l.json`` (the same with 1 layer);
- ``2l_learned``: ``induction_2l.json`` with learned absolute positions instead of RoPE.

Seed 0 of ``2l`` and ``1l`` is the shipped model ``data/pretrained/induction_*`` (made by the
same config through ``python -m gptlib.pretrain``); it is loaded rather than retrained unless
``--retrain`` is given. Each run's line holds:

- ``curve``: its logged evaluations (every 50 steps, the same 256 held-out sequences):
  ``[step, first-copy loss, repeat loss, icl score]``;
- ``phase_change_step``: the first evaluated step at which the repeat loss is below
  ``PHASE_LOSS`` = 1 nat (chance is ln 64 = 4.16; null if never);
- on ``FRESH`` sequences (a generator seed no training or evaluation used): the mean loss on
  the first copy and on the repeats, for tiled repeats and for one repeat among random tokens
  (``placement="random"``), and the gap (first minus repeat);
- per-head previous-token and induction scores (``gptlib.interp.head_scores``) on a segment of
  32 tokens repeated once, and the tiled gap with each head ablated;
- 2-layer models: the tiled gap when layer 0's heads are removed from layer 1's queries only,
  keys only or values only (``gptlib.interp.logits_with_input_removed``: which input of the
  induction heads reads the previous-token heads), and with both layers' heads ablated in turn.

Runs are deterministic on a given machine (one thread). ``tests/test_induction_experiment.py``
re-runs a reduced version and checks the seed-0 lines against the shipped models.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "data" / "results" / "induction.json"
VARIANTS = ("2l", "1l", "2l_learned")
SEEDS = (0, 1, 2)
PHASE_LOSS = 1.0
FRESH = dict(n=512, seed=2024, scores_n=256, scores_seed=7)


def config_for(variant: str) -> dict:
    """The run config of a variant (a dict; the learned-positions one edits ``induction_2l``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    name = "induction_1l" if variant == "1l" else "induction_2l"
    config = json.loads((ROOT / "configs" / f"{name}.json").read_text())
    if variant == "2l_learned":
        config["model"]["pos_encoding"] = "learned"
        config["out_dir"] = None
        config["description"] = "induction_2l.json with learned absolute positions"
    return config


def fresh_batch(task, placement: str, n: int = FRESH["n"], seed: int = FRESH["seed"]):
    """``n`` fresh sequences of ``task``'s kind (a generator seed no training used)."""
    from gptlib.synthetic import RepeatedSegments
    src = RepeatedSegments(task.vocab_size, task.min_len, task.max_len, placement)
    return src.sample(n, 64, torch.Generator().manual_seed(seed))


def losses_of(logits, batch):
    """(first-copy loss, repeat loss) in nats from (B, T, V) logits."""
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch.tokens[:, 1:],
                                               reduction="none")
    return losses[batch.masks["first"]].mean().item(), losses[batch.masks["repeat"]].mean().item()


def copy_losses(model, task, placement: str):
    """(first-copy loss, repeat loss) in nats on the fresh sequences."""
    from gptlib.synthetic import per_token_loss
    b = fresh_batch(task, placement)
    losses, _ = per_token_loss(model, b)
    return losses[b.masks["first"]].mean().item(), losses[b.masks["repeat"]].mean().item()


def doubled_segments(vocab_size: int, n: int = FRESH["scores_n"],
                     seed: int = FRESH["scores_seed"]) -> torch.Tensor:
    """(n, 64): a random segment of 32 tokens, then the same segment again."""
    seg = torch.randint(vocab_size, (n, 32), generator=torch.Generator().manual_seed(seed))
    return torch.cat([seg, seg], dim=1)


def phase_change_step(curve) -> int | None:
    """The first evaluated step whose repeat loss is below ``PHASE_LOSS`` (None if none)."""
    return next((step for step, _, repeat, _ in curve if repeat < PHASE_LOSS), None)


def analyse(model, task, log) -> dict:
    """Everything a run's result line records about a trained model (see the docstring)."""
    from gptlib.interp import ablate_heads, head_scores
    r4 = lambda v: round(float(v), 4)   # noqa: E731
    curve = [[r["step"], r4(r["first_loss"]), r4(r["repeat_loss"]), r4(r["icl_score"])]
             for r in log if "repeat_loss" in r]
    out = {"curve": curve, "phase_change_step": phase_change_step(curve)}
    for placement in ("tile", "random"):
        first, repeat = copy_losses(model, task, placement)
        out[placement] = {"first_loss": r4(first), "repeat_loss": r4(repeat),
                          "gap": r4(first - repeat)}
    scores = head_scores(model, doubled_segments(task.vocab_size))
    out["previous_token_score"] = [[r4(v) for v in row] for row in scores["previous_token"]]
    out["induction_score"] = [[r4(v) for v in row] for row in scores["induction"]]
    ablated = []
    for layer, row in enumerate(scores["induction"]):
        ablated.append([])
        for head in range(len(row)):
            with ablate_heads(model, [(layer, head)]):
                first, repeat = copy_losses(model, task, "tile")
            ablated[-1].append(r4(first - repeat))
    out["tile_gap_ablated"] = ablated
    if len(scores["induction"]) == 2:
        from gptlib.interp import logits_with_input_removed
        b = fresh_batch(task, "tile")
        layer0 = [(0, h) for h in range(len(scores["induction"][0]))]
        removed = {}
        for parts in ("q", "k", "v"):
            first, repeat = losses_of(logits_with_input_removed(model, b.x, layer0, 1, parts), b)
            removed[parts] = r4(first - repeat)
        out["tile_gap_layer0_removed_from"] = removed
        both = {}
        for layer in (0, 1):
            with ablate_heads(model, [(layer, h) for h in range(len(scores["induction"][0]))]):
                first, repeat = copy_losses(model, task, "tile")
            both[f"layer{layer}"] = r4(first - repeat)
        out["tile_gap_layer_ablated"] = both
    return out


def run_one(variant: str, seed: int, steps: int | None = None, retrain: bool = False) -> dict:
    """Train (or load the shipped seed-0 model) and analyse one run; returns its result line."""
    from gptlib.checkpoint import load_pretrained
    from gptlib.runconfig import load_run_config, read_log, run
    from gptlib.synthetic import prepare
    config = config_for(variant)
    config["train"]["seed"] = seed
    if steps is not None:
        config["train"]["steps"] = steps
    shipped = ROOT / config["out_dir"] if config.get("out_dir") else None
    if (shipped is not None and seed == 0 and steps is None and not retrain
            and (shipped / "model.safetensors").exists()):
        model, _, meta = load_pretrained(shipped)
        log = read_log(shipped / "train_log.csv")
        origin = str(shipped.relative_to(ROOT))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = copy.deepcopy(config)
            cfg.pop("out_dir", None)
            run(cfg, out_dir=tmp, progress=False)
            model, _, meta = load_pretrained(tmp)
            log = read_log(Path(tmp) / "train_log.csv")
        origin = "trained by this script"
    _, task, _ = prepare(load_run_config(config)["data"])
    out = {"variant": variant, "seed": seed, "steps": config["train"]["steps"], "model": origin,
           "n_layer": config["model"]["n_layer"], "pos_encoding": config["model"]["pos_encoding"],
           "parameters": model.num_parameters(),
           "final_val_loss": round(meta["results"]["final_val_loss"], 4)}
    out.update(analyse(model, task, log))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--steps", type=int, help="override every run's steps (a quick check)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--retrain", action="store_true", help="retrain seed 0 too")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    runs = []
    for variant in args.variants:
        for seed in args.seeds:
            runs.append(run_one(variant, seed, args.steps, args.retrain))
            print(json.dumps({k: runs[-1][k] for k in ("variant", "seed", "phase_change_step")}
                             | {"tile_gap": runs[-1]["tile"]["gap"]}), flush=True)
    argv = sys.argv[1:] if argv is None else argv
    results = {"command": shlex.join(["python", "scripts/experiments/induction.py", *argv]),
               "settings": {"variants": list(args.variants), "seeds": args.seeds,
                            "phase_loss": PHASE_LOSS, "fresh": FRESH,
                            "torch_version": torch.__version__, "threads": 1},
               "runs": runs}
    from gptlib.utils import results_json
    Path(args.out).write_text(results_json(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
