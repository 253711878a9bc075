"""A tiny helper for authoring chapter notebooks from Python (used by the chapter sources
in ``scripts/chapters/``): ``md(...)`` and ``code(...)`` make cells, ``write(path, cells)``
writes an unexecuted notebook that ``scripts/run_notebooks.py`` then executes.

Authoring a chapter as a list of cells in a ``.py`` file keeps the prose reviewable in diffs;
the ``.ipynb`` in ``chapters/`` (with its stored outputs) is what readers and tests use.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat


def _clean(src: str) -> str:
    return textwrap.dedent(src).strip("\n")


def md(src: str):
    return nbformat.v4.new_markdown_cell(_clean(src))


def code(src: str, *tags: str, prompt: str | None = None):
    """A code cell with ``tags``. A hidden cell (``hide-cell``) gets a toggle labelled
    "Show ``prompt``" / "Hide ``prompt``" instead of MyST-NB's "Show code cell content";
    an exercise solution (its first line ``# Solution...``) is labelled "the solution"."""
    cell = nbformat.v4.new_code_cell(_clean(src))
    if tags:
        cell.metadata["tags"] = list(tags)
    if prompt is None and "hide-cell" in tags \
            and cell.source.lower().startswith("# solution"):
        prompt = "the solution"
    if prompt is not None:
        cell.metadata["mystnb"] = {"code_prompt_show": f"Show {prompt}",
                                   "code_prompt_hide": f"Hide {prompt}"}
    return cell


def write(path, cells) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell.id = f"c{i:03d}"
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
