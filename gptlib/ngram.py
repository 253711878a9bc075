"""Counting language models: the bigram and its n-gram relatives (chapter 1).

A bigram model predicts the next token from the current one alone:
``p(x_t | x_{<t}) ≈ p(x_t | x_{t-1})``. It can be *counted* — the maximum-likelihood estimate is
the table of relative frequencies — or *trained* as a ``(V, V)`` table of logits by gradient
descent (:class:`BigramLanguageModel`). Both minimise the same cross-entropy on the training
text, where the counted table is the minimum and gradient descent approaches it; chapter 1
measures how close it gets.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["count_bigrams", "bigram_probs", "bigram_loss", "ngram_loss", "ngram_losses", "NgramResult",
           "BigramLanguageModel", "sample_from_probs"]


def _check_ids(ids: torch.Tensor, vocab_size: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.ndim != 1:
        raise ValueError("ids must be a 1-D int64 tensor of token ids")
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in 0..{vocab_size - 1}; found "
                         f"{int(ids.min())}..{int(ids.max())}")


def _as_id_list(ids, vocab_size: int, name: str) -> list[int]:
    """A list of int token ids in ``0..vocab_size-1`` (from a list or a 1-D tensor)."""
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
        raise ValueError(f"vocab_size must be an int >= 1, got {vocab_size!r}")
    if isinstance(ids, torch.Tensor):
        if ids.ndim != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1-D tensor of integer token ids, got {ids.dtype} "
                             f"of shape {tuple(ids.shape)}")
        ids = ids.tolist()
    ids = list(ids)
    if ids and all(type(t) is int for t in ids) and 0 <= min(ids) and max(ids) < vocab_size:
        return ids                           # the fast check; below, find the culprit
    for i, t in enumerate(ids):
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab_size:
            raise ValueError(f"{name}[{i}] = {t!r} is not a token id in 0..{vocab_size - 1}")
    return ids


def _check_table(probs: torch.Tensor) -> None:
    """A ``(V, V)`` table of probabilities whose rows sum to 1."""
    if not isinstance(probs, torch.Tensor) or probs.ndim != 2 or probs.shape[0] != probs.shape[1] \
            or not probs.is_floating_point():
        raise ValueError(f"probs must be a (V, V) float tensor, p(b | a) in row a; got "
                         f"{getattr(probs, 'dtype', type(probs).__name__)} of shape "
                         f"{tuple(getattr(probs, 'shape', ()))}")
    p = probs.double()
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
        raise ValueError("probs must be finite and non-negative")
    worst = float((p.sum(dim=1) - 1).abs().max())
    if worst > 1e-6:
        raise ValueError(f"each row of probs must sum to 1 (a distribution over the next token); "
                         f"the worst is off by {worst:.3g}")


def count_bigrams(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``N[a, b]`` = how often token ``b`` follows token ``a`` in ``ids`` (shape ``(V, V)``)."""
    _check_ids(ids, vocab_size)
    pairs = ids[:-1] * vocab_size + ids[1:]
    return torch.bincount(pairs, minlength=vocab_size * vocab_size).view(vocab_size, vocab_size)


def bigram_probs(counts: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """Row-normalised counts with add-``alpha`` smoothing, in float64: ``P[a, b] = p(b | a)``.

    With ``alpha = 0`` this is the maximum-likelihood estimate; a row that never occurs (a token
    never followed by anything) becomes uniform rather than 0/0.
    """
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if not isinstance(counts, torch.Tensor) or counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"counts must be a (V, V) tensor of pair counts (count_bigrams' output), got "
                         f"shape {tuple(getattr(counts, 'shape', ()))}")
    if bool((counts < 0).any()):
        raise ValueError("counts must be non-negative")
    c = counts.double() + alpha
    totals = c.sum(dim=1, keepdim=True)
    uniform = torch.full_like(c, 1.0 / c.shape[1])
    return torch.where(totals > 0, c / totals.clamp_min(1e-300), uniform)


def bigram_loss(probs: torch.Tensor, ids: torch.Tensor) -> float:
    """Mean negative log-likelihood (nats per token) of ``ids[1:]`` given ``ids[:-1]``."""
    _check_table(probs)
    _check_ids(ids, probs.shape[0])
    if len(ids) < 2:
        raise ValueError(f"a bigram loss needs at least 2 tokens (one prediction), got {len(ids)}")
    return float(-probs[ids[:-1], ids[1:]].log().mean())


@dataclass(frozen=True)
class NgramResult:
    """What :func:`ngram_loss` measured for one ``n``."""
    loss: float            # validation loss, nats per token
    contexts: int          # distinct (n-1)-token contexts seen in training
    seen_fraction: float   # share of evaluated positions whose context occurs in training
    median_count: float    # median number of training occurrences of an evaluated context
    unseen_fraction: float = 0.0  # share of evaluated positions whose whole n-gram (context
    #                               and next token) never occurs in training


