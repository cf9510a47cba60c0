"""`predict`: the lazy Dask collection that scores a signature over arrays or a DataFrame.

Arrays: one blockwise layer scores each row-chunk (a dict of outputs per chunk), and one
map_blocks layer per output picks its array; dtypes and chunk shapes come from the
SignatureDef. DataFrames: one map_partitions layer whose meta is built from the
SignatureDef. Nothing runs on the client to infer a result's metadata.
"""
from __future__ import annotations

import math
import operator
import os
import string

import dask.array as da
import numpy as np
from dask.layers import ArrayBlockwiseDep

from ..errors import SavedModelError
from .model_cache import check_model_files
from .scoring import check_declared_input, describe_scoring, score_rows

_INNER_LETTERS = [c for c in string.ascii_letters if c != "i"]


def predict(model_path, data, signature="serving_default", tags=None, backend="numpy",
            batch_size=None, outputs=None, columns=None):
    """Score ``data`` with a signature of the SavedModel at ``model_path``, lazily.

    ``data``: a dask array (the signature's only batched input), a dict input key ->
    dask array chunked alike along axis 0 (non-dask values are fed whole to every chunk,
    e.g. a scalar input), or a dask DataFrame whose columns map to inputs by name;
    ``columns={input_key: column or [columns]}`` maps the others (a list is stacked into
    an array of shape (rows, len(list))). Returns a dask array (one output, or
    ``outputs="name"``), a dict of dask arrays, or a dask DataFrame for DataFrame input
    (an output of shape (None, k) becomes columns ``name_0`` .. ``name_{k-1}``).
    ``batch_size`` splits chunks into batches of at most that many rows. Each worker
    process loads the model once (cached by path and fingerprint, tag-set, backend).
    """
    spec = _describe(model_path, signature, tags, backend, batch_size, outputs)
    if _is_dask_dataframe(data):
        result = _predict_frame(spec, data, columns)
    else:
        if columns is not None:
            raise SavedModelError("columns= maps DataFrame columns to inputs; data is not a dask "
                                  f"DataFrame but {type(data).__name__}.")
        result = _predict_arrays(spec, _as_input_dict(spec, data))
        if isinstance(outputs, str) or (outputs is None and len(result) == 1):
            result = next(iter(result.values()))
    _check_workers(spec)
    return result


# ----------------------------------------------------------------------------- the model

def _describe(model_path, signature, tags, backend, batch_size, outputs):
    """The scoring spec, read here; from a worker when only the workers see the path."""
    try:
        return describe_scoring(model_path, signature, tags, backend, batch_size, outputs)
    except SavedModelError as local_error:
        client = _current_client()
        if client is None or os.path.exists(os.fspath(model_path)):
            raise
        future = client.submit(describe_scoring, model_path, signature, tags, backend,
                               batch_size, outputs, pure=False)
        try:
            return future.result()
        except SavedModelError as worker_error:
            raise SavedModelError(
                f"Cannot read the model at {os.fspath(model_path)!r} here ({local_error}) nor on "
                f"a worker ({worker_error}). Pass a path every worker can read (a shared "
                "file system) with a SavedModel in it.") from None


def _current_client():
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):
        return None
    return None if client.asynchronous else client


def _check_workers(spec) -> None:
    """With a distributed Client: every worker must read the same files, checked now."""
    client = _current_client()
    if client is None:
        return
    answers = client.run(check_model_files, spec.model.path, spec.model.fingerprint)
    problems = {worker: problem for worker, problem in sorted(answers.items()) if problem}
    if problems:
        listed = "; ".join(f"{worker}: {problem}" for worker, problem in problems.items())
        raise SavedModelError(
            f"{len(problems)} of {len(answers)} Dask worker(s) cannot use the model at "
            f"{spec.model.path!r}, checked before scheduling anything: {listed}. Put the export "
            "where every worker reads the same files (a shared file system).")


# ----------------------------------------------------------------------------- arrays

def _as_input_dict(spec, data) -> dict:
    if isinstance(data, da.Array):
        required = [k for k in spec.inputs if k not in spec.optional]
        if len(required) > 1 or not spec.inputs:
            raise SavedModelError(
                f"Signature {spec.signature!r} takes {len(spec.inputs)} inputs "
                f"({', '.join(spec.inputs) or 'none'}); pass a dict input key -> dask array.")
        return {(required or list(spec.inputs))[0]: data}
    if isinstance(data, dict):
        return data
    raise SavedModelError(
        f"data must be a dask array, a dict of dask arrays or a dask DataFrame, got "
        f"{type(data).__name__}. Wrap numpy arrays with dask.array.from_array(x, chunks=...).")


