"""Tests for gptlib.positional: the permutation problem and each encoding's defining property."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.attention import MultiHeadAttention
from gptlib.block import MLP
from gptlib.normalization import LayerNorm
from gptlib.positional import (POS_ENCODINGS, ROPE_LAYOUTS, LearnedPositional, OneHotPositional,
                               RotaryEmbedding, SinusoidalPositional, alibi_bias, alibi_slopes,
                               build_positional, rope_permutation, sinusoidal_shift_matrix,
                               sinusoidal_table)

SETTINGS = settings(max_examples=25, deadline=None)


def _bidirectional_layer(x, attn, mlp, ln_1, ln_2, rope=None):
    """A pre-LN transformer layer without a causal mask (so order could only come from positions)."""
    x = x + attn(ln_1(x), rope=rope, causal=False)
    return x + mlp(ln_2(x))


@SETTINGS
@given(t=st.integers(2, 10), seed=st.integers(0, 2**16), data=st.data())
def test_without_positions_attention_is_permutation_equivariant(t, seed, data):
    torch.manual_seed(seed)
    c, heads = 16, 4
    parts = MultiHeadAttention(c, heads).double(), MLP(c).double(), LayerNorm(c).double(), LayerNorm(c).double()
    perm = torch.tensor(data.draw(st.permutations(range(t))))
    x = torch.randn(2, t, c, dtype=torch.float64)
    none = build_positional("none", block_size=16, n_embd=c, n_heads=heads)
    y = _bidirectional_layer(none.embed(x), *parts)
    y_perm = _bidirectional_layer(none.embed(x[:, perm]), *parts)
    torch.testing.assert_close(y_perm, y[:, perm])        # permute in = permute out: order is lost


@pytest.mark.parametrize("kind", ["learned", "sinusoidal", "onehot", "rope"])
def test_positions_break_permutation_equivariance(kind):
    torch.manual_seed(0)
    c, heads, t = 16, 4, 6
    parts = MultiHeadAttention(c, heads).double(), MLP(c).double(), LayerNorm(c).double(), LayerNorm(c).double()
    pos = build_positional(kind, block_size=16, n_embd=c, n_heads=heads).double()
    perm = torch.tensor([1, 0, 2, 3, 5, 4])
    x = torch.randn(1, t, c, dtype=torch.float64)
    y = _bidirectional_layer(pos.embed(x, 0), *parts, rope=pos.rope)
    y_perm = _bidirectional_layer(pos.embed(x[:, perm], 0), *parts, rope=pos.rope)
    assert not torch.allclose(y_perm, y[:, perm], atol=1e-4)


@SETTINGS
@given(n=st.integers(1, 40), dim=st.integers(1, 33))
def test_sinusoidal_table_matches_formula(n, dim):
    table = sinusoidal_table(n, dim)
    assert table.shape == (n, dim)
    expected = torch.tensor([[math.sin(t / 10000 ** (j / dim)) if j % 2 == 0
                              else math.cos(t / 10000 ** ((j - 1) / dim)) for j in range(dim)]
                             for t in range(n)])
    torch.testing.assert_close(table, expected, rtol=0, atol=1e-6)


@SETTINGS
@given(k=st.integers(-50, 50), half_dim=st.integers(1, 32))
def test_sinusoidal_shift_is_a_fixed_linear_map(k, half_dim):
    dim = 2 * half_dim
    table = sinusoidal_table(200, dim).double()
    m = sinusoidal_shift_matrix(k, dim).double()
    lo, hi = max(0, -k), 200 - max(0, k)
    # one matrix for every position t: PE(t + k) = PE(t) @ M_k^T
    torch.testing.assert_close(table[lo:hi] @ m.T, table[lo + k:hi + k], rtol=0, atol=1e-5)
    torch.testing.assert_close(m @ m.T, torch.eye(dim, dtype=torch.float64), rtol=0, atol=1e-6)


def test_shift_matrix_needs_even_dim():
    with pytest.raises(ValueError, match="even dim"):
        sinusoidal_shift_matrix(1, 7)


def test_sinusoidal_module_has_no_parameters_and_any_length():
    enc = SinusoidalPositional(8, max_len=16)
    assert sum(p.numel() for p in enc.parameters()) == 0
    assert enc.state_dict() == {}                          # nothing to save: it is a formula
    x = torch.zeros(1, 10, 8)
    torch.testing.assert_close(enc.embed(x, offset=30)[0], sinusoidal_table(40, 8)[30:])
    torch.testing.assert_close(enc.embed(x, offset=3)[0], sinusoidal_table(13, 8)[3:])


def _rope_at(rope, x, position):
    """x (..., d) rotated as if it sat at ``position``."""
    return rope(x[None, None, None], x[None, None, None], position)[0][0, 0, 0]


@SETTINGS
@given(half=st.integers(1, 16), m=st.integers(0, 500), n=st.integers(0, 500),
       shift=st.integers(0, 500), seed=st.integers(0, 2**16),
       layout=st.sampled_from(ROPE_LAYOUTS), scale=st.sampled_from([1.0, 0.25, 3.0]))
def test_rope_preserves_norms_and_scores_depend_only_on_offset(half, m, n, shift, seed, layout,
                                                               scale):
    g = torch.Generator().manual_seed(seed)
    d = 2 * half
    rope = RotaryEmbedding(d, layout=layout, scale=scale)
    q, k = torch.randn(2, d, generator=g, dtype=torch.float64)
    qm, kn = _rope_at(rope, q, m), _rope_at(rope, k, n)
    torch.testing.assert_close(qm.norm(), q.norm())
    torch.testing.assert_close(kn.norm(), k.norm())
    score = qm @ kn
    shifted = _rope_at(rope, q, m + shift) @ _rope_at(rope, k, n + shift)
    torch.testing.assert_close(shifted, score, rtol=1e-9, atol=1e-9)


def test_rope_scores_do_change_with_relative_offset():
    torch.manual_seed(0)
    rope = RotaryEmbedding(8)
    q, k = torch.randn(2, 8, dtype=torch.float64)
    scores = [_rope_at(rope, q, 5) @ _rope_at(rope, k, 5 - d) for d in range(4)]
    assert len({round(s.item(), 6) for s in scores}) == 4


def test_rope_rotates_pairs_by_position_times_frequency():
    rope = RotaryEmbedding(4, base=100.0)                 # theta = (1, 1/10)
    x = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]] * 3]], dtype=torch.float64)   # (1, 1, 3, 4)
    q, _ = rope(x, x, 2)                                  # positions 2, 3, 4
    for i, t in enumerate((2, 3, 4)):
        expected = torch.tensor([math.cos(t), math.sin(t), math.cos(t / 10), math.sin(t / 10)],
                                dtype=torch.float64)
        torch.testing.assert_close(q[0, 0, i], expected)
    # a sequence at an offset equals the same vectors rotated one at a time
    torch.testing.assert_close(q[0, 0, 1], _rope_at(rope, x[0, 0, 1], 3))


def test_rope_half_layout_pairs_feature_i_with_feature_i_plus_half():
    rope = RotaryEmbedding(4, base=100.0, layout="half")   # theta = (1, 1/10)
    x = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]] * 3]], dtype=torch.float64)   # pairs (x0, x2), (x1, x3)
    q, _ = rope(x, x, 2)                                  # positions 2, 3, 4
    for i, t in enumerate((2, 3, 4)):
        expected = torch.tensor([math.cos(t), math.cos(t / 10), math.sin(t), math.sin(t / 10)],
                                dtype=torch.float64)
        torch.testing.assert_close(q[0, 0, i], expected)


@SETTINGS
@given(half=st.integers(1, 16), t=st.integers(1, 9), offset=st.integers(0, 1000),
       seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 0.5, 0.125]))
def test_rope_half_layout_is_the_interleaved_one_with_features_permuted(half, t, offset, seed,
                                                                        scale):
    d = 2 * half
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 2, 3, t, d, generator=g, dtype=torch.float64)
    p = rope_permutation(d)
    assert sorted(p.tolist()) == list(range(d))           # a permutation of the features
    inter = RotaryEmbedding(d, scale=scale)(q, k, offset)
    halves = RotaryEmbedding(d, layout="half", scale=scale)(q[..., p], k[..., p], offset)
    for a, b in zip(inter, halves):
        torch.testing.assert_close(b, a[..., p])
    # so the attention scores are the same in both layouts
    torch.testing.assert_close(halves[0] @ halves[1].transpose(-1, -2),
                               inter[0] @ inter[1].transpose(-1, -2))
    if d > 2:                      # ... and differ without the permutation (at position >= 1)
        plain = RotaryEmbedding(d, layout="half", scale=scale)(q, k, offset + 1)
        moved = RotaryEmbedding(d, scale=scale)(q, k, offset + 1)
        assert not torch.allclose(plain[0], moved[0], atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_rope_half_layout_matches_hugging_face_llama(scale):
    """An independent implementation: transformers' LLaMA rotary embedding (``rotate_half``),
    with its linear position scaling (factor = 1 / scale), built from a config (no download)."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
    rope_parameters = {"rope_type": "default" if scale == 1.0 else "linear", "rope_theta": 10000.0}
    if scale != 1.0:
        rope_parameters["factor"] = 1 / scale
    cfg = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, head_dim=16,
                                   rope_parameters=rope_parameters)
    torch.manual_seed(0)
    q, k = torch.randn(2, 2, 4, 9, 16)                    # (B, H, T, d)
    positions = torch.arange(30, 39).expand(2, -1)
    cos, sin = LlamaRotaryEmbedding(cfg)(q, positions)
    want = apply_rotary_pos_emb(q, k, cos, sin)
    got = RotaryEmbedding(16, layout="half", scale=scale)(q, k, 30)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    inter = RotaryEmbedding(16, scale=scale)(q, k, 30)     # the default layout is not HF's
    assert not torch.allclose(inter[0], want[0], atol=1e-3)


