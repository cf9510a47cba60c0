"""sm_notebook.format.tensors: the dtype table, shapes and TensorProto <-> numpy, without TF."""
import time

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sm_notebook._proto import tensor_pb2
from sm_notebook.errors import SavedModelError
from sm_notebook.format import tensors as T
from sm_notebook.format.tensors import (
    dtype_name, dtype_to_numpy, numpy_to_dtype, numpy_to_tensor_proto, shape_from_proto,
    shape_to_proto, short_dtype_name, tensor_proto_to_numpy,
)

DT = tensor_pb2.DataType

#: DataType -> (tf.DType.name, numpy dtype), written out independently of the module.
EXPECTED = {
    "DT_FLOAT": ("float32", np.float32), "DT_DOUBLE": ("float64", np.float64),
    "DT_INT32": ("int32", np.int32), "DT_UINT8": ("uint8", np.uint8),
    "DT_INT16": ("int16", np.int16), "DT_INT8": ("int8", np.int8),
    "DT_STRING": ("string", object), "DT_COMPLEX64": ("complex64", np.complex64),
    "DT_INT64": ("int64", np.int64), "DT_BOOL": ("bool", np.bool_),
    "DT_QINT8": ("qint8", np.int8), "DT_QUINT8": ("quint8", np.uint8),
    "DT_QINT32": ("qint32", np.int32), "DT_BFLOAT16": ("bfloat16", ml_dtypes.bfloat16),
    "DT_QINT16": ("qint16", np.int16), "DT_QUINT16": ("quint16", np.uint16),
    "DT_UINT16": ("uint16", np.uint16), "DT_COMPLEX128": ("complex128", np.complex128),
    "DT_HALF": ("float16", np.float16), "DT_RESOURCE": ("resource", object),
    "DT_VARIANT": ("variant", object), "DT_UINT32": ("uint32", np.uint32),
    "DT_UINT64": ("uint64", np.uint64), "DT_FLOAT8_E5M2": ("float8_e5m2", ml_dtypes.float8_e5m2),
    "DT_FLOAT8_E4M3FN": ("float8_e4m3fn", ml_dtypes.float8_e4m3fn),
    "DT_FLOAT8_E4M3FNUZ": ("float8_e4m3fnuz", ml_dtypes.float8_e4m3fnuz),
    "DT_FLOAT8_E4M3B11FNUZ": ("float8_e4m3b11fnuz", ml_dtypes.float8_e4m3b11fnuz),
    "DT_FLOAT8_E5M2FNUZ": ("float8_e5m2fnuz", ml_dtypes.float8_e5m2fnuz),
    "DT_INT4": ("int4", ml_dtypes.int4), "DT_UINT4": ("uint4", ml_dtypes.uint4),
    "DT_INT2": ("int2", ml_dtypes.int2), "DT_UINT2": ("uint2", ml_dtypes.uint2),
    "DT_FLOAT4_E2M1FN": ("float4_e2m1fn", ml_dtypes.float4_e2m1fn),
}
NUMERIC = [name for name, (_, np_type) in EXPECTED.items() if np_type is not object]


def test_table_covers_every_datatype_enum():
    for name, number in DT.items():
        if name == "DT_INVALID" or name.endswith("_REF"):
            continue
        assert name in EXPECTED, f"{name} missing from the test table"
    for name, (short, np_type) in EXPECTED.items():
        assert dtype_to_numpy(DT.Value(name)) == np.dtype(np_type), name
        assert short_dtype_name(DT.Value(name)) == short, name
        assert dtype_name(DT.Value(name)) == name


def test_reference_types_map_to_their_base():
    assert dtype_name(DT.Value("DT_FLOAT_REF")) == "DT_FLOAT_REF"
    assert short_dtype_name(DT.Value("DT_FLOAT_REF")) == "float32_ref"
    assert dtype_to_numpy(DT.Value("DT_BFLOAT16_REF")) == np.dtype(ml_dtypes.bfloat16)
    assert short_dtype_name(DT.Value("DT_STRING_REF")) == "string_ref"


