"""gptlib.masking: what the masks contain, what they guarantee (causality, padding), and dtype pitfalls."""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.attention import KVCache, MultiHeadAttention, fused_attention, scaled_dot_product_attention
from gptlib.masking import apply_mask, causal_mask, combine_masks, mask_after_softmax, padding_mask

SETTINGS = settings(max_examples=30, deadline=None)
F64 = dict(rtol=1e-10, atol=1e-12)
ATTENTION = [scaled_dot_product_attention, fused_attention]


def make_mha(seed, fused, C=16, H=4):
    torch.manual_seed(seed)
    return MultiHeadAttention(C, H, fused=fused).double().eval()


# ---- the masks themselves ----------------------------------------------------------------------
@SETTINGS
@given(t_q=st.integers(1, 8), extra=st.integers(0, 5), offset=st.none() | st.integers(-3, 10))
def test_causal_mask_matches_definition(t_q, extra, offset):
    t_k = t_q + extra
    m = causal_mask(t_q, t_k, offset=offset)
    off = t_k - t_q if offset is None else offset
    expected = [[j <= i + off for j in range(t_k)] for i in range(t_q)]
    assert m.dtype == torch.bool and m.tolist() == expected


def test_causal_mask_defaults_and_incremental_rows():
    assert causal_mask(4).tolist() == torch.ones(4, 4).tril().bool().tolist()
    full = causal_mask(6)
    assert torch.equal(causal_mask(1, 6), full[-1:])   # one new query after 5 cached positions
    assert torch.equal(causal_mask(2, 6), full[-2:])
    assert causal_mask(3, device="cpu").device.type == "cpu"


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((0,), {}, ValueError, "t_q must be >= 1"),
    ((-2,), {}, ValueError, "t_q must be >= 1"),
    ((3, -1), {}, ValueError, "t_k must be >= 1"),
    ((5, 3), {}, ValueError, "t_q=5 queries cannot be the last positions of only t_k=3"),
    ((2.0,), {}, TypeError, "t_q must be an int"),
    ((2,), dict(offset=0.5), TypeError, "offset must be an int"),
])
def test_causal_mask_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        causal_mask(*args, **kwargs)


@SETTINGS
@given(lengths=st.lists(st.integers(0, 7), min_size=1, max_size=4), pad=st.integers(0, 3),
       side=st.sampled_from(["right", "left"]))
def test_padding_mask_from_lengths_and_from_ids(lengths, pad, side):
    T = max(max(lengths), 1) + pad
    m = padding_mask(lengths, max_len=T, side=side)
    real = [[(j < n) if side == "right" else (j >= T - n) for j in range(T)] for n in lengths]
    assert m.tolist() == real
    assert torch.equal(padding_mask(torch.tensor(lengths), max_len=T, side=side), m)
    # the same batch as token ids, with the pad id 0 also used *inside* the sequences
    ids = torch.zeros(len(lengths), T, dtype=torch.long)
    for b, n in enumerate(lengths):
        tokens = torch.tensor([1 + (i % 3) if i % 2 == 0 else 0 for i in range(n)])
        if n:
            tokens[0 if side == "left" else -1] = 9   # a real token at the padded end
            ids[b, :n] = tokens if side == "right" else ids[b, :n]
            ids[b, T - n:] = tokens if side == "left" else ids[b, T - n:]
    assert padding_mask(ids=ids, pad_id=0, side=side).tolist() == real


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((), {}, ValueError, "exactly one of lengths"),
    (([2],), dict(ids=torch.zeros(1, 2, dtype=torch.long), pad_id=0), ValueError, "exactly one"),
    (([2, -1],), {}, ValueError, "lengths must be >= 0"),
    (([2, 5],), dict(max_len=4), ValueError, "length of 5 does not fit in max_len=4"),
    (([2.5],), {}, TypeError, "lengths must be"),
    (([2],), dict(side="middle"), ValueError, "side must be 'right' or 'left'"),
    ((), dict(ids=torch.zeros(1, 2, dtype=torch.long)), ValueError, "needs pad_id"),
    ((), dict(ids=torch.zeros(2, dtype=torch.long), pad_id=0), TypeError, r"\(B, T\) integer"),
    ((), dict(ids=torch.zeros(1, 2, dtype=torch.long), pad_id=0, max_len=3), ValueError, "max_len"),
])
def test_padding_mask_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        padding_mask(*args, **kwargs)


