"""Crash safety of training runs: a real command-line run (``python -m gptlib.pretrain``) killed
at many points — inside every stage of a checkpoint's save, at random moments, on a full disk, by
Ctrl-C once and twice — resumes from its last good checkpoint to the same final weights, bit for
bit, as an uninterrupted run. In-process tests cover what a subprocess cannot time exactly: a
Ctrl-C in the middle of a step (forward pass, optimizer update) and a disk that fills up halfway
through a file.

Kill points inside a save come from ``gptlib.checkpoint``'s test hook (``GPTLIB_TEST_HOOK``): the
process kills itself (``SIGKILL``, the signal nothing can catch) or pauses there while this test
sends it a real ``SIGINT``.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from gptlib import checkpoint as ckpt
from gptlib.checkpoint import SAVE_STAGES, TEST_HOOK, find_checkpoint, load_checkpoint
from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import LanguageModelTask, TrainConfig, TrainingInterrupted, train

ROOT = Path(__file__).resolve().parent.parent
NOISE = torch.randint(11, (600,), generator=torch.Generator().manual_seed(0))

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


@pytest.fixture(autouse=True)
def python_ctrl_c_handler():
    """Python's own SIGINT handler, even where this test process was started with SIGINT
    ignored (as a background job of a non-interactive shell is)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def default_sigint():                   # for the runs this test starts: SIGINT not ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)

# a run of 24 steps, a checkpoint every 2: saves at steps 2, 4, ..., 24; dropout 0.1, so the
# global generator must resume too, and an evaluation every 4 steps
CONFIG = {"model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.1},
          "train": {"steps": 24, "batch_size": 4, "block_size": 16, "lr": 3e-3,
                    "warmup_steps": 2, "eval_every": 4, "eval_batches": 2,
                    "checkpoint_every": 2, "seed": 3},
          "data": {"source": "text", "path": None, "val_fraction": 0.2, "tokenizer": "char"}}


def committed_step(directory, quiet=True) -> int | None:
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        try:
            return find_checkpoint(directory)[1]["step"]
        except ckpt.CheckpointError:
            return None


def wait_for(proc, text: str) -> None:
    """Read the process's stderr up to a line holding ``text``."""
    lines = []
    while (line := proc.stderr.readline()) and text not in line:
        lines.append(line)
    assert text in line, "".join(lines)


def leftovers(directory) -> set[str]:
    return {p.name for p in Path(directory).iterdir() if p.name.startswith(".tmp-")} \
        if Path(directory).is_dir() else set()


