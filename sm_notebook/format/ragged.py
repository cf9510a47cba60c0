"""Ragged tensors: the `Ragged` value (``sm_notebook.Ragged``) and how a SavedModel's
signatures encode them.

TensorFlow encodes a RaggedTensor as its components: the flat values, then one
row_splits vector per ragged dimension, outermost first (``RaggedTensorSpec._to_components``).

* A ragged **output** is a ``TensorInfo.composite_tensor``: a ``TypeSpecProto`` of class
  RAGGED_TENSOR_SPEC whose state is ``(shape, dtype, ragged_rank, row_splits_dtype[,
  flat_values_spec])`` and one TensorInfo per component.
* A ragged **input** is flattened: ``tf.saved_model.save`` gives each component its own
  dense signature input, named by the function's argument keywords (``x``, ``x_1``, ...).
  Which inputs belong together is recorded only in the object graph: the signature's
  wrapper function calls the traced function, whose ``canonicalized_input_signature``
  holds the RaggedTensorSpec; `ragged_signature_inputs` follows that call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SavedModelError
from . import structured
from .tensors import dtype_to_numpy

RAGGED_TENSOR_SPEC = 3  # TypeSpecProto.RAGGED_TENSOR_SPEC
CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")


class Ragged:
    """An immutable ragged tensor: ``values`` (an array, or a `Ragged` for more ragged
    dimensions) split into rows by ``row_splits`` (row i is ``values[row_splits[i]:
    row_splits[i+1]]``), as ``tf.RaggedTensor.from_row_splits``.

    ``Ragged(values, row_splits)`` checks the splits (a vector starting at 0, never
    decreasing, ending at ``len(values)``) and raises SavedModelError saying what is
    wrong. `from_list` builds one from nested lists; `to_list` gives them back. Arrays
    are held as read-only views, not copied.
    """

    __slots__ = ("_values", "_row_splits")

    def __init__(self, values, row_splits, *, validate: bool = True):
        if not isinstance(values, Ragged):
            values = _read_only(values)
        splits = _read_only(row_splits if not isinstance(row_splits, (list, tuple))
                            else np.asarray(row_splits, np.int64))
        if validate:
            _check_row_splits(np.asarray(splits), _nrows(values))
        self._values = values
        self._row_splits = splits

    # -- construction

    @classmethod
    def from_list(cls, rows, dtype=None, ragged_rank: int | None = None,
                  row_splits_dtype=np.int64) -> "Ragged":
        """A Ragged from nested lists, as ``tf.ragged.constant``: ``ragged_rank`` ragged
        dimensions (default: every dimension below the first), the rest uniform."""
        if isinstance(rows, Ragged):
            return rows
        depth = _depth(rows)
        if ragged_rank is None:
            ragged_rank = depth - 1
        if ragged_rank < 1 or depth < ragged_rank + 1:
            raise SavedModelError(
                f"A ragged tensor needs rows nested at least {max(ragged_rank, 1) + 1} deep "
                f"(a list of lists); got a value nested {depth} deep.")
        nested, items = [], list(rows)
        for level in range(ragged_rank):
            lengths = []
            for item in items:
                if not isinstance(item, (list, tuple, np.ndarray)) or (
                        isinstance(item, np.ndarray) and item.ndim == 0):
                    raise SavedModelError(
                        f"Ragged row at depth {level + 1} is the scalar {item!r}, not a list; "
                        f"every value must be nested {ragged_rank + 1} deep.")
                lengths.append(len(item))
            nested.append(_splits_from_lengths(lengths, row_splits_dtype))
            items = [x for item in items for x in item]
        try:
            flat = np.asarray(items, dtype=dtype) if items else np.zeros(
                0, dtype=dtype or np.float32)
        except (ValueError, TypeError) as exc:
            raise SavedModelError(f"The innermost values of a ragged tensor must form a uniform "
                                  f"array: {exc}.") from None
        return cls.from_nested_row_splits(flat, nested)

    @classmethod
    def from_nested_row_splits(cls, flat_values, nested_row_splits, *,
                               validate: bool = True) -> "Ragged":
        """A Ragged from its components (outermost row_splits first)."""
        result = flat_values
        for splits in reversed(list(nested_row_splits)):
            result = cls(result, splits, validate=validate)
        if not isinstance(result, Ragged):
            raise SavedModelError("A ragged tensor needs at least one row_splits vector.")
        return result

    # -- structure

    @property
    def values(self):
        return self._values

    @property
    def row_splits(self):
        return self._row_splits

    @property
    def flat_values(self):
        return self._values.flat_values if isinstance(self._values, Ragged) else self._values

    @property
    def nested_row_splits(self) -> tuple:
        inner = self._values.nested_row_splits if isinstance(self._values, Ragged) else ()
        return (self._row_splits,) + inner

    @property
    def ragged_rank(self) -> int:
        return len(self.nested_row_splits)

    @property
    def nrows(self) -> int:
        return int(self._row_splits.shape[0]) - 1

    @property
    def dtype(self) -> np.dtype:
        dtype = self.flat_values.dtype
        return dtype if isinstance(dtype, np.dtype) else np.dtype(str(dtype).rsplit(".", 1)[-1])

    @property
    def shape(self) -> tuple:
        """(nrows, None for each ragged dimension, then the flat values' inner dims)."""
        return (self.nrows,) + (None,) * self.ragged_rank + tuple(self.flat_values.shape[1:])

    def row_lengths(self) -> np.ndarray:
        splits = np.asarray(self._row_splits)
        return splits[1:] - splits[:-1]

    def components(self) -> list:
        """TensorFlow's component order: flat values, then row_splits outermost first."""
        return [self.flat_values] + list(self.nested_row_splits)

    def map_arrays(self, convert) -> "Ragged":
        """This ragged tensor with ``convert`` applied to its values and every row_splits
        (e.g. a backend's ``to_numpy``)."""
        values = self._values.map_arrays(convert) if isinstance(self._values, Ragged) \
            else convert(self._values)
        return Ragged(values, convert(self._row_splits), validate=False)

    # -- Python values

    def to_list(self) -> list:
        """Nested Python lists (bytes for strings), as ``tf.RaggedTensor.to_list``."""
        values = self._values.to_list() if isinstance(self._values, Ragged) \
            else np.asarray(self._values).tolist()
        splits = np.asarray(self._row_splits).tolist()
        return [values[start:stop] for start, stop in zip(splits[:-1], splits[1:])]

    def __len__(self):
        return self.nrows

    def __getitem__(self, row: int):
        """Row ``row``: an array (one ragged dimension) or a Ragged."""
        if not -self.nrows <= row < self.nrows:
            raise IndexError(f"row {row} of a ragged tensor with {self.nrows} rows")
        row %= self.nrows
        splits = np.asarray(self._row_splits)
        start, stop = int(splits[row]), int(splits[row + 1])
        if isinstance(self._values, Ragged):
            return _slice_rows(self._values, start, stop)
        return self._values[start:stop, ...]

    def __eq__(self, other):
        """Same row structure and equal values (NaN never equals NaN, as in numpy)."""
        if not isinstance(other, Ragged) or self.ragged_rank != other.ragged_rank:
            return NotImplemented if not isinstance(other, Ragged) else False
        same_splits = all(np.array_equal(np.asarray(a), np.asarray(b))
                          for a, b in zip(self.nested_row_splits, other.nested_row_splits))
        return same_splits and np.array_equal(np.asarray(self.flat_values),
                                              np.asarray(other.flat_values))

    __hash__ = None

    def __repr__(self):
        splits_dtype = np.asarray(self._row_splits).dtype.name
        return (f"Ragged({self.to_list()!r}, dtype={_dtype_name(self.dtype)}, "
                f"row_splits_dtype={splits_dtype})")


def _slice_rows(ragged: "Ragged", start: int, stop: int) -> "Ragged":
    """Rows start..stop of ``ragged``, its splits rebased to 0."""
    splits = np.asarray(ragged.row_splits)[start:stop + 1]
    lo, hi = int(splits[0]), int(splits[-1])
    if isinstance(ragged.values, Ragged):
        values = _slice_rows(ragged.values, lo, hi)
    else:
        values = ragged.values[lo:hi, ...]
    return Ragged(values, splits - lo, validate=False)


def _dtype_name(dtype: np.dtype) -> str:
    return "string" if dtype.kind in "OSU" else dtype.name


def _read_only(value):
    if isinstance(value, np.ndarray):
        view = value.view()
        view.flags.writeable = False
        return view
    if isinstance(value, (list, tuple, int, float, bool, str, bytes, np.generic)):
        return _read_only(np.asarray(value))
    return value  # an array of another backend


def _nrows(values) -> int:
    if isinstance(values, Ragged):
        return values.nrows
    shape = getattr(values, "shape", None)
    if shape is None or len(shape) == 0:
        raise SavedModelError("Ragged values must be at least a vector (or a Ragged), got a "
                              "scalar.")
    return int(shape[0])


def _check_row_splits(splits: np.ndarray, nvalues: int) -> None:
    """What TensorFlow's RaggedTensor.from_row_splits(validate=True) checks."""
    if splits.ndim != 1 or splits.shape[0] == 0:
        raise SavedModelError(f"row_splits must be a non-empty vector, got shape {splits.shape}.")
    if splits.dtype.kind not in "iu":
        raise SavedModelError(f"row_splits must be integers (int64 or int32), got "
                              f"{splits.dtype.name}.")
    if splits[0] != 0:
        raise SavedModelError(f"row_splits must start at 0, got {int(splits[0])} "
                              f"(row_splits = {_short(splits)}).")
    drops = np.flatnonzero(np.diff(splits) < 0)
    if drops.size:
        i = int(drops[0]) + 1
        raise SavedModelError(f"row_splits must never decrease: row_splits[{i}] = "
                              f"{int(splits[i])} follows {int(splits[i - 1])}.")
    if splits[-1] != nvalues:
        raise SavedModelError(f"row_splits must end at the number of values ({nvalues}), "
                              f"got {int(splits[-1])} (row_splits = {_short(splits)}).")


def _short(array: np.ndarray) -> str:
    items = array.tolist()
    return str(items) if len(items) <= 8 else f"[{', '.join(map(str, items[:8]))}, ...]"


def _splits_from_lengths(lengths, dtype) -> np.ndarray:
    splits = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, np.int64), out=splits[1:])
    return splits.astype(dtype)