def test_combine_masks_causal_and_padding():
    lengths = [2, 4, 3]
    m = combine_masks(causal_mask(4), padding=padding_mask(lengths))
    assert m.shape == (3, 1, 4, 4)
    expected = [[[[j <= i and j < n for j in range(4)] for i in range(4)]] for n in lengths]
    assert m.tolist() == expected
    extra = torch.rand(1, 2, 4, 4) < 0.5    # per-head masks broadcast too
    assert torch.equal(combine_masks(m, extra), m & extra)
    assert torch.equal(combine_masks(causal_mask(4)), causal_mask(4))


def test_combine_masks_errors():
    with pytest.raises(TypeError, match="mask 1 must be a bool tensor"):
        combine_masks(causal_mask(3), torch.ones(3, 3))
    with pytest.raises(ValueError, match=r"\(3, 3\), \(2, 4\) cannot be broadcast together"):
        combine_masks(causal_mask(3), padding_mask([4, 1]))     # padding passed positionally
    with pytest.raises(ValueError, match="padding must be a"):
        combine_masks(padding=torch.ones(2, 1, 1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one mask"):
        combine_masks()
    with pytest.raises(ValueError, match="at most 4"):
        combine_masks(torch.ones(1, 1, 1, 1, 1, dtype=torch.bool))


def test_apply_mask_sets_minus_inf_and_validates():
    scores = torch.randn(2, 3, 3)
    out = apply_mask(scores, causal_mask(3))
    assert torch.isneginf(out[:, causal_mask(3).logical_not()]).all()
    assert torch.equal(out[:, causal_mask(3)], scores[:, causal_mask(3)])
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        apply_mask(scores, causal_mask(3).float())
    with pytest.raises(TypeError, match="scores must be a floating tensor"):
        apply_mask(scores.long(), causal_mask(3))
    with pytest.raises(ValueError, match=r"does not broadcast to the scores \(2, 3, 3\)"):
        apply_mask(scores, torch.ones(4, 3, 3, dtype=torch.bool))


# ---- causality: the future cannot change the past ----------------------------------------------
@SETTINGS
@given(T=st.integers(2, 12), data=st.data(), seed=st.integers(0, 2**20), fused=st.booleans())
def test_future_tokens_do_not_change_past_outputs_only_with_the_mask(T, data, seed, fused):
    t = data.draw(st.integers(0, T - 2), label="t")
    mha = make_mha(seed, fused)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, T, 16, generator=g, dtype=torch.float64)
    x2 = x.clone()
    x2[:, t + 1:] += torch.randn(2, T - t - 1, 16, generator=g, dtype=torch.float64)
    y, y2 = mha(x, causal=True), mha(x2, causal=True)
    torch.testing.assert_close(y[:, :t + 1], y2[:, :t + 1], **F64)
    assert (y[:, t + 1:] - y2[:, t + 1:]).abs().amax() > 1e-6   # the perturbation was real
    # without the mask, position <= t reads the future: the same check must fail
    n, n2 = mha(x), mha(x2)
    assert (n[:, :t + 1] - n2[:, :t + 1]).abs().amax() > 1e-6


# ---- padding: a padded batch equals each sequence alone ----------------------------------------
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("causal", [True, False])
def test_padded_batch_matches_each_sequence_alone(fused, side, causal):
    mha = make_mha(1, fused)
    lengths, T = [5, 2, 4], 5
    seqs = [torch.randn(1, n, 16, dtype=torch.float64) for n in lengths]
    batch = torch.randn(3, T, 16, dtype=torch.float64) * 100    # garbage at the pad positions
    for b, (s, n) in enumerate(zip(seqs, lengths)):
        batch[b, :n] = s[0] if side == "right" else batch[b, :n]
        batch[b, T - n:] = s[0] if side == "left" else batch[b, T - n:]
    mask = combine_masks(padding=padding_mask(lengths, side=side))
    y = mha(batch, mask=mask, causal=causal)
    assert torch.isfinite(y).all()        # left padding + causal: pad queries have no key at all
    for b, (s, n) in enumerate(zip(seqs, lengths)):
        alone = mha(s, causal=causal)[0]
        real = y[b, :n] if side == "right" else y[b, T - n:]
        torch.testing.assert_close(real, alone, **F64)


# ---- fully masked rows: defined as 0, never NaN ------------------------------------------------
@pytest.mark.parametrize("fn", ATTENTION)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("use_bias", [False, True])
def test_fully_masked_rows_give_zeros_not_nan(fn, dtype, use_bias):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 4, 8, dtype=dtype, requires_grad=True) for _ in range(3))
    bias = torch.randn(2, 1, 4, 4, dtype=dtype, requires_grad=True) if use_bias else None
    mask = causal_mask(4).expand(2, 2, 4, 4).clone()
    mask[0, 1, 2] = False                          # one empty row
    mask[1] = False                                # a whole empty sequence
    leaves = (q, k, v) + ((bias,) if use_bias else ())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Anomaly Detection has been enabled")
        with torch.autograd.detect_anomaly():     # raises if any backward step produces NaN
            out = fn(q, k, v, mask, bias)
            grads = torch.autograd.grad(out.float().pow(2).sum(), leaves)
    assert torch.isfinite(out).all()
    assert (out[0, 1, 2] == 0).all() and (out[1] == 0).all()
    assert (out[0, 0].abs().sum(-1) > 0).all()
    assert all(torch.isfinite(g).all() for g in grads)
    assert (grads[0][1] == 0).all()                # nothing flows through an empty sequence
    if fn is scaled_dot_product_attention:
        _, w = fn(q, k, v, mask, bias, return_weights=True)
        assert (w[0, 1, 2] == 0).all() and (w[1] == 0).all()
    # the naive softmax of an all -inf row is 0/0: the reason for the special case
    assert torch.isnan(torch.softmax(apply_mask(torch.zeros(4, dtype=dtype), torch.zeros(4, dtype=torch.bool)), -1)).all()


