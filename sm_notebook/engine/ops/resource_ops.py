"""Variables (resource and TF1 ref variables) and RestoreV2 from the model's own checkpoint.

A variable is a `Variable` engine object kept in ``ctx.resources`` under
``("var", container, shared_name)``; a handle (VarHandleOp's output) and a ref
(VariableV2's output) are that object itself. Its ``value`` is an array of the
model's backend, or None until it is initialised.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import opdefs
from ..._proto import graph_pb2
from ...errors import SavedModelError
from ..context import KernelContext
from .registry import kernel


class Variable:
    """A variable of a loaded model."""
    __slots__ = ("name", "dtype", "shape", "_value")

    def __init__(self, name: str, dtype=None, shape=None, value=None):
        self.name = name
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.shape = shape
        self.value = value

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, value):
        """Values are replaced, never changed in place: numpy ones are made read-only, so
        every read may share them (reads return the array itself)."""
        if isinstance(value, np.ndarray) and value.flags.writeable:
            if value.base is not None or not value.flags.owndata:
                value = value.copy()
            value.flags.writeable = False
        self._value = value

    def __repr__(self):
        state = "uninitialised" if self.value is None else f"{getattr(self.value, 'shape', ())}"
        return f"<Variable {self.name!r} {self.dtype} {state}>"

    def read(self):
        if self.value is None:
            raise SavedModelError(
                f"Variable {self.name!r} is read before it has a value: the model's checkpoint "
                "holds no value for it and no init op assigned one.")
        return self.value


def variable(ctx: KernelContext, container: str, shared_name: str, dtype=None, shape=None) -> Variable:
    """The variable named ``container/shared_name``, created uninitialised on first use."""
    key = ("var", container, shared_name)
    found = ctx.resources.get(key)
    if found is None:
        found = ctx.resources[key] = Variable(shared_name, dtype, shape)
    return found


def _handle(value, op) -> Variable:
    if not isinstance(value, Variable):
        raise SavedModelError(f"{op} expects a variable handle, got {type(value).__name__}.")
    return value


def _check_dtype(var: Variable, value, op):
    dtype = getattr(value, "dtype", None)
    if var.dtype is not None and dtype is not None and var.dtype != object:
        try:
            same = np.dtype(dtype) == var.dtype if isinstance(value, (np.ndarray, np.generic)) else True
        except TypeError:
            same = True
        if not same:
            raise SavedModelError(f"{op} assigns {np.dtype(dtype).name} to variable {var.name!r} "
                                  f"of dtype {var.dtype.name}.")


def _copy(ctx, value):
    if isinstance(value, np.ndarray):
        return value.copy()
    return ctx.xp.asarray(value, copy=True)


# --------------------------------------------------------------------------- resource variables

@kernel("VarHandleOp")
def var_handle_op(ctx, inputs, attrs):
    return [variable(ctx, attrs.get("container", ""), attrs["shared_name"], attrs.get("dtype"),
                     attrs.get("shape"))]


@kernel("ReadVariableOp")
def read_variable_op(ctx, inputs, attrs):
    return [_handle(inputs[0], "ReadVariableOp").read()]


@kernel("ResourceGather")
def resource_gather(ctx, inputs, attrs):
    """``gather(variable value, indices)`` along axis ``batch_dims`` (tf.nn.embedding_lookup)."""
    from .gather_ops import gather
    value = _handle(inputs[0], "ResourceGather").read()
    batch_dims = int(attrs.get("batch_dims", 0))
    return [gather(ctx, "ResourceGather", value, inputs[1], batch_dims, batch_dims)]


@kernel("AssignVariableOp")
def assign_variable_op(ctx, inputs, attrs):
    var = _handle(inputs[0], "AssignVariableOp")
    _check_dtype(var, inputs[1], "AssignVariableOp")
    var.value = _copy(ctx, inputs[1])
    return []


@kernel("AssignAddVariableOp")
def assign_add_variable_op(ctx, inputs, attrs):
    var = _handle(inputs[0], "AssignAddVariableOp")
    var.value = var.read() + inputs[1]
    return []


@kernel("AssignSubVariableOp")
def assign_sub_variable_op(ctx, inputs, attrs):
    var = _handle(inputs[0], "AssignSubVariableOp")
    var.value = var.read() - inputs[1]
    return []


@kernel("VarIsInitializedOp")
def var_is_initialized_op(ctx, inputs, attrs):
    return [ctx.asarray(np.bool_(_handle(inputs[0], "VarIsInitializedOp").value is not None))]


@kernel("DestroyResourceOp")
def destroy_resource_op(ctx, inputs, attrs):
    target = inputs[0]
    for key, value in list(ctx.resources.items()):
        if value is target:
            del ctx.resources[key]
    return []


# --------------------------------------------------------------------------- TF1 ref variables

@kernel("VariableV2", "Variable")
def variable_v2(ctx, inputs, attrs):
    return [variable(ctx, attrs.get("container", ""), attrs["shared_name"], attrs.get("dtype"),
                     attrs.get("shape"))]


@kernel("_SmnbReadRef")
def read_ref(ctx, inputs, attrs):
    """The engine's implicit read of a TF1 ref variable by an op that wants its value."""
    return [_handle(inputs[0], "a ref read").read()]


