"""Chapter 8: labelled passages of the corpus — the genre-classification task.

From a passage of a play, predict the play's genre. Every play of ``gptlib.data`` carries one of
six genres (the folders of the source corpus), and the splits hold whole plays: the validation
and test splits each hold one play per genre, so a classifier is always scored on plays it has
never seen. (Not wholly new people, though: the histories share historical figures across
plays — Richard II's Northumberland and Bolingbroke speak in the training plays too — so a
classifier can lean on names as well as on genre.)

Which classes to use is the chapter's choice, stated there: with one held-out play per genre, a
six-way score rests on one play per class; ``THREE_CLASSES`` merges the folders into comedy /
history / tragedy (chapter 8 states the exceptions). Even merged, a class can rest on few plays:
evaluate on several splits together (``split=("val", "test")``) and per play (``n_per_play``).

    data = genre_dataset("train", tokenizer, THREE_CLASSES, n_per_class=256, passage_chars=192)
    data.idx (N, T), data.padding_mask (N, T), data.labels (N,), data.classes ('comedy', ...)
"""

from __future__ import annotations

from dataclasses import dataclass

import re

import torch

from gptlib.data import load_plays

__all__ = ["GENRES", "THREE_CLASSES", "ClassificationData", "pad_batch", "genre_dataset",
           "dev_plays", "shuffle_words", "real_or_shuffled"]

GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")
# One choice of fewer classes (chapter 8 explains it): most problem plays and romances end in
# marriage or reconciliation, as comedies do (Troilus and Cressida, ending in Hector's death, is
# the exception); the Roman plays are tragedies of ancient Rome.
THREE_CLASSES = {"comedy": ("comedies", "problems", "romances"), "history": ("histories",),
                 "tragedy": ("tragedies", "roman")}


@dataclass
class ClassificationData:
    """Labelled sequences, padded on the right: ``idx`` (N, T) int64, ``padding_mask`` (N, T)
    bool (True at real tokens), ``labels`` (N,) int64 in ``[0, len(classes))``; ``classes`` the
    class names; ``texts`` and ``sources`` (e.g. the play) of each example, for inspection."""

    idx: torch.Tensor
    padding_mask: torch.Tensor
    labels: torch.Tensor
    classes: tuple
    texts: list
    sources: list

    def __len__(self) -> int:
        return self.labels.numel()

    def batch(self, ix: torch.Tensor, device="cpu"):
        """``(idx, padding_mask, labels)`` of the examples ``ix``, on ``device``."""
        return tuple(t[ix].to(device) for t in (self.idx, self.padding_mask, self.labels))


