"""Tests for gptlib.gpt2: gptlib's GPT computes exactly what Hugging Face's GPT-2 computes.

No network: every GPT-2 here is built locally from a ``GPT2Config`` with random weights.
"""

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from gptlib.gpt2 import (config_from_hf, from_hf, from_hf_state_dict, from_pretrained,  # noqa: E402
                         load_hf_checkpoint, to_hf, to_hf_state_dict)
from gptlib.model import GPT, GPTConfig  # noqa: E402

CONFIGS = {
    "2x32": dict(n_layer=2, n_head=2, n_embd=32, vocab_size=97, n_positions=64),
    "3x48": dict(n_layer=3, n_head=4, n_embd=48, vocab_size=211, n_positions=40,
                 layer_norm_epsilon=1e-6, activation_function="gelu_pytorch_tanh"),
}


@pytest.fixture(autouse=True)
def quiet_transformers():
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    yield
    transformers.utils.logging.enable_progress_bar()


def hf_gpt2(name: str, seed: int = 0):
    """A small random GPT2LMHeadModel in eval mode, with non-trivial LayerNorm and bias weights."""
    torch.manual_seed(seed)
    kw = CONFIGS[name]
    last = kw["vocab_size"] - 1                        # keep <|endoftext|> inside the vocabulary
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw, bos_token_id=last, eos_token_id=last))
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "ln_" in pname or pname.endswith("bias"):   # HF inits these to 1 / 0: make them matter
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def tokens(model, shape, seed=1):
    return torch.randint(0, model.config.vocab_size, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", CONFIGS)
def test_converted_model_has_the_same_logits_and_hidden_states(name):
    hf = hf_gpt2(name)
    ours = from_hf(hf)
    assert not ours.training
    assert ours.config.n_layer == hf.config.n_layer and ours.config.layer_norm_eps == hf.config.layer_norm_epsilon
    idx = tokens(hf, (3, hf.config.n_positions))
    with torch.no_grad():
        out = hf(idx, output_hidden_states=True)
        logits, _ = ours(idx)
        states = ours.hidden_states(idx)
    torch.testing.assert_close(logits, out.logits, rtol=0, atol=1e-5)
    assert len(out.hidden_states) == len(states) == hf.config.n_layer + 1
    for i in range(hf.config.n_layer):                 # embeddings, then each block's output ...
        torch.testing.assert_close(states[i], out.hidden_states[i], rtol=0, atol=1e-5)
    # ... except that HF's last entry is after the final LayerNorm
    torch.testing.assert_close(ours.ln_f(states[-1]), out.hidden_states[-1], rtol=0, atol=1e-5)
    assert not torch.allclose(states[-1], out.hidden_states[-1], atol=1e-3)


def test_same_loss_as_hf_which_shifts_labels_itself():
    hf = hf_gpt2("2x32")
    ours = from_hf(hf)
    idx = tokens(hf, (2, 20))
    targets = torch.full_like(idx, -100)
    targets[:, :-1] = idx[:, 1:]                       # HF shifts `labels` inside; gptlib takes targets
    with torch.no_grad():
        torch.testing.assert_close(ours(idx, targets)[1], hf(idx, labels=idx).loss, rtol=0, atol=1e-5)


def test_padding_mask_matches_hf_attention_mask():
    hf = hf_gpt2("2x32")
    ours = from_hf(hf)
    idx = tokens(hf, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 6:] = 0                                    # the second sequence is right-padded
    with torch.no_grad():
        theirs = hf(idx, attention_mask=mask).logits
        mine = ours(idx, padding_mask=mask.bool())[0]
    torch.testing.assert_close(mine[0], theirs[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(mine[1, :6], theirs[1, :6], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", CONFIGS)
def test_round_trip_back_to_hf(name):
    hf = hf_gpt2(name)
    ours = from_hf(hf)
    sd, expected = to_hf_state_dict(ours), hf.state_dict()
    assert set(sd) == set(expected)
    for key in expected:
        assert torch.equal(sd[key], expected[key]), key
    back = to_hf(ours)
    assert isinstance(back, transformers.GPT2LMHeadModel) and not back.training
    assert back.lm_head.weight is back.transformer.wte.weight
    idx = tokens(hf, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(back(idx).logits, hf(idx).logits, rtol=0, atol=1e-6)


def test_conv1d_weights_are_transposed():
    hf = hf_gpt2("2x32")
    ours = from_hf(hf)
    block, hf_block = ours.h[1], hf.transformer.h[1]
    assert hf_block.mlp.c_fc.weight.shape == (32, 128) and block.mlp.c_fc.weight.shape == (128, 32)
    assert torch.equal(block.mlp.c_fc.weight, hf_block.mlp.c_fc.weight.T)
    assert torch.equal(block.attn.c_attn.weight, hf_block.attn.c_attn.weight.T)
    assert torch.equal(ours.wpe.weight, hf.transformer.wpe.weight)


def test_to_hf_from_a_gptlib_model():
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()
    hf = to_hf(ours)
    assert hf.config.n_positions == 16 and hf.config.bos_token_id == 49
    idx = torch.randint(0, 50, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(hf(idx).logits, ours(idx)[0], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"differs in \{'pos_encoding': 'rope'\}"):
        to_hf(GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16, pos_encoding="rope")))


@pytest.mark.parametrize("shard", [False, True])
def test_load_from_a_save_pretrained_directory(tmp_path, shard):
    hf = hf_gpt2("3x48", seed=3)
    hf.save_pretrained(tmp_path, max_shard_size="100KB" if shard else "50GB")
    assert (tmp_path / "model.safetensors.index.json").exists() == shard
    assert not list(tmp_path.glob("*.bin"))
    ours = load_hf_checkpoint(tmp_path)
    assert not ours.training
    idx = tokens(hf, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf(idx).logits, rtol=0, atol=1e-5)
    # from_pretrained takes a local directory too: the documented online path, without the network
    with torch.no_grad():
        torch.testing.assert_close(from_pretrained(str(tmp_path))(idx)[0], hf(idx).logits, rtol=0, atol=1e-5)


def test_checkpoint_without_safetensors_is_refused(tmp_path):
    hf = hf_gpt2("2x32")
    hf.config.to_json_file(tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"a pickle")
    with pytest.raises(FileNotFoundError, match="reads only safetensors"):
        load_hf_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_hf_checkpoint(tmp_path / "missing")


def test_a_damaged_hugging_face_directory_names_the_file(tmp_path):
    """A directory with no checksums (as Hugging Face writes it): each kind of damage that can be
    seen without one gets a message naming the file; a flipped mantissa bit cannot be seen."""
    import json

    from safetensors.torch import load_file, save_file
    hf = hf_gpt2("2x32", seed=1)
    hf.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])                       # truncated
    with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors"):
        load_hf_checkpoint(tmp_path)
    weights.write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors"):
        load_hf_checkpoint(tmp_path)
    weights.write_bytes(good)
    sd = load_file(str(weights))
    name = next(k for k in sd if k.endswith("attn.c_attn.weight"))
    sd[name] = sd[name].clone()
    sd[name][0, 0] = float("nan")
    save_file(sd, str(weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"hold NaN or inf in 1 tensor"):
        load_hf_checkpoint(tmp_path)
    weights.write_bytes(good)
    config = tmp_path / "config.json"
    text = config.read_text()
    config.write_text(text[:-5])                                         # cut short
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        load_hf_checkpoint(tmp_path)
    config.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"config\.json holds a JSON list"):
        load_hf_checkpoint(tmp_path)
    config.write_text(text)
    weights.unlink()
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}}))
    with pytest.raises(ValueError, match=r"index\.json has no 'weight_map'"):
        load_hf_checkpoint(tmp_path)


