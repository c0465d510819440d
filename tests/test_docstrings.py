"""The examples in the public docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import skrcnn

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(skrcnn.__path__, "skrcnn.")
    if not name.endswith("__main__"))


def _with_examples(name):
    finder = doctest.DocTestFinder()
    return any(test.examples for test in finder.find(
        importlib.import_module(name)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", [n for n in MODULES if _with_examples(n)])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} failed"