class Run:
    """The command line on a tiny config, in a temporary directory."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        text = tmp_path / "text.txt"
        text.write_text("".join(chr(97 + i) for i in NOISE.tolist()) * 2)
        config = json.loads(json.dumps(CONFIG))
        config["data"]["path"] = str(text)
        self.config = tmp_path / "tiny.json"
        self.config.write_text(json.dumps(config))
        self.ckpt = tmp_path / "ckpt"

    def start(self, out, hook=None, resume=None):
        args = [sys.executable, "-m", "gptlib.pretrain", "--config", str(self.config),
                "--threads", "1", "--no-progress", "--out", str(self.tmp / out),
                "--checkpoint-dir", str(self.ckpt)]
        if resume if resume is not None else committed_step(self.ckpt) is not None:
            args += ["--resume", str(self.ckpt)]
        env = {k: v for k, v in os.environ.items() if k != TEST_HOOK}
        env.update({TEST_HOOK: hook} if hook else {})
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)

    def finish(self, proc):
        out, err = proc.communicate(timeout=120)
        return proc.returncode, err


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    run = Run(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "gptlib.pretrain", "--config", str(run.config),
                           "--threads", "1", "--no-progress", "--out", str(tmp_path / "full")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    kills, bit_exact_checks = [], 0
    seen_tmp: set[str] = set()

    def after_kill(expected_step, what):
        nonlocal seen_tmp
        now = committed_step(run.ckpt)
        assert now == expected_step, (what, now, expected_step)
        assert not (leftovers(run.ckpt) & seen_tmp), (what, "old temp files not cleaned")
        seen_tmp = leftovers(run.ckpt)
        steps = [p for p in run.ckpt.iterdir() if p.name.startswith("step-")] \
            if run.ckpt.is_dir() else []
        assert len(steps) <= 4, (what, steps)  # new, previous, one not yet pruned, one orphan
        kills.append(what)

    # 1. SIGKILL inside every stage of a save. Until a save gets past "latest", there is no
    #    `latest` and the newest complete step directory is the checkpoint (none: start afresh);
    #    after that, a step directory is the checkpoint only once `latest` names it
    kill_points = [(2, "model-partial"), (2, "optimizer"), (2, "json-partial"), (2, "renamed"),
                   (4, "model"), (4, "optimizer-partial"), (4, "json"), (4, "latest-partial"),
                   (6, "latest"), (8, "renamed"), (8, "pruned")]
    assert {stage for _, stage in kill_points} == set(SAVE_STAGES)
    for step, stage in kill_points:
        before, pointer = committed_step(run.ckpt), (run.ckpt / "latest").exists()
        code, err = run.finish(run.start("part", f"kill:{stage}:{step}"))
        assert code == -signal.SIGKILL, err
        index = SAVE_STAGES.index          # with no `latest` yet, a complete directory counts
        done = index(stage) >= index("latest") or not pointer and index(stage) >= index("renamed")
        after_kill(step if done else before, f"kill at {stage} of step {step}")
    # 2. SIGKILL at random moments (mid-step, mid-evaluation, mid-save) after a save
    rng = random.Random(0)
    for _ in range(2):
        before = (run.ckpt / "latest").read_text()
        backstop = committed_step(run.ckpt) + 4         # on a fast machine: no further
        proc = run.start("part", f"kill:pruned:{backstop}")
        while proc.poll() is None and (run.ckpt / "latest").read_text() == before:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.02))
        proc.kill()
        code, err = run.finish(proc)
        assert code == -signal.SIGKILL, "the run finished before the kill; make it longer"
        after_kill(committed_step(run.ckpt), "kill at a random moment")
    # 3. the latest checkpoint damaged on disk: the run falls back to the previous one
    latest, _ = find_checkpoint(run.ckpt)
    weights = latest / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0x01                          # one flipped bit: the sha256 catches it
    weights.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="falling back"):
        previous = committed_step(run.ckpt, quiet=False)
    assert previous < int(latest.name.split("-")[1])
    # ... and the run after that dies on a full disk in the middle of writing the next save
    step = previous + 2
    code, err = run.finish(run.start("part", f"enospc:optimizer-partial:{step}"))
    assert code == 1 and "falling back" in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No space left on device" in last, err
    assert f"cannot save the checkpoint of step {step}" in last and "Traceback" not in err
    after_kill(previous, "full disk")
    assert not leftovers(run.ckpt)                      # removed at once, not left for later
    # 4. Ctrl-C inside a save: the interrupted save is redone, then the run stops (status 130)
    step += 2
    proc = run.start("part", f"pause:json:{step}")
    wait_for(proc, "paused at json")
    proc.send_signal(signal.SIGINT)
    code, err = run.finish(proc)
    assert code == 130 and f"interrupted after step {step}: checkpoint saved" in err, err
    assert "Traceback" not in err
    after_kill(step, "Ctrl-C during a save")
    # 5. Ctrl-C during a save, and again during the save it starts: nothing is half-written
    proc = run.start("part", f"pause:model:{step + 2},pause:optimizer:{step + 2}")
    wait_for(proc, "paused at model")
    proc.send_signal(signal.SIGINT)
    wait_for(proc, "paused at optimizer")
    proc.send_signal(signal.SIGINT)
    code, err = run.finish(proc)
    assert code == 130 and "interrupted again while saving" in err, err
    after_kill(step, "two Ctrl-Cs during a save")
    assert not leftovers(run.ckpt)
    # 6. the `latest` pointer itself damaged: the newest intact step directory is used
    (run.ckpt / "latest").write_text("garbage\n")
    with pytest.warns(UserWarning, match="latest is damaged"):
        assert committed_step(run.ckpt, quiet=False) == step
    # the rest of the run, uninterrupted
    code, err = run.finish(run.start("rest"))
    assert code == 0, err
    assert (tmp_path / "rest" / "model.safetensors").read_bytes() == \
        (tmp_path / "full" / "model.safetensors").read_bytes()
    bit_exact_checks += 1
    from gptlib.runconfig import read_log
    full, rest = (read_log(tmp_path / d / "train_log.csv") for d in ("full", "rest"))
    strip = lambda log: [{k: v for k, v in r.items() if k != "time_s"} for r in log]  # noqa: E731
    assert strip(rest) == strip(full) and len(full) == 24
    assert not leftovers(run.ckpt)
    assert sorted(p.name for p in run.ckpt.iterdir()) == ["latest", "step-00000022",
                                                          "step-00000024"]
    print(f"{len(kills)} interruptions, resumed bit for bit: {kills}")
    assert len(kills) >= 16


# ---- in process: Ctrl-C in the middle of a step, a disk that fills up -------------------------

def tiny_model(seed=0, dropout=0.1) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=16,
                         dropout=dropout))


def cfg(**overrides) -> TrainConfig:
    d = dict(steps=8, batch_size=4, block_size=16, lr=1e-2, warmup_steps=1, checkpoint_every=0)
    d.update(overrides)
    return TrainConfig(**d)


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


class InterruptingTask(LanguageModelTask):
    """Sends this process a real SIGINT after the forward pass of step ``at`` (its batch drawn,
    its dropout masks drawn from the global generator)."""

    def __init__(self, at, grad_accum=1):
        self.calls, self.at = 0, (at - 1) * grad_accum + 1

    def loss(self, model, batch, device):
        self.calls += 1
        out = super().loss(model, batch, device)
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return out


@pytest.mark.parametrize("checkpoint_every", [0, 3])
def test_ctrl_c_mid_step_saves_the_last_completed_step(tmp_path, checkpoint_every):
    c = cfg(checkpoint_every=checkpoint_every)
    full_model = tiny_model()
    full = train(full_model, NOISE, c)
    with pytest.raises(TrainingInterrupted) as stop:
        train(tiny_model(), NOISE, c, task=InterruptingTask(at=5), checkpoint_dir=tmp_path)
    assert stop.value.step == 4 and stop.value.checkpoint == tmp_path / "step-00000004"
    assert committed_step(tmp_path) == 4                # not 3 (checkpoint_every), not 5
    resumed_model = tiny_model(seed=1)
    rest = train(resumed_model, NOISE, c, resume_from=tmp_path)
    assert [r["train_loss"] for r in rest.history] == [r["train_loss"] for r in full.history]
    assert all(torch.equal(a, b) for a, b in zip(weights(resumed_model), weights(full_model)))


def test_ctrl_c_during_the_update_is_held_until_the_step_is_complete(tmp_path, monkeypatch):
    """A SIGINT that lands after the optimizer changed the weights but before the step is
    recorded would save step k's weights as step k - 1 (a resume then repeats step k)."""
    import gptlib.pretrain as pretrain
    made = pretrain.make_optimizer
    calls = []

    def interrupting_optimizer(model, c):
        opt = made(model, c)

        def hook(optimizer, args, kwargs):
            calls.append(1)
            if len(calls) == 5:
                os.kill(os.getpid(), signal.SIGINT)     # the weights already hold step 5
        opt.register_step_post_hook(hook)
        return opt

    monkeypatch.setattr(pretrain, "make_optimizer", interrupting_optimizer)
    c = cfg()
    with pytest.raises(TrainingInterrupted) as stop:
        train(tiny_model(), NOISE, c, checkpoint_dir=tmp_path)
    monkeypatch.undo()
    assert stop.value.step == 5 and committed_step(tmp_path) == 5
    full_model = tiny_model()
    full = train(full_model, NOISE, c)
    resumed_model = tiny_model(seed=1)                  # other weights: replaced on load
    rest = train(resumed_model, NOISE, c, resume_from=tmp_path)
    assert [r["train_loss"] for r in rest.history] == [r["train_loss"] for r in full.history]
    assert all(torch.equal(a, b) for a, b in zip(weights(resumed_model), weights(full_model)))


