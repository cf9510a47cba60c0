"""Quantization kernels against TensorFlow, compared bit for bit.

QuantizeV2 and Dequantize are compared with TensorFlow's Eigen kernels, run in a
subprocess with oneDNN off: with oneDNN on (the x86 default) TensorFlow swaps in
``_MklQuantizeV2``/``_MklDequantize`` for some dtypes and modes, which give other
ranges (SCALED qint8: output_min -max|range| instead of -128/scale) and refuse others
(qint32 SCALED). See tests/ops/EXCLUSIONS.md.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from harness import BACKENDS, assert_bits_equal, run_kernel
from raw_oracle import conform_bits
from sm_notebook.errors import SavedModelError

HERE = os.path.dirname(os.path.abspath(__file__))
QUANTIZED = {"qint8": np.int8, "quint8": np.uint8, "qint16": np.int16, "quint16": np.uint16,
             "qint32": np.int32}
F32 = np.float32


def _inputs(rng, shape=(4, 5, 3)):
    x = (rng.standard_normal(shape) * 3).astype(F32)
    x.flat[:8] = [0.5, -0.5, 2.5, -2.5, 1e-8, 6.0, -6.0, 100.0][:x.size]
    return x


def _quantize_cases():
    rng = np.random.default_rng(7)
    x = _inputs(rng)
    per_channel = (np.linspace(-3, -0.1, 5).astype(F32), np.linspace(0.2, 4, 5).astype(F32))
    ranges = [(-1, F32(-2.1), F32(3.3)), (-1, F32(0.5), F32(4)), (-1, F32(-1e-9), F32(1e-9)),
              (-1, F32(-3), F32(-1)), (1, *per_channel),
              (2, np.array([-1, -2, 0], F32), np.array([1, 0.5, 3], F32))]
    cases = []
    for t in QUANTIZED:
        for mode in ("MIN_COMBINED", "MIN_FIRST", "SCALED"):
            for round_mode in ("HALF_AWAY_FROM_ZERO", "HALF_TO_EVEN"):
                for narrow in (False, True):
                    for axis, low, high in ranges:
                        for minimum in (0.01, 0.0):
                            attrs = {"mode": mode, "round_mode": round_mode, "narrow_range": narrow,
                                     "axis": axis, "ensure_minimum_range": minimum}
                            cases.append(("QuantizeV2", {"input": x, "min_range": low, "max_range": high},
                                          {"T": ("dtype", t), **attrs}))
    # empty and size-1 dimensions, and an axis of size 1 (TensorFlow then gives scalar ranges)
    for shape, axis in (((0, 3), -1), ((2, 0), 1), ((1, 1), -1), ((3, 1, 2), 1)):
        xs = _inputs(rng, shape)
        size = shape[axis] if axis != -1 else None
        low = F32(-1) if size is None else np.full(size, -1, F32)
        high = F32(2) if size is None else np.full(size, 2, F32)
        for t in ("qint8", "quint8"):
            cases.append(("QuantizeV2", {"input": xs, "min_range": low, "max_range": high},
                          {"T": ("dtype", t), "mode": "MIN_COMBINED", "axis": axis}))
    cases.append(("QuantizeV2", {"input": x, "min_range": F32(2), "max_range": F32(1)},
                  {"T": ("dtype", "qint8")}))  # refused: max < min
    for t, storage in QUANTIZED.items():
        info = np.iinfo(storage)
        q = rng.integers(info.min, info.max, (4, 5, 3), endpoint=True).astype(storage)
        q.flat[:2] = [info.min, info.max]
        for mode in ("MIN_COMBINED", "MIN_FIRST", "SCALED"):
            for narrow in (False, True):
                for dtype in ("float32", "bfloat16"):
                    for axis, low, high in ranges[:2] + ranges[4:5]:
                        cases.append(("Dequantize", {"input": (t, q), "min_range": low, "max_range": high},
                                      {"mode": mode, "narrow_range": narrow, "axis": axis,
                                       "dtype": ("dtype", dtype)}))
    return cases


@pytest.fixture(scope="module")
def eigen_results(tmp_path_factory):
    cases = _quantize_cases()
    folder = tmp_path_factory.mktemp("eigen_oracle")
    with open(folder / "cases.pkl", "wb") as f:
        pickle.dump(cases, f)
    subprocess.run([sys.executable, os.path.join(HERE, "eigen_oracle.py"), str(folder / "cases.pkl"),
                    str(folder / "out.pkl")], check=True, timeout=600)
    with open(folder / "out.pkl", "rb") as f:
        return cases, pickle.load(f)


def _ours(op, named, attrs):
    inputs = [v[1] if isinstance(v, tuple) else v for v in named.values()]
    attrs = {k: (np.dtype(QUANTIZED.get(v[1], v[1])) if isinstance(v, tuple) else v)
             for k, v in attrs.items()}
    return inputs, attrs


@pytest.mark.slow  # the oracle is a second TensorFlow process (about 25 s to start)
@pytest.mark.parametrize("backend", BACKENDS)
def test_quantize_v2_and_dequantize(eigen_results, backend):
    if backend != "numpy":
        pytest.importorskip(backend)
    cases, results = eigen_results
    compared = 0
    for (op, named, attrs), expected in zip(cases, results):
        inputs, our_attrs = _ours(op, named, attrs)
        what = f"{op} {attrs} on {backend}"
        if isinstance(expected, str):
            if expected.startswith("NotFoundError"):
                continue  # no CPU kernel for this dtype: nothing to compare
            with pytest.raises(SavedModelError):
                run_kernel(op, inputs, our_attrs, backend=backend)
            continue
        ours = run_kernel(op, inputs, our_attrs, backend=backend)
        assert len(ours) == len(expected), what
        for i, (a, b) in enumerate(zip(ours, expected)):
            assert_bits_equal(a, b, f"{what} output {i}")
        compared += 1
    assert compared > 400


@pytest.mark.parametrize("backend", BACKENDS)
def test_fake_quant(backend):
    x = _inputs(np.random.default_rng(3), (6, 5, 4))
    for bits in (2, 4, 8, 16):
        for narrow in (False, True):
            for low, high in ((-6.0, 6.0), (-1.3, 2.7), (0.1, 3.0), (-3.0, -0.2), (0.0, 0.0),
                              (-0.7, 0.0), (2.0, 1.0)):
                common = {"num_bits": bits, "narrow_range": narrow}
                conform_bits("FakeQuantWithMinMaxArgs", {"inputs": x}, {"min": low, "max": high, **common},
                       backend)
                conform_bits("FakeQuantWithMinMaxVars",
                       {"inputs": x, "min": F32(low), "max": F32(high)}, common, backend)
            per_channel = {"inputs": x, "min": np.array([-6, -1.3, 0.1, 0], F32),
                           "max": np.array([6, 2.7, 3, 0], F32)}
            conform_bits("FakeQuantWithMinMaxVarsPerChannel", per_channel,
                   {"num_bits": bits, "narrow_range": narrow}, backend)
    for shape in ((0, 4), (1, 1), (4,)):
        xs = _inputs(np.random.default_rng(4), shape)
        conform_bits("FakeQuantWithMinMaxVarsPerChannel",
               {"inputs": xs, "min": np.full(shape[-1], -1, F32), "max": np.full(shape[-1], 2, F32)},
               {}, backend)
        conform_bits("FakeQuantWithMinMaxArgs", {"inputs": xs}, {}, backend)
    conform_bits("FakeQuantWithMinMaxArgs", {"inputs": x}, {"num_bits": 1}, backend)  # refused
    conform_bits("FakeQuantWithMinMaxVarsPerChannel",  # refused: 3 ranges for 4 channels
           {"inputs": x, "min": np.zeros(3, F32), "max": np.ones(3, F32)}, {}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_and_dequantize(dtype, backend):
    x = _inputs(np.random.default_rng(5), (6, 5, 4)).astype(dtype)
    scalar = (np.array(-2.3, dtype), np.array(3.1, dtype))
    vector = (np.linspace(-3, -0.5, 5).astype(dtype), np.linspace(0.4, 5, 5).astype(dtype))
    for signed in (True, False):
        for bits in (1, 4, 8, 16, 30):
            for range_given in (False, True):
                for narrow in (False, True):
                    for axis in (-1, 1):
                        common = {"signed_input": signed, "range_given": range_given,
                                  "narrow_range": narrow, "axis": axis}
                        low, high = vector if (range_given and axis == 1) else scalar
                        named = {"input": x, "input_min": low, "input_max": high}
                        for round_mode in ("HALF_TO_EVEN", "HALF_UP"):
                            for op in ("QuantizeAndDequantizeV2", "QuantizeAndDequantizeV4"):
                                conform_bits(op, named, {"num_bits": bits, "round_mode": round_mode,
                                                   **common}, backend)
                        conform_bits("QuantizeAndDequantizeV3", {**named, "num_bits": np.int32(bits)},
                               common, backend)
    for shape in ((0, 3), (1, 1)):
        xs = _inputs(np.random.default_rng(6), shape).astype(dtype)
        conform_bits("QuantizeAndDequantizeV2", {"input": xs, "input_min": scalar[0], "input_max": scalar[1]},
               {}, backend)
    conform_bits("QuantizeAndDequantizeV2", {"input": x, "input_min": scalar[1], "input_max": scalar[0]},
           {"range_given": True}, backend)  # refused: min > max
    conform_bits("QuantizeAndDequantizeV2", {"input": x, "input_min": scalar[0], "input_max": scalar[1]},
           {"num_bits": 63}, backend)  # refused: too many bits
