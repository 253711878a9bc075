"""Chapter 5's experiment, re-run in small: does it agree with data/results/positional.json?

The committed file comes from ``scripts/experiments/positional.py`` (1,000 steps, seven variants,
three seeds; far too slow for a test). Here three encodings train for 200 steps with the same
model, data and evaluation windows, and the test checks the conclusions the chapter draws:
"none" is worst at the training length, ALiBi's loss does not rise on windows 4x longer than
those it was trained on, and RoPE's does. Short runs give higher losses, so only the *ordering*
and the *sign* of each effect are compared with the committed results, with margins.
"""

import json
from pathlib import Path

import pytest
from _experiments import load_experiment

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "data" / "results" / "positional.json"
ENCODINGS = ("none", "rope", "alibi")
STEPS = 200


def load_script():
    return load_experiment("positional")


@pytest.fixture(scope="module")
def exp():
    return load_script()


@pytest.fixture(scope="module")
def committed():
    return json.loads(RESULTS.read_text())


@pytest.fixture(scope="module")
def reduced(exp, committed):
    data = exp.load_data()
    T = committed["settings"]["block_size"]
    return {e: exp.run_one(e, seed=0, steps=STEPS, block_size=T, multiples=(1, 4), data=data,
                           train_overrides={"eval_batches": 2})   # (train's own final estimate: unused)
            for e in ENCODINGS}


def _mean(xs):
    return sum(xs) / len(xs)


def committed_loss(committed, encoding, length):
    return _mean([r["val_loss"][str(length)] for r in committed["runs"] if r["encoding"] == encoding])


def test_committed_results_say_how_they_were_made(exp, committed):
    s = committed["settings"]
    assert committed["command"].startswith("python scripts/experiments/positional.py")
    # the file was made by the script as it is now
    assert (s["model"], s["train"], s["eval"]) == (exp.MODEL, exp.TRAIN, exp.EVAL)
    assert s["scaled_sinusoidal"] == exp.SCALED_SINUSOIDAL
    assert tuple(s["encodings"]) == exp.VARIANTS and s["multiples"] == list(exp.MULTIPLES)
    assert len(s["seeds"]) >= 3
    runs = {(r["encoding"], r["seed"]) for r in committed["runs"]}
    assert runs == {(e, seed) for e in s["encodings"] for seed in s["seeds"]}
    T = s["block_size"]
    for r in committed["runs"]:
        table = r["encoding"] in exp.TABLE_ENCODINGS
        expected = [str(T)] if table else [str(m * T) for m in exp.MULTIPLES]
        assert list(r["val_loss"]) == expected, r["encoding"]
        assert ("loss_by_position" in r) != table and ("wpe" in r) == (r["encoding"] == "learned")
        if not table:
            assert len(r["loss_by_position"]) == exp.MULTIPLES[-1] * T
            assert abs(_mean(r["loss_by_position"]) - r["val_loss"][expected[-1]]) < 1e-3


def test_reduced_run_agrees_with_the_committed_results(reduced, committed):
    T = committed["settings"]["block_size"]
    short = {e: reduced[e]["val_loss"][str(T)] for e in ENCODINGS}
    long_ = {e: reduced[e]["val_loss"][str(4 * T)] for e in ENCODINGS}
    full_short = {e: committed_loss(committed, e, T) for e in ENCODINGS}
    full_long = {e: committed_loss(committed, e, 4 * T) for e in ENCODINGS}
    for e in ENCODINGS:
        # five times more training gives lower losses, but not wildly lower
        assert full_short[e] < short[e] < full_short[e] + 0.8, e
    for losses in (short, full_short):                    # "none" is worst at the training length
        assert losses["none"] > max(losses["rope"], losses["alibi"]) + 0.05, losses
    for a, b in ((short, long_), (full_short, full_long)):
        rise = {e: b[e] - a[e] for e in ENCODINGS}
        assert rise["alibi"] < 0.05, rise                 # ALiBi holds its level at 4x ...
        assert rise["rope"] > rise["alibi"] + 0.05, rise  # ... RoPE does not
