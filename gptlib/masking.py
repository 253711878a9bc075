"""Attention masks: who may look at whom.

A mask is a boolean tensor broadcastable to the attention scores ``(B, H, T_q, T_k)``;
``True`` means "query i may attend to key j" — the opposite of ``torch.nn.MultiheadAttention``
and ``nn.Transformer``, whose boolean ``attn_mask`` / ``key_padding_mask`` mark with True what is
*masked out* (convert with ``~mask``; ``F.scaled_dot_product_attention``'s boolean ``attn_mask``
uses our convention). Two kinds matter for a GPT:

* the **causal** mask ``(T_q, T_k)``: position i sees only positions j <= i, so one forward pass
  can train every next-token prediction of a sequence at once without reading the answer
  (the decoder self-attention of Vaswani et al. 2017, "Attention Is All You Need", section 3.2.3);
* the **padding** mask ``(B, T_k)``: in a batch of sequences of unequal length, nobody attends to
  the pad tokens.

Two more restrict the causal mask further: ``banded_causal_mask`` (each query sees only its most
recent keys: sliding-window / locally banded attention) and ``document_mask`` (several documents
packed into one sequence: each token sees only the earlier tokens of its own document, a
block-diagonal causal mask).

Masks are applied *before* the softmax, by setting the masked scores to ``-inf`` (``apply_mask``),
so that the softmax gives them exactly zero weight and the remaining weights still sum to 1.
Zeroing the weights *after* the softmax (``mask_after_softmax``) is the classic mistake: the rows
no longer sum to 1. A row in which every key is masked has no distribution to normalise; this
library defines its attention weights and output to be 0 (never NaN), see
``gptlib.attention.scaled_dot_product_attention``.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["causal_mask", "padding_mask", "combine_masks", "apply_mask", "mask_after_softmax",
           "banded_causal_mask", "document_mask", "document_positions", "attended_pairs"]


def _check_int(name: str, value, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def causal_mask(t_q: int, t_k: int | None = None, *, offset: int | None = None,
                device=None) -> torch.Tensor:
    """The causal mask ``(t_q, t_k)``: ``True`` where query i may attend key j, i.e. ``j <= i + offset``.

    ``t_k`` defaults to ``t_q`` (training: the queries are the keys). ``offset`` defaults to
    ``t_k - t_q``: the queries are the *last* ``t_q`` of the ``t_k`` positions, as in incremental
    decoding with a KV cache (``t_k - t_q`` positions already cached, query i sits at position
    ``offset + i``). An explicit ``offset`` may be any int; rows with ``i + offset < 0`` are then
    fully masked.

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    _check_int("t_q", t_q, 1)
    t_k = t_q if t_k is None else _check_int("t_k", t_k, 1)
    if offset is None:
        if t_q > t_k:
            raise ValueError(f"t_q={t_q} queries cannot be the last positions of only t_k={t_k} keys; "
                             f"pass t_k >= t_q, or an explicit offset")
        offset = t_k - t_q
    elif not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"offset must be an int, got {type(offset).__name__}")
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=offset)


