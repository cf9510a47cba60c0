"""A small reader of the tf.train.Example wire format, with TensorFlow's fast-parser rules.

Example { Features features = 1; }
Features { map<string, Feature> feature = 1; }
Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                        Int64List int64_list = 3; } }
BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
Int64List { repeated int64 value = 1 [packed]; }

The rules TensorFlow's parser follows (and so do we): a length that runs past
the enclosing message is cut to it; unknown Example fields are skipped but a
Features message holds only map entries, and an entry exactly one key and one
value; a repeated key keeps its last entry; a Feature's kind is its first
byte and only its first list is read, lazily, when the feature is asked for;
a packed list is read once (trailing bytes ignored), an unpacked one to the end.
Anything else raises `CorruptExampleError` (a SavedModelError).
"""
from __future__ import annotations

import numpy as np

from ..errors import SavedModelError

BYTES, FLOAT, INT64 = "bytes", "float", "int64"
_KIND_BY_TAG = {0x0A: BYTES, 0x12: FLOAT, 0x1A: INT64}
_LENGTH_1, _VARINT_1, _FIXED32_1 = 0x0A, 0x08, 0x0D   # tags of field 1 by wire type
_MASK32, _MASK64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF


class CorruptExampleError(SavedModelError):
    """A serialized tf.train.Example cannot be parsed."""