def test_a_second_ctrl_c_during_the_update_stops_at_once_and_saves_nothing(tmp_path,
                                                                          monkeypatch):
    import gptlib.pretrain as pretrain
    made = pretrain.make_optimizer

    def twice_interrupting_optimizer(model, c):
        opt = made(model, c)

        def hook(optimizer, args, kwargs):
            if optimizer.state[next(iter(optimizer.state))]["step"] == 3:
                os.kill(os.getpid(), signal.SIGINT)     # held ...
                os.kill(os.getpid(), signal.SIGINT)     # ... and this one raised at once
        opt.register_step_post_hook(hook)
        return opt

    monkeypatch.setattr(pretrain, "make_optimizer", twice_interrupting_optimizer)
    with pytest.raises(TrainingInterrupted) as stop:
        train(tiny_model(), NOISE, cfg(checkpoint_every=1), checkpoint_dir=tmp_path)
    assert stop.value.step == 2 and stop.value.checkpoint is None
    assert "interrupted again during the update of step 3" in stop.value.reason
    assert committed_step(tmp_path) == 2                # the half-applied step 3 is not saved


def test_ctrl_c_without_a_checkpoint_dir_says_nothing_was_saved():
    with pytest.raises(TrainingInterrupted) as stop:
        train(tiny_model(), NOISE, cfg(), task=InterruptingTask(at=3))
    assert stop.value.step == 2 and stop.value.checkpoint is None
    assert stop.value.reason == "no checkpoint_dir"