def _depth(value) -> int:
    """How deep scalars are nested in lists/tuples/arrays (empty lists count one level)."""
    if isinstance(value, (str, bytes)):
        return 0
    if isinstance(value, np.ndarray):
        return value.ndim
    if isinstance(value, Ragged):
        return 1 + value.ragged_rank + len(value.flat_values.shape) - 1
    if isinstance(value, (list, tuple)):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# ---------------------------------------------------------------- signatures


@dataclass(frozen=True)
class RaggedSpec:
    """A RaggedTensorSpec: ``shape`` (None dims unknown; None for unknown rank), numpy
    ``dtype`` of the values, ``ragged_rank`` and ``row_splits_dtype``."""
    shape: tuple | None
    dtype: np.dtype
    ragged_rank: int
    row_splits_dtype: np.dtype

    @property
    def num_components(self) -> int:
        return 1 + self.ragged_rank

    def __str__(self):
        dims = "..." if self.shape is None else ",".join(
            "?" if d is None else str(d) for d in self.shape)
        return (f"ragged {_dtype_name(np.dtype(self.dtype))}[{dims}] "
                f"(ragged_rank={self.ragged_rank}, row_splits {np.dtype(self.row_splits_dtype).name})")


def ragged_spec(type_spec_proto) -> RaggedSpec | None:
    """The RaggedSpec a TypeSpecProto holds, or None when it is another composite."""
    name = type_spec_proto.type_spec_class_name
    if type_spec_proto.type_spec_class != RAGGED_TENSOR_SPEC and name != "RaggedTensorSpec":
        return None
    state = structured.decode(type_spec_proto.type_state)
    if not isinstance(state, tuple) or len(state) < 4:
        raise SavedModelError(f"A RaggedTensorSpec's state should be (shape, dtype, ragged_rank, "
                              f"row_splits_dtype), got {state!r}.")
    shape, dtype, ragged_rank, splits_dtype = state[:4]
    return RaggedSpec(shape.dims, dtype_to_numpy(dtype.enum), int(ragged_rank),
                      dtype_to_numpy(splits_dtype.enum))


