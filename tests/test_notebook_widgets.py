"""The stored notebooks carry the state of every widget they display, and ``jupyter trust`` (run
by ``book.sh``; see the README's "Running the notebooks interactively") makes Jupyter trust them.

JupyterLab renders a notebook's saved widget state (controls instead of a line of text such as
``VBox(children=(...))``) only for a trusted notebook and only if the state holds every model the
displayed widget refers to (its children, their layouts and styles, ...).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def displayed_models(nb) -> list[str]:
    return [o["data"][VIEW]["model_id"] for c in nb["cells"] for o in c.get("outputs", [])
            if VIEW in o.get("data", {})]


def referenced(state: dict, model_id: str) -> set[str]:
    """Every model id reachable from ``model_id`` through ``IPY_MODEL_<id>`` references."""
    seen, todo = set(), [model_id]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        if m in state:
            todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[m]["state"]))
    return seen


def test_some_chapter_displays_a_widget():
    assert any(displayed_models(json.loads(p.read_text())) for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_displayed_widgets_have_their_state(path):
    nb = json.loads(path.read_text())
    shown = displayed_models(nb)
    if not shown:
        pytest.skip("displays no widget")
    bundle = nb["metadata"].get("widgets", {}).get(STATE)
    assert bundle is not None, f"{path.name} shows widgets but stores no widget state: " \
                               "regenerate it with scripts/run_notebooks.py"
    assert (bundle["version_major"], bundle["version_minor"]) == (2, 0)
    state = bundle["state"]
    for model_id in shown:
        missing = referenced(state, model_id) - set(state)
        assert not missing, f"{path.name}: widget {model_id} refers to models without state: " \
                            f"{sorted(missing)}"
        assert state[model_id]["model_name"].endswith("Model")
    # the state of a displayed explorer holds its HTML: the book and JupyterLab show it as saved
    html = [s["state"].get("value", "") for s in state.values() if s["model_name"] == "HTMLModel"]
    assert any(v.strip() for v in html)


def _jupyter():
    exe = Path(sys.executable).parent / "jupyter"
    return str(exe) if exe.exists() else shutil.which("jupyter")


@pytest.mark.skipif(_jupyter() is None, reason="jupyter is not installed")
def test_jupyter_trust_makes_the_notebooks_trusted(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbformat.sign import NotebookNotary

    path = NOTEBOOKS[0]
    before = path.read_bytes()
    untrusted_dir, trusted_dir = tmp_path / "untrusted", tmp_path / "trusted"
    untrusted_dir.mkdir()
    trusted_dir.mkdir()
    env = {**os.environ, "JUPYTER_DATA_DIR": str(trusted_dir)}   # never the user's own keys
    subprocess.run([_jupyter(), "trust", str(path)], env=env, check=True, capture_output=True)
    nb = nbformat.read(path, as_version=4)
    assert NotebookNotary(data_dir=str(trusted_dir)).check_signature(nb)
    assert not NotebookNotary(data_dir=str(untrusted_dir)).check_signature(nb)
    assert path.read_bytes() == before, "signing must not change the notebook file"


def test_book_sh_trusts_the_notebooks_and_readme_says_so():
    assert re.search(r"^\s*jupyter trust chapters/", (ROOT / "book.sh").read_text(), re.M)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running the notebooks interactively", 1)[1].split("\n## ", 1)[0]
    assert "jupyter trust chapters/" in section
