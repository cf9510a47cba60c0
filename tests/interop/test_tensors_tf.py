"""TensorProto decoding/encoding against TensorFlow: tf.make_ndarray, tf.make_tensor_proto
and tf.io.parse_tensor (which runs C++ Tensor::FromProto)."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorflow.core.framework import tensor_pb2 as tf_tensor_pb2, types_pb2  # noqa: E402
from tensorflow.python.framework import dtypes as tf_dtypes  # noqa: E402

from sm_notebook._proto import tensor_pb2  # noqa: E402
from sm_notebook.format.tensors import (  # noqa: E402
    dtype_name, dtype_to_numpy, numpy_to_tensor_proto, short_dtype_name, tensor_proto_to_numpy,
)

ALL_DTYPES = [tf_dtypes.as_dtype(e) for e in tf_dtypes._TYPE_TO_STRING
              if e < 100 and e not in (0, 20, 21)]


def _ours(tf_proto):
    return tensor_pb2.TensorProto.FromString(tf_proto.SerializeToString())


def _theirs(our_proto):
    return tf_tensor_pb2.TensorProto.FromString(our_proto.SerializeToString())


def _storage(dtype):
    """The numpy values TensorFlow hands out, as sm_notebook represents them."""
    return dtype_to_numpy(dtype.as_datatype_enum)


def _same(ours, theirs, dtype):
    theirs = np.asarray(theirs)
    if theirs.dtype.names:                      # TF's structured quantized dtypes
        theirs = theirs.view(theirs.dtype[0])
    assert ours.shape == theirs.shape
    if ours.dtype == object:
        assert ours.tolist() == theirs.tolist()
    else:
        assert ours.dtype == _storage(dtype)
        assert ours.tobytes() == theirs.astype(ours.dtype).tobytes()


def _sample(dtype, shape=(2, 3)):
    count = int(np.prod(shape))
    if dtype == tf.string:
        return np.array([b"a", b"", "\u00e9".encode(), b"\x00z", b"q", b"r"][:count],
                        dtype=object).reshape(shape)
    if dtype == tf.bool:
        return (np.arange(count) % 2 == 0).reshape(shape)
    if dtype.is_complex:
        return (np.arange(count) + 0.5j).astype(dtype.as_numpy_dtype).reshape(shape)
    np_type = dtype.as_numpy_dtype
    if dtype.is_quantized:
        return np.array(np.arange(count).reshape(shape) % 5, dtype=np_type)
    low = -2 if dtype.name in ("int2",) else 0
    values = np.arange(count) % 2 + low if dtype.name in ("int2", "uint2") else np.arange(count) % 7
    if dtype.is_floating:
        values = values * 0.5 - 1
    return np.asarray(values).astype(np_type).reshape(shape)


def test_names_match_tensorflow():
    for dtype in ALL_DTYPES:
        enum = dtype.as_datatype_enum
        assert short_dtype_name(enum) == dtype.name
        assert dtype_name(enum) == types_pb2.DataType.Name(enum)
        assert dtype_name(enum + 100) == types_pb2.DataType.Name(enum + 100)
        ref = tf_dtypes.as_dtype(enum + 100)
        assert short_dtype_name(enum + 100) == ref.name


def _tf(function, *args, **kwargs):
    """Call TensorFlow; skip when TensorFlow's own Python lacks support for the dtype."""
    try:
        return function(*args, **kwargs)
    except TypeError as exc:
        if "not supported" in str(exc) or "Unsupported tensor type" in str(exc):
            pytest.skip(f"TensorFlow's Python cannot: {exc}")
        raise


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_make_tensor_proto_content(dtype):
    tf_proto = _tf(tf.make_tensor_proto, _sample(dtype), dtype=dtype)
    _same(tensor_proto_to_numpy(_ours(tf_proto)), _tf(tf.make_ndarray, tf_proto), dtype)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_make_tensor_proto_broadcast(dtype):
    # a single value broadcast to a shape: TensorFlow stores one typed value
    scalar = _sample(dtype, (1,)).reshape(())
    tf_proto = _tf(tf.make_tensor_proto, scalar, dtype=dtype, shape=[2, 3])
    _same(tensor_proto_to_numpy(_ours(tf_proto)), _tf(tf.make_ndarray, tf_proto), dtype)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_our_protos_read_by_tensorflow(dtype):
    array = _sample(dtype)
    if dtype.is_quantized:
        array = np.asarray(array).view(np.asarray(array).dtype[0])
    ours = numpy_to_tensor_proto(array, dtype.as_datatype_enum)
    _same(tensor_proto_to_numpy(ours), _tf(tf.make_ndarray, _theirs(ours)), dtype)


PARSE_TENSOR_DTYPES = [tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int8, tf.int16,
                       tf.int32, tf.int64, tf.uint8, tf.uint16, tf.uint32, tf.uint64,
                       tf.complex64, tf.complex128, tf.bool, tf.string]


def _typed_proto(dtype, values, shape):
    proto = tf_tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    field = {tf.float16: "half_val", tf.bfloat16: "half_val", tf.float32: "float_val",
             tf.float64: "double_val", tf.int64: "int64_val", tf.uint32: "uint32_val",
             tf.uint64: "uint64_val", tf.complex64: "scomplex_val", tf.complex128: "dcomplex_val",
             tf.bool: "bool_val", tf.string: "string_val"}.get(dtype, "int_val")
    if field == "half_val":
        values = np.array(values, dtype.as_numpy_dtype).view(np.uint16).tolist()
    elif field in ("scomplex_val", "dcomplex_val"):
        values = [part for v in values for part in (v, -v)]
    elif field == "string_val":
        values = [b"s%d" % v for v in values]
    elif field == "bool_val":
        values = [bool(v % 2) for v in values]
    getattr(proto, field).extend(values)
    return proto


@pytest.mark.parametrize("dtype", PARSE_TENSOR_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("values", [[], [3], [1, 2], [1, 2, 3, 4, 5, 6], list(range(1, 10))],
                         ids=["empty", "one", "short", "exact", "long"])
def test_typed_fields_like_cpp_from_proto(dtype, values):
    proto = _typed_proto(dtype, values, (2, 3))
    cpp = tf.io.parse_tensor(proto.SerializeToString(), dtype).numpy()
    _same(tensor_proto_to_numpy(_ours(proto)), cpp, dtype)


def test_string_tensor_content_like_cpp():
    proto = tf_tensor_pb2.TensorProto(dtype=tf.string.as_datatype_enum, tensor_content=b"\x01\x02abc")
    proto.tensor_shape.dim.add().size = 2
    cpp = tf.io.parse_tensor(proto.SerializeToString(), tf.string).numpy()
    assert tensor_proto_to_numpy(_ours(proto)).tolist() == cpp.tolist() == [b"a", b"bc"]


@pytest.mark.parametrize("dtype", PARSE_TENSOR_DTYPES, ids=lambda d: d.name)
def test_serialize_tensor_read_by_us_and_back(dtype):
    array = _sample(dtype)
    serialized = tf.io.serialize_tensor(tf.constant(array, dtype=dtype)).numpy()
    ours = tensor_proto_to_numpy(tensor_pb2.TensorProto.FromString(serialized))
    _same(ours, array, dtype)
    back = numpy_to_tensor_proto(ours, dtype.as_datatype_enum).SerializeToString()
    _same(tf.io.parse_tensor(back, dtype).numpy(), array, dtype)
