"""Shared test helpers: the TensorFlow-made fixture models under tests/fixtures."""
import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = FIXTURES / "models"


def fixture_names() -> list[str]:
    """Every fixture model present on disk, sorted."""
    return sorted(p.name for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else []


def fixture_path(name: str) -> Path:
    return MODELS / name


def manifest() -> dict:
    path = FIXTURES / "manifest.json"
    return json.loads(path.read_text())["models"] if path.is_file() else {}


@pytest.fixture
def copy_fixture(tmp_path):
    """Copy a fixture model into tmp_path (tests must never modify tests/fixtures)."""
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(MODELS / name, target)
        return target
    return copy
