"""Python values <-> AttrValue protos for the nodes the builder writes and reads.

Types are DataType enums (``dtype_enum`` also accepts numpy dtypes, ``"float32"``,
``"DT_FLOAT"``); shapes are tuples with None for unknown dims, None for unknown rank.
"""
from __future__ import annotations

import numpy as np

from ..errors import SavedModelError
from ..format.tensors import (
    DataType, numpy_to_dtype, numpy_to_tensor_proto, shape_from_proto, shape_to_proto,
    tensor_proto_to_numpy,
)
from .._proto import graph_pb2

_SHORT_NAMES = {
    "float32": "DT_FLOAT", "float": "DT_FLOAT", "float64": "DT_DOUBLE", "double": "DT_DOUBLE",
    "float16": "DT_HALF", "half": "DT_HALF", "string": "DT_STRING", "str": "DT_STRING",
    "bytes": "DT_STRING", "resource": "DT_RESOURCE", "variant": "DT_VARIANT",
}


def dtype_enum(dtype) -> int:
    """A DataType enum from an enum, ``"DT_FLOAT"``, ``"float32"``, or a numpy dtype."""
    if isinstance(dtype, (int, np.integer)) and not isinstance(dtype, bool):
        DataType.Name(int(dtype))  # raises ValueError for unknown values
        return int(dtype)
    if isinstance(dtype, str):
        name = _SHORT_NAMES.get(dtype, dtype)
        if name.startswith("DT_") and name in DataType.keys():
            return DataType.Value(name)
        upper = "DT_" + name.upper()
        if upper in DataType.keys():
            return DataType.Value(upper)
    if dtype is str or dtype is bytes:
        return DataType.Value("DT_STRING")
    try:
        return numpy_to_dtype(np.dtype(dtype))
    except (TypeError, SavedModelError):
        pass
    raise SavedModelError(
        f"{dtype!r} is not a dtype. Pass e.g. 'float32', 'int64', 'string', np.float32 or "
        "'DT_FLOAT'.")


def _text_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


#: OpDef attr types with a fixed Python conversion (AttrValue field, converter).
_SCALAR_KINDS = {"int": ("i", int), "float": ("f", float), "bool": ("b", bool),
                 "string": ("s", _text_bytes)}
_LIST_KINDS = {f"list({k})": v for k, v in _SCALAR_KINDS.items()}


def _encode_typed(attr, value, kind: str):
    if kind in _SCALAR_KINDS:
        field, convert = _SCALAR_KINDS[kind]
        if kind != "string" and isinstance(value, (str, bytes)):
            raise TypeError(kind)
        setattr(attr, field, convert(value))
        return
    field, convert = _LIST_KINDS[kind]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(kind)
    attr.list.SetInParent()
    getattr(attr.list, field).extend(convert(v) for v in value)


def encode_attr(value, kind: str | None = None) -> graph_pb2.AttrValue:
    """An AttrValue; ``kind`` (an OpDef attr type: "int", "float", "type", "shape",
    "tensor", "list(type)", ...) removes guessing."""
    attr = graph_pb2.AttrValue()
    if isinstance(value, graph_pb2.AttrValue):
        attr.CopyFrom(value)
        return attr
    if kind in _SCALAR_KINDS or kind in _LIST_KINDS:
        try:
            _encode_typed(attr, value, kind)
        except (TypeError, ValueError):
            raise SavedModelError(f"Cannot store {value!r} in an attr of type {kind!r}.") from None
        return attr
    if kind == "func" and isinstance(value, str):
        attr.func.name = value
    elif kind == "func" and isinstance(value, graph_pb2.NameAttrList):
        attr.func.CopyFrom(value)
    elif kind == "type":
        attr.type = dtype_enum(value)
    elif kind == "shape":
        attr.shape.CopyFrom(shape_to_proto(value))
    elif kind == "tensor":
        attr.tensor.CopyFrom(numpy_to_tensor_proto(value) if not hasattr(value, "dtype")
                             or not hasattr(value, "tensor_shape") else value)
    elif kind == "list(type)":
        attr.list.SetInParent()
        attr.list.type.extend(dtype_enum(v) for v in value)
    elif kind == "list(shape)":
        attr.list.SetInParent()
        for shape in value:
            attr.list.shape.add().CopyFrom(shape_to_proto(shape))
    elif isinstance(value, bool):
        attr.b = value
    elif isinstance(value, (int, np.integer)):
        attr.i = int(value)
    elif isinstance(value, (float, np.floating)):
        attr.f = float(value)
    elif isinstance(value, str):
        attr.s = value.encode("utf-8")
    elif isinstance(value, bytes):
        attr.s = value
    elif isinstance(value, (np.dtype, type)):
        attr.type = dtype_enum(value)
    elif isinstance(value, (list, tuple)):
        attr.list.SetInParent()
        for item in value:
            if isinstance(item, bool):
                attr.list.b.append(item)
            elif isinstance(item, (int, np.integer)):
                attr.list.i.append(int(item))
            elif isinstance(item, (float, np.floating)):
                attr.list.f.append(float(item))
            elif isinstance(item, str):
                attr.list.s.append(item.encode("utf-8"))
            elif isinstance(item, bytes):
                attr.list.s.append(item)
            elif isinstance(item, (np.dtype, type)):
                attr.list.type.append(dtype_enum(item))
            else:
                raise SavedModelError(f"Cannot store {item!r} in a list attr.")
    elif isinstance(value, np.ndarray):
        attr.tensor.CopyFrom(numpy_to_tensor_proto(value))
    else:
        raise SavedModelError(
            f"Cannot turn {value!r} ({type(value).__name__}) into a TensorFlow attr value; "
            "pass a bool, int, float, str, dtype, list of those, or a numpy array.")
    return attr


def decode_attr(attr: graph_pb2.AttrValue):
    """The Python value of an AttrValue (types stay DataType enums)."""
    which = attr.WhichOneof("value")
    if which == "type":
        return int(attr.type)
    if which == "shape":
        return shape_from_proto(attr.shape)
    if which == "tensor":
        return tensor_proto_to_numpy(attr.tensor)
    if which == "s":
        try:
            return attr.s.decode("utf-8")
        except UnicodeDecodeError:
            return bytes(attr.s)
    if which in ("i", "f", "b"):
        return getattr(attr, which)
    if which == "func":
        return attr.func.name
    if which == "list":
        lst = attr.list
        for field in ("i", "f", "b", "type"):
            if len(getattr(lst, field)):
                return [int(v) if field == "type" else v for v in getattr(lst, field)]
        if len(lst.s):
            return [v.decode("utf-8", "replace") for v in lst.s]
        if len(lst.shape):
            return [shape_from_proto(s) for s in lst.shape]
        return []
    return None


def const_value(node) -> np.ndarray | None:
    """The value of a Const node (None for other nodes or undecodable values)."""
    if node is None or node.op != "Const" or "value" not in node.attr:
        return None
    try:
        return tensor_proto_to_numpy(node.attr["value"].tensor, max_elements=1 << 16)
    except SavedModelError:
        return None
