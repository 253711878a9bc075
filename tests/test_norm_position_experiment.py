"""Chapter 4's pre-LN/post-LN experiment, re-run in part: does it agree with
data/results/norm_position.json?

The committed file comes from ``scripts/experiments/norm_position.py`` (ten schedules, three seeds,
250 steps each; minutes of CPU). Here two of its runs are repeated exactly — pre-LN and post-LN at
a peak learning rate of 3e-3 without warm-up, seed 0 — and the test checks that each lands where
the file says: post-LN stuck on the unigram with its positions collapsed, pre-LN trained. Runs are
deterministic on one machine; across CPUs the last digits may differ, so losses are compared with
a tolerance and the verdicts (stuck or trained) exactly.
"""


import pytest
from _experiments import experiment_fixtures

REPEATED = (("pre", 3e-3, 0, 0), ("post", 3e-3, 0, 0))


exp, committed = experiment_fixtures("norm_position")


@pytest.fixture(scope="module")
def data(exp):
    return exp.load_data()


def _stuck(run, unigram):
    return run["top_similarity"] > 0.99 and run["final_val_loss"] > unigram - 0.1


def test_committed_results_say_how_they_were_made(exp, committed):
    s = committed["settings"]
    assert committed["command"].startswith("python scripts/experiments/norm_position.py")
    assert (s["model"], s["train"], s["probe"]) == (exp.MODEL, exp.TRAIN, exp.PROBE)
    assert [tuple(g) for g in s["grid"]] == list(exp.GRID)
    assert len(s["seeds"]) >= 3
    keys = [(r["norm_position"], r["lr"], r["warmup_steps"], r["seed"]) for r in committed["runs"]]
    assert sorted(keys) == sorted((*g, seed) for g in exp.GRID for seed in s["seeds"])


def test_unigram_in_the_file_is_the_counted_unigram(exp, committed, data):
    assert abs(exp.unigram_val_loss(data) - committed["settings"]["unigram_val_loss"]) < 1e-4


def test_a_collapsed_run_predicts_letter_frequencies(committed):
    """Where the positions collapsed at the top, the model predicts one distribution at every
    position and scores no better than the unigram; no run that trained has collapsed."""
    unigram = committed["settings"]["unigram_val_loss"]
    collapsed = [r for r in committed["runs"] if r["top_similarity"] > 0.99]
    assert collapsed                                  # the experiment shows the failure at all
    for r in collapsed:
        assert r["prediction_spread"] < 1e-2 and r["final_val_loss"] > unigram - 0.1, r
    for r in committed["runs"]:
        if r["final_val_loss"] < unigram - 0.3:
            assert r["top_similarity"] < 0.9, r


@pytest.mark.parametrize("key", REPEATED)
def test_repeated_run_agrees_with_the_committed_one(exp, committed, data, key):
    unigram = committed["settings"]["unigram_val_loss"]
    old = next(r for r in committed["runs"]
               if (r["norm_position"], r["lr"], r["warmup_steps"], r["seed"]) == key)
    new = exp.run_one(*key, data=data)
    assert abs(new["final_val_loss"] - old["final_val_loss"]) < 0.05, (new, old)
    assert _stuck(new, unigram) == _stuck(old, unigram)
    assert _stuck(new, unigram) == (key[0] == "post")    # post-LN stuck, pre-LN trained
