"""gptlib.interp: the hooks return the attention the model used, the scores measure what they
claim on hand-built patterns, and ablation removes exactly one head's contribution."""

import math

import pytest
import torch

from gptlib.interp import (ablate_heads, attention_patterns, head_scores, induction_score,
                           logits_with_input_removed, previous_token_score, record_attention)
from gptlib.model import GPT, GPTConfig


def small_model(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=11, block_size=16, n_layer=2, n_head=4, n_embd=32, mlp=False)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def recompute_patterns(model, idx):
    """Each layer's attention, recomputed by hand from the weights (pre-LN, learned positions)."""
    x = model.wte(idx) + model.wpe(torch.arange(idx.size(1)))
    out = []
    for block in model.h:
        a = block.attn
        h = block.ln_1(x)
        q, k, v = a.c_attn(h).split(a.n_embd, dim=2)
        B, T, C = q.shape
        q, k = (t.view(B, T, a.n_heads, a.head_dim).transpose(1, 2) for t in (q, k))
        scores = q @ k.transpose(-1, -2) / math.sqrt(a.head_dim)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        w = scores.softmax(-1)
        out.append(w)
        x = x + block.attn(h, causal=True)
        if block.mlp is not None:
            x = x + block.mlp(block.ln_2(x))
    return out


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("mlp", [False, True])
def test_recorded_patterns_are_the_attention_the_model_computed(fused, mlp):
    model = small_model(fused_attention=fused, mlp=mlp)
    idx = torch.randint(11, (3, 16), generator=torch.Generator().manual_seed(1))
    patterns = attention_patterns(model, idx)
    expected = recompute_patterns(model, idx)
    assert len(patterns) == 2 and patterns[0].shape == (3, 4, 16, 16)
    for p, e in zip(patterns, expected):
        torch.testing.assert_close(p, e, atol=1e-6, rtol=1e-5)
        assert torch.allclose(p.sum(-1), torch.ones(3, 4, 16))
        assert (p.triu(1) == 0).all()                        # causal
    # recording leaves the model's output unchanged, and the hooks are removed afterwards
    plain = model(idx)[0]
    with record_attention(model) as recorded:
        hooked = model(idx)[0]
    torch.testing.assert_close(hooked, plain, atol=1e-6, rtol=1e-5)
    assert len(recorded) == 2
    assert all(not b.attn._forward_hooks and not b.attn._forward_pre_hooks for b in model.h)


def test_scores_on_hand_built_patterns():
    T, L = 12, 6
    tokens = torch.arange(L).repeat(2)[None]                 # 0..5 0..5: no repeats in a copy
    prev = torch.zeros(1, 1, T, T)
    prev[0, 0, 0, 0] = 1.0
    prev[0, 0, torch.arange(1, T), torch.arange(T - 1)] = 1.0
    ind = torch.zeros(1, 1, T, T)
    ind[0, 0, :L] = prev[0, 0, :L]
    ind[0, 0, torch.arange(L, T), torch.arange(1, T - L + 1)] = 1.0   # t -> t - L + 1
    uniform = torch.ones(T, T).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True))[None, None]
    pattern = torch.cat([prev, ind, uniform], dim=1)          # (1, 3, T, T)
    p, i = previous_token_score(pattern), induction_score(pattern, tokens)
    assert p[0] == pytest.approx(1.0) and i[0] == pytest.approx(0.0)
    assert i[1] == pytest.approx(1.0)
    assert p[1] == pytest.approx((L - 1) / (T - 1))          # before the repeat it looks back one
    # the uniform head: at query t (second copy) one of t + 1 keys is the target
    assert i[2] == pytest.approx(sum(1 / (t + 1) for t in range(L, T)) / (T - L))
    assert p[2] == pytest.approx(sum(1 / (t + 1) for t in range(1, T)) / (T - 1))


def test_scores_reject_bad_inputs():
    with pytest.raises(ValueError, match=r"\(B, H, T, T\)"):
        previous_token_score(torch.ones(3, 4, 4))
    with pytest.raises(ValueError, match="tokens must be"):
        induction_score(torch.ones(1, 2, 5, 5), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="repeated tokens"):
        induction_score(torch.ones(1, 2, 5, 5), torch.arange(5)[None])


def test_ablation_removes_exactly_one_heads_term():
    model = small_model(n_layer=1)
    idx = torch.randint(11, (2, 16), generator=torch.Generator().manual_seed(2))
    a = model.h[0].attn
    captured = {}
    hook = a.c_proj.register_forward_pre_hook(lambda m, args: captured.setdefault("in", args[0]))
    base = a(model.h[0].ln_1(model.wte(idx) + model.wpe(torch.arange(16))), causal=True)
    hook.remove()
    merged = captured["in"]                                     # (B, T, C): heads side by side
    d, head = a.head_dim, 2
    term = merged[..., head * d:(head + 1) * d] @ a.c_proj.weight[:, head * d:(head + 1) * d].T
    x = model.h[0].ln_1(model.wte(idx) + model.wpe(torch.arange(16)))
    with ablate_heads(model, [(0, head)]):
        ablated = a(x, causal=True)
    torch.testing.assert_close(ablated, base - term, atol=1e-6, rtol=1e-5)
    assert not a.c_proj._forward_pre_hooks                      # removed afterwards
    assert term.abs().max() > 1e-3                              # the head did contribute
    # through the whole model: the ablated head changes the logits, and the hook goes away
    full = model(idx)[0]
    with ablate_heads(model, [(0, head)]):
        assert not torch.allclose(model(idx)[0], full)
    torch.testing.assert_close(model(idx)[0], full)


