"""The fast path (``GPTConfig(fast=True)``: PyTorch's fused kernels) computes the same function as
the teaching path (every operation written out): forward, gradients and optimiser steps.

Tolerance: the two paths round differently (fused kernels accumulate in another order), so they
agree to float64 rounding, checked in float64 with ``rtol=1e-9, atol=1e-10`` for the forward pass
and gradients and after 3 AdamW steps; in float32 the forward agrees to ``atol=1e-5``.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from gptlib.model import GPT, GPTConfig
from gptlib.block import GELU
from gptlib.normalization import LayerNorm, RMSNorm
from gptlib.positional import POS_ENCODINGS
from gptlib.pretrain import MuonAdamW, TrainConfig, make_optimizer

F64 = dict(rtol=1e-9, atol=1e-10)
OPTIONS = list(itertools.product(POS_ENCODINGS, ("layernorm", "rmsnorm"), ("pre", "post"),
                                 (True, False)))


def pair(dtype=torch.float64, **kw):
    """The same weights on both paths."""
    cfg = dict(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=16, **kw)
    torch.manual_seed(0)
    teach = GPT(GPTConfig(**cfg)).to(dtype)
    fast = GPT(GPTConfig(**cfg, fast=True)).to(dtype)
    fast.load_state_dict(teach.state_dict())
    return teach, fast


@pytest.mark.parametrize("pos_encoding,norm,norm_position,bias", OPTIONS)
def test_forward_and_gradients_equal(pos_encoding, norm, norm_position, bias):
    teach, fast = pair(pos_encoding=pos_encoding, norm=norm, norm_position=norm_position,
                       bias=bias)
    x = torch.randint(11, (3, 12), generator=torch.Generator().manual_seed(1))
    y = torch.randint(11, (3, 12), generator=torch.Generator().manual_seed(2))
    (lt, lossT), (lf, lossF) = teach(x, y), fast(x, y)
    torch.testing.assert_close(lf, lt, **F64)
    lossT.backward()
    lossF.backward()
    for (name, pt), pf in zip(teach.named_parameters(), fast.parameters()):
        torch.testing.assert_close(pf.grad, pt.grad, **F64, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("pos_encoding,norm", list(itertools.product(POS_ENCODINGS,
                                                                      ("layernorm", "rmsnorm"))))
def test_optimiser_steps_equal(pos_encoding, norm):
    """3 training steps on each path (fused AdamW on the fast one, the default AdamW on the
    teaching one) leave the same weights."""
    teach, fast = pair(pos_encoding=pos_encoding, norm=norm)
    cfg = TrainConfig(steps=3, batch_size=3, block_size=12, lr=1e-2)
    opt_t, opt_f = make_optimizer(teach, cfg), make_optimizer(fast, cfg)
    assert opt_f.defaults["fused"] and not opt_t.defaults["fused"]
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        x, y = (torch.randint(11, (3, 12), generator=gen) for _ in range(2))
        for model, opt in ((teach, opt_t), (fast, opt_f)):
            model(x, y)[1].backward()
            opt.step()
            opt.zero_grad()
    moved = False
    for (name, pt), pf in zip(teach.named_parameters(), fast.parameters()):
        torch.testing.assert_close(pf, pt, **F64, msg=lambda m: f"{name}: {m}")
    for pt, p0 in zip(teach.parameters(), pair(pos_encoding=pos_encoding, norm=norm)[0].parameters()):
        moved |= not torch.equal(pt, p0)
    assert moved                                    # the steps did something


def test_float32_forward_close():
    teach, fast = pair(torch.float32)
    x = torch.randint(11, (2, 12), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fast(x)[0], teach(x)[0], rtol=0, atol=1e-5)


def test_fast_path_uses_the_fused_kernels(monkeypatch):
    """Not just equal: the fast path really calls F.layer_norm, F.gelu and the fused attention
    with is_causal (no mask tensor), and the teaching path calls none of them."""
    import gptlib.attention as attn_mod
    import gptlib.block as block_mod
    import gptlib.normalization as norm_mod
    calls = []
    for mod, fn in ((norm_mod.F, "layer_norm"), (block_mod.F, "gelu"),
                    (attn_mod.F, "scaled_dot_product_attention")):
        real = getattr(mod, fn)

        def spy(*a, _real=real, _fn=fn, **k):
            calls.append((_fn, k.get("is_causal"), k.get("attn_mask") is None))
            return _real(*a, **k)
        monkeypatch.setattr(mod, fn, spy)
    teach, fast = pair(torch.float32)
    x = torch.randint(11, (2, 12))
    teach(x)
    assert calls == []
    fast(x)
    assert ("scaled_dot_product_attention", True, True) in calls
    assert {c[0] for c in calls} == {"layer_norm", "gelu", "scaled_dot_product_attention"}


def test_modules_fast_equal_teaching():
    x = torch.randn(4, 7, 16, dtype=torch.float64)
    torch.manual_seed(0)
    for slow, quick in ((LayerNorm(16), LayerNorm(16, fast=True)),
                        (LayerNorm(16, bias=False), LayerNorm(16, bias=False, fast=True)),
                        (RMSNorm(16), RMSNorm(16, fast=True)),
                        (RMSNorm(16, eps=1e-6), RMSNorm(16, eps=1e-6, fast=True)),
                        (GELU(), GELU(fast=True))):
        slow, quick = slow.double(), quick.double()
        quick.load_state_dict(slow.state_dict())
        for p in slow.parameters():
            torch.nn.init.normal_(p)
        quick.load_state_dict(slow.state_dict())
        torch.testing.assert_close(quick(x), slow(x), **F64)


def test_kv_cache_decoding_on_the_fast_path():
    """Decoding token by token with the (preallocated) cache gives the full pass's logits."""
    _, fast = pair(pos_encoding="rope")
    fast.eval()
    x = torch.randint(11, (2, 12), generator=torch.Generator().manual_seed(5))
    full = fast(x)[0]
    cache = fast.new_kv_cache()
    steps = [fast(x[:, :5], kv_cache=cache)[0]]
    steps += [fast(x[:, t:t + 1], kv_cache=cache)[0] for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, 1), full, **F64)


