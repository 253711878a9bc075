"""Every chapter notebook's cells must equal those of its source in scripts/chapters/.

The sources are where chapters are edited; this test keeps a notebook edited by hand (in
JupyterLab, say) from drifting away from its source unnoticed.
"""

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "scripts" / "chapters").glob("ch*.py"))


def load_cells(source: Path):
    spec = importlib.util.spec_from_file_location(source.stem, source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CELLS


def notebook_for(source: Path) -> Path:
    number, _, name = source.stem[2:].partition("_")
    return ROOT / "chapters" / f"{number}_{name}.ipynb"


def test_every_chapter_has_a_source():
    notebooks = {p.name for p in (ROOT / "chapters").glob("[0-9]*.ipynb")}
    assert notebooks == {notebook_for(s).name for s in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_source(source):
    expected = load_cells(source)
    nb = nbformat.read(notebook_for(source), as_version=4)
    assert len(nb.cells) == len(expected), "cell count differs: re-run the source script"
    for i, (got, want) in enumerate(zip(nb.cells, expected)):
        assert got.cell_type == want.cell_type, f"cell {i}: type differs"
        assert got.source == want.source, f"cell {i}: source differs from {source.name}"
        assert got.metadata.get("tags", []) == want.metadata.get("tags", []), f"cell {i}: tags differ"
        assert got.metadata.get("mystnb") == want.metadata.get("mystnb"), \
            f"cell {i}: toggle labels (metadata.mystnb) differ"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_has_stored_outputs(source):
    nb = nbformat.read(notebook_for(source), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    unexecuted = [i for i, c in enumerate(code) if c.execution_count is None]
    assert not unexecuted, f"code cells {unexecuted} were never executed: run scripts/run_notebooks.py"


def test_code_cells_are_formatted_to_the_code_box():
    """Every chapter code cell is as ``scripts/format_chapters.py`` (ruff, 79 columns) leaves it."""
    import shutil
    if shutil.which("ruff") is None:
        pytest.fail("ruff is not installed (requirements.txt pins it)")
    spec = importlib.util.spec_from_file_location(
        "format_chapters", Path(__file__).resolve().parent.parent / "scripts" / "format_chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run python scripts/format_chapters.py"
