"""Tests for gptlib.model: the assembled GPT, its counting helpers, and its input checks."""

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from gptlib.model import GPT, PARAMETER_GROUPS, GPTConfig, count_gpt_flops_per_token, \
    count_gpt_parameters, training_flops
from gptlib.positional import POS_ENCODINGS

SETTINGS = settings(max_examples=25, deadline=None)
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GPT2_SMALL = 124_439_808


def tiny(**overrides) -> GPTConfig:
    cfg = dict(vocab_size=97, block_size=32, n_layer=2, n_head=4, n_embd=32)
    cfg.update(overrides)
    return GPTConfig(**cfg)


def model(seed=0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(tiny(**overrides)).eval()


@pytest.mark.parametrize("pos_encoding", ["learned", "rope", "none"])
def test_loss_at_init_is_about_ln_vocab(pos_encoding):
    m = model(pos_encoding=pos_encoding, vocab_size=211, n_embd=48)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 211, (8, 32), generator=g)
    targets = torch.randint(0, 211, (8, 32), generator=g)   # unrelated to the inputs
    _, loss = m(idx, targets)
    assert abs(loss.item() - math.log(211)) < 0.1           # near-uniform predictions at init


def test_forward_shapes_loss_and_ignore_index():
    m = model()
    torch.manual_seed(1)
    idx, targets = torch.randint(0, 97, (3, 10)), torch.randint(0, 97, (3, 10))
    logits, loss = m(idx, targets)
    assert logits.shape == (3, 10, 97)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 97), targets.reshape(-1))
    torch.testing.assert_close(loss, expected)
    assert m(idx)[1] is None
    ignored = targets.clone()
    ignored[:, :5] = -100                                    # only the last 5 positions count
    expected = torch.nn.functional.cross_entropy(logits[:, 5:].reshape(-1, 97), targets[:, 5:].reshape(-1))
    torch.testing.assert_close(m(idx, ignored)[1], expected)


def test_gpt2_names_tying_and_init():
    torch.manual_seed(0)
    m = GPT(tiny(n_layer=8, n_embd=128, vocab_size=4096, block_size=64))
    assert m.lm_head.weight is m.wte.weight
    assert m.wpe is m.pos.wpe and m.wpe.weight.shape == (64, 128)
    assert {"wte", "pos", "drop", "h", "ln_f", "lm_head"} <= {n for n, _ in m.named_children()}
    assert m.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert m.h[0].attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.05)
    for proj in (m.h[3].attn.c_proj, m.h[3].mlp.c_proj):     # residual projections: 0.02/sqrt(2L)
        assert proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
        assert torch.count_nonzero(proj.bias) == 0
    assert torch.equal(m.h[0].ln_1.weight, torch.ones(128))
    assert torch.count_nonzero(m.h[0].ln_1.bias) == 0


@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
@pytest.mark.parametrize("bias,norm", [(True, "layernorm"), (False, "layernorm"), (True, "rmsnorm")])
def test_num_parameters_equals_closed_form(pos_encoding, bias, norm):
    m = GPT(tiny(pos_encoding=pos_encoding, bias=bias, norm=norm, n_layer=3))
    expected = count_gpt_parameters(97, 32, 3, 32, bias=bias, pos_encoding=pos_encoding, norm=norm)
    assert m.num_parameters() == expected
    by_hand = sum(p.numel() for p in m.parameters())         # parameters() counts the tied matrix once
    assert m.num_parameters() == by_hand
    table = 32 * 32 if pos_encoding in ("learned", "onehot") else 0
    assert m.num_parameters(non_embedding=True) == expected - table
    assert m.num_parameters(non_embedding=True) == count_gpt_parameters(
        97, 32, 3, 32, bias=bias, pos_encoding=pos_encoding, norm=norm, non_embedding=True)


def _groups_by_name(m) -> dict:
    """The model's own parameters sorted into groups by name (independent of the closed form)."""
    groups = {}
    for name, p in m.named_parameters():                     # the tied lm_head appears once, as wte
        part = name.split(".")
        group = ("embeddings" if part[0] in ("wte", "pos") else "lm_head" if part[0] == "lm_head"
                 else "norms" if part[-2].startswith("ln_") else
                 {"attn": "attention", "mlp": "MLP"}[part[2]])
        groups[group] = groups.get(group, 0) + p.numel()
    return groups


