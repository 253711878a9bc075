"""The book's corpus (Shakespeare's plays) and the batches a language model trains on.

The prepared corpus lives in the repository's ``data/`` folder (``data/prepare.py`` made it;
``data/README.md`` says from what). Every load checks the files against ``data/SHA256SUMS``,
so an altered or truncated file fails loudly instead of silently changing every result.

Set the environment variable ``GPTLIB_DATA`` to use a ``data/`` folder elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["SPLITS", "CorpusError", "Play", "data_dir", "verify_corpus", "load_text",
           "load_plays", "encode_text", "get_batch", "SPEAKER_HEADING", "speaker_names",
           "speaker_heading_mask"]

SPLITS = ("train", "val", "test")


class CorpusError(RuntimeError):
    """The prepared corpus is missing or does not match its recorded checksums."""


@dataclass(frozen=True)
class Play:
    """One play of the corpus: where it comes from and its text."""
    slug: str
    title: str
    genre: str
    split: str
    text: str


def data_dir() -> Path:
    """The ``data/`` folder: ``$GPTLIB_DATA`` if set, else the one next to this package."""
    env = os.environ.get("GPTLIB_DATA")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "data"


def verify_corpus(root=None) -> dict[str, str]:
    """Check every file listed in ``SHA256SUMS``; return {relative path: sha256}.

    Raises :class:`CorpusError` naming the first missing or altered file and how to fix it.
    """
    root = Path(root) if root is not None else data_dir()
    sums_file = root / "SHA256SUMS"
    if not sums_file.is_file():
        raise CorpusError(f"{sums_file} not found: is {root} the book's data/ folder? "
                          f"(set GPTLIB_DATA, or run `python data/prepare.py`)")
    expected = {}
    for line in sums_file.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        expected[name.strip()] = digest.strip()
    for name, digest in expected.items():
        path = root / name
        if not path.is_file():
            raise CorpusError(f"corpus file {path} is missing; restore it with "
                              f"`git checkout -- data/` or re-create it with `python data/prepare.py`")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            raise CorpusError(f"corpus file {path} has been altered: its sha256 is {actual}, "
                              f"SHA256SUMS records {digest}; restore it with `git checkout -- data/` "
                              f"or re-create it with `python data/prepare.py`")
    return expected


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def load_text(split: str = "train", root=None) -> str:
    """The whole text of one split (``'train'``, ``'val'`` or ``'test'``), checksums verified."""
    _check_split(split)
    root = Path(root) if root is not None else data_dir()
    verify_corpus(root)
    return (root / "corpus" / f"{split}.txt").read_text(encoding="utf-8")


def load_plays(split: str | None = None, root=None) -> list[Play]:
    """Every play (or those of one split) with its title, genre and text."""
    if split is not None:
        _check_split(split)
    root = Path(root) if root is not None else data_dir()
    verify_corpus(root)
    index = json.loads((root / "corpus" / "plays.json").read_text(encoding="utf-8"))
    texts = {s: (root / "corpus" / f"{s}.txt").read_text(encoding="utf-8") for s in SPLITS}
    return [Play(p["slug"], p["title"], p["genre"], p["split"],
                 texts[p["split"]][p["start"]:p["end"]])
            for p in index if split is None or p["split"] == split]


SPEAKER_HEADING = re.compile(r"(?:\A|(?<=\n\n))[^\n]+:$", re.M)
"""A speaker heading: the first line of a speech, ending in a colon (``KING HENRY V:``).

Speeches are separated by blank lines, and the corpus writes a speaker's name in capitals
(``FALSTAFF:``) or, for minor parts, in mixed case (``First Merchant:``, 14% of the validation
plays' speeches), so a heading is recognised by where it stands, not by its case: the first line
of a block, ending in ``:``. A verse line inside a speech that ends in a colon is not one. Of the
corpus's 32,556 blocks, all but 6 start with a heading by this rule (those 6 continue a heading
broken over two lines, such as ``Ghost`` / ``of Prince Edward:``).
"""


def speaker_names(text: str) -> set[str]:
    """The set of speaker headings in ``text``, each without its colon: ``{"FALSTAFF", ...}``."""
    return {m.group(0)[:-1] for m in SPEAKER_HEADING.finditer(text)}




def speaker_heading_mask(text: str) -> torch.Tensor:
    """``(len(text),)`` bool: True at every character of a speaker-heading line.

    The line's newline counts as part of the heading (it is as predictable as the colon), so
    ``"FALSTAFF:\n"`` is ten True characters. With ``mask[1:]`` the mask marks *targets*: the
    characters a language model predicts from the ones before them.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    mask = torch.zeros(len(text), dtype=torch.bool)
    for m in SPEAKER_HEADING.finditer(text):
        mask[m.start():min(m.end() + 1, len(text))] = True
    return mask


def encode_text(text: str, tokenizer) -> torch.Tensor:
    """Encode text into a 1-D ``int64`` tensor of token ids, shape ``(N,)``."""
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of training windows and their next-token targets.

    Args:
        data: ``(N,)`` int64 token ids.
        batch_size: ``B``, the number of windows.
        block_size: ``T``, the length of each window.
        generator: a ``torch.Generator`` that makes the draw reproducible.

    Returns:
        ``x, y``, both ``(B, T)`` int64, with ``y[b, t] == x[b, t + 1]`` for ``t < T - 1`` —
        each position's target is the token that follows it — and ``y[b, T-1]`` the token just
        after the window.
    """
    if not isinstance(data, torch.Tensor) or data.ndim != 1 or data.dtype != torch.long:
        raise ValueError("data must be a 1-D int64 tensor of token ids, got "
                         + (f"shape {tuple(data.shape)} dtype {data.dtype}"
                            if isinstance(data, torch.Tensor) else type(data).__name__))
    for name, value in (("batch_size", batch_size), ("block_size", block_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    n_windows = len(data) - block_size  # start positions that leave room for the targets
    if n_windows < 1:
        raise ValueError(f"block_size {block_size} needs at least {block_size + 1} tokens "
                         f"(inputs plus one target), but the data has only {len(data)}")
    if batch_size > n_windows:
        raise ValueError(f"batch_size {batch_size} is larger than the {n_windows} distinct "
                         f"windows of length {block_size} in {len(data)} tokens; use a smaller "
                         f"batch or block size")
    starts = torch.randint(n_windows, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    x = data[starts[:, None] + offsets]
    y = data[starts[:, None] + offsets + 1]
    return x, y
