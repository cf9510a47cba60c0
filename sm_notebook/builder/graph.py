"""Graph: compose or extend a TensorFlow GraphDef, with dtype and shape inference.

Handles returned by ``placeholder``, ``constant``, ``variable`` and ``op`` name graph
tensors ("dense/BiasAdd:0") and carry their dtype and shape. Node names follow
TensorFlow's rules (``[A-Za-z0-9.][A-Za-z0-9_.\\-/>]*``); names chosen for you are
made unique the way TensorFlow does it ("MatMul", "MatMul_1", ...). Variables are
TF1-style resource variables (VarHandleOp, AssignVariableOp initializer,
ReadVariableOp snapshot), which both TF1 sessions and TF2's v1 loader restore.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import SavedModelError
from ..format.tensors import (
    REF_OFFSET, dtype_to_numpy, numpy_to_dtype, numpy_to_tensor_proto, shape_from_proto,
    short_dtype_name,
)
from .. import opdefs
from .._proto import graph_pb2
from .attrs import const_value, decode_attr, dtype_enum, encode_attr
from .shapes import (
    DT_INVALID, DT_RESOURCE, TensorType, infer_shapes, node_output_dtypes, output_dtypes,
    probe_with_kernel, recorded_output_shapes, shape_text,
)

#: GraphDef producer version written on composed graphs (a TensorFlow 2.x producer;
#: older producers make TensorFlow apply legacy graph rewrites).
GRAPH_PRODUCER = 1994

_NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")
#: Variables up to this many bytes keep their value as the initializer Const; bigger
#: ones get a zeros initializer (the value lives in the checkpoint, which loaders restore).
INLINE_INITIAL_VALUE_BYTES = 16 * 1024


def base_dtype(dtype: int) -> int:
    """A reference type's base type (DT_FLOAT_REF -> DT_FLOAT)."""
    return dtype - REF_OFFSET if dtype > REF_OFFSET else dtype


def split_tensor_name(name: str) -> tuple[str, int]:
    """``"node:1"`` -> ("node", 1); a bare node name means output 0."""
    if not isinstance(name, str) or not name or name.startswith("^"):
        raise SavedModelError(f"{name!r} is not a tensor name; tensor names look like "
                              "'dense/BiasAdd:0'.")
    node, sep, index = name.rpartition(":")
    if sep and index.isdigit():
        return node, int(index)
    return name, 0


class Tensor:
    """A handle on one output of a graph node: ``name``, ``dtype`` and ``shape``."""

    def __init__(self, graph: "Graph", node: str, index: int, tensor_type: TensorType):
        self.graph = graph
        self.node = node
        self.index = index
        self.type = tensor_type

    @property
    def name(self) -> str:
        return f"{self.node}:{self.index}"

    @property
    def dtype(self) -> str | None:
        """``"float32"``-style name (``"float32_ref"`` for TF1 variables), None if unknown."""
        return short_dtype_name(self.type.dtype) if self.type.dtype else None

    @property
    def dtype_enum(self) -> int:
        return self.type.dtype

    @property
    def shape(self) -> tuple | None:
        return self.type.shape

    @property
    def op_type(self) -> str:
        return self.graph.node(self.node).op

    def __repr__(self):
        return f"<Tensor {self.name!r} {self.dtype or 'unknown dtype'} {shape_text(self.shape)}>"


class Operation:
    """A handle on a node without outputs (NoOp, AssignVariableOp, ...): usable as a control input."""

    def __init__(self, graph: "Graph", node: str):
        self.graph = graph
        self.node = node
        self.name = node

    def __repr__(self):
        return f"<Operation {self.node!r} ({self.graph.node(self.node).op})>"


class Variable(Tensor):
    """A variable's value (its ReadVariableOp snapshot); ``handle`` is the resource tensor."""

    def __init__(self, graph, node, index, tensor_type, variable_name: str):
        super().__init__(graph, node, index, tensor_type)
        self.variable_name = variable_name

    @property
    def handle(self) -> Tensor:
        return self.graph.tensor(f"{self.variable_name}:0")

    def __repr__(self):
        return (f"<Variable {self.variable_name!r} {self.dtype} {shape_text(self.shape)} "
                f"(value {self.name!r})>")


