"""The examples in the package's docstrings (`>>>`) are run, so that none of them can go stale.

Not pytest's --doctest-modules: that would also collect tests/' several conftest.py files as
modules of one name.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import flowrun

MODULES = sorted(m.name for m in pkgutil.walk_packages(flowrun.__path__, "flowrun."))


def test_the_package_has_examples() -> None:
    finder = doctest.DocTestFinder()
    with_examples = [
        name for name in MODULES
        if any(t.examples for t in finder.find(importlib.import_module(name)))
    ]  # fmt: skip
    assert len(with_examples) >= 30, with_examples


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
