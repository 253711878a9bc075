"""Re-execute chapter notebooks and store their outputs, reproducibly.

    python scripts/run_notebooks.py                      # every chapter
    python scripts/run_notebooks.py chapters/01_tokens.ipynb

Run this after changing a chapter or ``gptlib``; then ``pytest --nbval chapters/`` checks that
a fresh run reproduces what was stored. The script keeps diffs clean: no execution timings,
execution counts numbered 1, 2, … in order, the widget state saved (the built book renders
widgets from it), and kernel/language metadata reduced to what does not vary by machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def run(path: Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # start from a clean slate: no stale outputs or ids
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    nb.metadata["kernelspec"] = KERNELSPEC
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=True, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))
    os.environ.setdefault("PYTHONHASHSEED", "0")
    for path in paths:
        print(f"{path.name}: running ...", flush=True)
        print(f"{path.name}: done in {run(path.resolve()):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
