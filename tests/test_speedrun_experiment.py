"""scripts/experiments/speedrun.py: its recipes are valid run configs, its table computes what it
says, and a reduced run (a few steps) goes through the command line's function end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "experiments"))
import speedrun  # noqa: E402

from gptlib.model import GPTConfig  # noqa: E402
from gptlib.runconfig import load_run_config  # noqa: E402


@pytest.mark.parametrize("name", list(speedrun.RECIPES))
def test_every_recipe_is_a_valid_run_config(name):
    cfg = speedrun.build_config(name, seed=3)
    loaded = load_run_config({k: cfg[k] for k in ("model", "train", "data")})
    assert loaded["train"].seed == 3 and loaded["data"]["source"] == "text"
    GPTConfig(vocab_size=65, block_size=loaded["train"].block_size, **cfg["model"])


def test_baseline_is_nanogpts_recipe():
    b = speedrun.RECIPES["baseline"]
    assert b["reference"] and b["train"]["steps"] == 2000 and b["train"]["batch_size"] == 12
    assert b["train"]["lr"] == 1e-3 and b["train"]["block_size"] == 64
    assert b["model"] == dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)


def test_table_pairs_runs_with_their_baseline():
    lines = [
        dict(recipe="baseline", mode="final", seed=0, pair="p0", time_s=100.0, reached=False,
             val_loss=1.90, steps=2000, note=""),
        dict(recipe="record", mode="final", seed=0, pair="p0", time_s=40.0, reached=True,
             val_loss=1.87, steps=800, note=""),
        dict(recipe="baseline", mode="final", seed=1, pair="p1", time_s=120.0, reached=False,
             val_loss=1.91, steps=2000, note=""),
        dict(recipe="record", mode="final", seed=1, pair="p1", time_s=60.0, reached=True,
             val_loss=1.875, steps=800, note=""),
    ]
    assert speedrun.paired_ratios(lines, "record") == pytest.approx([0.4, 0.5])
    rows = {r["recipe"]: r for r in speedrun.table(lines)}
    assert rows["record"]["reached"] == 2 and rows["record"]["time_s"] == pytest.approx(50.0)
    assert rows["baseline"]["reached"] == 0 and rows["baseline"]["steps"] == 2000
    assert rows["baseline"]["val_loss"] == pytest.approx(1.905)


def test_a_reduced_run_end_to_end(monkeypatch):
    if not speedrun.DATA.is_file():
        pytest.skip(f"tiny-shakespeare is not beside this checkout ({speedrun.DATA})")
    monkeypatch.setenv("SPEEDRUN_STEPS", "3")
    line = speedrun.worker("record", seed=0, trace=False, eval_every=0, core=None)
    assert line["steps"] == 3 and line["vocab"] == 65 and line["mode"] == "final"
    assert 2.5 < line["val_loss"] < 4.5 and not line["reached"]     # ln 65 = 4.17 at the start


def test_the_record_config_is_the_record_recipe():
    """configs/tinyshakespeare_speedrun.json runs the record through the command line."""
    import json
    config = json.loads((ROOT / "configs" / "tinyshakespeare_speedrun.json").read_text())
    record = speedrun.RECIPES["record"]
    assert config["model"] == record["model"]
    assert config["train"] == dict(record["train"], seed=0)
    assert config["data"] == {"source": "text", "path": "../shared/data/tinyshakespeare.txt",
                              "val_fraction": 0.1, "tokenizer": "char"}