def ngram_loss(train_ids: list[int], eval_ids: list[int], n: int, vocab_size: int,
               alpha: float = 0.1) -> NgramResult:
    """Evaluate a counted n-gram model with add-``alpha`` smoothing on ``eval_ids``.

    The model conditions on the previous ``n - 1`` tokens:
    ``p(b | ctx) = (N[ctx, b] + alpha) / (N[ctx] + alpha * V)``. There is no back-off: a context
    never seen in training gets exactly the uniform ``1 / V``, and a context seen only a few times
    gets a noisy estimate of its next-token distribution, which the ``alpha * V`` pseudo-counts
    only partly temper. Both get more common as ``n`` grows, which is why the loss eventually
    rises again, whatever ``alpha``. (A full table would have ``V**(n-1)`` rows.)

    Every token of ``eval_ids`` that has ``n - 1`` tokens before it is scored; the mean is over
    those ``len(eval_ids) - (n - 1)`` positions.
    """
    return ngram_losses(train_ids, eval_ids, n, vocab_size, (alpha,))[alpha]


def ngram_losses(train_ids: list[int], eval_ids: list[int], n: int, vocab_size: int,
                 alphas) -> dict[float, NgramResult]:
    """:func:`ngram_loss` for several smoothings at once: ``{alpha: NgramResult}``.

    The counts are made once and every ``alpha`` is scored from them; each result is exactly
    (bit for bit) what ``ngram_loss(..., alpha=alpha)`` returns.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    alphas = tuple(alphas)
    if not alphas:
        raise ValueError("alphas is empty; give at least one smoothing value")
    for alpha in alphas:
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}: without smoothing an n-gram "
                             f"never seen in training has probability 0 and the loss is "
                             f"infinite")
    train_ids = _as_id_list(train_ids, vocab_size, "train_ids")
    eval_ids = _as_id_list(eval_ids, vocab_size, "eval_ids")
    for name, ids in (("train_ids", train_ids), ("eval_ids", eval_ids)):
        if len(ids) < n:
            raise ValueError(f"{name} has {len(ids)} token(s); an n-gram model with n={n} needs at "
                             f"least {n} (one context of {n - 1} tokens and the token after it)")
    k = n - 1
    grams = Counter(tuple(train_ids[i:i + n]) for i in range(len(train_ids) - k))
    contexts = Counter()
    for g, c in grams.items():
        contexts[g[:-1]] += c
    totals, seen, unseen, counts = [0.0] * len(alphas), 0, 0, []
    for i in range(k, len(eval_ids)):
        g = tuple(eval_ids[i - k:i + 1])
        context_count = contexts.get(g[:-1], 0)
        gram_count = grams.get(g, 0)
        seen += context_count > 0
        unseen += gram_count == 0
        counts.append(context_count)
        for j, alpha in enumerate(alphas):
            totals[j] -= math.log((gram_count + alpha) / (context_count + alpha * vocab_size))
    positions = len(eval_ids) - k
    median = float(torch.tensor(counts, dtype=torch.float64).median())
    return {alpha: NgramResult(total / positions, len(contexts), seen / positions, median,
                               unseen / positions)
            for alpha, total in zip(alphas, totals)}


class BigramLanguageModel(nn.Module):
    """A ``(V, V)`` table of logits: row ``a`` holds the scores of every token that may follow ``a``.

    ``forward(idx)`` looks up one row per position. This is an embedding table whose "embedding"
    is already the output: there is no hidden layer, and no context beyond one token.
    """

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.logits_table = nn.Embedding(vocab_size, vocab_size)
        nn.init.zeros_(self.logits_table.weight)  # start from the uniform distribution

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx: ``(B, T)`` int64 → logits ``(B, T, V)``, and the mean cross-entropy if
        ``targets`` ``(B, T)`` is given (else ``None``)."""
        if idx.dtype != torch.long:
            raise TypeError(f"idx must hold int64 token ids, got {idx.dtype}")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")
        logits = self.logits_table(idx)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1))
        return logits, loss

    def probs(self) -> torch.Tensor:
        """The model's table ``p(b | a)`` as ``(V, V)`` float64 probabilities."""
        return F.softmax(self.logits_table.weight.detach().double(), dim=-1)


def sample_from_probs(probs: torch.Tensor, start: int, n_tokens: int,
                      generator: torch.Generator | None = None) -> list[int]:
    """Sample ``n_tokens`` ids after ``start`` from a ``(V, V)`` bigram table.

    Inverse-CDF sampling in float64 (a uniform draw, then the first token whose cumulative
    probability exceeds it): the same generator seed gives the same text on every CPU.
    """
    _check_table(probs)
    V = probs.shape[0]
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < V:
        raise ValueError(f"start must be a token id in 0..{V - 1} (the table has {V} rows), "
                         f"got {start!r}")
    if not isinstance(n_tokens, int) or isinstance(n_tokens, bool) or n_tokens < 0:
        raise ValueError(f"n_tokens must be an int >= 0, got {n_tokens!r}")
    cdf = probs.double().cumsum(dim=1)
    cdf[:, -1] = 1.0  # guard against rounding leaving the last entry just below 1
    u = torch.rand(n_tokens, generator=generator, dtype=torch.float64)
    out, current = [], start
    for i in range(n_tokens):
        current = int(torch.searchsorted(cdf[current], u[i], right=True).clamp_max(len(cdf) - 1))
        out.append(current)
    return out
