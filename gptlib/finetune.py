"""Chapter 8: fine-tuning — a pretrained GPT, a new head, and training some or all of it.

Fine-tuning is not a new kind of training: load the pretrained weights into the same
architecture, put a small task head on top, and continue training with the same loop
(Radford et al. 2018, sec. 3.2; Howard & Ruder 2018). What changes is *which* parameters train::

    freeze(model, "all")        every weight                    (full fine-tuning)
    freeze(model, "last_k", k)  the last k blocks, ln_f, head   (cheaper, keeps early features)
    freeze(model, "head")       the head only                   (a linear probe)
    freeze(model, "lora")       low-rank adapters + head        (gptlib.lora; Hu et al. 2021)

The classifier reads the final hidden state of the *last real token*: with causal attention it
is the only position that has seen the whole passage. The loop is ``gptlib.pretrain.train``
itself — ``TrainConfig``, AdamW over the trainable parameters, warm-up and decay, gradient
accumulation and clipping — given a ``ClassificationTask`` (classification batches and accuracy)
in place of next-token windows. Generative fine-tuning (adapting the language model itself)
needs nothing new: ``gptlib.pretrain.train`` on the new text.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from gptlib.genre_data import (GENRES, THREE_CLASSES, ClassificationData, dev_plays, genre_dataset,
                               pad_batch, real_or_shuffled)
from gptlib.lora import LoRALinear
from gptlib.model import GPT
from gptlib.pretrain import TrainConfig, TrainResult, train
from gptlib.validate import check_batch, check_int, check_number, check_padding_mask

__all__ = ["load_backbone", "GPTClassifier", "freeze", "count_trainable", "FREEZE_MODES",
           "ClassificationTask", "finetune", "evaluate_classifier",
           # the task's data (gptlib.genre_data), re-exported for the chapter
           "ClassificationData", "pad_batch", "genre_dataset", "GENRES", "THREE_CLASSES",
           "dev_plays", "real_or_shuffled"]

FREEZE_MODES = ("all", "last_k", "head", "lora")


def load_backbone(source, device=None):
    """A pretrained GPT to fine-tune, and its tokenizer: returns ``(model, tokenizer or None)``.

    ``source`` is a ``GPT`` (a deep copy is returned, so several fine-tunings can start from the
    same weights) or a directory holding one of: the book's exported model (``config.json`` with
    a ``model`` section, ``gptlib.checkpoint.save_pretrained``), a training checkpoint
    (``checkpoint.json``, ``gptlib.checkpoint.save_checkpoint``), or a Hugging Face GPT-2
    ``save_pretrained`` directory (``config.json`` with ``model_type``; ``gptlib.gpt2``, no
    tokenizer: GPT-2's own BPE files are not read here). Tensors are read with safetensors only.
    ``device``: where to put the model (default: the GPT's own device, or the CPU).
    """
    if isinstance(source, GPT):
        return copy.deepcopy(source).to(device or source.wte.weight.device), None
    root, device = Path(source), device or "cpu"
    if (root / "checkpoint.json").is_file() or (root / "latest").is_file():
        from gptlib.checkpoint import find_checkpoint, load_checkpoint
        from gptlib.model import GPTConfig
        meta = find_checkpoint(root)[1]                 # a run's directory or one step's
        model = GPT(GPTConfig.from_dict(meta["model_config"])).to(device)
        return model.eval(), load_checkpoint(root, model)["tokenizer"]
    meta = json.loads((root / "config.json").read_text(encoding="utf-8")) \
        if (root / "config.json").is_file() else None
    if isinstance(meta, dict) and isinstance(meta.get("model"), dict):
        from gptlib.checkpoint import load_pretrained
        model, tokenizer, _ = load_pretrained(root, device=device)
        return model, tokenizer
    if isinstance(meta, dict) and "n_embd" in meta:
        from gptlib.gpt2 import load_hf_checkpoint
        return load_hf_checkpoint(root).to(device), None
    raise FileNotFoundError(f"{root} holds no model gptlib can load: expected a GPT instance, or a "
                            f"directory with an exported gptlib model (config.json + "
                            f"model.safetensors), a checkpoint.json, or a Hugging Face GPT-2 "
                            f"save_pretrained directory")


class GPTClassifier(nn.Module):
    """A GPT backbone + a linear head on the last real token: idx (B, T) -> logits (B, n_classes).

    ``h = ln_f(backbone.hidden_states(idx)[-1][b, last real position of b])`` (B, C), then
    ``logits = head(dropout(h))``, as GPT-1 classifies from its final token's state (Radford
    et al. 2018, eq. 3). Padding is given by ``padding_mask`` (B, T) bool, True at real tokens
    (the opposite of torch.nn.MultiheadAttention's key_padding_mask), at least one per row, or
    by ``lengths`` (B,) (the first ``lengths[b]`` tokens are real: right padding). The real
    tokens of each row are first packed to the front (order kept; the backbone also counts
    positions over real tokens only), so left, right or no padding all give the logits of the
    sequence alone. ``head``: an ``nn.Linear(C, n_classes)`` to reuse, else a new
    one with GPT-2's initialisation. ``backbone.lm_head`` stays but is not used.
    ``pooling="mean"`` reads the mean of ``ln_f`` over the real tokens instead of the last one.
    """

    def __init__(self, backbone: GPT, n_classes: int, head: nn.Linear | None = None,
                 dropout: float = 0.0, pooling: str = "last"):
        super().__init__()
        if not isinstance(backbone, GPT):
            raise TypeError(f"the backbone must be a gptlib GPT, got {type(backbone).__name__}; "
                            f"load one with load_backbone(...)")
        if not isinstance(n_classes, int) or isinstance(n_classes, bool) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        check_number("dropout", dropout, low=0.0, high=1.0, high_open=True)
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
        width = backbone.config.n_embd
        w = backbone.wte.weight
        if head is None:
            head = nn.Linear(width, n_classes, device=w.device, dtype=w.dtype)
            nn.init.normal_(head.weight, mean=0.0, std=0.02)
            nn.init.zeros_(head.bias)
        elif not isinstance(head, nn.Linear) or head.in_features != width \
                or head.out_features != n_classes:
            shape = (head.in_features, head.out_features) if isinstance(head, nn.Linear) else head
            raise ValueError(f"the head must be an nn.Linear from the backbone's width "
                             f"n_embd={width} to n_classes={n_classes}, got (in, out) = {shape}; "
                             f"a head trained on another backbone does not fit this one")
        self.backbone, self.head, self.n_classes, self.pooling = backbone, head, n_classes, pooling
        self.dropout = nn.Dropout(dropout)

    def _real_tokens(self, idx, padding_mask, lengths) -> torch.Tensor:
        """The (B, T) bool mask of real tokens, checked."""
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
            raise ValueError(f"idx must be a (B, T) tensor of token ids, got "
                             f"{tuple(getattr(idx, 'shape', ())) or type(idx).__name__}")
        check_batch("idx", idx)
        shape = tuple(idx.shape)
        if padding_mask is not None and lengths is not None:
            raise ValueError("give padding_mask or lengths, not both")
        if lengths is not None:
            if not isinstance(lengths, torch.Tensor) or lengths.is_floating_point() \
                    or lengths.shape != shape[:1]:
                raise ValueError(f"lengths must be an integer tensor of shape (B,) = {shape[:1]}, "
                                 f"got {getattr(lengths, 'dtype', type(lengths).__name__)} "
                                 f"{tuple(getattr(lengths, 'shape', ()))}")
            if int(lengths.min()) < 1 or int(lengths.max()) > shape[1]:
                raise ValueError(f"lengths must be in 1..T={shape[1]}, got values from "
                                 f"{int(lengths.min())} to {int(lengths.max())}")
            return torch.arange(shape[1], device=idx.device) < lengths.to(idx.device)[:, None]
        if padding_mask is None:
            return torch.ones(shape, dtype=torch.bool, device=idx.device)
        return check_padding_mask(padding_mask, shape)     # the rule GPT itself applies

    def features(self, idx: torch.Tensor, padding_mask: torch.Tensor | None = None,
                 lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The last real token's final state after ``ln_f`` (or the mean over the real tokens):
        (B, C), what the head reads."""
        real = self._real_tokens(idx, padding_mask, lengths)
        order = torch.sort((~real).to(torch.uint8), dim=1, stable=True).indices  # real first
        idx, real = idx.gather(1, order), real.gather(1, order)                  # (B, T) each
        x = self.backbone.hidden_states(idx, padding_mask=real)[-1]              # (B, T, C)
        if self.pooling == "mean":
            x = self.backbone.ln_f(x) * real[..., None]
            return x.sum(1) / real.sum(1, keepdim=True)
        last = real.sum(1) - 1                                                   # (B,)
        return self.backbone.ln_f(x[torch.arange(x.size(0), device=x.device), last])

    def forward(self, idx: torch.Tensor, padding_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, *, lengths: torch.Tensor | None = None):
        """idx (B, T) -> ``(logits (B, n_classes), loss)``; loss is the mean cross-entropy
        against ``labels`` (B,) in ``[0, n_classes)``, or None without labels."""
        logits = self.head(self.dropout(self.features(idx, padding_mask, lengths)))
        loss = None
        if labels is not None:
            if not isinstance(labels, torch.Tensor) or labels.is_floating_point() \
                    or labels.shape != logits.shape[:1]:
                raise ValueError(f"labels must be an integer tensor of shape (B,) = "
                                 f"{tuple(logits.shape[:1])}, got "
                                 f"{getattr(labels, 'dtype', type(labels).__name__)} "
                                 f"{tuple(getattr(labels, 'shape', ()))}")
            bad = labels[(labels < 0) | (labels >= self.n_classes)]
            if bad.numel():
                raise ValueError(f"label {int(bad[0])} is outside the classes [0, "
                                 f"{self.n_classes}); labels are class indices "
                                 f"0..{self.n_classes - 1}")
            loss = F.cross_entropy(logits, labels.long())
        return logits, loss


def freeze(model: nn.Module, mode: str, k: int | None = None) -> nn.Module:
    """Choose what trains (``requires_grad``), in place; returns ``model``.

    ``model`` is a ``GPTClassifier`` (head = ``head``) or a ``GPT`` (head = ``lm_head``, which
    is tied to ``wte``: training it trains the token embeddings too). Modes: ``"all"``
    everything; ``"last_k"`` the last ``k`` blocks, ``ln_f`` and the head; ``"head"`` the head
    only; ``"lora"`` the LoRA factors (``gptlib.lora``), plus the head of a classifier (a new
    head must learn; a GPT's ``lm_head`` is already trained, as in Hu et al. 2021). Frozen
    parameters get no gradient, so ``make_optimizer`` leaves them out: no update, no weight decay.
    """
    if mode not in FREEZE_MODES:
        raise ValueError(f"unknown freeze mode {mode!r}; choose one of {FREEZE_MODES}")
    backbone, head = (model.backbone, model.head) if isinstance(model, GPTClassifier) else \
        (model, getattr(model, "lm_head", None))
    if not isinstance(backbone, GPT):
        raise TypeError(f"freeze needs a GPTClassifier or a GPT, got {type(model).__name__}")
    n_layer = len(backbone.h)
    if mode == "last_k" and (not isinstance(k, int) or isinstance(k, bool)
                             or not 0 <= k <= n_layer):
        raise ValueError(f"mode 'last_k' needs k in 0..{n_layer} (the number of blocks to train), "
                         f"got {k!r}")
    model.requires_grad_(mode == "all")
    if mode == "last_k":
        for block in list(backbone.h)[n_layer - k:]:
            block.requires_grad_(True)
        backbone.ln_f.requires_grad_(True)
    if mode == "lora":
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_A.requires_grad_(True)
                m.lora_B.requires_grad_(True)
    if mode != "lora" or isinstance(model, GPTClassifier):   # a new head must learn; an LM's
        head.requires_grad_(True)                              # head is already trained
    return model


def count_trainable(model: nn.Module) -> int:
    """The number of trainable parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def evaluate_classifier(model: GPTClassifier, data: ClassificationData,
                        batch_size: int = 64) -> dict:
    """``{"loss", "accuracy", "confusion", "predictions"}`` over all of ``data``, in eval mode
    (the mode is put back); ``confusion[i, j]`` counts examples of class i predicted as j, (K, K)
    int64; ``predictions`` (N,) int64 is the predicted class of each example."""
    if not isinstance(model, GPTClassifier):
        raise TypeError(f"evaluate_classifier needs a GPTClassifier, got {type(model).__name__}")
    if not isinstance(data, ClassificationData) or len(data) == 0:
        got = "an empty one" if isinstance(data, ClassificationData) else type(data).__name__
        raise ValueError(f"evaluate_classifier needs a non-empty ClassificationData, got {got}")
    check_int("batch_size", batch_size, 1)
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    k = model.n_classes
    loss_sum, predictions = 0.0, []
    try:
        for ix in torch.arange(len(data)).split(batch_size):
            idx, mask, labels = data.batch(ix, device)
            logits, loss = model(idx, mask, labels)
            loss_sum += loss.item() * len(ix)
            predictions.append(logits.argmax(-1).cpu())
    finally:
        model.train(was_training)
    predictions = torch.cat(predictions)
    confusion = torch.bincount(data.labels * k + predictions, minlength=k * k).view(k, k)
    return {"loss": loss_sum / len(data), "accuracy": confusion.trace().item() / len(data),
            "confusion": confusion, "predictions": predictions}


class ClassificationTask:
    """``gptlib.pretrain.train``'s task for a ``GPTClassifier`` on ``ClassificationData``.

    Batches: ``cfg.batch_size`` examples drawn with replacement by the loop's generator (seeded
    with ``cfg.seed``); ``cfg.block_size`` is not used. Counts per micro-batch: real ``tokens``,
    ``correct`` predictions and ``examples``, giving each step's ``train_accuracy``. Evaluation:
    ``val_loss`` and ``val_accuracy`` over all of ``val_data`` (``evaluate_classifier``).
    """

    def check(self, model, cfg: TrainConfig, train_data, val_data) -> None:
        if not isinstance(model, GPTClassifier):
            raise TypeError(f"finetune trains a GPTClassifier, got {type(model).__name__}; for a "
                            f"language model use gptlib.pretrain.train")
        context = getattr(model.backbone.pos, "max_positions", None)
        for name, data in (("train_data", train_data), ("val_data", val_data)):
            if data is None:
                continue
            if not isinstance(data, ClassificationData) or len(data.classes) != model.n_classes:
                raise ValueError(f"{name} must be a ClassificationData with {model.n_classes} "
                                 f"classes")
            if context is not None and data.idx.shape[1] > context:
                raise ValueError(f"{name} holds sequences of {data.idx.shape[1]} tokens, more than "
                                 f"the model's context of {context}; use shorter passages")
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("the model has no trainable parameter; see freeze(model, mode)")

    def batch(self, data: ClassificationData, cfg: TrainConfig, generator: torch.Generator):
        """``(idx (B, T), padding_mask (B, T), labels (B,))`` of ``B = cfg.batch_size`` examples."""
        return data.batch(torch.randint(len(data), (cfg.batch_size,), generator=generator))

    def loss(self, model: GPTClassifier, batch, device):
        idx, mask, labels = (t.to(device) for t in batch)
        logits, loss = model(idx, mask, labels)
        return loss, {"tokens": int(mask.sum()), "examples": len(labels),
                      "correct": (logits.argmax(-1) == labels).sum().item()}

    def evaluate(self, model: GPTClassifier, cfg: TrainConfig, train_data, val_data) -> dict:
        if val_data is None:
            return {}
        scores = evaluate_classifier(model, val_data, cfg.batch_size)
        return {"val_loss": scores["loss"], "val_accuracy": scores["accuracy"]}

    def step_metrics(self, counts: dict) -> dict:
        return {"train_accuracy": counts["correct"] / counts["examples"]}


def finetune(model: GPTClassifier, train_data: ClassificationData, cfg: TrainConfig,
             val_data: ClassificationData | None = None, *, progress: bool = False,
             callback=None) -> TrainResult:
    """Train a classifier in place: ``gptlib.pretrain.train`` with a ``ClassificationTask``.

    The loop is pretraining's, unchanged: each of ``cfg.steps`` steps sets the learning rate
    ``lr_at(step)``, runs ``cfg.grad_accum`` micro-batches of ``cfg.batch_size`` examples (each
    loss divided by ``grad_accum`` before ``backward``), clips the gradient to ``cfg.grad_clip``
    and takes an AdamW step over the trainable parameters only (``make_optimizer``: frozen
    parameters are left out, decay on matrices). ``history`` records ``step``, ``lr``,
    ``train_loss``, ``train_accuracy`` (this step's batches), ``grad_norm``, ``tokens`` (real
    tokens seen), ``time_s``; every ``cfg.eval_every`` steps and at the end, ``val_loss`` and
    ``val_accuracy`` (all of ``val_data``). ``callback(record)`` returning True stops training.
    """
    return train(model, train_data, cfg, val_data, task=ClassificationTask(),
                 progress=progress, callback=callback)
