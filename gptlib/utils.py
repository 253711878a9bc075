"""Small helpers every chapter uses: seeding and showing the tested source code."""

from __future__ import annotations

import inspect
import random
import textwrap

import numpy as np
import torch

__all__ = ["set_seed", "show", "Source", "results_json"]


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global random generators with one number.

    Notebooks call this at the top of every cell that draws random numbers, so a re-run
    (by a reader or by ``pytest --nbval``) draws the same numbers. Code in ``gptlib`` itself
    prefers an explicit ``torch.Generator`` argument over this global state.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Source:
    """The source code of a Python object, displayed as a highlighted code block.

    In a notebook the object renders as Markdown (a fenced ``python`` block), which both
    JupyterLab and the built book highlight; as plain text it is the code itself, so
    ``pytest --nbval`` compares the code that was printed with the code that is installed.
    """

    def __init__(self, code: str, name: str):
        self.code = code
        self.name = name

    def __repr__(self) -> str:
        return self.code

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.code}\n```"


def show(obj, *, lines: tuple[int, int] | None = None) -> Source:
    """Return the source of ``obj`` (a function, class, method or module) for display.

    ``lines=(first, last)`` keeps only those lines (1-based, inclusive) of the object's
    source, for showing one part of a long class. Use it as the last expression of a
    notebook cell: ``show(MultiHeadAttention.forward)``.
    """
    try:
        code = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(f"show() needs a function, class, method or module defined in Python "
                        f"source; cannot get the source of {obj!r}: {err}") from None
    code = textwrap.dedent(code).rstrip("\n")
    if lines is not None:
        first, last = lines
        all_lines = code.splitlines()
        if not (1 <= first <= last <= len(all_lines)):
            raise ValueError(f"lines={lines} is outside 1..{len(all_lines)}, the length of "
                             f"{getattr(obj, '__qualname__', obj)}'s source")
        code = "\n".join(all_lines[first - 1:last])
    return Source(code, getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj))))


def results_json(results: dict) -> str:
    """An experiment's results as JSON text: the settings indented, then ``results["runs"]``
    one run per line, so that a diff of the committed file shows which runs changed
    (``scripts/experiments/*.py`` write ``data/results/NAME.json`` with it)."""
    import json

    head = json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=1)
    runs = ",\n  ".join(json.dumps(r) for r in results["runs"])
    return head[:-2] + ',\n "runs": [\n  ' + runs + "\n ]\n}\n"
