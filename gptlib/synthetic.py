"""Chapter 10: synthetic sequences for in-context learning, and the task that trains on them.

Two families of sequences, each drawn fresh from a seeded ``torch.Generator``, so no two training
batches repeat and held-out sequences are never trained on:

- ``RepeatedSegments`` (Olsson et al. 2022; Elhage et al. 2021): random tokens in which a random
  segment of ``min_len..max_len`` tokens appears twice, at a random distance. The second copy can
  be predicted only by looking back at the first: from context, not from the weights.
- ``FewShotRule`` (after Garg et al. 2022, with a random letter substitution instead of a random
  linear map): ``k`` demonstrations ``x_i? x_i->y_i`` in which every sequence draws its own
  rule, a random one-to-one map ``f`` from the inputs ``a..h`` to the outputs ``A..H``.

Both produce ``(x, y)`` batches of shape ``(B, T)`` for next-token prediction, with ``y = -100``
where a position is not trained on, and a ``Batch`` with the masks that the chapter's metrics
need. ``SequenceTask`` is the ``gptlib.pretrain.train`` task for them (one loop for everything);
``prepare`` turns a run config's ``data`` section ``{"source": "synthetic", "task": {...}}``
into a tokenizer and the train/validation sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from gptlib.pretrain import LanguageModelTask, _check_model
from gptlib.tokenizer import CharTokenizer

__all__ = ["gpt3_prompt", "Batch", "RepeatedSegments", "FewShotRule", "SequenceTask", "SOURCES", "prepare",
           "per_token_loss"]

LETTERS = "abcdefghijklmnopqrstuvwxyz"
# RepeatedSegments' tokens, shown as one character each: a-z, A-Z, 0-9, then '?' and '!'
ALPHABET = LETTERS + LETTERS.upper() + "0123456789?!"


def gpt3_prompt(description: str, shots, query: str, arrow: str = " => ") -> str:
    """A prompt in the format of Brown et al. (2020), Figure 2.1: the task description, then one
    line ``input => output`` per example (``shots``: (input, output) pairs; none is zero-shot,
    one is one-shot, a few is few-shot), then the query with its output left for the model."""
    lines = [description] + [f"{x}{arrow}{y}" for x, y in shots] + [f"{query}{arrow}".rstrip()]
    return "\n".join(lines)


@dataclass
class Batch:
    """``tokens`` (B, T+1) int64; ``x = tokens[:, :-1]``, ``y`` (B, T): the next token, -100 where
    not trained on. ``masks``: named (B, T) bool masks over the targets (which ``y[b, t]`` count
    for a metric), e.g. ``"first"``/``"repeat"`` or ``"query"``. ``info``: per-sequence extras."""

    tokens: torch.Tensor
    y: torch.Tensor
    masks: dict
    info: dict

    @property
    def x(self) -> torch.Tensor:
        return self.tokens[:, :-1]


def _check_gen(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (seeded for reproducible draws), "
                        f"got {type(generator).__name__}")


def _randint(lo: int, hi: int, n: int, generator) -> torch.Tensor:
    """(n,) int64 uniform in [lo, hi] inclusive; ``hi`` may differ per row (a tensor)."""
    hi = torch.as_tensor(hi).expand(n)
    u = torch.rand(n, generator=generator)
    return lo + (u * (hi - lo + 1)).long().clamp(max=hi - lo)


@dataclass
class RepeatedSegments:
    """Random tokens with one random segment repeated: the induction-head task.

    Each sequence of ``T + 1`` tokens is uniform over the ``vocab_size`` tokens, except that a
    segment of length ``L ~ U{min_len..max_len}`` starting at ``a`` is copied to start at ``b``,
    ``a + L <= b`` (the distance between the copies varies, so position alone cannot find the
    first copy — with a fixed distance even a 1-layer model copies by attending by position).
    ``placement="end"``: the two copies are adjacent and end the sequence (a random prefix, the
    segment, the segment again), so the distance is ``L``, which still varies. ``placement="tile"``
    (Olsson et al.'s repeated random tokens): the sequence is the segment repeated end to end,
    ``a = 0``, ``b = L``, and ``repeat`` marks every later copy, not only the second.
    Masks over the targets ``y[:, t] = tokens[:, t + 1]``: ``first`` marks the segment's tokens
    1..L-1 in the first copy, ``repeat`` the same tokens in the second copy (token 0 of a copy
    cannot be foreseen either time), so the two losses compare the same tokens.
    """

    vocab_size: int = 16
    min_len: int = 8
    max_len: int = 28
    placement: str = "random"

    def __post_init__(self):
        if self.placement not in ("random", "end", "tile"):
            raise ValueError(f"placement must be 'random' (copies anywhere, any distance apart), "
                             f"'end' (the two copies adjacent, ending the sequence) or 'tile' "
                             f"(the segment repeated to the end), got {self.placement!r}")
        if not 2 <= self.vocab_size <= len(ALPHABET):
            raise ValueError(f"vocab_size must be in 2..{len(ALPHABET)} (tokens are shown as the "
                             f"characters a-z, A-Z, 0-9, ?, !), got {self.vocab_size!r}")
        if not 2 <= self.min_len <= self.max_len:
            raise ValueError(f"need 2 <= min_len <= max_len, got min_len={self.min_len!r}, "
                             f"max_len={self.max_len!r}")

    def tokenizer(self) -> CharTokenizer:
        """The first ``vocab_size`` characters of ``ALPHABET``, one per token."""
        return CharTokenizer(ALPHABET[:self.vocab_size])

    def sample(self, n: int, seq_len: int, generator: torch.Generator) -> Batch:
        """``n`` sequences of ``seq_len`` inputs (``seq_len + 1`` tokens), drawn with ``generator``."""
        _check_gen(generator)
        if 2 * self.max_len > seq_len + 1:
            raise ValueError(f"two copies of a segment of up to max_len={self.max_len} tokens need "
                             f"seq_len >= {2 * self.max_len - 1}, got {seq_len}")
        tokens = torch.randint(self.vocab_size, (n, seq_len + 1), generator=generator)
        length = _randint(self.min_len, self.max_len, n, generator)             # (n,)
        if self.placement == "tile":
            pos = torch.arange(seq_len + 1)
            tokens = tokens.gather(1, pos[None] % length[:, None])
            t = pos[None, 1:]
            first = (t > 0) & (t < length[:, None])
            repeat = t > length[:, None]
            return Batch(tokens, tokens[:, 1:].clone(), {"first": first, "repeat": repeat},
                         {"length": length, "a": torch.zeros_like(length), "b": length})
        if self.placement == "end":
            b = seq_len + 1 - length                                            # second copy
            a = b - length                                                      # first copy
        else:
            a = _randint(0, seq_len + 1 - 2 * length, n, generator)             # first copy
            b = a + length + _randint(0, seq_len + 1 - 2 * length - a, n, generator)
        pos = torch.arange(seq_len + 1)                                         # (T+1,)
        i = pos[None] - b[:, None]                                              # index in copy
        inside = (i >= 0) & (i < length[:, None])
        src = (a[:, None] + i).clamp(0, seq_len)
        tokens = torch.where(inside, tokens.gather(1, src), tokens)
        t = pos[None, 1:]                                 # the token that target t predicts
        first = (t > a[:, None]) & (t < (a + length)[:, None])
        repeat = (t > b[:, None]) & (t < (b + length)[:, None])
        return Batch(tokens, tokens[:, 1:].clone(), {"first": first, "repeat": repeat},
                     {"length": length, "a": a, "b": b})

    def metrics(self, losses: torch.Tensor, batch: Batch, logits: torch.Tensor) -> dict:
        """``first_loss``, ``repeat_loss`` (mean nats on the two copies' tokens) and Olsson et
        al.'s ``icl_score``: mean loss on the last 8 targets minus on targets 1..8."""
        m = batch.masks
        return {"first_loss": losses[m["first"]].mean().item(),
                "repeat_loss": losses[m["repeat"]].mean().item(),
                "icl_score": (losses[:, -8:].mean() - losses[:, 1:9].mean()).item()}


@dataclass
class FewShotRule:
    """Few-shot prompts for a family of tasks: every sequence draws its own rule.

    The rule is a random permutation ``f`` of ``n_symbols`` symbols, a letter substitution from
    the inputs ``a, b, ...`` to the outputs ``A, B, ...``. A sequence holds ``n_pairs``
    demonstrations, each written as two tokens: a *query* token ``x?`` ("what is f(x)?", ids
    ``n^2 + x``) followed by the *answer* token ``x->f(x)`` (ids ``x * n + f(x)``, one per
    (input, output) pair, like one word of a prompt). The inputs ``x_i`` are uniform (with
    repeats). Only the answers are trained on (``y = -100`` after an answer, where the next
    query is random); the answer of pair ``i`` is predicted after ``i`` shots (earlier pairs).
    ``info["seen"]`` (B, n_pairs) bool: pair ``i``'s input occurred in an earlier pair, so a
    look-up in the context can answer it; otherwise the best guess is an output not yet used.
    """

    n_symbols: int = 8
    n_pairs: int = 16

    def __post_init__(self):
        if not 2 <= self.n_symbols <= 13:
            raise ValueError(f"n_symbols must be in 2..13, got {self.n_symbols!r}")
        if not isinstance(self.n_pairs, int) or self.n_pairs < 1:
            raise ValueError(f"n_pairs must be a positive int, got {self.n_pairs!r}")

    @property
    def vocab_size(self) -> int:
        return self.n_symbols ** 2 + self.n_symbols

    def tokenizer(self) -> CharTokenizer:
        """One character per token (for saving; ``describe`` shows sequences readably)."""
        return CharTokenizer([chr(0x100 + i) for i in range(self.vocab_size)])

    def describe(self, tokens) -> str:
        """Token ids -> text: answers as ``a->C``, queries as ``a?``."""
        n, lo, up = self.n_symbols, LETTERS, LETTERS.upper()
        return " ".join(f"{lo[t // n]}->{up[t % n]}" if t < n * n else f"{lo[t - n * n]}?"
                        for t in (int(t) for t in tokens))

    def sample(self, n: int, seq_len: int, generator: torch.Generator,
               rules: torch.Tensor | None = None) -> Batch:
        """``n`` sequences; ``seq_len`` must be ``2 * n_pairs - 1`` (the last answer is the last
        target). ``rules`` (n, n_symbols): given permutations instead of random ones."""
        _check_gen(generator)
        k, s = self.n_pairs, self.n_symbols
        if seq_len != 2 * k - 1:
            raise ValueError(f"a sequence of {k} pairs has {2 * k} tokens, so seq_len (block_size) "
                             f"must be {2 * k - 1}, got {seq_len}")
        if rules is None:
            rules = torch.argsort(torch.rand(n, s, generator=generator), dim=1)   # (n, s)
        xs = torch.randint(s, (n, k), generator=generator)                       # (n, k)
        ys = rules.gather(1, xs)                                                 # f(x)
        tokens = torch.stack([s * s + xs, xs * s + ys], dim=2).view(n, 2 * k)    # x? x->y ...
        y = tokens[:, 1:].clone()
        query = torch.zeros_like(y, dtype=torch.bool)
        query[:, 0::2] = True                         # targets 0, 2, ...: the answers
        y[~query] = -100
        seen = torch.zeros(n, k, dtype=torch.bool)
        for i in range(1, k):
            seen[:, i] = (xs[:, :i] == xs[:, i:i + 1]).any(dim=1)
        return Batch(tokens, y, {"query": query},
                     {"rules": rules, "seen": seen, "inputs": xs, "outputs": ys})

    def metrics(self, losses: torch.Tensor, batch: Batch, logits: torch.Tensor) -> dict:
        """``accuracy``: the most likely token is the right answer; ``seen_accuracy`` /
        ``unseen_accuracy`` on answers whose input did / did not occur in an earlier pair."""
        q = batch.masks["query"]
        correct = (logits.argmax(-1) == batch.tokens[:, 1:])[q].view(len(q), -1).float()
        seen = batch.info["seen"]
        return {"accuracy": correct.mean().item(),
                "seen_accuracy": correct[seen].mean().item(),
                "unseen_accuracy": correct[~seen].mean().item()}


SOURCES = {"repeated_segments": RepeatedSegments, "few_shot_rule": FewShotRule}


def per_token_loss(model, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(losses (B, T), logits (B, T, V))``: the cross-entropy of every next token of ``batch``
    (also where ``y = -100``: the loss of the true next token), without gradients, eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(batch.x.to(device))[0].float().cpu()
    finally:
        model.train(was_training)
    losses = F.cross_entropy(logits.transpose(1, 2), batch.tokens[:, 1:], reduction="none")
    return losses, logits


class SequenceTask(LanguageModelTask):
    """``gptlib.pretrain.train``'s task for a synthetic source (``train_data``/``val_data`` are
    ``RepeatedSegments`` or ``FewShotRule`` objects, not token streams).

    ``batch`` draws ``cfg.batch_size`` fresh sequences of ``cfg.block_size`` inputs with the
    training generator; ``evaluate`` scores ``cfg.eval_batches`` batches drawn from a generator
    seeded with ``cfg.seed + 1`` (the same held-out sequences at every evaluation, none of them
    trained on): ``val_loss`` (the trained-on targets), ``eval_train_loss`` (the same, as the
    chapter-7 log expects) and the source's ``metrics``.
    """

    def check(self, model, cfg, train_data, val_data) -> None:
        _check_model(model, cfg)
        for name, src in (("train_data", train_data), ("val_data", val_data)):
            if src is not None and not isinstance(src, tuple(SOURCES.values())):
                raise TypeError(f"SequenceTask's {name} must be one of "
                                f"{[c.__name__ for c in SOURCES.values()]}, got "
                                f"{type(src).__name__}")
            vocab = getattr(getattr(model, "config", None), "vocab_size", None)
            if src is not None and vocab is not None and vocab < src.vocab_size:
                raise ValueError(f"{name} uses {src.vocab_size} tokens but the model's vocabulary "
                                 f"has {vocab}")
        train_data.sample(1, cfg.block_size, torch.Generator())       # raises if T does not fit

    def batch(self, data, cfg, generator):
        b = data.sample(cfg.batch_size, cfg.block_size, generator)
        return b.x, b.y                                               # (B, T) twice

    def evaluate(self, model, cfg, train_data, val_data) -> dict:
        source = val_data if val_data is not None else train_data
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        batches = [source.sample(cfg.batch_size, cfg.block_size, gen)
                   for _ in range(cfg.eval_batches)]
        batch = Batch(torch.cat([b.tokens for b in batches]), torch.cat([b.y for b in batches]),
                      {k: torch.cat([b.masks[k] for b in batches]) for k in batches[0].masks},
                      {k: torch.cat([b.info[k] for b in batches]) for k in batches[0].info})
        losses, logits = per_token_loss(model, batch)
        loss = losses[batch.y != -100].mean().item()
        return {"eval_train_loss": loss, "val_loss": loss, **source.metrics(losses, batch, logits)}


def prepare(data: dict):
    """A run config's ``data`` section with ``"source": "synthetic"`` -> ``(tokenizer, train
    source, validation source)``. ``data["task"]``: ``{"name": one of SOURCES, ...its fields}``,
    e.g. ``{"name": "repeated_segments", "vocab_size": 16, "min_len": 8, "max_len": 28}``."""
    spec = data.get("task")
    if not isinstance(spec, dict) or spec.get("name") not in SOURCES:
        raise ValueError(f"data.source 'synthetic' needs data.task = {{'name': one of "
                         f"{sorted(SOURCES)}, ...}}, got {spec!r}")
    cls = SOURCES[spec["name"]]
    fields = {k: v for k, v in spec.items() if k != "name"}
    known = set(cls.__dataclass_fields__)
    if set(fields) - known:
        raise ValueError(f"unknown key(s) {sorted(set(fields) - known)} in data.task for "
                         f"{spec['name']!r}; valid keys are {sorted(known)}")
    source = cls(**fields)
    return source.tokenizer(), source, source