# ---- dtype pitfalls: finite "large negative" constants -----------------------------------------
def test_large_negative_constant_overflows_in_float16():
    assert torch.isneginf(torch.tensor(-1e9, dtype=torch.float16))
    mask = torch.tensor([True, True, False])
    scores = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float16)
    neg = torch.tensor(-1e9).to(torch.float16)          # the constant, stored in the model's dtype
    additive = scores + (1 - mask.half()) * neg          # the common additive-mask recipe
    assert torch.isnan(additive[:2]).all()               # 0 * -inf = NaN at the ALLOWED positions
    assert torch.isnan(torch.softmax(additive, -1)).all()
    with pytest.raises(RuntimeError, match="overflow"):
        scores.masked_fill(~mask, -1e9)
    ref = torch.softmax(torch.tensor([1.0, 2.0]), -1)
    for dtype in (torch.float16, torch.bfloat16):
        s = scores.to(dtype)
        for masked in (apply_mask(s, mask), s.masked_fill(~mask, torch.finfo(dtype).min)):
            w = torch.softmax(masked.float(), -1) if dtype == torch.bfloat16 else torch.softmax(masked, -1)
            assert w[2] == 0
            torch.testing.assert_close(w[:2].float(), ref, rtol=0, atol=1e-2)


def test_minus_1e4_is_not_small_enough_in_float32():
    scores = torch.tensor([-2e4, 0.0])                 # a large negative real score (no scaling)
    mask = torch.tensor([True, False])
    leaky = torch.softmax(scores.masked_fill(~mask, -1e4), -1)
    assert leaky[1] > 0.99                             # the masked key takes all the weight
    assert torch.equal(torch.softmax(apply_mask(scores, mask), -1), torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("fn", ATTENTION)
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 5e-3), (torch.bfloat16, 3e-2)])
def test_low_precision_masked_attention_matches_float32(fn, dtype, tol):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 16, 8, generator=g) for _ in range(3))
    mask = combine_masks(causal_mask(16), padding=padding_mask([16, 9]))
    ref = scaled_dot_product_attention(q, k, v, mask)
    low = fn(q.to(dtype), k.to(dtype), v.to(dtype), mask)
    assert low.dtype == dtype and torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), ref, rtol=0, atol=tol)
    assert not torch.allclose(fn(q.to(dtype), k.to(dtype), v.to(dtype)).float(), ref, atol=tol)


