"""Chapter 8: a genre explorer — type a passage, see a fine-tuned classifier's class probabilities.

``genre_probabilities`` is the computation (testable without a kernel); ``genre_explorer`` wraps it
in a text box and a bar table (``ipywidgets``), updated on every edit.
"""

from __future__ import annotations

import html

import torch

__all__ = ["genre_probabilities", "genre_explorer"]


@torch.no_grad()
def genre_probabilities(model, tokenizer, text: str):
    """The classifier's class probabilities (K,) for ``text``, or None if no character of it is in
    the tokenizer's vocabulary. Characters outside the vocabulary (``tokenizer.stoi``) are
    dropped and only the last ``block_size`` characters are read (the model's context)."""
    context = model.backbone.config.block_size
    ids = [tokenizer.stoi[c] for c in text if c in tokenizer.stoi][-context:]
    if not ids:
        return None
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return torch.softmax(model(torch.tensor([ids], device=device))[0][0], -1).cpu()
    finally:
        model.train(was_training)


def genre_explorer(model, tokenizer, classes, text: str = ""):
    """A text box and, below it, one bar per class (``classes``: the K class names, in the
    classifier's order) showing ``genre_probabilities(model, tokenizer, box.value)``."""
    import ipywidgets as widgets

    box = widgets.Textarea(value=text, layout=widgets.Layout(width="95%", height="7em"))
    out = widgets.HTML()

    def update(change=None):
        probs = genre_probabilities(model, tokenizer, box.value)
        if probs is None:
            out.value = "<p>Type some text.</p>"
            return
        rows = "".join(
            f"<tr><td style='padding-right:8px'>{html.escape(str(name))}</td>"
            f"<td style='width:260px'><div style='background:#4c72b0;height:14px;"
            f"width:{round(260 * p)}px'></div></td>"
            f"<td style='padding-left:8px'>{round(100 * p)}%</td></tr>"
            for name, p in zip(classes, probs.tolist()))
        out.value = f"<table>{rows}</table>"

    box.observe(update, names="value")
    update()
    return widgets.VBox([box, out])
