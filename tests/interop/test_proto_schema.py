"""Our .proto schemas against TensorFlow's own descriptors, field by field."""
import pytest

tf = pytest.importorskip("tensorflow")

from google.protobuf import descriptor_pool  # noqa: E402

from sm_notebook._proto import (  # noqa: E402,F401
    full_type_pb2, graph_pb2, meta_graph_pb2, saved_model_pb2,
    saved_object_graph_pb2, struct_pb2, tensor_pb2, trackable_object_graph_pb2,
)
from tensorflow.core.framework import (  # noqa: E402,F401
    full_type_pb2 as _tf_ft, tensor_slice_pb2 as _tf_ts, variable_pb2 as _tf_var,
)
from tensorflow.core.protobuf import (  # noqa: E402,F401
    fingerprint_pb2 as _tf_fp, meta_graph_pb2 as _tf_mg, saved_model_pb2 as _tf_sm,
    saved_object_graph_pb2 as _tf_sog, tensor_bundle_pb2 as _tf_tb,
    trackable_object_graph_pb2 as _tf_tog,
)

POOL = descriptor_pool.Default()
TOP_MESSAGES = [
    "SavedModel", "MetaGraphDef", "GraphDef", "NodeDef", "FunctionDefLibrary",
    "FunctionDef", "OpDef", "OpList", "AttrValue", "NameAttrList", "TensorProto",
    "TensorShapeProto", "VersionDef", "SaverDef", "StructuredValue", "SavedObjectGraph",
    "TrackableObjectGraph", "ResourceHandleProto", "FullTypeDef", "BundleHeaderProto",
    "BundleEntryProto", "FingerprintDef", "TensorSliceProto", "VariableDef",
    "SaveSliceInfoDef", "CollectionDef", "SignatureDef", "TensorInfo", "AssetFileDef",
    "GraphDebugInfo", "VariantTensorDataProto", "TypeSpecProto",
]
ENUMS = ["DataType", "VariableSynchronization", "VariableAggregation"]


def _ours_to_tf(full_name):
    return "tensorflow." + full_name[len("smnb."):] if full_name.startswith("smnb.") else full_name


def _compare(ours, theirs, seen, path):
    if ours.full_name in seen:
        return
    seen.add(ours.full_name)
    assert _ours_to_tf(ours.full_name) == theirs.full_name, path
    by_number = {f.number: f for f in theirs.fields}
    assert sorted(f.number for f in ours.fields) == sorted(by_number), path
    for field in ours.fields:
        other = by_number[field.number]
        where = f"{path}.{field.name}"
        assert field.name == other.name, where
        assert field.type == other.type, where
        assert field.is_repeated == other.is_repeated, where
        if field.message_type is not None:
            _compare(field.message_type, other.message_type, seen, where)
        if field.enum_type is not None:
            assert _ours_to_tf(field.enum_type.full_name) == other.enum_type.full_name, where


@pytest.mark.parametrize("name", TOP_MESSAGES)
def test_message_matches_tensorflow(name):
    _compare(POOL.FindMessageTypeByName("smnb." + name),
             POOL.FindMessageTypeByName("tensorflow." + name), set(), name)


@pytest.mark.parametrize("name", ENUMS)
def test_enum_matches_tensorflow(name):
    ours = POOL.FindEnumTypeByName("smnb." + name)
    theirs = POOL.FindEnumTypeByName("tensorflow." + name)
    assert {v.name: v.number for v in ours.values} == {v.name: v.number for v in theirs.values}
