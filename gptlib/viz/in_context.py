"""Figures and the explorer of chapter 10 (in-context learning, induction heads)."""

from __future__ import annotations

import html

import torch

__all__ = ["last_token_view", "plot_patterns", "plot_last_token", "in_context_explorer"]


@torch.no_grad()
def last_token_view(model, tokenizer, text: str):
    """``(tokens, rows, probs)`` for ``text``: its letters, each head's attention from the last
    position ``{(layer, head): (T,) weights}``, and the next-token distribution ``(V,)``."""
    from gptlib.interp import record_attention
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError("type at least one token")
    T = model.config.block_size
    if len(ids) > T:
        raise ValueError(f"{len(ids)} tokens exceed the model's context of {T}; shorten the text")
    idx = torch.tensor([ids])
    model.eval()
    with record_attention(model) as patterns:
        logits = model(idx)[0]
    rows = {(l, h): p[0, h, -1] for l, p in enumerate(patterns) for h in range(p.size(1))}
    return [tokenizer.decode([i]) for i in ids], rows, logits[0, -1].softmax(-1)


def plot_patterns(patterns: dict, labels, title: str = "", cmap: str = "viridis",
                  ncols: int = 2):
    """One heatmap per entry of ``patterns`` ``{name: (T, T)}``, rows = queries, columns = keys,
    with tick labels ``labels`` (the tokens) and a colour bar for the weight, ``ncols`` to a row
    (two fit the book's column at full size); returns the figure."""
    import matplotlib.pyplot as plt
    n = len(patterns)
    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (name, w) in zip(axes.flat, patterns.items()):
        im = ax.imshow(w.detach().cpu().numpy(), cmap=cmap, vmin=0, vmax=1)
        T = w.size(0)
        step = max(1, T // 24)
        ticks = list(range(0, T, step))
        ax.set_xticks(ticks, [labels[i] for i in ticks], fontsize=8)
        ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=8)
        ax.set_xlabel("key (attended-to token)", fontsize=10)
        ax.set_ylabel("query (current token)", fontsize=10)
        ax.set_title(name, fontsize=11)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("attention weight", fontsize=9)
        bar.ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def plot_last_token(model, tokenizer, text: str, top: int = 16):
    """The explorer's view as a static figure: each head's attention from the last token (one row
    per head, colour bar) and the next-token distribution. Returns the figure."""
    import matplotlib.pyplot as plt
    labels, rows, probs = last_token_view(model, tokenizer, text)
    names = [f"L{l} H{h}" for l, h in rows]
    W = torch.stack(list(rows.values())).numpy()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [3, 1]})
    im = ax.imshow(W, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(labels)), labels, fontsize=9)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.set_title(f"attention from the last token {labels[-1]!r}", fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    bar.set_label("weight", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    p, ids = probs.topk(min(top, len(probs)))
    bx.barh(range(len(ids)), p.numpy()[::-1], color="#4c72b0")
    bx.set_yticks(range(len(ids)), [tokenizer.decode([i]) for i in ids.tolist()][::-1],
                  fontsize=9)
    bx.set_xlim(0, 1)
    bx.tick_params(axis="x", labelsize=9)
    bx.set_xlabel("probability", fontsize=9)
    bx.set_title("next token", fontsize=10)
    fig.tight_layout()
    return fig


def _strip(labels, w) -> str:
    cells = "".join(
        f"<td title='{a:.3f}' style='background:#2850aa{round(255 * min(max(a, 0), 1)):02x};"
        f"width:14px;height:14px;font:10px monospace;text-align:center;"
        f"color:{'#fff' if a > 0.5 else '#000'}'>{html.escape(t)}</td>"
        for t, a in zip(labels, w.tolist()))
    return f"<table style='border-collapse:collapse'><tr>{cells}</tr></table>"


def in_context_explorer(model, tokenizer, examples: dict, text: str | None = None):
    """Pick an example (``{name: text}``) or type letters; see, for every head, where the last
    token looks (darker = more weight; hover for the value) and the next-token distribution.
    Returns an ``ipywidgets.VBox``; its HTML part holds the view, so the saved state shows it."""
    import ipywidgets as widgets
    names = list(examples)
    pick = widgets.Dropdown(options=names, value=names[0], description="example:")
    box = widgets.Text(value=text if text is not None else examples[names[0]],
                       description="tokens:", layout=widgets.Layout(width="95%"))
    out = widgets.HTML()

    def update(change=None):
        try:
            labels, rows, probs = last_token_view(model, tokenizer, box.value)
        except ValueError as err:
            out.value = f"<p>{html.escape(str(err))}</p>"
            return
        heads = "".join(f"<tr><td style='padding-right:6px;font:11px monospace'>L{l} H{h}</td>"
                        f"<td>{_strip(labels, w)}</td></tr>" for (l, h), w in rows.items())
        p, ids = probs.topk(min(6, len(probs)))
        bars = "".join(
            f"<tr><td style='font:12px monospace;padding-right:6px'>"
            f"{html.escape(tokenizer.decode([i]))}</td><td><div style='background:#4c72b0;"
            f"height:12px;width:{round(200 * q)}px'></div></td><td>{100 * q:.0f}%</td></tr>"
            for q, i in zip(p.tolist(), ids.tolist()))
        out.value = (f"<p>attention from the last token <b>{html.escape(labels[-1])}</b>, "
                     f"one row per head:</p><table>{heads}</table>"
                     f"<p>next token:</p><table>{bars}</table>")

    def choose(change):
        box.value = examples[pick.value]

    pick.observe(choose, names="value")
    box.observe(update, names="value")
    update()
    return widgets.VBox([pick, box, out])
