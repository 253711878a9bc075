"""Input checks shared by gptlib's public functions: one helper per kind of input.

Each helper raises a ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad
value) whose message names the argument, what was given, and how to fix it — so a user never sees
a raw traceback from deep inside torch, nor a silently wrong answer. Imports nothing from gptlib.

The mask convention, everywhere in gptlib: a boolean mask is ``True`` where attention (or a
token) is *allowed* — a padding mask is True at real tokens. This is the opposite of
``torch.nn.MultiheadAttention``'s boolean ``attn_mask`` / ``key_padding_mask``, where True means
"masked out"; convert one with ``~mask``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["check_bool", "check_int", "check_number", "check_generator", "check_batch",
           "check_finite", "check_padding_mask", "check_position_ids"]


def check_bool(name: str, value) -> bool:
    """``value`` must be a real ``bool``: ``"no"`` or ``0`` would be truthy or falsy by accident."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}"
                        + ("; a non-empty string is truthy, so 'no' would mean True"
                           if isinstance(value, str) else ""))
    return value


def check_int(name: str, value, minimum: int | None = None) -> int:
    """``value`` must be an ``int`` (not a bool, not a float such as 2.0), >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_generator(name: str, generator) -> None:
    """``generator`` must be None or a ``torch.Generator`` (``torch.Generator().manual_seed(s)``)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got "
                        f"{type(generator).__name__}; make one with "
                        f"torch.Generator().manual_seed(seed)")


def check_number(name: str, value, *, low: float | None = None, low_open: bool = False,
                 high: float | None = None, high_open: bool = False) -> float:
    """``value`` must be a finite int or float (not a bool) in the given range; returns it."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def check_batch(name: str, t: torch.Tensor) -> None:
    """A batch (dim 0) must hold at least one row: reductions over an empty batch are undefined."""
    if t.size(0) == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(t.shape)}); pass at least one "
                         f"sequence")


def check_finite(name: str, t: torch.Tensor, hint: str = "", *,
                 allow_neg_inf: bool = False) -> None:
    """``t`` must hold no NaN (and no inf, or only -inf with ``allow_neg_inf``)."""
    bad = torch.isnan(t) | (t == float("inf")) if allow_neg_inf else ~torch.isfinite(t)
    if bool(bad.any()):
        n_nan = int(torch.isnan(t).sum())
        what = f"{n_nan} NaN" if n_nan else "infinite values"
        if n_nan and n_nan < int(bad.sum()):
            what += " and infinite values"
        raise ValueError(f"{name} contains {what} (shape {tuple(t.shape)})"
                         + (f"; {hint}" if hint else ""))


def check_padding_mask(mask, shape: tuple[int, int], name: str = "padding_mask") -> torch.Tensor:
    """A padding mask: bool, shape ``(B, T_k)``, True at real tokens, at least one per row.

    One rule for every caller: a row with no real token has nothing to attend to and no position
    to read a prediction from, so it is refused rather than given an arbitrary answer.
    """
    shape = tuple(shape)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != shape:
        raise ValueError(f"{name} must be a bool tensor of shape (B, T_k) = {shape} (True at real "
                         f"tokens, the opposite of torch.nn.MultiheadAttention's "
                         f"key_padding_mask), "
                         f"got {getattr(mask, 'dtype', type(mask).__name__)} "
                         f"{tuple(getattr(mask, 'shape', ()))}"
                         + ("; convert a 0/1 mask with mask.bool()"
                            if isinstance(mask, torch.Tensor) and mask.dtype != torch.bool else ""))
    empty = (~mask.any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"{name} rows {empty} have no real token (all False); every sequence "
                         f"needs at least one")
    return mask


def check_position_ids(position_ids, shape: tuple[int, int],
                       max_positions: int | None) -> torch.Tensor:
    """Explicit positions ``(B, T)``: integers >= 0, below ``max_positions`` if the encoding has a
    table; returned as int64."""
    shape = tuple(shape)
    if not isinstance(position_ids, torch.Tensor) or position_ids.is_floating_point() \
            or position_ids.is_complex() or position_ids.dtype == torch.bool \
            or tuple(position_ids.shape) != shape:
        raise ValueError(f"position_ids must be an integer tensor of idx's shape (B, T) = {shape}, "
                         f"got {getattr(position_ids, 'dtype', type(position_ids).__name__)} "
                         f"{tuple(getattr(position_ids, 'shape', ()))}")
    lo, hi = int(position_ids.min()), int(position_ids.max())
    if lo < 0:
        raise ValueError(f"position_ids must be >= 0, got {lo}")
    if max_positions is not None and hi >= max_positions:
        raise ValueError(f"position id {hi} exceeds the model's context of {max_positions} "
                         f"positions (0..{max_positions - 1})")
    return position_ids.long()
