"""Explorers and small HTML figures of chapter 2 (attention)."""

from __future__ import annotations

import html

import torch

from gptlib.viz.controls import check_on_grid, fmt

__all__ = ["attention_weights", "attention_table", "attention_summary", "attention_explorer"]


def _short_label(token: str) -> str:
    return {"\n": "⏎", " ": "␣"}.get(token, token)


def attention_weights(scores: torch.Tensor, mask: torch.Tensor | None = None,
                      temperature: float = 1.0) -> torch.Tensor:
    """``softmax(scores / temperature)`` over the last dim, masked keys (``mask`` False) at 0.

    scores: ``(T_q, T_k)`` already scaled by ``1/sqrt(d)``; mask: bool ``(T_q, T_k)``, True = may
    attend (every row must allow at least one key). A temperature below 1 sharpens the weights
    towards a hard look-up, above 1 flattens them towards a plain average.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    s = scores.double() / temperature
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1)


def attention_table(weights: torch.Tensor, labels, mask: torch.Tensor | None = None,
                    cell_px: int = 15) -> str:
    """An HTML heatmap of ``(T_q, T_k)`` attention weights: one row per query token, one column
    per key token, darker = more weight (hover a cell for its value); masked cells are grey.
    A colour bar under the table maps the shades to weights 0..1."""
    T_q, T_k = weights.shape
    labels = [_short_label(t) for t in labels]
    q_labels, k_labels = labels[-T_q:], labels[:T_k]   # queries are the last T_q positions
    style = (f"<style>.gptlib-attn td{{width:{cell_px}px;height:{cell_px}px;padding:0;"
             f"border:1px solid #fff;font:10px monospace;text-align:center}}"
             f".gptlib-attn td.m{{background:#eee}}</style>")
    head = "".join(f"<td>{html.escape(k)}</td>" for k in k_labels)
    rows = [f"<tr><td></td>{head}</tr>"]
    w = weights.double().tolist()
    for i in range(T_q):
        cells = []
        for j in range(T_k):
            if mask is not None and not bool(mask[i, j]):
                cells.append("<td class=m></td>")
            else:  # colour #2850aa with alpha = weight, as two hex digits
                a = min(max(w[i][j], 0.0), 1.0)
                cells.append(f"<td style=background:#2850aa{round(255 * a):02x} title={a:.3f}></td>")
        rows.append(f"<tr><td>{html.escape(q_labels[i])}</td>{''.join(cells)}</tr>")
    colour_bar = ("<div style='font:11px sans-serif;margin-top:4px'>attention weight: 0 "
                  "<span style='display:inline-block;width:160px;height:10px;vertical-align:"
                  "middle;border:1px solid #ccc;background:linear-gradient(to right,"
                  "#2850aa00,#2850aaff)'></span> 1; grey: masked</div>")
    return (style + "<table class=gptlib-attn style='border-collapse:collapse;line-height:1'>"
            + "".join(rows) + "</table>" + colour_bar)


def attention_summary(weights: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[float, float]:
    """(mean over queries of the largest weight, mean entropy in nats) of ``(T_q, T_k)`` weights."""
    w = weights.double()
    plogp = torch.where(w > 0, w * w.clamp_min(1e-300).log(), torch.zeros_like(w))
    return float(w.max(dim=-1).values.mean()), float(-plogp.sum(dim=-1).mean())


def attention_explorer(scores: dict, labels, mask: torch.Tensor | None = None,
                       temperature: float = 1.0, head: str | None = None):
    """Pick a head and a softmax temperature; see every query's attention weights as a heatmap.

    scores: ``{name: (T, T) tensor}`` of scaled scores ``q k^T / sqrt(d)``, one per head; labels:
    the T tokens as text; mask: bool ``(T, T)``, True = may attend (e.g. ``causal_mask(T)``).
    Returns an ``ipywidgets.VBox`` whose HTML part holds the heatmap, so the saved widget state
    shows it without a kernel.
    """
    import ipywidgets as widgets

    names = list(scores)
    if not names:
        raise ValueError("attention_explorer needs at least one head's scores")
    if head is not None and head not in scores:
        raise ValueError(f"unknown head {head!r}; choose one of {names}")
    check_on_grid("temperature", temperature, -1, 1, 0.05, log_base=10)
    choose = widgets.Dropdown(options=names, value=head or names[0], description="head:")
    temp = widgets.FloatLogSlider(value=temperature, base=10, min=-1, max=1, step=0.05,
                                  description="temperature:", readout_format=".2f",
                                  style={"description_width": "initial"})
    out = widgets.HTML()

    def update(change=None):
        w = attention_weights(scores[choose.value], mask, temp.value)
        top, entropy = attention_summary(w, mask)
        out.value = (f"<p>temperature {temp.value:.2f}: mean largest weight {top:.3f}, "
                     f"mean entropy {fmt(entropy)} nats (rows: queries, columns: keys)</p>"
                     + attention_table(w, labels, mask))

    choose.observe(update, names="value")
    temp.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([choose, temp]), out])
