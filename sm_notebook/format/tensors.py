"""TensorFlow DataType enums and TensorProtos <-> numpy, matching TensorFlow's rules.

The decoding rules follow ``Tensor::FromProto`` (tensorflow/core/framework/tensor.cc):
``tensor_content`` must hold exactly the tensor's bytes; otherwise the typed
``*_val`` field is used, a short field is padded with its last value, an empty one
means zeros, and values beyond the element count are ignored.

Narrow and exotic types come from ml_dtypes (bfloat16, float8 variants, int4,
uint4, int2, uint2, float4_e2m1fn); quantized types (qint8, ...) are returned as
their storage integers; strings are object arrays of ``bytes``; resource and
variant tensors are object arrays of ResourceHandleProto / VariantTensorDataProto.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from ..errors import SavedModelError
from .._proto import tensor_pb2

DataType = tensor_pb2.DataType

#: Offset TensorFlow adds to a DataType to form its reference type (DT_FLOAT_REF = 101).
REF_OFFSET = 100

#: Default ceiling on the elements tensor_proto_to_numpy will materialise.
DEFAULT_MAX_ELEMENTS = 1 << 27

#: Default ceiling on the bytes tensor_proto_to_numpy allocates to repeat a short typed
#: field (a "splat" constant: one value, a huge shape). Values the proto actually holds
#: are bounded by the file's size and not capped by this.
DEFAULT_MAX_FILL_BYTES = 1 << 28

#: numpy's NPY_MAXDIMS: 64 since numpy 2.0, 32 before. TensorFlow allows rank 254.
NUMPY_MAX_RANK = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32

#: Estimated bytes per element of object arrays: a reference, plus a fresh message
#: for resource and variant elements.
_OBJECT_ELEMENT_BYTES = {"string_val": 8, "resource_handle_val": 200, "variant_val": 200}


@dataclass(frozen=True)
class _DTypeInfo:
    enum: int
    short_name: str          # tf.DType.name
    numpy: np.dtype          # what we hand out
    typed_field: str         # the TensorProto *_val field TensorFlow uses
    memcpy: bool             # stored as raw little-endian bytes in checkpoints/tensor_content


def _info(enum_name, short_name, numpy_dtype, typed_field, memcpy=True):
    return _DTypeInfo(DataType.Value(enum_name), short_name, np.dtype(numpy_dtype),
                      typed_field, memcpy)


_INFOS = [
    _info("DT_FLOAT", "float32", np.float32, "float_val"),
    _info("DT_DOUBLE", "float64", np.float64, "double_val"),
    _info("DT_INT32", "int32", np.int32, "int_val"),
    _info("DT_UINT8", "uint8", np.uint8, "int_val"),
    _info("DT_INT16", "int16", np.int16, "int_val"),
    _info("DT_INT8", "int8", np.int8, "int_val"),
    _info("DT_STRING", "string", object, "string_val", memcpy=False),
    _info("DT_COMPLEX64", "complex64", np.complex64, "scomplex_val"),
    _info("DT_INT64", "int64", np.int64, "int64_val"),
    _info("DT_BOOL", "bool", np.bool_, "bool_val"),
    _info("DT_QINT8", "qint8", np.int8, "int_val"),
    _info("DT_QUINT8", "quint8", np.uint8, "int_val"),
    _info("DT_QINT32", "qint32", np.int32, "int_val"),
    _info("DT_QINT16", "qint16", np.int16, "int_val"),
    _info("DT_QUINT16", "quint16", np.uint16, "int_val"),
    _info("DT_UINT16", "uint16", np.uint16, "int_val"),
    _info("DT_COMPLEX128", "complex128", np.complex128, "dcomplex_val"),
    _info("DT_HALF", "float16", np.float16, "half_val"),
    _info("DT_RESOURCE", "resource", object, "resource_handle_val", memcpy=False),
    _info("DT_VARIANT", "variant", object, "variant_val", memcpy=False),
    _info("DT_UINT32", "uint32", np.uint32, "uint32_val"),
    _info("DT_UINT64", "uint64", np.uint64, "uint64_val"),
]

#: Types numpy lacks, from ml_dtypes, imported on first use (importing ml_dtypes takes
#: most of a cold start): (enum, tf.DType.name, ml_dtypes attribute, typed field).
_EXOTIC = [
    ("DT_BFLOAT16", "bfloat16", "bfloat16", "half_val"),
    ("DT_FLOAT8_E5M2", "float8_e5m2", "float8_e5m2", "float8_val"),
    ("DT_FLOAT8_E4M3FN", "float8_e4m3fn", "float8_e4m3fn", "float8_val"),
    ("DT_FLOAT8_E4M3FNUZ", "float8_e4m3fnuz", "float8_e4m3fnuz", "float8_val"),
    ("DT_FLOAT8_E4M3B11FNUZ", "float8_e4m3b11fnuz", "float8_e4m3b11fnuz", "float8_val"),
    ("DT_FLOAT8_E5M2FNUZ", "float8_e5m2fnuz", "float8_e5m2fnuz", "float8_val"),
    ("DT_INT4", "int4", "int4", "int_val"),
    ("DT_UINT4", "uint4", "uint4", "int_val"),
    ("DT_INT2", "int2", "int2", "int_val"),
    ("DT_UINT2", "uint2", "uint2", "int_val"),
    ("DT_FLOAT4_E2M1FN", "float4_e2m1fn", "float4_e2m1fn", "float8_val"),
]
_EXOTIC_ENUMS = frozenset(DataType.Value(e[0]) for e in _EXOTIC)
_BY_ENUM = {info.enum: info for info in _INFOS}

#: tf.qint8.as_numpy_dtype etc. are single-field structured dtypes named after the type.
_QUANTIZED_FIELD_NAMES = {"qint8", "quint8", "qint16", "quint16", "qint32"}

#: numpy dtype -> DataType for the dtypes numpy arrays naturally carry: plain ints
#: map to the plain int enums, never the quantized ones that share their storage.
_ENUM_BY_NUMPY = {i.numpy: i.enum for i in _INFOS
                  if i.numpy != np.dtype(object) and i.short_name not in _QUANTIZED_FIELD_NAMES}


def _load_exotic() -> None:
    """Add the ml_dtypes types to the tables (once; idempotent)."""
    if _EXOTIC_LOADED:
        return
    import ml_dtypes
    infos = [_info(enum, short, getattr(ml_dtypes, attr), field)
             for enum, short, attr, field in _EXOTIC]
    _BY_ENUM.update({info.enum: info for info in infos})
    _ENUM_BY_NUMPY.update({info.numpy: info.enum for info in infos})
    _INFOS.extend(infos)
    _EXOTIC_LOADED.append(True)


_EXOTIC_LOADED: list = []


def _known_names(memcpy_only=False) -> str:
    names = [i.short_name for i in _INFOS if i.memcpy or not memcpy_only]
    names += [e[1] for e in _EXOTIC if e[1] not in names]
    return ", ".join(names)

#: Integer dtypes TensorFlow's Python writes through int_val rather than
#: tensor_content, "since their binary representation is implementation-dependent".
_PACKED_INT_ENUMS = {DataType.Value(n) for n in ("DT_INT4", "DT_UINT4", "DT_INT2", "DT_UINT2")}


def _base_enum(enum_value: int) -> int:
    return enum_value - REF_OFFSET if enum_value > REF_OFFSET else enum_value


def _lookup(enum_value) -> _DTypeInfo:
    try:
        enum_value = int(enum_value)
    except (TypeError, ValueError):
        raise SavedModelError(f"{enum_value!r} is not a TensorFlow DataType enum value.") from None
    info = _BY_ENUM.get(_base_enum(enum_value))
    if info is None and _base_enum(enum_value) in _EXOTIC_ENUMS:
        _load_exotic()
        info = _BY_ENUM.get(_base_enum(enum_value))
    if info is None:
        raise SavedModelError(
            f"Unknown TensorFlow dtype enum {enum_value} ({_enum_label(enum_value)}): "
            f"sm_notebook knows {_known_names()}. The model may "
            "come from a newer TensorFlow, or the file is corrupt.")
    return info


def _enum_label(enum_value: int) -> str:
    try:
        return DataType.Name(enum_value)
    except ValueError:
        return "not a DataType"


def dtype_to_numpy(enum_value) -> np.dtype:
    """The numpy dtype sm_notebook uses for a DataType (reference types as their base).

    Quantized types map to their storage ints; DT_STRING, DT_RESOURCE and
    DT_VARIANT to ``object``. Unknown enums and DT_INVALID raise SavedModelError.
    """
    return _lookup(enum_value).numpy


def numpy_to_dtype(np_dtype) -> int:
    """The DataType enum for a numpy dtype (str, bytes and object arrays are DT_STRING).

    TensorFlow's structured quantized dtypes (``tf.qint8.as_numpy_dtype``) map to
    the quantized enums; plain ints to the plain int enums.
    """
    try:
        dtype = np.dtype(np_dtype)
    except TypeError:
        raise SavedModelError(f"{np_dtype!r} is not a numpy dtype.") from None
    if dtype.names is not None and len(dtype.names) == 1 and dtype.names[0] in _QUANTIZED_FIELD_NAMES:
        return DataType.Value("DT_" + dtype.names[0].upper())
    if dtype.kind in "OSU":
        return DataType.Value("DT_STRING")
    if dtype.byteorder not in "=|":
        dtype = dtype.newbyteorder("=")
    enum = _ENUM_BY_NUMPY.get(dtype)
    if enum is None and type(dtype.type).__module__.startswith("ml_dtypes") or \
            enum is None and dtype.type.__module__.startswith("ml_dtypes"):
        _load_exotic()  # an ml_dtypes array: ml_dtypes is already imported
        enum = _ENUM_BY_NUMPY.get(dtype)
    if enum is None:
        raise SavedModelError(
            f"numpy dtype {dtype} has no TensorFlow equivalent. Convert the array to one of "
            f"{_known_names(memcpy_only=True)}, or to str/bytes.")
    return enum


def infer_dtype(array) -> int:
    """The DataType for an array: numpy_to_dtype, except that object arrays of
    ResourceHandleProto / VariantTensorDataProto are DT_RESOURCE / DT_VARIANT."""
    array = np.asarray(array) if not isinstance(array, np.ndarray) else array
    if array.dtype == object and array.size:
        first = array.reshape(-1)[0]
        if isinstance(first, tensor_pb2.ResourceHandleProto):
            return DataType.Value("DT_RESOURCE")
        if isinstance(first, tensor_pb2.VariantTensorDataProto):
            return DataType.Value("DT_VARIANT")
    return numpy_to_dtype(array.dtype)


def dtype_name(enum_value) -> str:
    """The DataType's proto name, e.g. ``DT_FLOAT`` or ``DT_FLOAT_REF``."""
    try:
        return DataType.Name(int(enum_value))
    except (ValueError, TypeError):
        raise SavedModelError(
            f"Unknown TensorFlow dtype enum {enum_value!r}: the model may come from a newer "
            "TensorFlow, or the file is corrupt.") from None