@pytest.mark.parametrize("overrides", [
    {}, {"bias": False}, {"tie_weights": False}, {"mlp": False}, {"norm": "none"},
    {"norm": "rmsnorm", "pos_encoding": "rope"}, {"pos_encoding": "onehot", "tie_weights": False},
    {"mlp": False, "bias": False, "norm": "rmsnorm"}])
def test_closed_form_by_group_equals_the_models_own_parameters(overrides):
    m = GPT(tiny(n_layer=3, **overrides))
    c = m.config
    got = count_gpt_parameters(c.vocab_size, c.block_size, c.n_layer, c.n_embd, c.bias,
                               c.tie_weights, pos_encoding=c.pos_encoding, norm=c.norm,
                               mlp=c.mlp, by_group=True)
    assert tuple(got)[:4] == PARAMETER_GROUPS
    assert ("lm_head" in got) == (not c.tie_weights)
    by_name = _groups_by_name(m)
    assert {k: v for k, v in got.items() if v} == by_name    # zero groups: no such parameters
    assert sum(got.values()) == sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("bad,error,match", [
    (dict(vocab_size=0), ValueError, "vocab_size must be >= 1"),
    (dict(n_layer=2.0), TypeError, "n_layer must be an int"),
    (dict(tied="no"), TypeError, "tied must be True or False"),
    (dict(pos_encoding="absolute"), ValueError, "pos_encoding='absolute' is unknown"),
    (dict(norm="batchnorm"), ValueError, "norm='batchnorm' is unknown")])
def test_closed_forms_reject_bad_arguments(bad, error, match):
    args = dict(vocab_size=97, block_size=32, n_layer=2, n_embd=32)
    args.update(bad)
    with pytest.raises(error, match=match):
        count_gpt_parameters(**args)
    with pytest.raises(error, match=match):
        count_gpt_flops_per_token(**args)
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        count_gpt_flops_per_token(97, 32, 2, 32, seq_len=0)


def test_gpt2_small_has_124m_parameters_like_huggingface():
    transformers = pytest.importorskip("transformers")
    assert count_gpt_parameters(50257, 1024, 12, 768) == GPT2_SMALL
    assert count_gpt_parameters(50257, 1024, 12, 768, tied=False) == GPT2_SMALL + 50257 * 768
    with torch.device("meta"):                               # shapes only, no memory
        ours = GPT(GPTConfig())
        theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    assert ours.num_parameters() == GPT2_SMALL
    assert sum(p.numel() for p in theirs.parameters()) == GPT2_SMALL


def test_gpt3_175b_and_its_training_compute():
    n = count_gpt_parameters(vocab_size=50257, block_size=2048, n_layer=96, n_embd=12288)
    assert abs(n - 175e9) / 175e9 < 0.01                     # 174.6B: "175B" (Brown et al. 2020)
    assert 12 * 96 * 12288 ** 2 / n > 0.99                   # nearly all of it is 12 L C^2
    flops = training_flops(n, 300e9)
    assert abs(flops - 3.14e23) / 3.14e23 < 0.01             # Brown et al. 2020, table D.1


@pytest.mark.parametrize("overrides", [
    {}, {"tie_weights": False}, {"bias": False}, {"mlp": False}, {"norm": "rmsnorm"},
    {"pos_encoding": "rope"}])
