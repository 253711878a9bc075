"""gptlib.masking: what the masks contain, what they guarantee (causality, padding), and dtype pitfalls."""

import functools
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.attention import KVCache, MultiHeadAttention, fused_attention, scaled_dot_product_attention
from gptlib.masking import (apply_mask, causal_mask, combine_masks, document_mask, document_positions,
                            mask_after_softmax, padding_mask)
from gptlib.model import GPT, GPTConfig

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


def test_when_the_additive_minus_1e9_recipe_fails_in_float16():
    """Exactly when: a Python constant works (the product is rounded, not the constant), a
    float32 mask cast to float16 works; a constant cast to float16 first, or a row with every
    key masked, gives NaN. And finfo.min leaves the real scores exactly unchanged."""
    scores = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float16)
    keep = torch.tensor([True, True, False])
    ref = torch.softmax(torch.tensor([1.0, 2.0]), -1)
    for works in (scores + (1 - keep.half()) * -1e9,
                  scores + ((1 - keep.float()) * -1e9).half(),
                  scores + (1 - keep.half()) * torch.finfo(torch.float16).min):
        assert torch.equal(works[:2], scores[:2])                 # real scores untouched
        w = torch.softmax(works, -1)
        assert w[2] == 0 and torch.allclose(w[:2].float(), ref, atol=1e-3)
    assert torch.isnan(scores + (1 - keep.half()) * torch.tensor(-1e9).half())[:2].all()
    none = torch.zeros(3, dtype=torch.bool)
    assert torch.isnan(torch.softmax(scores + (1 - none.half()) * -1e9, -1)).all()
    uniform = torch.softmax(scores.float() + (1 - none.float()) * -1e9, -1)
    assert torch.allclose(uniform, torch.full((3,), 1 / 3))    # float32: finite, uniform


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


# ---- packed documents: a block-diagonal causal mask --------------------------------------------
run_lengths = st.lists(st.integers(1, 5), min_size=1, max_size=4)


def doc_ids_from(lengths, first=0):
    return torch.cat([torch.full((n,), first + d) for d, n in enumerate(lengths)])


@SETTINGS
@given(lengths=run_lengths, first=st.integers(-2, 5))
def test_document_mask_and_positions_match_definition(lengths, first):
    ids = doc_ids_from(lengths, first)
    T = len(ids)
    m = document_mask(ids)
    expected = [[ids[i] == ids[j] and j <= i for j in range(T)] for i in range(T)]
    assert m.dtype == torch.bool and m.tolist() == expected
    starts = [sum(lengths[:d]) for d in range(len(lengths))]
    assert document_positions(ids).tolist() == [i - max(s for s in starts if s <= i)
                                                for i in range(T)]


def test_document_mask_special_cases_and_batches():
    assert torch.equal(document_mask(torch.zeros(5, dtype=torch.long)), causal_mask(5))
    assert torch.equal(document_mask(torch.arange(4)), torch.eye(4, dtype=torch.bool))
    rows = torch.tensor([[0, 0, 1, 1, 1], [7, 7, 7, 7, 2]])
    m = document_mask(rows)
    assert m.shape == (2, 1, 5, 5)
    assert all(torch.equal(m[b, 0], document_mask(rows[b])) for b in range(2))
    assert document_positions(rows).tolist() == [[0, 1, 0, 1, 2], [0, 1, 2, 3, 0]]


@pytest.mark.parametrize("ids, exc, match", [
    (torch.tensor([0, 1, 0]), ValueError, r"document id 0 appears in two separate runs"),
    (torch.tensor([[0, 0], [1, 2]]).flip(0).repeat(1, 2), ValueError, r"row 0: document id"),
    (torch.tensor([0.0, 1.0]), TypeError, r"integer tensor"),
    (torch.zeros(0, dtype=torch.long), TypeError, r"T >= 1"),
    ([0, 0, 1], TypeError, r"doc_ids must be"),
])
def test_document_mask_errors(ids, exc, match):
    with pytest.raises(exc, match=match):
        document_mask(ids)


@pytest.mark.parametrize("fn", ATTENTION)
def test_packed_documents_attend_as_each_document_alone(fn):
    g = torch.Generator().manual_seed(4)
    lengths = [3, 5, 2]
    ids = doc_ids_from(lengths)
    q, k, v = (torch.randn(1, 2, 10, 8, generator=g, dtype=torch.float64) for _ in range(3))
    packed = fn(q, k, v, document_mask(ids))
    plain = fn(q, k, v, causal_mask(10))
    start = 0
    for n in lengths:
        part = slice(start, start + n)
        alone = fn(q[..., part, :], k[..., part, :], v[..., part, :], causal_mask(n))
        torch.testing.assert_close(packed[..., part, :], alone, **F64)
        if start:       # the causal mask alone lets a later document read the earlier ones
            assert not torch.allclose(plain[..., part, :], alone, atol=1e-6)
        start += n


def packed_logits(model, idx, mask, positions):
    """GPT's forward pass with an extra attention mask (the blocks combine it with the causal
    one): embeddings at ``positions``, every block, ln_f, lm_head."""
    x = model.pos.embed(model.wte(idx), 0, positions=positions)
    rope = None if model.pos.rope is None else functools.partial(model.pos.rope,
                                                                 positions=positions)
    for block in model.h:
        x = block(x, mask, None, rope)
    return model.lm_head(model.ln_f(x))


@pytest.mark.parametrize("pos_encoding", ["learned", "rope", "none"])
def test_a_packed_pair_gives_each_sequence_the_logits_it_gets_alone(pos_encoding):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16,
                          pos_encoding=pos_encoding)).double().eval()
    a = torch.randint(20, (1, 6), generator=torch.Generator().manual_seed(1))
    b = torch.randint(20, (1, 9), generator=torch.Generator().manual_seed(2))
    ids = doc_ids_from([6, 9])[None]                                       # (1, 15)
    pos = document_positions(ids)
    with torch.no_grad():
        packed = packed_logits(model, torch.cat([a, b], 1), document_mask(ids), pos)
        assert torch.equal(model(a)[0], packed_logits(model, a, None, document_positions(
            torch.zeros(1, 6, dtype=torch.long))))                  # the helper is GPT.forward
        torch.testing.assert_close(packed[:, :6], model(a)[0], **F64)
        torch.testing.assert_close(packed[:, 6:], model(b)[0], **F64)
        # the causal mask alone: the second sequence reads the first
        leaky = packed_logits(model, torch.cat([a, b], 1), None, pos)
        assert not torch.allclose(leaky[:, 6:], model(b)[0], atol=1e-6)
