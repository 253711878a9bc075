"""Explorers and small HTML figures of chapter 1 (tokens)."""

from __future__ import annotations

import html

import torch

__all__ = ["distribution_table", "next_token_explorer"]


def _label(token: str) -> str:
    return {"\n": "⏎ (newline)", " ": "␣ (space)"}.get(token, token)


def distribution_table(probs: torch.Tensor, decode, top: int = 8) -> str:
    """An HTML table of the ``top`` most likely tokens of a 1-D probability vector ``(V,)``,
    with a bar for each. ``decode(i)`` turns an id into its text."""
    p, idx = torch.sort(probs.double(), descending=True)
    rows = []
    for pi, i in zip(p[:top].tolist(), idx[:top].tolist()):
        bar = f'<div style="background:#4c72b0;height:0.8em;width:{200 * pi:.0f}px"></div>'
        rows.append(f"<tr><td><code>{html.escape(_label(decode(i)))}</code></td>"
                    f"<td style='text-align:right'>{pi:.3f}</td><td>{bar}</td></tr>")
    return ("<table><tr><th>next token</th><th>probability</th><th></th></tr>"
            + "".join(rows) + "</table>")


def next_token_explorer(table: torch.Tensor, tokenizer, top: int = 8, start: str = "q"):
    """Pick a current token; see the bigram model's distribution over the next one.

    table: ``(V, V)`` with ``table[a, b] = p(b | a)``. Returns an ``ipywidgets.VBox``.
    """
    import ipywidgets as widgets

    options = [(_label(tokenizer.decode([i])), i) for i in range(table.shape[0])]
    ids = tokenizer.encode(start)
    if len(ids) != 1 or not 0 <= ids[0] < table.shape[0]:
        raise ValueError(f"start={start!r} must be one token of the table's {table.shape[0]}, "
                         f"got ids {ids}")
    choose = widgets.Dropdown(options=options, value=ids[0],
                              description="current:")
    out = widgets.HTML()

    def update(change=None):
        out.value = distribution_table(table[choose.value], lambda i: tokenizer.decode([i]), top)

    choose.observe(update, names="value")
    update()
    return widgets.VBox([choose, out])
