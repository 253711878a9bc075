"""Explorers and small HTML figures of chapter 7 (sampling)."""

from __future__ import annotations

import html

import torch

from gptlib.viz.controls import check_on_grid, fmt
from gptlib.viz.tokens import _label

__all__ = ["sampling_distribution", "sampling_table", "sampling_explorer"]


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
    check_on_grid("temperature", temperature, 0.0, 2.0, 0.05)
    check_on_grid("top_p", top_p, 0.05, 1.0, 0.05)
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
        entropy = float(-(nz * nz.log()).sum())         # -0.0 when one token is left
        text = generate_text(model, tokenizer, choose.value, n_chars, temperature=t, top_p=p,
                             generator=torch.Generator().manual_seed(seed))
        mode = "greedy (argmax)" if t == 0 else f"temperature {t:.2f}, top-p {p:.2f}"
        out.value = (f"<p>{mode}: {kept} of {z.numel()} tokens can be sampled; entropy of the "
                     f"sampling distribution {fmt(entropy)} nats</p>"
                     + sampling_table(p_model, p_sample, lambda i: tokenizer.decode([i]))
                     + "<p>a continuation sampled with these settings (seed "
                     f"{seed}):</p><pre style='white-space:pre-wrap'><b>"
                     f"{html.escape(choose.value)}</b>{html.escape(text)}</pre>")

    for w in (choose, temp, nucleus):
        w.observe(update, names="value")
    update()
    return widgets.VBox([choose, widgets.HBox([temp, nucleus]), out])