def short_dtype_name(enum_value) -> str:
    """``tf.DType.name`` style: ``float32``, ``bfloat16``, ``string``, ``float32_ref``."""
    info = _lookup(enum_value)
    return info.short_name + ("_ref" if int(enum_value) > REF_OFFSET else "")


def is_memcpy_dtype(enum_value) -> bool:
    """Whether TensorFlow stores the type as raw element bytes (DataTypeCanUseMemcpy)."""
    return _lookup(enum_value).memcpy


def _swap_unit(dtype: np.dtype) -> int:
    """Bytes per byte-swapped unit: complex numbers swap each component separately."""
    return dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize


def array_from_bytes(buffer, np_dtype, count: int, *, offset: int = 0,
                     big_endian: bool = False) -> np.ndarray:
    """A fresh 1-D array of ``count`` elements stored as raw bytes at ``buffer[offset:]``.

    Matches TensorFlow's memcpy storage (tensor_content, checkpoint data): the bytes
    are in the writer's byte order (little-endian unless ``big_endian``); bools are
    normalised to 0/1. The caller has already checked that the bytes exist.
    """
    dtype = np.dtype(np_dtype)
    raw = np.frombuffer(buffer, dtype=np.uint8, count=count * dtype.itemsize, offset=offset)
    if dtype == np.bool_:
        return raw != 0
    unit = _swap_unit(dtype)
    if unit > 1 and big_endian != (sys.byteorder == "big"):
        return raw.view(f"u{unit}").byteswap().view(dtype)
    return raw.copy().view(dtype)