@dataclass(frozen=True)
class RaggedInput:
    """A ragged argument of a signature: its spec and the signature input keys of its
    components (flat values first, then row_splits outermost first)."""
    spec: RaggedSpec
    keys: tuple


def _flatten_signature(value, out: list) -> None:
    """``out`` gets one entry per flat tensor of a StructuredValue, in ``nest.flatten(...,
    expand_composites=True)`` order: None for a dense tensor, (RaggedSpec, i) for
    component i of a ragged one, "other" for a component of another composite."""
    kind = value.WhichOneof("kind")
    if kind in ("tuple_value", "list_value"):
        for item in getattr(value, kind).values:
            _flatten_signature(item, out)
    elif kind == "dict_value":
        for key in sorted(value.dict_value.fields):
            _flatten_signature(value.dict_value.fields[key], out)
    elif kind == "named_tuple_value":
        for pair in value.named_tuple_value.values:
            _flatten_signature(pair.value, out)
    elif kind in ("tensor_spec_value", "bounded_tensor_spec_value"):
        out.append(None)
    elif kind == "type_spec_value":
        spec = ragged_spec(value.type_spec_value)
        if spec is None:
            out.extend(["other"] * value.type_spec_value.num_flat_components)
        else:
            out.extend((spec, i) for i in range(spec.num_components))


