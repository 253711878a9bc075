"""Load a script of ``scripts/experiments/`` as a module, for the tests that re-run it in small."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_experiment(name: str):
    """``scripts/experiments/<name>.py`` imported as the module ``<name>_experiment``."""
    path = ROOT / "scripts" / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def experiment_fixtures(name: str):
    """The two module-scoped fixtures every experiment test starts from: ``exp``, the script
    ``scripts/experiments/<name>.py`` as a module, and ``committed``, its results file
    ``data/results/<name>.json`` parsed. Use as ``exp, committed = experiment_fixtures(name)``."""

    @pytest.fixture(scope="module")
    def exp():
        return load_experiment(name)

    @pytest.fixture(scope="module")
    def committed():
        return json.loads((ROOT / "data" / "results" / f"{name}.json").read_text())

    return exp, committed
