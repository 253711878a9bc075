"""gptlib.checkpoint: the on-disk layout, the fall-back to the previous checkpoint, and what is
detected in files WITHOUT recorded checksums (exports of older gptlib versions, hand-made files):
each damage reaches the safetensors/JSON/shape checks, and the message names the file. One damage
cannot be detected without a checksum — a flipped mantissa bit — and a test shows that too.
(tests/test_pretrain.py damages files whose sha256 is recorded.)"""

import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file, save_model

from gptlib.checkpoint import (CheckpointError, find_checkpoint, load_checkpoint,
                               load_pretrained, read_safetensors_header, save_pretrained)
from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import TrainConfig, train
from gptlib.tokenizer import CharTokenizer

NOISE = torch.randint(11, (600,), generator=torch.Generator().manual_seed(0))

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def tiny_model(seed=0, **overrides) -> GPT:
    cfg = dict(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=16)
    cfg.update(overrides)
    torch.manual_seed(seed)
    return GPT(GPTConfig(**cfg))


def cfg(**overrides) -> TrainConfig:
    d = dict(steps=4, batch_size=4, block_size=16, lr=1e-2, warmup_steps=1)
    d.update(overrides)
    return TrainConfig(**d)


def export(path, model=None, checksums=False):
    """An export; without checksums like those of older gptlib versions."""
    save_pretrained(path, model if model is not None else tiny_model(), CharTokenizer.train("ab"))
    if not checksums:
        meta = json.loads((path / "config.json").read_text())
        del meta["files"]
        (path / "config.json").write_text(json.dumps(meta))
    return path


def rewrite_tensors(path, change):
    tensors = load_file(path / "model.safetensors")
    change(tensors)
    save_file(tensors, path / "model.safetensors")


# ---- the layout ------------------------------------------------------------------------------

def test_the_layout_on_disk_and_the_files_it_replaces(tmp_path):
    tok = CharTokenizer.train("abcdefghijk")
    train(tiny_model(), NOISE, cfg(checkpoint_every=1), checkpoint_dir=tmp_path, tokenizer=tok)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-00000003",
                                                          "step-00000004"]
    assert (tmp_path / "latest").read_text() == "step-00000004\n"
    assert sorted(p.name for p in (tmp_path / "step-00000004").iterdir()) == \
        ["checkpoint.json", "model.safetensors", "optimizer.safetensors"]
    path, meta = find_checkpoint(tmp_path)
    assert path == tmp_path / "step-00000004" and meta["step"] == 4
    # killed after step 4's directory was renamed into place, before `latest` named it: the
    # complete but uncommitted step 4 is not the checkpoint
    (tmp_path / "latest").write_text("step-00000003\n")
    assert find_checkpoint(tmp_path)[1]["step"] == 3
    (tmp_path / "latest").write_text("step-00000004\n")
    # one step directory loads on its own (the layout of older gptlib versions, too)
    model = tiny_model(seed=3)
    assert load_checkpoint(tmp_path / "step-00000003", model)["step"] == 3
    # the weights file is what safetensors' own save_model writes (the tied matrix once)
    reference = tmp_path / "ref.safetensors"
    save_model(model, str(reference))
    ours = load_file(tmp_path / "step-00000003" / "model.safetensors")
    assert sorted(ours) == sorted(load_file(reference))
    assert all(torch.equal(ours[k], v) for k, v in load_file(reference).items())


def test_a_damaged_latest_falls_back_to_the_previous_checkpoint(tmp_path):
    train(tiny_model(), NOISE, cfg(checkpoint_every=2), checkpoint_dir=tmp_path)
    (tmp_path / "step-00000004" / "optimizer.safetensors").write_bytes(b"\0" * 10)
    model = tiny_model(seed=1)
    with pytest.warns(UserWarning, match=r"step-00000004/optimizer\.safetensors is corrupt .*"
                                         r"falling back to the checkpoint at .*step-00000002"):
        state = load_checkpoint(tmp_path, model)
    assert state["step"] == 2 and state["path"] == tmp_path / "step-00000002"
    (tmp_path / "step-00000002" / "checkpoint.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"no usable checkpoint at .*: .*step-00000004.*"
                                              r"corrupt.*step-00000002/checkpoint\.json is "
                                              r"corrupt or truncated"):
        load_checkpoint(tmp_path, model)
    (tmp_path / "latest").write_text("step-00000009\n")
    with pytest.raises(CheckpointError, match="latest names step-00000009, which is missing"):
        load_checkpoint(tmp_path, model)