@pytest.mark.parametrize("bad", [0, 77, 99, 250, -3])
def test_unknown_dtype_enums_are_named(bad):
    with pytest.raises(SavedModelError, match=str(bad)):
        dtype_to_numpy(bad)
    with pytest.raises(SavedModelError, match=str(bad)):
        short_dtype_name(bad)
    proto = tensor_pb2.TensorProto(dtype=bad)
    with pytest.raises(SavedModelError):
        tensor_proto_to_numpy(proto)


def test_dtype_name_of_unknown_enum():
    with pytest.raises(SavedModelError, match="77"):
        dtype_name(77)


def test_numpy_to_dtype():
    for name in NUMERIC:
        if name.startswith("DT_Q"):
            continue
        assert numpy_to_dtype(EXPECTED[name][1]) == DT.Value(name), name
    assert numpy_to_dtype(np.int8) == DT.Value("DT_INT8")            # not DT_QINT8
    assert numpy_to_dtype(np.dtype(">f4")) == DT.Value("DT_FLOAT")
    for string_like in (object, "S3", "U2", np.bytes_, np.str_):
        assert numpy_to_dtype(string_like) == DT.Value("DT_STRING")
    for quantized in ("qint8", "quint8", "qint16", "quint16", "qint32"):
        storage = EXPECTED["DT_" + quantized.upper()][1]
        assert numpy_to_dtype(np.dtype([(quantized, storage)])) == DT.Value("DT_" + quantized.upper())
    with pytest.raises(SavedModelError, match="datetime64"):
        numpy_to_dtype("datetime64[s]")
    with pytest.raises(SavedModelError):
        numpy_to_dtype("not a dtype")


# --- shapes -----------------------------------------------------------------

def test_shapes():
    assert shape_from_proto(shape_to_proto((2, None, 3))) == (2, None, 3)
    assert shape_from_proto(shape_to_proto(())) == ()
    assert shape_from_proto(shape_to_proto(None)) is None
    assert shape_to_proto(None).unknown_rank
    assert [d.size for d in shape_to_proto([4, None]).dim] == [4, -1]
    bad = tensor_pb2.TensorShapeProto()
    bad.dim.add().size = -2
    with pytest.raises(SavedModelError, match="-2"):
        shape_from_proto(bad)


# --- TensorProto decoding ---------------------------------------------------

def _proto(dtype, shape, **fields):
    proto = tensor_pb2.TensorProto(dtype=DT.Value(dtype))
    proto.tensor_shape.CopyFrom(shape_to_proto(shape))
    for field, values in fields.items():
        if field in ("tensor_content", "float8_val"):
            setattr(proto, field, values)
        else:
            getattr(proto, field).extend(values)
    return proto


def _sample(np_type, shape=(2, 3)):
    dtype = np.dtype(np_type)
    count = int(np.prod(shape))
    if dtype == np.bool_:
        return (np.arange(count) % 3 == 0).reshape(shape)
    if dtype.kind == "c":
        return (np.arange(count) - 2.5 + 1j * np.arange(count)).astype(dtype).reshape(shape)
    values = (np.arange(count) % 3) - 1 if dtype in (np.dtype(ml_dtypes.int2),) else np.arange(count) % 7 - 3
    if dtype.kind == "u" or dtype in (np.dtype(ml_dtypes.uint4), np.dtype(ml_dtypes.uint2)):
        values = np.arange(count) % 4
    if dtype.kind == "f" or dtype == np.dtype(ml_dtypes.bfloat16):
        values = values * 0.5
    return np.asarray(values).astype(dtype).reshape(shape)


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype == object:
        assert a.tolist() == b.tolist()
    else:
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_round_trip(name):
    array = _sample(EXPECTED[name][1])
    proto = numpy_to_tensor_proto(array, DT.Value(name))
    assert proto.dtype == DT.Value(name)
    back = tensor_proto_to_numpy(tensor_pb2.TensorProto.FromString(proto.SerializeToString()))
    _same(back, array)
    scalar = _sample(EXPECTED[name][1], ())
    _same(tensor_proto_to_numpy(numpy_to_tensor_proto(scalar, DT.Value(name))), scalar)
    empty = np.zeros((0, 4), EXPECTED[name][1])
    _same(tensor_proto_to_numpy(numpy_to_tensor_proto(empty, DT.Value(name))), empty)