def test_mismatched_config_names_the_field():
    hf = hf_gpt2("2x32")
    sd = hf.state_dict()
    good = config_from_hf(hf.config)
    for field, value, msg in [("n_embd", 64, "n_embd: checkpoint has 32, config says 64"),
                              ("n_layer", 3, "n_layer: checkpoint has 2, config says 3"),
                              ("vocab_size", 100, "vocab_size: checkpoint has 97, config says 100"),
                              ("block_size", 32, "block_size: checkpoint has 64, config says 32")]:
        bad = GPTConfig(**{**good.to_dict(), field: value, "n_head": 2})
        with pytest.raises(ValueError, match=msg):
            from_hf_state_dict(sd, bad)
    with pytest.raises(ValueError, match="differs in {'norm': 'rmsnorm'}"):
        from_hf_state_dict(sd, GPTConfig(**{**good.to_dict(), "norm": "rmsnorm"}))
    with pytest.raises(ValueError, match="differs in {'causal': False}"):
        from_hf_state_dict(sd, GPTConfig(**{**good.to_dict(), "causal": False}))
    untied = dict(sd)
    untied["lm_head.weight"] = sd["lm_head.weight"] + 1
    with pytest.raises(ValueError, match="lm_head.weight differs from wte.weight"):
        from_hf_state_dict(untied, good)
    with pytest.raises(ValueError, match=r"missing \['h.1.mlp.c_fc.bias'\]"):
        from_hf_state_dict({k: v for k, v in sd.items() if k != "transformer.h.1.mlp.c_fc.bias"}, good)


