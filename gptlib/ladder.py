"""The loss ladder: the minimal model of each of chapters 1-7, measured with one yardstick.

Every rung is a language model over the book's characters, trained on the train plays and scored
by its mean cross-entropy (nats per character) on the validation plays. The neural rungs all see
the same number of training tokens (``BUDGET``), with the same recipe (``RECIPE``: AdamW, warm-up
then cosine decay, weight decay, gradient clipping) except the learning rate, which is chosen per
rung from ``LR_GRID`` by validation loss. They are scored with ``gptlib.pretrain.dataset_loss``
on *every* window of ``BUDGET["block_size"]`` characters of the validation text (the context
restarts at each window, as in training); the counted n-grams are scored on the same windows
(``ngram_window_loss``), so every rung predicts each character from the same characters. Each
rung adds one thing to the one before it::

    ch1  unigram, bigram (counted), neural bigram (a trained V x V table), best counted n-gram
    ch2  token embeddings -> one causal attention head -> output layer; then four heads
    ch3  the four heads without the causal mask (scored honestly: one token at a time)
    ch4  + MLP, + residual connections, + LayerNorm (pre-LN): one block; then three blocks
    ch5  the three blocks + positions: learned, sinusoidal, RoPE, ALiBi (ch4's stack has none)
    ch6  the assembled GPT of chapter 6's small config: learned positions, tied output layer
    ch7  the book's shipped model (``data/pretrained/shakespeare_char``: wider, deeper, longer)

Up to chapter 5 the output layer is its own matrix (``tie_weights=False``); chapter 6 ties it
to the token embeddings as GPT-2 does, and that is the only difference between the ch6 rung and
ch5's learned-position rung. ``scripts/experiments/ladder.py`` trains every rung at several
seeds and writes ``data/results/ladder.json``; the chapters read that file (``read_ladder``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from gptlib.model import GPT, GPTConfig
from gptlib.ngram import BigramLanguageModel
from gptlib.pretrain import consecutive_windows
from gptlib.trainconfig import TrainConfig

__all__ = ["Rung", "RUNGS", "BUDGET", "RECIPE", "LR_VALUES", "LR_GRID", "TABLE_LR_GRID", "next_lr", "NGRAM_GRID", "rung", "build_model",
           "train_config", "honest_loss", "read_ladder", "ladder_summary", "ladder_table", "rung_losses", "rung_gap", "ngram_window_loss"]

# Every neural rung: 1,500 steps of 32 windows of 64 characters = 3,072,000 training tokens.
BUDGET = {"steps": 1500, "batch_size": 32, "block_size": 64}
RECIPE = {"warmup_steps": 100, "schedule": "cosine", "min_lr_ratio": 0.1, "weight_decay": 0.1,
          "betas": (0.9, 0.99), "grad_clip": 1.0}
# Learning rates are chosen from LR_VALUES: first the rung's starting grid (LR_GRID, or
# TABLE_LR_GRID for the neural bigram, one table of logits that must move several nats from zero);
# while the best is at an end of what was tried, the next value beyond it is tried too.
LR_VALUES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
LR_GRID = (1e-3, 3e-3, 1e-2)
TABLE_LR_GRID = (1e-2, 3e-2, 1e-1)
# The counted n-grams: every order n and add-alpha smoothing here, the best by validation loss.
NGRAM_GRID = {"n": (2, 3, 4, 5, 6, 7), "alpha": (0.01, 0.03, 0.1, 0.3)}
# The stack of chapters 2-6: chapter 6's small config (width 48, four heads; three blocks).
STACK = {"n_embd": 48, "n_head": 4, "dropout": 0.0, "fast": True}
_BARE = {"n_layer": 1, "mlp": False, "residual": False, "norm": "none", "pos_encoding": "none",
         "tie_weights": False}


@dataclasses.dataclass(frozen=True)
class Rung:
    """One rung: ``name`` (the key in the results file), the ``chapter`` that introduces it, a
    ``label`` for tables, ``kind`` ("count": a counted n-gram; "table": the neural bigram;
    "gpt": a ``GPT`` built from ``STACK`` updated with ``model``; "shipped": the shipped model),
    and ``honest``: score it one token at a time (only the unmasked model needs it).
    ``lr_grid``: the learning rates tried (``LR_GRID``, or ``TABLE_LR_GRID`` for the table)."""

    name: str
    chapter: int
    label: str
    kind: str
    model: dict = dataclasses.field(default_factory=dict)
    honest: bool = False

    @property
    def lr_grid(self) -> tuple:
        return TABLE_LR_GRID if self.kind == "table" else LR_GRID


def _gpt(**changes) -> dict:
    return {**_BARE, **changes}


_FULL = _gpt(n_layer=3, mlp=True, residual=True, norm="layernorm")
RUNGS = (
    Rung("unigram", 1, "unigram (counted)", "count", {"n": 1}),
    Rung("bigram", 1, "bigram (counted)", "count", {"n": 2}),
    Rung("neural-bigram", 1, "bigram (trained table)", "table"),
    Rung("ngram", 1, "best counted n-gram", "count"),
    Rung("attn-1head", 2, "embeddings + 1 attention head", "gpt", _gpt(n_head=1)),
    Rung("attn-4heads", 2, "embeddings + 4 heads", "gpt", _gpt()),
    Rung("attn-4heads-unmasked", 3, "4 heads, no causal mask (honest)", "gpt",
         _gpt(causal=False), honest=True),
    Rung("mlp", 4, "+ MLP", "gpt", _gpt(mlp=True)),
    Rung("residual", 4, "+ residual connections", "gpt", _gpt(mlp=True, residual=True)),
    Rung("layernorm", 4, "+ LayerNorm (pre-LN): 1 block", "gpt",
         _gpt(mlp=True, residual=True, norm="layernorm")),
    Rung("3-blocks", 4, "3 blocks", "gpt", _FULL),
    Rung("pos-learned", 5, "3 blocks + learned positions", "gpt",
         {**_FULL, "pos_encoding": "learned"}),
    Rung("pos-sinusoidal", 5, "3 blocks + sinusoidal", "gpt",
         {**_FULL, "pos_encoding": "sinusoidal"}),
    Rung("pos-rope", 5, "3 blocks + RoPE", "gpt", {**_FULL, "pos_encoding": "rope"}),
    Rung("pos-alibi", 5, "3 blocks + ALiBi", "gpt", {**_FULL, "pos_encoding": "alibi"}),
    Rung("gpt", 6, "the assembled GPT (tied output layer)", "gpt",
         {**_FULL, "pos_encoding": "learned", "tie_weights": True}),
    Rung("shipped", 7, "the shipped model (4 x 128, 6.6M tokens)", "shipped"),
)
_BY_NAME = {r.name: r for r in RUNGS}


def rung(name: str) -> Rung:
    """The rung called ``name`` (one of ``[r.name for r in RUNGS]``)."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown rung {name!r}; the ladder has {list(_BY_NAME)}")
    return _BY_NAME[name]