# ---- the wrong way: masking after the softmax -------------------------------------------------
def test_masking_after_softmax_is_wrong():
    scores = torch.randn(6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mask = causal_mask(6)
    wrong = mask_after_softmax(scores, mask)
    right = torch.softmax(apply_mask(scores, mask), -1)
    torch.testing.assert_close(right.sum(-1), torch.ones(6, dtype=torch.float64), **F64)
    assert (wrong.sum(-1)[:-1] < 1 - 1e-6).all()       # every row with a masked key loses mass
    assert (wrong[~mask] == 0).all() and (right[~mask] == 0).all()
    # and the wrong weights still depend on the masked (future) scores
    future = scores.clone()
    future[~mask] += 5.0
    assert not torch.allclose(mask_after_softmax(future, mask), wrong)
    torch.testing.assert_close(torch.softmax(apply_mask(future, mask), -1), right, **F64)


# ---- KV cache: token by token equals the full causal pass --------------------------------------
def rope(q, k, offset):
    """Rotary embedding (Su et al. 2021) for the test: rotate channel pairs by position * frequency."""
    T, d = q.size(-2), q.size(-1)
    pos = torch.arange(offset, offset + T, dtype=q.dtype)
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=q.dtype) / d)
    cos, sin = (pos[:, None] * freq).cos(), (pos[:, None] * freq).sin()   # (T, d/2)

    def rotate(x):
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)
    return rotate(q), rotate(k)


def decode(mha, x, chunks, **kwargs):
    cache, out, start = KVCache(), [], 0
    for size in chunks:
        out.append(mha(x[:, start:start + size], kv_cache=cache, causal=True, **kwargs))
        start += size
    assert cache.length == x.size(1)
    return torch.cat(out, 1)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("use_rope", [False, True])
def test_kv_cache_decoding_equals_full_causal_pass(fused, use_rope):
    mha = make_mha(2, fused)
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    kw = dict(rope=rope) if use_rope else {}
    full = mha(x, causal=True, **kw)
    torch.testing.assert_close(decode(mha, x, [1] * 9, **kw), full, **F64)   # token by token
    torch.testing.assert_close(decode(mha, x, [4, 1, 3, 1], **kw), full, **F64)  # prefill + steps
    if use_rope:   # a rope that ignores the offset puts every new token at position 0: wrong
        wrong = decode(mha, x, [1] * 9, rope=lambda q, k, offset: rope(q, k, 0))
        assert not torch.allclose(wrong[:, 1:], full[:, 1:], atol=1e-6)


def test_kv_cache_with_padding_mask():
    mha = make_mha(3, False)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    keys = padding_mask([6, 4], side="left")                      # (B, T_k)
    full = mha(x, mask=keys[:, None, None, :], causal=True)
    cache, out = KVCache(), []
    for t in range(6):
        out.append(mha(x[:, t:t + 1], mask=keys[:, None, None, :t + 1], kv_cache=cache, causal=True))
    torch.testing.assert_close(torch.cat(out, 1), full, **F64)
