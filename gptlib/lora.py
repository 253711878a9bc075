"""Chapter 8: LoRA — fine-tuning a few low-rank matrices instead of the whole model.

Low-Rank Adaptation (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models",
eq. 3) keeps a pretrained weight W (out x in) frozen and learns an update of low rank r::

    h = W x + (alpha / r) * B A x          A: (r, in), B: (out, r), r << min(in, out)

A starts Gaussian, N(0, 1/in), and B at zero, so at the start ``B A = 0`` and the adapted model
computes exactly what the pretrained one does; training moves only A and B: ``r * (in + out)``
numbers per layer instead of ``in * out``. Dividing by r means alpha need not be retuned when r
changes (sec. 4.1: the scaling "helps to reduce the need to retune hyperparameters when we vary
r"; Hu et al. set alpha to the first r they try and leave it). After training,
``W + (alpha / r) B A`` is one matrix again (``merge_lora``):
the fine-tuned model is a plain model, with no extra cost at inference (sec. 4.1).

    apply_lora(model, targets=("attn.c_attn", "attn.c_proj"), r=8, alpha=16)  # in place
    ... train ...                     (only the LoRA factors, and whatever else is trainable)
    plain = merge_lora(model)         # a copy with nn.Linear everywhere, the same outputs
"""

from __future__ import annotations

import copy
import math
import re

import torch
from torch import nn

from gptlib.validate import check_finite, check_number

__all__ = ["LoRALinear", "apply_lora", "merge_lora", "lora_parameters", "linear_layer_names"]

DEFAULT_TARGETS = ("attn.c_attn", "attn.c_proj")


class LoRALinear(nn.Module):
    """An ``nn.Linear`` plus a trainable low-rank update: x (..., in) -> (..., out).

    ``forward(x) = base(x) + (alpha / r) * dropout(x) @ A.T @ B.T`` (Hu et al. 2021, eq. 3).
    ``base`` keeps the pretrained weight (frozen here); ``lora_A`` (r, in) is drawn from
    N(0, 1/in) so that ``A x`` has entries of size ~|x|, and ``lora_B`` (out, r) starts at zero,
    so the layer starts out computing exactly ``base(x)``. ``dropout`` applies to the LoRA branch
    only, as in the paper's released code. Device and dtype follow ``base``'s weight.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        _check_rank(r, alpha)
        check_number("LoRA dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.base, self.r, self.alpha = base, r, float(alpha)
        self.scale = self.alpha / r
        w = base.weight
        a = torch.randn(r, base.in_features, generator=generator) / math.sqrt(base.in_features)
        self.lora_A = nn.Parameter(a.to(device=w.device, dtype=w.dtype))            # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=w.device,
                                               dtype=w.dtype))                      # (out, r)
        self.dropout = nn.Dropout(dropout)
        for p in base.parameters():
            p.requires_grad_(False)

    @property
    def in_features(self) -> int:          # read like an nn.Linear's (e.g. by input checks)
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()                # (..., out)
        return self.base(x) + self.scale * update

    def delta_weight(self) -> torch.Tensor:
        """The learned update ``(alpha / r) B A``, (out, in): what ``merge`` adds to W."""
        return self.scale * (self.lora_B @ self.lora_A)

    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` with weight ``W + (alpha / r) B A`` and the same bias.

        Its parameters are new tensors with the base weight's ``requires_grad``; this module is
        left unchanged.
        """
        b = self.base
        merged = nn.Linear(b.in_features, b.out_features, bias=b.bias is not None,
                           device=b.weight.device, dtype=b.weight.dtype)
        with torch.no_grad():
            delta = self.delta_weight()
            check_finite("the LoRA update (alpha / r) B A", delta,
                         "training diverged; merging would put NaN/inf into the weights")
            merged.weight.copy_(b.weight + delta)
            if b.bias is not None:
                merged.bias.copy_(b.bias)
        merged.weight.requires_grad_(b.weight.requires_grad)
        if b.bias is not None:
            merged.bias.requires_grad_(b.bias.requires_grad)
        return merged

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, scale={self.scale:g}"


def _check_rank(r, alpha) -> None:
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise ValueError(f"LoRA rank r must be an int >= 1, got {r!r}; r is the inner size of "
                         f"the update B A (typical values 1-64)")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) \
            or not 0 < alpha < float("inf"):
        raise ValueError(f"LoRA alpha must be a number > 0, got {alpha!r}; the update is scaled "
                         f"by alpha / r")


def linear_layer_names(model: nn.Module) -> list[str]:
    """The names of ``model``'s linear layers, block numbers folded: ``h.<i>.attn.c_attn``;
    layers that already have LoRA are marked ``(LoRA)``. What ``apply_lora``'s targets can name."""
    names = []
    for name, module in _linear_modules(model):
            folded = re.sub(r"(^|\.)\d+(\.|$)", r"\1<i>\2", name)
            folded += " (LoRA)" if isinstance(module, LoRALinear) else ""
            if folded not in names:
                names.append(folded)
    return names