def next_lr(tried: dict) -> float | None:
    """The next learning rate to try, given ``tried`` (lr -> validation loss): the neighbour in
    ``LR_VALUES`` beyond the best one if the best is at an end of what was tried (and the list
    goes on), else None — the best then has a worse value tried on each side of it."""
    lrs = sorted(tried)
    best = min(lrs, key=lambda lr: tried[lr])
    i = LR_VALUES.index(best)
    if best == lrs[-1] and i + 1 < len(LR_VALUES):
        return LR_VALUES[i + 1]
    if best == lrs[0] and i > 0:
        return LR_VALUES[i - 1]
    return None


def build_model(name: str, vocab_size: int) -> nn.Module:
    """A freshly initialised model for a trained rung ("table" or "gpt"); seed before calling.

    "gpt" rungs are ``GPT(GPTConfig(vocab_size, block_size=BUDGET["block_size"], **STACK,
    **rung.model))`` on the fast path (the same function as the teaching path, faster)."""
    r = rung(name)
    if r.kind == "table":
        return BigramLanguageModel(vocab_size)
    if r.kind == "gpt":
        return GPT(GPTConfig(vocab_size=vocab_size, block_size=BUDGET["block_size"],
                             **{**STACK, **r.model}))
    raise ValueError(f"rung {name!r} is a {r.kind!r} rung; only 'table' and 'gpt' rungs train")