@dataclass
class VariableRecord:
    """A variable created with Graph.variable: what the checkpoint and saver need."""
    name: str            # node name of the VarHandleOp, also the checkpoint key
    dtype: int
    shape: tuple
    value: np.ndarray
    trainable: bool
    initializer: str     # the AssignVariableOp node
    initial_value: str   # tensor name of the initializer's value
    snapshot: str        # tensor name of the ReadVariableOp


def _natural_array(value, dtype=None) -> np.ndarray:
    """Like tf.constant: Python floats become float32, Python ints int32 (int64 when too
    big), str/bytes strings; numpy values keep their dtype; ``dtype`` casts."""
    if dtype is not None:
        np_dtype = dtype_to_numpy(dtype_enum(dtype))
        if np_dtype == object:
            return np.asarray(value, dtype=object)
        return np.asarray(value).astype(np_dtype, copy=False)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    array = np.asarray(value)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype == np.int64 and (array.size == 0 or np.abs(array).max() < 2**31):
        return array.astype(np.int32)
    if array.dtype.kind in "US":
        return np.asarray(value, dtype=object)
    return array


class Graph:
    """A GraphDef under construction (or a SavedModel's graph being extended)."""

    def __init__(self, graph_def: graph_pb2.GraphDef | None = None):
        self.graph_def = graph_pb2.GraphDef()
        if graph_def is not None:
            self.graph_def.CopyFrom(graph_def)
        else:
            self.graph_def.versions.producer = GRAPH_PRODUCER
        self._nodes = {node.name: node for node in self.graph_def.node}
        self._types: dict[str, list[TensorType]] = {}
        self._name_counts: dict[str, int] = {}
        #: Bumped by every change, so an unchanged graph can be written back verbatim.
        self.version = 0
        #: Variables created by ``variable``, in creation order (their values go to the
        #: checkpoint when the SavedModel is written).
        self.variables: dict[str, VariableRecord] = {}

    # --- reading ----------------------------------------------------------------
    def __contains__(self, name) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, name: str) -> graph_pb2.NodeDef:
        try:
            return self._nodes[name]
        except KeyError:
            raise SavedModelError(f"The graph has no node named {name!r}.") from None

    def nodes(self):
        return iter(self.graph_def.node)

    def tensor(self, ref) -> Tensor:
        """The handle of an existing tensor: a Tensor, ``"node:0"`` or a node name."""
        if isinstance(ref, Tensor):
            if ref.graph is self:
                return ref
            ref = ref.name      # a handle from another Graph: the tensor of that name here
        node_name, index = split_tensor_name(ref)
        if node_name not in self._nodes:
            raise SavedModelError(self._missing_message(node_name, ref))
        types = self.output_types(node_name)
        if index >= len(types):
            raise SavedModelError(
                f"Tensor {ref!r}: node {node_name!r} ({self._nodes[node_name].op}) has "
                f"{len(types)} output(s), so the index must be below {len(types)}.")
        return Tensor(self, node_name, index, types[index])

    def _missing_message(self, node_name, ref) -> str:
        import difflib
        close = difflib.get_close_matches(node_name, list(self._nodes), n=3)
        hint = f" Did you mean: {', '.join(repr(c + ':0') for c in close)}?" if close else ""
        return (f"Tensor {ref!r} does not exist: the graph has no node {node_name!r}.{hint} "
                "Tensor names look like 'node_name:output_index'.")

    def output_types(self, node_name: str) -> list[TensorType]:
        """Dtype and shape of every output of a node (inferred where not recorded)."""
        cached = self._types.get(node_name)
        if cached is None:
            self._infer_upstream(node_name)
            cached = self._types[node_name]
        return cached

    def _infer_upstream(self, start: str):
        """Infer ``start`` after its inputs, iteratively (graphs can be deep, and cyclic)."""
        stack, visiting = [start], set()
        while stack:
            name = stack[-1]
            if name in self._types:
                stack.pop()
                continue
            node = self._nodes[name]
            needs = []
            if name not in visiting and self._needs_input_shapes(node):
                visiting.add(name)
                for inp in node.input:
                    if not inp.startswith("^"):
                        src, _ = split_tensor_name(inp)
                        if src in self._nodes and src not in self._types and src not in visiting:
                            needs.append(src)
            if needs:
                stack.extend(needs)
                continue
            stack.pop()
            self._types[name] = self._existing_node_types(node)

    def _needs_input_shapes(self, node) -> bool:
        return recorded_output_shapes(node) is None and node.op in _SHAPE_FROM_INPUTS

    def _existing_node_types(self, node) -> list[TensorType]:
        dtypes = node_output_dtypes(node)
        shapes = recorded_output_shapes(node)
        if shapes is None and node.op == "Const" and "value" in node.attr:
            shapes = [shape_from_proto(node.attr["value"].tensor.tensor_shape)]
        if shapes is None and node.op in _SHAPE_FROM_INPUTS:
            inputs = [self._input_type(i) for i in node.input if not i.startswith("^")]
            consts = [const_value(self._nodes.get(split_tensor_name(i)[0]))
                      for i in node.input if not i.startswith("^")]
            count = len(dtypes) if dtypes is not None else 1
            try:
                shapes = infer_shapes(node.op, inputs, node.attr, consts, count)
            except SavedModelError:
                shapes = None
        if shapes is None and node.op == "ReadVariableOp" and node.input:
            shapes = [self._resource_shape(node.input[0])]
        if dtypes is None:
            count = len(shapes) if shapes else 1
            dtypes = [DT_INVALID] * count
        shapes = list(shapes or [])
        shapes += [None] * (len(dtypes) - len(shapes))
        return [TensorType(d, s) for d, s in zip(dtypes, shapes)]

    def _input_type(self, ref: str) -> TensorType:
        node_name, index = split_tensor_name(ref)
        types = self._types.get(node_name)
        if types is None or index >= len(types):
            return TensorType(DT_INVALID, None)
        return types[index]

    def forget_types(self, node_name: str):
        """Drop cached types of a node whose attrs were edited in place."""
        self._types.pop(node_name, None)
        self.version += 1

    # --- building ---------------------------------------------------------------
    def unique_name(self, base: str) -> str:
        """``base``, or ``base_N`` with the first N not yet used (TensorFlow's unique_name)."""
        if base not in self._nodes:
            return base
        count = self._name_counts.get(base, 0)
        while True:
            count += 1
            candidate = f"{base}_{count}"
            if candidate not in self._nodes:
                self._name_counts[base] = count
                return candidate

    def _claim_name(self, name: str | None, default: str) -> str:
        if name is None:
            return self.unique_name(default)
        if not isinstance(name, str) or not _NODE_NAME.match(name):
            raise SavedModelError(
                f"{name!r} is not a valid TensorFlow node name: it must match "
                "[A-Za-z0-9.][A-Za-z0-9_.\\-/>]* (no ':' and no spaces).")
        if name in self._nodes:
            raise SavedModelError(
                f"The graph already has a node named {name!r} ({self._nodes[name].op}). "
                f"Pick another name, e.g. {self.unique_name(name)!r}, or leave name=None.")
        return name

    def _add_node(self, node: graph_pb2.NodeDef, types: list[TensorType]):
        if node.name in self._nodes:
            raise SavedModelError(f"The graph already has a node named {node.name!r}.")
        node.attr["_output_shapes"].CopyFrom(encode_attr([t.shape for t in types], "list(shape)"))
        added = self.graph_def.node.add()
        added.CopyFrom(node)
        self._nodes[added.name] = added
        self._types[added.name] = types
        self.version += 1
        return added

    def add_node_def(self, node: graph_pb2.NodeDef) -> graph_pb2.NodeDef:
        """Append a ready-made NodeDef (its name must be new); returns the stored node."""
        self._claim_name(node.name, node.op)
        added = self.graph_def.node.add()
        added.CopyFrom(node)
        self._nodes[added.name] = added
        self.version += 1
        return added

    def _handles(self, node_name: str, types: list[TensorType]):
        if not types:
            return Operation(self, node_name)
        tensors = tuple(Tensor(self, node_name, i, t) for i, t in enumerate(types))
        return tensors[0] if len(tensors) == 1 else tensors

    def placeholder(self, name: str, dtype, shape=None) -> Tensor:
        """A Placeholder: ``shape`` a tuple with None for unknown dims, or None (unknown rank)."""
        dtype = dtype_enum(dtype)
        if shape is not None:
            shape = tuple(None if d is None or d == -1 else int(d) for d in shape)
        return self.op("Placeholder", name=name, dtype=dtype, shape=shape)

    def constant(self, value, name: str | None = None, dtype=None) -> Tensor:
        """A Const holding ``value`` (Python floats become float32, ints int32, as tf.constant)."""
        array = _natural_array(value, dtype)
        proto = numpy_to_tensor_proto(array, dtype_enum(dtype) if dtype is not None else None)
        node_name = self._claim_name(name, "Const")
        node = graph_pb2.NodeDef(name=node_name, op="Const")
        node.attr["dtype"].type = proto.dtype
        node.attr["value"].tensor.CopyFrom(proto)
        self._add_node(node, [TensorType(proto.dtype, tuple(array.shape))])
        return self.tensor(f"{node_name}:0")

    def variable(self, name: str, initial_value, dtype=None, trainable: bool = True) -> Variable:
        """A resource variable holding ``initial_value``; its value is written to the checkpoint.

        Returns the variable's value (usable as an op input); ``.handle`` is the resource.
        """
        array = _natural_array(initial_value, dtype)
        name = self._claim_name(name, "Variable")
        enum = dtype_enum(dtype) if dtype is not None else numpy_to_dtype(array.dtype)
        shape = tuple(int(d) for d in array.shape)
        if array.nbytes <= INLINE_INITIAL_VALUE_BYTES or array.dtype == object:
            initial = self.constant(array, name=f"{name}/Initializer/initial_value", dtype=enum)
        else:
            dims = self.constant(np.array(shape, np.int32),
                                 name=f"{name}/Initializer/zeros/shape_as_tensor")
            zero = self.constant(np.zeros((), array.dtype), name=f"{name}/Initializer/zeros/Const",
                                 dtype=enum)
            initial = self.op("Fill", dims, zero, name=f"{name}/Initializer/zeros")
        handle = self.op("VarHandleOp", name=name, dtype=enum, shape=shape, shared_name=name,
                         container="")
        self.op("VarIsInitializedOp", handle, name=f"{name}/IsInitialized/VarIsInitializedOp")
        assign = self.op("AssignVariableOp", handle, initial, name=f"{name}/Assign", dtype=enum)
        read = self.op("ReadVariableOp", handle, name=f"{name}/Read/ReadVariableOp", dtype=enum)
        self.variables[name] = VariableRecord(
            name=name, dtype=enum, shape=shape, value=array, trainable=bool(trainable),
            initializer=assign.name, initial_value=initial.name, snapshot=read.name)
        return Variable(self, read.node, 0, read.type, name)

    def op(self, op_type: str, *inputs, name: str | None = None, control_inputs=(), **attrs):
        """Add a node; returns a Tensor, a tuple of Tensors (several outputs) or an Operation.

        ``inputs``: Tensors, tensor names, or values (made Const, typed to match); a
        list input (``N * T``, e.g. ConcatV2's values) is a Python list. ``attrs``: the
        node's attrs, encoded as the op's OpDef types them; type attrs (``T``, ``Tidx``,
        ...) and list lengths (``N``) are inferred from the inputs. Other attrs left out
        keep their OpDef default, which TensorFlow's loader fills in (as for exports
        saved with strip_default_attrs). Ops TensorFlow does not register take their
        inputs as given and need every attr written explicitly.
        """
        if not isinstance(op_type, str) or not op_type:
            raise SavedModelError(f"op_type must be an op name such as 'MatMul'; got {op_type!r}.")
        spec = opdefs.get(op_type)
        node_name = self._claim_name(name, op_type)
        mark = len(self.graph_def.node)
        try:
            return self._build_node(op_type, spec, node_name, inputs, control_inputs, attrs)
        except BaseException:
            self._drop_nodes_from(mark)   # constants made for this op go too
            raise

    def _drop_nodes_from(self, mark: int):
        for node in self.graph_def.node[mark:]:
            self._nodes.pop(node.name, None)
            self._types.pop(node.name, None)
        del self.graph_def.node[mark:]

    def _build_node(self, op_type, spec, node_name, inputs, control_inputs, attrs):
        node = graph_pb2.NodeDef(name=node_name, op=op_type)
        if spec is not None:
            refs, input_types, type_values, counts = self._bind_inputs(spec, inputs, attrs,
                                                                       node_name)
            self._set_attrs(node, spec, attrs, type_values, counts)
        else:
            refs, input_types = self._plain_inputs(inputs, node_name)
            for key, value in attrs.items():
                node.attr[key].CopyFrom(encode_attr(value))
        node.input.extend(refs)
        node.input.extend("^" + self._control_name(c) for c in control_inputs)
        consts = [const_value(self._nodes.get(split_tensor_name(r)[0])) for r in refs]
        types = self._new_node_types(node, spec, input_types, consts)
        self._add_node(node, types)
        return self._handles(node_name, types)

    def _control_name(self, ref) -> str:
        if isinstance(ref, (Tensor, Operation)):
            return ref.node
        node_name = split_tensor_name(ref)[0] if isinstance(ref, str) else None
        if node_name not in self._nodes:
            raise SavedModelError(f"Control input {ref!r} is not a node of the graph.")
        return node_name

    def _resolve(self, value, want_dtype: int, where: str) -> Tensor:
        """A Tensor for an op input: an existing tensor, or a new Const typed ``want_dtype``."""
        if isinstance(value, Variable) and want_dtype == DT_RESOURCE:
            return value.handle
        if isinstance(value, Tensor) and value.graph is not self:
            raise SavedModelError(f"{where}: {value.name!r} belongs to another Graph; use "
                                  "tensors of this graph (graph.tensor(name)).")
        if isinstance(value, (Tensor, str)):
            return self.tensor(value)
        if isinstance(value, Operation):
            raise SavedModelError(f"{where}: {value.node!r} has no outputs; pass it as a "
                                  "control input (control_inputs=[...]) instead.")
        return self.constant(value, name=self.unique_name(where), dtype=want_dtype or None)

    def _plain_inputs(self, inputs, node_name):
        refs, types = [], []
        for position, value in enumerate(inputs):
            tensor_list = isinstance(value, (list, tuple)) and value and all(
                isinstance(item, (Tensor, str)) for item in value)
            for item in (value if tensor_list else [value]):
                tensor = self._resolve(item, DT_INVALID, f"{node_name}/input_{position}")
                refs.append(tensor.name)
                types.append(tensor.type)
        return refs, types

    def _bind_inputs(self, spec, inputs, attrs, node_name):
        """Match inputs to the OpDef's arguments; returns their names and types, the
        type attrs inferred from them, and the list lengths (``N`` attrs)."""
        if len(inputs) != len(spec.inputs):
            names = ", ".join(a.name for a in spec.inputs) or "none"
            raise SavedModelError(
                f"{spec.name} takes {len(spec.inputs)} input(s) ({names}); got {len(inputs)}.")
        type_values = {k: dtype_enum(v) for k, v in attrs.items()
                       if k in _type_attrs(spec) and not isinstance(v, graph_pb2.AttrValue)}
        # Tensors first, so constants take the type the tensors fix.
        tensors: dict[int, list] = {}
        for position, (arg, value) in enumerate(zip(spec.inputs, inputs)):
            items = list(value) if arg.number_attr or arg.type_list_attr else [value]
            if (arg.number_attr or arg.type_list_attr) and not isinstance(value, (list, tuple)):
                raise SavedModelError(f"{spec.name}: input {arg.name!r} is a list; pass a Python "
                                      "list of tensors.")
            tensors[position] = items
            for item in items:
                if isinstance(item, (Tensor, str)) and arg.type_attr:
                    tensor = self._resolve(item, DT_INVALID, node_name)
                    self._unify(spec, arg, type_values, base_dtype(tensor.dtype_enum), tensor.name)
        refs, types, counts = [], [], {}
        for position, arg in enumerate(spec.inputs):
            items = tensors[position]
            if arg.number_attr:
                counts[arg.number_attr] = len(items)
            want = arg.type or type_values.get(arg.type_attr) or \
                _type_default(spec, arg.type_attr)
            list_types = []
            for item in items:
                tensor = self._resolve(item, want, f"{node_name}/{arg.name}")
                got = base_dtype(tensor.dtype_enum)
                if arg.type and got and got != arg.type:
                    raise SavedModelError(
                        f"{spec.name} input {arg.name!r} must be {short_dtype_name(arg.type)};"
                        f" {tensor.name!r} is {short_dtype_name(got)}.")
                if arg.type_attr:
                    self._unify(spec, arg, type_values, got, tensor.name)
                list_types.append(got)
                refs.append(tensor.name)
                types.append(tensor.type)
            if arg.type_list_attr:
                type_values[arg.type_list_attr] = list_types
        return refs, types, type_values, counts

    @staticmethod
    def _unify(spec, arg, type_values, dtype, tensor_name):
        if not dtype:
            return
        known = type_values.get(arg.type_attr)
        if known is None:
            type_values[arg.type_attr] = dtype
        elif known != dtype:
            raise SavedModelError(
                f"{spec.name}: input {arg.name!r} ({tensor_name!r}) is {short_dtype_name(dtype)}, "
                f"but {arg.type_attr} is already {short_dtype_name(known)} from another input; "
                f"TensorFlow needs them equal. Insert a Cast, e.g. "
                f"g.op('Cast', {tensor_name!r}, DstT={short_dtype_name(known)!r}).")

    def _set_attrs(self, node, spec, attrs, type_values, counts):
        type_attrs, list_attrs = _type_attrs(spec), _list_attrs(spec)
        for key, value in counts.items():
            node.attr[key].i = value
        for key, value in type_values.items():
            if key in list_attrs:
                node.attr[key].CopyFrom(encode_attr(value, "list(type)"))
            else:
                node.attr[key].type = value
        for key in type_attrs:
            if key not in node.attr and _type_default(spec, key):
                node.attr[key].type = _type_default(spec, key)
        for key, value in attrs.items():
            if key in node.attr and key in type_attrs | list_attrs:
                continue
            attr = spec.attrs.get(key)
            kind = attr.type if attr is not None else ("tensor" if key == "value" else None)
            node.attr[key].CopyFrom(encode_attr(value, kind))
        missing = [a for a in spec.required_attrs() if a not in node.attr]
        if missing:
            raise SavedModelError(
                f"{spec.name} node {node.name!r} needs the attr(s) {', '.join(sorted(missing))}"
                f", which have no default; pass them, e.g. "
                f"g.op({spec.name!r}, ..., {sorted(missing)[0]}=...).")

    def _new_node_types(self, node, spec, input_types, consts) -> list[TensorType]:
        attrs = {k: decode_attr(v) for k, v in node.attr.items() if not k.startswith("_")}
        dtypes = output_dtypes(node.op, [t.dtype for t in input_types], attrs) if spec else None
        if dtypes is None:
            probed = probe_with_kernel(node.op, input_types, node.attr, consts)
            if probed is not None:
                dtypes = [t.dtype for t in probed]
            else:
                dtypes = node_output_dtypes(node) or [DT_INVALID]
        if node.op == "ReadVariableOp":
            shapes = [self._resource_shape(node.input[0])]
        else:
            shapes = infer_shapes(node.op, input_types, node.attr, consts, len(dtypes))
        return [TensorType(d, s) for d, s in zip(dtypes, shapes)]

    def _resource_shape(self, ref: str):
        """The shape of the variable a resource tensor refers to (VarHandleOp's shape attr)."""
        source = self._nodes.get(split_tensor_name(ref)[0])
        if source is not None and source.op == "VarHandleOp" and "shape" in source.attr:
            return decode_attr(source.attr["shape"])
        return None


def _type_attrs(info) -> set[str]:
    """The attrs giving one argument's type (``T`` in ``x: T``)."""
    return {a.type_attr for a in info.inputs + info.outputs if a.type_attr}


def _list_attrs(info) -> set[str]:
    """The attrs giving a list argument's types (``Tout`` in ``output: Tout``)."""
    return {a.type_list_attr for a in info.inputs + info.outputs if a.type_list_attr}


def _type_default(info, name: str) -> int:
    """The OpDef default of type attr ``name``; DT_INVALID when it has none."""
    attr = info.attrs.get(name)
    return int(attr.default.type) if attr is not None and attr.has_default else DT_INVALID


#: Ops whose shapes the builder derives from input shapes when _output_shapes is absent.
from .shapes import SHAPE_FUNCTIONS as _SHAPE_FUNCTIONS  # noqa: E402

_SHAPE_FROM_INPUTS = frozenset(_SHAPE_FUNCTIONS)
