"""Format the code cells of every chapter source to the book's code box (79 characters) with ruff.

    python scripts/format_chapters.py           # rewrite scripts/chapters/ch*.py in place
    python scripts/format_chapters.py --check   # exit 1 if a cell would change
    python scripts/format_chapters.py scripts/chapters/ch03_masking.py   # only these sources

Settings: ``[tool.ruff]`` in pyproject.toml (line length 79, quotes kept as written). Each
``code(r\"\"\"...\"\"\")`` cell is formatted on its own; an IPython magic line (``%xmode ...``) is
kept as it is. ruff does not split long strings or comments: those are shortened by hand, and
the book wraps what is left (``book_static/book.css``). After formatting, regenerate the
notebooks (``python scripts/chapters/chNN_*.py`` then ``scripts/run_notebooks.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CELL = re.compile(r'(code\(r""")\n(.*?)\n(""")', re.S)
MAGIC = "# __ipython_magic__ "


def format_cell(src: str) -> str:
    """``src`` formatted by ruff; unchanged if ruff cannot parse it."""
    hidden = "\n".join(MAGIC + line if line.startswith("%") else line
                       for line in src.split("\n"))
    done = subprocess.run(["ruff", "format", "--config", str(ROOT / "pyproject.toml"),
                           "--stdin-filename", "cell.py", "-"], input=hidden, text=True,
                          capture_output=True)
    if done.returncode:
        print(f"  ruff could not format a cell, left as is: {done.stderr.strip()[:120]}")
        return src
    out = done.stdout.rstrip("\n")
    out = "\n".join(line[len(MAGIC):] if line.startswith(MAGIC) else line
                    for line in out.split("\n"))
    if '"""' in out:
        print("  a formatted cell would contain a triple quote; left as is")
        return src
    return out


def main(argv=None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    check = "--check" in args
    named = [Path(a).resolve() for a in args if a != "--check"]
    for path in named:
        if path.parent != ROOT / "scripts" / "chapters" or not path.name.startswith("ch"):
            raise SystemExit(f"{path} is not a chapter source (scripts/chapters/ch*.py)")
    changed = []
    for path in named or sorted((ROOT / "scripts" / "chapters").glob("ch*.py")):
        text = path.read_text()
        new = CELL.sub(lambda m: f"{m.group(1)}\n{format_cell(m.group(2))}\n{m.group(3)}", text)
        if new != text:
            changed.append(path.name)
            if not check:
                path.write_text(new)
    print(("would change: " if check else "formatted: ") + (", ".join(changed) or "nothing"))
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