@pytest.mark.parametrize("seq_len", [16, 9])
def test_flops_per_token_matches_counted_flops(overrides, seq_len):
    """The closed form against PyTorch's FLOP counter on a real forward and backward pass.

    (The written-out attention: on the CPU the counter does not see inside the fused kernel that
    ``fast=True`` runs; on the meta device, below, it does, as batched matmuls.)"""
    torch.manual_seed(0)
    m = GPT(tiny(n_embd=64, block_size=16, **overrides))
    c = m.config
    idx = torch.randint(0, 97, (2, seq_len))
    with FlopCounterMode(display=False) as counter:
        m(idx, idx)[1].backward()
    counted = counter.get_total_flops() / idx.numel()
    closed = count_gpt_flops_per_token(c.vocab_size, c.block_size, c.n_layer, c.n_embd, seq_len,
                                       c.bias, c.tie_weights, pos_encoding=c.pos_encoding,
                                       norm=c.norm, mlp=c.mlp)
    assert m.flops_per_token(seq_len) == closed
    # the counter sees only matmuls: the weight matrices (6 FLOPs per weight per token) and the
    # two attention matmuls (12 L T C); the closed form also charges 6 per bias and norm gain
    vectors = sum(p.numel() for p in m.parameters() if p.ndim == 1)
    assert closed - counted == 6 * vectors
    assert 0 <= closed / counted - 1 < 0.03
    assert m.flops_per_token(8) - m.flops_per_token(4) == 12 * 2 * 4 * 64


def test_flops_of_gpt3_on_the_meta_device():
    """GPT-3's shape (shapes only: the fused path, whose attention reads no mask values)."""
    with torch.device("meta"):
        m = GPT(GPTConfig(vocab_size=50257, block_size=2048, n_layer=96, n_head=96,
                          n_embd=12288, fast=True))
    idx = torch.zeros(1, 2048, dtype=torch.long)                # on the CPU: ids are checked
    with FlopCounterMode(display=False) as counter:
        m(idx)[0].sum().backward()
    ops = {str(k): v / 2048 for k, v in counter.get_flop_counts()["Global"].items()}
    vectors = sum(p.numel() for p in m.parameters() if p.ndim == 1)
    assert m.flops_per_token() - sum(ops.values()) == 6 * vectors
    assert 0.02 < ops["aten.bmm"] / (ops["aten.mm"] + ops["aten.addmm"]) < 0.03  # attention


def _perturbed(idx, pos, g):
    out = idx.clone()
    out[:, pos + 1:] = torch.randint(0, 97, out[:, pos + 1:].shape, generator=g)
    return out


@SETTINGS
@given(pos_encoding=st.sampled_from(POS_ENCODINGS), norm_position=st.sampled_from(["pre", "post"]),
       fused=st.booleans(), t=st.integers(2, 20), data=st.data(), seed=st.integers(0, 2**16))
def test_gpt_is_causal_for_every_positional_encoding(pos_encoding, norm_position, fused, t, data, seed):
    m = model(seed % 4, pos_encoding=pos_encoding, norm_position=norm_position, fused_attention=fused)
    g = torch.Generator().manual_seed(seed)
    pos = data.draw(st.integers(0, t - 2))
    idx = torch.randint(0, 97, (2, t), generator=g)
    idx2 = _perturbed(idx, pos, g)
    idx2[:, -1] = (idx[:, -1] + 1) % 97                      # at least one token differs
    logits, logits2 = m(idx)[0], m(idx2)[0]
    torch.testing.assert_close(logits[:, :pos + 1], logits2[:, :pos + 1], rtol=0, atol=1e-5)
    assert not torch.allclose(logits[:, -1], logits2[:, -1], atol=1e-5)


def test_without_the_causal_mask_earlier_logits_see_later_tokens():
    """causal=False (chapter 3's demonstration) really removes the mask; the default keeps it."""
    assert GPTConfig().causal is True
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 97, (2, 10), generator=g)
    idx2 = _perturbed(idx, 4, g)
    idx2[:, -1] = (idx[:, -1] + 1) % 97
    for causal in (True, False):
        m = model(0, causal=causal)
        moved = not torch.allclose(m(idx)[0][:, :5], m(idx2)[0][:, :5], atol=1e-5)
        assert moved is (not causal)


def test_causal_must_be_a_bool():
    with pytest.raises(ValueError, match="causal must be True or False"):
        GPTConfig(causal="no")


@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
def test_kv_cache_gives_the_full_forward_logits(pos_encoding):
    m = model(pos_encoding=pos_encoding)
    idx = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(1))
    full = m(idx)[0]
    cache = m.new_kv_cache()
    one_at_a_time = torch.cat([m(idx[:, i:i + 1], kv_cache=cache)[0] for i in range(12)], dim=1)
    torch.testing.assert_close(one_at_a_time, full, rtol=0, atol=1e-5)
    assert [c.length for c in cache] == [12, 12]
    cache = m.new_kv_cache()                                 # a prompt, then chunks
    chunks = [m(idx[:, :5], kv_cache=cache)[0], m(idx[:, 5:6], kv_cache=cache)[0],
              m(idx[:, 6:], kv_cache=cache)[0]]
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=0, atol=1e-5)


