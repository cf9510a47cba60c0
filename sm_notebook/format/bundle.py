"""TensorFlow's TensorBundle checkpoint (``<prefix>.index`` + ``<prefix>.data-*``), without TF.

Layout as tensorflow/core/util/tensor_bundle/tensor_bundle.cc writes it:

* ``<prefix>.index`` is a table (see sstable.py). The empty key holds a
  BundleHeaderProto (num_shards, endianness, version); every other key a
  BundleEntryProto (dtype, shape, shard_id, offset, size, masked crc32c, slices).
* ``<prefix>.data-%05d-of-%05d`` shards hold the values. Memcpy-able types are
  raw element bytes and the CRC32C covers them. A string tensor is the varint64
  lengths of all elements, a masked CRC32C of those lengths (each hashed as a
  uint32, or uint64 when above 2^32-1), then the bytes; the entry CRC extends over
  the lengths, the stored length checksum and the bytes. A variant tensor is, per
  element, a varint64 length, a serialized VariantTensorDataProto and the masked
  running CRC (lengths hashed as uint64).
* A partitioned variable's full entry lists ``slices``; each slice is stored under
  a key built by checkpoint::EncodeTensorNameSlice (OrderedCode).

The reader loads only the index at open and maps shards lazily; values are
copied out of the mapping and CRC-checked on read. The writer streams values to
the data file and writes the index at finish(), both under temporary names.
"""
from __future__ import annotations

import difflib
import math
import mmap
import os
import shutil
import struct
import sys
import uuid
from collections import deque

import google_crc32c
import numpy as np
from google.protobuf import message as _message

from ..errors import CorruptFileError, SavedModelError
from .._proto import saved_model_pb2, tensor_pb2, trackable_object_graph_pb2
from . import sstable
from .diskfiles import MAX_PROTO_BYTES, open_regular, read_regular
from .sstable import mask_crc, unmask_crc
from .tensors import (
    NUMPY_MAX_RANK, array_from_bytes, array_to_bytes, cast_to_dtype, dtype_name, dtype_to_numpy,
    infer_dtype, is_memcpy_dtype, shape_label, shape_to_proto,
)

HEADER_KEY = ""
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
#: kTensorBundleVersion; bundles whose min_consumer exceeds it need a newer reader.
BUNDLE_VERSION = 1
#: TensorShape's rank limit.
MAX_RANK = 254
_MAX_INT64 = (1 << 63) - 1

DT_STRING = tensor_pb2.DataType.Value("DT_STRING")
DT_VARIANT = tensor_pb2.DataType.Value("DT_VARIANT")
_SLICE_KEY_PREFIX = b"\x00"     # OrderedCode of the number 0 starts every slice key
_COPY_CHUNK = 8 << 20


def index_filename(prefix) -> str:
    """``<prefix>.index`` (MetaFilename)."""
    return f"{prefix}.index"


#: Most data shards a checkpoint may declare (every shard is a file; TensorFlow names them
#: with five digits, and real checkpoints have one per saving device).
MAX_SHARDS = 1 << 16


def data_filename(prefix, shard_id: int, num_shards: int) -> str:
    """``<prefix>.data-00000-of-00001`` (DataFilename)."""
    return f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"


def _crc(data) -> int:
    """CRC32C of bytes or a numpy array (google_crc32c refuses memoryviews)."""
    return google_crc32c.value(data)


def _extend(crc: int, data) -> int:
    return google_crc32c.extend(crc, data)


