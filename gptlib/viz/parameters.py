"""Explorers and small HTML figures of chapter 6 (parameter and FLOP counts).

The counts themselves are ``gptlib.model``'s closed forms, ``count_gpt_parameters`` (in total and
by group) and ``count_gpt_flops_per_token``; ``parameter_groups`` sorts a built model's own
parameters into the same groups, by name, which is what the chapter and the tests check the
closed forms against.
"""

from __future__ import annotations

import math

from gptlib.model import PARAMETER_GROUPS, count_gpt_flops_per_token, count_gpt_parameters, \
    training_flops
from gptlib.viz.controls import check_on_grid, fmt, value_slider

__all__ = ["PARAMETER_GROUPS", "parameter_groups", "parameter_table", "GPT_PRESETS",
           "parameter_explorer", "CUSTOM", "SLIDER_RANGES", "TOKEN_COUNTS"]


def parameter_groups(model) -> dict[str, int]:
    """Count a GPT's parameters by group, from the parameter names: ``embeddings`` (``wte``,
    ``wpe``/``pos``), ``attention`` (``.attn.``), ``MLP`` (``.mlp.``), ``norms`` (``ln_*``).

    Works for ``gptlib.model.GPT`` and for ``transformers``' ``GPT2LMHeadModel``/``GPT2Model``
    (their ``transformer.`` prefix is ignored). A tied output layer counts once, as in
    ``model.parameters()``; an untied one is a fifth group, ``lm_head``. A parameter that fits no
    group raises (e.g. a cross-attention layer), so the groups always add up to the whole model.
    The same groups as ``gptlib.model.count_gpt_parameters(..., by_group=True)``, counted from
    the model instead of a formula.
    """
    counts = dict.fromkeys(PARAMETER_GROUPS, 0)
    for name, p in model.named_parameters():
        name = name.removeprefix("transformer.")
        if name.startswith("lm_head."):              # only an untied head: a tied one is wte
            counts["lm_head"] = counts.get("lm_head", 0) + p.numel()
            continue
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
    ``n_tokens`` D, the training compute ``gptlib.model.training_flops(N', D)`` = 6·N'·D.
    Every number comes from ``gptlib.model``'s closed forms for GPT-2's architecture
    (``count_gpt_parameters``, ``count_gpt_flops_per_token``)."""
    shape = (vocab_size, block_size, n_layer, n_embd)
    groups = count_gpt_parameters(*shape, by_group=True)
    total = sum(groups.values())
    n_compute = count_gpt_parameters(*shape, non_embedding=True)
    colours = {"embeddings": "#4c72b0", "attention": "#dd8452", "MLP": "#55a868", "norms": "#c44e52"}
    rows = []
    for name, n in groups.items():
        share = n / total
        bar = (f'<div style="background:{colours[name]};height:0.8em;'
               f'width:{max(1, round(200 * share))}px"></div>')
        rows.append(f"<tr><td>{name}</td><td style='text-align:right'>{n:,}</td>"
                    f"<td style='text-align:right'>{fmt(100 * share, '.3g')}%</td><td>{bar}</td></tr>")
    flops = count_gpt_flops_per_token(*shape)
    rows.append(f"<tr><th>total N</th><th style='text-align:right'>{total:,}</th>"
                f"<th style='text-align:right'>{_si(total)}</th><th></th></tr>")
    rows.append(f"<tr><td>N' = N − position table (counted for compute)</td>"
                f"<td style='text-align:right'>{n_compute:,}</td>"
                f"<td style='text-align:right'>{_si(n_compute)}</td><td></td></tr>")
    rows.append(f"<tr><td>training FLOPs per token, 6·N' + 12·L·T·C (T = {block_size:,})</td>"
                f"<td style='text-align:right'>{flops:.3e}</td><td></td><td></td></tr>")
    if n_tokens is not None:
        rows.append(f"<tr><td>training compute 6·N'·D, D = {_si(n_tokens)} tokens</td>"
                    f"<td style='text-align:right'>{training_flops(n_compute, n_tokens):.2e}</td>"
                    f"<td>FLOPs</td><td></td></tr>")
    return ("<table><tr><th>group</th><th>parameters</th><th>share</th><th></th></tr>"
            + "".join(rows) + "</table>")


GPT_PRESETS = {  # (vocab_size, block_size, n_layer, n_embd); chapter 6 checks its models against these
    "GPT-2 small": (50257, 1024, 12, 768),
    "GPT-2 XL": (50257, 1024, 48, 1600),
    "GPT-3 175B": (50257, 2048, 96, 12288),
    "character model (chapter 6)": (70, 64, 3, 48),
}

CUSTOM = "custom"    # the preset drop-down's entry while the sliders match no preset

# The sliders' ranges (min, max, step) and the token counts of the D slider: 1, 2, 3, 5 per decade
# from 1M to 100T, plus the start value (so D starts exactly where the caller says).
SLIDER_RANGES = {"n_layer": (1, 128, 1), "n_embd": (16, 16384, 16), "vocab_size": (2, 256000, 1),
                 "block_size": (1, 32768, 1)}
TOKEN_COUNTS = tuple(float(m * 10 ** e) for e in range(6, 15) for m in (1, 2, 3, 5)
                     if m * 10 ** e <= 10 ** 14)


def parameter_explorer(preset: str = "GPT-2 small", n_tokens: float = 300e9):
    """Sliders for depth, width, vocabulary and context; a table of the parameter groups, the
    FLOPs per token and the training compute for ``n_tokens`` tokens (default 300B, the budget
    of every GPT-3 model). Returns an ``ipywidgets.VBox`` whose HTML part holds the table, so the
    saved state shows it.

    The drop-down names a preset only while the four sliders hold exactly its values, and says
    "custom" otherwise. The D slider runs over ``TOKEN_COUNTS`` plus ``n_tokens``, so it starts
    at exactly ``n_tokens``; sliders update when released."""
    import ipywidgets as widgets

    if preset not in GPT_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(GPT_PRESETS)}")
    if not (isinstance(n_tokens, (int, float)) and not isinstance(n_tokens, bool)
            and 0 < n_tokens < math.inf):
        raise ValueError(f"n_tokens must be a positive finite number of tokens, got {n_tokens!r}")
    for name, values in GPT_PRESETS.items():
        for field, v in zip(("vocab_size", "block_size", "n_layer", "n_embd"), values):
            check_on_grid(f"preset {name!r}: {field}", v, *SLIDER_RANGES[field])
    V, T, L, C = GPT_PRESETS[preset]
    style = {"description_width": "initial"}
    choose = widgets.Dropdown(options=[*GPT_PRESETS, CUSTOM], value=preset, description="preset:")

    def slider(field, value):
        lo, hi, step = SLIDER_RANGES[field]
        return widgets.IntSlider(value=value, min=lo, max=hi, step=step, description=f"{field}:",
                                 continuous_update=False, style=style)

    layers, width = slider("n_layer", L), slider("n_embd", C)
    vocab, context = slider("vocab_size", V), slider("block_size", T)
    tokens = value_slider(TOKEN_COUNTS, n_tokens, "tokens D:", _si, continuous_update=False,
                          style=style)
    out = widgets.HTML()
    loading = [False]

    def update(change=None):
        if loading[0]:
            return
        values = (vocab.value, context.value, layers.value, width.value)
        matching = [name for name, v in GPT_PRESETS.items() if v == values]
        loading[0] = True                       # renaming the preset must not load it
        try:
            choose.value = matching[0] if matching else CUSTOM
        finally:
            loading[0] = False
        out.value = parameter_table(*values, tokens.value)

    def load_preset(change):
        if loading[0] or choose.value == CUSTOM:
            return
        loading[0] = True                       # one update once all four sliders are set
        try:
            vocab.value, context.value, layers.value, width.value = GPT_PRESETS[choose.value]
        finally:
            loading[0] = False
        update()

    choose.observe(load_preset, names="value")
    for w in (layers, width, vocab, context, tokens):
        w.observe(update, names="value")
    update()
    return widgets.VBox([choose, widgets.HBox([layers, width]), widgets.HBox([vocab, context]),
                         tokens, out])
