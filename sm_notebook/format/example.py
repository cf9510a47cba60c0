"""A small reader of the tf.train.Example protobuf wire format.

Example { Features features = 1; }
Features { map<string, Feature> feature = 1; }
Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
Int64List { repeated int64 value = 1 [packed]; }

Only what parsing needs: unknown fields are skipped; anything malformed
raises `CorruptExampleError` (a SavedModelError). As in TensorFlow's fast
parser, a repeated map key keeps its last entry and a Feature its first list.
"""
from __future__ import annotations

import numpy as np

from ..errors import SavedModelError

BYTES, FLOAT, INT64 = "bytes", "float", "int64"
_KINDS = {1: BYTES, 2: FLOAT, 3: INT64}
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class CorruptExampleError(SavedModelError):
    """A serialized tf.train.Example cannot be parsed."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if pos >= len(buf):
            raise CorruptExampleError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise CorruptExampleError("varint longer than 10 bytes")


def fields(buf: bytes):
    """Yield (field number, wire type, value) for each field of one message.

    ``value`` is an int for varints, bytes for length-delimited and fixed fields.
    """
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise CorruptExampleError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > end:
                raise CorruptExampleError("truncated fixed-width field")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == _LENGTH:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise CorruptExampleError("length-delimited field runs past the end")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise CorruptExampleError(f"unsupported wire type {wire}")
        yield number, wire, value


def _int64_list(buf: bytes, out: list):
    for number, wire, value in fields(buf):
        if number != 1:
            continue
        if wire == _VARINT:
            out.append(value)
        elif wire == _LENGTH:
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                out.append(item)
        else:
            raise CorruptExampleError("Int64List.value has the wrong wire type")


def _float_list(buf: bytes, out: list):
    for number, wire, value in fields(buf):
        if number != 1:
            continue
        if wire == _FIXED32:
            out.append(value)
        elif wire == _LENGTH:
            if len(value) % 4:
                raise CorruptExampleError("packed FloatList.value is not a multiple of 4 bytes")
            out.append(value)
        else:
            raise CorruptExampleError("FloatList.value has the wrong wire type")


def _bytes_list(buf: bytes, out: list):
    for number, wire, value in fields(buf):
        if number != 1:
            continue
        if wire != _LENGTH:
            raise CorruptExampleError("BytesList.value has the wrong wire type")
        out.append(bytes(value))


_READERS = {BYTES: _bytes_list, FLOAT: _float_list, INT64: _int64_list}


class Feature:
    """One parsed Feature: ``kind`` is 'bytes', 'float', 'int64', or None when unset."""
    __slots__ = ("kind", "_raw")

    def __init__(self):
        self.kind = None
        self._raw: list = []

    def read(self, buf: bytes):
        """Take the first list field of a serialized Feature, as TensorFlow's fast parser does."""
        for number, wire, value in fields(buf):
            kind = _KINDS.get(number)
            if kind is None:
                continue
            if wire != _LENGTH:
                raise CorruptExampleError("Feature.kind has the wrong wire type")
            self.kind, self._raw = kind, []
            _READERS[kind](value, self._raw)
            return

    def values(self) -> np.ndarray | list:
        """The feature's values: float32 / int64 numpy arrays, or a list of bytes."""
        if self.kind == FLOAT:
            return np.frombuffer(b"".join(self._raw), dtype="<f4").astype(np.float32)
        if self.kind == INT64:
            return np.asarray(self._raw, dtype=np.uint64).view(np.int64)
        return list(self._raw)

    def __len__(self):
        if self.kind == FLOAT:
            return sum(len(r) for r in self._raw) // 4
        return len(self._raw)


def parse_example(buf: bytes) -> dict[bytes, Feature]:
    """The features of one serialized Example, by key (a later map entry wins)."""
    features: dict[bytes, Feature] = {}
    for number, wire, value in fields(buf):
        if number != 1:
            continue
        if wire != _LENGTH:
            raise CorruptExampleError("Example.features has the wrong wire type")
        for entry_number, entry_wire, entry in fields(value):
            if entry_number != 1:
                continue
            if entry_wire != _LENGTH:
                raise CorruptExampleError("Features.feature has the wrong wire type")
            key, feature = b"", Feature()
            for part_number, part_wire, part in fields(entry):
                if part_number == 1 and part_wire == _LENGTH:
                    key = bytes(part)
                elif part_number == 2 and part_wire == _LENGTH:
                    feature = Feature()
                    feature.read(part)
                elif part_number in (1, 2):
                    raise CorruptExampleError("map entry field has the wrong wire type")
            features[key] = feature
    return features
