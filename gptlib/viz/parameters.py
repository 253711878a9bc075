"""Explorers and small HTML figures of chapter 6 (parameter and FLOP counts)."""

from __future__ import annotations

import functools
import math

from gptlib.viz.controls import check_on_grid, fmt, value_slider

__all__ = ["PARAMETER_GROUPS", "parameter_groups", "gpt_parameter_groups", "gpt_flops_per_token", "parameter_table", "GPT_PRESETS", "parameter_explorer",
           "gpt_counts", "CUSTOM", "SLIDER_RANGES", "TOKEN_COUNTS"]


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


def gpt_counts(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> dict:
    """What chapter 6's explorer shows, counted by the library on the model itself. Returns
    ``groups`` (``parameter_groups(model)``), ``N`` (``model.num_parameters()``), ``N_compute``
    (``num_parameters(non_embedding=True)``: N less the position table) and ``flops_per_token``
    (``model.flops_per_token()``, at full context) of ``GPT(GPTConfig(vocab_size, block_size,
    n_layer, n_embd))``.

    The models are built on PyTorch's meta device (shapes only: no memory, no arithmetic), with
    1 and with 2 blocks; as every block is the same, each count is the 1-block count plus
    ``n_layer - 1`` times the difference (building all 96 blocks of GPT-3 took 0.4 s on an idle
    2-core CPU and 1.3 s under load, per slider move; the two small models take under 0.1 s; a
    test checks the result against the full model). Cached."""
    return dict(_gpt_counts(vocab_size, block_size, n_layer, n_embd))


def _model_counts(vocab_size, block_size, n_layer, n_embd):
    import torch

    from gptlib.model import GPT, GPTConfig

    config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=1,
                       n_embd=n_embd)                 # heads do not change any count
    with torch.device("meta"):
        model = GPT(config)
    return {**parameter_groups(model), "N": model.num_parameters(),
            "N_compute": model.num_parameters(non_embedding=True),
            "flops_per_token": model.flops_per_token()}


@functools.lru_cache(maxsize=256)
def _gpt_counts(vocab_size, block_size, n_layer, n_embd):
    if not isinstance(n_layer, int) or isinstance(n_layer, bool) or n_layer < 1:
        raise ValueError(f"n_layer must be a positive int, got {n_layer!r}")
    one = _model_counts(vocab_size, block_size, 1, n_embd)
    two = _model_counts(vocab_size, block_size, 2, n_embd)
    c = {k: one[k] + (n_layer - 1) * (two[k] - one[k]) for k in one}
    return (("groups", {g: c[g] for g in PARAMETER_GROUPS}), ("N", c["N"]),
            ("N_compute", c["N_compute"]), ("flops_per_token", c["flops_per_token"]))


def parameter_table(vocab_size: int, block_size: int, n_layer: int, n_embd: int,
                    n_tokens: float | None = None) -> str:
    """An HTML table: the four parameter groups (count, share, bar) and the total N; then, with
    one count for compute throughout, N' = N minus the position table (as ``GPT.flops_per_token``
    counts): N', the training FLOPs per token at full context, 6·N' + 12·L·T·C, and, given
    ``n_tokens`` D, the training compute ``gptlib.model.training_flops(N', D)`` = 6·N'·D.
    Every number comes from ``gpt_counts`` (the library's own counts of a GPT of that shape)."""
    from gptlib.model import training_flops

    counts = gpt_counts(vocab_size, block_size, n_layer, n_embd)
    groups, total, n_compute = counts["groups"], counts["N"], counts["N_compute"]
    colours = {"embeddings": "#4c72b0", "attention": "#dd8452", "MLP": "#55a868", "norms": "#c44e52"}
    rows = []
    for name, n in groups.items():
        share = n / total
        bar = (f'<div style="background:{colours[name]};height:0.8em;'
               f'width:{max(1, round(200 * share))}px"></div>')
        rows.append(f"<tr><td>{name}</td><td style='text-align:right'>{n:,}</td>"
                    f"<td style='text-align:right'>{fmt(100 * share, '.3g')}%</td><td>{bar}</td></tr>")
    flops = counts["flops_per_token"]
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
    at exactly ``n_tokens``; sliders update when released (each change builds the model on the
    meta device, see ``gpt_counts``)."""
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
