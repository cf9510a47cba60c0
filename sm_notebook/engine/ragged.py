"""Ragged signature inputs and outputs: a `Ragged` (or nested lists) fed for a ragged
argument becomes its component inputs; a ragged output's fetched components become a
`Ragged` (sm_notebook/format/ragged.py holds the value type and the SignatureDef encoding).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SavedModelError
from ..format.ragged import Ragged, RaggedInput, RaggedSpec, ragged_spec


@dataclass(frozen=True)
class RaggedTensorSpec:
    """A ragged signature output: its spec and the specs of its components (flat values,
    then row_splits outermost first), whose ``name`` are the graph tensors fetched."""
    spec: RaggedSpec
    components: tuple

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.spec.dtype)

    @property
    def shape(self):
        return self.spec.shape

    def __str__(self):
        return str(self.spec)


def ragged_output_spec(info, component_spec, where: str) -> RaggedTensorSpec | None:
    """The RaggedTensorSpec of a composite TensorInfo, or None for another composite;
    ``component_spec(tensor_info, where)`` makes each component's dense spec."""
    spec = ragged_spec(info.composite_tensor.type_spec)
    if spec is None:
        return None
    components = info.composite_tensor.components
    if len(components) != spec.num_components:
        raise SavedModelError(f"{where} is a ragged tensor of ragged rank {spec.ragged_rank}: it "
                              f"needs {spec.num_components} components, the SignatureDef lists "
                              f"{len(components)}.")
    return RaggedTensorSpec(spec, tuple(component_spec(c, f"{where} (component {i})")
                                        for i, c in enumerate(components)))


def expand_ragged_inputs(inputs: dict, ragged: dict[str, RaggedInput], to_numpy, what) -> dict:
    """``inputs`` with each ragged argument fed as a `Ragged`, nested lists or a dense
    numpy array of rows replaced by its component inputs; components fed one by one (as TensorFlow's signature takes them)
    are checked as a whole. ``what(key)`` names an input in errors."""
    if not ragged:
        return inputs
    expanded = dict(inputs)
    for name, arg in ragged.items():
        others = [k for k in arg.keys[1:] if k in inputs]
        value = inputs.get(name)
        if value is None and not others:
            continue
        if isinstance(value, Ragged) or (not others and (
                isinstance(value, (list, tuple)) or _dense_rows(value, arg.spec))):
            if others:
                raise SavedModelError(
                    f"{what(name)} is a ragged tensor given whole; do not also feed its "
                    f"row_splits input(s) {', '.join(map(repr, others))}.")
            parts = _components(value, arg.spec, what(name))
        else:
            missing = [k for k in arg.keys if k not in inputs]
            if missing:
                raise SavedModelError(
                    f"{what(name)} is a ragged tensor ({arg.spec}); feed it whole as "
                    f"sm_notebook.Ragged(values, row_splits) or a list of lists, or feed every "
                    f"component ({', '.join(map(repr, arg.keys))}); missing: "
                    f"{', '.join(map(repr, missing))}.")
            parts = [inputs[k] for k in arg.keys]
            _check_components(parts, to_numpy, what(name))
        expanded.update(zip(arg.keys, parts))
    return expanded


def _dense_rows(value, spec: RaggedSpec) -> bool:
    """Whether ``value`` is a numpy array of whole rows (every row the same length) rather
    than the flat values component: it has more dimensions than the flat values have."""
    return (isinstance(value, np.ndarray) and spec.shape is not None
            and value.ndim > len(spec.shape) - spec.ragged_rank)


def _components(value, spec: RaggedSpec, what: str) -> list:
    try:
        ragged = value if isinstance(value, Ragged) else Ragged.from_list(
            value, ragged_rank=spec.ragged_rank, row_splits_dtype=spec.row_splits_dtype)
    except SavedModelError as exc:
        raise SavedModelError(f"{what}: {exc}") from None
    if ragged.ragged_rank != spec.ragged_rank:
        raise SavedModelError(f"{what} expects {spec}, got a ragged tensor of ragged rank "
                              f"{ragged.ragged_rank}.")
    return ragged.components()


def _check_components(parts: list, to_numpy, what: str) -> None:
    try:
        Ragged.from_nested_row_splits(_host(parts[0], to_numpy),
                                      [_host(p, to_numpy) for p in parts[1:]])
    except SavedModelError as exc:
        raise SavedModelError(f"{what}: {exc}") from None


def _host(value, to_numpy):
    if isinstance(value, (np.ndarray, list, tuple, int, float)):
        return np.asarray(value)
    return to_numpy(value)


def assemble_ragged(arrays: list) -> Ragged:
    """The fetched components of a ragged output as a `Ragged` (arrays of the backend)."""
    return Ragged.from_nested_row_splits(arrays[0], arrays[1:], validate=False)