def test_hidden_states_are_the_residual_stream():
    """Compared with an independent implementation: Hugging Face's GPT-2 with the same weights
    (its last hidden state has ln_f applied, ours is before ln_f)."""
    transformers = pytest.importorskip("transformers")
    from gptlib.gpt2 import to_hf
    transformers.logging.set_verbosity_error()
    m = model()
    with torch.no_grad():
        for name, p in m.named_parameters():       # make norms and biases matter
            if "ln" in name or name.endswith("bias"):
                p.normal_(std=0.3)
    hf = to_hf(m).eval()
    idx = torch.randint(0, 97, (2, 7))
    with torch.no_grad():
        states = m.hidden_states(idx)
        theirs = hf(idx, output_hidden_states=True).hidden_states
        logits = m(idx)[0]
    assert len(states) == len(theirs) == 3
    for ours, ref in zip(states[:-1], theirs[:-1]):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.ln_f(states[-1]), theirs[-1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.lm_head(m.ln_f(states[-1])), logits)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.json")))
def test_every_shipped_config_builds_its_model_and_runs_a_forward(name):
    """Each run config in configs/ makes the model the CLI makes (its tokenizer's vocabulary, the
    training block size); one real batch through it gives a loss near ln(V), as at init."""
    from gptlib.data import get_batch
    from gptlib.runconfig import load_run_config, prepare_data
    assert len(list(CONFIGS.glob("*.json"))) >= 2          # the glob found the shipped configs
    cfg = load_run_config(CONFIGS / name)
    if cfg["data"]["source"] == "text" and not Path(cfg["data"]["path"]).is_file():
        pytest.skip(f"{name} trains on {cfg['data']['path']}, which is not in the repository "
                    f"(the speed benchmark's tiny-shakespeare, beside a checkout as ../shared)")
    tok, train_ids, _ = prepare_data(cfg["data"])
    torch.manual_seed(0)
    m = GPT(GPTConfig.from_dict({"block_size": cfg["train"].block_size, "vocab_size": tok.vocab_size,
                                 **cfg["model"]})).eval()
    assert m.num_parameters() == count_gpt_parameters(
        tok.vocab_size, cfg["train"].block_size, m.config.n_layer, m.config.n_embd,
        m.config.bias, pos_encoding=m.config.pos_encoding, norm=m.config.norm,
        mlp=m.config.mlp)
    g = torch.Generator().manual_seed(0)
    if isinstance(train_ids, torch.Tensor):
        x, y = get_batch(train_ids, 2, cfg["train"].block_size, g)
    else:                                        # a synthetic source (chapter 10) draws sequences
        b = train_ids.sample(2, cfg["train"].block_size, g)
        x, y = b.x, b.y
    with torch.no_grad():
        logits, loss = m(x, y)
    assert logits.shape == (2, cfg["train"].block_size, tok.vocab_size)
    assert abs(loss.item() - math.log(tok.vocab_size)) < 0.5


@pytest.mark.parametrize("pos_encoding", ["learned", "alibi"])
def test_padding_mask_keeps_real_positions_as_if_alone(pos_encoding):
    m = model(pos_encoding=pos_encoding)
    a, b = torch.randint(0, 97, (1, 9)), torch.randint(0, 97, (1, 5))
    batch = torch.cat([a, torch.cat([b, torch.zeros(1, 4, dtype=torch.long)], 1)])   # right padding
    pad = torch.tensor([[True] * 9, [True] * 5 + [False] * 4])
    logits = m(batch, padding_mask=pad)[0]
    torch.testing.assert_close(logits[0], m(a)[0][0], rtol=0, atol=1e-5)
    torch.testing.assert_close(logits[1, :5], m(b)[0][0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "rope", "alibi", "none"])