def test_encodings_chosen_like_tensorflow():
    assert numpy_to_tensor_proto(np.float32([1, 2])).tensor_content == np.float32([1, 2]).tobytes()
    int4 = numpy_to_tensor_proto(np.array([1, -2], ml_dtypes.int4))
    assert list(int4.int_val) == [1, -2] and not int4.tensor_content
    strings = numpy_to_tensor_proto(np.array(["a", "é"]))
    assert list(strings.string_val) == [b"a", "é".encode()]
    assert numpy_to_tensor_proto(np.array([b"x"], dtype=object)).dtype == DT.Value("DT_STRING")
    big = numpy_to_tensor_proto(np.array([1.5, 2], dtype=">f8"))
    assert big.tensor_content == np.float64([1.5, 2]).astype("<f8").tobytes()
    quantized = numpy_to_tensor_proto(np.array([(3,), (4,)], dtype=[("qint8", np.int8)]))
    assert quantized.dtype == DT.Value("DT_QINT8")
    assert tensor_proto_to_numpy(quantized).tolist() == [3, 4]


def test_numpy_to_tensor_proto_refuses_lossy_or_foreign_values():
    with pytest.raises(SavedModelError, match="float"):
        numpy_to_tensor_proto(np.float64([1.5]), DT.Value("DT_INT32"))
    with pytest.raises(SavedModelError, match="fit"):
        numpy_to_tensor_proto(np.int64([300]), DT.Value("DT_INT8"))
    with pytest.raises(SavedModelError, match="int"):
        numpy_to_tensor_proto(np.array([1, "a"], dtype=object))
    with pytest.raises(SavedModelError):
        numpy_to_tensor_proto(np.array(["a"]), DT.Value("DT_FLOAT"))
    with pytest.raises(SavedModelError, match="ResourceHandleProto"):
        numpy_to_tensor_proto(np.array([b"x"], dtype=object), DT.Value("DT_RESOURCE"))


def test_resource_and_variant_round_trip():
    handle = tensor_pb2.ResourceHandleProto(device="/cpu:0", container="c", name="v")
    variant = tensor_pb2.VariantTensorDataProto(type_name="t", metadata=b"m")
    for dtype, item in (("DT_RESOURCE", handle), ("DT_VARIANT", variant)):
        array = np.empty((2,), dtype=object)
        array[0] = array[1] = item
        proto = numpy_to_tensor_proto(array, DT.Value(dtype))
        assert numpy_to_tensor_proto(array) == proto             # inferred from the items
        back = tensor_proto_to_numpy(proto)
        assert back.shape == (2,) and back[1] == item and back[0] is not item


@pytest.mark.parametrize("name,field,values,expected", [
    ("DT_FLOAT", "float_val", [1.5], [1.5] * 6),                           # broadcast
    ("DT_FLOAT", "float_val", [1, 2], [1, 2, 2, 2, 2, 2]),                 # pad with last
    ("DT_FLOAT", "float_val", [], [0] * 6),                                # zeros
    ("DT_FLOAT", "float_val", list(range(9)), list(range(6))),             # extra ignored
    ("DT_DOUBLE", "double_val", [0.25, 3], [0.25, 3, 3, 3, 3, 3]),
    ("DT_INT32", "int_val", [7], [7] * 6),
    ("DT_INT8", "int_val", [300, -1], [44, -1, -1, -1, -1, -1]),          # static_cast wraps
    ("DT_UINT8", "int_val", [255], [255] * 6),
    ("DT_QINT32", "int_val", [5, 6], [5, 6, 6, 6, 6, 6]),
    ("DT_INT64", "int64_val", [2 ** 40], [2 ** 40] * 6),
    ("DT_UINT32", "uint32_val", [2 ** 32 - 1], [2 ** 32 - 1] * 6),
    ("DT_UINT64", "uint64_val", [2 ** 64 - 1, 1], [2 ** 64 - 1] + [1] * 5),
    ("DT_BOOL", "bool_val", [True, False], [True] + [False] * 5),
    ("DT_INT4", "int_val", [-8, 7], [-8, 7, 7, 7, 7, 7]),
    ("DT_UINT2", "int_val", [3], [3] * 6),
])
def test_typed_fields(name, field, values, expected):
    array = tensor_proto_to_numpy(_proto(name, (2, 3), **{field: values}))
    assert array.dtype == np.dtype(EXPECTED[name][1]) and array.shape == (2, 3)
    assert array.reshape(-1).astype(object).tolist() == expected


