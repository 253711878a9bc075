"""Load a script of ``scripts/experiments/`` as a module, for the tests that re-run it in small."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_experiment(name: str):
    """``scripts/experiments/<name>.py`` imported as the module ``<name>_experiment``."""
    path = ROOT / "scripts" / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
