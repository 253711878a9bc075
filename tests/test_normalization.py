"""Tests for gptlib.normalization (the norms against PyTorch's) and gptlib.block (GELU, MLP, the block)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.block import GELU, MLP, Block, gelu_tanh
from gptlib.normalization import LayerNorm, RMSNorm, build_norm

SETTINGS = settings(max_examples=25, deadline=None)

shapes = st.lists(st.integers(1, 5), min_size=0, max_size=2).flatmap(
    lambda lead: st.integers(1, 16).map(lambda c: (*lead, c)))


def _twins(mine, theirs, shape, seed):
    """Same random input and output-gradient through both modules; return both (y, dx, dparams)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 1
    grad_out = torch.randn(shape, generator=g, dtype=torch.float64)
    results = []
    for module in (mine, theirs):
        xi = x.clone().requires_grad_(True)
        y = module(xi)
        y.backward(grad_out)
        results.append((y.detach(), xi.grad, [p.grad for p in module.parameters()]))
    return results


def _random_affine(*modules, seed):
    g = torch.Generator().manual_seed(seed)
    for name in ("weight", "bias"):
        params = [getattr(m, name) for m in modules if getattr(m, name, None) is not None]
        if params:
            value = torch.randn(params[0].shape, generator=g, dtype=torch.float64)
            for p in params:
                p.data.copy_(value)


@SETTINGS
@given(shape=shapes, affine=st.booleans(), bias=st.booleans(),
       eps=st.sampled_from([1e-5, 1e-2]), seed=st.integers(0, 2**16))
def test_layernorm_equals_torch(shape, affine, bias, eps, seed):
    c = shape[-1]
    mine = LayerNorm(c, eps, elementwise_affine=affine, bias=bias).double()
    theirs = torch.nn.LayerNorm(c, eps, elementwise_affine=affine, bias=bias).double()
    _random_affine(mine, theirs, seed=seed)
    (y1, dx1, dp1), (y2, dx2, dp2) = _twins(mine, theirs, shape, seed)
    torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dx1, dx2, rtol=1e-9, atol=1e-9)
    assert len(dp1) == len(dp2) == (affine + (affine and bias))
    for a, b in zip(dp1, dp2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(shape=shapes, affine=st.booleans(), eps=st.sampled_from([None, 1e-6, 1e-2]),
       seed=st.integers(0, 2**16))
def test_rmsnorm_equals_torch(shape, affine, eps, seed):
    c = shape[-1]
    mine = RMSNorm(c, eps, elementwise_affine=affine).double()
    theirs = torch.nn.RMSNorm(c, eps, elementwise_affine=affine).double()
    _random_affine(mine, theirs, seed=seed)
    (y1, dx1, dp1), (y2, dx2, dp2) = _twins(mine, theirs, shape, seed)
    torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dx1, dx2, rtol=1e-9, atol=1e-9)
    assert len(dp1) == len(dp2) == int(affine)
    for a, b in zip(dp1, dp2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_layernorm_output_is_normalised_per_token():
    torch.manual_seed(0)
    x = torch.randn(4, 7, 32) * 5 + 3
    y = LayerNorm(32)(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(4, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(4, 7), atol=1e-3, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_layernorm_half_precision_matches_float32(dtype):
    torch.manual_seed(0)
    x = (torch.randn(3, 64) * 100 + 1000).to(dtype)   # large mean: naive half-precision stats fail
    y = LayerNorm(64).to(dtype)(x)
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), F.layer_norm(x.float(), (64,)), atol=2e-2, rtol=0)


@SETTINGS
@given(x=st.lists(st.floats(-10, 10), min_size=1, max_size=50))
def test_gelu_tanh_equals_torch(x):
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = gelu_tanh(x)
    torch.testing.assert_close(y, F.gelu(x, approximate="tanh"), rtol=1e-12, atol=1e-12)
    (g1,) = torch.autograd.grad(y.sum(), x)
    (g2,) = torch.autograd.grad(F.gelu(x, approximate="tanh").sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(GELU()(x), y)


def test_mlp_is_position_wise_with_gpt2_names_and_shapes():
    torch.manual_seed(0)
    mlp = MLP(16, expansion=4)
    assert mlp.c_fc.weight.shape == (64, 16) and mlp.c_proj.weight.shape == (16, 64)
    x = torch.randn(2, 5, 16)
    y = mlp(x)
    # an independent MLP from PyTorch's modules, with the same weights
    ref = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.GELU(approximate="tanh"),
                              torch.nn.Linear(64, 16))
    with torch.no_grad():
        for i, layer in ((0, mlp.c_fc), (2, mlp.c_proj)):
            ref[i].weight.copy_(layer.weight)
            ref[i].bias.copy_(layer.bias)
    torch.testing.assert_close(y, ref(x))
    # position-wise: each token on its own gives the same result
    torch.testing.assert_close(mlp(x[:, 3:4]), y[:, 3:4])
    assert sum(p.numel() for p in mlp.parameters()) == 16 * 64 + 64 + 64 * 16 + 16


def _zero_sublayer_outputs(block):
    for proj in (block.attn.c_proj, block.mlp.c_proj):
        torch.nn.init.zeros_(proj.weight)
        torch.nn.init.zeros_(proj.bias)


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_pre_ln_block_with_zero_sublayers_is_identity(norm):
    torch.manual_seed(0)
    block = Block(32, 4, norm=norm).eval()
    x = torch.randn(2, 9, 32)
    assert not torch.allclose(block(x), x)       # a normal block changes x ...
    _zero_sublayer_outputs(block)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)   # ... with zero sublayers it is x