def padding_mask(lengths=None, *, ids=None, pad_id=None, max_len=None, side="right") -> torch.Tensor:
    """A padding mask ``(B, T)``: ``True`` at real tokens, ``False`` at padding (pass ``~mask``
    as torch.nn.MultiheadAttention's ``key_padding_mask``, where True means padding).

    Either from ``lengths`` (a list or 1-D integer tensor of the B real lengths; ``T = max_len``,
    default ``max(lengths)``), or from ``ids`` (a ``(B, T)`` integer tensor) and ``pad_id``.
    ``side="right"`` means the padding follows the tokens (training), ``side="left"`` that it
    precedes them (batched generation, so that every sequence ends at the last column).

    With ``ids``, only the run of ``pad_id`` at the padded end counts as padding: a ``pad_id``
    inside a sequence stays a real token (GPT-2 pads with ``<|endoftext|>``, which also separates
    documents).

    >>> padding_mask([2, 3]).int()
    tensor([[1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if (lengths is None) == (ids is None):
        raise ValueError("pass exactly one of lengths (the real lengths) or ids= with pad_id=")
    if ids is not None:
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.is_floating_point():
            raise TypeError(f"ids must be a (B, T) integer tensor, got "
                            f"{getattr(ids, 'shape', type(ids).__name__)}")
        if pad_id is None:
            raise ValueError("ids= needs pad_id=, the id used for padding")
        if max_len is not None:
            raise ValueError("max_len is only for lengths; with ids the length is ids.shape[1]")
        is_pad = (ids == pad_id).long()
        if side == "right":  # the trailing run of pads: cumulative product from the end
            is_pad = is_pad.flip(-1).cumprod(-1).flip(-1)
        else:
            is_pad = is_pad.cumprod(-1)
        return is_pad == 0
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1 or lengths.numel() == 0 or lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be a non-empty list or 1-D tensor of ints, got {lengths.tolist()!r}")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
    longest = int(lengths.max())
    max_len = longest if max_len is None else _check_int("max_len", max_len, 1)
    if longest > max_len:
        raise ValueError(f"a length of {longest} does not fit in max_len={max_len}; "
                         f"crop the sequence or raise max_len")
    pos = torch.arange(max_len, device=lengths.device)  # (T,)
    if side == "right":
        return pos[None, :] < lengths[:, None]
    return pos[None, :] >= (max_len - lengths)[:, None]


def combine_masks(*masks: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
    """Combine boolean masks with logical AND; the result broadcasts to ``(B, H, T_q, T_k)``.

    Positional masks broadcast by PyTorch's rules, so a 2-D mask is a ``(T_q, T_k)`` mask (like
    ``causal_mask``) that applies to every batch element and head. A padding mask ``(B, T_k)``
    is about *keys* per batch element, so it must be lifted to ``(B, 1, 1, T_k)`` first: pass it as
    ``padding=`` (done for you) or lift it yourself (``pad[:, None, None, :]``). A 2-D positional
    mask is never guessed to be a padding mask: with ``B == T_q`` the guess would be silent and wrong.

    >>> combine_masks(causal_mask(3), padding=padding_mask([2, 3])).shape
    torch.Size([2, 1, 3, 3])
    """
    if padding is not None:
        if not isinstance(padding, torch.Tensor) or padding.ndim != 2:
            raise ValueError(f"padding must be a (B, T_k) mask, got "
                             f"{getattr(padding, 'shape', type(padding).__name__)}")
        masks = masks + (padding[:, None, None, :],)
    if not masks:
        raise ValueError("combine_masks needs at least one mask")
    for i, m in enumerate(masks):
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise TypeError(f"mask {i} must be a bool tensor (True = may attend), got "
                            f"{getattr(m, 'dtype', type(m).__name__)}; use mask.bool() or mask == 1")
        if m.ndim > 4:
            raise ValueError(f"mask {i} has {m.ndim} dims {tuple(m.shape)}; masks have at most 4, "
                             f"(B, H, T_q, T_k)")
    try:
        torch.broadcast_shapes(*(m.shape for m in masks))
    except RuntimeError:
        shapes = ", ".join(str(tuple(m.shape)) for m in masks)
        raise ValueError(f"masks of shapes {shapes} cannot be broadcast together; a (B, T_k) padding "
                         f"mask goes in padding= (or as pad[:, None, None, :])") from None
    return functools.reduce(torch.logical_and, masks)


def apply_mask(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set the masked attention scores to ``-inf``, before the softmax.

    ``scores``: ``(..., T_q, T_k)`` floating; ``mask``: bool, broadcastable to ``scores``,
    ``True`` = keep. ``exp(-inf) = 0``, so a masked key gets exactly zero weight and the others
    still sum to 1, in every dtype. Why not a "large negative" constant?

    * ``-1e9`` does not exist in float16 (largest magnitude 65504): ``scores.masked_fill(~mask,
      -1e9)`` raises an overflow error, and stored in a float16 tensor it becomes ``-inf``. The
      additive recipe ``scores + (1 - mask) * -1e9`` with a Python number still works (the
      product is rounded, not the constant: ``0 * -1e9 = -0``, ``1 * -1e9 -> -inf``), but with
      the constant cast to float16 first, ``neg = torch.tensor(-1e9, dtype=torch.float16)``,
      ``(1 - mask) * neg`` gives ``0 * -inf = NaN`` at every *allowed* position; and a row whose
      keys are all masked becomes all ``-inf`` (NaN after the softmax), where float32 would have
      kept it finite.
    * ``-1e4`` is not small enough in float32: a real score of -2e4 (large activations, no scaling)
      loses to the masked one, which then gets the weight.

    ``-inf`` is right, and so is ``torch.finfo(scores.dtype).min`` (the most negative finite
    value: ``masked_fill`` accepts it, and added as ``(1 - mask) * min`` it leaves the real scores
    exactly unchanged). They differ in one case: a row whose keys are *all* masked becomes all
    ``-inf`` here, and its softmax is ``0/0 = NaN`` (with ``finfo.min`` it is uniform over the
    masked keys). The attention functions in ``gptlib.attention`` keep such rows finite and
    define their weights and output as 0.
    """
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point():
        raise TypeError(f"scores must be a floating tensor, got "
                        f"{getattr(scores, 'dtype', type(scores).__name__)}")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}; use mask.bool() or mask == 1")
    try:
        fits = torch.broadcast_shapes(scores.shape, mask.shape) == scores.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores "
                         f"{tuple(scores.shape)}")
    return scores.masked_fill(~mask, float("-inf"))


