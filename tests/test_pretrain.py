"""Tests for gptlib.pretrain and gptlib.checkpoint: the schedule, the optimizer groups, the loop
(same seed -> same batches, accumulation, clipping, evaluation), exact resumption, checkpoint
errors, run configs, and the shipped model's log reproduced by the command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptlib.checkpoint import CheckpointError, load_checkpoint, load_pretrained, save_pretrained
from gptlib.data import get_batch
from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import (TrainConfig, dataset_loss, estimate_loss, lr_at, make_optimizer,
                             train)
from gptlib.runconfig import load_run_config, read_log
from gptlib.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "pretrained" / "shakespeare_char"
PERIODIC = torch.arange(600) % 7                       # a sequence a tiny model can learn
NOISE = torch.randint(11, (600,), generator=torch.Generator().manual_seed(0))


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def tiny_model(seed=0, **overrides) -> GPT:
    cfg = dict(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=16)
    cfg.update(overrides)
    torch.manual_seed(seed)
    return GPT(GPTConfig(**cfg))


def cfg(**overrides) -> TrainConfig:
    d = dict(steps=8, batch_size=4, block_size=16, lr=1e-2, warmup_steps=1)
    d.update(overrides)
    return TrainConfig(**d)


def losses(result, key="train_loss"):
    return [r[key] for r in result.history if key in r]


# ---- the learning-rate schedule -------------------------------------------------------------------

def test_warmup_is_linear_and_cosine_ends_at_min_lr():
    c = TrainConfig(steps=110, batch_size=1, block_size=1, lr=1e-3, min_lr=1e-4, warmup_steps=10)
    assert [lr_at(s, c) for s in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])
    assert lr_at(10, c) == pytest.approx(1e-3)                     # decay starts at the peak
    mid = 10 + 99 / 2                                              # p = 1/2: halfway down
    assert lr_at(int(mid), c) > 5.5e-4 > lr_at(int(mid) + 1, c)
    assert lr_at(109, c) == pytest.approx(1e-4)                    # the last step: min_lr
    assert lr_at(500, c) == pytest.approx(1e-4)                    # past the end: stays there
    decay = [lr_at(s, c) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


def test_linear_and_constant_schedules():
    lin = TrainConfig(steps=11, batch_size=1, block_size=1, lr=1.0, schedule="linear")
    assert [lr_at(s, lin) for s in (0, 5, 10)] == pytest.approx([1.0, 0.5, 0.0])
    const = TrainConfig(steps=11, batch_size=1, block_size=1, lr=0.3, warmup_steps=3,
                        schedule="constant")
    assert [lr_at(s, const) for s in (0, 2, 3, 10)] == pytest.approx([0.1, 0.3, 0.3, 0.3])
    one = TrainConfig(steps=1, batch_size=1, block_size=1, lr=0.3, min_lr=0.1)
    assert lr_at(0, one) == 0.3                        # a single step is the peak, not the floor


# ---- TrainConfig ----------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    (dict(steps=0), "steps must be a positive int"),
    (dict(batch_size=2.0), "batch_size must be a positive int"),
    (dict(lr=-1.0), "lr must be a number > 0"),
    (dict(min_lr=1.0), r"min_lr must be in \[0, lr"),
    (dict(warmup_steps=9), "warmup_steps=9 is more than steps=8"),
    (dict(schedule="step"), "schedule='step' is unknown"),
    (dict(betas=(0.9,)), "betas must be two numbers"),
    (dict(grad_clip=0), "grad_clip must be a number > 0 or None"),
    (dict(grad_accum=0), "grad_accum must be a positive int"),
    (dict(eval_every=-1), "eval_every must be an int >= 0"),
])
def test_bad_train_config_values_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        cfg(**overrides)


def test_from_dict_names_unknown_keys_and_round_trips():
    with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) \['learning_rate'\]"):
        TrainConfig.from_dict({"steps": 1, "batch_size": 1, "block_size": 1, "learning_rate": 1})
    c = cfg(betas=[0.8, 0.99])
    assert c.betas == (0.8, 0.99)
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


# ---- the optimizer --------------------------------------------------------------------------------

def test_matrices_decay_and_vectors_do_not():
    model = tiny_model()
    opt = make_optimizer(model, cfg(weight_decay=0.1))
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = ({names[id(p)] for p in g["params"]} for g in opt.param_groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert decay == {"wte.weight", "pos.wpe.weight", "h.0.attn.c_attn.weight",
                     "h.0.attn.c_proj.weight", "h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight"}
    assert all(n.endswith(".bias") or ".ln_" in n or n.startswith("ln_f") for n in no_decay)
    # the tied lm_head/wte matrix is there once; every parameter is in exactly one group
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == model.num_parameters()


# ---- the loop -------------------------------------------------------------------------------------

def test_train_lowers_the_loss_of_a_learnable_sequence():
    model = tiny_model()
    c = cfg(steps=30, eval_every=10, eval_batches=4)
    before = estimate_loss(model, PERIODIC, c, 4, torch.Generator().manual_seed(0))
    result = train(model, PERIODIC, c, val_data=PERIODIC)
    assert before > 2.0                                # ~ ln 11 = 2.40 at init
    assert result.final_val_loss < 0.5 * before
    assert [r["step"] for r in result.history] == list(range(1, 31))
    assert [r["step"] for r in result.history if "val_loss" in r] == [10, 20, 30]
    assert result.history[-1]["tokens"] == 30 * 4 * 16
    assert [r["lr"] for r in result.history] == [lr_at(s, c) for s in range(30)]
    assert not model.training                          # left in eval mode, ready to generate


def test_the_first_step_sees_the_batch_of_a_generator_seeded_with_cfg_seed():
    model = tiny_model()
    x, y = get_batch(NOISE, 4, 16, torch.Generator().manual_seed(123))
    with torch.no_grad():
        expected = model(x, y)[1].item()
    result = train(model, NOISE, cfg(steps=1, seed=123))
    assert result.history[0]["train_loss"] == pytest.approx(expected, abs=1e-6)


def test_same_seed_same_run_and_another_seed_other_batches():
    a, b, c = (train(tiny_model(), NOISE, cfg(seed=s)) for s in (5, 5, 6))
    assert losses(a) == losses(b)
    assert losses(a) != losses(c)


def test_gradient_accumulation_equals_one_big_batch():
    """2 micro-batches of 4 draw the same 8 windows as one batch of 8 (one generator stream),
    and the mean of two equal-sized means is the mean over all: the same update."""
    m1, m2 = tiny_model(), tiny_model()
    r1 = train(m1, NOISE, cfg(steps=1, batch_size=8))
    r2 = train(m2, NOISE, cfg(steps=1, batch_size=4, grad_accum=2))
    assert r1.history[0]["train_loss"] == pytest.approx(r2.history[0]["train_loss"], abs=1e-6)
    assert r1.history[0]["grad_norm"] == pytest.approx(r2.history[0]["grad_norm"], rel=1e-5)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)
    assert r2.history[0]["tokens"] == 8 * 16


def test_grad_norm_is_measured_before_clipping_and_clipping_is_applied():
    model = tiny_model()
    x, y = get_batch(NOISE, 4, 16, torch.Generator().manual_seed(0))
    model(x, y)[1].backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters())).item()
    start = [p.detach().clone() for p in tiny_model().parameters()]
    free, clipped = tiny_model(), tiny_model()
    r = train(free, NOISE, cfg(steps=1, warmup_steps=0, grad_clip=None))
    train(clipped, NOISE, cfg(steps=1, warmup_steps=0, grad_clip=1e-12))
    assert r.history[0]["grad_norm"] == pytest.approx(norm, rel=1e-5)
    moved = lambda m: max((p - s).abs().max().item() for p, s in zip(m.parameters(), start))  # noqa
    # AdamW's first step is ~lr * sign(g); a gradient clipped far below eps barely moves anything
    assert moved(free) == pytest.approx(1e-2, rel=0.05)
    assert moved(clipped) < 1e-4


def test_estimate_loss_and_dataset_loss_match_direct_computation():
    model = tiny_model().train()
    gen_seed = 3
    x, y = get_batch(NOISE, 4, 16, torch.Generator().manual_seed(gen_seed))
    with torch.no_grad():
        model.eval()
        direct = model(x, y)[1].item()
        model.train()
    est = estimate_loss(model, NOISE, (4, 16), 1, torch.Generator().manual_seed(gen_seed))
    assert est == pytest.approx(direct, abs=1e-6)
    assert model.training                               # mode restored
    data = NOISE[:101]                                   # 6 windows of 16 and a remainder
    xs, ys = data[:96].view(6, 16), data[1:97].view(6, 16)
    with torch.no_grad():
        model.eval()
        whole = model(xs, ys)[1].item()
    assert dataset_loss(model, data, 16, batch_size=4) == pytest.approx(whole, abs=1e-6)
    per_token = dataset_loss(model, data, 16, batch_size=4, per_token=True)
    with torch.no_grad():
        by_hand = torch.nn.functional.cross_entropy(model(xs)[0][2, 5], ys[2, 5]).item()
    assert per_token.shape == (96,) and per_token.mean().item() == pytest.approx(whole, abs=1e-6)
    assert per_token[2 * 16 + 5].item() == pytest.approx(by_hand, abs=1e-6)   # scores data[38]


def test_block_size_beyond_the_data_or_the_model_is_a_clear_error():
    with pytest.raises(ValueError, match=r"block_size 16 is larger than train_data allows.*17"):
        train(tiny_model(), NOISE[:16], cfg())
    with pytest.raises(ValueError, match="block_size 16 is larger than val_data allows"):
        train(tiny_model(), NOISE, cfg(), val_data=NOISE[:10])
    with pytest.raises(ValueError, match="block_size=32 exceeds the model's context of 16"):
        train(tiny_model(), NOISE, cfg(block_size=32))
    with pytest.raises(ValueError, match="token id 11 but the model's vocabulary has 11"):
        train(tiny_model(), NOISE + 1, cfg())


def test_callback_can_stop_training_early():
    result = train(tiny_model(), NOISE, cfg(), callback=lambda r: r["step"] == 3)
    assert result.steps == 3 and result.stopped_early and len(result.history) == 3


# ---- checkpoints ----------------------------------------------------------------------------------

def test_resuming_continues_exactly_as_if_uninterrupted(tmp_path):
    """Dropout (global RNG), the batch generator, AdamW's moments and the schedule all resume."""
    c = cfg(steps=8, eval_every=4, eval_batches=2)
    full = train(tiny_model(dropout=0.2), NOISE, c, val_data=NOISE)
    first = train(tiny_model(dropout=0.2), NOISE, c, val_data=NOISE, checkpoint_dir=tmp_path,
                  callback=lambda r: r["step"] == 3)
    assert first.steps == 3
    torch.manual_seed(999)                              # the resumed run must not depend on this
    resumed_model = tiny_model(seed=42, dropout=0.2)    # other weights: the checkpoint replaces them
    rest = train(resumed_model, NOISE, c, val_data=NOISE, resume_from=tmp_path)
    assert [r["step"] for r in rest.history] == list(range(1, 9))
    assert losses(rest) == losses(full)                 # bit for bit, steps 4..8 included
    assert losses(rest, "val_loss") == losses(full, "val_loss")
    assert rest.final_val_loss == full.final_val_loss


