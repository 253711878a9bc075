"""Chapter 8: a linear probe — a classifier trained on frozen features, to convergence.

Freezing the whole backbone and training only the head is a convex problem: multinomial logistic
regression on the features ``h`` (B, C) that ``GPTClassifier.features`` computes. Rather than run
a few steps of SGD (which leaves it wherever the budget ends), solve it: compute every training
example's features once, standardise them, and minimise the cross-entropy plus an L2 penalty with
L-BFGS until it converges. The standardisation is then folded into the head, so the result is an
ordinary ``GPTClassifier`` whose ``head`` reads the raw features. Used as a measuring instrument,
a probe asks how much of the task the features already hold (Alain & Bengio 2016; the linear
evaluation of GPT-1's ablations and of Chen et al. 2020's image GPT).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from gptlib.finetune import ClassificationData, GPTClassifier

__all__ = ["classifier_features", "fit_linear_probe"]


@torch.no_grad()
def classifier_features(model: GPTClassifier, data: ClassificationData,
                        batch_size: int = 256) -> torch.Tensor:
    """(N, C): ``model.features`` of every example of ``data``, in eval mode, no gradient."""
    if not isinstance(model, GPTClassifier):
        raise TypeError(f"classifier_features needs a GPTClassifier, got {type(model).__name__}")
    if not isinstance(data, ClassificationData) or len(data) == 0:
        raise ValueError("classifier_features needs a non-empty ClassificationData")
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    try:
        out = [model.features(*data.batch(ix, device)[:2]).cpu()
               for ix in torch.arange(len(data)).split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def fit_linear_probe(model: GPTClassifier, data: ClassificationData, weight_decay: float = 1e-3,
                     max_iter: int = 500, features: torch.Tensor | None = None) -> dict:
    """Fit ``model.head`` alone, in place, by L-BFGS on frozen features; the backbone is untouched.

    Minimises ``cross_entropy(W z + b, y) + weight_decay * ||W||^2`` over the standardised
    features ``z = (h - mean) / std`` (per feature, over ``data``), then writes ``W / std`` and
    ``b - (W / std) · mean`` into the head, so ``model(idx)`` gives the probe's logits directly.
    ``features``: (N, C) precomputed ``classifier_features(model, data)``, to reuse.
    Returns ``{"loss": final training objective, "iterations": L-BFGS iterations,
    "train_accuracy": ...}``.
    """
    if not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    h = classifier_features(model, data) if features is None else features
    if h.shape != (len(data), model.head.in_features):
        raise ValueError(f"features must be (N, C) = {(len(data), model.head.in_features)}, got "
                         f"{tuple(h.shape)}")
    h = h.double()
    mean, std = h.mean(0), h.std(0).clamp_min(1e-6)
    z, y = (h - mean) / std, data.labels
    w = torch.zeros(model.n_classes, h.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(model.n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def objective():
        opt.zero_grad()
        loss = F.cross_entropy(z @ w.T + b, y) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    loss = opt.step(objective)
    with torch.no_grad():
        scale = w / std                                                   # (K, C)
        model.head.weight.copy_(scale.to(model.head.weight.dtype))
        model.head.bias.copy_((b - scale @ mean).to(model.head.bias.dtype))
        accuracy = ((z @ w.T + b).argmax(1) == y).double().mean().item()
    return {"loss": float(loss.detach()), "iterations": opt.state[w]["n_iter"],
            "train_accuracy": accuracy}