def _predict_arrays(spec, data: dict) -> dict:
    unknown = [k for k in data if k not in spec.inputs]
    missing = [k for k in spec.inputs if k not in data and k not in spec.optional]
    if unknown or missing:
        raise SavedModelError(
            f"Signature {spec.signature!r}: unknown input(s) {unknown or 'none'}, missing input(s) "
            f"{missing or 'none'}. Its inputs are: "
            f"{', '.join(f'{k}: {s}' for k, s in spec.inputs.items())}.")
    batched = {k: v for k, v in data.items() if isinstance(v, da.Array)}
    constants = {k: v for k, v in data.items() if not isinstance(v, da.Array)}
    if not batched:
        raise SavedModelError("No input is a dask array: there are no rows to split into chunks.")
    for key, array in batched.items():
        if array.ndim == 0:
            raise SavedModelError(
                f"{spec.what(key)} is a 0-d dask array: it has no rows to split. Pass it as a plain "
                "value in the dict of inputs: it is then fed whole to every chunk.")
        check_declared_input(spec, key, array.dtype, array.shape[1:])
    batched = _aligned(spec, batched)
    row_chunks = next(iter(batched.values())).chunks[0]
    scored = _score_layer(spec, batched, constants, row_chunks)
    result = {}
    for key, output in spec.outputs.items():
        inner = tuple((math.nan,) if d is None else (d,) for d in output.shape[1:])
        result[key] = scored.map_blocks(
            operator.getitem, key, new_axis=list(range(1, len(output.shape))) or None,
            chunks=(row_chunks,) + inner, dtype=output.dtype,
            meta=np.empty((0,) * len(output.shape), dtype=output.dtype))
    return result


def _aligned(spec, batched: dict) -> dict:
    """Every batched input in one chunk across its inner axes and with the first input's
    row chunks (rechunked when the row counts agree but the chunks do not)."""
    arrays = {k: a.rechunk({axis: -1 for axis in range(1, a.ndim)}) for k, a in batched.items()}
    first_key, first = next(iter(arrays.items()))
    for key, array in arrays.items():
        if array.chunks[0] == first.chunks[0]:
            continue
        if math.isnan(array.shape[0]) or math.isnan(first.shape[0]) or array.shape[0] != first.shape[0]:
            raise SavedModelError(
                f"Inputs {first_key!r} ({first.shape[0]} rows in chunks {first.chunks[0]}) and "
                f"{key!r} ({array.shape[0]} rows in chunks {array.chunks[0]}) are not chunked alike "
                "along axis 0; give them the same row chunks.")
        arrays[key] = array.rechunk({0: first.chunks[0]})
    return arrays


def _score_layer(spec, batched: dict, constants: dict, row_chunks):
    """A 1-d object dask array whose block n is the dict of outputs of row-chunk n.

    Each scoring task depends on its input chunks only (the partition's number and first
    row are written into the task), so Dask fuses it with the task that makes a chunk
    (reading or generating it) and a worker does not hold chunks waiting to be scored."""
    letters = iter(_INNER_LETTERS)
    args = []
    try:
        for array in batched.values():
            args += [array, "i" + "".join(next(letters) for _ in range(array.ndim - 1))]
    except StopIteration:
        raise SavedModelError("The inputs have more than 51 inner axes in all; Dask cannot index "
                              "them.") from None
    return da.blockwise(
        _score_block, "i", *args, _Partitions(row_chunks), "i", align_arrays=False,
        concatenate=True, meta=np.empty((0,), dtype=object), spec=spec, keys=tuple(batched),
        constants=constants, token=f"sm_notebook-{spec.signature}")


class _Partitions(ArrayBlockwiseDep):
    """Gives row-chunk n's task ``(n, first row)`` (nan when the row counts are unknown); the
    way ``map_blocks(block_id=...)`` gives a block its id, without a task of its own."""

    def __init__(self, row_chunks: tuple):
        super().__init__((row_chunks,))
        self.starts = np.cumsum((0,) + row_chunks[:-1]).tolist()

    def __getitem__(self, index: tuple):
        return index[0], self.starts[index[0]]

    def __dask_tokenize__(self):
        return "sm_notebook-partitions", self.chunks