def array_to_bytes(array: np.ndarray) -> bytes:
    """The raw little-endian element bytes TensorFlow stores for a memcpy-able array."""
    array = np.ascontiguousarray(array)
    unit = _swap_unit(array.dtype)
    if unit > 1 and (sys.byteorder == "big") != (array.dtype.byteorder == ">"):
        return array.reshape(-1).view(f"u{unit}").byteswap().tobytes()
    return array.tobytes()


# --- shapes -----------------------------------------------------------------

def shape_from_proto(shape_proto) -> tuple | None:
    """A TensorShapeProto as a tuple; None for unknown rank, None entries for dims of -1.

    Sizes below -1 are invalid in TensorFlow and raise SavedModelError.
    """
    if shape_proto.unknown_rank:
        return None
    dims = []
    for dim in shape_proto.dim:
        if dim.size == -1:
            dims.append(None)
        elif dim.size < -1:
            raise SavedModelError(f"Invalid tensor shape: dimension size {dim.size} (must be "
                                  ">= 0, or -1 for unknown).")
        else:
            dims.append(int(dim.size))
    return tuple(dims)


def shape_to_proto(shape) -> tensor_pb2.TensorShapeProto:
    """A tuple/list (None dims = unknown) or None (unknown rank) as a TensorShapeProto."""
    proto = tensor_pb2.TensorShapeProto()
    if shape is None:
        proto.unknown_rank = True
        return proto
    for size in shape:
        proto.dim.add().size = -1 if size is None else int(size)
    return proto