def _child(object_graph, node_id: int, name: str):
    for child in object_graph.nodes[node_id].children:
        if child.local_name == name:
            return child.node_id
    return None


def ragged_signature_inputs(meta_graph, signature_key: str) -> dict[str, RaggedInput]:
    """The ragged arguments of a TF2 signature, by the key of their first component
    (the argument's own name): {} for TF1 exports, signatures without ragged inputs, and
    object graphs too malformed to follow (the components then stay plain inputs)."""
    try:
        return _ragged_signature_inputs(meta_graph, signature_key)
    except (IndexError, KeyError, SavedModelError):
        return {}


def _ragged_signature_inputs(meta_graph, signature_key: str) -> dict[str, RaggedInput]:
    graph = meta_graph.object_graph_def
    signature = meta_graph.signature_def.get(signature_key)
    if signature is None or not graph.nodes:
        return {}
    holder = _child(graph, 0, "signatures")
    node_id = _child(graph, holder, signature_key) if holder is not None else None
    if node_id is None:
        return {}
    node = graph.nodes[node_id]
    kind = node.WhichOneof("kind")
    if kind == "bare_concrete_function":
        wrapper_name = node.bare_concrete_function.concrete_function_name
    elif kind == "function" and node.function.concrete_functions:
        wrapper_name = node.function.concrete_functions[0]
    else:
        return {}
    functions = {f.signature.name: f for f in meta_graph.graph_def.library.function}
    wrapper = functions.get(wrapper_name)
    if wrapper is None:
        return {}
    calls = [n for n in wrapper.node_def if n.op in CALL_OPS
             and n.attr["f"].func.name in graph.concrete_functions]
    if len(calls) != 1:
        return {}
    call = calls[0]
    flat: list = []
    _flatten_signature(graph.concrete_functions[call.attr["f"].func.name]
                       .canonicalized_input_signature, flat)
    arg_names = {arg.name for arg in wrapper.signature.input_arg}
    found: dict[str, list] = {}
    specs: dict[str, RaggedSpec] = {}
    group = None
    for position, entry in enumerate(flat):
        if not isinstance(entry, tuple):
            continue
        if position >= len(call.input):
            return {}
        key = call.input[position].split(":")[0]
        if key not in arg_names or key not in signature.inputs:
            return {}
        spec, component = entry
        if component == 0:
            group = key
            specs[key], found[key] = spec, []
        found[group].append(key)
    return {name: RaggedInput(specs[name], tuple(keys)) for name, keys in found.items()
            if len(keys) == specs[name].num_components}