def mask_after_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """THE WRONG WAY, kept to show why: softmax over all keys, then zero the masked weights.

    The masked keys took part in the normalisation, so each row of the result sums to less than 1
    (and the remaining weights depend on the masked scores, i.e. on the future). Compare
    ``torch.softmax(apply_mask(scores, mask), -1)``, whose rows sum to 1.
    """
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError("mask must be a bool tensor (True = may attend)")
    return torch.softmax(scores, dim=-1) * mask


def banded_causal_mask(t_q: int, band: int, t_k: int | None = None, *,
                       device=None) -> torch.Tensor:
    """The locally banded causal mask ``(t_q, t_k)``: query i sees keys j with
    ``i - band < j <= i`` (positions counted as in ``causal_mask``: the queries are the last t_q).

    GPT-3 (Brown et al. 2020, sec. 2.1) alternates dense and "locally banded sparse attention
    patterns in the layers of the transformer, similar to the Sparse Transformer" (Child et al.
    2019): a banded layer lets each token see only the ``band`` most recent tokens (itself
    included), and the dense layers in between carry information further. While
    ``t_k <= band`` it equals ``causal_mask``.

    >>> banded_causal_mask(4, 2).int()
    tensor([[1, 0, 0, 0],
            [1, 1, 0, 0],
            [0, 1, 1, 0],
            [0, 0, 1, 1]], dtype=torch.int32)
    """
    _check_int("band", band, 1)
    causal = causal_mask(t_q, t_k, device=device)
    offset = causal.size(1) - t_q
    return causal & ~causal_mask(t_q, causal.size(1), offset=offset - band, device=device)


