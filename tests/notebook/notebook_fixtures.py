"""Fixtures shared by the notebook-layer tests, imported by name.

Not a conftest.py: a second conftest module would shadow tests/conftest.py for
the `from conftest import ...` other suites do.
"""
import shutil
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def fixture_model(name: str) -> Path:
    """Path of a TF-made fixture model (committed; a missing one fails the test)."""
    path = MODELS / name
    if not (path / "saved_model.pb").exists() and not (path / "saved_model.pbtxt").exists():
        pytest.fail(f"fixture model {name!r} is missing (python tests/fixtures/make_fixtures.py {name})")
    return path


@pytest.fixture
def copy_model(tmp_path):
    """``copy_model(name)`` -> a fresh copy of a fixture model under tmp_path."""
    def make(name="tf1_multi_tags"):
        target = tmp_path / name
        shutil.copytree(fixture_model(name), target)
        return target
    return make


@pytest.fixture(scope="session")
def ip():
    """IPython's in-process test shell with %load_ext sm_notebook done."""
    from IPython.terminal.interactiveshell import TerminalInteractiveShell
    from IPython.testing.globalipapp import start_ipython
    # start_ipython() makes the shell once and then returns None (a second test module
    # importing this fixture gets the same shell)
    shell = start_ipython() or TerminalInteractiveShell.instance()
    shell.run_line_magic("load_ext", "sm_notebook")
    return shell
