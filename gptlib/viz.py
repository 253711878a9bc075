"""Interactive explorers for the notebooks (``ipywidgets``). Nothing in ``gptlib`` imports this.

Widgets need a running kernel to react; the built book shows each explorer in the state it was
saved in, with a static figure beside it in the chapter.
"""

from __future__ import annotations

import html

import torch

__all__ = ["next_token_explorer", "distribution_table"]


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
    choose = widgets.Dropdown(options=options, value=tokenizer.encode(start)[0],
                              description="current:")
    out = widgets.HTML()

    def update(change=None):
        out.value = distribution_table(table[choose.value], lambda i: tokenizer.decode([i]), top)

    choose.observe(update, names="value")
    update()
    return widgets.VBox([choose, out])


# --- Chapter 2: attention ------------------------------------------------------------------------

__all__ += ["attention_weights", "attention_table", "attention_summary", "attention_explorer"]


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
    per key token, darker = more weight (hover a cell for its value); masked cells are grey."""
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
    return (style + "<table class=gptlib-attn style='border-collapse:collapse;line-height:1'>"
            + "".join(rows) + "</table>")


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
    choose = widgets.Dropdown(options=names, value=head or names[0], description="head:")
    temp = widgets.FloatLogSlider(value=temperature, base=10, min=-1, max=1, step=0.05,
                                  description="temperature:", readout_format=".2f",
                                  style={"description_width": "initial"})
    out = widgets.HTML()

    def update(change=None):
        w = attention_weights(scores[choose.value], mask, temp.value)
        top, entropy = attention_summary(w, mask)
        out.value = (f"<p>temperature {temp.value:.2f}: mean largest weight {top:.3f}, "
                     f"mean entropy {entropy:.3f} nats (rows: queries, columns: keys)</p>"
                     + attention_table(w, labels, mask))

    choose.observe(update, names="value")
    temp.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([choose, temp]), out])


# --- Chapter 6: the assembled GPT ----------------------------------------------------------------

__all__ += ["PARAMETER_GROUPS", "parameter_groups", "gpt_parameter_groups", "gpt_flops_per_token",
            "parameter_table", "GPT_PRESETS", "parameter_explorer"]

PARAMETER_GROUPS = ("embeddings", "attention", "MLP", "norms")


def parameter_groups(model) -> dict[str, int]:
    """Count a GPT's parameters by group, from the parameter names: ``embeddings`` (``wte``,
    ``wpe``/``pos``), ``attention`` (``.attn.``), ``MLP`` (``.mlp.``), ``norms`` (``ln_*``).

    Works for ``gptlib.model.GPT`` and for ``transformers``' ``GPT2LMHeadModel``/``GPT2Model``
    (their ``transformer.`` prefix is ignored). A tied output layer counts once, as in
    ``model.parameters()``; a parameter that fits no group raises (e.g. an untied ``lm_head``
    or a cross-attention layer), so the four groups always add up to the whole model.
    """
    counts = dict.fromkeys(PARAMETER_GROUPS, 0)
    for name, p in model.named_parameters():
        name = name.removeprefix("transformer.")
        if name.startswith(("wte.", "wpe.", "pos.")):
            group = "embeddings"
        elif ".attn." in name:
            group = "attention"
        elif ".mlp." in name:
            group = "MLP"
        elif name.split(".")[-2] in ("ln_1", "ln_2", "ln_f"):
            group = "norms"
        else:
            raise ValueError(f"parameter {name!r} belongs to none of {PARAMETER_GROUPS}")
        counts[group] += p.numel()
    return counts


def gpt_parameter_groups(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> dict[str, int]:
    """The same four groups in closed form, for GPT-2's architecture (learned positions, biases,
    LayerNorm, tied output layer); C = n_embd, L = n_layer, V = vocab_size, T = block_size::

        embeddings V·C + T·C,  attention L·(4C² + 4C),  MLP L·(8C² + 5C),  norms L·4C + 2C

    The total equals ``gptlib.model.count_gpt_parameters(V, T, L, C)``.
    """
    C, L = n_embd, n_layer
    return {"embeddings": vocab_size * C + block_size * C,
            "attention": L * (4 * C * C + 4 * C),     # c_attn C x 3C + 3C, c_proj C x C + C
            "MLP": L * (8 * C * C + 5 * C),           # c_fc C x 4C + 4C, c_proj 4C x C + C
            "norms": L * 4 * C + 2 * C}               # ln_1, ln_2 per block, ln_f: weight + bias


def gpt_flops_per_token(vocab_size: int, block_size: int, n_layer: int, n_embd: int,
                        seq_len: int | None = None) -> int:
    """Training FLOPs per token at context ``seq_len`` (default ``block_size``), counted as
    ``GPT.flops_per_token`` does: 6 per parameter except the position table, plus 12·L·T·C for
    the attention scores and weighted sums."""
    t = block_size if seq_len is None else seq_len
    groups = gpt_parameter_groups(vocab_size, block_size, n_layer, n_embd)
    return 6 * (sum(groups.values()) - block_size * n_embd) + 12 * n_layer * t * n_embd


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def parameter_table(vocab_size: int, block_size: int, n_layer: int, n_embd: int,
                    n_tokens: float | None = None) -> str:
    """An HTML table: the four parameter groups (count, share, bar) and the total N; then, with
    one count for compute throughout, N' = N minus the position table (as ``GPT.flops_per_token``
    counts): N', the training FLOPs per token at full context, 6·N' + 12·L·T·C, and, given
    ``n_tokens`` D, the training compute ≈ 6·N'·D."""
    groups = gpt_parameter_groups(vocab_size, block_size, n_layer, n_embd)
    total = sum(groups.values())
    n_compute = total - block_size * n_embd            # N': the position table costs no FLOPs
    colours = {"embeddings": "#4c72b0", "attention": "#dd8452", "MLP": "#55a868", "norms": "#c44e52"}
    rows = []
    for name, n in groups.items():
        share = n / total
        bar = (f'<div style="background:{colours[name]};height:0.8em;'
               f'width:{max(1, round(200 * share))}px"></div>')
        rows.append(f"<tr><td>{name}</td><td style='text-align:right'>{n:,}</td>"
                    f"<td style='text-align:right'>{100 * share:.3g}%</td><td>{bar}</td></tr>")
    flops = gpt_flops_per_token(vocab_size, block_size, n_layer, n_embd)
    rows.append(f"<tr><th>total N</th><th style='text-align:right'>{total:,}</th>"
                f"<th style='text-align:right'>{_si(total)}</th><th></th></tr>")
    rows.append(f"<tr><td>N' = N − position table (counted for compute)</td>"
                f"<td style='text-align:right'>{n_compute:,}</td>"
                f"<td style='text-align:right'>{_si(n_compute)}</td><td></td></tr>")
    rows.append(f"<tr><td>training FLOPs per token, 6·N' + 12·L·T·C (T = {block_size:,})</td>"
                f"<td style='text-align:right'>{flops:.3e}</td><td></td><td></td></tr>")
    if n_tokens is not None:
        rows.append(f"<tr><td>training compute 6·N'·D, D = {_si(n_tokens)} tokens</td>"
                    f"<td style='text-align:right'>{6 * n_compute * n_tokens:.2e}</td><td>FLOPs</td>"
                    f"<td></td></tr>")
    return ("<table><tr><th>group</th><th>parameters</th><th>share</th><th></th></tr>"
            + "".join(rows) + "</table>")


