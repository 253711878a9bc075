"""Chapter 5: positional encodings — how a GPT knows where each token is.

Self-attention treats its input as a *set*: permute the tokens and the outputs permute the same
way. Word order has to be put in by hand. Two families:

* **absolute** (added to the token embeddings once, at the bottom): ``onehot``, ``learned``
  (GPT-2's ``wpe``), ``sinusoidal`` (Vaswani et al. 2017, sec. 3.5);
* **relative** (inside every attention layer): ``rope`` rotates queries and keys (Su et al. 2021;
  two feature layouts and position interpolation, see ``RotaryEmbedding``), ``alibi`` adds
  ``-slope * distance`` to the scores (Press et al. 2022).

``build_positional(kind, ...)`` returns one object with the same three hooks for every kind:

* ``embed(x, offset)``: x (B, T, C) token embeddings -> (B, T, C) with absolute positions added;
* ``rope``: a callable ``rope(q, k, offset) -> (q, k)`` on (B, H, T, head_dim), or None;
* ``attn_bias(t_q, t_k, offset, device)``: an additive (1, H, t_q, t_k) score bias, or None.

``offset`` is the position of the first token of ``x`` (non-zero with a KV cache). Every hook
also takes per-row positions, ``positions`` (B, T) int64 (and ``attn_bias`` the keys'
``key_positions`` (B, T_k)), which replace ``offset..offset+T-1``: a left-padded row's first real
token is then at position 0, as it is alone (``GPT.forward`` derives them from the padding mask).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gptlib.validate import check_int, check_number

__all__ = ["POS_ENCODINGS", "sinusoidal_table", "sinusoidal_shift_matrix", "Positional",
           "NoPositional", "OneHotPositional", "LearnedPositional", "SinusoidalPositional",
           "ROPE_LAYOUTS", "rope_permutation", "RotaryEmbedding", "alibi_slopes", "alibi_bias",
           "ALiBiPositional", "build_positional"]

POS_ENCODINGS = ("none", "onehot", "learned", "sinusoidal", "rope", "alibi")


def sinusoidal_table(n_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The sinusoidal encodings (Vaswani et al. 2017, sec. 3.5), shape (n_positions, dim)::

        PE[t, 2i]   = sin(t / base**(2i / dim))
        PE[t, 2i+1] = cos(t / base**(2i / dim))

    Pair i turns at angular frequency ``base**(-2i/dim)``: from one turn every 2*pi positions
    (i = 0) to one every ``2*pi*base`` positions. Computed in float64, returned as float32.
    """
    check_int("n_positions", n_positions, 0)
    check_int("dim", dim, 1)
    check_number("base", base, low=0, low_open=True)
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]              # (N, 1)
    freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)       # (ceil(dim/2),)
    table = torch.zeros(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table.float()


def sinusoidal_shift_matrix(k: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed matrix ``M_k`` (dim, dim) with ``PE(t + k) = PE(t) @ M_k.T`` for every t.

    By the angle-sum formulas each (sin, cos) pair of ``PE(t + k)`` is the pair of ``PE(t)``
    rotated by the angle ``k * freq_i``, whatever t is — the property Vaswani et al. cite for
    choosing sinusoids ("PE_{pos+k} can be represented as a linear function of PE_pos"). ``M_k``
    is block-diagonal with 2x2 rotations ``[[cos, sin], [-sin, cos]]``. ``dim`` must be even.
    """
    check_number("k", k)
    check_int("dim", dim, 2)
    check_number("base", base, low=0, low_open=True)
    if dim % 2:
        raise ValueError(f"the shift matrix needs an even dim (whole sin/cos pairs), got {dim}")
    angle = k * base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    c, s = torch.cos(angle), torch.sin(angle)
    m = torch.zeros(dim, dim, dtype=torch.float64)
    i = torch.arange(0, dim, 2)
    m[i, i], m[i, i + 1], m[i + 1, i], m[i + 1, i + 1] = c, s, -s, c
    return m.float()


class Positional(nn.Module):
    """The interface every encoding implements; on its own it adds no position at all.

    ``max_positions`` is the number of positions the encoding can represent (None: any).
    """

    kind = "none"
    max_positions: int | None = None

    def embed(self, x: torch.Tensor, offset: int = 0, positions: torch.Tensor | None = None
              ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C): token embeddings plus absolute positions offset..offset+T-1
        (or ``positions`` (B, T), each row its own)."""
        return x

    @property
    def rope(self):
        """A callable ``(q, k, offset) -> (q, k)`` applied in every attention layer, or None."""
        return None

    def attn_bias(self, t_q: int, t_k: int, offset: int, device=None, *,
                  positions: torch.Tensor | None = None,
                  key_positions: torch.Tensor | None = None) -> torch.Tensor | None:
        """An additive bias broadcastable to the scores (B, H, t_q, t_k), or None."""
        return None

    def _positions(self, x: torch.Tensor, offset: int,
                   positions: torch.Tensor | None = None) -> torch.Tensor:
        """Check that positions offset..offset+T-1 exist; return them as a (T,) long tensor
        (or ``positions`` (B, T), checked the same way)."""
        t = x.shape[-2]
        if positions is not None:
            last = int(positions.max()) if positions.numel() else -1
            if self.max_positions is not None and last >= self.max_positions:
                raise ValueError(f"the {self.kind} positional encoding has only block_size="
                                 f"{self.max_positions} positions; this encoding cannot represent "
                                 f"position {last}; crop the input or use an encoding without a "
                                 f"table (sinusoidal, rope, alibi)")
            return positions.to(x.device)
        if self.max_positions is not None and offset + t > self.max_positions:
            raise ValueError(f"the {self.kind} positional encoding has only block_size="
                             f"{self.max_positions} positions; this encoding cannot represent position "
                             f"{offset + t - 1} (offset {offset} + sequence length {t}); crop the input "
                             f"or use an encoding without a table (sinusoidal, rope, alibi)")
        return torch.arange(offset, offset + t, device=x.device)

    def crop(self, block_size: int) -> None:
        """Keep only the first ``block_size`` positions (a no-op for encodings without a table)."""


class NoPositional(Positional):
    """No position information: the model sees a bag of tokens (chapter 5's demonstration)."""


class OneHotPositional(Positional):
    """One-hot position vectors, projected to the model width: ``onehot(t) @ W.T``.

    Why projected rather than concatenated: concatenating a ``block_size``-long one-hot vector
    to each token embedding would widen the residual stream, and so every layer, by
    ``block_size`` features (1024 for GPT-2) — the "dimension explosion". Projecting it with a
    Linear(block_size -> n_embd, no bias) keeps the width ``C``; and since ``onehot(t) @ W.T``
    just picks column t of ``W``, the projected one-hot *is* a learned position table, exactly
    ``LearnedPositional`` with ``wpe.weight = proj.weight.T`` (a test checks it).
    """

    kind = "onehot"

    def __init__(self, block_size: int, n_embd: int):
        super().__init__()
        self.max_positions = block_size
        self.proj = nn.Linear(block_size, n_embd, bias=False)

    def embed(self, x: torch.Tensor, offset: int = 0, positions: torch.Tensor | None = None
              ) -> torch.Tensor:
        onehot = F.one_hot(self._positions(x, offset, positions), self.max_positions).to(x.dtype)
        return x + self.proj(onehot)                      # (T, block_size) -> + (T, C) (or B, T)

    def crop(self, block_size: int) -> None:
        self.proj.weight = nn.Parameter(self.proj.weight.detach()[:, :block_size].clone())
        self.proj.in_features = self.max_positions = block_size


class LearnedPositional(Positional):
    """A learned table of ``block_size`` position vectors, row t added to the token at t.

    GPT-1 introduced it for GPT: "we used learned position embeddings instead of the sinusoidal
    version" (Radford et al. 2018, sec. 4.1; 512 positions). GPT-2 kept it (Radford et al.
    2019, with the context grown to 1024 tokens): its released weights call the table ``wpe``,
    the name used here. It fixes the longest sequence the model can read: position
    ``block_size`` has no row.
    """

    kind = "learned"

    def __init__(self, block_size: int, n_embd: int):
        super().__init__()
        self.max_positions = block_size
        self.wpe = nn.Embedding(block_size, n_embd)

    def embed(self, x: torch.Tensor, offset: int = 0, positions: torch.Tensor | None = None
              ) -> torch.Tensor:
        return x + self.wpe(self._positions(x, offset, positions))          # + (T, C) (or B, T)

    def crop(self, block_size: int) -> None:
        self.wpe.weight = nn.Parameter(self.wpe.weight.detach()[:block_size].clone())
        self.wpe.num_embeddings = self.max_positions = block_size


class SinusoidalPositional(Positional):
    """Fixed sinusoidal encodings added to the embeddings (Vaswani et al. 2017, sec. 3.5).

    No parameters and no maximum length: the first ``max_len`` rows are cached (a buffer that
    follows ``.to(device)`` but is not saved), longer inputs are computed on the fly.
    """

    kind = "sinusoidal"

    def __init__(self, n_embd: int, max_len: int = 1024):
        super().__init__()
        self.n_embd = n_embd
        self.register_buffer("table", sinusoidal_table(max_len, n_embd), persistent=False)

    def embed(self, x: torch.Tensor, offset: int = 0, positions: torch.Tensor | None = None
              ) -> torch.Tensor:
        end = offset + x.shape[-2] if positions is None else int(positions.max()) + 1
        table = self.table if end <= len(self.table) else sinusoidal_table(end, self.n_embd).to(x.device)
        if positions is not None:
            return x + table[positions.to(table.device)].to(x.dtype)               # + (B, T, C)
        return x + table[offset:end].to(x.dtype)                                    # + (T, C)


ROPE_LAYOUTS = ("interleaved", "half")


def rope_permutation(head_dim: int) -> torch.Tensor:
    """The feature order that turns the interleaved RoPE layout into the half layout, (head_dim,).

    ``P = [0, 2, 4, ..., d-2, 1, 3, ..., d-1]``: ``x[..., P]`` moves pair i from features
    ``(2i, 2i+1)`` to features ``(i, i + d/2)``, so for q, k (..., head_dim)::

        RotaryEmbedding(d, layout="half")(q[..., P], k[..., P])
            == [t[..., P] for t in RotaryEmbedding(d, layout="interleaved")(q, k)]

    and, since permuting the features of both q and k leaves their dot product unchanged, the
    two layouts give the same attention scores. Applied to the rows of each head's block of
    W_Q and W_K, it is the permutation Hugging Face's LLaMA conversion script makes (its
    ``permute``) to run Meta's interleaved checkpoints with a ``rotate_half`` implementation.
    """
    check_int("head_dim", head_dim, 2)
    if head_dim % 2:
        raise ValueError(f"RoPE rotates pairs of features, so head_dim must be even; got {head_dim}")
    return torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))