def test_rope_scale_multiplies_the_positions():
    """Position interpolation (Chen et al. 2023): with scale s, position m is rotated as m * s."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 8, dtype=torch.float64)
    for layout in ROPE_LAYOUTS:
        squeezed = RotaryEmbedding(8, layout=layout, scale=0.25)(x, x, 4)[0]   # positions 4..9
        plain = RotaryEmbedding(8, layout=layout)
        for i in range(6):
            expected = plain(x[:, :, i:i + 1], x[:, :, i:i + 1],
                             positions=torch.tensor([[(4 + i) * 0.25]]))[0]
            torch.testing.assert_close(squeezed[:, :, i:i + 1], expected)
    # per-row positions are scaled too
    pos = torch.tensor([[0, 4, 8, 12, 16, 20]])
    torch.testing.assert_close(RotaryEmbedding(8, scale=0.25)(x, x, positions=pos)[0],
                               RotaryEmbedding(8)(x, x, positions=pos // 4)[0])


def test_rope_rejects_bad_layout_or_scale():
    with pytest.raises(ValueError, match=r"unknown RoPE layout 'halves'; choose 'interleaved' "
                                         r"\(pairs \(2i, 2i\+1\).*'half' \(pairs \(i, i \+ d/2\)"):
        RotaryEmbedding(8, layout="halves")
    with pytest.raises(ValueError, match="scale must be > 0"):
        RotaryEmbedding(8, scale=0.0)
    with pytest.raises(TypeError, match="scale must be a number"):
        RotaryEmbedding(8, scale="1/4")
    with pytest.raises(ValueError, match="head_dim must be even"):
        rope_permutation(7)
    assert "layout='half', scale=0.5" in repr(RotaryEmbedding(8, layout="half", scale=0.5))


def test_rope_rejects_odd_or_wrong_head_dim():
    with pytest.raises(ValueError, match="head_dim must be even"):
        RotaryEmbedding(5)
    with pytest.raises(ValueError, match="head_dim=8"):
        RotaryEmbedding(8)(torch.randn(1, 1, 2, 6), torch.randn(1, 1, 2, 6))


def test_alibi_slopes_match_the_paper():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([1 / 2 ** i for i in range(1, 9)]))
    torch.testing.assert_close(alibi_slopes(16), torch.tensor([2 ** (-0.5 * i) for i in range(1, 17)]))
    # not a power of two: 8 slopes of n=8, then every other slope of n=16
    expected = [1 / 2 ** i for i in range(1, 9)] + [2 ** (-0.5 * i) for i in (1, 3, 5, 7)]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected))
    assert alibi_slopes(1).tolist() == [2 ** -8]


def test_alibi_bias_is_minus_slope_times_distance():
    bias = alibi_bias(4, 3, 5)                            # queries = the last 3 of 5 positions
    assert bias.shape == (1, 4, 3, 5)
    slopes = alibi_slopes(4)
    for h in range(4):
        for i in range(3):
            for j in range(5):
                assert bias[0, h, i, j].item() == pytest.approx(-slopes[h].item() * abs(i + 2 - j))
    assert torch.equal(alibi_bias(4, 1, 5, offset=4), bias[:, :, 2:])
    assert torch.all(bias[0, :, -1, -1] == 0)             # a token's bias to itself is zero


def test_onehot_times_w_is_a_learned_table():
    torch.manual_seed(0)
    block_size, c = 8, 6
    onehot, learned = OneHotPositional(block_size, c), LearnedPositional(block_size, c)
    learned.wpe.weight.data.copy_(onehot.proj.weight.data.T)     # the same weights
    x = torch.randn(2, 5, c)
    torch.testing.assert_close(onehot.embed(x, 2), learned.embed(x, 2), rtol=0, atol=1e-7)
    # identity-initialised projection: position t adds exactly the t-th unit vector
    square = OneHotPositional(block_size, block_size)
    torch.nn.init.eye_(square.proj.weight)
    zeros = torch.zeros(1, block_size, block_size)
    torch.testing.assert_close(square.embed(zeros, 0)[0], torch.eye(block_size))
    table = LearnedPositional(block_size, block_size)
    torch.nn.init.eye_(table.wpe.weight)
    torch.testing.assert_close(square.embed(zeros, 0), table.embed(zeros, 0))


def test_build_positional_interface():
    torch.manual_seed(0)
    c, heads = 16, 4
    x = torch.randn(2, 5, c)
    for kind in POS_ENCODINGS:
        enc = build_positional(kind, block_size=8, n_embd=c, n_heads=heads)
        assert enc.kind == kind
        added = not torch.equal(enc.embed(x, 0), x)
        assert added == (kind in ("onehot", "learned", "sinusoidal")), kind
        assert (enc.rope is not None) == (kind == "rope"), kind
        bias = enc.attn_bias(5, 5, 0, None)
        assert (bias is not None) == (kind == "alibi"), kind
    assert isinstance(build_positional("learned", block_size=8, n_embd=c, n_heads=heads).wpe, torch.nn.Embedding)


def test_unknown_encoding_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown positional encoding 'xpos'.*'none', 'onehot', "
                                         r"'learned', 'sinusoidal', 'rope', 'alibi'"):
        build_positional("xpos", block_size=8, n_embd=16, n_heads=4)


@pytest.mark.parametrize("kind", ["learned", "onehot"])
def test_too_long_for_a_table_raises_clearly(kind):
    enc = build_positional(kind, block_size=8, n_embd=16, n_heads=4)
    enc.embed(torch.zeros(1, 8, 16), 0)                  # exactly block_size is fine
    with pytest.raises(ValueError, match=rf"{kind} positional encoding has only block_size=8 positions; "
                                         r"this encoding cannot represent position 9"):
        enc.embed(torch.zeros(1, 10, 16), 0)
    with pytest.raises(ValueError, match="cannot represent position 8"):
        enc.embed(torch.zeros(1, 1, 16), 8)              # one token, but at position 8 (a KV cache)


@pytest.mark.parametrize("kind", ["learned", "onehot"])
def test_crop_keeps_the_first_positions(kind):
    torch.manual_seed(0)
    enc = build_positional(kind, block_size=8, n_embd=4, n_heads=2)
    x = torch.zeros(1, 3, 4)
    before = enc.embed(x, 0)
    enc.crop(3)
    torch.testing.assert_close(enc.embed(x, 0), before)
    assert sum(p.numel() for p in enc.parameters()) == 3 * 4
    with pytest.raises(ValueError, match="block_size=3"):
        enc.embed(torch.zeros(1, 4, 4), 0)


def test_onehot_adds_column_t_of_the_projection_at_position_t():
    """A slow reference, one position at a time: the one-hot vector of position t picks column t
    of the projection W (C, block_size), which is added to the token at t."""
    torch.manual_seed(0)
    enc = OneHotPositional(8, 4)
    x = torch.randn(2, 5, 4)
    w = enc.proj.weight.detach()
    for offset in (0, 3):
        out = enc.embed(x, offset)
        for t in range(5):
            torch.testing.assert_close(out[:, t], x[:, t] + w[:, offset + t])
