"""AttrValue protos -> the Python values kernels receive, OpDef defaults filled in.

The decoded forms are those of the kernel contract (see ``ops/registry.py``).
Defaults come from the metagraph's ``stripped_op_list`` (TensorFlow strips
default-valued attrs from nodes when ``stripped_default_attrs`` is set), then
from the op table (``sm_notebook.opdefs``), for graphs that carry no op list.
"""
from __future__ import annotations

from ..errors import SavedModelError
from ..format.tensors import dtype_to_numpy, shape_from_proto, tensor_proto_to_numpy
from .. import opdefs
from .ops.registry import FuncAttr

def decode_attr(value, func_attrs: dict | None = None, *, where: str = ""):
    """One AttrValue as the kernel contract's Python value.

    ``func_attrs``: the decoded attrs of the function instantiation, which
    ``placeholder`` attrs of a FunctionDef body refer to.
    """
    kind = value.WhichOneof("value")
    if kind == "s":
        return _text(value.s)
    if kind == "i":
        return int(value.i)
    if kind == "f":
        return float(value.f)
    if kind == "b":
        return bool(value.b)
    if kind == "type":
        return dtype_to_numpy(value.type)
    if kind == "shape":
        return shape_from_proto(value.shape)
    if kind == "tensor":
        return tensor_proto_to_numpy(value.tensor)
    if kind == "func":
        return decode_func(value.func, func_attrs)
    if kind == "list":
        return _decode_list(value.list, func_attrs)
    if kind == "placeholder":
        if func_attrs is None or value.placeholder not in func_attrs:
            raise SavedModelError(
                f"Attr placeholder ${value.placeholder}{where} has no value: the function "
                "was called without that attr.")
        return func_attrs[value.placeholder]
    return None


def decode_func(name_attr_list, func_attrs=None) -> FuncAttr:
    attrs = {k: decode_attr(v, func_attrs) for k, v in name_attr_list.attr.items()}
    return FuncAttr(name_attr_list.name, attrs)


def _text(raw: bytes):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw)


def _decode_list(lst, func_attrs):
    if lst.s:
        return [_text(s) for s in lst.s]
    if lst.i:
        return [int(i) for i in lst.i]
    if lst.f:
        return [float(f) for f in lst.f]
    if lst.b:
        return [bool(b) for b in lst.b]
    if lst.type:
        return [dtype_to_numpy(t) for t in lst.type]
    if lst.shape:
        return [shape_from_proto(s) for s in lst.shape]
    if lst.tensor:
        return [tensor_proto_to_numpy(t) for t in lst.tensor]
    if lst.func:
        return [decode_func(f, func_attrs) for f in lst.func]
    return []


class OpDefaults:
    """Per op: its definition (the metagraph's own OpDef when it carries one) and the
    decoded default attr values (the model's OpDef over the op table's)."""

    def __init__(self, op_list=None):
        self._declared = {op_def.name: op_def for op_def in op_list.op} if op_list is not None else {}
        self._infos: dict = {}
        self._decoded: dict[str, dict] = {}

    def op_info(self, op: str):
        """The op's definition as the model declares it (an `opdefs.OpInfo`), or None."""
        info = self._infos.get(op)
        if info is None and op in self._declared:
            info = self._infos[op] = opdefs.from_op_def(self._declared[op])
        return info

    def for_op(self, op: str) -> dict:
        """The decoded defaults of ``op`` (a shared dict: copy before changing)."""
        found = self._decoded.get(op)
        if found is None:
            found = {}
            for info in (opdefs.get(op), self.op_info(op)):
                if info is not None:
                    found.update({a.name: decode_attr(a.default) for a in info.attrs.values()
                                  if a.has_default})
            self._decoded[op] = found
        return found


_TABLE_ONLY = OpDefaults()


class NodeAttrs(dict):
    """A node's decoded attrs; looking up one the node lacks raises a SavedModelError
    naming the node and the attr (a kernel's ``attrs["num"]``), not a KeyError."""
    __slots__ = ("op", "where")

    def __missing__(self, key):
        raise SavedModelError(
            f"Op {self.op}{self.where} lacks attribute {key!r}, which it needs and which has "
            "no default (TensorFlow refuses such a node: NodeDef missing attr). The model is "
            "malformed; add the attribute to the node.")


def decode_node_attrs(attr_map, op: str, defaults: OpDefaults | None = None,
                      func_attrs: dict | None = None, where: str = "") -> dict:
    """A node's attrs decoded (a `NodeAttrs`), missing ones taken from the op's defaults.

    Attrs whose names start with ``_`` (TensorFlow's bookkeeping) are left out. A missing
    attr is refused when a kernel reads it (`NodeAttrs`); the attrs that size a node's
    outputs are checked by the planner (plan.py ``_output_count``) before anything is
    built per output.
    """
    decoded = NodeAttrs((defaults or _TABLE_ONLY).for_op(op))
    decoded.op, decoded.where = op, where
    for key, value in attr_map.items():
        if not key.startswith("_"):  # _class, _output_shapes, ...: TensorFlow internals
            decoded[key] = decode_attr(value, func_attrs, where=where)
    return decoded
