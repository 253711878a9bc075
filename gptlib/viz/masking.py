"""Explorers and small HTML figures of chapter 3 (masking)."""

from __future__ import annotations

import html

import torch

__all__ = ["mask_row_html", "mask_explorer"]


_MASK_LABELS = {"\n": "⏎", " ": "␣"}


def mask_row_html(labels, allowed: torch.Tensor, query: int, weights: torch.Tensor | None = None) -> str:
    """One query's view of a sequence, as HTML: a box per key position.

    labels: the T_k tokens as strings; allowed: ``(T_k,)`` bool, True where the query may attend
    (one row of a mask); query: the query's position (its box gets a red outline);
    weights: optional ``(T_k,)`` attention weights, shown as the blue's strength. Masked keys are
    grey and struck through.
    """
    allowed = torch.as_tensor(allowed, dtype=torch.bool).flatten()
    if len(labels) != allowed.numel():
        raise ValueError(f"{len(labels)} labels for a mask row of {allowed.numel()} keys")
    if not 0 <= query < len(labels):
        raise ValueError(f"query {query} is outside 0..{len(labels) - 1}")
    w = None if weights is None else torch.as_tensor(weights).double().flatten()
    top = float(w[allowed].max()) if w is not None and bool(allowed.any()) else 1.0
    boxes = []
    for j, (label, ok) in enumerate(zip(labels, allowed.tolist())):
        text = html.escape(_MASK_LABELS.get(label, label))
        border = "2px solid #c44e52" if j == query else "1px solid #ccc"
        if ok:
            strength = 0.35 if w is None else 0.1 + 0.9 * float(w[j]) / max(top, 1e-12)
            tip = f"key {j}: may attend" + ("" if w is None else f", weight {float(w[j]):.3f}")
            style = f"background:rgba(76,114,176,{strength:.2f});color:#000"
        else:
            tip, style = f"key {j}: masked", "background:#eee;color:#aaa;text-decoration:line-through"
        boxes.append(f'<span title="{tip}" style="display:inline-block;min-width:1.1em;'
                     f'margin:1px;padding:2px 1px;text-align:center;font-family:monospace;'
                     f'border:{border};{style}">{text}</span>')
    n = int(allowed.sum())
    q_label = html.escape(_MASK_LABELS.get(labels[query], labels[query]))
    note = f"query {query} (<code>{q_label}</code>) may attend to {n} of {len(labels)} positions"
    if w is not None and n:
        best = int(torch.where(allowed, w, -1.0).argmax())
        b_label = html.escape(_MASK_LABELS.get(labels[best], labels[best]))
        note += f"; its largest weight, {float(w[best]):.2f}, is on position {best} (<code>{b_label}</code>)"
    return f"<p>{note}.</p><div style='line-height:2.2em'>{''.join(boxes)}</div>"


def mask_explorer(views: dict, query: int | None = None, view: str | None = None):
    """Pick a mask and a query position; see which keys the query may attend to.

    views: ``{name: (labels, mask, weights)}`` with labels the T tokens as strings, mask ``(T, T)``
    bool (True = may attend) and weights ``(T, T)`` attention weights or None. Every view must
    have the same T. Returns an ``ipywidgets.VBox``.
    """
    import ipywidgets as widgets

    if not views:
        raise ValueError("mask_explorer needs at least one view")
    sizes = set()
    for name, (labels, mask, weights) in views.items():
        if mask.ndim != 2 or mask.shape[0] != mask.shape[1] or mask.shape[0] != len(labels):
            raise ValueError(f"view {name!r}: mask must be (T, T) with T = {len(labels)} labels, "
                             f"got {tuple(mask.shape)}")
        if weights is not None and weights.shape != mask.shape:
            raise ValueError(f"view {name!r}: weights {tuple(weights.shape)} must match the mask "
                             f"{tuple(mask.shape)}")
        sizes.add(len(labels))
    if len(sizes) != 1:
        raise ValueError(f"every view must have the same length, got {sorted(sizes)}")
    T = sizes.pop()
    if view is not None and view not in views:
        raise ValueError(f"unknown view {view!r}; choose one of {list(views)}")
    if query is not None and not 0 <= query < T:
        raise ValueError(f"query {query} is outside 0..{T - 1}")
    choose = widgets.Dropdown(options=list(views), value=view or next(iter(views)),
                              description="mask:", layout=widgets.Layout(width="max-content"))
    position = widgets.IntSlider(value=T - 1 if query is None else query, min=0, max=T - 1,
                                 description="query:", continuous_update=True)
    out = widgets.HTML()

    def update(change=None):
        labels, mask, weights = views[choose.value]
        i = position.value
        out.value = mask_row_html(labels, mask[i], i, None if weights is None else weights[i])

    choose.observe(update, names="value")
    position.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([choose, position]), out])