def test_post_ln_block_with_zero_sublayers_is_two_layernorms():
    torch.manual_seed(0)
    block = Block(32, 4, norm_position="post").eval()
    _zero_sublayer_outputs(block)
    x = torch.randn(2, 9, 32)
    torch.testing.assert_close(block(x), F.layer_norm(F.layer_norm(x, (32,)), (32,)))


def torch_encoder_layer(block: Block, norm_first: bool) -> torch.nn.TransformerEncoderLayer:
    """PyTorch's own transformer layer with the block's weights: an independent implementation
    (nn.MultiheadAttention, its own residual and norm wiring) to compare Block against."""
    c = block.n_embd
    layer = torch.nn.TransformerEncoderLayer(
        c, block.attn.n_heads, dim_feedforward=4 * c, dropout=0.0, batch_first=True,
        norm_first=norm_first, layer_norm_eps=1e-5,
        activation=lambda t: F.gelu(t, approximate="tanh")).eval()
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(block.attn.c_attn.weight)   # q | k | v rows
        layer.self_attn.in_proj_bias.copy_(block.attn.c_attn.bias)
        layer.self_attn.out_proj.weight.copy_(block.attn.c_proj.weight)
        layer.self_attn.out_proj.bias.copy_(block.attn.c_proj.bias)
        for ours, theirs in ((block.mlp.c_fc, layer.linear1), (block.mlp.c_proj, layer.linear2),
                             (block.ln_1, layer.norm1), (block.ln_2, layer.norm2)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    return layer


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_block_equals_torch_transformer_encoder_layer_with_a_causal_mask(norm_position, fused):
    torch.manual_seed(0)
    block = Block(16, 2, norm_position=norm_position, fused=fused).eval()
    with torch.no_grad():
        for p in block.parameters():       # random affine norms and biases, so all of them matter
            p.normal_(std=0.3)
    layer = torch_encoder_layer(block, norm_first=norm_position == "pre")
    x = torch.randn(2, 6, 16)
    # torch's boolean attn_mask is True where attention is NOT allowed: the opposite of gptlib's
    causal = torch.nn.Transformer.generate_square_subsequent_mask(6)
    with torch.no_grad():
        torch.testing.assert_close(block(x), layer(x, src_mask=causal, is_causal=True),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_without_residuals_the_input_only_reaches_the_output_through_the_sublayers(norm_position):
    """residual=False: with the attention's output projection zeroed, nothing of x survives (every
    input gives the same output); with residuals the same block still passes x through."""
    torch.manual_seed(0)
    x1, x2 = torch.randn(2, 2, 6, 16)
    for residual in (True, False):
        block = Block(16, 2, norm_position=norm_position, residual=residual).eval()
        with torch.no_grad():
            block.attn.c_proj.weight.zero_()
            block.attn.c_proj.bias.normal_()
            same = torch.allclose(block(x1), block(x2))
        assert same == (not residual), residual


@SETTINGS
@given(t=st.integers(2, 12), data=st.data(), norm_position=st.sampled_from(["pre", "post"]),
       fused=st.booleans(), seed=st.integers(0, 2**16))
def test_block_is_causal(t, data, norm_position, fused, seed):
    torch.manual_seed(seed)
    block = Block(16, 4, norm_position=norm_position, fused=fused).eval()
    pos = data.draw(st.integers(0, t - 2))
    x = torch.randn(2, t, 16)
    x2 = x.clone()
    x2[:, pos + 1:] = torch.randn(2, t - pos - 1, 16)   # change every token after pos
    y, y2 = block(x), block(x2)
    torch.testing.assert_close(y[:, :pos + 1], y2[:, :pos + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(y[:, pos + 1:], y2[:, pos + 1:])


def test_block_padding_mask_is_combined_with_causal_mask():
    torch.manual_seed(0)
    block = Block(16, 2).eval()
    x = torch.randn(2, 5, 16)
    pad = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])[:, None, None, :]   # (B, 1, 1, T)
    y = block(x, mask=pad)
    torch.testing.assert_close(y[1, :3], block(x[1:2, :3])[0])   # real positions: as if alone
    torch.testing.assert_close(y[0], block(x[0:1])[0])


def test_block_kv_cache_matches_full_forward():
    from gptlib.attention import KVCache

    torch.manual_seed(0)
    block = Block(16, 2).eval()
    x = torch.randn(1, 7, 16)
    cache = KVCache()
    steps = [block(x[:, i:i + 1], kv_cache=cache) for i in range(7)]
    torch.testing.assert_close(torch.cat(steps, dim=1), block(x), rtol=0, atol=1e-5)
    assert cache.length == 7


def test_bad_inputs_raise_clear_errors():
    torch.manual_seed(0)
    block = Block(16, 2)
    with pytest.raises(ValueError, match=r"n_embd=16.*\(2, 3, 8\)"):
        block(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match=r"\(B, T, C\), got \(3, 16\)"):
        block(torch.randn(3, 16))
    with pytest.raises(TypeError, match="floating-point"):
        block(torch.ones(2, 3, 16, dtype=torch.long))
    with pytest.raises(ValueError, match=r"n_embd=8 features.*\(4, 5\)"):
        LayerNorm(8)(torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"n_embd=8 features"):
        RMSNorm(8)(torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"unknown norm_position 'middle'.*'pre', 'post'"):
        Block(16, 2, norm_position="middle")
    with pytest.raises(ValueError, match=r"unknown norm 'batchnorm'.*'layernorm', 'rmsnorm'"):
        Block(16, 2, norm="batchnorm")
    with pytest.raises(ValueError, match="unknown norm"):
        build_norm("groupnorm", 8)
    with pytest.raises(ValueError, match="not divisible"):
        Block(16, 3)


def test_block_parameter_count_by_hand():
    c = 24
    block = Block(c, 3)
    by_hand = (2 * c) + (c * 3 * c + 3 * c) + (c * c + c) + (2 * c) + (c * 4 * c + 4 * c) + (4 * c * c + c)
    assert by_hand == 12 * c * c + 13 * c
    assert sum(p.numel() for p in block.parameters()) == by_hand
    no_bias = Block(c, 3, bias=False)
    assert sum(p.numel() for p in no_bias.parameters()) == 12 * c * c + 2 * c


def test_gelu_tanh_differs_from_the_exact_gelu_by_under_5e_4():
    """Chapter 4 quotes this bound: the tanh approximation against erf's x * Phi(x)."""
    z = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    error = (gelu_tanh(z) - F.gelu(z)).abs()
    assert 4e-4 < error.max().item() < 5e-4
    assert error[z.abs() > 6].max().item() < 1e-6        # both tend to x and to 0 in the tails