def test_half_val_holds_bits():
    for name, np_type in (("DT_HALF", np.float16), ("DT_BFLOAT16", ml_dtypes.bfloat16)):
        values = np.array([1.5, -2.0], dtype=np_type)
        bits = values.view(np.uint16).tolist()
        array = tensor_proto_to_numpy(_proto(name, (3,), half_val=bits))
        assert array.dtype == np.dtype(np_type)
        assert array.astype(np.float32).tolist() == [1.5, -2.0, -2.0]


def test_float8_val_holds_bytes():
    values = np.array([0.5, -3], dtype=ml_dtypes.float8_e4m3fn)
    array = tensor_proto_to_numpy(_proto("DT_FLOAT8_E4M3FN", (2, 2), float8_val=values.tobytes()))
    assert array.astype(np.float32).reshape(-1).tolist() == [0.5, -3, -3, -3]


def test_complex_pairs():
    array = tensor_proto_to_numpy(_proto("DT_COMPLEX64", (3,), scomplex_val=[1, 2, 3]))
    assert array.tolist() == [1 + 2j] * 3                    # a lone real part is ignored
    array = tensor_proto_to_numpy(_proto("DT_COMPLEX128", (2,), dcomplex_val=[1, 2, 3, 4]))
    assert array.dtype == np.complex128 and array.tolist() == [1 + 2j, 3 + 4j]
    assert tensor_proto_to_numpy(_proto("DT_COMPLEX64", (2,))).tolist() == [0j, 0j]


def test_strings():
    array = tensor_proto_to_numpy(_proto("DT_STRING", (2, 2), string_val=[b"a", b"bc"]))
    assert array.dtype == object and array.tolist() == [[b"a", b"bc"], [b"bc", b"bc"]]
    assert tensor_proto_to_numpy(_proto("DT_STRING", (2,))).tolist() == [b"", b""]
    # tensor_content holds varint32 lengths, then the bytes (EncodeStringList).
    content = bytes([1, 2]) + b"abc"
    assert tensor_proto_to_numpy(_proto("DT_STRING", (2,), tensor_content=content)).tolist() == [b"a", b"bc"]
    for bad in (bytes([1, 2]) + b"ab", bytes([1, 2]) + b"abcd", bytes([0x80])):
        with pytest.raises(SavedModelError, match="tensor_content"):
            tensor_proto_to_numpy(_proto("DT_STRING", (2,), tensor_content=bad))


def test_tensor_content_length_must_match():
    with pytest.raises(SavedModelError, match="12 bytes"):
        tensor_proto_to_numpy(_proto("DT_FLOAT", (3,), tensor_content=b"\0" * 8))
    with pytest.raises(SavedModelError, match="12 bytes"):
        tensor_proto_to_numpy(_proto("DT_FLOAT", (3,), tensor_content=b"\0" * 13))


def test_bool_content_normalised():
    array = tensor_proto_to_numpy(_proto("DT_BOOL", (3,), tensor_content=b"\x00\x01\x07"))
    assert array.tolist() == [False, True, True] and array.view(np.uint8).tolist() == [0, 1, 1]


