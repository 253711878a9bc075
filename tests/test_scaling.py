"""Chapter 9 on one process: banded (sparse) attention, activation checkpointing, bf16 autocast,
and the memory / scaling arithmetic of ``gptlib.scaling``."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptlib.masking import attended_pairs, banded_causal_mask, causal_mask
from gptlib.model import GPT, GPTConfig
from gptlib.block import Block
from gptlib.pretrain import TrainConfig, train
from gptlib import scaling

SMALL = dict(vocab_size=13, block_size=24, n_layer=4, n_head=2, n_embd=16)


@settings(max_examples=50, deadline=None)
@given(t=st.integers(1, 40), band=st.integers(1, 40))
def test_banded_mask_is_causal_local_and_dense_while_t_fits_the_band(t, band):
    m = banded_causal_mask(t, band)
    assert not (m & ~causal_mask(t)).any()                       # never a future key
    i, j = torch.meshgrid(torch.arange(t), torch.arange(t), indexing="ij")
    assert torch.equal(m, (j <= i) & (i - j < band))
    assert m.sum(1).tolist() == [min(r + 1, band) for r in range(t)]
    assert int(m.sum()) == attended_pairs(t, band)
    if t <= band:
        assert torch.equal(m, causal_mask(t))
    assert attended_pairs(t) == int(causal_mask(t).sum()) == t * (t + 1) // 2


def test_banded_mask_with_cached_keys_is_the_last_rows_of_the_full_mask():
    full = banded_causal_mask(10, 3)
    assert torch.equal(banded_causal_mask(4, 3, 10), full[6:])
    with pytest.raises(ValueError, match="band must be >= 1"):
        banded_causal_mask(4, 0)


def _pair(band):
    torch.manual_seed(0)
    dense = GPT(GPTConfig(**SMALL))
    sparse = GPT(GPTConfig(**SMALL, attention_layout="alternating", sparse_band=band))
    sparse.load_state_dict(dense.state_dict())
    return dense.eval(), sparse.eval()


def test_alternating_layout_equals_dense_while_t_fits_the_band_and_differs_beyond():
    dense, sparse = _pair(band=8)
    x = torch.randint(0, 13, (2, 24), generator=torch.Generator().manual_seed(1))
    a, b = dense(x[:, :8])[0], sparse(x[:, :8])[0]
    assert torch.allclose(a, b, atol=1e-6)
    a, b = dense(x)[0], sparse(x)[0]
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)         # the first 8 fit the band
    assert (a[:, 8:] - b[:, 8:]).abs().max() > 1e-4               # later ones lose keys


def test_alternating_layout_never_sees_the_future_and_caches_consistently():
    _, sparse = _pair(band=5)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 13, (1, 20), generator=g)
    y = x.clone()
    y[:, 12:] = torch.randint(0, 13, (1, 8), generator=g)
    assert torch.allclose(sparse(x)[0][:, :12], sparse(y)[0][:, :12], atol=1e-6)
    cache = sparse.new_kv_cache()
    steps = [sparse(x[:, :7], kv_cache=cache)[0]]
    steps += [sparse(x[:, t:t + 1], kv_cache=cache)[0] for t in range(7, 20)]
    assert torch.allclose(torch.cat(steps, 1), sparse(x)[0], atol=1e-5)


def test_activation_checkpointing_gives_the_same_gradients_and_saves_less():
    torch.manual_seed(0)
    plain = GPT(GPTConfig(**SMALL))
    ckpt = GPT(GPTConfig(**SMALL, activation_checkpointing=True))
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randint(0, 13, (4, 24), generator=torch.Generator().manual_seed(3))
    for m in (plain, ckpt):
        m.train()
        m(x, x)[1].backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name
    saved = {m: scaling.saved_activation_bytes(lambda: m(x, x)[1], exclude=list(m.parameters()))
             for m in (plain, ckpt)}
    assert saved[ckpt] < 0.5 * saved[plain]


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="attention_layout='banded'"):
        GPTConfig(**SMALL, attention_layout="banded")
    with pytest.raises(ValueError, match="sparse_band must be a positive int"):
        GPTConfig(**SMALL, sparse_band=0)
    with pytest.raises(ValueError, match="activation_checkpointing must be True or False"):
        GPTConfig(**SMALL, activation_checkpointing="yes")
    with pytest.raises(ValueError, match="precision='fp16'"):
        TrainConfig(steps=1, batch_size=1, block_size=4, precision="fp16")


def test_bf16_autocast_training_tracks_fp32():
    g = torch.Generator().manual_seed(4)                            # a learnable stream:
    data = (torch.arange(3000) * 5) % 13                             # a cycle, 10% noise
    noise = torch.rand(3000, generator=g) < 0.1
    data[noise] = torch.randint(0, 13, (int(noise.sum()),), generator=g)
    curves = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = GPT(GPTConfig(**{**SMALL, "n_layer": 2}))
        res = train(model, data, TrainConfig(steps=30, batch_size=8, block_size=24, lr=3e-3,
                                             seed=0, precision=precision))
        curves[precision] = np.array([r["train_loss"] for r in res.history])
        assert model.wte.weight.dtype == torch.float32             # master weights stay fp32
    gap = np.abs(curves["fp32"] - curves["bf16"]).max()
    assert gap < 0.05                                              # nats; measured ~0.01
    assert curves["bf16"][-1] < curves["bf16"][0] - 0.1            # it did learn


def test_memory_arithmetic_gpt3():
    for precision in ("fp32", "mixed"):
        state = scaling.training_state_bytes(175e9, precision)
        assert state["total"] == pytest.approx(2.8e12)              # 16 bytes per parameter
    assert scaling.devices_needed(2.8e12, 80e9) == 35
    assert scaling.training_state_bytes(175e9, shards=35)["total"] == pytest.approx(80e9)
    with pytest.raises(ValueError, match="precision 'fp8' is unknown"):
        scaling.training_state_bytes(1e9, "fp8")


def test_korthikanti_formula_and_a_measured_block():
    s, b, h, a = 64, 4, 64, 4
    total = scaling.activation_bytes(s, b, h, a)["total"]
    assert total == s * b * h * (34 + 5 * a * s / h)                # eq. 1 of the paper
    torch.manual_seed(0)
    block = Block(h, a)                # with torch's fused LayerNorm and GELU, as the paper's
    block.ln_1, block.ln_2, block.mlp.gelu = nn.LayerNorm(h), nn.LayerNorm(h), nn.GELU("tanh")
    x = torch.randn(b, s, h, requires_grad=True)
    measured = scaling.saved_activation_bytes(block, x, exclude=list(block.parameters()))
    expected = scaling.activation_bytes(s, b, h, a, bytes_per_value=4, dropout=False)["total"]
    # the rest: LayerNorm's mean and 1/std (2 x 2 floats per token) and the bool causal mask
    assert measured == expected + 2 * 2 * 4 * s * b + s * s


def test_power_law_fit_recovers_known_parameters():
    n = np.geomspace(1e3, 3e5, 8)
    loss = scaling.power_law(n, 1.2, 5e2, 0.3)
    fit = scaling.fit_power_law(n, loss, l_inf_grid=2000)
    assert fit["alpha"] == pytest.approx(0.3, rel=0.03)
    assert fit["l_inf"] == pytest.approx(1.2, abs=0.02)
    assert fit["rmse"] < 1e-3
    with pytest.raises(ValueError, match="at least 3"):
        scaling.fit_power_law([1, 2], [3, 2])


def test_compute_optimal_gpt3():
    opt = scaling.chinchilla_optimal(scaling.GPT3["train_flops"])
    assert 45e9 < opt["params"] < 55e9 and 0.9e12 < opt["tokens"] < 1.1e12
    assert scaling.GPT3["tokens"] / scaling.GPT3["params"] < 2      # GPT-3: ~1.7 tokens/param
    assert 6 * 175e9 * 300e9 == pytest.approx(3.15e23, rel=0.01)
    days = scaling.training_days(175e9, 300e9, 1024)
    assert math.isclose(days, 6 * 175e9 * 300e9 / (1024 * 312e12 * 0.4) / 86400)


def test_training_compute_is_6nd_and_matches_gpt3():
    c = scaling.training_compute(175e9, 300e9)
    assert c == 6 * 175e9 * 300e9
    assert abs(c / scaling.GPT3["train_flops"] - 1) < 0.005        # Brown et al.: 3.14e23
    with pytest.raises(ValueError, match="tokens must be a positive number"):
        scaling.training_compute(1e9, -1)
