"""gptlib.attention against PyTorch's own attention (F.scaled_dot_product_attention, nn.MultiheadAttention)."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib import attention as attn_mod
from gptlib.attention import (KVCache, MultiHeadAttention, fused_attention, merge_heads,
                              scaled_dot_product_attention, split_heads)
from gptlib.masking import causal_mask

SETTINGS = settings(max_examples=30, deadline=None)
F64 = dict(rtol=1e-10, atol=1e-12)


def qkv(seed, B, H, t_q, t_k, d, d_v, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, t_q, d, generator=g, dtype=dtype)
    k = torch.randn(B, H, t_k, d, generator=g, dtype=dtype)
    v = torch.randn(B, H, t_k, d_v, generator=g, dtype=dtype)
    return q, k, v


shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9),
                   st.integers(1, 8), st.integers(1, 8))


@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), use_mask=st.booleans(),
       use_bias=st.booleans(), per_batch_mask=st.booleans())
def test_explicit_matches_torch_sdpa_forward_and_gradients(shape, seed, use_mask, use_bias,
                                                           per_batch_mask):
    B, H, t_q, t_k, d, d_v = shape
    q, k, v = (t.requires_grad_() for t in qkv(seed, *shape))
    g = torch.Generator().manual_seed(seed + 1)
    mask = bias = None
    ref_mask = None
    if use_mask:
        mask = torch.rand((B, 1, t_q, t_k) if per_batch_mask else (t_q, t_k), generator=g) < 0.6
        mask[..., 0] = True  # torch's own kernels are only compared on rows with a key to attend
        ref_mask = mask
    if use_bias:
        bias = torch.randn(1, H, t_q, t_k, generator=g, dtype=torch.float64)
        ref_mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
    scale = 1.0 / math.sqrt(d) if seed % 2 else 0.37  # also an explicit scale
    ours = scaled_dot_product_attention(q, k, v, mask, bias, scale=None if seed % 2 else 0.37)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=ref_mask, scale=scale)
    torch.testing.assert_close(ours, theirs, **F64)
    grad_out = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    ours_g = torch.autograd.grad(ours, (q, k, v), grad_out)
    theirs_g = torch.autograd.grad(theirs, (q, k, v), grad_out)
    for a, b in zip(ours_g, theirs_g):
        torch.testing.assert_close(a, b, **F64)


@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), use_bias=st.booleans())
def test_fused_matches_explicit_including_empty_rows(shape, seed, use_bias):
    B, H, t_q, t_k, d, d_v = shape
    q, k, v = (t.requires_grad_() for t in qkv(seed, *shape))
    g = torch.Generator().manual_seed(seed + 1)
    mask = torch.rand(B, H, t_q, t_k, generator=g) < 0.5  # may contain fully masked rows
    bias = torch.randn(t_q, t_k, generator=g, dtype=torch.float64) if use_bias else None
    a = scaled_dot_product_attention(q, k, v, mask, bias)
    b = fused_attention(q, k, v, mask, bias)
    torch.testing.assert_close(a, b, **F64)
    ga = torch.autograd.grad(a.sum(), (q, k, v))
    gb = torch.autograd.grad(b.sum(), (q, k, v))
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, **F64)


@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_weights_are_distributions(shape, seed):
    B, H, t_q, t_k, d, d_v = shape
    q, k, v = qkv(seed, *shape)
    mask = torch.rand(B, 1, t_q, t_k, generator=torch.Generator().manual_seed(seed)) < 0.5
    out, w = scaled_dot_product_attention(q * 3, k, v, mask, return_weights=True)
    assert w.shape == (B, H, t_q, t_k)
    assert (w >= 0).all()
    assert not w.masked_select(~mask.expand_as(w)).any()          # masked keys get weight 0
    has_key = mask.any(-1).expand(B, H, t_q)
    sums = w.sum(-1)
    torch.testing.assert_close(sums[has_key], torch.ones_like(sums[has_key]), **F64)
    assert (sums[~has_key] == 0).all() and (out[~has_key] == 0).all()
    torch.testing.assert_close(out, w @ v, **F64)


def test_default_scale_is_one_over_sqrt_d():
    q, k, v = qkv(0, 2, 2, 4, 5, 16, 3)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v),
                               scaled_dot_product_attention(q, k, v, scale=0.25), **F64)
    assert not torch.allclose(scaled_dot_product_attention(q, k, v),
                              scaled_dot_product_attention(q, k, v, scale=1.0))


def test_dropout_uses_generator_and_keeps_weights_normalised():
    q, k, v = qkv(0, 2, 2, 6, 6, 4, 4)
    run = lambda s: scaled_dot_product_attention(  # noqa: E731
        q, k, v, dropout_p=0.5, return_weights=True, generator=torch.Generator().manual_seed(s))
    (a, wa), (b, _), (c, _) = run(1), run(1), run(2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(wa.sum(-1), torch.ones(2, 2, 6, dtype=torch.float64), **F64)


def test_fused_is_causal_matches_mask_and_uses_bottom_right_alignment():
    q, k, v = qkv(1, 2, 3, 4, 7, 5, 5)
    for t_q in (7, 4):  # square, and the last 4 queries of 7 positions (KV cache)
        qq = q if t_q == 4 else qkv(2, 2, 3, 7, 7, 5, 5)[0]
        torch.testing.assert_close(fused_attention(qq, k, v, is_causal=True),
                                   scaled_dot_product_attention(qq, k, v, causal_mask(t_q, 7)), **F64)


def copy_to_torch_mha(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    theirs = nn.MultiheadAttention(ours.n_embd, ours.n_heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(ours.c_attn.weight)   # rows q | k | v in both
        theirs.in_proj_bias.copy_(ours.c_attn.bias)
        theirs.out_proj.weight.copy_(ours.c_proj.weight)
        theirs.out_proj.bias.copy_(ours.c_proj.bias)
    return theirs.eval()


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch_multihead_attention(fused, causal):
    torch.manual_seed(0)
    ours = MultiHeadAttention(24, 4, fused=fused).double().eval()
    theirs = copy_to_torch_mha(ours)
    x = torch.randn(3, 10, 24, dtype=torch.float64)
    y = ours(x, causal=causal)
    # torch's bool attn_mask means the opposite: True = NOT allowed
    ref, ref_w = theirs(x, x, x, attn_mask=~causal_mask(10) if causal else None,
                        average_attn_weights=False)
    torch.testing.assert_close(y, ref, **F64)
    y2, w = ours(x, causal=causal, return_weights=True)
    torch.testing.assert_close(y2, ref, **F64)
    torch.testing.assert_close(w, ref_w, **F64)


def test_fused_switch_same_output_and_gradients():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2).double()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    mask = torch.rand(2, 1, 7, 7) < 0.7
    bias = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    for kwargs in (dict(), dict(causal=True), dict(mask=mask, bias=bias, causal=True)):
        grads = []
        for fused in (False, True):
            mha.fused = fused
            mha.zero_grad()
            y = mha(x, **kwargs)
            y.pow(2).sum().backward()
            grads.append((y.detach(), mha.c_attn.weight.grad.clone()))
        torch.testing.assert_close(grads[0][0], grads[1][0], **F64)
        torch.testing.assert_close(grads[0][1], grads[1][1], **F64)


def test_fused_causal_without_mask_reaches_the_kernel_as_is_causal(monkeypatch):
    seen = []
    real = attn_mod.F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        seen.append((kwargs["is_causal"], kwargs["attn_mask"] is None))
        return real(*args, **kwargs)

    monkeypatch.setattr(attn_mod.F, "scaled_dot_product_attention", spy)
    mha = MultiHeadAttention(8, 2, fused=True)
    x = torch.randn(1, 5, 8)
    mha(x, causal=True)
    mha(x, causal=True, mask=torch.ones(5, 5, dtype=torch.bool))
    cache = KVCache()
    mha(x[:, :2], causal=True, kv_cache=cache)    # empty cache: T_q == T_k, still is_causal
    mha(x[:, 2:3], causal=True, kv_cache=cache)   # 1 query after 2 cached keys: explicit mask
    assert seen == [(True, True), (False, False), (True, True), (False, False)]


def test_return_weights_forces_explicit_path():
    mha = MultiHeadAttention(8, 2, fused=True)
    y, w = mha(torch.randn(2, 4, 8), causal=True, return_weights=True)
    assert w.shape == (2, 2, 4, 4) and (w.triu(1) == 0).all()


def test_split_merge_heads():
    x = torch.arange(2 * 3 * 6.0).view(2, 3, 6)
    h = split_heads(x, 3)
    assert h.shape == (2, 3, 3, 2)
    torch.testing.assert_close(h[1, 2, 0], x[1, 0, 4:6])  # head 2 = channels 4..5
    torch.testing.assert_close(merge_heads(h), x)


def test_kv_cache_bookkeeping():
    c = KVCache()
    assert c.length == 0
    k1, v1 = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 5)
    k2, v2 = torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 5)
    c.append(k1, v1)
    k, v = c.append(k2, v2)
    assert c.length == 4
    torch.testing.assert_close(k, torch.cat([k1, k2], 2))
    torch.testing.assert_close(v, torch.cat([v1, v2], 2))
    with pytest.raises(ValueError, match="do not match the cache"):
        c.append(torch.randn(2, 2, 1, 4), torch.randn(2, 2, 1, 5))
    c.reset()
    assert c.length == 0 and c.k is None


# ---- bad inputs: each raises an error that names the problem -----------------------------------
q4, k4, v4 = (torch.randn(2, 2, 3, 4) for _ in range(3))
BAD_FUNCTION_INPUTS = [
    ((torch.randn(2, 3, 4), k4, v4), {}, ValueError, r"q must be 4-D \(B, H, T, d\)"),
    ((q4, k4, v4[:, :, :2]), {}, ValueError, "same length T_k"),
    ((q4, k4[..., :3], v4), {}, ValueError, "same head dim"),
    ((q4, k4[:1], v4[:1]), {}, ValueError, r"batch and heads"),
    ((q4, k4[:, :1], v4[:, :1]), {}, ValueError, r"batch and heads"),
    ((q4.long(), k4, v4), {}, TypeError, "q must be floating point"),
    ((q4, k4.double(), v4), {}, TypeError, "share a dtype"),
    ((q4, k4, v4), dict(mask=torch.ones(3, 3)), TypeError, "mask must be a bool tensor"),
    ((q4, k4, v4), dict(mask=torch.ones(4, 3, dtype=torch.bool)), ValueError, "does not broadcast"),
    ((q4, k4, v4), dict(mask=torch.ones(2, 3, dtype=torch.bool)), ValueError, "padding mask"),
    ((q4, k4, v4), dict(bias=torch.ones(3, 3, dtype=torch.long)), TypeError, "bias must be a floating"),
    ((q4, k4, v4), dict(bias=torch.ones(5, 3)), ValueError, "bias of shape"),
    ((q4, k4, v4), dict(dropout_p=1.0), ValueError, "dropout_p"),
]


@pytest.mark.parametrize("fn", [scaled_dot_product_attention, fused_attention])
@pytest.mark.parametrize("args,kwargs,exc,match", BAD_FUNCTION_INPUTS)
def test_bad_function_inputs(fn, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_bad_module_inputs():
    with pytest.raises(ValueError, match="n_embd=10 is not divisible by n_heads=4"):
        MultiHeadAttention(10, 4)
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"\(B, T, C\) with C = n_embd = 8"):
        mha(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match=r"\(B, T, C\)"):
        mha(torch.randn(2, 2, 3, 8))
    with pytest.raises(TypeError, match="x must be floating point"):
        mha(torch.ones(2, 3, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        mha(torch.randn(2, 3, 8), mask=torch.ones(3, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(torch.randn(2, 3, 8), mask=torch.ones(3, 4, dtype=torch.bool))


def test_additive_scores_match_a_loop_over_pairs():
    # Bahdanau et al. 2015, appendix A.1.2: e_ij = v^T tanh(W s_i + U h_j), one pair at a time
    from gptlib.attention import additive_scores
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)   # (B, T_q, d_q)
    k = torch.randn(2, 4, 7, generator=g, dtype=torch.float64)   # (B, T_k, d_k): other width
    w_q = torch.randn(5, 6, generator=g, dtype=torch.float64)
    w_k = torch.randn(7, 6, generator=g, dtype=torch.float64)
    v = torch.randn(6, generator=g, dtype=torch.float64)
    scores = additive_scores(q, k, w_q, w_k, v)
    assert scores.shape == (2, 3, 4)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                e = sum(float(v[a]) * math.tanh(float(q[b, i] @ w_q[:, a] + k[b, j] @ w_k[:, a]))
                        for a in range(6))
                assert abs(scores[b, i, j].item() - e) < 1e-12


def test_additive_scores_reject_mismatched_widths():
    from gptlib.attention import additive_scores
    q, k = torch.randn(3, 5), torch.randn(4, 7)
    with pytest.raises(ValueError, match="w_q must be"):
        additive_scores(q, k, torch.randn(4, 6), torch.randn(7, 6), torch.randn(6))
    with pytest.raises(ValueError, match="hidden width"):
        additive_scores(q, k, torch.randn(5, 6), torch.randn(7, 6), torch.randn(5))


def test_attention_dropout_is_off_in_eval_and_keeps_the_expectation():
    torch.manual_seed(0)
    layer = MultiHeadAttention(16, 4, dropout=0.5)
    x = torch.randn(2, 6, 16)
    layer.train()
    assert not torch.allclose(layer(x, causal=True), layer(x, causal=True))
    layer.eval()
    torch.testing.assert_close(layer(x, causal=True), layer(x, causal=True))
    # inverted dropout on the weights: zero with probability p, survivors scaled by 1/(1-p)
    q, k, v = qkv(1, 1, 1, 4, 4, 3, 1)
    v = torch.ones_like(v)
    g = torch.Generator().manual_seed(2)
    outs = torch.stack([scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=g)
                        for _ in range(4000)])
    torch.testing.assert_close(outs.mean(0), scaled_dot_product_attention(q, k, v),
                               rtol=0, atol=0.05)