def num_elements(shape) -> int:
    """Product of a fully known shape (1 for a scalar)."""
    return math.prod(shape)


# --- TensorProto -> numpy ---------------------------------------------------

def _known_shape(proto) -> tuple:
    rank = len(proto.tensor_shape.dim)
    if rank > NUMPY_MAX_RANK:
        raise SavedModelError(
            f"TensorProto of {dtype_name(proto.dtype)} has rank {rank}; numpy arrays hold at "
            f"most {NUMPY_MAX_RANK} dimensions (TensorFlow at most 254), so sm_notebook cannot "
            "represent this constant.")
    shape = shape_from_proto(proto.tensor_shape)
    if shape is None or None in shape:
        raise SavedModelError(
            f"TensorProto of {dtype_name(proto.dtype)} has shape {shape_label(shape)}, which "
            "is not fully defined; a constant's shape must be fully known.")
    return shape


def element_bytes(enum_value) -> int:
    """Bytes one element of the DataType takes in sm_notebook's arrays (an estimate for
    object arrays: string, resource, variant)."""
    info = _lookup(enum_value)
    return _OBJECT_ELEMENT_BYTES.get(info.typed_field, info.numpy.itemsize)


def _stored_count(proto, info: _DTypeInfo) -> int:
    """How many elements the typed field holds (complex fields hold two numbers each)."""
    count = len(getattr(proto, info.typed_field))
    return count // 2 if info.typed_field in ("scomplex_val", "dcomplex_val") else count


