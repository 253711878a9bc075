"""Helpers shared by the explorers: number formatting that never shows "-0.000", and controls
that show exactly the value they were given.

A browser snaps a slider's value to its grid (``min + k * step``; for ``FloatLogSlider`` the
exponent ``min + k * step``) as soon as it draws the slider, so an explorer built with an off-grid
value does not start where its caller asked: in JupyterLab 4.6 (headless Chromium),
``FloatLogSlider(value=300e9, min=6, step=0.1)`` reads 3.16e+11 (10^11.5) while the kernel still
holds 3e11, and the first move of the slider leaves from 10^11.5. ``on_grid`` is that snapping;
the explorers check their start values with ``check_on_grid`` (a clear error instead of a silent
move) or use ``value_slider``, whose grid is the list of values itself.
"""

from __future__ import annotations

import math

__all__ = ["fmt", "on_grid", "check_on_grid", "value_slider"]


def fmt(x: float, spec: str = ".3f") -> str:
    """``format(x, spec)``, except that a value that rounds to zero never prints a minus sign:
    ``fmt(-0.0) == fmt(-1e-9) == "0.000"`` (an entropy of a one-token distribution is
    ``-(1 * log 1) = -0.0``; a cosine of -0.001 at two decimals is "-0.00")."""
    s = format(x, spec)
    if s.startswith("-") and float(s.rstrip("%")) == 0:
        s = s[1:]
    return s


def on_grid(value: float, lo: float, hi: float, step: float, log_base: float | None = None) -> float:
    """The value a browser slider shows for ``value``: clipped to [lo, hi] and rounded to the
    nearest ``lo + k * step`` (of the exponent, for a log slider with ``log_base``)."""
    x = math.log(value, log_base) if log_base else value
    k = round((min(max(x, lo), hi) - lo) / step)
    x = min(lo + k * step, hi)
    return log_base ** x if log_base else x


def check_on_grid(name: str, value: float, lo: float, hi: float, step: float,
                  log_base: float | None = None) -> None:
    """Raise ``ValueError`` if a slider over [lo, hi] in steps of ``step`` cannot show ``value``
    exactly (to a relative 1e-9), naming the nearest value it can show."""
    shown = on_grid(value, lo, hi, step, log_base)
    if not math.isclose(shown, value, rel_tol=1e-9, abs_tol=1e-12):
        grid = (f"{log_base}^({lo} + k·{step})" if log_base else f"{lo} + k·{step}, up to {hi}")
        raise ValueError(f"{name}={value!r} cannot be shown by its slider (values {grid}); "
                         f"it would start at {shown:.4g} instead: pass a value on the grid")


def value_slider(values, value, description: str, label=str, **kwargs):
    """An ``ipywidgets.SelectionSlider`` over ``values`` (sorted, duplicates dropped) plus
    ``value`` itself, so it starts exactly at ``value``; ``label(v)`` is the readout of each."""
    import ipywidgets as widgets

    options = sorted(set(values) | {value})
    labels = [label(v) for v in options]
    if len(set(labels)) < len(labels):          # two values that read alike: show them exactly
        labels = [repr(v) for v in options]
    return widgets.SelectionSlider(options=list(zip(labels, options)), value=value,
                                   description=description, **kwargs)
