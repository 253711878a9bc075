"""Tokenizers: text → integer ids → text.

Two tokenizers, both written from scratch and both saved as plain JSON:

- :class:`CharTokenizer` — one id per character seen in training. Tiny vocabulary, long
  sequences, and it cannot encode a character it never saw.
- :class:`BPETokenizer` — byte-level byte-pair encoding (Sennrich et al. 2016; the byte-level
  variant of Radford et al. 2019, GPT-2). It starts from the 256 possible bytes, so it can
  encode *any* text, and learns merges of frequent adjacent pairs to shorten sequences.

Both satisfy ``decode(encode(text)) == text`` (for BPE, on any text at all).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["CharTokenizer", "BPETokenizer", "load_tokenizer", "PRETOKENIZE_PATTERN"]

# Like GPT-2, split text into "words" before BPE, so merges never cross a word boundary: common
# English contractions, a run of letters, a run of digits or a run of other symbols (each of
# these three may carry one leading space), a run of underscores, or whitespace. GPT-2-like, not
# identical: `[^\W\d_]` ("a letter") stands in for the `regex` module's `\p{L}`.
PRETOKENIZE_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|_+"
                       r"|\s+(?!\S)|\s+")


def _check_text(text, what: str = "text") -> None:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")


def _check_ids(ids, vocab_size: int) -> list[int]:
    if hasattr(ids, "tolist"):  # a tensor or an array
        ids = ids.tolist()
    ids = list(ids)
    for i, t in enumerate(ids):
        if not isinstance(t, int) or isinstance(t, bool):
            raise TypeError(f"token ids must be ints; item {i} is {t!r}")
        if not 0 <= t < vocab_size:
            raise ValueError(f"token id {t} at position {i} is outside the vocabulary "
                             f"(valid ids are 0..{vocab_size - 1})")
    return ids


class CharTokenizer:
    """One token per character: ``stoi`` maps character → id, ``itos`` id → character.

    >>> tok = CharTokenizer.train("hello")
    >>> tok.encode("hole"), tok.decode([3, 1])
    ([3, 2, 1, 0], 'ol')
    """

    def __init__(self, chars):
        chars = list(chars)
        if not chars:
            raise ValueError("a CharTokenizer needs at least one character")
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars must be distinct single characters")
        self.itos = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        """The vocabulary is the sorted set of characters in ``text``."""
        _check_text(text)
        if not text:
            raise ValueError("cannot train a tokenizer on empty text")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        _check_text(text)
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            for i, c in enumerate(text):
                if c not in self.stoi:
                    raise ValueError(
                        f"character {c!r} (position {i}) is not in this tokenizer's vocabulary "
                        f"of {self.vocab_size} characters; a character tokenizer can only encode "
                        f"characters it saw in training (byte-level BPE can encode anything)"
                    ) from None
            raise

    def decode(self, ids) -> str:
        return "".join(self.itos[t] for t in _check_ids(ids, self.vocab_size))

    def to_dict(self) -> dict:
        return {"type": "char", "chars": "".join(self.itos)}

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class BPETokenizer:
    """Byte-level BPE. Ids 0–255 are the bytes; id ``256 + r`` is the ``r``-th learned merge.

    ``merges[r] = (a, b)`` means: the adjacent pair of tokens ``a, b`` becomes token
    ``256 + r``. Encoding applies merges in the order they were learned (lowest rank first),
    which is what makes the result deterministic.
    """

    def __init__(self, merges=(), pattern: str = PRETOKENIZE_PATTERN):
        self.merges = [tuple(m) for m in merges]
        for r, (a, b) in enumerate(self.merges):
            if not (0 <= a < 256 + r and 0 <= b < 256 + r):
                raise ValueError(f"merge {r} = ({a}, {b}) refers to a token that does not "
                                 f"exist yet (ids must be below {256 + r})")
        self.pattern = pattern
        self._split = re.compile(pattern)
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}
        self.vocab = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = PRETOKENIZE_PATTERN,
              ) -> "BPETokenizer":
        """Learn ``vocab_size - 256`` merges from ``text``.

        Each step merges the most frequent adjacent pair (ties: the smallest pair of ids),
        counting pairs inside pre-tokenized words only. Pair counts are updated incrementally,
        touching only the words that contain the merged pair, so training on a few MB of text
        takes seconds. Stops early if no pair occurs twice.
        """
        _check_text(text)
        if not text:
            raise ValueError("cannot train a tokenizer on empty text")
        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the 256 bytes), got {vocab_size!r}")
        word_counts = Counter(re.findall(pattern, text))
        words = [list(w.encode("utf-8")) for w in word_counts]
        freqs = list(word_counts.values())
        pair_counts: Counter = Counter()
        where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> words holding it
        for i, w in enumerate(words):
            for pair in zip(w, w[1:]):
                pair_counts[pair] += freqs[i]
                where[pair].add(i)
        merges = []
        for new_id in range(256, vocab_size):
            if not pair_counts:
                break
            best = min(pair_counts, key=lambda p: (-pair_counts[p], p))
            if pair_counts[best] < 2:
                break
            merges.append(best)
            for i in where.pop(best):
                w, f = words[i], freqs[i]
                for pair in zip(w, w[1:]):  # forget the word's old pairs ...
                    pair_counts[pair] -= f
                    if pair_counts[pair] <= 0:
                        del pair_counts[pair]
                words[i] = w = _merge(w, best, new_id)
                for pair in zip(w, w[1:]):  # ... and count its new ones
                    pair_counts[pair] += f
                    where[pair].add(i)
        return cls(merges, pattern)

    def _encode_word(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            ids = list(word.encode("utf-8"))
            while len(ids) > 1:
                pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, float("inf")))
                if pair not in self.ranks:
                    break
                ids = _merge(ids, pair, 256 + self.ranks[pair])
            if len(self._cache) < 100_000:
                self._cache[word] = ids
        return list(ids)

    def encode(self, text: str) -> list[int]:
        _check_text(text)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"text is not valid Unicode at position {err.start} "
                             f"({text[err.start]!r} is a lone surrogate)") from None
        out: list[int] = []
        for word in self._split.findall(text):
            out.extend(self._encode_word(word))
        return out

    def decode(self, ids) -> str:
        """Join the tokens' bytes and decode them as UTF-8 (invalid byte runs, which only a
        hand-made id sequence can produce, become U+FFFD)."""
        data = b"".join(self.vocab[t] for t in _check_ids(ids, self.vocab_size))
        return data.decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for, e.g. ``b' the'``."""
        return self.vocab[_check_ids([token_id], self.vocab_size)[0]]

    def to_dict(self) -> dict:
        return {"type": "bpe", "pattern": self.pattern, "merges": [list(m) for m in self.merges]}

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids`` (left to right)."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def tokenizer_from_dict(d: dict):
    """Rebuild a tokenizer from :meth:`to_dict`'s output (checkpoints store it this way)."""
    if not isinstance(d, dict) or d.get("type") not in ("char", "bpe"):
        raise ValueError(f"not a tokenizer description: expected a dict with type 'char' or "
                         f"'bpe', got {str(d)[:80]!r}")
    try:
        if d["type"] == "char":
            return CharTokenizer(d["chars"])
        return BPETokenizer(d["merges"], d.get("pattern", PRETOKENIZE_PATTERN))
    except (KeyError, TypeError) as err:
        raise ValueError(f"corrupt {d['type']} tokenizer description: {err!r}") from None


def load_tokenizer(path):
    """Load a tokenizer saved with ``.save(path)``; the JSON says which kind it is."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no tokenizer file at {path}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); is it a tokenizer file?") from None
    return tokenizer_from_dict(d)
