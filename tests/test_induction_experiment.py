"""Chapter 10's induction experiment (scripts/experiments/induction.py), re-run in small.

The committed data/results/induction.json comes from the full script (three models, three seeds,
2,000 steps each). Here: the seed-0 lines must be what the shipped models score now; a reduced
run must reproduce the first evaluations of the shipped log; and the phase-change rule must do
what its docstring says."""


import pytest
from _experiments import experiment_fixtures

exp, committed = experiment_fixtures("induction")


def test_the_committed_results_have_three_seeds_per_model(exp, committed):
    runs = committed["runs"]
    for variant in exp.VARIANTS:
        assert sorted(r["seed"] for r in runs if r["variant"] == variant) == [0, 1, 2]
        assert {r["steps"] for r in runs if r["variant"] == variant} == {2000}
    assert committed["settings"]["phase_loss"] == exp.PHASE_LOSS


def test_the_seed_0_lines_are_what_the_shipped_models_score_now(exp, committed):
    for variant in ("2l", "1l"):
        line = next(r for r in committed["runs"] if r["variant"] == variant and r["seed"] == 0)
        assert line["model"] == f"data/pretrained/induction_{variant}"
        now = exp.run_one(variant, 0)
        assert now["curve"] == line["curve"]
        for key in ("tile", "random"):
            assert now[key] == pytest.approx(line[key], abs=2e-4), key
        for key in ("previous_token_score", "induction_score", "tile_gap_ablated"):
            assert np_close(now[key], line[key]), key


def np_close(a, b, tol=2e-4):
    return all(abs(x - y) <= tol for ra, rb in zip(a, b) for x, y in zip(ra, rb)) \
        and [len(r) for r in a] == [len(r) for r in b]


def test_a_reduced_run_reproduces_the_shipped_logs_first_evaluations(exp, committed):
    short = exp.run_one("2l", 0, steps=100)
    assert short["model"] == "trained by this script"
    full = next(r for r in committed["runs"] if r["variant"] == "2l" and r["seed"] == 0)
    # the schedule is constant, so the first 100 steps are those of the full run
    assert np_close(short["curve"], full["curve"][:2])


def test_the_phase_change_is_the_first_evaluation_below_the_threshold(exp):
    curve = [[50, 4.2, 4.0, -0.1], [100, 4.3, 1.2, -2.0], [150, 4.4, 0.9, -3.0],
             [200, 4.4, 0.5, -3.5]]
    assert exp.phase_change_step(curve) == 150
    assert exp.phase_change_step(curve[:2]) is None
    with pytest.raises(ValueError, match="unknown variant"):
        exp.config_for("3l")