GPT_PRESETS = {  # (vocab_size, block_size, n_layer, n_embd); chapter 6 checks its models against these
    "GPT-2 small": (50257, 1024, 12, 768),
    "GPT-2 XL": (50257, 1024, 48, 1600),
    "GPT-3 175B": (50257, 2048, 96, 12288),
    "character model (chapter 6)": (70, 64, 3, 48),
}


def parameter_explorer(preset: str = "GPT-2 small", n_tokens: float = 300e9):
    """Sliders for depth, width, vocabulary and context; a table of the parameter groups, the
    FLOPs per token and the training compute for ``n_tokens`` tokens (default 300B, the budget
    of every GPT-3 model). Returns an ``ipywidgets.VBox`` whose HTML part holds the table, so the
    saved state shows it."""
    import ipywidgets as widgets

    V, T, L, C = GPT_PRESETS[preset]
    style = {"description_width": "initial"}
    choose = widgets.Dropdown(options=list(GPT_PRESETS), value=preset, description="preset:")
    layers = widgets.IntSlider(value=L, min=1, max=128, description="n_layer:", style=style)
    width = widgets.IntSlider(value=C, min=16, max=16384, step=16, description="n_embd:", style=style)
    vocab = widgets.IntSlider(value=V, min=2, max=256000, description="vocab_size:", style=style)
    context = widgets.IntSlider(value=T, min=1, max=32768, description="block_size:", style=style)
    tokens = widgets.FloatLogSlider(value=n_tokens, base=10, min=6, max=14, step=0.1,
                                    description="tokens D:", readout_format=".2e", style=style)
    out = widgets.HTML()

    def update(change=None):
        out.value = parameter_table(vocab.value, context.value, layers.value, width.value, tokens.value)

    def load_preset(change):
        vocab.value, context.value, layers.value, width.value = GPT_PRESETS[choose.value]

    choose.observe(load_preset, names="value")
    for w in (layers, width, vocab, context, tokens):
        w.observe(update, names="value")
    update()
    return widgets.VBox([choose, widgets.HBox([layers, width]), widgets.HBox([vocab, context]),
                         tokens, out])


