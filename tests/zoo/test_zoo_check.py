"""How the zoo judges an output and a refusal (quick; no TensorFlow, no zoo needed)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_cache  # noqa: E402
import zoo_check  # noqa: E402

RNG = np.random.default_rng(0)
EXACT = RNG.standard_normal((3, 5))
TF32 = (EXACT + 1e-7 * RNG.standard_normal(EXACT.shape)).astype(np.float32)


def test_ref64_accepts_float32_noise_and_rejects_a_wrong_element():
    ours = (EXACT - 1e-7 * RNG.standard_normal(EXACT.shape)).astype(np.float32)
    zoo_check.compare_output(ours, TF32, EXACT, "ref64", "noise")
    wrong = ours.copy()
    wrong[1, 2] += 1e-3
    with pytest.raises(AssertionError, match="exceeds the bound"):
        zoo_check.compare_output(wrong, TF32, EXACT, "ref64", "wrong")


def test_empty_reduction_identities_are_compared_exactly():
    """max over an empty segment: float32 lowest in TensorFlow, float64 lowest in the reference."""
    tf32 = TF32.copy()
    tf32[0, 0] = np.finfo(np.float32).min
    ref64 = EXACT.copy()
    ref64[0, 0] = np.finfo(np.float64).min
    zoo_check.compare_output(tf32.copy(), tf32, ref64, "ref64", "sentinel")
    ours = tf32.copy()
    ours[0, 0] = 0.0
    with pytest.raises(AssertionError, match="empty-reduction"):
        zoo_check.compare_output(ours, tf32, ref64, "ref64", "sentinel")


def test_complex_outputs_compare_real_and_imaginary_parts():
    ref64 = EXACT + 1j * EXACT[::-1]
    tf32 = ref64.astype(np.complex64)
    zoo_check.compare_output(tf32.copy(), tf32, ref64, "ref64", "complex")
    with pytest.raises(AssertionError):
        zoo_check.compare_output(np.conj(tf32), tf32, ref64, "ref64", "conjugated")


def test_exact_and_stated_bound_modes():
    ints = np.arange(6, dtype=np.int64)
    zoo_check.compare_output(ints.copy(), ints, None, "exact", "ints")
    with pytest.raises(AssertionError, match="differ"):
        zoo_check.compare_output(ints[::-1].copy(), ints, None, "exact", "ints")
    one_ulp = np.nextafter(TF32, np.float32(np.inf))
    zoo_check.compare_output(one_ulp, TF32, None, "bound", "ulp")
    with pytest.raises(AssertionError, match="no float64 reference"):
        zoo_check.compare_output(TF32 * 1.001, TF32, None, "bound", "scaled")


def test_shape_and_dtype_must_match():
    with pytest.raises(AssertionError, match="dtype"):
        zoo_check.compare_output(TF32.astype(np.float64), TF32, EXACT, "ref64", "dtype")
    with pytest.raises(AssertionError, match="shape"):
        zoo_check.compare_output(TF32[:2], TF32, EXACT, "ref64", "shape")


def test_extension_refusal_must_name_each_foreign_op_and_the_library():
    foreign = ["SentencepieceOp", "SentencepieceTokenizeOp"]
    unsupported = foreign + ["RaggedTensorToTensor"]  # a core op: need not be named
    assert zoo_check.unnamed_extension_ops(
        "Op 'SentencepieceOp' is not supported", unsupported, "tensorflow-text") == [
        "SentencepieceTokenizeOp", "the library tensorflow-text"]
    assert zoo_check.unnamed_extension_ops(
        "ops SentencepieceOp, SentencepieceTokenizeOp come from tensorflow-text", unsupported,
        "tensorflow-text") == []
    assert zoo_check.unnamed_extension_ops("anything", unsupported, "keras") == []


def test_ragged_outputs_regroup_into_components():
    stored = {"dense": 1, "rows#1": "splits", "rows#0": "values", "rows#10": "late"}
    assert zoo_cache.grouped_components(stored) == {"dense": 1, "rows": ["values", "splits", "late"]}