def test_encodings_without_a_table_read_past_block_size(pos_encoding):
    m = model(pos_encoding=pos_encoding, block_size=8)
    idx = torch.randint(0, 97, (1, 20))
    logits = m(idx)[0]
    assert logits.shape == (1, 20, 97) and torch.isfinite(logits).all()


def test_crop_block_size():
    m = model(block_size=32)
    idx = torch.randint(0, 97, (1, 10))
    before = m(idx)[0]
    m.crop_block_size(10)
    assert m.config.block_size == 10 and m.wpe.weight.shape == (10, 32)
    torch.testing.assert_close(m(idx)[0], before)
    with pytest.raises(ValueError, match="sequence length 11 exceeds the model's context of 10"):
        m(torch.randint(0, 97, (1, 11)))
    with pytest.raises(ValueError, match="block_size must be in 1..10"):
        m.crop_block_size(20)


@pytest.mark.parametrize("pos_encoding", ["learned", "onehot"])
def test_bad_inputs_raise_clear_errors(pos_encoding):
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=50257, block_size=256, n_layer=1, n_head=2, n_embd=16,
                      pos_encoding=pos_encoding))
    ok = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="token id 70000 is outside the vocabulary of size 50257"):
        m(torch.tensor([[1, 70000]]))
    with pytest.raises(ValueError, match="token id -1 is outside"):
        m(torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match="sequence length 300 exceeds the model's context of 256; crop"):
        m(torch.zeros(1, 300, dtype=torch.long))
    cache = m.new_kv_cache()
    m(torch.zeros(1, 250, dtype=torch.long), kv_cache=cache)
    with pytest.raises(ValueError, match=r"sequence length 260 \(250 cached \+ 10 new\) exceeds"):
        m(torch.zeros(1, 10, dtype=torch.long), kv_cache=cache)
    with pytest.raises(TypeError, match="integer token ids.*torch.float32"):
        m(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"shape \(B, T\).*got \(4,\); for a single sequence use idx\[None\]"):
        m(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        m(torch.zeros(1, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="list of 1 KVCache"):
        m(ok, kv_cache=[])
    with pytest.raises(ValueError, match=r"targets must be an integer tensor of idx's shape \(1, 4\)"):
        m(ok, torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="target id 50257 is outside the vocabulary"):
        m(ok, torch.full((1, 4), 50257))
    with pytest.raises(ValueError, match=r"padding_mask must be a bool tensor of shape \(B, T_k\) = \(1, 4\)"):
        m(ok, padding_mask=torch.ones(1, 5, dtype=torch.bool))


def test_config_validation_and_round_trip():
    cfg = tiny(pos_encoding="alibi", dropout=0.1, norm="rmsnorm")
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown GPTConfig field\(s\) \['n_heads'\]"):
        GPTConfig.from_dict({**cfg.to_dict(), "n_heads": 4})
    with pytest.raises(ValueError, match="n_embd=30 is not divisible by n_head=4"):
        tiny(n_embd=30)
    with pytest.raises(ValueError, match=r"pos_encoding='xpos' is unknown; choose one of \('none', 'onehot'"):
        tiny(pos_encoding="xpos")
    with pytest.raises(ValueError, match="norm_position='middle' is unknown"):
        tiny(norm_position="middle")
    with pytest.raises(ValueError, match="vocab_size must be a positive int, got 0"):
        tiny(vocab_size=0)
    with pytest.raises(ValueError, match="dropout must be in"):
        tiny(dropout=1.5)
    with pytest.raises(ValueError, match="rope needs an even head size"):
        tiny(pos_encoding="rope", n_embd=36, n_head=4)
    with pytest.raises(TypeError, match="GPT needs a GPTConfig"):
        GPT(cfg.to_dict())


def test_dropout_is_active_only_in_training():
    torch.manual_seed(0)
    m = GPT(tiny(dropout=0.2))
    idx = torch.randint(0, 97, (2, 8))
    assert not torch.allclose(m(idx)[0], m(idx)[0])          # train mode: two different masks
    m.eval()
    torch.testing.assert_close(m(idx)[0], m(idx)[0], rtol=0, atol=0)


def test_gradients_reach_every_parameter():
    m = model()
    torch.manual_seed(1)
    m(torch.randint(0, 97, (2, 8)), torch.randint(0, 97, (2, 8)))[1].backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