# --- Chapter 5: positional encodings -------------------------------------------------------------

__all__ += ["value_strip", "line_chart", "cosine_similarity_matrix", "position_explorer"]


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
    cells = "".join(f"<td style='{td};background:{_signed_colour(v, vmax)}' title='{i}: {v:.3f}'></td>"
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
              f"<text x='{pad_l - 4}' y='{pad_t + 8}' text-anchor='end'>{hi:.2f}</text>",
              f"<text x='{pad_l - 4}' y='{pad_t + h}' text-anchor='end'>{lo:.2f}</text>",
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
    n = similarity[names[0]].shape[0]
    vectors, notes = vectors or {}, notes or {}
    choose = widgets.Dropdown(options=names, value=encoding or names[0], description="encoding:")
    pos = widgets.IntSlider(value=position, min=0, max=n - 1, description="position t:",
                            style={"description_width": "initial"})
    out = widgets.HTML()

    def update(change=None):
        name, t = choose.value, pos.value
        row = similarity[name][t].double()
        others = [s for s in torch.argsort(row, descending=True, stable=True).tolist() if s != t]
        nearest = ", ".join(f"{s} ({row[s].item():.2f})" for s in others[:4])
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


# --- Chapter 4: residual connections and normalisation --------------------------------------------

__all__ += ["log_profile_chart", "gradient_flow_explorer"]


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


# --- Chapter 3: masking --------------------------------------------------------------------------

__all__ += ["mask_row_html", "mask_explorer"]

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


# --- Chapter 7: sampling -------------------------------------------------------------------------

__all__ += ["sampling_distribution", "sampling_table", "sampling_explorer"]


def sampling_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                          top_p: float | None = None) -> torch.Tensor:
    """The distribution ``gptlib.generate.sample_next`` draws from, for one row of logits ``(V,)``.

    temperature 0: all mass on the argmax (greedy). Otherwise softmax of the tempered logits after
    the same top-k and top-p filters ``sample_next`` applies, in the same order. Returns ``(V,)``
    float64 probabilities (0 for every filtered-out token).
    """
    from gptlib.generate import top_k_filter, top_p_filter

    if logits.ndim != 1:
        raise ValueError(f"logits must be one row (V,), got shape {tuple(logits.shape)}")
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(), logits.numel()).double()
    z = logits.float() / temperature
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None and top_p < 1:
        z = top_p_filter(z, top_p)
    return torch.softmax(z.double(), dim=-1)


