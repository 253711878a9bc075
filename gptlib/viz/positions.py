"""Explorers and small HTML figures of chapter 5 (positional encodings)."""

from __future__ import annotations

import html

import torch

from gptlib.viz.controls import fmt

__all__ = ["value_strip", "line_chart", "cosine_similarity_matrix", "position_explorer"]


def _signed_colour(v: float, vmax: float) -> str:
    """Red for positive, blue for negative, opacity |v| / vmax."""
    a = min(1.0, abs(v) / vmax) if vmax > 0 else 0.0
    return f"rgba(200,60,40,{a:.3f})" if v >= 0 else f"rgba(40,80,170,{a:.3f})"


def value_strip(values, vmax: float | None = None, cell_px: int = 9) -> str:
    """An HTML strip of coloured cells, one per value of a 1-D tensor or list: red > 0, blue < 0,
    stronger colour = larger magnitude (``vmax``: the magnitude of a full colour, default the
    largest |value|). Hover a cell for its index and value."""
    vals = [float(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)]
    vmax = max((abs(v) for v in vals), default=0.0) if vmax is None else float(vmax)
    td = f"width:{cell_px}px;height:{2 * cell_px}px;padding:0;border:1px solid #fff"
    cells = "".join(f"<td style='{td};background:{_signed_colour(v, vmax)}' title='{i}: {fmt(v)}'></td>"
                    for i, v in enumerate(vals))
    return f"<table style='border-collapse:collapse'><tr>{cells}</tr></table>"


def line_chart(values, marker: int | None = None, width: int = 480, height: int = 140,
               ylabel: str = "") -> str:
    """A small inline-SVG line chart of a 1-D sequence against its index (x from 0 to n-1), with
    the y range and a vertical line at ``marker``. Self-contained: no scripts, no fonts to fetch."""
    vals = [float(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)]
    n = len(vals)
    if n < 2:
        raise ValueError(f"line_chart needs at least 2 values, got {n}")
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    pad_l, pad_r, pad_t, pad_b = 48, 8, 8, 22
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(i):
        return pad_l + w * i / (n - 1)

    def y(v):
        return pad_t + h * (hi - v) / (hi - lo)

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vals))
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"style='font-family:sans-serif;font-size:10px'>",
             f"<rect x='{pad_l}' y='{pad_t}' width='{w}' height='{h}' fill='none' stroke='#999'/>"]
    if lo < 0 < hi:
        parts.append(f"<line x1='{pad_l}' x2='{pad_l + w}' y1='{y(0):.1f}' y2='{y(0):.1f}' "
                     f"stroke='#ccc'/>")
    if marker is not None:
        parts.append(f"<line x1='{x(marker):.1f}' x2='{x(marker):.1f}' y1='{pad_t}' "
                     f"y2='{pad_t + h}' stroke='#c44e52' stroke-dasharray='3,2'/>")
    parts += [f"<polyline points='{points}' fill='none' stroke='#4c72b0' stroke-width='1.5'/>",
              f"<text x='{pad_l - 4}' y='{pad_t + 8}' text-anchor='end'>{fmt(hi, '.2f')}</text>",
              f"<text x='{pad_l - 4}' y='{pad_t + h}' text-anchor='end'>{fmt(lo, '.2f')}</text>",
              f"<text x='{pad_l}' y='{height - 6}'>0</text>",
              f"<text x='{pad_l + w}' y='{height - 6}' text-anchor='end'>{n - 1}</text>",
              f"<text x='{pad_l + w / 2:.0f}' y='{height - 6}' text-anchor='middle'>"
              f"{html.escape(ylabel)}</text>",
              "</svg>"]
    return "".join(parts)


def cosine_similarity_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """``(N, D)`` position vectors -> ``(N, N)`` cosine similarities (float64); a zero vector has
    similarity 0 to everything."""
    v = vectors.double()
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return v @ v.T


def position_explorer(similarity: dict, vectors: dict | None = None, notes: dict | None = None,
                      encoding: str | None = None, position: int = 0):
    """Pick an encoding and a position t; see the vector that encodes t and how position t
    relates to every other position.

    similarity: ``{name: (N, N) tensor}``, row t = position t's similarity (or score bias) to every
    position; vectors: ``{name: (N, D) tensor or None}`` (None: the encoding adds no vector, e.g.
    ALiBi); notes: ``{name: str}``, one sentence shown above each. Returns an ``ipywidgets.VBox``
    whose HTML part holds the picture, so the saved widget state shows it without a kernel.
    """
    import ipywidgets as widgets

    names = list(similarity)
    if not names:
        raise ValueError("position_explorer needs at least one encoding")
    if encoding is not None and encoding not in similarity:
        raise ValueError(f"unknown encoding {encoding!r}; choose one of {names}")
    n = similarity[names[0]].shape[0]
    if not 0 <= position < n:
        raise ValueError(f"position {position} is outside 0..{n - 1}")
    vectors, notes = vectors or {}, notes or {}
    choose = widgets.Dropdown(options=names, value=encoding or names[0], description="encoding:")
    pos = widgets.IntSlider(value=position, min=0, max=n - 1, description="position t:",
                            style={"description_width": "initial"})
    out = widgets.HTML()

    def update(change=None):
        name, t = choose.value, pos.value
        row = similarity[name][t].double()
        others = [s for s in torch.argsort(row, descending=True, stable=True).tolist() if s != t]
        nearest = ", ".join(f"{s} ({fmt(row[s].item(), '.2f')})" for s in others[:4])
        vec = vectors.get(name)
        parts = [f"<p>{html.escape(notes.get(name, ''))}</p>"]
        if vec is None:
            parts.append("<p><b>vector for position t:</b> none (this encoding adds nothing to the "
                         "token embeddings)</p>")
        else:
            parts.append(f"<p><b>vector for position {t}</b> ({vec.shape[1]} numbers; red &gt; 0, "
                         f"blue &lt; 0):</p>" + value_strip(vec[t]))
        parts.append(f"<p><b>position {t} against every position s</b> (dashed line: s = t); "
                     f"highest other positions: {nearest}</p>"
                     + line_chart(row, marker=t, ylabel="position s"))
        out.value = "".join(parts)

    choose.observe(update, names="value")
    pos.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([choose, pos]), out])
