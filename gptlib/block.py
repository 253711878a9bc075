"""Chapter 4: the transformer block — attention and a position-wise MLP, each in a residual.

A transformer block is two sublayers, each wrapped in a residual connection
(He et al. 2016) and a normalisation (``gptlib.normalization``)::

    pre-LN  (GPT-2, Radford et al. 2019):   x = x + attn(ln_1(x));   x = x + mlp(ln_2(x))
    post-LN (Vaswani et al. 2017):          x = ln_1(x + attn(x));   x = ln_2(x + mlp(x))

Every piece is written out here; the tests check ``gelu_tanh`` against
``F.gelu(approximate="tanh")`` and the block against a hand-written composition.
Shapes: ``B`` batch, ``T`` sequence length, ``C`` model width.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gptlib.attention import MultiHeadAttention
from gptlib.normalization import NORMS, build_norm, check_features

__all__ = ["gelu_tanh", "GELU", "MLP", "Block", "NORM_POSITIONS"]

NORM_POSITIONS = ("pre", "post")


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation (Hendrycks & Gimpel 2016, eq. in sec. 2), as GPT-2 uses it.

    ``GELU(x) = x * Phi(x)`` weights each input by the probability that a standard normal is
    below it; GPT-2 (and Hugging Face's ``gelu_new``) use the approximation::

        0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))
    """
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class GELU(nn.Module):
    """``gelu_tanh`` as a module. x: any shape -> same shape. ``fast=True``: PyTorch's fused
    ``F.gelu(x, approximate="tanh")``, the same formula in one kernel."""

    def __init__(self, fast: bool = False):
        super().__init__()
        self.fast = fast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh") if self.fast else gelu_tanh(x)


class MLP(nn.Module):
    """The position-wise feed-forward network (Vaswani et al. 2017, eq. 2; GPT-2 names).

    Each token, separately: widen ``C -> expansion*C`` (``c_fc``), GELU, narrow back
    (``c_proj``), dropout. x: (B, T, C) -> (B, T, C). ``fast=True``: the fused GELU kernel.
    """

    def __init__(self, n_embd: int, *, bias: bool = True, dropout: float = 0.0, expansion: int = 4,
                 fast: bool = False):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, expansion * n_embd, bias=bias)
        self.gelu = GELU(fast=fast)
        self.c_proj = nn.Linear(expansion * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_features(x, self.c_fc.in_features, "MLP")
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One transformer decoder block: causal self-attention and an MLP, each in a residual.

    ``norm_position="pre"`` (GPT-2)::          ``norm_position="post"`` (original Transformer)::

        x = x + attn(ln_1(x))                      x = ln_1(x + attn(x))
        x = x + mlp(ln_2(x))                       x = ln_2(x + mlp(x))

    ``residual=False`` drops the two skip connections (``x + ...``) and keeps everything else;
    it exists for the gradient-flow experiment of chapter 4, not for training.

    ``causal=False`` drops the causal mask, so every position attends to every key (a padding
    ``mask`` and ``bias`` still apply). A language model must not do this — it would read the
    tokens it is asked to predict; the switch exists for chapter 3's no-mask experiment.

    forward: x (B, T, C) -> (B, T, C). Attention is causal unless ``causal=False``; ``mask`` (bool, True = may
    attend, broadcastable to (B, H, T, T_k), e.g. a padding mask (B, 1, 1, T_k)) is combined with
    the causal mask; ``bias`` (float, e.g. ALiBi) is added to the scores; ``rope`` rotates q and k;
    ``kv_cache`` (a ``gptlib.attention.KVCache``) holds this layer's earlier keys and values.

    ``mlp=False`` builds an attention-only block (Elhage et al. 2021): no MLP and no ``ln_2``, so
    ``x = x + attn(ln_1(x))`` (pre-LN) or ``x = ln_1(x + attn(x))`` (post-LN).
    ``fast=True`` runs every piece on PyTorch's fused kernels (``F.layer_norm``/``F.rms_norm``,
    ``F.gelu``, ``F.scaled_dot_product_attention``; it implies ``fused=True``): the same function
    as the written-out teaching path, faster (``tests/test_fast_path.py``).
    """

    def __init__(self, n_embd: int, n_heads: int, *, dropout: float = 0.0, bias: bool = True,
                 norm_position: str = "pre", norm: str = "layernorm", residual: bool = True,
                 fused: bool = False, eps: float = 1e-5, causal: bool = True,
                 mlp: bool = True, fast: bool = False):
        super().__init__()
        if norm_position not in NORM_POSITIONS:
            raise ValueError(f"unknown norm_position {norm_position!r}; choose one of {NORM_POSITIONS}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be True or False, got {causal!r}")
        self.n_embd, self.norm_position, self.residual = n_embd, norm_position, residual
        self.causal = causal
        self.ln_1 = build_norm(norm, n_embd, eps, bias=bias, fast=fast)
        self.attn = MultiHeadAttention(n_embd, n_heads, bias=bias, dropout=dropout,
                                       fused=fused or fast)
        self.ln_2 = build_norm(norm, n_embd, eps, bias=bias, fast=fast) if mlp else None
        self.mlp = MLP(n_embd, bias=bias, dropout=dropout, fast=fast) if mlp else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                bias: torch.Tensor | None = None, rope=None, kv_cache=None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"Block expects x of shape (B, T, C), got {shape}")
        check_features(x, self.n_embd, "Block")

        def attn(h):
            return self.attn(h, mask=mask, bias=bias, rope=rope, kv_cache=kv_cache,
                             causal=self.causal)

        r = self.residual
        if self.norm_position == "pre":
            h = attn(self.ln_1(x))
            x = x + h if r else h
            if self.mlp is not None:
                h = self.mlp(self.ln_2(x))
                x = x + h if r else h
        else:
            h = attn(x)
            x = self.ln_1(x + h if r else h)
            if self.mlp is not None:
                h = self.mlp(x)
                x = self.ln_2(x + h if r else h)
        return x
