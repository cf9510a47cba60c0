"""Shared test helpers: the TensorFlow-made fixture models under tests/fixtures, and the
float64-derived bound for float32 results."""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
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


def model_digest(export_dir) -> str:
    """sha256 over a model directory's files (relative path and bytes), in sorted order."""
    export_dir = Path(export_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in export_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(export_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


# Float32 results are judged by their distance to a float64 run of the same graph
# (tests/fixtures/README.md, "Tolerances from float64"). A correct float32 engine
# differs from TensorFlow's float32 kernels only in rounding order (summation order,
# blocking, fused multiply-adds), so its error against the exact answer is of the same
# size as TensorFlow's own: FLOAT32_ERROR_FACTOR allows ours to be up to 4 times
# farther away (measured on the fixtures: at most ~2 where TensorFlow's error is
# not tiny). A wrong kernel (wrong axis, lost bias, a buffer overwritten) is off by
# the size of the values, far beyond the bound. When TensorFlow's float32 answer is
# exact or nearly so by luck (short sums, inputs on a coarse grid, few output
# elements), the factor alone would demand the same luck from us: the floor of
# FLOAT32_ULP_FLOOR * eps32 * max|ref64| (a few units in the last place of the
# largest output) leaves room for one different rounding order.
FLOAT32_ERROR_FACTOR = 4.0
FLOAT32_ULP_FLOOR = 4.0


def float32_error_bound(tf32, ref64) -> float:
    """The largest |ours - ref64| allowed for a float32 output (see the comment above)."""
    ref64 = np.asarray(ref64, dtype=np.float64)
    finite = np.isfinite(ref64)
    tf_error = np.max(np.abs(np.asarray(tf32, np.float64)[finite] - ref64[finite]), initial=0.0)
    scale = np.max(np.abs(ref64[finite]), initial=0.0)
    eps32 = float(np.finfo(np.float32).eps)
    return (FLOAT32_ERROR_FACTOR * float(tf_error) + FLOAT32_ULP_FLOOR * eps32 * float(scale)
            + float(np.finfo(np.float32).tiny))


def assert_float32_near_reference(ours, tf32, ref64, what=""):
    """ours (float32) is as close to the float64 answer as TensorFlow's float32, up to the bound.

    NaN and infinite elements must sit where TensorFlow's are, with the same value.
    """
    ours, tf32 = np.asarray(ours), np.asarray(tf32)
    ref64 = np.asarray(ref64, dtype=np.float64)
    assert ours.shape == tf32.shape == ref64.shape, \
        f"{what}: shapes ours {ours.shape}, TensorFlow {tf32.shape}, float64 {ref64.shape}"
    special = ~np.isfinite(tf32)
    np.testing.assert_array_equal(ours[special], tf32[special],
                                  err_msg=f"{what}: NaN/inf elements differ from TensorFlow")
    exact = np.isfinite(ref64) & ~special
    error = np.max(np.abs(ours[exact].astype(np.float64) - ref64[exact]), initial=0.0)
    bound = float32_error_bound(tf32[exact], ref64[exact])
    tf_error = np.max(np.abs(tf32[exact].astype(np.float64) - ref64[exact]), initial=0.0)
    scale = np.max(np.abs(ref64[exact]), initial=0.0)
    assert error <= bound, (
        f"{what}: max|ours - float64| = {error:.3g} exceeds the bound {bound:.3g} = "
        f"{FLOAT32_ERROR_FACTOR:g} * max|tf32 - float64| ({tf_error:.3g}) + "
        f"{FLOAT32_ULP_FLOOR:g} * eps32 * max|float64| ({scale:.3g})")