def _define_read_ref():
    """The op table entry of the engine's own `_SmnbReadRef` (ref in, value out, stateful)."""
    op_def = graph_pb2.OpDef(name="_SmnbReadRef", is_stateful=True)
    op_def.input_arg.add(name="ref", type_attr="dtype", is_ref=True)
    op_def.output_arg.add(name="value", type_attr="dtype")
    op_def.attr.add(name="dtype", type="type")
    opdefs.register_extra(op_def)


_define_read_ref()


@kernel("Assign")
def assign(ctx, inputs, attrs):
    var = _handle(inputs[0], "Assign")
    var.value = _copy(ctx, inputs[1])
    return [var.value]


@kernel("AssignAdd")
def assign_add(ctx, inputs, attrs):
    var = _handle(inputs[0], "AssignAdd")
    var.value = var.read() + inputs[1]
    return [var.value]


@kernel("AssignSub")
def assign_sub(ctx, inputs, attrs):
    var = _handle(inputs[0], "AssignSub")
    var.value = var.read() - inputs[1]
    return [var.value]


@kernel("IsVariableInitialized")
def is_variable_initialized(ctx, inputs, attrs):
    return [ctx.asarray(np.bool_(_handle(inputs[0], "IsVariableInitialized").value is not None))]


# --------------------------------------------------------------------------- checkpoint

def variables_prefix(export_dir) -> Path:
    return Path(export_dir).resolve() / "variables" / "variables"


def bundle_reader(ctx, prefix: str):
    """The model's own checkpoint (cached in ctx.resources); other paths are IO."""
    from ...format.bundle import BundleReader

    own = ctx.export_dir is not None and Path(prefix).resolve() == variables_prefix(ctx.export_dir)
    if not own and not ctx.allow_io:
        raise SavedModelError(
            f"RestoreV2 asks for checkpoint {prefix!r}, which is not the model's own "
            "variables/variables; reading other files is IO, refused unless allow_io=True.")
    key = ("bundle", str(Path(prefix).resolve()))
    reader = ctx.resources.get(key)
    if reader is None:
        reader = ctx.resources[key] = BundleReader(prefix, root=ctx.export_dir if own else None)
    return reader


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@kernel("RestoreV2")
def restore_v2(ctx, inputs, attrs):
    prefix = _text(np.asarray(inputs[0]).reshape(-1)[0])
    names = [_text(n) for n in np.asarray(inputs[1]).reshape(-1)]
    slices = [_text(s) for s in np.asarray(inputs[2]).reshape(-1)]
    if any(slices):
        raise SavedModelError(
            "RestoreV2 with shape_and_slices (restoring part of a partitioned variable) is not "
            "supported.")
    reader = bundle_reader(ctx, prefix)
    dtypes = attrs.get("dtypes", [])
    values = []
    for name, dtype in zip(names, dtypes):
        if name in reader:
            ctx.check_alloc(reader.shape(name), reader.dtype(name) if reader.dtype(name) != object
                            else np.uint8, "RestoreV2")
        value = reader.read(name)
        if np.dtype(dtype) != value.dtype:
            raise SavedModelError(f"RestoreV2: checkpoint key {name!r} holds {value.dtype.name}, "
                                  f"the graph expects {np.dtype(dtype).name}.")
        values.append(value)
    return values