def train_config(lr: float, seed: int, *, steps: int | None = None) -> TrainConfig:
    """The ladder's ``TrainConfig``: ``BUDGET`` and ``RECIPE`` at learning rate ``lr``.

    ``steps`` shortens the run (a chapter's live cell); the warm-up shrinks with it."""
    steps = BUDGET["steps"] if steps is None else steps
    return TrainConfig(steps=steps, batch_size=BUDGET["batch_size"],
                       block_size=BUDGET["block_size"], lr=lr,
                       min_lr=lr * RECIPE["min_lr_ratio"],
                       warmup_steps=min(RECIPE["warmup_steps"], steps // 10),
                       schedule=RECIPE["schedule"], weight_decay=RECIPE["weight_decay"],
                       betas=RECIPE["betas"], grad_clip=RECIPE["grad_clip"], seed=seed)


@torch.no_grad()
def honest_loss(model: nn.Module, data: torch.Tensor, block_size: int,
                batch_size: int = 256) -> float:
    """``dataset_loss``'s number for a model that may look ahead: the same windows of
    ``block_size`` tokens, but the token at position t is predicted from a forward pass over the
    window's tokens ``0..t`` only, so no later token can reach the prediction.

    For a causal model this equals ``dataset_loss`` (up to float rounding); for chapter 3's
    unmasked model it is the loss it really achieves when generating, one token at a time.
    Costs ``block_size`` forward passes per window. data: (N,) int64."""
    device = next(model.parameters()).device
    x, y = consecutive_windows(data, block_size)
    n = len(x)
    was_training = model.training
    model.eval()
    try:
        total = 0.0
        for i in range(0, n, batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            for t in range(block_size):
                logits = model(xb[:, :t + 1])[0][:, -1]                # (b, V): sees 0..t
                total += F.cross_entropy(logits.double(), yb[:, t], reduction="sum").item()
    finally:
        model.train(was_training)
    return total / (n * block_size)


def read_ladder(path) -> dict:
    """The results file of ``scripts/experiments/ladder.py``: ``{"settings": ..., "runs": [...]}``.

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file if it is missing or holds no
    runs, so a chapter never draws an empty ladder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run scripts/experiments/ladder.py")
    results = json.loads(path.read_text())
    if not results.get("runs"):
        raise ValueError(f"{path} holds no runs")
    unknown = sorted({r["rung"] for r in results["runs"]} - set(_BY_NAME))
    if unknown:
        raise ValueError(f"{path} holds rungs this gptlib does not know: {unknown}")
    return results


def ladder_summary(results: dict, upto_chapter: int = 7) -> list[dict]:
    """One dict per rung of chapters <= ``upto_chapter``, in ladder order: ``rung``, ``chapter``,
    ``label``, ``losses`` (validation loss of each final run, by seed), ``mean``, ``spread``
    (max - min; 0 for a single run), ``lr``, ``parameters``, ``tokens``."""
    out = []
    for r in RUNGS:
        if r.chapter > upto_chapter:
            continue
        runs = [x for x in results["runs"] if x["rung"] == r.name and x.get("final", True)]
        if not runs:
            continue
        losses = [x["val_loss"] for x in runs]
        out.append({"rung": r.name, "chapter": r.chapter, "label": r.label, "losses": losses,
                    "seeds": [x.get("seed") for x in runs],
                    "mean": sum(losses) / len(losses), "spread": max(losses) - min(losses),
                    "lr": runs[0].get("lr"), "parameters": runs[0].get("parameters"),
                    "tokens": runs[0].get("tokens")})
    return out


def ladder_table(results: dict, upto_chapter: int = 7) -> str:
    """The ladder so far as a text table: chapter, rung, runs, validation loss (mean and the
    min..max over seeds), parameters."""
    rows = ladder_summary(results, upto_chapter)
    width = max(len(r["label"]) for r in rows)
    lines = [f"ch  {'rung':<{width}}  runs  val loss (min..max)     params",
             "-" * (width + 44)]
    for r in rows:
        lo, hi = min(r["losses"]), max(r["losses"])
        span = f"({lo:.3f}..{hi:.3f})" if len(r["losses"]) > 1 else " " * 14
        params = f"{r['parameters']:>9,}" if r["parameters"] is not None else " " * 9
        lines.append(f"{r['chapter']:<3} {r['label']:<{width}}  {len(r['losses']):>4}  "
                     f"{r['mean']:.3f} {span}  {params}")
    return "\n".join(lines)



def rung_losses(results: dict, name: str) -> list[float]:
    """The validation losses of rung ``name``'s final runs (one per seed), from the results."""
    rung(name)
    losses = [x["val_loss"] for x in results["runs"] if x["rung"] == name and x.get("final", True)]
    if not losses:
        raise ValueError(f"the results hold no final run of rung {name!r}")
    return losses


def rung_gap(results: dict, better: str, worse: str) -> float:
    """How far rung ``better`` is below rung ``worse`` in the worst case over seeds:
    ``min(losses of worse) - max(losses of better)``, in nats. Positive: every run of ``better``
    beats every run of ``worse``; a chapter asserts a claim with it, e.g. ``rung_gap(r, "residual",
    "mlp") > 0.1``, a margin that no seed can make up."""
    return min(rung_losses(results, worse)) - max(rung_losses(results, better))


def ngram_window_loss(train_ids: list[int], eval_ids: list[int], n: int, vocab_size: int,
                      alpha: float, block_size: int) -> float:
    """A counted n-gram scored on the same windows as the neural rungs (``dataset_loss``).

    ``eval_ids`` is cut into consecutive windows of ``block_size`` targets, each predicted from
    the tokens before it *inside its window* — exactly what a neural rung sees. The target at
    window position i therefore has ``min(i + 1, n - 1)`` tokens of context, and is scored by
    the add-``alpha`` k-gram of that order (``gptlib.ngram.ngram_loss``'s estimate, k = context
    + 1): at the start of each window the model backs off to shorter contexts, as the neural
    models must. Returns the mean loss over the ``(len(eval_ids) - 1) // block_size *
    block_size`` scored targets, in nats."""
    from collections import Counter

    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    grams = [Counter() for _ in range(n + 1)]          # grams[k]: counts of k-token tuples
    for k in range(1, n + 1):
        grams[k].update(tuple(train_ids[i:i + k]) for i in range(len(train_ids) - k + 1))
    contexts = [Counter() for _ in range(n + 1)]       # contexts[k]: counts of (k-1)-prefixes
    for k in range(1, n + 1):
        for g, c in grams[k].items():
            contexts[k][g[:-1]] += c
    windows = (len(eval_ids) - 1) // block_size
    total = 0.0
    for w in range(windows):
        start = w * block_size
        for i in range(block_size):
            target = start + i + 1
            ctx = min(i + 1, n - 1)                    # tokens start..target-1, at most n-1
            g = tuple(eval_ids[target - ctx:target + 1])
            k = ctx + 1
            total -= math.log((grams[k].get(g, 0) + alpha)
                              / (contexts[k].get(g[:-1], 0) + alpha * vocab_size))
    return total / (windows * block_size)
