"""Explorers and small HTML figures of chapter 4 (residual blocks)."""

from __future__ import annotations

import html


__all__ = ["log_profile_chart", "gradient_flow_explorer"]


def log_profile_chart(curves, lo: float, hi: float, width: int = 520, height: int = 230,
                      xlabel: str = "block (1 = bottom)", ylabel: str = "gradient norm") -> str:
    """An inline-SVG chart of per-layer values on a log scale, one line per curve.

    curves: ``[(label, values, colour, dashed), ...]``, ``values[i]`` for layer ``i + 1``;
    ``lo < hi``: the y range (positive). A value that is 0 (e.g. a gradient that underflowed) or
    below ``lo`` is drawn as a cross on the bottom edge. Self-contained: no scripts, no fonts.
    """
    import math

    if not 0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi for a log scale, got lo={lo}, hi={hi}")
    n = max(len(v) for _, v, _, _ in curves)
    pad_l, pad_r, pad_t, pad_b = 52, 8, 8, 34
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    a, b = math.log10(lo), math.log10(hi)

    def x(i):
        return pad_l + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v):
        return pad_t + h * (b - math.log10(v)) / (b - a)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"style='font-family:sans-serif;font-size:10px'>",
             f"<rect x='{pad_l}' y='{pad_t}' width='{w}' height='{h}' fill='none' stroke='#999'/>"]
    step = max(1, math.ceil((b - a) / 8))                      # at most ~8 labelled decades
    for e in range(math.ceil(a), math.floor(b) + 1):
        if e % step == 0:
            parts.append(f"<line x1='{pad_l}' x2='{pad_l + w}' y1='{y(10.0 ** e):.1f}' "
                         f"y2='{y(10.0 ** e):.1f}' stroke='#eee'/>"
                         f"<text x='{pad_l - 4}' y='{y(10.0 ** e) + 3:.1f}' text-anchor='end'>"
                         f"1e{e}</text>")
    legend = []
    for k, (label, values, colour, dashed) in enumerate(curves):
        dash = " stroke-dasharray='5,3'" if dashed else ""
        pts = [(x(i), y(v)) for i, v in enumerate(values) if v >= lo]
        if pts:
            points = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            parts.append(f"<polyline points='{points}' fill='none' stroke='{colour}' "
                         f"stroke-width='1.8'{dash}/>")
        for i, v in enumerate(values):
            if v < lo:                                           # zero or off the chart
                cx, cy = x(i), pad_t + h
                parts.append(f"<path d='M{cx - 3:.1f},{cy - 3:.1f}l6,6m0,-6l-6,6' "
                             f"stroke='{colour}'/>")
        legend.append(f"<span style='color:{colour}'>{'- - ' if dashed else '—— '}"
                      f"{html.escape(label)}</span>")
    parts += [f"<text x='{pad_l}' y='{height - 18}'>1</text>",
              f"<text x='{pad_l + w}' y='{height - 18}' text-anchor='end'>{n}</text>",
              f"<text x='{pad_l + w / 2:.0f}' y='{height - 18}' text-anchor='middle'>"
              f"{html.escape(xlabel)}</text>",
              f"<text x='{pad_l}' y='{height - 4}'>{html.escape(ylabel)} (log scale; "
              f"x on the bottom edge: below {lo:.0e} or exactly 0)</text>",
              "</svg>"]
    return "<div>" + " &nbsp; ".join(legend) + "</div>" + "".join(parts)


def gradient_flow_explorer(profiles: dict, depth: int | None = None, residual: bool = False,
                           norms: bool = True):
    """Pick a depth and switch residual connections and LayerNorm on or off; see the gradient
    norm of every block's parameters at initialisation.

    profiles: ``{(depth, residual, norms): [norm of block 1's gradient, ..., of block depth's]}``
    (bottom block first), computed beforehand for every combination shown, since a widget in the
    built book cannot compute. The chosen variant is drawn against GPT-2's (residual and norms
    on, dashed). Returns an ``ipywidgets.VBox`` whose HTML part holds the chart, so the saved
    widget state shows it without a kernel.
    """
    import math

    import ipywidgets as widgets

    depths = sorted({d for d, _, _ in profiles})
    for d in depths:
        for r in (True, False):
            for n in (True, False):
                if (d, r, n) not in profiles:
                    raise ValueError(f"profiles has no entry for depth={d}, residual={r}, norms={n}; "
                                     f"compute every combination for every depth")
    positive = [v for p in profiles.values() for v in p if v > 0]
    hi = 10.0 ** math.ceil(math.log10(max(positive)))
    lo = max(10.0 ** math.floor(math.log10(min(positive))), 1e-40)
    if depth is not None and depth not in depths:
        raise ValueError(f"profiles have no depth {depth}; choose one of {depths}")
    style = {"description_width": "initial"}
    depth_w = widgets.SelectionSlider(options=depths, value=depth or depths[-1],
                                      description="blocks:", style=style)
    res_w = widgets.Checkbox(value=residual, description="residual connections", style=style)
    norm_w = widgets.Checkbox(value=norms, description="LayerNorm in each block", style=style)
    out = widgets.HTML()

    def update(change=None):
        d, r, n = depth_w.value, res_w.value, norm_w.value
        g = profiles[(d, r, n)]
        name = (f"residual {'on' if r else 'off'}, LayerNorm {'on' if n else 'off'}")
        curves = [(name, g, "#c44e52", False)]
        if (r, n) != (True, True):
            curves.append(("GPT-2: residual and LayerNorm on", profiles[(d, True, True)],
                           "#4c72b0", True))
        zeros = sum(v == 0 for v in g)
        ratio = (f"{g[0] / g[-1]:.1e}" if g[-1] > 0 else "undefined")
        note = (f"<p>{d} blocks, {name}: gradient of the bottom block / top block = {ratio}"
                + (f"; {zeros} of {d} blocks get a gradient of exactly 0 (it underflowed)"
                   if zeros else "") + ".</p>")
        out.value = note + log_profile_chart(curves, lo, hi)

    for w in (depth_w, res_w, norm_w):
        w.observe(update, names="value")
    update()
    return widgets.VBox([depth_w, widgets.HBox([res_w, norm_w]), out])