@pytest.mark.parametrize("file_index", [0, 1, 2])          # model, optimizer, checkpoint.json
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, file_index):
    """The disk fills up halfway through one of the three files of the save of step 4."""
    c = cfg(checkpoint_every=2)
    real, writes = ckpt._write_file, []

    def filling_disk(path, data, stage="", step=None):
        writes.append(path)
        if step == 4 and len(writes) == 3 + file_index + 1:
            with open(path, "wb") as f:
                f.write(data[:len(data) // 2])
            raise OSError(28, "No space left on device")
        return real(path, data, stage, step)

    monkeypatch.setattr(ckpt, "_write_file", filling_disk)
    with pytest.raises(OSError, match="cannot save the checkpoint of step 4 .*No space left on "
                                      "device; the checkpoint 'latest' names there is intact"):
        train(tiny_model(), NOISE, c, checkpoint_dir=tmp_path)
    monkeypatch.undo()
    assert committed_step(tmp_path) == 2 and not leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-00000002"]
    full_model = tiny_model()
    full = train(full_model, NOISE, c)
    resumed_model = tiny_model(seed=1)                  # other weights: replaced on load
    train(resumed_model, NOISE, c, resume_from=tmp_path, checkpoint_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(weights(resumed_model), weights(full_model)))
    assert committed_step(tmp_path) == 8 and full.steps == 8


def test_leftovers_of_a_crashed_save_are_removed_on_the_next_start(tmp_path):
    train(tiny_model(), NOISE, cfg(steps=2, checkpoint_every=1), checkpoint_dir=tmp_path)
    dead = tmp_path / ".tmp-step-00000003-999999999"     # no such process
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"half")
    (tmp_path / ".tmp-latest-999999999").write_text("step-00000003")
    mine = tmp_path / f".tmp-step-00000009-{os.getppid()}"   # a live process's: kept
    mine.mkdir()
    state = load_checkpoint(tmp_path, tiny_model())      # loading changes nothing on disk
    assert state["step"] == 2 and dead.exists()
    seen = []                                           # at step 3, before any save
    train(tiny_model(), NOISE, cfg(steps=3, checkpoint_every=1), resume_from=tmp_path,
          checkpoint_dir=tmp_path, callback=lambda r: seen.append(leftovers(tmp_path)))
    assert seen == [{mine.name}] and leftovers(tmp_path) == {mine.name}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == \
        ["latest", "step-00000002", "step-00000003"]      # the new one and the previous one