def sampling_table(p_model: torch.Tensor, p_sample: torch.Tensor, decode, top: int = 10) -> str:
    """An HTML table of the ``top`` most likely next tokens under the model (``p_model``, (V,)),
    with the probability each is *sampled* with (``p_sample``, (V,)) beside it and as a bar;
    tokens that the filters removed are greyed. ``decode(i)`` turns an id into its text."""
    p, idx = torch.sort(p_model.double(), descending=True)
    rows = []
    for pm, i in zip(p[:top].tolist(), idx[:top].tolist()):
        ps = float(p_sample[i])
        colour = "#4c72b0" if ps > 0 else "#bbbbbb"
        bar = f'<div style="background:{colour};height:0.8em;width:{200 * ps:.0f}px"></div>'
        grey = "" if ps > 0 else " style='color:#999'"
        rows.append(f"<tr{grey}><td><code>{html.escape(_label(decode(i)))}</code></td>"
                    f"<td style='text-align:right'>{pm:.3f}</td>"
                    f"<td style='text-align:right'>{ps:.3f}</td><td>{bar}</td></tr>")
    return ("<table><tr><th>next token</th><th>model p</th><th>sampled with</th><th></th></tr>"
            + "".join(rows) + "</table>")


def sampling_explorer(model, tokenizer, prompts, temperature: float = 1.0, top_p: float = 1.0,
                      n_chars: int = 80, seed: int = 0):
    """Pick a prompt, a temperature and a top-p; see the next-token distribution that sampling
    draws from (beside the model's own) and a continuation sampled with those settings.

    The model runs once per prompt for the distribution; the continuation is generated with
    ``gptlib.generate.generate_text`` and a ``torch.Generator`` seeded with ``seed`` (so moving a
    slider and back gives the same text). Returns an ``ipywidgets.VBox``; its HTML part holds
    everything, so the saved widget state shows it without a kernel.
    """
    import ipywidgets as widgets

    from gptlib.generate import generate_text

    prompts = list(prompts)
    if not prompts:
        raise ValueError("sampling_explorer needs at least one prompt")
    device = next(model.parameters()).device
    logits = {}
    with torch.no_grad():
        for p in prompts:
            idx = torch.tensor([tokenizer.encode(p)], dtype=torch.long, device=device)
            logits[p] = model.eval()(idx)[0][0, -1].cpu()
    style = {"description_width": "initial"}
    choose = widgets.Dropdown(options=[(repr(p), p) for p in prompts], value=prompts[0],
                              description="prompt:", layout=widgets.Layout(width="max-content"))
    temp = widgets.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05,
                               description="temperature:", readout_format=".2f", style=style)
    nucleus = widgets.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.05, description="top-p:",
                                  readout_format=".2f", style=style)
    out = widgets.HTML()

    def update(change=None):
        z = logits[choose.value]
        t, p = temp.value, nucleus.value
        p_model = torch.softmax(z.double(), dim=-1)
        p_sample = sampling_distribution(z, t, None, p)
        kept = int((p_sample > 0).sum())
        nz = p_sample[p_sample > 0]
        entropy = float(-(nz * nz.log()).sum())
        text = generate_text(model, tokenizer, choose.value, n_chars, temperature=t, top_p=p,
                             generator=torch.Generator().manual_seed(seed))
        mode = "greedy (argmax)" if t == 0 else f"temperature {t:.2f}, top-p {p:.2f}"
        out.value = (f"<p>{mode}: {kept} of {z.numel()} tokens can be sampled; entropy of the "
                     f"sampling distribution {entropy:.3f} nats</p>"
                     + sampling_table(p_model, p_sample, lambda i: tokenizer.decode([i]))
                     + "<p>a continuation sampled with these settings (seed "
                     f"{seed}):</p><pre style='white-space:pre-wrap'><b>"
                     f"{html.escape(choose.value)}</b>{html.escape(text)}</pre>")

    for w in (choose, temp, nucleus):
        w.observe(update, names="value")
    update()
    return widgets.VBox([choose, widgets.HBox([temp, nucleus]), out])