def test_absurd_element_counts_are_refused_without_allocating():
    start = time.perf_counter()
    with pytest.raises(SavedModelError, match="limit"):
        tensor_proto_to_numpy(_proto("DT_FLOAT", (1 << 20, 1 << 20), float_val=[1]))
    with pytest.raises(SavedModelError, match="limit"):
        tensor_proto_to_numpy(_proto("DT_STRING", (1 << 40,), string_val=[b"x"]))
    with pytest.raises(SavedModelError):
        tensor_proto_to_numpy(_proto("DT_FLOAT", (1 << 40,), tensor_content=b"\0" * 4), max_elements=None)
    assert time.perf_counter() - start < 1
    assert tensor_proto_to_numpy(_proto("DT_INT8", (100,), int_val=[1]), max_elements=100).sum() == 100
    with pytest.raises(SavedModelError):
        tensor_proto_to_numpy(_proto("DT_INT8", (101,), int_val=[1]), max_elements=100)


def test_shape_must_be_known():
    with pytest.raises(SavedModelError, match="not fully defined"):
        tensor_proto_to_numpy(_proto("DT_FLOAT", (2, None), float_val=[1]))
    with pytest.raises(SavedModelError, match="unknown rank"):
        tensor_proto_to_numpy(_proto("DT_FLOAT", None, float_val=[1]))


def test_array_bytes_helpers_swap_big_endian():
    values = np.array([1 + 2j, -3.5j], dtype=np.complex64)
    big = values.astype(">c8").tobytes()
    assert T.array_from_bytes(big, np.complex64, 2, big_endian=True).tolist() == values.tolist()
    bf = np.array([1.5, -2], dtype=ml_dtypes.bfloat16)
    swapped = bf.view(np.uint16).byteswap().tobytes()
    assert T.array_from_bytes(swapped, bf.dtype, 2, big_endian=True).tobytes() == bf.tobytes()
    assert T.array_to_bytes(np.array([1], dtype=">i4")) == np.int32([1]).tobytes()


# --- fuzzing ----------------------------------------------------------------

_FIELDS = ["float_val", "double_val", "int_val", "int64_val", "bool_val", "half_val",
           "scomplex_val", "dcomplex_val", "uint32_val", "uint64_val", "string_val"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtype=st.sampled_from([0, 1, 2, 3, 4, 7, 8, 9, 10, 14, 18, 19, 20, 21, 23, 24, 29, 33, 60, 101]),
       dims=st.lists(st.integers(-3, 1 << 45), max_size=4),
       content=st.binary(max_size=40),
       count=st.integers(0, 5), field=st.sampled_from(_FIELDS))
def test_arbitrary_protos_only_raise_savedmodelerror(dtype, dims, content, count, field):
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in dims:
        proto.tensor_shape.dim.add().size = size
    if content and count % 2:
        proto.tensor_content = content
    target = getattr(proto, field)
    sample = {"bool_val": True, "string_val": b"s", "float_val": 1.0, "double_val": 1.0,
              "scomplex_val": 1.0, "dcomplex_val": 1.0}.get(field, 3)
    target.extend([sample] * count)
    try:  # a small cap keeps 200 examples cheap; the default cap is tested separately
        result = tensor_proto_to_numpy(proto, max_elements=1 << 16)
    except SavedModelError:
        return
    assert result.shape == tuple(dims)


def test_ml_dtypes_is_imported_only_when_an_exotic_dtype_is_met():
    """Importing ml_dtypes is most of a cold start: running a float32 model must not."""
    import subprocess
    import sys
    code = (
        "import sys, numpy as np\n"
        "from sm_notebook.format import tensors\n"
        "assert tensors.dtype_to_numpy(1) == np.float32\n"
        "assert tensors.numpy_to_dtype(np.dtype('int64')) == 9\n"
        "assert 'ml_dtypes' not in sys.modules, 'imported eagerly'\n"
        "assert tensors.dtype_to_numpy(14).name == 'bfloat16'\n"
        "import ml_dtypes\n"
        "assert tensors.numpy_to_dtype(np.dtype(ml_dtypes.int4)) == 29\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
