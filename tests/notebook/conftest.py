"""Shared fixtures for the notebook-layer tests: fixture models, copies, the in-process IPython shell."""
import shutil

import pytest

from notebook_fixtures import fixture_model


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
    from IPython.testing.globalipapp import start_ipython
    shell = start_ipython()
    shell.run_line_magic("load_ext", "sm_notebook")
    return shell
