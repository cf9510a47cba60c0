"""Helpers shared by the notebook-layer tests (imported by name: conftest modules clash)."""
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def fixture_model(name: str) -> Path:
    """Path of a TF-made fixture model; skips when it has not been generated."""
    path = MODELS / name
    if not (path / "saved_model.pb").exists() and not (path / "saved_model.pbtxt").exists():
        pytest.skip(f"fixture model {name!r} is not generated yet (python tests/fixtures/make_fixtures.py {name})")
    return path
