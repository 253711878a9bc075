"""Tokenizers: text → integer ids → text.

Two tokenizers, both written from scratch and both saved as plain JSON:

- :class:`CharTokenizer` — one id per character seen in training. Tiny vocabulary, long
  sequences, and it cannot encode a character it never saw.
- :class:`BPETokenizer` — byte-level byte-pair encoding (Sennrich et al. 2016; the byte-level
  variant of Radford et al. 2019, GPT-2). It starts from the 256 possible bytes, so it can
  encode *any* text, and learns merges of frequent adjacent pairs to shorten sequences.

Both satisfy ``decode(encode(text)) == text`` (for BPE, on any text at all).

:meth:`BPETokenizer.from_gpt2_files` reads GPT-2's own tokenizer files (``vocab.json`` /
``encoder.json`` and ``merges.txt`` / ``vocab.bpe``, e.g. from the Hugging Face Hub repository
``openai-community/gpt2``) and encodes exactly as GPT-2 does: the same byte-to-unicode table,
the same pre-tokenizer pattern (:data:`GPT2_PATTERN`, which needs the ``regex`` package for its
Unicode classes ``\\p{L}`` and ``\\p{N}``), the same merges, and ``<|endoftext|>`` as a special
token that ``encode`` turns into one id only when asked to (``allowed_special``).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["CharTokenizer", "BPETokenizer", "load_tokenizer", "PRETOKENIZE_PATTERN", "GPT2_PATTERN",
           "bytes_to_unicode"]

# Like GPT-2, split text into "words" before BPE, so merges never cross a word boundary: common
# English contractions, a run of letters, a run of digits or a run of other symbols (each of
# these three may carry one leading space), a run of underscores, or whitespace. GPT-2-like, not
# identical: `[^\W\d_]` ("a letter") stands in for the `regex` module's `\p{L}`.
PRETOKENIZE_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|_+"
                       r"|\s+(?!\S)|\s+")
# GPT-2's own pattern (Radford et al. 2019, the released ``encoder.py``), for the ``regex`` package.
# It differs from the one above: an underscore joins the punctuation around it (`` ?[^\s\p{L}\p{N}]+``),
# and ``\s`` is Unicode's White_Space, which does not include the controls \x1c-\x1f (``re``'s
# ``\s`` does). The contractions are lower case only, as in GPT-2: "DON'T" splits as "DON", "'", "T".
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_TOKENIZER_KEYS = {"char": {"type", "chars"},
                   "bpe": {"type", "pattern", "merges", "vocab", "special_tokens"}}


def _compile(pattern: str):
    """Compile a pre-tokenizer pattern with Python's ``re``; a pattern that ``re`` cannot read
    because it uses Unicode property classes such as ``\\p{L}`` (GPT-2's) needs ``regex``."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str (a regular expression), got {type(pattern).__name__}")
    try:
        return re.compile(pattern)
    except re.error as err:
        if "\\p" not in pattern and "\\P" not in pattern:
            raise ValueError(f"pattern {pattern[:60]!r} is not a valid regular expression: {err}") from None
    try:
        import regex
    except ImportError:
        raise ImportError("this pre-tokenizer pattern uses Unicode classes (\\p{...}) that Python's re "
                          "lacks; install the regex package (pip install regex)") from None
    try:
        return regex.compile(pattern)
    except regex.error as err:
        raise ValueError(f"pattern {pattern[:60]!r} is not a valid regular expression: {err}") from None


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from the 256 byte values to printable characters, so that each token of
    ``vocab.json`` is a readable string: the 188 bytes that are printable Latin-1 characters
    stand for themselves, the other 68 (controls, space, ...) become U+0100 onwards, in byte
    order — so a space is ``"Ġ"`` (U+0120) and a newline ``"Ċ"`` (U+010A)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


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

    GPT-2's files number tokens their own way, so a tokenizer may also be given ``vocab`` (the
    bytes of every id) and ``special_tokens`` (text → id, e.g. ``{"<|endoftext|>": 50256}``):
    then ``merges[r] = (a, b)`` makes the token whose bytes are ``vocab[a] + vocab[b]``, and
    ``token_bytes(i)`` is ``vocab[i]``. :meth:`from_gpt2_files` builds one.
    """

    def __init__(self, merges=(), pattern: str = PRETOKENIZE_PATTERN, *, vocab=None,
                 special_tokens=None):
        self.merges = [_check_merge(m, r) for r, m in enumerate(_as_list(merges, "merges"))]
        self.pattern = pattern
        self._split = _compile(pattern)
        self.ranks = {}
        for r, pair in enumerate(self.merges):
            if pair in self.ranks:
                raise ValueError(f"merge {r} = {pair} repeats merge {self.ranks[pair]}; each pair "
                                 f"may be merged once")
            self.ranks[pair] = r
        self.special_tokens: dict[str, int] = {}
        self._byte_ids = None                # None: token b is byte b (gptlib's own layout)
        if vocab is None:
            if special_tokens:
                raise ValueError("special_tokens need an explicit vocab (the bytes of every id), "
                                 "as from_gpt2_files builds")
            for r, (a, b) in enumerate(self.merges):
                if not (0 <= a < 256 + r and 0 <= b < 256 + r):
                    raise ValueError(f"merge {r} = ({a}, {b}) refers to a token that does not "
                                     f"exist yet (ids must be below {256 + r})")
            self.vocab = [bytes([i]) for i in range(256)]
            for a, b in self.merges:
                self.vocab.append(self.vocab[a] + self.vocab[b])
            self._merged = {pair: 256 + r for r, pair in enumerate(self.merges)}
        else:
            self._init_vocab(vocab, special_tokens or {})
        self._cache: dict[str, list[int]] = {}

    def _init_vocab(self, vocab, special_tokens) -> None:
        """Check an explicit vocabulary and derive each merge's result id from it."""
        self.vocab = list(_as_list(vocab, "vocab"))
        n = len(self.vocab)
        if not isinstance(special_tokens, dict):
            raise TypeError(f"special_tokens must be a dict of text -> id, got "
                            f"{type(special_tokens).__name__}")
        for text, i in special_tokens.items():
            if not isinstance(text, str) or not text:
                raise TypeError(f"special token {text!r} must be a non-empty str")
            _check_id(i, n, f"special token {text!r}")
        if len(set(special_tokens.values())) != len(special_tokens):
            raise ValueError(f"special tokens share ids: {special_tokens}")
        self.special_tokens = dict(special_tokens)
        by_bytes: dict[bytes, int] = {}
        for i, piece in enumerate(self.vocab):
            if i in self.special_tokens.values():
                continue
            if not isinstance(piece, bytes) or not piece:
                raise TypeError(f"vocab[{i}] must be non-empty bytes, got {piece!r}")
            if piece in by_bytes:
                raise ValueError(f"duplicate token: ids {by_bytes[piece]} and {i} both stand for "
                                 f"{piece!r}")
            by_bytes[piece] = i
        for text, i in self.special_tokens.items():
            self.vocab[i] = text.encode("utf-8")
        missing = [b for b in range(256) if bytes([b]) not in by_bytes]
        if missing:
            raise ValueError(f"the vocabulary has no token for byte(s) {missing[:8]}; byte-level "
                             f"BPE needs all 256 bytes to encode any text")
        self._byte_ids = [by_bytes[bytes([b])] for b in range(256)]
        self._merged = {}
        for r, (a, b) in enumerate(self.merges):
            for t in (a, b):
                _check_id(t, n, f"merge {r} = ({a}, {b}):")
                if t in self.special_tokens.values():
                    raise ValueError(f"merge {r} = ({a}, {b}) uses special token {t}")
            joined = self.vocab[a] + self.vocab[b]
            if joined not in by_bytes:
                raise ValueError(f"merge {r} joins {self.vocab[a]!r} and {self.vocab[b]!r} into "
                                 f"{joined!r}, which is not in the vocabulary")
            self._merged[(a, b)] = by_bytes[joined]

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
        word_counts = Counter(_compile(pattern).findall(text))
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

    @classmethod
    def from_gpt2_files(cls, vocab_path, merges_path, special_tokens=None) -> "BPETokenizer":
        """Read GPT-2's tokenizer: ``vocab_path`` is ``vocab.json`` (``encoder.json`` in OpenAI's
        release), a JSON object from token to id; ``merges_path`` is ``merges.txt``
        (``vocab.bpe``), one merge per line, ``"Ġ t"``, in rank order after a ``#version`` line.
        Tokens are written with :func:`bytes_to_unicode`'s characters.

        ``special_tokens``: the vocabulary's entries that are control tokens rather than text
        (default: ``"<|endoftext|>"`` if the vocabulary has it). The tokenizer splits text with
        :data:`GPT2_PATTERN` and gives the same ids as GPT-2. The files of GPT-2 itself are in
        the Hugging Face Hub repository ``openai-community/gpt2`` (``vocab.json``, ``merges.txt``).
        """
        vocab_path, merges_path = Path(vocab_path), Path(merges_path)
        encoder = _read_gpt2_vocab(vocab_path)
        if special_tokens is None:
            special_tokens = [s for s in ("<|endoftext|>",) if s in encoder]
        elif isinstance(special_tokens, str):
            special_tokens = [special_tokens]
        for s in special_tokens:
            if s not in encoder:
                raise ValueError(f"special token {s!r} is not in {vocab_path}")
        u2b = {u: b for b, u in bytes_to_unicode().items()}
        vocab: list = [None] * len(encoder)
        for token, i in encoder.items():
            if token in special_tokens:
                continue
            try:
                vocab[i] = bytes(u2b[c] for c in token)
            except KeyError as err:
                raise ValueError(f"{vocab_path}: token {token!r} (id {i}) has the character "
                                 f"{err.args[0]!r}, which is not in GPT-2's byte-to-unicode "
                                 f"alphabet; if it is a control token, list it in "
                                 f"special_tokens") from None
        merges = []
        for number, pair in _read_gpt2_merges(merges_path):
            for token in pair:
                if token not in encoder:
                    raise ValueError(f"{merges_path} line {number}: token {token!r} is not in "
                                     f"{vocab_path.name}")
            merges.append((encoder[pair[0]], encoder[pair[1]]))
        specials = {s: encoder[s] for s in special_tokens}   # their entries: the text's bytes
        try:
            return cls(merges, GPT2_PATTERN, vocab=vocab, special_tokens=specials)
        except ValueError as err:
            raise ValueError(f"{vocab_path} and {merges_path} do not fit together: {err}") from None

    def to_gpt2_files(self, vocab_path, merges_path) -> None:
        """Write this tokenizer as GPT-2's ``vocab.json`` and ``merges.txt``, which Hugging Face's
        ``GPT2Tokenizer`` and :meth:`from_gpt2_files` read. Those files cannot record a
        pre-tokenizer pattern (readers assume GPT-2's), so the tokenizer must use
        :data:`GPT2_PATTERN`."""
        if self.pattern != GPT2_PATTERN:
            raise ValueError("GPT-2's files do not record the pre-tokenizer pattern, and readers "
                             "split text with GPT-2's; train with pattern=GPT2_PATTERN first")
        b2u = bytes_to_unicode()
        specials = {i: s for s, i in self.special_tokens.items()}
        strings = [specials.get(i) or "".join(b2u[b] for b in piece)
                   for i, piece in enumerate(self.vocab)]
        if len(set(strings)) != len(strings):
            seen: dict[str, int] = {}
            for i, s in enumerate(strings):
                if s in seen:
                    raise ValueError(f"tokens {seen[s]} and {i} both stand for {s!r}; "
                                     f"vocab.json can hold only one of them")
                seen[s] = i
        Path(vocab_path).write_text(json.dumps({s: i for i, s in enumerate(strings)},
                                               ensure_ascii=False), encoding="utf-8")
        lines = [f"{strings[a]} {strings[b]}" for a, b in self.merges]
        Path(merges_path).write_text("#version: 0.2\n" + "".join(x + "\n" for x in lines),
                                     encoding="utf-8")

    def _encode_word(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            ids = list(word.encode("utf-8"))
            if self._byte_ids is not None:
                ids = [self._byte_ids[b] for b in ids]
            while len(ids) > 1:
                pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, float("inf")))
                if pair not in self.ranks:
                    break
                ids = _merge(ids, pair, self._merged[pair])
            if len(self._cache) < 100_000:
                self._cache[word] = ids
        return list(ids)

    def encode(self, text: str, *, allowed_special=(), disallowed_special="all") -> list[int]:
        """Token ids of ``text``.

        Special tokens (such as GPT-2's ``<|endoftext|>``) follow tiktoken's convention: one in
        ``allowed_special`` (a set of texts, or ``"all"``) is encoded as its single id; one in
        ``disallowed_special`` (by default every special token not allowed) makes ``encode``
        raise, so that text from users cannot smuggle in a control token; pass
        ``disallowed_special=()`` to encode such text as ordinary text (several tokens).
        """
        _check_text(text)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"text is not valid Unicode at position {err.start} "
                             f"({text[err.start]!r} is a lone surrogate)") from None
        allowed = self._special_set(allowed_special, "allowed_special")
        disallowed = (set(self.special_tokens) - allowed if disallowed_special == "all"
                      else self._special_set(disallowed_special, "disallowed_special") - allowed)
        for special in sorted(disallowed):
            if special in text:
                raise ValueError(
                    f"text contains the special token {special!r} at position "
                    f"{text.index(special)}; pass allowed_special={{{special!r}}} to encode it as "
                    f"one id ({self.special_tokens[special]}), or disallowed_special=() to encode "
                    f"it as ordinary text")
        chunks = [text]
        if allowed:
            alternatives = "|".join(re.escape(s) for s in sorted(allowed, key=len, reverse=True))
            chunks = re.split(f"({alternatives})", text)
        out: list[int] = []
        for k, chunk in enumerate(chunks):
            if k % 2:                                # re.split puts the separators at odd places
                out.append(self.special_tokens[chunk])
                continue
            for word in self._split.findall(chunk):
                out.extend(self._encode_word(word))
        return out

    def _special_set(self, value, name: str) -> set[str]:
        if isinstance(value, str):
            if value == "all":
                return set(self.special_tokens)
            raise TypeError(f"{name} must be 'all' or a set of special tokens such as "
                            f"{{{value!r}}}, got the str {value!r}")
        try:
            chosen = set(value)
        except TypeError:
            raise TypeError(f"{name} must be 'all' or a set of special tokens, got "
                            f"{type(value).__name__}") from None
        unknown = sorted(str(s) for s in chosen - set(self.special_tokens))
        if unknown:
            raise ValueError(f"{name}: {unknown} not special tokens of this tokenizer (it has "
                             f"{sorted(self.special_tokens) or 'none'})")
        return chosen

    def decode(self, ids) -> str:
        """Join the tokens' bytes and decode them as UTF-8 (invalid byte runs, which only a
        hand-made id sequence can produce, become U+FFFD)."""
        data = b"".join(self.vocab[t] for t in _check_ids(ids, self.vocab_size))
        return data.decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for, e.g. ``b' the'``."""
        return self.vocab[_check_ids([token_id], self.vocab_size)[0]]

    def to_dict(self) -> dict:
        d = {"type": "bpe", "pattern": self.pattern, "merges": [list(m) for m in self.merges]}
        if self._byte_ids is not None:       # GPT-2's layout: every token, as GPT-2 writes it
            b2u = bytes_to_unicode()
            d["vocab"] = ["".join(b2u[b] for b in piece) for piece in self.vocab]
            d["special_tokens"] = dict(self.special_tokens)
        return d

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
    """Rebuild a tokenizer from :meth:`to_dict`'s output (checkpoints store it this way).

    Anything else — an unknown key, a merge that is not a pair of ids, an id out of range, a
    token twice — is refused with a message that names it."""
    if not isinstance(d, dict) or d.get("type") not in ("char", "bpe"):
        raise ValueError(f"not a tokenizer description: expected a dict with type 'char' or "
                         f"'bpe', got {str(d)[:80]!r}")
    unknown = sorted(set(d) - _TOKENIZER_KEYS[d["type"]])
    if unknown:
        raise ValueError(f"corrupt {d['type']} tokenizer description: unknown key(s) {unknown} "
                         f"(a {d['type']} tokenizer has {sorted(_TOKENIZER_KEYS[d['type']])})")
    try:
        if d["type"] == "char":
            if not isinstance(d["chars"], str):
                raise TypeError(f"chars must be a str, got {type(d['chars']).__name__}")
            return CharTokenizer(d["chars"])
        vocab = d.get("vocab")
        if vocab is not None:
            u2b = {u: b for b, u in bytes_to_unicode().items()}
            specials = d.get("special_tokens") or {}
            if not isinstance(specials, dict):
                raise TypeError(f"special_tokens must be a dict, got {type(specials).__name__}")
            special_ids = set(specials.values())
            vocab = [b"" if i in special_ids else _from_gpt2_string(s, i, u2b)
                     for i, s in enumerate(_as_list(vocab, "vocab"))]
            return BPETokenizer(d["merges"], d.get("pattern", PRETOKENIZE_PATTERN), vocab=vocab,
                                special_tokens=specials)
        if "special_tokens" in d and d["special_tokens"]:
            raise ValueError("special_tokens given without a vocab")
        return BPETokenizer(d["merges"], d.get("pattern", PRETOKENIZE_PATTERN))
    except KeyError as err:
        raise ValueError(f"corrupt {d['type']} tokenizer description: missing key "
                         f"{err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise ValueError(f"corrupt {d['type']} tokenizer description: {err}") from None


def _from_gpt2_string(s, i: int, u2b: dict) -> bytes:
    if not isinstance(s, str):
        raise TypeError(f"vocab[{i}] must be a str, got {s!r}")
    try:
        return bytes(u2b[c] for c in s)
    except KeyError as err:
        raise ValueError(f"vocab[{i}] = {s!r} has {err.args[0]!r}, which is not in GPT-2's "
                         f"byte-to-unicode alphabet") from None


def _as_list(value, name: str) -> list:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    return list(value)


def _check_id(i, n: int, what: str) -> None:
    if not isinstance(i, int) or isinstance(i, bool):
        raise TypeError(f"{what} id {i!r} is not an int")
    if not 0 <= i < n:
        raise ValueError(f"{what} id {i} is outside the vocabulary (0..{n - 1})")


def _check_merge(m, r: int) -> tuple[int, int]:
    """One merge must be a pair of int token ids."""
    if isinstance(m, (str, bytes, dict)) or not hasattr(m, "__len__") or len(m) != 2:
        raise ValueError(f"merge {r} must be a pair of token ids [a, b], got {m!r}")
    a, b = m
    for t in (a, b):
        if not isinstance(t, int) or isinstance(t, bool):
            raise TypeError(f"merge {r} = {list(m)!r}: token ids must be ints, got {t!r}")
    return (a, b)


def _read_gpt2_vocab(path: Path) -> dict[str, int]:
    """``vocab.json``: token → id, ids exactly 0..N-1 (no token or id twice)."""
    def no_duplicates(pairs):
        seen = {}
        for token, i in pairs:
            if token in seen:
                raise ValueError(f"{path}: duplicate token {token!r} (ids {seen[token]} and {i})")
            seen[token] = i
        return seen
    try:
        encoder = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=no_duplicates)
    except FileNotFoundError:
        raise FileNotFoundError(f"no vocabulary file at {path} (GPT-2's vocab.json)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); expected GPT-2's vocab.json") from None
    if not isinstance(encoder, dict) or not encoder:
        raise ValueError(f"{path}: expected a JSON object from token to id, got "
                         f"{type(encoder).__name__}")
    for token, i in encoder.items():
        if not isinstance(i, int) or isinstance(i, bool):
            raise ValueError(f"{path}: the id of {token!r} is {i!r}, not an int")
    by_id = {}
    for token, i in encoder.items():
        if i in by_id:
            raise ValueError(f"{path}: tokens {by_id[i]!r} and {token!r} share id {i}")
        by_id[i] = token
    if set(by_id) != set(range(len(by_id))):
        gap = min(set(range(len(by_id))) - set(by_id))
        raise ValueError(f"{path}: ids must be 0..{len(by_id) - 1} with none missing; "
                         f"id {gap} is missing")
    return encoder


def _read_gpt2_merges(path: Path) -> list[tuple[int, tuple[str, str]]]:
    """``merges.txt``: (line number, (left, right)) for each merge, in rank order."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise FileNotFoundError(f"no merges file at {path} (GPT-2's merges.txt)") from None
    while lines and not lines[-1].strip("\r"):
        lines.pop()                          # the final newline
    out = []
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if number == 1 and line.startswith("#version"):
            continue
        pair = line.split(" ")
        if len(pair) != 2 or not all(pair):
            raise ValueError(f"{path} line {number}: expected two tokens separated by one space, "
                             f"got {line!r}")
        out.append((number, (pair[0], pair[1])))
    return out


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