def test_unsupported_gpt2_variants_are_named():
    base = json.loads(transformers.GPT2Config(**CONFIGS["2x32"]).to_json_string())
    assert config_from_hf(base) == config_from_hf(transformers.GPT2Config(**CONFIGS["2x32"]))
    for field, value in [("activation_function", "relu"), ("n_inner", 100),
                         ("scale_attn_by_inverse_layer_idx", True), ("tie_word_embeddings", False),
                         ("scale_attn_weights", False), ("add_cross_attention", True)]:
        with pytest.raises(ValueError, match=f"{field}: checkpoint has {value!r}"):
            config_from_hf({**base, field: value})


def test_differing_dropout_rates_are_refused_naming_the_fields():
    kw = CONFIGS["2x32"]
    same = transformers.GPT2Config(**kw, embd_pdrop=0.2, attn_pdrop=0.2, resid_pdrop=0.2)
    assert config_from_hf(same).dropout == 0.2
    assert config_from_hf({**json.loads(same.to_json_string(use_diff=False)), "model_type": "gpt2"}).dropout == 0.2
    assert config_from_hf(transformers.GPT2Config(**kw)).dropout == 0.1       # GPT-2's default, all three
    for field in ("embd_pdrop", "attn_pdrop", "resid_pdrop"):
        rates = {"embd_pdrop": 0.1, "attn_pdrop": 0.1, "resid_pdrop": 0.1, field: 0.0}
        with pytest.raises(ValueError, match=rf"embd_pdrop, attn_pdrop, resid_pdrop: checkpoint has .*"
                                             rf"'{field}': 0\.0.*one dropout rate"):
            config_from_hf(transformers.GPT2Config(**kw, **rates))
        with pytest.raises(ValueError, match="one dropout rate"):
            config_from_hf({"model_type": "gpt2", "vocab_size": 97, "n_positions": 64, "n_layer": 2,
                            "n_head": 2, "n_embd": 32, **rates})
    # a field the config leaves out is not compared
    partial = {"model_type": "gpt2", "vocab_size": 97, "n_positions": 64, "n_layer": 2, "n_head": 2,
               "n_embd": 32, "resid_pdrop": 0.3}
    assert config_from_hf(partial).dropout == 0.3
    assert config_from_hf({k: v for k, v in partial.items() if k != "resid_pdrop"}).dropout == 0.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_loading_keeps_the_checkpoints_dtype_unless_asked(tmp_path, dtype):
    hf = hf_gpt2("2x32").to(dtype)
    ours = from_hf(hf)
    assert {p.dtype for p in ours.parameters()} == {dtype}
    for key, value in to_hf_state_dict(ours).items():           # bit for bit, no float32 detour
        assert value.dtype == dtype and torch.equal(value, hf.state_dict()[key]), key
    idx = tokens(hf, (2, 16))
    atol = 1e-10 if dtype == torch.float64 else 0.1
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf(idx).logits, rtol=0, atol=atol)
    hf.save_pretrained(tmp_path)
    loaded = load_hf_checkpoint(tmp_path)
    assert loaded.wte.weight.dtype == dtype and torch.equal(loaded.wte.weight, hf.transformer.wte.weight)
    assert from_pretrained(str(tmp_path)).h[0].mlp.c_fc.weight.dtype == dtype
    assert to_hf(ours).transformer.h[1].attn.c_attn.weight.dtype == dtype
    # asked for another dtype: converted, once
    for model in (from_hf(hf, dtype=torch.float32), load_hf_checkpoint(tmp_path, dtype=torch.float32),
                  from_pretrained(str(tmp_path), dtype=torch.float32)):
        assert {p.dtype for p in model.parameters()} == {torch.float32}
        assert torch.equal(model.wte.weight, hf.transformer.wte.weight.float())
    with pytest.raises(TypeError, match="dtype must be a floating-point torch.dtype"):
        from_hf(hf, dtype="float32")
    with pytest.raises(TypeError, match="dtype must be a floating-point torch.dtype"):
        load_hf_checkpoint(tmp_path, dtype=torch.int64)


