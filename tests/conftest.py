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


def expected_values(path: Path, tags: str, signature: str) -> tuple[dict, dict, dict]:
    """(inputs, TensorFlow's outputs, float64 reference outputs) of one signature in an
    expected file (``expected/<name>.npz``, its ``.ref64.npz`` beside it when there is one)."""
    groups = {"inputs": {}, "outputs": {}, "ref64": {}}
    ref64_path = path.with_name(path.name[:-len(".npz")] + ".ref64.npz")
    for source in (path, ref64_path) if ref64_path.is_file() else (path,):
        data = np.load(source, allow_pickle=True)
        for key in data.files:
            k_tags, k_sig, kind, name = key.split("|")
            if (k_tags, k_sig) == (tags, signature):
                groups[kind][name] = data[key]
    return groups["inputs"], groups["outputs"], groups["ref64"]


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
# (tests/fixtures/README.md, "Tolerances from float64"):
#     max|ours - ref64| <= FLOAT32_ERROR_FACTOR * max|tf32 - ref64|
#                          + FLOAT32_ULP_FLOOR * eps32 * max|ref64|
# A correct float32 engine differs from TensorFlow's float32 kernels only in rounding
# order (summation order, blocking, fused multiply-adds), so its error against the
# exact answer is of the same size as TensorFlow's own; the factor 4 covers the spread
# of the maximum of a few dozen such errors (on the fixtures ours/TensorFlow's ranged
# 0.2 to 5 per batch, at most 1.3 with TensorFlow's error pooled over the batch sizes),
# while a wrong kernel (wrong axis, lost bias, a buffer overwritten) is off by the size
# of the values, orders of magnitude beyond. When TensorFlow's answer is exact or
# nearly so by luck (short sums, inputs on a coarse grid, few output elements) the
# factor alone would demand the same luck from us: the floor, a few units in the last
# place of the largest output, leaves room for one different rounding order.
FLOAT32_ERROR_FACTOR = 4.0
FLOAT32_ULP_FLOOR = 4.0


def float32_error_bound(runs) -> float:
    """The largest |ours - ref64| allowed for a float32 output (see the comment above).

    runs: (tf32, ref64) pairs of the same output (several batches pool TensorFlow's
    error, a steadier estimate than one small tensor gives); non-finite elements skipped.
    """
    tf_error = scale = 0.0
    for tf32, ref64 in runs:
        tf32, ref64 = np.asarray(tf32, np.float64), np.asarray(ref64, np.float64)
        finite = np.isfinite(ref64) & np.isfinite(tf32)
        tf_error = max(tf_error, float(np.max(np.abs(tf32[finite] - ref64[finite]), initial=0.0)))
        scale = max(scale, float(np.max(np.abs(ref64[finite]), initial=0.0)))
    eps32 = float(np.finfo(np.float32).eps)
    return (FLOAT32_ERROR_FACTOR * tf_error + FLOAT32_ULP_FLOOR * eps32 * scale
            + float(np.finfo(np.float32).tiny))


def assert_float32_near_reference(ours, tf32, ref64, what="", pooled=()):
    """ours (float32) is as close to the float64 answer as TensorFlow's float32, up to the bound.

    pooled: more (tf32, ref64) runs of the same output that enter the bound. NaN and
    infinite elements must sit where TensorFlow's are, with the same value.
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
    runs = [(tf32, ref64), *pooled]
    bound = float32_error_bound(runs)
    assert error <= bound, (
        f"{what}: max|ours - float64| = {error:.3g} exceeds the bound {bound:.3g} = "
        f"{FLOAT32_ERROR_FACTOR:g} * max|tf32 - float64| + {FLOAT32_ULP_FLOOR:g} * eps32 * "
        f"max|float64| over {len(runs)} TensorFlow run(s); this run: max|tf32 - float64| = "
        f"{np.max(np.abs(tf32[exact] - ref64[exact]), initial=0.0):.3g}, "
        f"max|float64| = {np.max(np.abs(ref64[exact]), initial=0.0):.3g}")


# --------------------------------------------------------------------------- Winograd's bound

# Winograd F(2x2, 3x3): A^T [(G g G^T) * (B^T d B)] A. Each output is a signed sum of
# x * w products whose absolute version is the same algorithm on |x|, |w| with |A|, |B|, |G|
# (M_w below; it bounds the plain path's sum of |x w| too, the exact coefficients being 1).
# Roundings: G g G^T once (from float64), B^T d B two adds, the C-term products, A^T m A
# two two-term adds per pass: within gamma_(C + 7) * M_w of the exact value.
WINOGRAD_A = np.array([[1.0, 1, 1, 0], [0, 1, -1, -1]])
WINOGRAD_B = np.array([[1.0, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
WINOGRAD_G = np.array([[1.0, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def winograd_magnitude(x, w, pads, outs):
    """M_w: the Winograd F(2x2, 3x3) algorithm on |x|, |w| and the transforms' |entries|,
    in float64 (written with einsum over explicit tiles, independently of the engine's)."""
    n, _, _, c = x.shape
    rows, cols = -(-outs[0] // 2), -(-outs[1] // 2)
    padded = np.zeros((n, 2 * rows + 2, 2 * cols + 2, c))
    (top, _), (left, _) = pads
    height, width = min(x.shape[1], 2 * rows + 2 - top), min(x.shape[2], 2 * cols + 2 - left)
    padded[:, top:top + height, left:left + width] = np.abs(x[:, :height, :width])
    tiles = np.stack([np.stack([padded[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4] for j in range(cols)], 1)
                      for i in range(rows)], 1)                       # (n, rows, cols, 4, 4, c)
    a, b, g = np.abs(WINOGRAD_A), np.abs(WINOGRAD_B), np.abs(WINOGRAD_G)
    u = np.einsum("ai,ijck,bj->abck", g, np.abs(w.astype(np.float64)), g)
    v = np.einsum("ai,ntsijc,bj->ntsabc", b, tiles, b)
    y = np.einsum("ra,ntsabk,qb->ntrsqk", a, np.einsum("ntsabc,abck->ntsabk", v, u), a)
    return y.reshape(n, 2 * rows, 2 * cols, w.shape[-1])[:, :outs[0], :outs[1]]