def test_muon_optimiser_splits_and_checkpoints():
    """Muon takes the blocks' Linear weights, AdamW the rest; the state dict round-trips."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=16,
                          fast=True))
    cfg = TrainConfig(steps=3, batch_size=2, block_size=12, optimizer="muon")
    opt = make_optimizer(model, cfg)
    assert isinstance(opt, MuonAdamW)
    muon_ids = {id(p) for g in opt.muon.param_groups for p in g["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in muon_ids}
    assert names == {f"h.{i}.{m}.weight" for i in range(2)
                     for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    n_all = sum(len(g["params"]) for g in opt.param_groups)
    assert n_all == len(list(model.parameters()))
    x = torch.randint(11, (2, 12))
    model(x, x)[1].backward()
    opt.step()
    sd = opt.state_dict()
    before = {k: {s: v.clone() for s, v in st.items() if torch.is_tensor(v)}
              for k, st in sd["state"].items()}
    opt2 = make_optimizer(model, cfg)
    opt2.load_state_dict(sd)
    for k, st in opt2.state_dict()["state"].items():
        for s, v in before[k].items():
            torch.testing.assert_close(st[s], v)
    with pytest.raises(ValueError, match="optimizer='sgd' is unknown"):
        TrainConfig(steps=3, batch_size=2, block_size=12, optimizer="sgd")


@pytest.mark.parametrize("field", ["fast", "fused_attention", "bias", "causal"])
def test_boolean_fields_reject_strings(field):
    with pytest.raises((TypeError, ValueError), match=f"GPTConfig.{field} must be True or False"):
        GPTConfig(vocab_size=11, block_size=12, n_layer=1, n_head=2, n_embd=16,
                  **{field: "false"})