@pytest.mark.parametrize("heads, message", [([(2, 0)], "no head"), ([(0, 4)], "no head"),
                                            ([0], "pairs")])
def test_ablating_a_head_that_does_not_exist_is_a_clear_error(heads, message):
    with pytest.raises(ValueError, match=message):
        with ablate_heads(small_model(), heads):
            pass


def test_head_scores_find_a_previous_token_head_built_by_hand():
    model = small_model()
    T = 8
    with torch.no_grad():
        model.wte.weight.zero_()             # no token information: attention by position only
        a = model.h[0].attn
        C, d = a.n_embd, a.head_dim          # d = 8 = T: one key direction per position
        model.pos.wpe.weight.normal_(generator=torch.Generator().manual_seed(3))
        h = model.h[0].ln_1(model.pos.wpe.weight[:T])              # (T, C): what attention reads
        keys = 30 * torch.eye(T)                                   # k(j) = 30 e_j
        queries = 30 * torch.eye(T).roll(-1, dims=1)               # q(t) = 30 e_(t-1)
        a.c_attn.weight[d:2 * d] = torch.linalg.lstsq(h, queries).solution.T          # head 1 q
        a.c_attn.weight[C + d:C + 2 * d] = torch.linalg.lstsq(h, keys).solution.T     # head 1 k
        a.c_attn.bias.zero_()
    idx = torch.arange(4).repeat(2)[None]                          # 0 1 2 3 0 1 2 3
    scores = head_scores(model, idx)
    assert scores["previous_token"].shape == (2, 4) and scores["induction"].shape == (2, 4)
    assert scores["previous_token"][0, 1] > 0.99
    assert scores["previous_token"][0, 1] == scores["previous_token"].max()
    assert scores["induction"][0, 1] < 0.01                        # it looks back one, not L - 1


def test_k_composition_is_scale_free_and_zero_for_heads_that_read_other_directions():
    from gptlib.interp import k_composition
    model = small_model()
    base = k_composition(model)
    assert base.shape == (4, 4) and ((base > 0) & (base <= 1)).all()
    C, d = 32, 8
    with torch.no_grad():
        a, b = model.h[0].attn, model.h[1].attn
        a.c_proj.weight[:, :d] *= 3.0                          # a scale changes nothing
        torch.testing.assert_close(k_composition(model), base)
        # head 0 of layer 0 writes only into channels 0..3; head 2 of layer 1 keys read only
        # channels 4..: no K-composition between them
        a.c_proj.weight[4:, :d] = 0.0
        b.c_attn.weight[C + 2 * d:C + 3 * d, :4] = 0.0
        assert k_composition(model)[0, 2] < 1e-6
        # ... while a layer-1 head whose keys read exactly those channels composes strongly
        b.c_attn.weight[C + 3 * d:C + 4 * d, 4:] = 0.0
        assert k_composition(model)[0, 3] > 2 * base[0, 3]
    with pytest.raises(ValueError, match="src_layer < dst_layer"):
        k_composition(model, 1, 1)


@pytest.mark.parametrize("parts", ["q", "k", "v", "qk", "qkv"])
def test_input_removal_is_the_hand_computed_two_stream_attention(parts):
    """Layer 1's q, k, v each from the intact stream or from the stream without head (0, 1),
    recomputed by hand from the weights, give the function's logits."""
    model = small_model()
    with torch.no_grad():                  # sharper attention than at initialisation, so that
        for blk in model.h:                # queries and keys change the logits measurably
            blk.attn.c_attn.weight.mul_(4.0)
    idx = torch.randint(11, (2, 16), generator=torch.Generator().manual_seed(4))
    x0 = model.wte(idx) + model.wpe(torch.arange(16))
    b0, b1 = model.h
    x1 = x0 + b0.attn(b0.ln_1(x0), causal=True)
    with ablate_heads(model, [(0, 1)]):
        x1_without = x0 + b0.attn(b0.ln_1(x0), causal=True)
    a = b1.attn
    intact, without = (a.c_attn(b1.ln_1(x)).split(a.n_embd, dim=2) for x in (x1, x1_without))
    q, k, v = (w if name in parts else i for name, i, w in zip("qkv", intact, without))
    B, T, C = q.shape
    q, k, v = (t.view(B, T, a.n_heads, a.head_dim).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2) / math.sqrt(a.head_dim)).masked_fill(
        ~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
    x2 = x1 + a.c_proj(y)
    expected = model.lm_head(model.ln_f(x2))
    got = logits_with_input_removed(model, idx, [(0, 1)], 1, parts)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, model(idx)[0], atol=1e-4)       # the removal mattered
    torch.testing.assert_close(logits_with_input_removed(model, idx, [], 1, parts),
                               model(idx)[0])                      # nothing removed: intact
    assert not any(blk.attn._forward_pre_hooks or blk.attn.c_attn._forward_hooks
                   or blk.attn.c_proj._forward_pre_hooks for blk in model.h)   # hooks gone


@pytest.mark.parametrize("heads, layer, parts, message", [
    ([(0, 0)], 1, "x", "parts must name"), ([(0, 0)], 1, "kk", "parts must name"),
    ([(0, 0)], 0, "k", "later layer"), ([(1, 0)], 1, "k", "layers before 1"),
    ([(0, 9)], 1, "k", "no head"),
])
def test_input_removal_rejects_bad_arguments(heads, layer, parts, message):
    idx = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=message):
        logits_with_input_removed(small_model(), idx, heads, layer, parts)