def test_checkpoint_round_trip_keeps_the_tied_weights_and_tokenizer(tmp_path):
    tok = CharTokenizer.train("abcdefghijk")
    model = tiny_model()
    train(model, NOISE, cfg(steps=2), checkpoint_dir=tmp_path, tokenizer=tok)
    fresh = tiny_model(seed=1)
    state = load_checkpoint(tmp_path, fresh)
    assert state["step"] == 2 and state["tokenizer"].itos == tok.itos
    assert fresh.lm_head.weight is fresh.wte.weight
    for (n, p), q in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(p, q), n


@pytest.mark.parametrize("damage, message", [
    ("flip", "model.safetensors is corrupt or truncated"),
    ("truncate", "optimizer.safetensors is corrupt or truncated"),
    ("json", "checkpoint.json is corrupt or truncated"),
    ("missing", "checkpoint.json is missing"),
])
def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, damage, message):
    """(With the sha256 recorded; tests/test_checkpoint.py damages files that have none.)"""
    train(tiny_model(), NOISE, cfg(steps=1), checkpoint_dir=tmp_path)
    step_dir = tmp_path / "step-00000001"                   # the only checkpoint: no fallback
    if damage == "flip":
        raw = bytearray((step_dir / "model.safetensors").read_bytes())
        raw[-3] ^= 0xFF
        (step_dir / "model.safetensors").write_bytes(bytes(raw))
    elif damage == "truncate":
        raw = (step_dir / "optimizer.safetensors").read_bytes()
        (step_dir / "optimizer.safetensors").write_bytes(raw[: len(raw) // 2])
    elif damage == "json":
        raw = (step_dir / "checkpoint.json").read_text()
        (step_dir / "checkpoint.json").write_text(raw[: len(raw) // 2])
    else:
        (step_dir / "checkpoint.json").unlink()
    with pytest.raises(CheckpointError, match=message):
        train(tiny_model(), NOISE, cfg(steps=2), resume_from=tmp_path)


def test_a_checkpoint_for_another_model_or_run_is_a_clear_error(tmp_path):
    train(tiny_model(), NOISE, cfg(steps=1), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"different model \(n_embd: checkpoint 16 vs model 32"):
        load_checkpoint(tmp_path, tiny_model(n_embd=32))
    with pytest.raises(CheckpointError, match=r"differs in \['lr'\]"):
        train(tiny_model(), NOISE, cfg(steps=2, lr=5e-3), resume_from=tmp_path)
    more = train(tiny_model(), NOISE, cfg(steps=2), resume_from=tmp_path)   # extending: allowed
    assert more.steps == 2


def test_save_and_load_pretrained_give_the_same_logits(tmp_path):
    tok = CharTokenizer.train("abcdefghijk")
    model = tiny_model().eval()
    save_pretrained(tmp_path, model, tok, results={"note": "x"})
    loaded, tok2, meta = load_pretrained(tmp_path)
    x = NOISE[:16][None]
    assert torch.equal(loaded(x)[0], model(x)[0]) and tok2.itos == tok.itos
    assert meta["results"] == {"note": "x"} and not loaded.training
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_pretrained(tmp_path)


# ---- run configs and the command line -------------------------------------------------------------

@pytest.mark.parametrize("section, key", [(None, "epochs"), ("model", "layers"),
                                          ("train", "learning_rate"), ("data", "split")])
def test_a_run_config_with_an_unknown_key_names_it(section, key):
    config = json.loads((ROOT / "configs" / "smoke.json").read_text())
    (config if section is None else config[section])[key] = 1
    with pytest.raises(ValueError, match=rf"unknown .*\['{key}'\]"):
        load_run_config(config)


def test_every_shipped_config_is_valid():
    for path in sorted((ROOT / "configs").glob("*.json")):
        assert load_run_config(path)["train"].steps >= 1, path


def test_the_command_line_reproduces_the_shipped_models_first_steps(tmp_path):
    n = 3
    command = (SHIPPED / "COMMAND").read_text().split()
    assert command[:4] == ["python", "-m", "gptlib.pretrain", "--config"]
    config = command[4]
    subprocess.run([sys.executable, "-m", "gptlib.pretrain", "--config", config, "--threads", "1",
                    "--stop-after", str(n), "--out", str(tmp_path), "--no-progress"],
                   cwd=ROOT, check=True, capture_output=True)
    ours, shipped = read_log(tmp_path / "train_log.csv"), read_log(SHIPPED / "train_log.csv")[:n]
    assert [r["step"] for r in ours] == [1, 2, 3]
    for key, tol in (("lr", 1e-9), ("train_loss", 2e-4), ("grad_norm", 2e-3)):
        assert [r[key] for r in ours] == pytest.approx([r[key] for r in shipped], rel=tol), key


def test_the_shipped_model_matches_its_config_and_predicts_the_held_out_plays():
    from gptlib.data import encode_text, load_text
    model, tok, meta = load_pretrained(SHIPPED)         # checks the recorded sha256 too
    config = load_run_config(ROOT / (SHIPPED / "COMMAND").read_text().split()[4])
    assert TrainConfig.from_dict(meta["train"]) == config["train"]
    # "fast" picks PyTorch's fused kernels for the same function (tests/test_fast_path.py); the
    # shipped model was trained before it existed, so its config.json has no such key
    assert all(meta["model"][k] == v for k, v in config["model"].items() if k != "fast")
    assert (SHIPPED / "model.safetensors").stat().st_size < 5 * 2**20
    log = read_log(SHIPPED / "train_log.csv")
    assert [r["step"] for r in log] == list(range(1, config["train"].steps + 1))
    assert log[-1]["val_loss"] == pytest.approx(meta["results"]["final_val_loss"], rel=1e-5)
    # the first 20,000 characters of the validation plays, every window of 128 scored
    val = encode_text(load_text("val")[:20_000], tok)
    loss = dataset_loss(model, val, model.config.block_size)
    assert loss < 1.9                                   # a unigram model scores ~3.3, ln 70 = 4.25
    assert loss == pytest.approx(meta["results"]["val_loss_all_windows"], abs=0.15)


def test_a_run_interrupted_and_resumed_from_its_config_logs_what_an_uninterrupted_run_logs(tmp_path):
    from gptlib.runconfig import run
    text = tmp_path / "text.txt"
    text.write_text("".join(chr(97 + i) for i in NOISE.tolist()) * 3)
    smoke = json.loads((ROOT / "configs" / "smoke.json").read_text())
    smoke["data"] = {"source": "text", "path": str(text), "val_fraction": 0.2}
    smoke["model"]["dropout"] = 0.1                      # the global RNG must resume too
    run(smoke, out_dir=tmp_path / "full", progress=False)
    run(smoke, out_dir=tmp_path / "part", stop_after=7, checkpoint_dir=tmp_path / "ckpt",
        progress=False)
    run(smoke, out_dir=tmp_path / "rest", resume_from=tmp_path / "ckpt", progress=False)
    full, rest = (read_log(tmp_path / d / "train_log.csv") for d in ("full", "rest"))
    assert len(read_log(tmp_path / "part" / "train_log.csv")) == 7
    strip = lambda log: [{k: v for k, v in r.items() if k != "time_s"} for r in log]  # noqa: E731
    assert strip(rest) == strip(full)
    assert (tmp_path / "rest" / "model.safetensors").read_bytes() == \
        (tmp_path / "full" / "model.safetensors").read_bytes()
