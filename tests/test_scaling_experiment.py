"""Chapter 9's sweep, re-run in small: does it agree with data/results/scaling.json?

The committed file comes from ``scripts/experiments/scaling.py`` (6 sizes x 3 budgets, 3 seeds at
the largest budget). Here the two cheapest runs of two sizes are re-run with the same code and
data; on the machine that wrote the file they are identical, on another CPU the last bits of the
sums may differ, hence the tolerance. The file's coverage (>= 6 sizes over >= 30x) is checked too.
"""

import json
from pathlib import Path

import pytest
from _experiments import load_experiment

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "data" / "results" / "scaling.json"
TOLERANCE = 0.01        # nats


def load_script():
    return load_experiment("scaling")


@pytest.fixture(scope="module")
def committed():
    return json.loads(RESULTS.read_text())


def test_committed_sweep_covers_the_claimed_range(committed):
    runs = committed["runs"]
    sizes = sorted({r["N"] for r in runs})
    assert len(sizes) >= 6 and sizes[-1] / sizes[0] >= 30
    assert len({r["steps"] for r in runs}) >= 3
    last = max(r["steps"] for r in runs)
    for n in sizes:
        assert len({r["seed"] for r in runs if r["N"] == n and r["steps"] == last}) >= 3
    assert all(r["tokens"] == r["steps"] * 1024 for r in runs)


def test_two_runs_reproduce_the_committed_file(committed):
    exp = load_script()
    data = exp.load_data()
    for size, steps in ((exp.SIZES[0], 100), (exp.SIZES[1], 100)):
        fresh = exp.run_one(size, steps, seed=0, data=data)
        stored = next(r for r in committed["runs"] if (r["n_layer"], r["n_head"], r["n_embd"])
                      == tuple(size) and r["steps"] == steps and r["seed"] == 0)
        assert fresh["N"] == stored["N"] and fresh["tokens"] == stored["tokens"]
        assert abs(fresh["val_loss"] - stored["val_loss"]) < TOLERANCE, (size, fresh, stored)
