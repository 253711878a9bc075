"""The command line (``python -m gptlib.pretrain``): a user error is one line on stderr,
``error: ...``, and a non-zero exit status — never a traceback; resuming on other data or another
training config is refused with a message that names what changed."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptlib.runconfig import main, run

ROOT = Path(__file__).resolve().parent.parent
NOISE = torch.randint(11, (600,), generator=torch.Generator().manual_seed(0))

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


@pytest.fixture
def setup(tmp_path):
    """A tiny run config on a text file, and a checkpoint of its first 3 steps."""
    text = tmp_path / "text.txt"
    text.write_text("".join(chr(97 + i) for i in NOISE.tolist()) * 2)
    config = {"model": {"n_layer": 1, "n_head": 2, "n_embd": 16},
              "train": {"steps": 6, "batch_size": 4, "block_size": 16, "checkpoint_every": 2},
              "data": {"source": "text", "path": str(text), "val_fraction": 0.2}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    run(path, stop_after=3, checkpoint_dir=tmp_path / "ckpt", progress=False)
    return tmp_path, config


def cli(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--threads", "1", "--no-progress"])
    err = capsys.readouterr().err
    return done.value.code, err


def write(tmp_path, config, name="changed.json") -> str:
    (tmp_path / name).write_text(json.dumps(config) if isinstance(config, dict) else config)
    return str(tmp_path / name)


def changed(config, section, **values):
    new = json.loads(json.dumps(config))
    new[section].update(values)
    return new


def test_bad_command_line_values_are_refused(capsys, setup):
    tmp_path, config = setup
    good = write(tmp_path, config, "good.json")
    for argv, message in [
        (["--stop-after", "-1"], "argument --stop-after: must be >= 1, got -1"),
        (["--stop-after", "0"], "argument --stop-after: must be >= 1, got 0"),
        (["--stop-after", "two"], "argument --stop-after: expected a whole number, got 'two'"),
        (["--threads", "0"], "argument --threads: must be >= 1, got 0"),
    ]:
        with pytest.raises(SystemExit) as done:
            main(["--config", good, *argv])
        err = capsys.readouterr().err
        assert done.value.code == 2 and message in err.splitlines()[-1], (argv, err)
        assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="stop_after must be a number of steps >= 1, got -1"):
        run(good, stop_after=-1, progress=False)


@pytest.mark.parametrize("make, message", [
    (lambda t, c: ["--config", str(t / "none.json")], r"no run config at .*none\.json"),
    (lambda t, c: ["--config", str(t / "two\nlines.json")], r"no run config at .*two lines"),
    (lambda t, c: ["--config", write(t, "{not json")], r"changed\.json is not valid JSON"),
    (lambda t, c: ["--config", write(t, changed(c, "train", learning_rate=1))],
     r"unknown TrainConfig key\(s\) \['learning_rate'\]"),
    (lambda t, c: ["--config", write(t, changed(c, "data", path=str(t / "gone.txt")))],
     r"No such file or directory: .*gone\.txt"),
    (lambda t, c: ["--config", write(t, changed(c, "model", n_head=3))], r"n_head"),
    (lambda t, c: ["--config", write(t, c), "--resume", str(t / "nowhere")],
     r"no checkpoint at .*nowhere: the directory does not exist"),
    (lambda t, c: ["--config", write(t, c), "--resume", str(t / "ckpt"), "--stop-after", "3"],
     r"stop_after=3 but the checkpoint at .* is already at step 3"),
    (lambda t, c: ["--config", write(t, changed(c, "train", lr=5e-3)), "--resume",
                   str(t / "ckpt")], r"its training config differs in \['lr'\]"),
    (lambda t, c: ["--config", write(t, changed(c, "data", val_fraction=0.3)), "--resume",
                   str(t / "ckpt")],
     r"data section differs .*\(val_fraction: checkpoint 0\.2 vs config 0\.3\)"),
])
def test_user_errors_are_one_line_and_a_non_zero_status(capsys, setup, make, message):
    tmp_path, config = setup
    code, err = cli(capsys, *make(tmp_path, config))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err


def test_resume_refuses_other_data_even_under_the_same_path(capsys, setup):
    """The data section is the same, but the text (and so the token ids) changed."""
    tmp_path, config = setup
    text = Path(config["data"]["path"])
    text.write_text(text.read_text()[::-1])                 # same characters, other order
    code, err = cli(capsys, "--config", write(tmp_path, config), "--resume",
                    str(tmp_path / "ckpt"))
    assert code == 1 and "the train and val token ids differ" in err, err
    text.write_text(text.read_text() + "XYZ")               # and now new characters too
    code, err = cli(capsys, "--config", write(tmp_path, config), "--resume",
                    str(tmp_path / "ckpt"))
    assert code == 1 and "the tokenizer differs" in err, err


def test_a_real_process_prints_one_line_and_no_traceback(setup):
    tmp_path, config = setup
    proc = subprocess.run([sys.executable, "-m", "gptlib.pretrain", "--config",
                           write(tmp_path, changed(config, "data", val_fraction=0.5)),
                           "--resume", str(tmp_path / "ckpt"), "--threads", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: cannot resume ") and proc.stderr.count("\n") == 1, \
        proc.stderr
