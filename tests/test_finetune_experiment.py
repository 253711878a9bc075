"""Chapter 8's baseline experiment, re-run in part: does it agree with
data/results/finetune.json?

The committed file comes from ``scripts/experiments/finetune.py`` (two tasks x four methods x
three seeds). Here seed 0 of the two Naive Bayes methods on the genre task is repeated (counting
is exact), and the pretrained probe on the shuffled-words task (L-BFGS on features: compared
with a tolerance, since the last bits of the features differ across CPUs).
"""


import pytest
from _experiments import experiment_fixtures

exp, committed = experiment_fixtures("finetune")


@pytest.fixture(scope="module")
def model():
    from gptlib.data import data_dir
    from gptlib.finetune import load_backbone
    return load_backbone(data_dir() / "pretrained" / "shakespeare_char")


def committed_run(committed, task, method, seed):
    return next(r for r in committed["runs"]
                if (r["task"], r["method"], r["seed"]) == (task, method, seed))


def test_the_file_holds_every_task_method_and_seed_with_its_settings(exp, committed):
    keys = {(r["task"], r["method"], r["seed"]) for r in committed["runs"]}
    assert keys == {(t, m, s) for t in exp.TASKS for m in exp.METHODS for s in exp.SEEDS}
    s = committed["settings"]
    assert s["alphas"] == list(exp.ALPHAS) and s["weight_decays"] == list(exp.WEIGHT_DECAYS)
    assert s["n_per_class"] == exp.DATA["n_per_class"]
    for r in committed["runs"]:
        chosen = r.get("alpha", r.get("weight_decay"))
        assert chosen in (exp.ALPHAS if "alpha" in r else exp.WEIGHT_DECAYS)
        assert r["n_eval"] == 600 and 0.3 < r["macro"] < 1.0


def test_naive_bayes_reruns_exactly(exp, committed, model):
    pretrained, tok = model
    sets = exp.datasets("genre", 0, tok)
    for method in ("naive bayes (words)", "naive bayes (word pairs)"):
        run = exp.run_method("genre", method, 0, pretrained, tok, sets)
        old = committed_run(committed, "genre", method, 0)
        assert (run["alpha"], run["macro"], run["dev_macro"]) == \
            (old["alpha"], pytest.approx(old["macro"], abs=1e-9),
             pytest.approx(old["dev_macro"], abs=1e-9))


def test_pretrained_probe_on_shuffled_words_reruns(exp, committed, model):
    pretrained, tok = model
    run = exp.run_method("shuffled", "probe (pretrained)", 0, pretrained, tok)
    old = committed_run(committed, "shuffled", "probe (pretrained)", 0)
    assert run["macro"] == pytest.approx(old["macro"], abs=0.01)
    assert run["dev_macro"] == pytest.approx(old["dev_macro"], abs=0.01)