def stored_element_count(proto) -> int:
    """How many elements a TensorProto's typed field holds (0 for an unknown dtype)."""
    info = _BY_ENUM.get(_base_enum(int(proto.dtype)))
    if info is None and _base_enum(int(proto.dtype)) in _EXOTIC_ENUMS:
        info = _lookup(proto.dtype)
    return 0 if info is None else _stored_count(proto, info)


def shape_label(shape) -> str:
    """``(2, ?, 3)`` / ``<unknown rank>`` for messages."""
    if shape is None:
        return "<unknown rank>"
    inner = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({inner}{',' if len(shape) == 1 else ''})"


def _typed_values(proto, info: _DTypeInfo, n: int) -> np.ndarray:
    """The typed field as a flat array of at most n elements in the target dtype."""
    field = info.typed_field
    if field == "half_val":
        bits = np.array(proto.half_val[:n], dtype=np.int64).astype(np.uint16)
        return bits.view(info.numpy)
    if field == "float8_val":
        return np.frombuffer(proto.float8_val[:n], dtype=np.uint8).view(info.numpy).copy()
    if field in ("scomplex_val", "dcomplex_val"):
        parts = getattr(proto, field)
        pairs = min(len(parts) // 2, n)
        part_dtype = np.float32 if field == "scomplex_val" else np.float64
        flat = np.array(parts[:2 * pairs], dtype=part_dtype)
        return flat.view(info.numpy) if pairs else np.zeros(0, info.numpy)
    if field in ("string_val", "resource_handle_val", "variant_val"):
        values = np.empty(min(len(getattr(proto, field)), n), dtype=object)
        for i, item in enumerate(getattr(proto, field)[:n]):
            if field == "string_val":
                values[i] = bytes(item)
            else:
                copy = type(item)()
                copy.CopyFrom(item)
                values[i] = copy
        return values
    raw = getattr(proto, field)[:n]
    if field in ("int_val", "int64_val", "uint32_val", "uint64_val"):
        # C++ static_casts the wider field to the element type: wrap like it does.
        wide = np.array(raw, dtype=np.uint64 if field == "uint64_val" else np.int64)
        return wide.astype(info.numpy)
    return np.array(raw, dtype=info.numpy)


def _empty_fill(info: _DTypeInfo):
    if info.typed_field == "string_val":
        return b""
    if info.typed_field == "resource_handle_val":
        return tensor_pb2.ResourceHandleProto()
    if info.typed_field == "variant_val":
        return tensor_pb2.VariantTensorDataProto()
    return 0


def _decode_varint32(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 35, 7):
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result > 0xFFFFFFFF:
                raise ValueError("varint32 overflow")
            return result, pos
    raise ValueError("varint32 longer than 5 bytes")


def decode_string_list(content: bytes, n: int) -> list[bytes]:
    """tensor_coding's DecodeStringList: n varint32 sizes, then the bytes, exactly."""
    sizes, pos = [], 0
    for _ in range(n):
        size, pos = _decode_varint32(content, pos)
        sizes.append(size)
    if sum(sizes) != len(content) - pos:
        raise ValueError("sizes do not add up to the content length")
    items = []
    for size in sizes:
        items.append(bytes(content[pos:pos + size]))
        pos += size
    return items


def _decode_content(proto, info: _DTypeInfo, n: int) -> np.ndarray:
    content = proto.tensor_content
    if info.memcpy:
        expected = n * info.numpy.itemsize
        if len(content) != expected:
            raise SavedModelError(
                f"TensorProto of {dtype_name(proto.dtype)} with {n} elements needs "
                f"{expected} bytes of tensor_content but has {len(content)}; the constant is "
                "corrupt.")
        return array_from_bytes(content, info.numpy, n)
    try:
        items = decode_string_list(content, n)
    except ValueError as exc:
        raise SavedModelError(
            f"TensorProto of {dtype_name(proto.dtype)}: tensor_content is not a valid list of "
            f"{n} length-prefixed elements ({exc}).") from None
    values = np.empty(n, dtype=object)
    for i, item in enumerate(items):
        if info.typed_field == "string_val":
            values[i] = item
        else:
            message = (tensor_pb2.ResourceHandleProto() if info.typed_field == "resource_handle_val"
                       else tensor_pb2.VariantTensorDataProto())
            try:
                message.ParseFromString(item)
            except Exception:  # noqa: BLE001 - DecodeError and friends
                raise SavedModelError(
                    f"TensorProto of {dtype_name(proto.dtype)}: element {i} of tensor_content "
                    "is not a valid message.") from None
            values[i] = message
    return values


def tensor_proto_to_numpy(proto, *, max_elements: int | None = DEFAULT_MAX_ELEMENTS,
                          max_fill_bytes: int | None = DEFAULT_MAX_FILL_BYTES) -> np.ndarray:
    """Decode a TensorProto the way TensorFlow's Tensor::FromProto does.

    Raises SavedModelError for unknown dtypes, shapes that are not fully known or of
    a rank numpy cannot hold, element counts above ``max_elements`` (None: no limit),
    tensor_content whose length disagrees with the shape, and a short typed field
    that would be repeated into more than ``max_fill_bytes`` (None: no limit).
    Nothing is allocated before those checks.
    """
    info = _lookup(proto.dtype)
    if proto.dtype == 0:
        raise SavedModelError("TensorProto has dtype DT_INVALID.")
    shape = _known_shape(proto)
    n = num_elements(shape)
    if max_elements is not None and n > max_elements:
        raise SavedModelError(
            f"TensorProto of {dtype_name(proto.dtype)} claims shape {shape_label(shape)} = {n} "
            f"elements, above the limit of {max_elements}; pass a larger max_elements if the "
            "constant is genuine.")
    nbytes = n * element_bytes(proto.dtype)
    if (max_fill_bytes is not None and nbytes > max_fill_bytes and not proto.tensor_content
            and _stored_count(proto, info) < n):
        raise SavedModelError(
            f"TensorProto of {dtype_name(proto.dtype)} holds {_stored_count(proto, info)} "
            f"value(s) but claims shape {shape_label(shape)}: repeating them would allocate "
            f"{nbytes:,} bytes, above the limit of {max_fill_bytes:,}; pass a larger "
            "max_fill_bytes if the constant is genuine.")
    try:
        return _decode(proto, info, shape, n)
    except MemoryError:
        raise SavedModelError(
            f"Out of memory decoding a TensorProto of {dtype_name(proto.dtype)} with shape "
            f"{shape_label(shape)} ({nbytes:,} bytes).") from None


def _decode(proto, info: _DTypeInfo, shape: tuple, n: int) -> np.ndarray:
    if n == 0:
        try:
            return np.zeros(shape, dtype=info.numpy)
        except ValueError:
            raise SavedModelError(f"TensorProto shape {shape_label(shape)} is too large for "
                                  "numpy, even empty.") from None
    if proto.tensor_content:
        return _decode_content(proto, info, n).reshape(shape)
    values = _typed_values(proto, info, n)
    if len(values) == n:
        return values.reshape(shape)
    out = np.empty(n, dtype=info.numpy)
    if len(values) == 0:
        fill = _empty_fill(info)
        if info.numpy == np.dtype(object):
            for i in range(n):
                out[i] = fill if isinstance(fill, bytes) else type(fill)()
        else:
            out[...] = np.zeros((), dtype=info.numpy)
    else:
        out[:len(values)] = values
        out[len(values):] = values[-1]
    return out.reshape(shape)


# --- numpy -> TensorProto ---------------------------------------------------

def _as_string_array(array: np.ndarray) -> np.ndarray:
    flat = np.empty(array.size, dtype=object)
    for i, item in enumerate(array.reshape(-1)):
        if isinstance(item, (bytes, bytearray, np.bytes_)):
            flat[i] = bytes(item)
        elif isinstance(item, (str, np.str_)):
            flat[i] = str(item).encode("utf-8")
        else:
            raise SavedModelError(
                f"A string tensor's elements must be bytes or str; found {type(item).__name__}.")
    return flat.reshape(array.shape)


def numpy_to_tensor_proto(array, dtype=None) -> tensor_pb2.TensorProto:
    """An array (or array-like) as a TensorProto that TensorFlow reads back identically.

    Numeric types go to tensor_content (little-endian), as Tensor::AsProtoTensorContent
    does; int4/uint4/int2/uint2 to int_val, as TensorFlow's make_tensor_proto does;
    strings to string_val (str encoded as UTF-8); resource/variant object arrays of
    their protos to resource_handle_val / variant_val. ``dtype`` (a DataType enum)
    picks the TensorFlow type, e.g. DT_QINT8 for an int8 array.
    """
    if dtype is not None:
        info = _lookup(dtype)
        enum = _base_enum(int(dtype))
    if not isinstance(array, np.ndarray):
        array = np.asarray(array, dtype=object if dtype is not None and not info.memcpy else None)
    if dtype is None:
        enum = infer_dtype(array)
        info = _lookup(enum)
    proto = tensor_pb2.TensorProto(dtype=enum)
    proto.tensor_shape.CopyFrom(shape_to_proto(array.shape))

    if info.typed_field == "string_val":
        proto.string_val.extend(_as_string_array(array).reshape(-1).tolist())
        return proto
    if info.typed_field in ("resource_handle_val", "variant_val"):
        expected = (tensor_pb2.ResourceHandleProto if info.typed_field == "resource_handle_val"
                    else tensor_pb2.VariantTensorDataProto)
        field = getattr(proto, info.typed_field)
        for item in array.reshape(-1):
            if not isinstance(item, expected):
                raise SavedModelError(f"A {info.short_name} tensor's elements must be "
                                      f"{expected.__name__} messages; found {type(item).__name__}.")
            field.add().CopyFrom(item)
        return proto

    if array.dtype != info.numpy:
        array = cast_to_dtype(array, enum)
    if enum in _PACKED_INT_ENUMS:
        proto.int_val.extend(array.reshape(-1).astype(np.int32).tolist())
        return proto
    proto.tensor_content = array_to_bytes(array)
    return proto


def cast_to_dtype(array, enum_value) -> np.ndarray:
    """``array`` as the numpy type of a memcpy-able DataType; integers must survive the
    cast unchanged, and TensorFlow's structured quantized dtypes are unwrapped."""
    info = _lookup(enum_value)
    array = np.asarray(array)
    if array.dtype == info.numpy:
        return array
    if not info.memcpy:
        raise SavedModelError(f"{info.short_name} is not a numeric type.")
    if array.dtype.kind in "OSU":
        raise SavedModelError(f"Cannot store a {array.dtype} array as {info.short_name}.")
    if array.dtype.names is not None:      # TensorFlow's structured quantized dtypes
        array = array.view(array.dtype[0])
    if not np.can_cast(array.dtype, info.numpy, "same_kind"):
        raise SavedModelError(f"Cannot store a {array.dtype} array as {info.short_name} without "
                              "losing its kind (e.g. float to int); cast it explicitly first.")
    try:
        converted = array.astype(info.numpy)
    except (TypeError, ValueError) as exc:
        raise SavedModelError(f"Cannot convert a {array.dtype} array to {info.short_name}: "
                              f"{exc}") from None
    if array.dtype.kind in "iu" and array.size and not np.array_equal(
            converted.astype(np.float64), array.astype(np.float64)):
        raise SavedModelError(f"Values of the {array.dtype} array do not fit in {info.short_name}.")
    return converted
