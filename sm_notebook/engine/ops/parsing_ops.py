"""Example parsing kernels (host only): ParseExampleV2, ParseExample, ParseSingleExample."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import SavedModelError
from ...format.example import BYTES, FLOAT, INT64, CorruptExampleError, parse_example
from .registry import kernel

_KIND_OF = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64, np.dtype(object): BYTES}
_TYPE_NAME = {FLOAT: "float", INT64: "int64", BYTES: "string"}


@dataclass
class _Dense:
    key: bytes
    dtype: np.dtype
    shape: tuple          # first dim None: variable length, padded
    default: np.ndarray


def _kind(dtype, op) -> str:
    dtype = np.dtype(dtype)
    if dtype not in _KIND_OF:
        raise SavedModelError(f"{op}: feature dtype {dtype.name} is not supported "
                              "(float32, int64 or string).")
    return _KIND_OF[dtype]


def _key_list(value) -> list[bytes]:
    if isinstance(value, (list, tuple)):
        return [v.encode() if isinstance(v, str) else bytes(v) for v in value]
    return [v.encode() if isinstance(v, str) else bytes(v) for v in np.asarray(value).reshape(-1)]


def _as_array(values, dtype):
    if dtype.kind == "O":
        out = np.empty(len(values), object)
        out[:] = list(values)
        return out
    return np.asarray(values, dtype=dtype)


def _values_of(feature, key, dtype, index, op):
    """The values of a present feature, checked against the expected dtype; None when absent."""
    if feature is None or feature.kind is None:
        return None
    expected = _kind(dtype, op)
    if feature.kind != expected:
        raise SavedModelError(f"{op}: key: {key.decode(errors='replace')}, index: {index}. Data "
                              f"types don't match. Data type: {_TYPE_NAME[feature.kind]} but "
                              f"expected type: {_TYPE_NAME[expected]}.")
    return _as_array(feature.values(), np.dtype(dtype))


def _parse_all(serialized, op):
    examples = []
    for s in serialized:
        s = s.encode() if isinstance(s, str) else bytes(s)
        try:
            examples.append(parse_example(s))
        except CorruptExampleError as exc:
            raise SavedModelError(f"{op}: could not parse example input, value: {s[:60]!r} "
                                  f"({exc}).") from None
    return examples


def _dense_output(examples, spec: _Dense, op, batched, ctx=None):
    dtype, shape = spec.dtype, spec.shape
    variable = len(shape) > 0 and shape[0] is None
    inner = tuple(shape[1:]) if variable else tuple(shape)
    if any(d is None for d in inner):
        raise SavedModelError(f"{op}: dense shape {shape} of {spec.key!r} may only leave the first "
                              "dimension unknown.")
    stride = int(np.prod(inner, dtype=np.int64))
    rows = []
    for index, features in enumerate(examples):
        values = _values_of(features.get(spec.key), spec.key, dtype, index, op)
        if variable:
            values = values if values is not None else _as_array([], dtype)
            if stride == 0 or len(values) % stride:
                raise SavedModelError(f"{op}: key: {spec.key.decode(errors='replace')}, index: "
                                      f"{index}. Number of {_TYPE_NAME[_kind(dtype, op)]} values "
                                      f"is not a multiple of stride length. Saw {len(values)} "
                                      f"values but output shape is: {list(shape)}.")
        elif values is None:
            if spec.default.size == 0:
                raise SavedModelError(f"{op}: feature: {spec.key.decode(errors='replace')} (data "
                                      f"type: {_TYPE_NAME[_kind(dtype, op)]}) is required but "
                                      "could not be found.")
            values = spec.default.reshape(-1)
        elif len(values) != stride:
            raise SavedModelError(f"{op}: key: {spec.key.decode(errors='replace')}, index: "
                                  f"{index}. "
                                  f"Number of {_TYPE_NAME[_kind(dtype, op)]} values != expected. "
                                  f"Values size: {len(values)} but output shape: {list(shape)}.")
        rows.append(values)
    if variable:
        longest = max((len(r) // stride for r in rows), default=0)
        zero = b"" if dtype.kind == "O" else 0
        pad = spec.default.reshape(-1)[0] if spec.default.size else zero
        if ctx is not None:
            ctx.check_alloc((len(rows), longest * stride), dtype, op)
        out = np.full((len(rows), longest * stride), pad, dtype=dtype)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        full = (len(rows), longest) + inner
    else:
        if ctx is not None:
            ctx.check_alloc((len(rows), stride), dtype, op)
        out = np.empty((len(rows), stride), dtype=dtype)
        for i, r in enumerate(rows):
            out[i] = r
        full = (len(rows),) + inner
    out = out.reshape(full)
    return out if batched else out[0, ...]


def _sparse_output(examples, key, dtype, op, batched):
    indices, values, longest = [], [], 0
    for index, features in enumerate(examples):
        found = _values_of(features.get(key), key, dtype, index, op)
        if found is None:
            continue
        longest = max(longest, len(found))
        indices.extend((index, j) for j in range(len(found)))
        values.append(found)
    flat = np.concatenate(values) if values else _as_array([], dtype)
    idx = np.asarray(indices, np.int64).reshape(len(indices), 2)
    shape = np.asarray([len(examples), longest], np.int64)
    if not batched:
        idx, shape = idx[:, 1:], shape[1:]
    return idx, flat.astype(dtype, copy=False), shape


def _ragged_output(examples, key, dtype, split_dtype, op, batched):
    values, splits = [], [0]
    for index, features in enumerate(examples):
        found = _values_of(features.get(key), key, dtype, index, op)
        found = found if found is not None else _as_array([], dtype)
        values.append(found)
        splits.append(splits[-1] + len(found))
    flat = np.concatenate(values) if values else _as_array([], dtype)
    row_splits = np.asarray(splits if batched else [], dtype=split_dtype)
    return flat.astype(dtype, copy=False), row_splits


def parse_examples(serialized, sparse, dense, ragged, op, ctx=None):
    """Parse serialized Examples (a scalar or a vector) into the op's flat output list.

    ``sparse``: [(key, dtype)], ``dense``: [_Dense], ``ragged``: [(key, dtype, split dtype)].
    ``ctx``: dense outputs (defaults repeated per example, padding) are checked against
    its memory cap before they are made.
    """
    serialized = np.asarray(serialized)
    batched = serialized.ndim > 0
    if serialized.ndim > 1:
        raise SavedModelError(f"{op}: serialized must be a scalar or a vector, got shape "
                              f"{serialized.shape}.")
    examples = _parse_all(serialized.reshape(-1), op)
    sparse_out = [_sparse_output(examples, key, np.dtype(dt), op, batched) for key, dt in sparse]
    dense_out = [_dense_output(examples, spec, op, batched, ctx) for spec in dense]
    ragged_out = [_ragged_output(examples, key, np.dtype(dt), np.dtype(st), op, batched)
                  for key, dt, st in ragged]
    return ([s[0] for s in sparse_out] + [s[1] for s in sparse_out] + [s[2] for s in sparse_out]
            + dense_out + [r[0] for r in ragged_out] + [r[1] for r in ragged_out])


def _dense_specs(keys, defaults, attrs, op):
    types, shapes = list(attrs.get("Tdense", [])), list(attrs.get("dense_shapes", []))
    if not (len(keys) == len(types) == len(shapes) == len(defaults)):
        raise SavedModelError(f"{op}: {len(keys)} dense keys, {len(types)} Tdense, {len(shapes)} "
                              f"dense_shapes and {len(defaults)} defaults must agree.")
    specs = []
    for key, dtype, shape, default in zip(keys, types, shapes, defaults):
        dtype = np.dtype(dtype)
        _kind(dtype, op)
        shape = tuple(shape) if shape is not None else ()
        default = np.asarray(default)
        if default.dtype.kind in "SU":
            default = default.astype(object)
        known = shape[1:] if shape and shape[0] is None else shape
        variable = bool(shape) and shape[0] is None
        if default.size and not variable and default.size != int(np.prod(known)):
            raise SavedModelError(f"{op}: default value of {key!r} has {default.size} elements; "
                                  f"the dense shape {shape} needs {int(np.prod(known))}.")
        if dtype.kind != "O":
            default = default.astype(dtype)
        specs.append(_Dense(key, dtype, shape, default))
    return specs



@kernel("ParseExampleV2")
def parse_example_v2(ctx, inputs, attrs):
    op = "ParseExampleV2"
    serialized, _names, sparse_keys, dense_keys, ragged_keys = inputs[:5]
    defaults = inputs[5:]
    sparse_types = list(attrs.get("sparse_types", []))
    sparse_keys, dense_keys, ragged_keys = (_key_list(k)
                                            for k in (sparse_keys, dense_keys, ragged_keys))
    value_types = list(attrs.get("ragged_value_types", []))
    split_types = list(attrs.get("ragged_split_types", []))
    num_sparse = int(attrs.get("num_sparse", len(sparse_types)))
    if not len(sparse_keys) == len(sparse_types) == num_sparse:
        raise SavedModelError(f"{op}: {len(sparse_keys)} sparse keys for {len(sparse_types)} "
                              "sparse types.")
    if not len(ragged_keys) == len(value_types) == len(split_types):
        raise SavedModelError(f"{op}: {len(ragged_keys)} ragged keys for {len(value_types)} value "
                              f"types and {len(split_types)} split types.")
    all_keys = sparse_keys + dense_keys + ragged_keys
    if len(set(all_keys)) != len(all_keys):
        raise SavedModelError(f"{op}: a feature key is requested twice: {all_keys}.")
    return parse_examples(serialized, list(zip(sparse_keys, sparse_types)),
                          _dense_specs(dense_keys, defaults, attrs, op),
                          list(zip(ragged_keys, value_types, split_types)), op, ctx)



@kernel("ParseExample")
def parse_example_v1(ctx, inputs, attrs):
    op = "ParseExample"
    n_sparse, n_dense = int(attrs.get("Nsparse", 0)), int(attrs.get("Ndense", 0))
    serialized = np.asarray(inputs[0])
    if serialized.ndim != 1:
        raise SavedModelError(f"{op}: serialized must be a vector, got shape {serialized.shape}.")
    sparse_keys = [_key_list(k)[0] for k in inputs[2:2 + n_sparse]]
    dense_keys = [_key_list(k)[0] for k in inputs[2 + n_sparse:2 + n_sparse + n_dense]]
    defaults = inputs[2 + n_sparse + n_dense:]
    return parse_examples(serialized, list(zip(sparse_keys, attrs.get("sparse_types", []))),
                          _dense_specs(dense_keys, defaults, attrs, op), [], op, ctx)



@kernel("ParseSingleExample")
def parse_single_example(ctx, inputs, attrs):
    op = "ParseSingleExample"
    serialized = np.asarray(inputs[0])
    if serialized.ndim != 0:
        raise SavedModelError(f"{op}: serialized must be a scalar, got shape {serialized.shape}.")
    sparse_keys = _key_list(attrs.get("sparse_keys", []))
    dense_keys = _key_list(attrs.get("dense_keys", []))
    return parse_examples(serialized, list(zip(sparse_keys, attrs.get("sparse_types", []))),
                          _dense_specs(dense_keys, inputs[1:], attrs, op), [], op, ctx)