def pad_batch(seqs, pad_id: int = 0, side: str = "right"):
    """Token-id sequences of different lengths -> ``(idx (B, T) int64, padding_mask (B, T) bool)``,
    T the longest length, padded with ``pad_id`` on the ``side`` ("right" or "left")."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if not isinstance(pad_id, int) or isinstance(pad_id, bool) or pad_id < 0:
        raise ValueError(f"pad_id must be a token id (an int >= 0), got {pad_id!r}")
    seqs = [torch.as_tensor(s) for s in seqs]
    wrong = [s.dtype for s in seqs
             if s.is_floating_point() or s.is_complex() or s.dtype == torch.bool]
    if wrong:
        raise ValueError(f"pad_batch takes integer token ids, got a sequence of {wrong[0]}")
    seqs = [s.long() for s in seqs]
    if not seqs or any(s.ndim != 1 or s.numel() == 0 for s in seqs):
        raise ValueError("pad_batch needs a non-empty list of non-empty 1-D token-id sequences")
    t = max(s.numel() for s in seqs)
    idx = torch.full((len(seqs), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.bool)
    for i, s in enumerate(seqs):
        cols = slice(0, s.numel()) if side == "right" else slice(t - s.numel(), t)
        idx[i, cols], mask[i, cols] = s, True
    return idx, mask


def _class_map(classes) -> dict:
    classes = {g: (g,) for g in GENRES} if classes is None else classes
    if not isinstance(classes, dict) or len(classes) < 2:
        raise ValueError(f"classes must map >= 2 class names to lists of genres, got {classes!r}")
    seen = {}
    for name, genres in classes.items():
        for g in (genres,) if isinstance(genres, str) else genres:
            if g not in GENRES:
                raise ValueError(f"class {name!r}: unknown genre {g!r}; the corpus's genres "
                                 f"are {GENRES}")
            if g in seen:
                raise ValueError(f"genre {g!r} is in both class {seen[g]!r} and class {name!r}")
            seen[g] = name
    return seen                                                   # genre -> class name


def genre_dataset(split, tokenizer, classes: dict | None = None, n_per_class: int = 64,
                  passage_chars: int = 192, seed: int = 0, plays=None,
                  n_per_play: int | None = None) -> ClassificationData:
    """Passages of the plays of one split (or several: a tuple such as ``("val", "test")``),
    labelled with their play's genre (or merged class).

    ``classes``: class name -> genres (default: the six genres, one class each; e.g.
    ``THREE_CLASSES``); genres in no class are left out. Each class gets ``n_per_class``
    passages, spread evenly over its plays, so the classes are balanced (chance = 1 / K); or,
    with ``n_per_play``, every play gets that many (each play weighs the same; the classes are
    then as unbalanced as their numbers of plays). A passage is ``passage_chars`` characters from
    a position drawn with a ``torch.Generator`` seeded with ``seed`` (the same arguments give the
    same examples), moved to the next line start if one begins within ``passage_chars // 2``
    characters. Splits hold whole plays (``gptlib.data``), so no play is in two splits.
    ``plays``: a list of ``Play`` to use instead of ``load_plays``.
    """
    genre_to_class = _class_map(classes)
    names = tuple(dict.fromkeys(genre_to_class.values()))
    if not isinstance(n_per_class, int) or n_per_class < 1 or not isinstance(passage_chars, int) \
            or passage_chars < 1:
        raise ValueError(f"n_per_class and passage_chars must be positive ints, got "
                         f"{n_per_class!r}, {passage_chars!r}")
    if n_per_play is not None and (not isinstance(n_per_play, int) or n_per_play < 1):
        raise ValueError(f"n_per_play must be a positive int or None, got {n_per_play!r}")
    splits = (split,) if isinstance(split, str) else tuple(split)
    plays = [p for s in splits for p in load_plays(s)] if plays is None else \
        [p for p in plays if p.split in splits]
    gen = torch.Generator().manual_seed(seed)
    texts, labels, sources = [], [], []
    for label, name in enumerate(names):
        members = [p for p in plays if genre_to_class.get(p.genre) == name]
        if not members:
            raise ValueError(f"class {name!r} has no play in split {split!r}; merge its genres "
                             f"into another class")
        for j, play in enumerate(members):
            room = len(play.text) - passage_chars
            if room < 0:
                raise ValueError(f"{play.slug} has {len(play.text)} characters, fewer than "
                                 f"passage_chars={passage_chars}")
            count = n_per_play if n_per_play is not None else \
                n_per_class // len(members) + (j < n_per_class % len(members))
            for start in torch.randint(room + 1, (count,), generator=gen).tolist():
                if start and play.text[start - 1] != "\n":          # begin at a line if near
                    line = play.text.find("\n", start, start + passage_chars // 2) + 1
                    start = line if 0 < line <= room else start
                texts.append(play.text[start:start + passage_chars])
                labels.append(label)
                sources.append(play.slug)
    idx, mask = pad_batch([tokenizer.encode(t) for t in texts])
    return ClassificationData(idx, mask, torch.tensor(labels), names, texts, sources)




def dev_plays(classes: dict | None = None, per_class: int = 2, split: str = "train"):
    """Split one split's plays into ``(fit, dev)`` lists of ``Play``: the last ``per_class`` plays
    of each class (in the corpus's order) are held out as ``dev`` — for choosing learning rates
    and smoothing on plays that are neither trained on nor the final evaluation's."""
    genre_to_class = _class_map(classes)
    plays = [p for p in load_plays(split) if p.genre in genre_to_class]
    dev = []
    for name in dict.fromkeys(genre_to_class.values()):
        members = [p for p in plays if genre_to_class[p.genre] == name]
        if len(members) <= per_class:
            raise ValueError(f"class {name!r} has {len(members)} plays in {split!r}; holding out "
                             f"{per_class} would leave none to train on")
        dev += members[-per_class:]
    return [p for p in plays if p not in dev], dev


_WORD = re.compile(r"[A-Za-z']+")


def shuffle_words(text: str, generator: torch.Generator) -> str:
    """``text`` with the words (runs of letters and apostrophes) of its speech lines in a random
    order, everything else — spaces, punctuation, line breaks, and speaker-heading lines such as
    ``KING HENRY IV:`` — where it was. The multiset of words and of characters is unchanged, so a
    bag-of-words model sees the same input. A heading is a line ending in ``:`` at the start of
    the text or after a blank line (``gptlib.data.SPEAKER_HEADING``'s rule)."""
    keep = [False] * len(text)
    for m in re.finditer(r"(?:\A|(?<=\n\n))[^\n]+:$", text, re.M):
        keep[m.start():m.end()] = [True] * (m.end() - m.start())
    spans = [m for m in _WORD.finditer(text) if not keep[m.start()]]
    order = [spans[i].group(0) for i in torch.randperm(len(spans), generator=generator).tolist()]
    pieces, last = [], 0
    for m, word in zip(spans, order):
        pieces += [text[last:m.start()], word]
        last = m.end()
    return "".join(pieces) + text[last:]


def real_or_shuffled(data: ClassificationData, tokenizer, seed: int = 0) -> ClassificationData:
    """A two-class task from passages: each passage of ``data`` is kept (class ``"real"``) or has
    its words shuffled (class ``"shuffled"``) with probability 1/2 each, drawn with ``seed``.
    Telling them apart needs word order and nothing else (compare the "bigram shift" probing task
    of Conneau et al. 2018, which swaps two adjacent words)."""
    gen = torch.Generator().manual_seed(seed)
    flips = torch.rand(len(data), generator=gen) < 0.5
    texts = [shuffle_words(t, gen) if f else t for t, f in zip(data.texts, flips.tolist())]
    idx, mask = pad_batch([tokenizer.encode(t) for t in texts])
    return ClassificationData(idx, mask, flips.long(), ("real", "shuffled"), texts,
                              list(data.sources))