def test_a_state_dict_of_mixed_dtypes_needs_an_explicit_dtype():
    hf = hf_gpt2("2x32")
    sd = dict(hf.state_dict())
    sd["transformer.wte.weight"] = sd["transformer.wte.weight"].double()
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    with pytest.raises(ValueError, match=r"mixes dtypes \['torch.float32', 'torch.float64'\]; pass dtype="):
        from_hf_state_dict(sd, config_from_hf(hf.config))
    assert from_hf_state_dict(sd, config_from_hf(hf.config), dtype=torch.float64).wte.weight.dtype == torch.float64


def test_special_token_ids_survive_gptlib_hf_gptlib(tmp_path):
    torch.manual_seed(0)
    kw = CONFIGS["2x32"]
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw, bos_token_id=3, eos_token_id=5,
                                                               pad_token_id=7)).eval()
    ours = from_hf(hf)
    assert ours.special_token_ids == {"bos_token_id": 3, "eos_token_id": 5, "pad_token_id": 7}
    back = to_hf(ours)
    assert (back.config.bos_token_id, back.config.eos_token_id, back.config.pad_token_id) == (3, 5, 7)
    back.save_pretrained(tmp_path)
    again = load_hf_checkpoint(tmp_path)
    assert again.special_token_ids == ours.special_token_ids
    assert from_hf(to_hf(again)).special_token_ids == {"bos_token_id": 3, "eos_token_id": 5, "pad_token_id": 7}
    # a gptlib model: GPT-2's convention by default, or the ids given
    fresh = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16))
    assert (to_hf(fresh).config.bos_token_id, to_hf(fresh).config.pad_token_id) == (49, None)
    chosen = to_hf(fresh, special_token_ids={"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2})
    assert (chosen.config.bos_token_id, chosen.config.eos_token_id, chosen.config.pad_token_id) == (0, 1, 2)
    assert from_hf(chosen).special_token_ids == {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2}
    # ids a Hugging Face config held are written back as they were, even outside the vocabulary
    default_ids = transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw))
    assert to_hf(from_hf(default_ids)).config.eos_token_id == default_ids.config.eos_token_id == 50256
    with pytest.raises(ValueError, match=r"pad_token_id 50 is outside the vocabulary \(0..49\)"):
        to_hf(fresh, special_token_ids={"pad_token_id": 50})
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['sep_token_id'\]"):
        to_hf(fresh, special_token_ids={"sep_token_id": 1})
    with pytest.raises(TypeError, match="eos_token_id must be a token id"):
        to_hf(fresh, special_token_ids={"eos_token_id": "1"})


def test_gelu_fast_is_gelu_new_to_1e12_and_exact_gelu_is_refused():
    from transformers.activations import ACT2FN
    x = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    fast_vs_new = (ACT2FN["gelu_fast"](x) - ACT2FN["gelu_new"](x)).abs().max().item()
    exact_vs_new = (ACT2FN["gelu"](x) - ACT2FN["gelu_new"](x)).abs().max().item()
    assert 1e-14 < fast_vs_new < 1e-12          # not the same function, but within 1e-12
    assert 4.6e-4 < exact_vs_new < 4.8e-4       # the figure the error message quotes
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**CONFIGS["2x32"], activation_function="gelu_fast",
                                                              bos_token_id=96, eos_token_id=96)).double().eval()
    ours = from_hf(hf)
    idx = tokens(hf, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf(idx).logits, rtol=0, atol=1e-10)
    assert to_hf(ours).config.activation_function == "gelu_new"
    with pytest.raises(ValueError, match=r"activation_function: checkpoint has 'gelu', the exact \(erf\) "
                                         r"GELU; gptlib's GPT computes GPT-2's tanh approximation"):
        config_from_hf({**CONFIGS["2x32"], "activation_function": "gelu"})
