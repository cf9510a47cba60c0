"""Hand-built graphs and SavedModels (our protos only) for the engine's unit tests,
plus a few test-only kernels registered with monkeypatch (names start with ``_T``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sm_notebook._proto import graph_pb2, meta_graph_pb2, saved_model_pb2
from sm_notebook.engine.ops import registry
from sm_notebook.format.tensors import numpy_to_dtype, numpy_to_tensor_proto
from sm_notebook.format.tensors import shape_to_proto


class Func:
    """A func attr value: function name plus attrs."""

    def __init__(self, name, **attrs):
        self.name, self.attrs = name, attrs


def attr_value(value) -> graph_pb2.AttrValue:
    out = graph_pb2.AttrValue()
    if isinstance(value, Func):
        out.func.name = value.name
        for k, v in value.attrs.items():
            out.func.attr[k].CopyFrom(attr_value(v))
    elif isinstance(value, bool):
        out.b = value
    elif isinstance(value, int):
        out.i = value
    elif isinstance(value, float):
        out.f = value
    elif isinstance(value, (str, bytes)):
        out.s = value.encode() if isinstance(value, str) else value
    elif isinstance(value, (np.dtype, type)):
        out.type = numpy_to_dtype(np.dtype(value))
    elif isinstance(value, np.ndarray):
        out.tensor.CopyFrom(numpy_to_tensor_proto(value))
    elif isinstance(value, tuple):
        out.shape.CopyFrom(shape_to_proto(value))
    elif isinstance(value, list):
        if value and isinstance(value[0], Func):
            for f in value:
                out.list.func.add().CopyFrom(attr_value(f).func)
        elif value and isinstance(value[0], (np.dtype, type)):
            out.list.type.extend(numpy_to_dtype(np.dtype(v)) for v in value)
        elif value and isinstance(value[0], int):
            out.list.i.extend(value)
        else:
            out.list.SetInParent()
    else:
        raise TypeError(value)
    return out


def node(name, op, inputs=(), **attrs) -> graph_pb2.NodeDef:
    out = graph_pb2.NodeDef(name=name, op=op, input=list(inputs))
    for k, v in attrs.items():
        out.attr[k].CopyFrom(attr_value(v))
    return out


def const(name, value, dtype=None, inputs=()) -> graph_pb2.NodeDef:
    value = np.asarray(value, dtype=dtype)
    return node(name, "Const", inputs, value=value, dtype=value.dtype)


def placeholder(name, dtype=np.float32, shape=None) -> graph_pb2.NodeDef:
    attrs = {"dtype": np.dtype(dtype)}
    if shape is not None:
        attrs["shape"] = tuple(-1 if d is None else d for d in shape)
    return node(name, "Placeholder", **attrs)


def function(name, inputs, outputs, nodes, control_ret=None) -> graph_pb2.FunctionDef:
    """``inputs``: [(arg name, dtype)]; ``outputs``: {out name: "node:arg:idx" or arg}."""
    fdef = graph_pb2.FunctionDef()
    fdef.signature.name = name
    for arg, dtype in inputs:
        fdef.signature.input_arg.add(name=arg, type=numpy_to_dtype(np.dtype(dtype)))
    for out, ref in outputs.items():
        fdef.signature.output_arg.add(name=out, type=numpy_to_dtype(np.dtype(np.float32)))
        fdef.ret[out] = ref
    for n in nodes:
        fdef.node_def.add().CopyFrom(n)
    for k, v in (control_ret or {}).items():
        fdef.signature.control_output.append(k)
        fdef.control_ret[k] = v
    return fdef


def tensor_info(name, dtype=np.float32, shape=None) -> meta_graph_pb2.TensorInfo:
    info = meta_graph_pb2.TensorInfo(name=name, dtype=numpy_to_dtype(np.dtype(dtype)))
    if shape is None:
        info.tensor_shape.unknown_rank = True
    else:
        info.tensor_shape.CopyFrom(shape_to_proto(shape))
    return info


def signature(inputs: dict, outputs: dict) -> meta_graph_pb2.SignatureDef:
    """``inputs``/``outputs``: key -> (tensor name, dtype, shape)."""
    sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for k, spec in inputs.items():
        sig.inputs[k].CopyFrom(tensor_info(*spec))
    for k, spec in outputs.items():
        sig.outputs[k].CopyFrom(tensor_info(*spec))
    return sig


def meta_graph(nodes, signatures=None, functions=(), tags=("serve",)) -> meta_graph_pb2.MetaGraphDef:
    mg = meta_graph_pb2.MetaGraphDef()
    mg.meta_info_def.tags.extend(tags)
    for n in nodes:
        mg.graph_def.node.add().CopyFrom(n)
    for f in functions:
        mg.graph_def.library.function.add().CopyFrom(f)
    for k, s in (signatures or {}).items():
        mg.signature_def[k].CopyFrom(s)
    return mg


def save(export_dir, *meta_graphs, variables: dict | None = None) -> Path:
    """Write saved_model.pb (and variables/variables from ``variables``: key -> array)."""
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    for mg in meta_graphs:
        model.meta_graphs.add().CopyFrom(mg)
    (export_dir / "saved_model.pb").write_bytes(model.SerializeToString())
    if variables is not None:
        from sm_notebook.format.bundle import BundleWriter
        (export_dir / "variables").mkdir(exist_ok=True)
        writer = BundleWriter(str(export_dir / "variables" / "variables"))
        for key, value in sorted(variables.items()):
            writer.add(key, value)
        writer.finish()
    return export_dir


# --------------------------------------------------------------------------- test kernels

def _add(ctx, inputs, attrs):
    return [inputs[0] + inputs[1]]


def _mul(ctx, inputs, attrs):
    return [inputs[0] * inputs[1]]


def _less(ctx, inputs, attrs):
    return [ctx.asarray(np.asarray(ctx.to_numpy(inputs[0]) < ctx.to_numpy(inputs[1])))]


class Counter:
    """Counts calls of the stateful ``_TCount`` kernel."""
    calls = 0


def _count(ctx, inputs, attrs):
    Counter.calls += 1
    return [inputs[0]]


def install_test_op(monkeypatch, op, fn, stateful=False):
    """Register a test-only op (one output ``z``) in the op table and its kernel
    ``fn(ctx, inputs, attrs)`` for one test."""
    from sm_notebook import opdefs
    from sm_notebook._proto import graph_pb2

    op_def = graph_pb2.OpDef(name=op, is_stateful=stateful)
    op_def.output_arg.add(name="z", type=1)
    opdefs.register_extra(op_def)  # idempotent: the same definition every time
    monkeypatch.setitem(registry.KERNELS, op, registry.OpKernel.simple(op, fn))


def install_test_kernels(monkeypatch):
    """Register _TAdd, _TMul, _TLess (pure) and _TCount (stateful) for one test."""
    import sm_notebook.engine.ops  # noqa: F401

    Counter.calls = 0
    for op, fn, stateful in (("_TAdd", _add, False), ("_TMul", _mul, False),
                             ("_TLess", _less, False), ("_TCount", _count, True)):
        install_test_op(monkeypatch, op, fn, stateful)