def _varint(buf: bytes, pos: int, limit: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if pos >= limit:
            raise CorruptExampleError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
    raise CorruptExampleError("varint longer than 10 bytes")


def _length(buf, pos, limit):
    value, pos = _varint(buf, pos, limit)
    return value & _MASK32, pos


def _string(buf: bytes, pos: int, limit: int) -> tuple[bytes, int]:
    size, pos = _length(buf, pos, limit)
    if pos + size > limit:
        raise CorruptExampleError("string runs past the end of its message")
    return bytes(buf[pos:pos + size]), pos + size


def _skip_field(buf: bytes, pos: int, limit: int) -> int:
    tag, pos = _varint(buf, pos, limit)
    wire = tag & 7
    if wire == 0:
        return _varint(buf, pos, limit)[1]
    if wire in (1, 5):
        size = 8 if wire == 1 else 4
        if pos + size > limit:
            raise CorruptExampleError("truncated fixed-width field")
        return pos + size
    if wire == 2:
        size, pos = _length(buf, pos, limit)
        return min(pos + size, limit)
    raise CorruptExampleError(f"unsupported wire type {wire}")


class Feature:
    """One feature's serialized bytes, decoded on demand."""
    __slots__ = ("raw",)

    def __init__(self, raw: bytes = b""):
        self.raw = raw

    @property
    def kind(self) -> str | None:
        """'bytes', 'float', 'int64', or None for a Feature with no list."""
        if not self.raw:
            return None
        kind = _KIND_BY_TAG.get(self.raw[0])
        if kind is None:
            raise CorruptExampleError("unsupported datatype")
        return kind

    def values(self):
        """float32 / int64 numpy arrays, or a list of bytes."""
        kind, raw = self.kind, self.raw
        if kind is None:
            return []
        size, pos = _length(raw, 1, len(raw))
        limit = min(pos + size, len(raw))
        if kind == BYTES:
            return _bytes_list(raw, pos, limit)
        if kind == FLOAT:
            return _float_list(raw, pos, limit)
        return _int64_list(raw, pos, limit)


def _bytes_list(raw, pos, limit):
    out = []
    while pos < limit:
        if raw[pos] != _LENGTH_1:
            raise CorruptExampleError("BytesList holds a field other than value")
        value, pos = _string(raw, pos + 1, limit)
        out.append(value)
    return out


def _float_list(raw, pos, limit):
    if pos >= limit:
        return np.zeros(0, np.float32)
    if raw[pos] == _LENGTH_1:                 # packed: one run, trailing bytes ignored
        size, pos = _length(raw, pos + 1, limit)
        count = size // 4
        if pos + 4 * count > min(pos + size, limit):
            raise CorruptExampleError("packed FloatList runs past its message")
        return np.frombuffer(raw, "<f4", count, pos).astype(np.float32)
    if raw[pos] != _FIXED32_1:
        raise CorruptExampleError("FloatList holds a field other than value")
    chunks = []
    while pos < limit:
        if raw[pos] != _FIXED32_1 or pos + 5 > limit:
            raise CorruptExampleError("malformed unpacked FloatList")
        chunks.append(raw[pos + 1:pos + 5])
        pos += 5
    return np.frombuffer(b"".join(chunks), "<f4").astype(np.float32)


def _int64_list(raw, pos, limit):
    out = []
    if pos >= limit:
        return np.zeros(0, np.int64)
    if raw[pos] == _LENGTH_1:                 # packed: one run, trailing bytes ignored
        size, pos = _length(raw, pos + 1, limit)
        end = min(pos + size, limit)
        while pos < end:
            value, pos = _varint(raw, pos, end)
            out.append(value)
    elif raw[pos] == _VARINT_1:
        while pos < limit:
            if raw[pos] != _VARINT_1:
                raise CorruptExampleError("malformed unpacked Int64List")
            value, pos = _varint(raw, pos + 1, limit)
            out.append(value)
    else:
        raise CorruptExampleError("Int64List holds a field other than value")
    return np.asarray(out, dtype=np.uint64).view(np.int64)


def _map_entry(buf, pos, limit) -> tuple[bytes, Feature, int]:
    size, pos = _length(buf, pos, limit)
    end = min(pos + size, limit)
    key, value = b"", b""
    for _ in range(2):
        if pos >= end:
            raise CorruptExampleError("map entry without both key and value")
        tag = buf[pos]
        if tag == 0x0A:
            key, pos = _string(buf, pos + 1, end)
        elif tag == 0x12:
            value, pos = _string(buf, pos + 1, end)
        else:
            raise CorruptExampleError("map entry holds a field other than key and value")
    if pos != end:
        raise CorruptExampleError("map entry holds more than a key and a value")
    return key, Feature(value), end


def parse_example(buf: bytes) -> dict[bytes, Feature]:
    """The features of one serialized Example, by key (a repeated key keeps its last entry)."""
    features: dict[bytes, Feature] = {}
    pos, end = 0, len(buf)
    while pos < end:
        if buf[pos] != 0x0A:
            pos = _skip_field(buf, pos, end)
            continue
        size, pos = _length(buf, pos + 1, end)
        limit = min(pos + size, end)
        while pos < limit:
            if buf[pos] != 0x0A:
                raise CorruptExampleError("Features holds a field other than its map")
            key, feature, pos = _map_entry(buf, pos + 1, limit)
            features[key] = feature
        pos = limit
    return features


# --- writing ------------------------------------------------------------------

def _length_delimited(field_tag: int, payload: bytes) -> bytes:
    from .sstable import encode_varint
    return bytes([field_tag]) + encode_varint(len(payload)) + payload


def serialize_example(features: dict) -> bytes:
    """One tf.train.Example from ``{name: list}``, typed by the list's first item as
    saved_model_cli's ``--input_examples`` types it: float -> FloatList, int -> Int64List,
    str (UTF-8) or bytes -> BytesList. Lists are written packed, keys in the given order."""
    from .sstable import encode_varint

    entries = []
    for name, values in features.items():
        if not isinstance(name, str) or not isinstance(values, list) or not values:
            raise SavedModelError(f"Example feature {name!r}: expected a name and a non-empty list, "
                                  f"got {values!r}.")
        first = values[0]
        try:
            if isinstance(first, float):
                payload = np.asarray(values, "<f4").tobytes()
                kind = 0x12
            elif isinstance(first, (str, bytes)):
                payload = b"".join(_length_delimited(_LENGTH_1, v.encode() if isinstance(v, str) else v)
                                   for v in values)
                kind = 0x0A
            elif isinstance(first, int):
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                    raise TypeError("an Int64List holds integers only (not booleans)")
                payload = b"".join(encode_varint(int(v) & _MASK64) for v in values)
                kind = 0x1A
            else:
                raise TypeError(f"{type(first).__name__} is not float, int, str or bytes")
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise SavedModelError(f"Example feature {name!r}: cannot write {values!r} ({exc}).") from None
        if kind != 0x0A:
            payload = _length_delimited(_LENGTH_1, payload)
        feature = _length_delimited(kind, payload)
        entries.append(_length_delimited(_LENGTH_1, _length_delimited(0x0A, name.encode())
                                         + _length_delimited(0x12, feature)))
    return _length_delimited(0x0A, b"".join(entries)) if entries else b""
