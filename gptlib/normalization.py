"""Chapter 4: the normalisations a transformer block uses (the block is ``gptlib.block``).

``LayerNorm`` (Ba, Kiros & Hinton 2016) and ``RMSNorm`` (Zhang & Sennrich 2019), each written
out; the tests check them against ``torch.nn.LayerNorm`` and ``torch.nn.RMSNorm``.
``build_norm("none", ...)`` gives the identity, for the loss ladder's blocks without a norm.
Shapes: ``B`` batch, ``T`` sequence length, ``C`` model width.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["LayerNorm", "RMSNorm", "build_norm", "check_features", "NORMS"]

NORMS = ("layernorm", "rmsnorm", "none")


def check_features(x: torch.Tensor, n_embd: int, who: str) -> None:
    """Raise a clear error unless ``x`` is a floating tensor whose last dimension is ``n_embd``."""
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{who} needs a floating-point tensor, got {what}")
    if x.ndim == 0 or x.shape[-1] != n_embd:
        raise ValueError(f"{who} was built for n_embd={n_embd} features in the last dimension, "
                         f"got an input of shape {tuple(x.shape)}")


class LayerNorm(nn.Module):
    """Layer normalisation (Ba, Kiros & Hinton 2016), written out.

    For every token separately (over the last dimension, ``C`` features)::

        y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias

    with the *biased* variance (divide by ``C``, as ``torch.nn.LayerNorm`` does). Unlike
    BatchNorm, the statistics never mix tokens or sequences, so it behaves the same in training
    and inference and for any batch size or length.

    x: (..., C) -> (..., C). Half-precision inputs are normalised in float32 and cast back.
    ``fast=True`` computes the same with PyTorch's fused kernel ``F.layer_norm`` (one pass over
    the data instead of one per line below; ``tests/test_fast_path.py`` checks they agree).
    """

    def __init__(self, n_embd: int, eps: float = 1e-5, *, elementwise_affine: bool = True,
                 bias: bool = True, fast: bool = False):
        super().__init__()
        self.n_embd, self.eps, self.fast = n_embd, eps, fast
        self.weight = nn.Parameter(torch.ones(n_embd)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(n_embd)) if elementwise_affine and bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_features(x, self.n_embd, "LayerNorm")
        if self.fast:
            return F.layer_norm(x, (self.n_embd,), self.weight, self.bias, self.eps)
        h = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        centred = h - h.mean(dim=-1, keepdim=True)                    # (..., C)
        var = (centred * centred).mean(dim=-1, keepdim=True)          # (..., 1), biased
        y = (centred * torch.rsqrt(var + self.eps)).to(x.dtype)       # (..., C)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return (f"{self.n_embd}, eps={self.eps}, affine={self.weight is not None}, "
                f"bias={self.bias is not None}")


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang & Sennrich 2019): LayerNorm without the centring.

    ``y = x / sqrt(mean(x**2) + eps) * weight``, over the last dimension. No mean, no bias:
    cheaper, and as good in practice (used by T5, LLaMA). ``eps=None`` uses
    ``torch.finfo(x.dtype).eps``, as ``torch.nn.RMSNorm`` does.

    x: (..., C) -> (..., C). ``fast=True``: PyTorch's fused ``F.rms_norm``, the same function.
    """

    def __init__(self, n_embd: int, eps: float | None = None, *, elementwise_affine: bool = True,
                 fast: bool = False):
        super().__init__()
        self.n_embd, self.eps, self.fast = n_embd, eps, fast
        self.weight = nn.Parameter(torch.ones(n_embd)) if elementwise_affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_features(x, self.n_embd, "RMSNorm")
        if self.fast:
            return F.rms_norm(x, (self.n_embd,), self.weight, self.eps)
        eps = torch.finfo(x.dtype).eps if self.eps is None else self.eps
        h = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        y = (h * torch.rsqrt((h * h).mean(dim=-1, keepdim=True) + eps)).to(x.dtype)
        return y * self.weight if self.weight is not None else y

    def extra_repr(self) -> str:
        return f"{self.n_embd}, eps={self.eps}, affine={self.weight is not None}"


def build_norm(norm: str, n_embd: int, eps: float = 1e-5, *, bias: bool = True,
               fast: bool = False) -> nn.Module:
    """``"layernorm"`` -> ``LayerNorm(n_embd, eps, bias=bias)``; ``"rmsnorm"`` ->
    ``RMSNorm(n_embd, eps)``; ``"none"`` -> ``nn.Identity()`` (no normalisation at all)."""
    if norm == "layernorm":
        return LayerNorm(n_embd, eps, bias=bias, fast=fast)
    if norm == "rmsnorm":
        return RMSNorm(n_embd, eps, fast=fast)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
