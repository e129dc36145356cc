"""The Examples sections of the public docstrings run as doctests.

They run against the skquant that is installed (the package CI installs),
module by module.
"""

import doctest
import importlib
import pkgutil

import pytest

import skquant

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(skquant.__path__, "skquant.")
    if info.name != "skquant.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_every_public_name_has_an_example():
    for name in skquant.__all__:
        if name.startswith("__"):
            continue
        doc = getattr(skquant, name).__doc__ or ""
        assert "Examples\n    --------" in doc and ">>>" in doc, name
