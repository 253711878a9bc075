"""The loss ladder's experiment (scripts/experiments/ladder.py), checked and re-run in small.

The committed data/results/ladder.json comes from the full script (every rung of chapters 1-7,
a learning-rate search per rung, three seeds: about an hour on two cores). Here: the file must
describe the budget that ``gptlib.ladder`` defines today (else it is stale), every rung must be
there with its seeds and a learning rate chosen by the stated rule, and a few runs re-made now
must give the committed numbers.
"""


import pytest
from _experiments import experiment_fixtures

from gptlib.ladder import (
    BUDGET,
    LR_GRID,
    LR_VALUES,
    NGRAM_GRID,
    RECIPE,
    RUNGS,
    STACK,
    TABLE_LR_GRID,
    rung,
)

TRAINED = [r.name for r in RUNGS if r.kind in ("gpt", "table")]


exp, committed = experiment_fixtures("ladder")


@pytest.fixture(scope="module")
def data(exp):
    return exp.load_data()


def test_committed_file_describes_todays_ladder(committed):
    s = committed["settings"]
    assert committed["command"].startswith("python scripts/experiments/ladder.py")
    assert s["budget"] == BUDGET and s["stack"] == STACK
    assert s["recipe"] == {**RECIPE, "betas": list(RECIPE["betas"])}
    assert s["lr_grid"] == list(LR_GRID) and s["table_lr_grid"] == list(TABLE_LR_GRID)
    assert s["lr_values"] == list(LR_VALUES)
    assert s["ngram_grid"] == {k: list(v) for k, v in NGRAM_GRID.items()}
    assert {r["rung"] for r in committed["runs"]} == {r.name for r in RUNGS}


@pytest.mark.parametrize("name", TRAINED)
def test_each_trained_rung_has_three_seeds_at_its_chosen_lr(committed, name):
    runs = [r for r in committed["runs"] if r["rung"] == name]
    final = [r for r in runs if r["final"]]
    assert sorted(r["seed"] for r in final) == [0, 1, 2]
    assert len({r["lr"] for r in final}) == 1
    assert all(r["tokens"] == BUDGET["steps"] * BUDGET["batch_size"] * BUDGET["block_size"]
               for r in runs)
    tuning = {r["lr"]: r["val_loss"] for r in runs if r["seed"] == 0}
    best = min(tuning, key=tuning.get)
    assert best == final[0]["lr"]                       # chosen on validation, seed 0
    grid = rung(name).lr_grid
    assert set(grid) <= set(tuning)
    i = LR_VALUES.index(best)                           # a worse lr tried on each side of it
    assert i == 0 or LR_VALUES[i - 1] in tuning
    assert i == len(LR_VALUES) - 1 or LR_VALUES[i + 1] in tuning


def test_counted_rungs_are_the_best_of_their_grid(committed):
    by = {r["rung"]: r for r in committed["runs"] if r["chapter"] == 1 and r["seed"] is None}
    assert by["unigram"]["n"] == 1 and by["bigram"]["n"] == 2
    assert by["ngram"]["n"] in NGRAM_GRID["n"] and by["ngram"]["alpha"] in NGRAM_GRID["alpha"]
    assert by["ngram"]["val_loss"] <= by["bigram"]["val_loss"]


def test_honest_rung_reports_both_losses(committed):
    for r in committed["runs"]:
        if r.get("final", True):
            assert ("leaky_val_loss" in r) == rung(r["rung"]).honest
        if "leaky_val_loss" in r:        # what it reports while it can see the target
            assert r["leaky_val_loss"] < r["val_loss"]


def test_a_counted_rung_reproduces_exactly(exp, committed, data):
    stored = next(r for r in committed["runs"] if r["rung"] == "bigram")
    fresh = exp.run_count(2, stored["alpha"], data)
    assert fresh["val_loss"] == stored["val_loss"]
    assert fresh["parameters"] == stored["parameters"]


def test_a_trained_rung_reproduces(exp, committed, data):
    """One full-budget run of the cheapest attention rung (~10 s): the same loss as committed,
    within what a different CPU's float rounding can change over 1,500 steps."""
    stored = next(r for r in committed["runs"]
                  if r["rung"] == "attn-1head" and r["final"] and r["seed"] == 0)
    fresh = exp.run_one("attn-1head", stored["lr"], 0, data)
    assert fresh["parameters"] == stored["parameters"]
    assert abs(fresh["val_loss"] - stored["val_loss"]) < 0.02


def test_the_shipped_rung_is_the_shipped_model(exp, committed, data):
    stored = next(r for r in committed["runs"] if r["rung"] == "shipped")
    fresh = exp.run_shipped(data)
    assert abs(fresh["val_loss"] - stored["val_loss"]) < 1e-3
    assert fresh["parameters"] == stored["parameters"]