def _linear_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every nn.Linear and LoRALinear, except the bases inside LoRALinears."""
    bases = {id(m.base) for m in model.modules() if isinstance(m, LoRALinear)}
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (nn.Linear, LoRALinear)) and id(m) not in bases]


def _matches(name: str, target: str) -> bool:
    """``target`` names ``name`` or a dotted suffix of it: 'attn.c_attn' matches 'h.3.attn.c_attn'
    but 'c_attn' does not match 'xc_attn'."""
    return name == target or name.endswith("." + target)


def apply_lora(model: nn.Module, targets=DEFAULT_TARGETS, r: int = 8, alpha: float = 16.0,
               dropout: float = 0.0, generator: torch.Generator | None = None) -> nn.Module:
    """Replace every ``nn.Linear`` whose name ends with one of ``targets`` by a ``LoRALinear``.

    In place; returns ``model``. Names are matched by dotted suffix, so ``"attn.c_attn"`` adapts
    the query/key/value projection of every block and ``"h.11.mlp.c_fc"`` one layer only. The
    wrapped layers' own weights are frozen; nothing else changes — call
    ``gptlib.finetune.freeze(model, "lora")`` to also freeze everything but the adapters (and a
    classifier's head), which is the paper's setting. Hu et al. adapt W_q and W_v (sec. 7.1); in
    GPT-2 these share ``attn.c_attn`` with W_k, so adapting it adapts all three.

    Raises ``ValueError`` if a target matches no linear layer (listing the valid names), if it
    matches a layer that already has LoRA, or if ``r < 1``.
    """
    _check_rank(r, alpha)
    check_number("LoRA dropout", dropout, low=0.0, high=1.0, high_open=True)
    if not isinstance(model, nn.Module):
        raise TypeError(f"apply_lora adapts an nn.Module (a GPT or GPTClassifier), got "
                        f"{type(model).__name__}")
    if isinstance(targets, str):
        targets = (targets,)
    if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
        raise TypeError(f"targets must be a layer name or a list of them, e.g. 'attn.c_attn', "
                        f"got {targets!r}")
    targets = tuple(targets)
    if not targets:
        raise ValueError("apply_lora needs at least one target layer name, e.g. 'attn.c_attn'")
    linears = {n: m for n, m in _linear_modules(model) if isinstance(m, nn.Linear)}
    adapted = [n for n, m in _linear_modules(model) if isinstance(m, LoRALinear)]
    for target in targets:
        done = [n for n in adapted if _matches(n, target)]
        if done:
            raise ValueError(f"LoRA target {target!r} matches {done[0]!r}, which already has LoRA; "
                             f"merge_lora first, or choose other layers")
        if not any(_matches(n, target) for n in linears):
            raise ValueError(f"LoRA target {target!r} matches no nn.Linear layer of "
                             f"{type(model).__name__}; valid names (match any dotted suffix, "
                             f"<i> = block number): {linear_layer_names(model)}")
    chosen = [n for n in linears if any(_matches(n, t) for t in targets)]
    owners = {}                                   # parameter id -> the modules that hold it
    for n, m in model.named_modules(remove_duplicate=False):
        for p in m.parameters(recurse=False):
            owners.setdefault(id(p), set()).add(n)
    for name in chosen:
        tied = owners[id(linears[name].weight)] - {name}
        if tied:
            raise ValueError(f"LoRA target {name!r} shares its weight with {sorted(tied)} (tied "
                             f"weights, as GPT's lm_head and wte): merging the update would untie "
                             f"them, and the merged model could no longer be saved and loaded as "
                             f"a GPT; adapt other layers (e.g. 'attn.c_attn', 'mlp.c_fc')")
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(linears[name], r, alpha, dropout, generator))
    return model


def merge_lora(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The model with every ``LoRALinear`` merged into a plain ``nn.Linear`` (``LoRALinear.merge``).

    By default returns a copy (weight tying survives ``copy.deepcopy``) and leaves ``model`` as it
    was; ``inplace=True`` merges ``model`` itself. The result computes the same outputs up to
    rounding (``W x + s B (A x)`` vs ``(W + s B A) x``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"merge_lora merges an nn.Module, got {type(model).__name__}")
    out = model if inplace else copy.deepcopy(model)
    if isinstance(out, LoRALinear):
        return out.merge()
    lora = [(n, m) for n, m in out.named_modules() if isinstance(m, LoRALinear)]
    for name, module in lora:
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, child, module.merge())
    return out


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The LoRA factors (every ``lora_A`` and ``lora_B``) of ``model``."""
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_A, m.lora_B)]