def _check_doc_ids(doc_ids) -> torch.Tensor:
    if not isinstance(doc_ids, torch.Tensor) or doc_ids.ndim not in (1, 2) \
            or doc_ids.is_floating_point() or doc_ids.is_complex() or doc_ids.dtype == torch.bool \
            or doc_ids.size(-1) == 0:
        raise TypeError(f"doc_ids must be a (T,) or (B, T) integer tensor with T >= 1 (the "
                        f"document of each token), got "
                        f"{getattr(doc_ids, 'dtype', type(doc_ids).__name__)} "
                        f"{tuple(getattr(doc_ids, 'shape', ()))}")
    rows = doc_ids.reshape(-1, doc_ids.size(-1))
    starts = torch.ones_like(rows, dtype=torch.bool)
    starts[:, 1:] = rows[:, 1:] != rows[:, :-1]                      # (B, T): a new run begins
    for b, (row, start) in enumerate(zip(rows, starts)):
        runs = row[start]
        if runs.unique().numel() != runs.numel():
            seen = next(d for d in runs.tolist() if runs.tolist().count(d) > 1)
            where = "" if doc_ids.ndim == 1 else f"row {b}: "
            raise ValueError(f"{where}document id {seen} appears in two separate runs "
                             f"({row.tolist()}); a packed document must be one contiguous run "
                             f"of tokens: give each document its own id")
    return starts


def document_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """The mask for packed documents: query i may attend key j iff ``j <= i`` and both tokens
    belong to the same document — a block-diagonal causal mask.

    doc_ids: ``(T,)`` integer tensor, the document of each token of a packed sequence (each
    document one contiguous run, e.g. ``[0, 0, 0, 1, 1]``), -> ``(T, T)`` bool; or ``(B, T)``,
    one packed sequence per row, -> ``(B, 1, T, T)`` (broadcasts over heads). With it, every
    document of a packed sequence gets exactly the attention it gets alone: no token reads the
    end of the previous document. (GPT-3 packs documents into full windows "not masked in any
    special way", only separated by an end-of-text token, Brown et al. 2020, appendix B; Llama 3
    masks attention between the documents of a sequence, Dubey et al. 2024, sec. 3.2.)
    Positions that depend on the absolute index (a learned table) must also restart at each
    document (``document_positions``); relative ones (RoPE, ALiBi) or none need nothing more.

    >>> document_mask(torch.tensor([0, 0, 1, 1, 1])).int()
    tensor([[1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [0, 0, 1, 0, 0],
            [0, 0, 1, 1, 0],
            [0, 0, 1, 1, 1]], dtype=torch.int32)
    """
    _check_doc_ids(doc_ids)
    same = doc_ids[..., :, None] == doc_ids[..., None, :]          # (..., T, T) same document
    mask = same & causal_mask(doc_ids.size(-1), device=doc_ids.device)
    return mask if doc_ids.ndim == 1 else mask[:, None]


def document_positions(doc_ids: torch.Tensor) -> torch.Tensor:
    """Each token's position within its own document: ``(T,)`` or ``(B, T)`` int64, restarting
    at 0 where a document begins (pass as ``GPT``'s ``position_ids`` for packed documents).

    >>> document_positions(torch.tensor([0, 0, 1, 1, 1])).tolist()
    [0, 1, 0, 1, 2]
    """
    starts = _check_doc_ids(doc_ids).reshape(doc_ids.shape)
    index = torch.arange(doc_ids.size(-1), device=doc_ids.device).expand(doc_ids.shape)
    start_of_doc = torch.where(starts, index, 0).cummax(dim=-1).values   # index of its run start
    return index - start_of_doc


def attended_pairs(t: int, band: int | None = None) -> int:
    """How many (query, key) scores a causal layer needs over t positions: ``t(t+1)/2`` dense,
    ``sum_i min(i+1, band)`` = ``band·t - band(band-1)/2`` banded (for t >= band).

    That is the count a kernel that skips masked scores computes and stores; the written-out
    attention (``gptlib.attention``) computes all ``t²`` and masks them, so a mask alone saves
    nothing (chapter 3): the savings need a kernel that never forms the masked blocks.
    """
    _check_int("t", t, 1)
    if band is None or band >= t:
        return t * (t + 1) // 2
    _check_int("band", band, 1)
    return band * t - band * (band - 1) // 2
