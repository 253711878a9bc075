"""Scaled dot-product attention and multi-head self-attention.

Attention lets every position look things up in every other: a *query* is compared with all
*keys*, the similarities become weights by a softmax, and the output is the weighted average of the
*values*. In translation it began with Bahdanau et al. 2015 ("Neural Machine Translation by Jointly
Learning to Align and Translate"), whose additive score is ``additive_scores``. In the scaled
dot-product form of Vaswani et al. 2017 ("Attention Is All You Need", eq. 1)::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + bias, masked) V

Shapes: ``q: (B, H, T_q, d)``, ``k: (B, H, T_k, d)``, ``v: (B, H, T_k, d_v)``, weights
``(B, H, T_q, T_k)``, output ``(B, H, T_q, d_v)``: batch, heads, query / key positions, head width.

``scaled_dot_product_attention`` writes every step out (the teaching path); ``fused_attention``
computes the same through ``torch.nn.functional.scaled_dot_product_attention``, whose kernels
(FlashAttention, Dao et al. 2022) never store the ``T_q x T_k`` weights and, with ``is_causal``,
skip the masked half. ``MultiHeadAttention`` (Vaswani et al. 2017, section 3.2.2) is the GPT-2
layer built on them, with GPT-2's parameter names (``c_attn``, ``c_proj``); ``KVCache`` holds the
keys and values of past positions for incremental decoding.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptlib.masking import apply_mask, causal_mask, combine_masks
from gptlib.validate import check_bool, check_int, check_number

__all__ = ["scaled_dot_product_attention", "fused_attention", "additive_scores", "KVCache",
           "MultiHeadAttention", "split_heads", "merge_heads"]


def _check_qkv(q, k, v) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must be 4-D (B, H, T, d), got shape {tuple(t.shape)}; "
                             f"split (B, T, C) activations into heads with split_heads")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {t.dtype}; convert with .float()")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}; "
                        f"convert them with .to(q.dtype)")
    if q.shape[:2] != k.shape[:2] or k.shape[:2] != v.shape[:2]:
        raise ValueError(f"q, k, v must agree in batch and heads (B, H): got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k must have the same head dim d to be compared: "
                         f"got {q.size(-1)} and {k.size(-1)}")
    if k.size(-2) != v.size(-2):
        raise ValueError(f"k and v must have the same length T_k (one value per key): "
                         f"got {k.size(-2)} and {v.size(-2)}")


def _check_broadcast(name: str, t, shape: tuple[int, ...], *, bool_dtype: bool) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    if bool_dtype and t.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got {t.dtype}; "
                        f"use mask.bool(), or pass additive float scores as bias=")
    if not bool_dtype and not t.is_floating_point():
        raise TypeError(f"bias must be a floating tensor (added to the scores), got {t.dtype}")
    try:
        fits = t.ndim <= 4 and torch.broadcast_shapes(t.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"{name} of shape {tuple(t.shape)} does not broadcast to the scores "
                         f"(B, H, T_q, T_k) = {shape}; a (B, T_k) padding mask must be lifted to "
                         f"(B, 1, 1, T_k), e.g. with combine_masks(padding=...)")


def _check_all(q, k, v, mask, bias, dropout_p, scale=None) -> None:
    _check_qkv(q, k, v)
    check_number("dropout_p", dropout_p)                 # a number; its range is checked below
    if scale is not None:
        check_number("scale", scale)
    shape = (q.size(0), q.size(1), q.size(2), k.size(2))
    if mask is not None:
        _check_broadcast("mask", mask, shape, bool_dtype=True)
    if bias is not None:
        _check_broadcast("bias", bias, shape, bool_dtype=False)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")


def scaled_dot_product_attention(q, k, v, mask=None, bias=None, dropout_p=0.0, scale=None, *,
                                 return_weights=False, generator=None):
    """Attention written out step by step: ``softmax(q k^T * scale + bias, masked) v``.

    q: (B, H, T_q, d), k: (B, H, T_k, d), v: (B, H, T_k, d_v).
    mask: bool, broadcastable to (B, H, T_q, T_k), True = may attend (the opposite of
    ``torch.nn.MultiheadAttention``'s boolean ``attn_mask``, where True = masked). bias: float,
    broadcastable to (B, H, T_q, T_k), added to the scores (ALiBi). scale: default 1/sqrt(d),
    which keeps the scores' variance near 1 whatever d is, so the softmax does not saturate.
    dropout_p: dropout on the weights (drawn from ``generator`` if given). Returns out
    (B, H, T_q, d_v), or ``(out, weights)`` with the (B, H, T_q, T_k) weights before dropout.

    A query whose keys are all masked gets weights 0 and output 0 (not NaN).
    """
    _check_all(q, k, v, mask, bias, dropout_p, scale)
    if scale is None:
        scale = 1.0 / math.sqrt(q.size(-1))
    scores = q @ k.transpose(-2, -1)                 # (B, H, T_q, T_k): query-key similarity
    scores = scores * scale
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    if mask is not None:
        empty = ~mask.any(dim=-1, keepdim=True)      # rows that may attend to nothing
        scores = apply_mask(scores, mask | empty)    # -inf where masked (empty rows stay finite)
    weights = torch.softmax(scores, dim=-1)          # each row: a distribution over the keys
    if mask is not None and empty.any():             # (checked: this copy would double the memory)
        weights = weights.masked_fill(empty, 0.0)    # empty rows: defined as 0, not 0/0 = NaN
    dropped = weights
    if dropout_p > 0.0:
        keep = torch.rand(weights.shape, generator=generator, device=weights.device) >= dropout_p
        dropped = weights * keep / (1.0 - dropout_p)
    out = dropped @ v                                # (B, H, T_q, d_v): weighted sum of values
    return (out, weights) if return_weights else out


def fused_attention(q, k, v, mask=None, bias=None, dropout_p=0.0, scale=None, *, is_causal=False):
    """The same attention through ``torch.nn.functional.scaled_dot_product_attention``.

    Same shapes and semantics as ``scaled_dot_product_attention`` (bias and mask are combined into
    one float ``attn_mask``; fully masked rows give output 0). ``is_causal=True`` applies
    ``causal_mask(T_q, T_k)``: alone and with ``T_q == T_k`` it reaches the kernel as ``is_causal``,
    which can skip the masked half (FlashAttention, Dao et al. 2022); otherwise it is combined
    with ``mask`` as an explicit mask (queries are the last T_q positions, as with a KV cache).
    """
    _check_all(q, k, v, mask, bias, dropout_p, scale)
    t_q, t_k = q.size(-2), k.size(-2)
    if is_causal and (mask is not None or bias is not None or t_q != t_k):
        causal = causal_mask(t_q, t_k, device=q.device)
        mask = causal if mask is None else combine_masks(mask, causal)
        is_causal = False
    attn_mask, empty = None, None
    if mask is not None:
        empty = ~mask.any(dim=-1, keepdim=True)   # kernels disagree on empty rows: never send one
        attn_mask = mask | empty
    if bias is not None:
        bias = bias.to(q.dtype)
        attn_mask = bias if mask is None else torch.where(attn_mask, bias, float("-inf"))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p,
                                         is_causal=is_causal, scale=scale)
    return out if empty is None else out.masked_fill(empty, 0.0)


def additive_scores(q, k, w_q, w_k, v):
    """Bahdanau et al. 2015's *additive* attention scores, the form attention first took in
    translation (their eq. 6; the alignment model of appendix A.1.2)::

        score(q_i, k_j) = v . tanh(q_i W_q + k_j W_k)       (theirs: v_a^T tanh(W_a s + U_a h))

    A one-hidden-layer network scores each (query, key) pair, instead of a dot product.
    q: (..., T_q, d_q) queries (their decoder state s_{i-1}), k: (..., T_k, d_k) keys (their
    encoder annotations h_j), w_q: (d_q, d_a), w_k: (d_k, d_a), v: (d_a,). Queries and keys may
    differ in width; both are projected to the hidden width d_a. Returns the scores
    (..., T_q, T_k); a softmax over the last dim gives the weights (their alpha_ij).
    """
    for name, t, ndim in (("q", q, None), ("k", k, None), ("w_q", w_q, 2), ("w_k", w_k, 2),
                          ("v", v, 1)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
        if ndim is not None and t.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if q.ndim < 2 or k.ndim < 2:
        raise ValueError(f"q and k must be (..., T, d), got {tuple(q.shape)} and {tuple(k.shape)}")
    if w_q.size(0) != q.size(-1) or w_k.size(0) != k.size(-1):
        raise ValueError(f"w_q must be (d_q, d_a) = ({q.size(-1)}, d_a) and w_k (d_k, d_a) = "
                         f"({k.size(-1)}, d_a); got {tuple(w_q.shape)} and {tuple(w_k.shape)}")
    if not w_q.size(1) == w_k.size(1) == v.size(0):
        raise ValueError(f"w_q {tuple(w_q.shape)}, w_k {tuple(w_k.shape)} and v "
                         f"{tuple(v.shape)} must share the hidden width d_a")
    hq = (q @ w_q).unsqueeze(-2)                    # (..., T_q, 1, d_a)
    hk = (k @ w_k).unsqueeze(-3)                    # (..., 1, T_k, d_a)
    return torch.tanh(hq + hk) @ v                  # (..., T_q, T_k): one score per pair


class KVCache:
    """Keys and values ``(B, H, T_cached, d)`` of the positions already seen, for one attention layer.

    In incremental decoding each new token only needs its own query; its keys and values are
    appended here and attention runs over the whole cache. ``length`` is the number of cached
    positions (0 when empty), i.e. the position of the next token.

    The keys and values live in preallocated buffers ``(B, H, capacity, d)``: ``append`` writes
    the new rows in place and returns views of the first ``length`` rows, so a step copies only its
    own ``T_new`` rows, not the whole cache (``torch.cat`` would copy all ``T_cached``). The
    buffers are made for ``max_length`` positions (``GPT.new_kv_cache`` passes the model's context)
    or, without it, grow by doubling, which keeps the copying per token constant on average.
    ``k`` and ``v`` are the filled part (``None`` when empty); ``truncate(n)`` forgets all but the
    first ``n`` positions. The views share memory with the buffers: rows past a ``truncate`` or
    ``reset`` are overwritten by later appends.
    """

    def __init__(self, max_length: int | None = None):
        if max_length is not None and (not isinstance(max_length, int)
                                       or isinstance(max_length, bool) or max_length < 1):
            raise ValueError(f"max_length must be a positive int or None, got {max_length!r}")
        self.max_length = max_length
        self._k: torch.Tensor | None = None           # (B, H, capacity, d)
        self._v: torch.Tensor | None = None           # (B, H, capacity, d_v)
        self._length = 0

    @property
    def length(self) -> int:
        return self._length

    @property
    def k(self) -> torch.Tensor | None:
        """The cached keys ``(B, H, length, d)`` (a view of the buffer), or None when empty."""
        return None if self._length == 0 else self._k[:, :, :self._length]

    @property
    def v(self) -> torch.Tensor | None:
        """The cached values ``(B, H, length, d_v)`` (a view of the buffer), or None when empty."""
        return None if self._length == 0 else self._v[:, :, :self._length]

    def _grow(self, needed: int) -> None:
        """Make the buffers hold at least ``needed`` positions, keeping the cached ones."""
        capacity = 0 if self._k is None else self._k.size(2)
        if needed <= capacity:
            return
        new_capacity = max(needed, 2 * capacity) if self.max_length is None else \
            max(needed, self.max_length)
        k = self._k.new_empty(*self._k.shape[:2], new_capacity, self._k.size(3))
        v = self._v.new_empty(*self._v.shape[:2], new_capacity, self._v.size(3))
        k[:, :, :self._length] = self._k[:, :, :self._length]
        v[:, :, :self._length] = self._v[:, :, :self._length]
        self._k, self._v = k, v

    def append(self, k_new: torch.Tensor, v_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add ``k_new, v_new: (B, H, T_new, d)``; return all keys and values ``(B, H, T_cached, d)``."""
        for name, t in (("k_new", k_new), ("v_new", v_new)):
            if not isinstance(t, torch.Tensor) or t.ndim != 4:
                raise ValueError(f"{name} must be a 4-D (B, H, T, d) tensor, got "
                                 f"{getattr(t, 'shape', type(t).__name__)}")
        if k_new.shape[:3] != v_new.shape[:3]:
            raise ValueError(f"k_new {tuple(k_new.shape)} and v_new {tuple(v_new.shape)} must agree "
                             f"in (B, H, T)")
        n, t_new = self._length, k_new.size(2)
        if n == 0 and (self._k is None or self._k.shape[:2] != k_new.shape[:2]
                       or self._k.size(3) != k_new.size(3) or self._v.size(3) != v_new.size(3)
                       or self._k.dtype != k_new.dtype or self._k.device != k_new.device):
            capacity = t_new if self.max_length is None else max(t_new, self.max_length)
            self._k = k_new.new_empty(*k_new.shape[:2], capacity, k_new.size(3))
            self._v = v_new.new_empty(*v_new.shape[:2], capacity, v_new.size(3))
        elif k_new.shape[:2] != self._k.shape[:2] or k_new.size(-1) != self._k.size(-1) \
                or v_new.size(-1) != self._v.size(-1):
            raise ValueError(f"new keys {tuple(k_new.shape)} do not match the cache "
                             f"{tuple(self.k.shape)} in (B, H, d); call reset() for a new batch")
        self._grow(n + t_new)
        self._k[:, :, n:n + t_new] = k_new                      # only the new rows are copied
        self._v[:, :, n:n + t_new] = v_new
        self._length = n + t_new
        return self.k, self.v

    def truncate(self, length: int) -> None:
        """Keep only the first ``length`` cached positions (e.g. to re-run a step)."""
        if not isinstance(length, int) or isinstance(length, bool) \
                or not 0 <= length <= self._length:
            raise ValueError(f"length must be an int in 0..{self._length}, got {length!r}")
        self._length = length

    def reset(self) -> None:
        """Forget everything (start a new sequence); the buffers are kept for reuse."""
        self._length = 0


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, C) -> (B, H, T, C/H): head h gets channels h*d .. (h+1)*d - 1."""
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        raise ValueError(f"split_heads takes (B, T, C) activations, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
                         + ("; this looks already split into (B, H, T, d)"
                            if isinstance(x, torch.Tensor) and x.ndim == 4 else ""))
    check_int("n_heads", n_heads, 1)
    B, T, C = x.shape
    if C % n_heads:
        raise ValueError(f"width {C} is not divisible by n_heads={n_heads}")
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d) -> (B, T, H*d): the inverse of ``split_heads``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"merge_heads takes (B, H, T, d) heads, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    B, H, T, d = x.shape
    return x.transpose(1, 2).reshape(B, T, H * d)


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention as in GPT-2 (Vaswani et al. 2017, section 3.2.2).

    x: (B, T, C) with C = n_embd. One linear layer ``c_attn`` makes q|k|v (C -> 3C), they are split
    into ``n_heads`` heads of ``head_dim = C / n_heads``, each head attends on its own, the heads
    are merged and mixed by ``c_proj`` (C -> C). ``fused`` switches between the explicit teaching
    path and PyTorch's fused kernel; both compute the same function.
    """

    def __init__(self, n_embd: int, n_heads: int, *, bias: bool = True, dropout: float = 0.0,
                 fused: bool = False):
        super().__init__()
        check_int("n_embd", n_embd, 1)
        check_int("n_heads", n_heads, 1)
        check_bool("fused", fused)
        check_number("dropout", dropout)
        if n_embd % n_heads:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_heads={n_heads}; each head gets "
                             f"n_embd / n_heads channels, so pick e.g. n_heads={math.gcd(n_embd, n_heads)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_embd, self.n_heads, self.head_dim = n_embd, n_heads, n_embd // n_heads
        self.fused = fused
        self.dropout = dropout                     # attention dropout probability (training only)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None, bias=None, rope=None, kv_cache=None, *, causal=False,
                return_weights=False):
        """x: (B, T, C) -> y: (B, T, C), or (y, weights (B, H, T, T_k)) with ``return_weights``.

        mask: bool broadcastable to (B, H, T, T_k), T_k = cached length + T, True = may attend
        (not torch.nn.MultiheadAttention's True = masked). ``causal=True`` adds
        the causal mask (offset by the cache length). bias: additive, broadcastable to
        (B, H, T, T_k). rope: ``rope(q, k, offset) -> (q, k)`` on (B, H, T, head_dim), applied
        before caching, offset = position of the first query. kv_cache: a ``KVCache`` to extend.
        ``return_weights=True`` always takes the explicit path (the fused kernel has no weights).
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.size(-1) != self.n_embd:
            raise ValueError(f"x must be (B, T, C) with C = n_embd = {self.n_embd}, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be floating point, got {x.dtype}; embed token ids first")
        if rope is not None and not callable(rope):
            raise TypeError(f"rope must be a callable rope(q, k, offset) -> (q, k) (e.g. a "
                            f"gptlib.positional.RotaryEmbedding) or None, got "
                            f"{type(rope).__name__}")
        T = x.size(1)
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)          # 3 x (B, T, C)
        q, k, v = (split_heads(t, self.n_heads) for t in (q, k, v))  # 3 x (B, H, T, d)
        offset = 0 if kv_cache is None else kv_cache.length
        if rope is not None:
            q, k = rope(q, k, offset)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)                             # (B, H, T_k, d)
        shape = (x.size(0), self.n_heads, T, k.size(-2))
        if mask is not None:
            _check_broadcast("mask", mask, shape, bool_dtype=True)
        p = self.dropout if self.training else 0.0
        weights = None
        if self.fused and not return_weights and causal and mask is None and bias is None \
                and T == k.size(-2):
            # causality alone (no cache, or a cache that was empty): the kernel's is_causal,
            # which needs no mask tensor at all
            y = fused_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            if causal:
                c = causal_mask(T, k.size(-2), device=x.device)     # offset = cached length
                mask = c if mask is None else combine_masks(mask, c)
            if self.fused and not return_weights:
                y = fused_attention(q, k, v, mask, bias, dropout_p=p)
            else:
                y, weights = scaled_dot_product_attention(q, k, v, mask, bias, dropout_p=p,
                                                          return_weights=True)
        y = self.resid_dropout(self.c_proj(merge_heads(y)))       # (B, T, C)
        return (y, weights) if return_weights else y
