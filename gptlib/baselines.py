"""Chapter 8: non-neural baselines for text classification — counted words, no network.

A classifier that a fine-tuned GPT must beat before it can claim anything: multinomial Naive
Bayes over a bag of words (or of word pairs), the classic text classifier (McCallum & Nigam
1998; Manning, Raghavan & Schütze 2008, ch. 13). For class c and a text with features
f_1 .. f_n (its lower-cased words, or its adjacent word pairs),

    score(c) = log P(c) + sum_i log P(f_i | c),   P(f | c) = (count(f, c) + alpha) / (N_c + alpha |V|)

with count(f, c) the feature's count in class c's training texts, N_c their total, |V| the
training vocabulary, and alpha the additive (Laplace / Lidstone) smoothing. Features never seen
in training are skipped. Predicted class: the highest score.

    nb = NaiveBayes(features=words, alpha=1.0).fit(train.texts, train.labels, n_classes=3)
    predictions = nb.predict(test.texts)            # (N,) int64
"""

from __future__ import annotations

import re

import torch

__all__ = ["words", "word_pairs", "FEATURES", "NaiveBayes"]

_WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (runs of letters and apostrophes): a bag of words."""
    return _WORD.findall(text.lower())


def word_pairs(text: str) -> list[str]:
    """Adjacent word pairs, ``"good morrow"``: a bag of bigrams, which sees local word order."""
    w = words(text)
    return [f"{a} {b}" for a, b in zip(w, w[1:])]


FEATURES = {"words": words, "word pairs": word_pairs}


class NaiveBayes:
    """Multinomial Naive Bayes with additive smoothing (see the module docstring)."""

    def __init__(self, features="words", alpha: float = 1.0):
        if isinstance(features, str):
            if features not in FEATURES:
                raise ValueError(f"unknown features {features!r}; choose one of "
                                 f"{tuple(FEATURES)} or pass a function text -> list of str")
            features = FEATURES[features]
        if not callable(features):
            raise TypeError(f"features must be a name or a function, got {type(features).__name__}")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
            raise ValueError(f"alpha must be a number > 0 (the smoothing count), got {alpha!r}")
        self.features, self.alpha = features, float(alpha)
        self.vocab: dict[str, int] | None = None

    def fit(self, texts, labels, n_classes: int | None = None) -> "NaiveBayes":
        """Count the features of ``texts`` (list of N str) per class; ``labels`` (N,) int."""
        labels = torch.as_tensor(labels, dtype=torch.long)
        if len(texts) != labels.numel() or labels.ndim != 1 or not len(texts):
            raise ValueError(f"fit needs as many labels as texts (and at least one), got "
                             f"{len(texts)} texts and labels of shape {tuple(labels.shape)}")
        k = int(n_classes) if n_classes is not None else int(labels.max()) + 1
        if labels.min() < 0 or labels.max() >= k:
            raise ValueError(f"labels must lie in [0, {k}), got {labels.min()}..{labels.max()}")
        self.vocab = {}
        rows, cols = [], []
        for text, label in zip(texts, labels.tolist()):
            for f in self.features(text):
                rows.append(label)
                cols.append(self.vocab.setdefault(f, len(self.vocab)))
        counts = torch.zeros(k, max(len(self.vocab), 1))
        counts.index_put_((torch.tensor(rows, dtype=torch.long),
                           torch.tensor(cols, dtype=torch.long)),
                          torch.ones(len(rows)), accumulate=True)
        smoothed = counts + self.alpha
        self.log_likelihood = (smoothed / smoothed.sum(1, keepdim=True)).log()   # (K, |V|)
        prior = torch.bincount(labels, minlength=k).float()
        self.log_prior = (prior / prior.sum()).log()                              # (K,)
        return self

    def scores(self, texts) -> torch.Tensor:
        """(N, K) float: ``log P(c) + sum log P(f | c)`` of each text and class."""
        if self.vocab is None:
            raise RuntimeError("call fit(texts, labels) before scores or predict")
        out = torch.empty(len(texts), self.log_prior.numel())
        for i, text in enumerate(texts):
            ids = [self.vocab[f] for f in self.features(text) if f in self.vocab]
            out[i] = self.log_prior + self.log_likelihood[:, ids].sum(1)
        return out

    def predict(self, texts) -> torch.Tensor:
        """(N,) int64: the class with the highest score for each text."""
        return self.scores(texts).argmax(1)
