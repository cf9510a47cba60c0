"""Output dtypes and shapes of one op, found by running its kernel on probe inputs.

The engine's public answer to "what would this node produce?", for callers that
compose graphs (the builder) and meet ops without a shape function. Inputs are
``(dtype enum, shape)`` pairs; unknown dims are probed as 1.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import SavedModelError
from ..format.tensors import dtype_to_numpy, numpy_to_dtype

#: Largest probe input (elements); bigger inputs are not probed.
MAX_PROBE_ELEMENTS = 1 << 20


def probe_output_types(op: str, input_types, attr_map, consts) -> list[tuple] | None:
    """``[(dtype enum, shape), ...]`` for each output of ``op``, or None when unknown.

    The kernel runs twice, on zeros and on distinct values; dims that differ between
    the runs depend on the data and come back None. None when the engine has no kernel
    for ``op``, the kernel touches state or files, or it fails on the probe.
    ``input_types``: ``(dtype, shape)`` per input; ``attr_map``: the node's AttrValues;
    ``consts``: the values of constant inputs (None for the others).
    """
    from . import ops as _register_all  # noqa: F401 - importing registers kernels
    from .ops.registry import KERNELS
    from .. import opdefs

    kernel, info = KERNELS.get(op), opdefs.get(op)
    if kernel is None or info is None or info.flags & {"io", "stateful", "no_fold"}:
        return None
    first = _run_probe(kernel, op, input_types, attr_map, consts, distinct=False)
    if first is None:
        return None
    second = _run_probe(kernel, op, input_types, attr_map, consts, distinct=True)
    if second is None or len(second) != len(first):
        return [(dtype, None) for dtype, _ in first]
    return [(a[0], _agreeing_dims(a[1], b[1])) for a, b in zip(first, second)]


def _agreeing_dims(a, b):
    """Dims both probes agree on; data-dependent ones (Unique, Where, ...) become None."""
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def _probe_array(shape, dtype, distinct: bool) -> np.ndarray:
    np_dtype = dtype_to_numpy(dtype)
    if not distinct:
        return np.zeros(shape, dtype=np_dtype) if np_dtype != object else \
            np.full(shape, b"", dtype=object)
    count = math.prod(shape)
    if np_dtype == np.bool_:
        return (np.arange(count) % 2 == 1).reshape(shape)
    if np_dtype == object:
        return np.array([str(i).encode() for i in range(count)], dtype=object).reshape(shape)
    return (np.arange(1, count + 1) % 97).astype(np_dtype).reshape(shape)


def _run_probe(kernel, op, input_types, attr_map, consts, distinct: bool):
    from .attrs import decode_node_attrs
    from .context import KernelContext
    inputs = []
    for (dtype, shape), const in zip(input_types, consts):
        if const is not None:
            inputs.append(np.asarray(const))
            continue
        if shape is None or not dtype:
            return None
        shape = tuple(1 if d is None else d for d in shape)
        if math.prod(shape) > MAX_PROBE_ELEMENTS:
            return None
        inputs.append(_probe_array(shape, dtype, distinct))
    try:
        outputs = kernel.fn(KernelContext("numpy"), inputs, decode_node_attrs(attr_map, op))
    except Exception:  # noqa: BLE001 - any kernel failure means "cannot tell"
        return None
    result = []
    for value in outputs:
        value = np.asarray(value)
        try:
            result.append((numpy_to_dtype(value.dtype), tuple(value.shape)))
        except SavedModelError:
            return None
    return result