def _key_text(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


# --- OrderedCode, for partitioned-variable slice keys -------------------------

def _read_ordered_number(key: bytes, pos: int) -> tuple[int, int]:
    """OrderedCode::ReadNumIncreasing: a length byte, then big-endian bytes."""
    length = key[pos]
    if length > 8 or pos + 1 + length > len(key):
        raise ValueError("bad ordered number")
    return int.from_bytes(key[pos + 1:pos + 1 + length], "big"), pos + 1 + length


def _read_ordered_string(key: bytes, pos: int) -> tuple[bytes, int]:
    """OrderedCode::ReadString: \\0\\1 ends it, \\0\\xff is \\0 and \\xff\\0 is \\xff."""
    out = bytearray()
    while pos + 1 < len(key):
        byte = key[pos]
        if byte == 0x00:
            following = key[pos + 1]
            if following == 0x01:
                return bytes(out), pos + 2
            if following != 0xFF:
                raise ValueError("bad escape")
            out.append(0)
            pos += 2
        elif byte == 0xFF:
            if key[pos + 1] != 0x00:
                raise ValueError("bad escape")
            out.append(0xFF)
            pos += 2
        else:
            out.append(byte)
            pos += 1
    raise ValueError("unterminated string")


def _read_ordered_signed(key: bytes, pos: int) -> tuple[int, int]:
    """OrderedCode::ReadSignedNumIncreasing: the count of leading bits equal to the
    sign bit is the length; the remaining 7*length-1 bits are two's complement."""
    if pos >= len(key):
        raise ValueError("truncated signed number")
    negative = not key[pos] & 0x80
    head = key[pos:pos + 2].ljust(2, b"\x00" if not negative else b"\xff")
    bits = int.from_bytes(head, "big") ^ (0xFFFF if negative else 0)
    length = 0
    while length < 16 and bits & (0x8000 >> length):
        length += 1
    if length == 0 or length > 10 or pos + length > len(key):
        raise ValueError("bad signed number")
    raw = int.from_bytes(key[pos:pos + length], "big")
    payload_bits = 7 * length - 1
    value = raw & ((1 << payload_bits) - 1)
    if negative:
        value -= 1 << payload_bits
    return value, pos + length


def decode_slice_key(key: bytes) -> tuple[str, tuple[tuple[int, int], ...]]:
    """checkpoint::DecodeTensorNameSlice: (tensor name, ((start, length), ...)), where a
    full extent is (0, -1). Raises ValueError when the key is not a slice key."""
    number, pos = _read_ordered_number(key, 0)
    if number != 0:
        raise ValueError("slice keys start with 0")
    name, pos = _read_ordered_string(key, pos)
    rank, pos = _read_ordered_number(key, pos)
    if rank == 0 or rank > MAX_RANK:
        raise ValueError("bad slice rank")
    extents = []
    for _ in range(rank):
        start, pos = _read_ordered_signed(key, pos)
        length, pos = _read_ordered_signed(key, pos)
        extents.append((0, -1) if length < 0 else (start, length))
    return _key_text(name), tuple(extents)


def _slice_proto_extents(slice_proto) -> tuple[tuple[int, int], ...]:
    return tuple((extent.start, extent.length) if extent.HasField("length") else (0, -1)
                 for extent in slice_proto.extent)


# --- reading ----------------------------------------------------------------

def _check_numpy_rank(key, shape):
    if len(shape) > NUMPY_MAX_RANK:
        raise SavedModelError(f"Checkpoint entry {key!r} has rank {len(shape)}; TensorFlow allows "
                              f"up to {MAX_RANK} but numpy arrays hold at most {NUMPY_MAX_RANK} "
                              "dimensions, so sm_notebook cannot read it.")


class BundleReader:
    """A TensorBundle opened for reading: the index is parsed now, values on demand.

    ``prefix`` is the path without suffixes, e.g. ``<export>/variables/variables``.
    With ``root`` (the export directory), no file is read through a link that leaves
    it. Only regular files are read (a named pipe would block for ever). Faults in
    the files raise CorruptFileError naming the file; requests for keys that do not
    exist raise SavedModelError. Use as a context manager, or close().
    """

    def __init__(self, prefix, root=None):
        self.prefix = str(prefix)
        self.root = root
        self.index_path = index_filename(self.prefix)
        if not os.path.lexists(self.index_path):
            raise CorruptFileError(self.index_path, "the checkpoint index does not exist; "
                                   "the variables directory is incomplete.")
        index_bytes = read_regular(self.index_path, root=root, max_bytes=MAX_PROTO_BYTES,
                                   what="checkpoint index")
        table = sstable.read_table(index_bytes, self.index_path)
        if not table or table[0][0] != _key_bytes(HEADER_KEY):
            raise CorruptFileError(self.index_path, "the index has no header entry (empty key).")
        self.header = saved_model_pb2.BundleHeaderProto()
        self._parse(self.header, table[0][1], "the header entry")
        self._check_header()
        self._big_endian = self.header.endianness == saved_model_pb2.BundleHeaderProto.BIG
        self._raw = {}
        self._slice_raw = {}
        for key, value in table[1:]:
            if key.startswith(_SLICE_KEY_PREFIX):
                self._slice_raw[key] = value
            else:
                self._raw[_key_text(key)] = value
        self._keys = list(self._raw)
        self._entries = {}
        self._slice_keys = None
        self._shards = {}
        self._object_graph = None

    # context management
    def close(self):
        """Unmap and close every shard opened so far."""
        shards, self._shards = self._shards, {}
        for mapped, handle in shards.values():
            if isinstance(mapped, mmap.mmap):
                mapped.close()
            if handle is not None:
                handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"BundleReader({self.prefix!r}, {len(self._keys)} entries)"

    # index
    def _parse(self, message, data: bytes, what: str):
        try:
            message.ParseFromString(data)
        except (_message.DecodeError, RecursionError, ValueError):
            raise CorruptFileError(self.index_path, f"{what} is not a valid "
                                   f"{type(message).__name__}.") from None

    def _check_header(self):
        header = self.header
        version = header.version
        if version.producer < 0:
            raise CorruptFileError(self.index_path, f"header has producer version "
                                   f"{version.producer} (below 0).")
        if version.min_consumer > BUNDLE_VERSION or BUNDLE_VERSION in version.bad_consumers:
            raise SavedModelError(
                f"{self.index_path}: the checkpoint needs a reader of version "
                f">= {version.min_consumer} (this one is {BUNDLE_VERSION}); it was written "
                "by a newer TensorFlow. Re-save it with an older TensorFlow.")
        if header.endianness not in (0, 1):
            raise CorruptFileError(self.index_path, f"header endianness {header.endianness} "
                                   "is neither LITTLE nor BIG.")
        if not 0 <= header.num_shards <= MAX_SHARDS:
            raise CorruptFileError(self.index_path, f"header declares {header.num_shards:,} data "
                                   f"shards; a checkpoint has 0 to {MAX_SHARDS:,}.")

    def keys(self) -> list[str]:
        """Tensor names in index order (bytewise sorted), without the header and slice keys."""
        return list(self._keys)

    def __contains__(self, key) -> bool:
        return key in self._raw

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return iter(self.keys())

    def _missing(self, key):
        close = difflib.get_close_matches(str(key), self._keys, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        return SavedModelError(f"No tensor {key!r} in the checkpoint {self.prefix!r} "
                               f"({len(self._keys)} entries).{hint}")

    def entry(self, key: str) -> saved_model_pb2.BundleEntryProto:
        """The BundleEntryProto of ``key`` (a copy), validated: known dtype, valid shape."""
        if key not in self._raw:
            raise self._missing(key)
        copy = saved_model_pb2.BundleEntryProto()
        copy.CopyFrom(self._entry(key))
        return copy

    def _entry(self, key: str, raw: bytes | None = None):
        cached = self._entries.get(key)
        if cached is not None:
            return cached[0]
        entry = saved_model_pb2.BundleEntryProto()
        self._parse(entry, self._raw[key] if raw is None else raw, f"the entry of {key!r}")
        try:
            dtype_to_numpy(entry.dtype)
        except SavedModelError as exc:
            raise CorruptFileError(self.index_path, f"entry {key!r}: {exc}") from None
        shape = self._entry_shape(key, entry)
        if math.prod(shape) > _MAX_INT64:
            raise CorruptFileError(self.index_path, f"entry {key!r} has shape "
                                   f"{shape_label(shape)}, too many elements for TensorFlow.")
        if raw is None:
            self._entries[key] = (entry, shape)
        return entry

    def _entry_shape(self, key, entry) -> tuple:
        cached = self._entries.get(key)
        if cached is not None and cached[0] is entry:
            return cached[1]
        shape = entry.shape
        sizes = tuple(d.size for d in shape.dim)
        if shape.unknown_rank or len(sizes) > MAX_RANK or (sizes and min(sizes) < 0):
            raise CorruptFileError(self.index_path, f"entry {key!r} has an invalid shape "
                                   f"({'unknown rank' if shape.unknown_rank else list(sizes)}).")
        return sizes

    def dtype(self, key: str) -> np.dtype:
        """The numpy dtype of ``key``'s values (see tensors.dtype_to_numpy)."""
        if key not in self._raw:
            raise self._missing(key)
        return dtype_to_numpy(self._entry(key).dtype)

    def dtype_enum(self, key: str) -> int:
        """The TensorFlow DataType enum of ``key``."""
        if key not in self._raw:
            raise self._missing(key)
        return self._entry(key).dtype

    def shape(self, key: str) -> tuple:
        """The full shape of ``key`` as a tuple of ints."""
        if key not in self._raw:
            raise self._missing(key)
        self._entry(key)
        return self._entries[key][1]

    # data
    def _shard(self, shard_id: int, key: str):
        """(mapping, file size) of a data shard; the mapping is an mmap or b'' when empty."""
        num_shards = self.header.num_shards
        if not 0 <= shard_id < num_shards:
            raise CorruptFileError(self.index_path, f"entry {key!r} is in shard {shard_id}, but "
                                   f"the header declares {num_shards} shard(s).")
        opened = self._shards.get(shard_id)
        if opened is None:
            path = data_filename(self.prefix, shard_id, num_shards)
            if not os.path.lexists(path):
                raise CorruptFileError(path, f"the data shard holding {key!r} does not exist; "
                                       "the variables directory is incomplete.")
            handle = os.fdopen(open_regular(path, root=self.root), "rb")
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                handle.close()
                opened = (b"", None)
            else:
                opened = (mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ), handle)
            self._shards[shard_id] = opened
        return opened[0]

    def check_shards(self):
        """Open every data shard the header declares (regular files inside ``root``
        only), so that a later reader of the same prefix finds nothing hostile."""
        for shard_id in range(self.header.num_shards):
            self._shard(shard_id, f"(shard {shard_id})")

    def _shard_path(self, entry) -> str:
        return data_filename(self.prefix, entry.shard_id, self.header.num_shards)

    def _data_region(self, key: str, entry):
        """The shard mapping after checking [offset, offset + size) lies inside it."""
        data = self._shard(entry.shard_id, key)
        if entry.offset + entry.size > len(data):
            raise CorruptFileError(self._shard_path(entry), f"entry {key!r} spans bytes "
                                   f"[{entry.offset}, {entry.offset + entry.size}) but the "
                                   f"shard has {len(data)} bytes; it is truncated or the "
                                   "index belongs to another checkpoint.")
        return data

    def _check_extent(self, key: str, entry):
        """Cheap checks that reading the entry can succeed, done before any allocation."""
        if entry.offset < 0 or entry.size < 0:
            raise CorruptFileError(self.index_path, f"entry {key!r} has a negative offset "
                                   f"({entry.offset}) or size ({entry.size}).")
        if entry.slices:
            raise CorruptFileError(self.index_path, f"slice entry {key!r} is itself sliced.")
        _check_numpy_rank(key, self._entry_shape(key, entry))
        count = math.prod(self._entry_shape(key, entry))
        np_dtype = dtype_to_numpy(entry.dtype)
        if is_memcpy_dtype(entry.dtype):
            expected = count * np_dtype.itemsize
            if entry.size != expected:
                raise CorruptFileError(self.index_path, f"entry {key!r} ({dtype_name(entry.dtype)} "
                                       f"{shape_label(self._entry_shape(key, entry))}) records "
                                       f"{entry.size} bytes but needs {expected}.")
        elif entry.dtype in (DT_STRING, DT_VARIANT):
            if entry.size < count:
                raise CorruptFileError(self.index_path, f"entry {key!r} holds {count} "
                                       f"{dtype_name(entry.dtype)} elements in only {entry.size} bytes.")
        else:
            raise CorruptFileError(self.index_path, f"entry {key!r} has dtype "
                                   f"{dtype_name(entry.dtype)}, which checkpoints cannot hold.")
        self._data_region(key, entry)
        return count

    def read(self, key: str) -> np.ndarray:
        """The value of ``key`` as a fresh numpy array, CRC32C-checked.

        Strings come back as object arrays of bytes, variants as object arrays of
        VariantTensorDataProto; partitioned variables are reassembled from their slices.
        """
        if key not in self._raw:
            raise self._missing(key)
        entry = self._entry(key)
        if entry.slices:
            return self._read_sliced(key, entry)
        self._check_extent(key, entry)
        return self._read_value(key, entry)

    def _read_value(self, key: str, entry) -> np.ndarray:
        shape = self._entry_shape(key, entry)
        count = math.prod(shape)
        data = self._data_region(key, entry)
        if entry.dtype == DT_STRING:
            flat = self._read_strings(key, entry, data, count)
        elif entry.dtype == DT_VARIANT:
            flat = self._read_variants(key, entry, data, count)
        else:
            region = np.frombuffer(data, np.uint8, count=entry.size, offset=entry.offset) \
                if entry.size else np.zeros(0, np.uint8)
            actual = _crc(region)
            del region
            self._check_crc(key, entry, actual)
            flat = array_from_bytes(data, dtype_to_numpy(entry.dtype), count, offset=entry.offset,
                                    big_endian=self._big_endian) if count else \
                np.zeros(0, dtype_to_numpy(entry.dtype))
        return flat.reshape(shape)

    def _check_crc(self, key, entry, actual: int):
        if unmask_crc(entry.crc32c) != actual:
            raise CorruptFileError(self._shard_path(entry), f"checksum mismatch for {key!r} "
                                   f"(stored {unmask_crc(entry.crc32c):08x}, computed "
                                   f"{actual:08x}); the data file is corrupt.")

    def _read_strings(self, key, entry, data, count: int) -> np.ndarray:
        values = np.empty(count, dtype=object)
        if entry.size == 0:         # ReadStringTensor returns at once for size 0
            values[:] = [b""] * count
            self._check_crc(key, entry, 0)
            return values
        path = self._shard_path(entry)
        start, end = entry.offset, entry.offset + entry.size
        block = bytes(data[start:end])
        order = ">" if self._big_endian else "<"
        lengths = []
        pos = 0
        try:
            for _ in range(count):
                length, pos = sstable.decode_varint(block, pos, len(block))
                lengths.append(length)
        except sstable._Corrupt:
            raise CorruptFileError(path, f"string lengths of {key!r} run past its "
                                   f"{entry.size} bytes.") from None
        hashed = b"".join(struct.pack(order + ("I" if n <= 0xFFFFFFFF else "Q"), n) for n in lengths)
        crc = _crc(hashed)
        if pos + 4 > len(block):
            raise CorruptFileError(path, f"string entry {key!r} is missing its length checksum.")
        stored = block[pos:pos + 4]
        if unmask_crc(struct.unpack(order + "I", stored)[0]) != crc:
            raise CorruptFileError(path, f"length checksum mismatch for string entry {key!r}.")
        crc = _extend(crc, stored)
        pos += 4
        if sum(lengths) != len(block) - pos:
            raise CorruptFileError(path, f"string entry {key!r}: lengths add up to "
                                   f"{sum(lengths)} bytes but {len(block) - pos} remain.")
        crc = _extend(crc, block[pos:])
        self._check_crc(key, entry, crc)
        for i, length in enumerate(lengths):
            values[i] = block[pos:pos + length]
            pos += length
        return values

    def _read_variants(self, key, entry, data, count: int) -> np.ndarray:
        path = self._shard_path(entry)
        if self._big_endian:
            raise SavedModelError(f"{path}: {key!r} is a variant tensor in a big-endian "
                                  "checkpoint; TensorFlow cannot byte-swap variants either.")
        values = np.empty(count, dtype=object)
        block = bytes(data[entry.offset:entry.offset + entry.size])
        pos, crc = 0, 0
        for i in range(count):
            try:
                length, pos = sstable.decode_varint(block, pos, len(block))
            except sstable._Corrupt:
                raise CorruptFileError(path, f"variant {i} of {key!r} is truncated.") from None
            if pos + length + 4 > len(block):
                raise CorruptFileError(path, f"variant {i} of {key!r} runs past the entry.")
            serialized = block[pos:pos + length]
            crc = _extend(_extend(crc, struct.pack("<Q", length)), serialized)
            stored = block[pos + length:pos + length + 4]
            if unmask_crc(struct.unpack("<I", stored)[0]) != crc:
                raise CorruptFileError(path, f"checksum mismatch after variant {i} of {key!r}.")
            crc = _extend(crc, stored)
            pos += length + 4
            proto = tensor_pb2.VariantTensorDataProto()
            try:
                proto.ParseFromString(serialized)
            except (_message.DecodeError, RecursionError, ValueError):
                raise CorruptFileError(path, f"variant {i} of {key!r} is not a valid "
                                       "VariantTensorDataProto.") from None
            values[i] = proto
        if pos != len(block):
            raise CorruptFileError(path, f"variant entry {key!r} has {len(block) - pos} stray bytes.")
        self._check_crc(key, entry, crc)
        return values

    # partitioned variables
    def _slice_entries(self):
        if self._slice_keys is None:
            self._slice_keys = {}
            for key, value in self._slice_raw.items():
                try:
                    self._slice_keys[decode_slice_key(key)] = (key, value)
                except (ValueError, IndexError):
                    continue
        return self._slice_keys

    def _read_sliced(self, key: str, full) -> np.ndarray:
        shape = self._entry_shape(key, full)
        _check_numpy_rank(key, shape)
        pieces, seen = [], set()
        for slice_proto in full.slices:
            extents = _slice_proto_extents(slice_proto)
            if extents in seen:
                raise CorruptFileError(self.index_path, f"the slice {extents} of {key!r} is "
                                       "listed twice.")
            seen.add(extents)
            if len(extents) != len(shape):
                raise CorruptFileError(self.index_path, f"a slice of {key!r} has rank "
                                       f"{len(extents)}, the tensor {len(shape)}.")
            bounds = []
            for (start, length), size in zip(extents, shape):
                stop = size if length < 0 else start + length
                if start < 0 or stop > size or start > stop or (length < 0 and start != 0):
                    raise CorruptFileError(self.index_path, f"slice {extents} of {key!r} lies "
                                           f"outside its shape {shape_label(shape)}.")
                bounds.append((start, stop))
            found = self._slice_entries().get((key, extents))
            if found is None:
                raise CorruptFileError(self.index_path, f"the slice {extents} of {key!r} is listed "
                                       "but its entry is missing.")
            slice_key = f"{key}{list(extents)}"
            entry = saved_model_pb2.BundleEntryProto()
            self._parse(entry, found[1], f"the entry of slice {extents} of {key!r}")
            if entry.dtype != full.dtype:
                raise CorruptFileError(self.index_path, f"slice {extents} of {key!r} is "
                                       f"{dtype_name(entry.dtype)}, the tensor {dtype_name(full.dtype)}.")
            expected_shape = tuple(stop - start for start, stop in bounds)
            if self._entry_shape(slice_key, entry) != expected_shape:
                raise CorruptFileError(self.index_path, f"slice {extents} of {key!r} stores shape "
                                       f"{shape_label(self._entry_shape(slice_key, entry))}, "
                                       f"expected {shape_label(expected_shape)}.")
            self._check_extent(slice_key, entry)
            pieces.append((bounds, slice_key, entry))
        self._check_disjoint_regions(key, [entry for _, _, entry in pieces])
        covered_total = sum(math.prod(stop - start for start, stop in b) for b, _, _ in pieces)
        if covered_total < math.prod(shape):
            raise CorruptFileError(self.index_path, f"the slices of {key!r} cover "
                                   f"{covered_total} of {math.prod(shape)} elements.")
        out = np.empty(shape, dtype=dtype_to_numpy(full.dtype))
        covered = np.zeros(shape, dtype=bool)
        for bounds, slice_key, entry in pieces:
            index = tuple(slice(start, stop) for start, stop in bounds)
            out[index] = self._read_value(slice_key, entry)
            covered[index] = True
        if not covered.all():
            raise CorruptFileError(self.index_path, f"the slices of {key!r} leave "
                                   f"{int((~covered).sum())} elements uncovered.")
        return out

    def _check_disjoint_regions(self, key, entries):
        """Slices stored in overlapping bytes could claim a tensor far larger than the
        data: TensorFlow writes each slice once, so overlaps are refused before allocating."""
        regions = sorted((e.shard_id, e.offset, e.size) for e in entries if e.size)
        for (shard, offset, size), (next_shard, next_offset, _) in zip(regions, regions[1:]):
            if shard == next_shard and offset + size > next_offset:
                raise CorruptFileError(self.index_path, f"slices of {key!r} share bytes "
                                       f"[{next_offset}, {offset + size}) of shard {shard}.")

    # object graph
    def object_graph(self):
        """The TrackableObjectGraph stored by TF2 checkpoints, or None (TF1 checkpoints)."""
        if OBJECT_GRAPH_KEY not in self._raw:
            return None
        if self._object_graph is None:
            value = self.read(OBJECT_GRAPH_KEY)
            entry = self._entry(OBJECT_GRAPH_KEY)
            if entry.dtype != DT_STRING or value.size != 1:
                raise CorruptFileError(self.index_path, f"{OBJECT_GRAPH_KEY} is not a string scalar.")
            graph = trackable_object_graph_pb2.TrackableObjectGraph()
            try:
                graph.ParseFromString(value.reshape(-1)[0])
            except (_message.DecodeError, RecursionError, ValueError):
                raise CorruptFileError(self._shard_path(entry), f"{OBJECT_GRAPH_KEY} is not a "
                                       "valid TrackableObjectGraph.") from None
            for node_id, node in enumerate(graph.nodes):
                for ref in node.children:
                    if not 0 <= ref.node_id < len(graph.nodes):
                        raise CorruptFileError(self.index_path, f"object graph node {node_id} "
                                               f"has child {ref.node_id}, outside the "
                                               f"{len(graph.nodes)} nodes.")
                for slot in node.slot_variables:
                    if not (0 <= slot.original_variable_node_id < len(graph.nodes)
                            and 0 <= slot.slot_variable_node_id < len(graph.nodes)):
                        raise CorruptFileError(self.index_path, f"object graph node {node_id} "
                                               "has a slot variable outside the graph.")
            self._object_graph = graph
        return self._object_graph

    def _node_paths(self, graph) -> dict[int, str]:
        """Breadth-first path of local names from the root (node 0) to each node.

        Slot variables reachable only through an optimizer are named as TensorFlow
        names their keys: ``<variable>/.OPTIMIZER_SLOT/<optimizer>/<slot>``.
        """
        paths = object_graph_paths(graph.nodes)
        for node_id, node in enumerate(graph.nodes):
            if node_id not in paths:
                continue
            for slot in node.slot_variables:
                variable = paths.get(slot.original_variable_node_id)
                if variable is not None and slot.slot_variable_node_id not in paths:
                    paths[slot.slot_variable_node_id] = (
                        f"{variable}/.OPTIMIZER_SLOT/{paths[node_id]}/{slot.slot_name}")
        return paths

    def object_paths(self) -> dict[str, str]:
        """Object path -> checkpoint key, e.g. ``model/layer_with_weights-0/kernel`` ->
        ``model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE``.

        A node's VARIABLE_VALUE attribute is named by the node's path; any other
        attribute by ``<path>/<attribute name>``. Empty without an object graph.
        """
        graph = self.object_graph()
        if graph is None:
            return {}
        result = {}
        for node_id, path in sorted(self._node_paths(graph).items()):
            for attribute in graph.nodes[node_id].attributes:
                if attribute.name == "VARIABLE_VALUE" and path:
                    name = path
                else:
                    name = f"{path}/{attribute.name}" if path else attribute.name
                result[name] = attribute.checkpoint_key
        return result

    def checkpoint_key_for_node(self, node_id: int) -> list[str]:
        """The checkpoint keys of the attributes of object-graph node ``node_id``."""
        graph = self.object_graph()
        if graph is None:
            raise SavedModelError(f"The checkpoint {self.prefix!r} has no object graph "
                                  f"({OBJECT_GRAPH_KEY}); it is a TF1 name-based checkpoint, "
                                  "so look variables up by name.")
        if not 0 <= node_id < len(graph.nodes):
            raise SavedModelError(f"Object graph node {node_id} does not exist; the checkpoint's "
                                  f"graph has {len(graph.nodes)} nodes.")
        return [attribute.checkpoint_key for attribute in graph.nodes[node_id].attributes]


# --- writing ----------------------------------------------------------------

def object_graph_paths(nodes) -> dict[int, str]:
    """Node id -> breadth-first path of children's local names from the root (node 0).

    Serves TrackableObjectGraph and SavedObjectGraph nodes alike; references to node
    ids outside the graph are ignored.
    """
    paths = {0: ""} if len(nodes) else {}
    queue = deque(paths)
    while queue:
        node_id = queue.popleft()
        for ref in nodes[node_id].children:
            if ref.node_id not in paths and 0 <= ref.node_id < len(nodes):
                parent = paths[node_id]
                paths[ref.node_id] = f"{parent}/{ref.local_name}" if parent else ref.local_name
                queue.append(ref.node_id)
    return paths


def _temp_name(path: str) -> str:
    return f"{path}.tempstate{uuid.uuid4().hex}"


def _encode_strings(items) -> tuple[list, int]:
    """(chunks, crc) of a string tensor in tensor_bundle.cc's layout."""
    lengths = bytearray()
    hashed = bytearray()
    for item in items:
        lengths += sstable.encode_varint(len(item))
        hashed += struct.pack("<I" if len(item) <= 0xFFFFFFFF else "<Q", len(item))
    crc = _crc(bytes(hashed))
    checksum = struct.pack("<I", mask_crc(crc))
    crc = _extend(crc, checksum)
    body = b"".join(items)
    crc = _extend(crc, body)
    return [bytes(lengths), checksum, body], crc


def _encode_variants(items) -> tuple[list, int]:
    chunks, crc = [], 0
    for item in items:
        serialized = item.SerializeToString()
        crc = _extend(_extend(crc, struct.pack("<Q", len(serialized))), serialized)
        checksum = struct.pack("<I", mask_crc(crc))
        crc = _extend(crc, checksum)
        chunks += [sstable.encode_varint(len(serialized)), serialized, checksum]
    return chunks, crc


def _as_bytes_items(array: np.ndarray) -> list[bytes]:
    items = []
    for item in array.reshape(-1):
        if isinstance(item, (bytes, np.bytes_)):
            items.append(bytes(item))
        elif isinstance(item, (str, np.str_)):
            items.append(str(item).encode("utf-8"))
        else:
            raise SavedModelError(f"String tensors hold bytes or str; found {type(item).__name__}.")
    return items


class BundleWriter:
    """Writes a single-shard TensorBundle that TensorFlow restores.

    Values are streamed to a temporary data file as they are added; finish()
    writes the index and renames both into place (as BundleWriter does when the
    filesystem supports atomic moves). Leaving the ``with`` block by an exception
    removes the temporary files.
    """

    def __init__(self, prefix):
        self.prefix = str(prefix)
        parent = os.path.dirname(self.prefix)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.data_path = data_filename(self.prefix, 0, 1)
        self.index_path = index_filename(self.prefix)
        self._data_temp = _temp_name(self.data_path)
        self._file = open(self._data_temp, "wb")
        self._entries: dict[bytes, saved_model_pb2.BundleEntryProto] = {}
        self._size = 0
        self._finished = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            if not self._finished:
                self.finish()
        else:
            self.abort()

    def _new_entry(self, key: str, dtype: int, shape) -> saved_model_pb2.BundleEntryProto:
        if self._finished or self._file is None:
            raise SavedModelError("This BundleWriter is finished; open a new one.")
        if not isinstance(key, str) or key == HEADER_KEY:
            raise SavedModelError(f"Checkpoint keys are non-empty strings; got {key!r}.")
        raw_key = _key_bytes(key)
        if raw_key.startswith(_SLICE_KEY_PREFIX):
            raise SavedModelError(f"Key {key!r} starts with a NUL byte, reserved for slice keys.")
        if raw_key in self._entries:
            raise SavedModelError(f"Key {key!r} was already added to this checkpoint.")
        entry = saved_model_pb2.BundleEntryProto(dtype=dtype, shard_id=0, offset=self._size)
        entry.shape.CopyFrom(shape_to_proto(shape))
        return entry

    def _append(self, key: str, entry, chunks, crc: int):
        size = 0
        for chunk in chunks:
            self._file.write(chunk)
            size += len(chunk) if isinstance(chunk, (bytes, bytearray)) else chunk.nbytes
        entry.size = size
        entry.crc32c = mask_crc(crc)
        self._size += size
        self._entries[_key_bytes(key)] = entry

    def add(self, key: str, array, dtype=None):
        """Add a tensor. ``dtype`` (a DataType enum) overrides the inferred type, e.g.
        DT_QINT8 for an int8 array; str elements of string tensors are UTF-8 encoded."""
        if dtype is None:
            dtype = infer_dtype(array)
        dtype = int(dtype)
        np_dtype = dtype_to_numpy(dtype)
        if not isinstance(array, np.ndarray):
            array = np.asarray(array, dtype=object if np_dtype == object else None)
        entry = self._new_entry(key, dtype, array.shape)
        if dtype == DT_STRING:
            chunks, crc = _encode_strings(_as_bytes_items(array))
        elif dtype == DT_VARIANT:
            items = list(array.reshape(-1))
            if not all(isinstance(item, tensor_pb2.VariantTensorDataProto) for item in items):
                raise SavedModelError("Variant tensors hold VariantTensorDataProto messages.")
            chunks, crc = _encode_variants(items)
        elif is_memcpy_dtype(dtype):
            flat = np.ascontiguousarray(cast_to_dtype(array, dtype)).reshape(-1)
            if sys.byteorder == "little" and flat.dtype.byteorder in "=|":
                raw = flat.view(np.uint8)      # no copy of large arrays
            else:
                raw = np.frombuffer(array_to_bytes(flat), np.uint8)
            chunks, crc = [raw], _crc(raw)
        else:
            raise SavedModelError(f"{dtype_name(dtype)} tensors cannot be stored in a checkpoint.")
        self._append(key, entry, chunks, crc)

    def add_raw(self, key: str, entry, data):
        """Add an entry whose stored bytes are already encoded (e.g. copied from another
        bundle). ``entry`` supplies dtype, shape and crc32c. For memcpy-able types the
        CRC and the size are verified; string and variant bytes are taken as given."""
        if entry.slices:
            raise SavedModelError(f"add_raw({key!r}) got a sliced entry; add the full tensor.")
        new = self._new_entry(key, entry.dtype, ())
        new.shape.CopyFrom(entry.shape)
        raw = np.frombuffer(data, np.uint8) if len(data) else np.zeros(0, np.uint8)
        if is_memcpy_dtype(entry.dtype):
            expected = math.prod(d.size for d in entry.shape.dim) * dtype_to_numpy(entry.dtype).itemsize
            if raw.nbytes != expected:
                raise SavedModelError(f"add_raw({key!r}): {raw.nbytes} bytes given, the shape "
                                      f"and dtype need {expected}.")
            if _crc(raw) != unmask_crc(entry.crc32c):
                raise SavedModelError(f"add_raw({key!r}): the data's CRC32C does not match "
                                      "the entry's.")
        self._append(key, new, [raw], unmask_crc(entry.crc32c))

    def add_from(self, reader: BundleReader, key: str, new_key: str | None = None):
        """Copy ``key`` from ``reader`` without decoding it, verifying its CRC as it streams.

        Memory stays at one chunk whatever the tensor's size; partitioned tensors
        are reassembled and written whole.
        """
        if key not in reader:
            raise reader._missing(key)
        source = reader._entry(key)
        if source.slices or reader._big_endian or not is_memcpy_dtype(source.dtype):
            # Reassembled, byte-swapped or re-encoded (strings and variants are small).
            self.add(new_key or key, reader.read(key), dtype=source.dtype)
            return
        reader._check_extent(key, source)
        data = reader._data_region(key, source)
        entry = self._new_entry(new_key or key, source.dtype, ())
        entry.shape.CopyFrom(source.shape)
        crc = 0
        for start in range(source.offset, source.offset + source.size, _COPY_CHUNK):
            stop = min(start + _COPY_CHUNK, source.offset + source.size)
            chunk = np.frombuffer(data, np.uint8, count=stop - start, offset=start)
            crc = _extend(crc, chunk)
            self._file.write(chunk)
            del chunk
        if crc != unmask_crc(source.crc32c):
            raise CorruptFileError(reader._shard_path(source), f"checksum mismatch for {key!r} "
                                   "while copying it; the data file is corrupt.")
        entry.size = source.size
        entry.crc32c = source.crc32c
        self._size += source.size
        self._entries[_key_bytes(new_key or key)] = entry

    def finish(self) -> str:
        """Write the index, move both files into place; returns the index path."""
        if self._finished:
            return self.index_path
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.replace(self._data_temp, self.data_path)
            header = saved_model_pb2.BundleHeaderProto(
                num_shards=1, endianness=saved_model_pb2.BundleHeaderProto.LITTLE)
            header.version.producer = BUNDLE_VERSION
            header.version.min_consumer = 0
            rows = [(b"", header.SerializeToString())]
            rows += [(key, self._entries[key].SerializeToString()) for key in sorted(self._entries)]
            index_temp = _temp_name(self.index_path)
            try:
                with open(index_temp, "wb") as handle:
                    handle.write(sstable.build_table(rows))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(index_temp, self.index_path)
            except BaseException:
                _remove_quietly(index_temp)
                raise
        except BaseException:
            self.abort()
            raise
        self._finished = True
        return self.index_path

    def abort(self):
        """Discard everything written so far (temporary files only)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        _remove_quietly(self._data_temp)
        self._finished = True


def _remove_quietly(path: str):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def copy_bundle(src_prefix, dst_prefix) -> list[str]:
    """Copy a bundle's index and shards to ``dst_prefix``; returns the paths written.

    Shards are hard-linked where the filesystem allows (TensorFlow never rewrites a
    shard in place, nor does BundleWriter) and otherwise copied in chunks, never
    loaded whole. Every file goes to a temporary name first, then is renamed.
    """
    src_prefix, dst_prefix = str(src_prefix), str(dst_prefix)
    with BundleReader(src_prefix) as reader:
        num_shards = reader.header.num_shards
    sources = [index_filename(src_prefix)]
    targets = [index_filename(dst_prefix)]
    for shard in range(num_shards):
        source = data_filename(src_prefix, shard, num_shards)
        if not os.path.exists(source):
            raise CorruptFileError(source, "the data shard does not exist; the variables "
                                   "directory is incomplete.")
        sources.append(source)
        targets.append(data_filename(dst_prefix, shard, num_shards))
    if os.path.abspath(sources[0]) == os.path.abspath(targets[0]):
        return targets
    parent = os.path.dirname(dst_prefix)
    if parent:
        os.makedirs(parent, exist_ok=True)
    # Shards first and the index last, so a reader never sees an index without data.
    for source, target in list(zip(sources, targets))[1:] + [(sources[0], targets[0])]:
        temp = _temp_name(target)
        try:
            try:
                os.link(source, temp)
            except OSError:
                shutil.copyfile(source, temp)
            os.replace(temp, target)
        except BaseException:
            _remove_quietly(temp)
            raise
    return targets
