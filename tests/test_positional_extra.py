"""More tests for chapter 5's claims about positions, on the full GPT and on the encodings' geometry
(the per-encoding property tests are in test_positional.py)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.model import GPT, GPTConfig
from gptlib.positional import (POS_ENCODINGS, RotaryEmbedding, alibi_bias, rope_permutation,
                               sinusoidal_table)
from gptlib.viz import cosine_similarity_matrix, line_chart, position_explorer, value_strip

SETTINGS = settings(max_examples=20, deadline=None)


def gpt(pos_encoding, causal=False, n_layer=2, seed=0):
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=n_layer, n_head=4, n_embd=32,
                    pos_encoding=pos_encoding, causal=causal)
    return GPT(cfg).double().eval()


@SETTINGS
@given(t=st.integers(2, 12), seed=st.integers(0, 2**16), data=st.data())
def test_full_gpt_without_positions_or_mask_is_permutation_equivariant(t, seed, data):
    m = gpt("none", seed=seed % 3)
    idx = torch.randint(0, 50, (2, t), generator=torch.Generator().manual_seed(seed))
    perm = torch.tensor(data.draw(st.permutations(range(t))))
    torch.testing.assert_close(m(idx[:, perm])[0], m(idx)[0][:, perm])


@pytest.mark.parametrize("kind", [k for k in POS_ENCODINGS if k != "none"])
def test_every_encoding_breaks_permutation_equivariance_of_the_full_gpt(kind):
    m = gpt(kind)
    idx = torch.tensor([[3, 7, 11, 19, 23, 29]])
    perm = torch.tensor([5, 1, 2, 3, 4, 0])                 # swap the first and the last token
    assert not torch.allclose(m(idx[:, perm])[0], m(idx)[0][:, perm], atol=1e-6)


def test_causal_mask_alone_leaks_order_only_through_depth():
    """Without positions, one causal layer's last output is a function of the *set* of earlier
    tokens; a second layer reads earlier outputs, which saw different prefixes, so order leaks."""
    a = torch.tensor([[3, 7, 11, 19, 23]])
    b = a[:, [2, 0, 3, 1, 4]]                               # same tokens, same last token
    one, two = gpt("none", causal=True, n_layer=1), gpt("none", causal=True, n_layer=2)
    torch.testing.assert_close(one(a)[0][:, -1], one(b)[0][:, -1])
    assert not torch.allclose(two(a)[0][:, -1], two(b)[0][:, -1], atol=1e-6)


@SETTINGS
@given(n=st.integers(2, 60), half=st.integers(1, 32))
def test_sinusoidal_dot_products_depend_only_on_the_offset(n, half):
    d = 2 * half
    table = sinusoidal_table(n, d).double()
    gram = table @ table.T
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    offset = torch.arange(n, dtype=torch.float64)
    expected = torch.cos((offset[None, :] - offset[:, None])[..., None] * freq).sum(-1)
    torch.testing.assert_close(gram, expected, rtol=0, atol=1e-5)   # sum_i cos((t - s) w_i)
    assert torch.allclose(torch.diagonal(gram), torch.full((n,), d / 2, dtype=torch.float64),
                          atol=1e-5)                                 # every row has norm^2 d/2


def test_rope_score_of_a_unit_pattern_equals_the_sinusoidal_similarity():
    d, n = 16, 40
    u = torch.zeros(d, dtype=torch.float64)
    u[0::2] = 1.0                                            # (1, 0, 1, 0, ...): cos/sin at angle 0
    x = u.expand(1, 1, n, d)
    q, k = RotaryEmbedding(d)(x, x)
    table = sinusoidal_table(n, d).double()
    torch.testing.assert_close(q[0, 0] @ k[0, 0].T, table @ table.T, rtol=0, atol=1e-5)


def test_a_gpt_runs_with_either_rope_layout_once_its_q_and_k_weights_are_permuted():
    """Weights trained with one RoPE layout need it: a GPT switched to the half layout computes
    the same function only if the rows of W_Q and W_K (and their biases) are permuted within each
    head by ``rope_permutation`` -- what converting Meta's LLaMA checkpoints for Hugging Face's
    ``rotate_half`` does."""
    m = gpt("rope", causal=True)
    idx = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(0))
    want = m(idx)[0]
    c, heads = m.config.n_embd, m.config.n_head
    d = c // heads
    rows = torch.cat([h * d + rope_permutation(d) for h in range(heads)])   # (C,) per-head order
    order = torch.cat([rows, c + rows, torch.arange(2 * c, 3 * c)])         # q, k permuted; v kept
    m.pos = RotaryEmbedding(d, layout="half")
    assert not torch.allclose(m(idx)[0], want, atol=1e-4)    # the old weights, the wrong layout
    with torch.no_grad():
        for block in m.h:
            block.attn.c_attn.weight.copy_(block.attn.c_attn.weight[order])
            block.attn.c_attn.bias.copy_(block.attn.c_attn.bias[order])
    torch.testing.assert_close(m(idx)[0], want)


def test_alibi_turns_distance_into_an_exponential_decay_of_attention():
    bias = alibi_bias(4, 10, 10)[0]                          # (H, T, T), zero scores + bias
    causal = torch.ones(10, 10, dtype=torch.bool).tril()
    w = torch.softmax(bias.masked_fill(~causal, float("-inf")), dim=-1)
    slopes = torch.tensor([2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8])
    # each step back multiplies the weight by exp(-slope)
    torch.testing.assert_close(w[:, -1, :-1] / w[:, -1, 1:], torch.exp(-slopes)[:, None].expand(4, 9))


def test_viz_helpers_for_chapter_5():
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    torch.testing.assert_close(cosine_similarity_matrix(v),
                               torch.tensor([[1.0, 0, -1], [0, 1, 0], [-1, 0, 1]], dtype=torch.float64))
    strip = value_strip([1.0, -0.5, 0.0])
    assert strip.count("<td") == 3 and "rgba(200,60,40,1.000)" in strip and "rgba(40,80,170,0.500)" in strip
    svg = line_chart([0.0, 1.0, -1.0], marker=1)
    assert svg.startswith("<svg") and svg.count("<polyline") == 1 and ">1.00<" in svg and ">-1.00<" in svg
    with pytest.raises(ValueError, match="at least 2 values"):
        line_chart([1.0])
    sim = {"a": cosine_similarity_matrix(torch.eye(5)), "b": -torch.arange(5.0).expand(5, 5)}
    w = position_explorer(sim, {"a": torch.eye(5), "b": None}, {"a": "note a"}, position=2)
    html = w.children[1].value
    assert "note a" in html and "position 2" in html and html.count("<td") == 5
    w.children[0].children[0].value = "b"                    # the view follows the drop-down
    assert "adds nothing" in w.children[1].value and "<svg" in w.children[1].value
