"""What a signature needs for row-wise scoring, and the scoring of one chunk of rows.

`describe_scoring` runs on the client: it reads the SignatureDef (never the
variables) and checks that every selected output is row-wise. `score_rows` runs on
a worker: it feeds one chunk, in batches of at most ``batch_size`` rows, through the
worker's cached model and checks what comes back against the SignatureDef.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import numpy as np

from ..engine.model import TensorSpec, convert_input, spec_text
from ..errors import SavedModelError
from .model_cache import ModelKey, get_model, model_fingerprint
from .remote import describing_copy, is_url


@dataclass(frozen=True)
class ScoringSpec:
    """One signature of one model, as a Dask job scores it (picklable, sent with every task)."""
    model: ModelKey
    signature: str
    inputs: dict          # input key -> engine TensorSpec (numpy dtype, shape with None dims)
    outputs: dict         # selected output key -> engine TensorSpec
    optional: frozenset   # inputs the SignatureDef gives a default value
    batch_size: int | None

    def what(self, key: str) -> str:
        return f"Input {key!r} of signature {self.signature!r}"


def describe_scoring(model_path, signature, tags, backend, batch_size, outputs) -> ScoringSpec:
    """Read ``signature`` of the export and check it can be scored row by row."""
    import sm_notebook

    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise SavedModelError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    if not isinstance(backend, str):
        raise SavedModelError(
            f"backend must be a name ('numpy' or 'cupy') for Dask workers to load the model with, "
            f"got {backend!r}.")
    path = _local_path(model_path)
    if is_url(path):
        described = describing_copy(path)
        try:
            return _describe(sm_notebook.inspect(described), path, model_fingerprint(described),
                             signature, tags, backend, batch_size, outputs)
        finally:
            shutil.rmtree(described, ignore_errors=True)
    return _describe(sm_notebook.inspect(path), path, model_fingerprint(path),
                     signature, tags, backend, batch_size, outputs)


def _describe(info, path, fingerprint, signature, tags, backend, batch_size, outputs) -> ScoringSpec:
    meta_graph = info.meta_graph(tags)
    described = info.signature(signature, tags)  # a clear error listing the keys when absent
    ragged = [k for k, s in described.inputs.items() if s.ragged]
    if ragged:
        raise SavedModelError(
            f"Signature {signature!r} takes a ragged argument (inputs {', '.join(ragged)}): its "
            "row_splits do not split row by row, so a chunked Dask job cannot score it. Call the "
            "signature directly (sm_notebook.load(...).signatures[...]) with sm_notebook.Ragged.")
    signature_def = meta_graph.proto.signature_def[signature]
    inputs = {k: _engine_spec(v, f"Input {k!r} of signature {signature!r}")
              for k, v in sorted(signature_def.inputs.items())}
    every_output = {k: _engine_spec(v, f"Output {k!r} of signature {signature!r}")
                    for k, v in sorted(signature_def.outputs.items())}
    selected = _select_outputs(outputs, every_output, signature)
    not_row_wise = [f"{k}: {spec_text(s.dtype, s.shape)}" for k, s in selected.items()
                    if s.shape is None or len(s.shape) == 0]
    if not_row_wise:
        row_wise = [k for k, s in every_output.items() if s.shape is not None and len(s.shape) > 0]
        raise SavedModelError(
            f"Signature {signature!r} has output(s) that are not one row per input row "
            f"({'; '.join(not_row_wise)}): a chunked job cannot assemble them. Pick row-wise "
            f"outputs with outputs=[...]; candidates: {', '.join(row_wise) or 'none'}.")
    key = ModelKey(path, fingerprint, tuple(sorted(meta_graph.tags)), backend)
    return ScoringSpec(key, signature, inputs, selected, frozenset(signature_def.defaults),
                       None if batch_size is None else int(batch_size))


def _local_path(model_path) -> str:
    """An absolute local path (``file://`` URLs included), or an fsspec URL as given."""
    path = os.fspath(model_path)
    if is_url(path):
        return path
    if isinstance(path, str) and path.startswith("file://"):
        path = path[len("file://"):]
    return os.path.abspath(path)


def _engine_spec(info, what: str) -> TensorSpec:
    from ..format.tensors import dtype_to_numpy, shape_from_proto
    if info.WhichOneof("encoding") != "name":
        raise SavedModelError(
            f"{what} is a {info.WhichOneof('encoding')} (sparse or composite) tensor; Dask "
            "scoring assembles dense tensors only.")
    shape = shape_from_proto(info.tensor_shape) if info.HasField("tensor_shape") else None
    return TensorSpec(info.name, dtype_to_numpy(info.dtype), shape)


def _select_outputs(outputs, every_output: dict, signature: str) -> dict:
    if outputs is None:
        return every_output
    names = [outputs] if isinstance(outputs, str) else list(outputs)
    unknown = [n for n in names if n not in every_output]
    if unknown or not names:
        raise SavedModelError(
            f"outputs={outputs!r}: signature {signature!r} has no output(s) "
            f"{', '.join(map(repr, unknown)) or '(none asked)'}; its outputs are: "
            f"{', '.join(every_output)}.")
    return {n: every_output[n] for n in names}


def check_declared_input(spec: ScoringSpec, key: str, dtype, inner_shape: tuple) -> None:
    """Refuse, before scheduling, a collection whose declared dtype or row shape the
    signature rejects (the engine's own conversion rules, on zero rows)."""
    engine_spec = spec.inputs[key]
    if engine_spec.shape is not None and len(engine_spec.shape) == 0:
        raise SavedModelError(
            f"{spec.what(key)} is a scalar ({engine_spec}); it cannot be split into rows. Pass "
            "it as a plain value in the dict of inputs: it is then fed whole to every chunk.")
    if engine_spec.shape is not None and engine_spec.shape[0] is not None:
        raise SavedModelError(
            f"{spec.what(key)} has a fixed first dimension ({engine_spec}), so its rows cannot be "
            "split into chunks. Re-export the model with a batch dimension of None.")
    if any(isinstance(d, float) for d in inner_shape):  # nan: unknown until computed
        return
    declared = engine_spec.shape
    if declared is not None and (len(declared) != 1 + len(inner_shape) or any(
            d is not None and d != n for d, n in zip(declared[1:], inner_shape))):
        raise SavedModelError(
            f"{spec.what(key)} expects rows of shape {tuple(declared[1:])} ({engine_spec}); the "
            f"data's rows have shape {tuple(inner_shape)}. Reshape the data or pick another signature.")
    convert_input(np.empty((0,) + tuple(inner_shape), dtype=dtype), engine_spec, spec.what(key))


def score_rows(spec: ScoringSpec, where: str, rows: int, batched: dict, constants: dict,
               pick: str | None = None):
    """Score one chunk: ``batched`` inputs hold ``rows`` rows each, ``constants`` are fed
    whole to every batch. Returns output key -> numpy array, or the one array ``pick``.
    Errors are SavedModelErrors that begin with ``where`` (the partition)."""
    try:
        result = _score(spec, where, rows, batched, constants)
    except SavedModelError as exc:
        raise SavedModelError(f"{where}: {exc}") from None
    except Exception as exc:
        exc.add_note(f"while scoring {where} with signature {spec.signature!r} of {spec.model.path}")
        raise
    return result[pick] if pick is not None else result


def _score(spec: ScoringSpec, where: str, rows: int, batched: dict, constants: dict) -> dict:
    for key, value in batched.items():
        if np.ndim(value) == 0 or len(value) != rows:
            raise SavedModelError(
                f"{spec.what(key)} has {_rows_text(value)} where the chunk has {rows}; every "
                "input of a chunk must have the same number of rows.")
    if rows == 0 and all(s.shape is not None and None not in s.shape[1:] for s in spec.outputs.values()):
        return {k: np.empty((0,) + tuple(s.shape[1:]), dtype=s.dtype) for k, s in spec.outputs.items()}
    cached = get_model(spec.model)
    function = cached.model.signatures[spec.signature]
    step = spec.batch_size or max(rows, 1)
    result = None
    for start in range(0, max(rows, 1), step):
        stop = min(start + step, rows)
        feeds = {k: v[start:stop] for k, v in batched.items()}
        feeds.update(constants)
        with cached.lock:
            values = function(**feeds).numpy()
        checked = {k: _checked_output(k, values[k], s, stop - start) for k, s in spec.outputs.items()}
        if stop - start == rows:  # one batch: its outputs are the chunk's
            return checked
        if result is None:  # the chunk's outputs, filled batch by batch
            result = {k: np.empty((rows,) + v.shape[1:], dtype=v.dtype) for k, v in checked.items()}
        for key, value in checked.items():
            if value.shape[1:] != result[key].shape[1:]:
                raise SavedModelError(
                    f"Output {key!r} came back with rows of shape {value.shape[1:]} for rows "
                    f"{start}..{stop - 1} of the chunk and {result[key].shape[1:]} for its first "
                    f"batch; a chunk's rows must agree. Score with batch_size=None (one batch "
                    "per chunk) or leave this output out with outputs=[...].")
            result[key][start:stop] = value
    return result


def _checked_output(key: str, value, spec: TensorSpec, rows: int) -> np.ndarray:
    value = np.asarray(value)
    declared = spec.shape
    if value.ndim != len(declared) or value.shape[0] != rows or any(
            d is not None and d != n for d, n in zip(declared[1:], value.shape[1:])):
        raise SavedModelError(
            f"Output {key!r} came back with shape {value.shape} for {rows} input rows; the "
            f"signature declares {spec_text(spec.dtype, declared)} and a chunked job needs one "
            "output row per input row. Leave this output out with outputs=[...].")
    if value.dtype != spec.dtype:
        raise SavedModelError(
            f"Output {key!r} came back as {value.dtype.name}; the signature declares "
            f"{spec_text(spec.dtype, declared)}.")
    return value


def _rows_text(value) -> str:
    return "no rows (a scalar)" if np.ndim(value) == 0 else f"{len(value)} rows"