class RotaryEmbedding(Positional):
    """Rotary position embedding, RoPE (Su et al. 2021, "RoFormer", eq. 34).

    Pair i of a query or key at position t is rotated by the angle ``t * theta_i``,
    ``theta_i = base**(-2i/head_dim)``. Rotations preserve lengths, and
    ``R(t_q)q . R(t_k)k = q . R(t_k - t_q)k``: the score depends only on the relative offset.
    Used through ``rope(q, k, offset)``: q, k (B, H, T, head_dim), positions offset..offset+T-1.

    ``layout`` says which features form pair i:

    * ``"interleaved"`` (default): ``(x[2i], x[2i+1])``, as in RoFormer's eq. 34, Meta's LLaMA
      reference code (complex numbers over adjacent features) and GPT-J (``rotate_every_two``);
    * ``"half"``: ``(x[i], x[i + head_dim/2])``, as in GPT-NeoX and Hugging Face's LLaMA
      (``rotate_half``). Weights trained with one layout need that layout (or their q and k
      projections permuted by ``rope_permutation``).

    ``scale`` multiplies every position before the rotation (default 1). Position interpolation
    (Chen et al. 2023) reads a context ``L' = L / scale`` with a model trained on ``L``
    positions by setting ``scale = L / L'``: positions 0..L'-1 become 0..L-scale, angles that
    training produced. Hugging Face's ``rope_scaling={"rope_type": "linear", "factor": f}`` is
    ``scale = 1 / f``. Chen et al. then fine-tune for about 1000 steps; without that, the model
    meets angles in between the ones it was trained on.
    """

    kind = "rope"

    def __init__(self, head_dim: int, base: float = 10000.0, *, layout: str = "interleaved",
                 scale: float = 1.0):
        super().__init__()
        check_int("head_dim", head_dim, 2)
        check_number("base", base, low=0, low_open=True)
        check_number("scale", scale, low=0, low_open=True)
        if head_dim % 2:
            raise ValueError(f"RoPE rotates pairs of features, so head_dim must be even; got {head_dim}")
        if layout not in ROPE_LAYOUTS:
            raise ValueError(f"unknown RoPE layout {layout!r}; choose 'interleaved' (pairs "
                             f"(2i, 2i+1): RoFormer, GPT-J) or 'half' (pairs (i, i + d/2): "
                             f"GPT-NeoX, Hugging Face's LLaMA)")
        self.head_dim, self.base, self.layout, self.scale = head_dim, base, layout, scale

    def extra_repr(self) -> str:
        return (f"head_dim={self.head_dim}, base={self.base}, layout={self.layout!r}, "
                f"scale={self.scale}")

    @property
    def rope(self):
        return self

    def forward(self, q: torch.Tensor, k: torch.Tensor, offset: int = 0,
                positions: torch.Tensor | None = None):
        """q, k (B, H, T, head_dim) at positions offset..offset+T-1, or at ``positions`` (B, T)
        (each row its own) -> rotated (q, k)."""
        for name, t in (("q", q), ("k", k)):
            if t.shape[-1] != self.head_dim:
                raise ValueError(f"RoPE was built for head_dim={self.head_dim}, got {name} of shape "
                                 f"{tuple(t.shape)}")
        dtype = torch.promote_types(q.dtype, torch.float32)    # angles at least in float32
        i = torch.arange(0, self.head_dim, 2, device=q.device, dtype=dtype)
        theta = self.base ** (-i / self.head_dim)                                # (d/2,)
        if positions is None:
            pos = torch.arange(offset, offset + q.shape[-2], device=q.device, dtype=dtype)
        else:
            pos = positions.to(device=q.device, dtype=dtype)[:, None]           # (B, 1, T)
        angle = (pos * self.scale)[..., None] * theta           # (T, d/2), or (B, 1, T, d/2)
        cos, sin = angle.cos(), angle.sin()
        rotate = self._rotate if self.layout == "interleaved" else self._rotate_half
        return rotate(q, cos, sin), rotate(k, cos, sin)

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """The interleaved layout: pair i is ``(x[2i], x[2i+1])``."""
        x1, x2 = x[..., 0::2], x[..., 1::2]                                      # (..., T, d/2) each
        out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)    # (..., T, d/2, 2)
        return out.flatten(-2).to(x.dtype)                                       # pairs back in place

    @staticmethod
    def _rotate_half(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """The half layout (GPT-NeoX, Hugging Face's LLaMA): pair i is ``(x[i], x[i + d/2])``."""
        x1, x2 = x.chunk(2, dim=-1)                                              # (..., T, d/2) each
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).to(x.dtype)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes (Press et al. 2022, sec. 3), shape (n_heads,).

    For n a power of two: the geometric sequence ``2**(-8/n * i)``, i = 1..n (8 heads:
    1/2, 1/4, ..., 1/256). Otherwise, as in the paper's code: the slopes of the closest power of
    two below n, then every other slope of twice that power, until there are n.
    """
    check_int("n_heads", n_heads, 1)

    def power_of_two(n):
        return [2.0 ** (-8.0 / n * i) for i in range(1, n + 1)]

    m = 2 ** math.floor(math.log2(n_heads))
    slopes = power_of_two(m) + power_of_two(2 * m)[0::2][: n_heads - m]
    return torch.tensor(slopes)


def alibi_bias(n_heads: int, t_q: int, t_k: int, offset: int | None = None,
               device=None) -> torch.Tensor:
    """ALiBi's additive score bias ``-slope_h * |i - j|``, shape (1, n_heads, t_q, t_k).

    Query i sits at position ``offset + i`` (default ``offset = t_k - t_q``: the queries are the
    last t_q keys, as with a KV cache); key j at position j. Future keys get a penalty too, but
    the causal mask removes them anyway.
    """
    check_int("t_q", t_q, 1)
    check_int("t_k", t_k, 1)
    offset = t_k - t_q if offset is None else check_int("offset", offset)
    q_pos = torch.arange(offset, offset + t_q, device=device)
    distance = (q_pos[:, None] - torch.arange(t_k, device=device)[None, :]).abs()   # (t_q, t_k)
    return -alibi_slopes(n_heads).to(device)[None, :, None, None] * distance          # (1, H, t_q, t_k)


class ALiBiPositional(Positional):
    """Attention with linear biases (Press et al. 2022): nothing is added to the embeddings;
    every attention layer adds ``alibi_bias`` to its scores. Works for any length."""

    kind = "alibi"

    def __init__(self, n_heads: int):
        super().__init__()
        check_int("n_heads", n_heads, 1)
        self.n_heads = n_heads

    def attn_bias(self, t_q: int, t_k: int, offset: int, device=None, *,
                  positions: torch.Tensor | None = None,
                  key_positions: torch.Tensor | None = None) -> torch.Tensor:
        """(1, H, t_q, t_k); with per-row ``positions`` (B, t_q) and ``key_positions`` (B, t_k)
        (default: ``offset..`` and ``0..t_k-1``) the distances are per row: (B, H, t_q, t_k)."""
        if positions is None and key_positions is None:
            return alibi_bias(self.n_heads, t_q, t_k, offset, device)
        if positions is None:
            positions = torch.arange(offset, offset + t_q, device=device)[None]
        if key_positions is None:
            key_positions = torch.arange(t_k, device=device)[None]
        distance = (positions[:, :, None] - key_positions[:, None, :]).abs()    # (B, t_q, t_k)
        slopes = alibi_slopes(self.n_heads).to(device)[None, :, None, None]
        return -slopes * distance[:, None].to(device)                            # (B, H, t_q, t_k)


def build_positional(kind: str, *, block_size: int, n_embd: int, n_heads: int) -> Positional:
    """The positional encoding named ``kind`` (one of ``POS_ENCODINGS``) for a model of width
    ``n_embd`` with ``n_heads`` heads and a context of ``block_size`` tokens."""
    if kind == "none":
        return NoPositional()
    if kind == "onehot":
        return OneHotPositional(block_size, n_embd)
    if kind == "learned":
        return LearnedPositional(block_size, n_embd)
    if kind == "sinusoidal":
        return SinusoidalPositional(n_embd, max_len=block_size)
    if kind == "rope":
        return RotaryEmbedding(n_embd // n_heads)
    if kind == "alibi":
        return ALiBiPositional(n_heads)
    raise ValueError(f"unknown positional encoding {kind!r}; choose one of {POS_ENCODINGS}")