def _score_block(*blocks, spec, keys, constants):
    index, start = blocks[-1]
    arrays = dict(zip(keys, blocks[:-1]))
    rows = len(arrays[keys[0]])
    span = f"rows {start}..{start + rows - 1}" if not math.isnan(start) else f"{rows} rows"
    return score_rows(spec, f"Partition {index} ({span}) of the data", rows, arrays, constants)


# ----------------------------------------------------------------------------- DataFrames

def _is_dask_dataframe(data) -> bool:
    import sys
    module = sys.modules.get("dask.dataframe")
    return module is not None and isinstance(data, module.DataFrame)


def _predict_frame(spec, frame, columns):
    import pandas as pd

    mapping = _column_mapping(spec, list(frame.columns), columns or {})
    empty = frame._meta
    for key, source in mapping.items():
        check_declared_input(spec, key, _column_values(empty, source).dtype,
                             _column_values(empty, source).shape[1:])
    layout = _output_columns(spec)
    meta = pd.DataFrame({name: np.empty(0, dtype=spec.outputs[key].dtype)
                         for name, key, _ in layout}, index=empty.index[:0])
    return frame.map_partitions(_score_partition, spec=spec, mapping=mapping, layout=layout,
                                meta=meta, enforce_metadata=False, align_dataframes=False)


def _column_mapping(spec, present: list, columns: dict) -> dict:
    unknown = [k for k in columns if k not in spec.inputs]
    if unknown:
        raise SavedModelError(f"columns= names unknown input(s) {unknown}; signature "
                              f"{spec.signature!r} has inputs: {', '.join(spec.inputs)}.")
    mapping, missing = {}, []
    for key, input_spec in spec.inputs.items():
        if key in columns:
            mapping[key] = columns[key] if isinstance(columns[key], str) else list(columns[key])
        elif key in present:
            mapping[key] = key
        elif input_spec.shape is not None and len(input_spec.shape) == 2 and input_spec.shape[1] \
                and all(f"{key}_{j}" in present for j in range(input_spec.shape[1])):
            mapping[key] = [f"{key}_{j}" for j in range(input_spec.shape[1])]
        elif key not in spec.optional:
            missing.append(f"{key}: {input_spec}")
    absent = [c for source in mapping.values() for c in ([source] if isinstance(source, str) else source)
              if c not in present]
    if missing or absent:
        problem = (f"no column for input(s) {'; '.join(missing)}" if missing else
                   f"column(s) {absent} do not exist")
        raise SavedModelError(
            f"Signature {spec.signature!r}: {problem}. The DataFrame's columns are: "
            f"{', '.join(map(str, present))}. Map inputs to columns with "
            "columns={input_key: column or [columns]}.")
    return mapping


def _column_values(part, source) -> np.ndarray:
    return part[source].to_numpy()


def _output_columns(spec) -> list:
    """(column name, output key, position in the row or None) for every output."""
    layout = []
    for key, output in spec.outputs.items():
        if len(output.shape) == 1:
            layout.append((key, key, None))
        elif len(output.shape) == 2 and output.shape[1] is not None:
            layout += [(f"{key}_{j}", key, j) for j in range(output.shape[1])]
        else:
            raise SavedModelError(
                f"Output {key!r} has shape {output} per row, which does not fit DataFrame "
                "columns; leave it out with outputs=[...] or score a dask array instead.")
    return layout


def _score_partition(part, spec, mapping, layout, partition_info=None):
    import pandas as pd

    number = partition_info["number"] if partition_info else "?"
    span = f"index {part.index[0]!r}..{part.index[-1]!r}" if len(part) else "empty"
    where = f"Partition {number} ({span}) of the DataFrame"
    absent = [c for source in mapping.values() for c in ([source] if isinstance(source, str) else source)
              if c not in part.columns]
    if absent:
        raise SavedModelError(
            f"{where}: column(s) {absent} are missing; this partition has columns "
            f"{', '.join(map(str, part.columns))}.")
    arrays = {key: _column_values(part, source) for key, source in mapping.items()}
    values = score_rows(spec, where, len(part), arrays, {})
    frame = {name: values[key] if j is None else values[key][:, j] for name, key, j in layout}
    return pd.DataFrame(frame, index=part.index)
