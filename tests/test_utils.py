"""gptlib.utils: seeding and showing source code."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

import gptlib.ngram
from gptlib.ngram import BigramLanguageModel, bigram_probs
from gptlib.utils import Source, set_seed, show


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_set_seed_seeds_python_numpy_and_torch():
    set_seed(3)
    first = draws()
    set_seed(3)
    assert draws() == first                          # all three generators restarted
    set_seed(4)
    other = draws()
    assert all(a != b for a, b in zip(first, other))  # each generator depends on the seed
    # the same numbers as seeding each library by hand
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    assert draws() == first
    set_seed(2**40 + 3)                              # numpy takes seeds below 2**32 only
    assert float(np.random.rand()) == float(np.random.RandomState(3).rand())


def test_set_seed_refuses_what_is_not_an_int():
    for bad in (1.0, "1", True, None):
        with pytest.raises(TypeError, match="seed must be an int"):
            set_seed(bad)


def source_lines(path, first_line, marker):
    """The lines of ``path`` from ``first_line`` (1-based) up to the line before ``marker``."""
    lines = Path(path).read_text().splitlines()
    end = next(i for i in range(first_line, len(lines)) if lines[i].startswith(marker))
    return "\n".join(lines[first_line - 1:end]).rstrip("\n")


def test_show_returns_the_code_as_it_is_in_the_file():
    src = Path(gptlib.ngram.__file__).read_text().splitlines()
    start = src.index("def bigram_probs(counts: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:") + 1
    expected = source_lines(gptlib.ngram.__file__, start, "def ").rstrip()
    shown = show(bigram_probs)
    assert isinstance(shown, Source) and shown.name == "bigram_probs"
    assert repr(shown) == shown.code == expected
    assert shown._repr_markdown_() == f"```python\n{expected}\n```"
    # a method is dedented; lines=(first, last) keeps a part
    method = show(BigramLanguageModel.forward)
    assert method.code.startswith("def forward(self, idx") and method.name == "BigramLanguageModel.forward"
    assert show(BigramLanguageModel.forward, lines=(2, 3)).code == "\n".join(method.code.splitlines()[1:3])


def test_show_errors():
    with pytest.raises(TypeError, match="cannot get the source of <built-in function len>"):
        show(len)
    n = len(show(bigram_probs).code.splitlines())
    with pytest.raises(ValueError, match=rf"lines=\(3, 99\) is outside 1..{n}, the length of bigram_probs"):
        show(bigram_probs, lines=(3, 99))
    with pytest.raises(ValueError, match="is outside"):
        show(bigram_probs, lines=(4, 2))


def test_results_json_writes_one_run_per_line_and_reproduces_the_committed_files():
    import json

    from gptlib.utils import results_json
    text = results_json({"made_by": "x", "runs": [{"a": 1}, {"a": 2.5, "b": "c"}]})
    assert json.loads(text) == {"made_by": "x", "runs": [{"a": 1}, {"a": 2.5, "b": "c"}]}
    assert text.splitlines() == ['{', ' "made_by": "x",', ' "runs": [', '  {"a": 1},',
                                 '  {"a": 2.5, "b": "c"}', ' ]', '}']
    root = Path(__file__).resolve().parent.parent / "data" / "results"
    for name in ("positional.json", "scaling.json"):       # written by scripts/experiments
        committed = (root / name).read_text()
        assert results_json(json.loads(committed)) == committed
