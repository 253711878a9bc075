"""Copy a chapter source's markdown cells and cell metadata into its notebook without re-running it.

    python scripts/sync_markdown.py scripts/chapters/ch05_positions.py

For prose-only edits (and a code cell's metadata, e.g. its toggle label): the code itself (and
so its stored outputs) must be unchanged, which is checked; anything else needs ``scripts/run_notebooks.py``. ``tests/test_chapter_sources.py``
still checks that every cell of the notebook equals the source.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def main(source: str) -> int:
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("chapter_source", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    name = Path(source).stem.split("_", 1)
    nb_path = next((ROOT / "chapters").glob(f"{name[0][2:]}_*.ipynb"))
    nb = nbformat.read(nb_path, as_version=4)
    if len(nb.cells) != len(module.CELLS):
        raise SystemExit(f"{nb_path.name}: {len(nb.cells)} cells, the source has "
                         f"{len(module.CELLS)}; re-run the notebook instead")
    changed = 0
    for i, (old, new) in enumerate(zip(nb.cells, module.CELLS)):
        if old.cell_type != new.cell_type or (old.cell_type == "code" and old.source != new.source):
            raise SystemExit(f"{nb_path.name}: cell {i} is not a prose-only change; re-run "
                             f"the notebook instead")
        if old.cell_type == "markdown" and old.source != new.source:
            old.source = new.source
            changed += 1
        for key in ("tags", "mystnb"):
            if old.metadata.get(key) != new.metadata.get(key):
                if key in new.metadata:
                    old.metadata[key] = new.metadata[key]
                else:
                    old.metadata.pop(key, None)
                changed += 1
    nbformat.write(nb, nb_path)
    print(f"{nb_path.name}: {changed} markdown cell(s) or cell metadata updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