def test_a_failed_load_leaves_the_model_and_optimizer_as_they_were(tmp_path):
    train(tiny_model(), NOISE, cfg(), checkpoint_dir=tmp_path)
    step = tmp_path / "step-00000004"
    meta = json.loads((step / "checkpoint.json").read_text())
    del meta["files"]                                   # no checksums: the file checks decide
    (step / "checkpoint.json").write_text(json.dumps(meta))
    rewrite_tensors(step, lambda t: t.__setitem__("ln_f.bias", torch.full((16,), float("nan"))))
    model = tiny_model(seed=5)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(CheckpointError, match=r"model\.safetensors holds non-finite values "
                                              r"\(NaN or inf\) in ln_f\.bias \(16 values\)"):
        load_checkpoint(step, model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ---- exports without checksums: every check reached, every message names the file -----------

def truncate(p):
    raw = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(raw[: len(raw) - 100])


def zero_header_length(p):
    raw = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(b"\0" * 8 + raw[8:])


def bad_header(p):
    raw = bytearray((p / "model.safetensors").read_bytes())
    raw[8] = ord("[")                                   # the header's JSON starts with "{"
    (p / "model.safetensors").write_bytes(bytes(raw))


def bad_entry(p):
    raw = (p / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = raw[8:8 + n].replace(b'"F32"', b'"F99"', 1)
    (p / "model.safetensors").write_bytes(raw[:8] + header + raw[8 + n:])


@pytest.mark.parametrize("damage, message", [
    (truncate, r"model\.safetensors is truncated: tensor '.*' needs bytes up to \d+"),
    (zero_header_length, r"model\.safetensors is not a safetensors file or is truncated"),
    (bad_header, r"model\.safetensors is not a safetensors file \(its header is not a JSON"),
    (bad_entry, r"model\.safetensors is not a valid safetensors file: the header entry of"),
    (lambda p: (p / "model.safetensors").write_bytes(b"abc"),
     r"model\.safetensors is not a safetensors file or is truncated: it has only 3 bytes"),
    (lambda p: (p / "model.safetensors").unlink(), r"model\.safetensors is missing"),
    (lambda p: rewrite_tensors(p, lambda t: t.pop("ln_f.bias")),
     r"do not fit the model .*config\.json describes: missing tensors \['ln_f\.bias'\]"),
    (lambda p: rewrite_tensors(p, lambda t: t.__setitem__("extra", torch.zeros(2))),
     r"unexpected tensors \['extra'\]"),
    (lambda p: rewrite_tensors(p, lambda t: t.__setitem__("ln_f.bias", torch.zeros(16, 2))),
     r"ln_f\.bias is \(16, 2\) in the file but \(16,\) for the model"),
    (lambda p: rewrite_tensors(p, lambda t: t.__setitem__("ln_f.bias",
                                                          torch.zeros(16, dtype=torch.int64))),
     r"holds non-floating-point weights \['ln_f\.bias'\] \(torch\.int64\)"),
    (lambda p: rewrite_tensors(p, lambda t: t["h.0.mlp.c_fc.weight"].__setitem__(
        (0, 0), float("inf"))),
     r"non-finite values \(NaN or inf\) in h\.0\.mlp\.c_fc\.weight \(1 values\)"),
    (lambda p: (p / "config.json").write_text('{"model": '), r"config\.json is corrupt or trunc"),
    (lambda p: (p / "config.json").write_text('[1, 2]'),
     r"config\.json is not a exported model's JSON \(it holds a list"),
    (lambda p: (p / "config.json").write_text('{"model_type": "gpt2", "n_embd": 16}'),
     r"config\.json has no 'model' section; it is a Hugging Face config: load it with "
     r"gptlib\.gpt2\.load_hf_checkpoint"),
    (lambda p: (p / "config.json").write_text('{"model": {"n_embd": 16, "n_head": 3}}'),
     r"the 'model' section of .*config\.json is not a valid GPTConfig"),
])
def test_a_damaged_export_without_checksums_is_a_clear_error(tmp_path, damage, message):
    path = export(tmp_path)
    damage(path)
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(path)


@pytest.mark.parametrize("checksums", [True, False])
def test_a_config_from_another_model_size_is_a_shape_mismatch_not_corruption(tmp_path, checksums):
    small, large = export(tmp_path / "small", checksums=checksums), \
        export(tmp_path / "large", tiny_model(n_embd=32), checksums=checksums)
    (large / "config.json").write_bytes((small / "config.json").read_bytes())
    with pytest.raises(CheckpointError) as err:
        load_pretrained(large)
    message = str(err.value)
    assert "corrupt" not in message and "from another model" in message
    assert "lm_head.weight is (11, 32) in the file but (11, 16) for the model" in message
    assert "... and 12 more shapes differ" in message          # 16 tensors in all


def test_a_flipped_mantissa_bit_is_caught_by_the_checksum_and_only_by_it(tmp_path):
    """The documented limit: a file without a checksum whose damage leaves every value finite
    and every shape right loads, with one weight slightly changed."""
    for checksums in (True, False):
        path = export(tmp_path / str(checksums), checksums=checksums)
        header_len = struct.unpack("<Q", (path / "model.safetensors").read_bytes()[:8])[0]
        raw = bytearray((path / "model.safetensors").read_bytes())
        raw[8 + header_len + 4] ^= 0x01              # the lowest mantissa bit of one float32
        (path / "model.safetensors").write_bytes(bytes(raw))
        if checksums:
            with pytest.raises(CheckpointError, match="sha256 does not match"):
                load_pretrained(path)
        else:
            model, _, _ = load_pretrained(path)
            original = tiny_model()
            diffs = [(a - b).abs().max().item() for a, b in
                     zip(model.state_dict().values(), original.state_dict().values())]
            assert sum(d > 0 for d in diffs) == 1 and 0 < max(diffs) < 1e-6


def test_an_export_keeps_its_dtype_and_a_checkpoint_refuses_another(tmp_path):
    double = tiny_model().double()
    export(tmp_path / "f64", double)
    model, _, _ = load_pretrained(tmp_path / "f64")
    assert model.wte.weight.dtype == torch.float64
    assert torch.equal(model.wte.weight, double.wte.weight)
    assert read_safetensors_header(tmp_path / "f64" / "model.safetensors")["ln_f.bias"] == \
        (torch.float64, (16,))
    train(tiny_model(), NOISE, cfg(steps=1), checkpoint_dir=tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match=r"holds weights of another dtype than the model's: "
                                              r".* is torch\.float32 in the file but "
                                              r"torch\.float64 in the model"):
        load_checkpoint(tmp_path / "ckpt", tiny_model().double())


def test_a_checkpoint_without_checksums_still_checks_its_files(tmp_path):
    train(tiny_model(), NOISE, cfg(steps=1), checkpoint_dir=tmp_path)
    step = tmp_path / "step-00000001"
    meta = json.loads((step / "checkpoint.json").read_text())
    del meta["files"]
    (step / "checkpoint.json").write_text(json.dumps(meta))
    assert load_checkpoint(tmp_path, tiny_model())["step"] == 1
    raw = (step / "optimizer.safetensors").read_bytes()
    (step / "optimizer.safetensors").write_bytes(raw[:-8])
    with pytest.raises(CheckpointError, match=r"optimizer\.safetensors is truncated"):
        load_checkpoint(tmp_path, tiny_model())
    del meta["history"]
    (step / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"checkpoint\.json is incomplete: it has no "
                                              r"\['history'\]"):
        load_checkpoint(tmp_path, tiny_model())
