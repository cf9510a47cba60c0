"""SignatureDefs: build them from graph tensors, and rename their keys.

A SignatureDef maps input and output keys to TensorInfos (tensor name, dtype,
shape), as tf.compat.v1.saved_model.signature_def_utils.build_signature_def
writes them. Dtypes and shapes come from the graph; a tensor may also be given as
``(name, dtype)`` or ``(name, dtype, shape)`` when the graph cannot tell.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SavedModelError
from ..format.tensors import shape_from_proto, shape_to_proto
from .._proto import meta_graph_pb2
from .attrs import dtype_enum
from .graph import Graph, Tensor

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
INIT_OP_KEY = "__saved_model_init_op"
TRAIN_OP_KEY = "__saved_model_train_op"
RESERVED_KEYS = (INIT_OP_KEY, TRAIN_OP_KEY)
DEFAULT_SIGNATURE_KEY = "serving_default"


@dataclass(frozen=True)
class TensorRef:
    """A signature tensor as the user named it, before the graph resolves it."""
    name: str
    dtype: int = 0               # 0: take it from the graph
    shape: tuple | None = None
    shape_given: bool = False


def as_tensor_ref(value, where: str) -> TensorRef:
    """A Tensor handle, a tensor name, or ``(name, dtype[, shape])``, as a TensorRef."""
    if isinstance(value, Tensor):
        return TensorRef(value.name, value.dtype_enum, value.shape, value.dtype_enum != 0)
    if isinstance(value, str):
        return TensorRef(value)
    if isinstance(value, meta_graph_pb2.TensorInfo):
        if value.WhichOneof("encoding") != "name":
            raise SavedModelError(f"{where}: only dense tensors (TensorInfo.name) are supported "
                                  "for new signatures; sparse and composite encodings are not.")
        return TensorRef(value.name, value.dtype, shape_from_proto(value.tensor_shape), True)
    if isinstance(value, tuple) and value and isinstance(value[0], (str, Tensor)) and len(value) in (2, 3):
        name = value[0].name if isinstance(value[0], Tensor) else value[0]
        shape = value[2] if len(value) == 3 else None
        if shape is not None:
            shape = tuple(None if d is None or d == -1 else int(d) for d in shape)
        return TensorRef(name, dtype_enum(value[1]), shape, len(value) == 3)
    raise SavedModelError(
        f"{where}: {value!r} is not a tensor. Pass a Graph handle, a tensor name such as "
        "'dense/BiasAdd:0', or (name, dtype[, shape]) when the graph cannot tell the dtype.")


def _check_key(key, where: str):
    if not isinstance(key, str) or not key:
        raise SavedModelError(f"{where} keys must be non-empty strings; got {key!r}.")


def signature(inputs: dict, outputs: dict, method_name: str = PREDICT_METHOD):
    """A SignatureDef from ``{key: tensor}`` maps; tensors named by string are resolved
    (dtype and shape filled in from the graph) when the signature is added to a Builder."""
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        raise SavedModelError("signature(inputs=..., outputs=...) takes two dicts mapping keys to "
                              "tensors, e.g. inputs={'x': 'x:0'}, outputs={'y': 'y:0'}.")
    if not isinstance(method_name, str) or not method_name:
        raise SavedModelError(f"method_name must be a non-empty string such as "
                              f"{PREDICT_METHOD!r}; got {method_name!r}.")
    proto = meta_graph_pb2.SignatureDef(method_name=method_name)
    for mapping, field, what in ((inputs, proto.inputs, "input"), (outputs, proto.outputs, "output")):
        for key, value in mapping.items():
            _check_key(key, f"Signature {what}")
            ref = as_tensor_ref(value, f"{what} {key!r}")
            info = field[key]
            info.name = ref.name
            info.dtype = ref.dtype
            if ref.shape_given or ref.shape is not None:
                info.tensor_shape.CopyFrom(shape_to_proto(ref.shape))
            else:
                info.tensor_shape.unknown_rank = True
    return proto


def resolve_signature(graph: Graph, proto: meta_graph_pb2.SignatureDef,
                      where: str) -> meta_graph_pb2.SignatureDef:
    """A copy with every dense TensorInfo's dtype and shape taken from ``graph``.

    Raises SavedModelError when a tensor does not exist, or its given dtype disagrees
    with the graph's, or neither tells the dtype.
    """
    result = meta_graph_pb2.SignatureDef()
    result.CopyFrom(proto)
    for kind, infos in (("input", result.inputs), ("output", result.outputs)):
        for key, info in infos.items():
            if info.WhichOneof("encoding") != "name":
                continue
            tensor = _lookup(graph, info.name, f"{where}: {kind} {key!r}")
            info.name = tensor.name        # TensorInfo names are "node:index"
            graph_dtype = tensor.dtype_enum
            from .graph import base_dtype
            if info.dtype and graph_dtype and base_dtype(graph_dtype) != base_dtype(info.dtype):
                from ..format.tensors import short_dtype_name
                raise SavedModelError(
                    f"{where}: {kind} {key!r} says {info.name!r} is "
                    f"{short_dtype_name(info.dtype)}, but the graph makes it "
                    f"{short_dtype_name(graph_dtype)}. Drop the dtype (it is read from the "
                    f"graph) or give {short_dtype_name(graph_dtype)}.")
            if not info.dtype:
                if not graph_dtype:
                    raise SavedModelError(
                        f"{where}: {kind} {key!r}: the graph cannot tell the dtype of "
                        f"{info.name!r} (op {tensor.op_type}). Give it by hand: "
                        f"{{{key!r}: ({info.name!r}, 'float32')}}.")
                info.dtype = base_dtype(graph_dtype)
            if info.tensor_shape.unknown_rank and tensor.shape is not None:
                info.tensor_shape.CopyFrom(shape_to_proto(tensor.shape))
    return result


def _lookup(graph: Graph, name: str, where: str) -> Tensor:
    try:
        return graph.tensor(name)
    except SavedModelError as exc:
        raise SavedModelError(f"{where}: {exc}") from None


def rename_key(mapping, old: str, new: str, what: str, signature_key: str):
    """Rename ``old`` to ``new`` in a TensorInfo map, keeping the TensorInfo."""
    _check_key(new, f"Signature {what}")
    if old not in mapping:
        raise SavedModelError(
            f"Signature {signature_key!r} has no {what} {old!r}; its {what}s are: "
            f"{', '.join(sorted(mapping)) or 'none'}.")
    if new in mapping and new != old:
        raise SavedModelError(
            f"Signature {signature_key!r} already has an {what} {new!r}; pick another name or "
            f"rename that {what} first.")
    info = meta_graph_pb2.TensorInfo()
    info.CopyFrom(mapping[old])
    del mapping[old]
    mapping[new].CopyFrom(info)
