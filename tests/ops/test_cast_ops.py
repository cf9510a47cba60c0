"""Cast and Bitcast against tf.raw_ops, over every pair of numeric dtypes."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import conform

#: Behaviour we do not reproduce, reported as xfail with the reason.
EXCLUSIONS = {
    "float-special-to-uint32/64": "float -> uint32/uint64 of NaN, inf or out-of-range values is "
                                  "undefined behaviour in C++; TensorFlow's x86 result is not reproduced.",
    "bfloat16-negative-to-unsigned": "bfloat16 -> unsigned of negative values is undefined "
                                     "behaviour in C++; TensorFlow's result depends on its "
                                     "vectorization path (-1 -> 0 or 255); not reproduced.",
    "quantized": "qint8/quint8/qint16/quint16/qint32 casts: quantized dtypes are not supported.",
}

DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
          np.uint64, np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.complex64,
          np.complex128]
NAMES = [np.dtype(d).name for d in DTYPES]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def source_values(dtype):
    """Values every destination type can hold after TensorFlow's conversion rules."""
    dtype = np.dtype(dtype)
    base = np.asarray([0, 1, -1, 2.5, -2.5, 3.75, -7.25, 100.5, -100.5, 0.3, 127, 1e-3, 42.9, -0.7])
    if dtype.kind == "b":
        return np.asarray([True, False, True, False])
    if dtype.kind == "u":
        return np.abs(base).astype(np.int64).astype(dtype)
    if dtype.kind == "i":
        return base.astype(np.int64).astype(dtype)
    if dtype.kind == "c":
        return (base + 1j * base[::-1]).astype(dtype)
    return base.astype(dtype)


@pytest.mark.parametrize("src", DTYPES, ids=NAMES)
def test_cast_all_pairs(backend, src):
    for dst in DTYPES:
        x = source_values(src).reshape(2, 7) if np.dtype(src).kind != "b" else source_values(src)
        if np.dtype(src).name == "bfloat16" and np.dtype(dst).kind == "u":
            x = abs(x)  # see EXCLUSIONS["bfloat16-negative-to-unsigned"]
        conform("Cast", {"x": x}, {"DstT": np.dtype(dst)}, backend=backend)


SPECIAL = np.asarray([np.nan, np.inf, -np.inf, 1e20, -1e20, 300.5, -3.7, 2.0 ** 31, 65504.0,
                      -129.0, 40000.0])


@pytest.mark.parametrize("dst", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.bool_],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("src", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).name)
def test_cast_float_specials(backend, src, dst):
    with np.errstate(over="ignore"):
        x = SPECIAL.astype(src)
    conform("Cast", {"x": x}, {"DstT": np.dtype(dst)}, backend=backend)


@pytest.mark.xfail(reason=EXCLUSIONS["float-special-to-uint32/64"], strict=False)
@pytest.mark.parametrize("dst", [np.uint32, np.uint64], ids=lambda d: np.dtype(d).name)
def test_cast_float_specials_to_wide_unsigned(dst):
    conform("Cast", {"x": SPECIAL.astype(np.float32)}, {"DstT": np.dtype(dst)})


@pytest.mark.xfail(reason=EXCLUSIONS["bfloat16-negative-to-unsigned"], strict=False)
def test_cast_negative_bfloat16_to_unsigned():
    x = source_values(ml_dtypes.bfloat16).reshape(2, 7)
    conform("Cast", {"x": x}, {"DstT": np.dtype(np.uint8)})


@pytest.mark.parametrize("src", [np.float32, np.float64, np.int32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("dst", [ml_dtypes.bfloat16, np.float16], ids=lambda d: np.dtype(d).name)
def test_cast_truncate_and_rounding(backend, src, dst):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(64) * 1000).astype(src)
    if np.dtype(src).kind == "f":
        x[:4] = [1.00390625 + 0.001, 3.3e38 if src == np.float32 else 1e300, 1.00048828125 + 1e-12,
                 -1.1]
    for truncate in (False, True):
        conform("Cast", {"x": x}, {"DstT": np.dtype(dst), "Truncate": truncate}, backend=backend)


BITCAST_TYPES = [d for d in DTYPES if np.dtype(d).kind != "b"]


@pytest.mark.parametrize("src", BITCAST_TYPES, ids=lambda d: np.dtype(d).name)
def test_bitcast_all_pairs(backend, src):
    for dst in BITCAST_TYPES:
        check_bitcast(backend, np.dtype(src), np.dtype(dst))


def check_bitcast(backend, src, dst):
    rng = np.random.default_rng(src.itemsize * 17 + dst.itemsize)
    ratio = max(dst.itemsize // src.itemsize, 1)
    raw = rng.integers(0, 256, 3 * ratio * src.itemsize, dtype=np.uint8)
    if src.kind in "fc" or src.name == "bfloat16":  # avoid NaN payloads, which TF may canonicalize
        raw = np.zeros_like(raw) + rng.integers(0, 64, raw.shape, dtype=np.uint8)
    x = raw.view(src).reshape(3, ratio)
    conform("Bitcast", {"input": x}, {"type": dst}, backend=backend)
    if ratio > 1:  # the last dimension must equal the size ratio
        conform("Bitcast", {"input": x[:, :1]}, {"type": dst}, backend=backend)


def test_bitcast_scalar_to_wider_is_refused(backend):
    conform("Bitcast", {"input": np.uint8(3)}, {"type": np.dtype(np.int32)}, backend=backend)
