"""Chapter 10's experiment (scripts/experiments/few_shot.py), re-run in small, and its baselines.

The committed data/results/few_shot.json comes from the full script (two sizes, three seeds,
1,000 steps each). Here one large-model run of 200 steps is trained and scored the same way: it
must already be far above chance with many shots and at chance with none, and the seed-0 lines
of the committed file must be what the shipped models score now."""

from pathlib import Path

import pytest
import torch
from _experiments import experiment_fixtures

ROOT = Path(__file__).resolve().parent.parent


exp, committed = experiment_fixtures("few_shot")


def test_baselines_on_a_hand_checked_sequence(exp):
    from gptlib.synthetic import FewShotRule
    src = FewShotRule(n_symbols=3, n_pairs=4)
    rules = torch.tensor([[2, 0, 1]])                        # a->C, b->A, c->B
    batch = src.sample(1, 7, torch.Generator().manual_seed(0), rules=rules)
    batch.info["inputs"][:] = torch.tensor([[0, 0, 1, 2]])   # a a b c
    batch.info["outputs"][:] = torch.tensor([[2, 2, 0, 1]])
    batch.info["seen"][:] = torch.tensor([[False, True, False, False]])
    b = exp.baselines(batch, 3)
    assert b["chance"][0].tolist() == pytest.approx([1 / 3] * 4)
    assert b["copy"][0].tolist() == pytest.approx([1 / 3, 1, 1 / 3, 1 / 3])
    # new inputs: guess among the outputs not used yet (none, C used, C used, C and A used)
    assert b["optimal"][0].tolist() == pytest.approx([1 / 3, 1, 1 / 2, 1])
    # most frequent so far: (none: A), C, C, C  vs  C C A B
    assert b["most_frequent"][0].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_the_committed_results_have_three_seeds_per_size_and_the_shipped_seed_0(exp, committed):
    runs = committed["runs"]
    for size in exp.SIZES:
        assert sorted(r["seed"] for r in runs if r["size"] == size) == [0, 1, 2]
    assert {b["baseline"] for b in committed["baselines"]} == {"chance", "most_frequent",
                                                              "copy", "optimal"}
    from gptlib.checkpoint import load_pretrained
    from gptlib.synthetic import FewShotRule
    src = FewShotRule(8, 16)
    batch = exp.eval_batch(src)
    for size in exp.SIZES:
        model, _, _ = load_pretrained(ROOT / "data" / "pretrained" / f"fewshot_{size}")
        ours = exp.summarise(exp.correct_by_shots(model, batch), batch.info["seen"])
        line = next(r for r in runs if r["size"] == size and r["seed"] == 0)
        assert ours["accuracy_by_shots"] == pytest.approx(line["accuracy_by_shots"], abs=2e-3)


def test_a_short_run_already_learns_from_its_context(exp, committed):
    torch.set_num_threads(1)
    line = exp.run_one("large", seed=3, steps=200)
    acc = line["accuracy_by_shots"]
    copy = next(b for b in committed["baselines"] if b["baseline"] == "copy")
    assert abs(acc[0] - 1 / 8) < 0.04                       # zero-shot: chance
    assert acc[15] > 0.6 and acc[15] > acc[1] + 0.3         # rises with the shots
    assert acc[15] < copy["accuracy_by_shots"][15] + 0.1    # not yet much beyond copying
