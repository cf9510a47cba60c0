"""TensorFlow's table format (tensorflow/core/lib/io/table*): the file behind variables.index.

A table is a sequence of blocks followed by a 48-byte footer. The footer holds the
BlockHandles (varint64 offset, varint64 size) of the metaindex and index blocks,
zero padding to 40 bytes, and the little-endian magic 0xdb4775248b80fb57. Each
block is followed by a 5-byte trailer: a compression byte (0 none, 1 snappy) and
the masked CRC32C of the block contents plus that byte. A block holds entries
(varint32 shared key length, varint32 unshared length, varint32 value length,
key suffix, value), then little-endian uint32 restart offsets and their count.
The index block maps a key >= every key of a data block to that block's handle.

Only reading the whole table at once and writing a whole table are provided: a
bundle index holds one small entry per tensor.
"""
from __future__ import annotations

import struct

import google_crc32c

from ..errors import CorruptFileError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_HANDLE_MAX_SIZE = 20
BLOCK_TRAILER_SIZE = 5
NO_COMPRESSION = 0
SNAPPY_COMPRESSION = 1

#: TensorFlow's table::Options defaults (table_options.h); the index block restarts
#: at every entry as table_builder.cc sets it.
DEFAULT_BLOCK_SIZE = 262144
DEFAULT_RESTART_INTERVAL = 16

_CRC_MASK_DELTA = 0xA282EAD8


def mask_crc(crc: int) -> int:
    """crc32c::Mask: rotate right by 15 bits and add a constant (stored CRCs are masked)."""
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """crc32c::Unmask, the inverse of mask_crc."""
    rotated = (masked - _CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF


class _Corrupt(Exception):
    """Internal: a structural fault, turned into CorruptFileError with the path."""


# --- varints ----------------------------------------------------------------

def encode_varint(value: int) -> bytes:
    """core::PutVarint64/32: little-endian base-128."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data, pos: int, limit: int, max_bits: int = 64) -> tuple[int, int]:
    """core::GetVarint64/32 from data[pos:limit]; returns (value, next position)."""
    result = 0
    for shift in range(0, max_bits, 7):
        if pos >= limit:
            raise _Corrupt("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        raise _Corrupt("varint too long")
    if result >> max_bits:
        raise _Corrupt(f"varint exceeds {max_bits} bits")
    return result, pos


# --- snappy -----------------------------------------------------------------

#: Snappy emits at most 64 output bytes for a 2-byte copy tag, so no valid stream
#: expands more than 32x; claims beyond that are refused before allocating.
_SNAPPY_MAX_RATIO = 32


def snappy_decompress(data: bytes) -> bytes:
    """Decompress a raw snappy block (format_description.txt of google/snappy)."""
    length, pos = decode_varint(data, 0, len(data), 32)
    if length > _SNAPPY_MAX_RATIO * len(data) + 64:
        raise _Corrupt(f"snappy block claims {length} bytes from {len(data)}")
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                if pos + extra > end:
                    raise _Corrupt("truncated snappy literal length")
                size = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > end:
                raise _Corrupt("truncated snappy literal")
            out += data[pos:pos + size]
            pos += size
        else:
            if kind == 1:
                if pos + 1 > end:
                    raise _Corrupt("truncated snappy copy")
                size = ((tag >> 2) & 7) + 4
                offset = ((tag >> 5) << 8) | data[pos]
                pos += 1
            else:
                width = 2 if kind == 2 else 4
                if pos + width > end:
                    raise _Corrupt("truncated snappy copy")
                size = (tag >> 2) + 1
                offset = int.from_bytes(data[pos:pos + width], "little")
                pos += width
            if offset == 0 or offset > len(out):
                raise _Corrupt("snappy copy offset out of range")
            start = len(out) - offset
            if size <= offset:
                out += out[start:start + size]
            else:  # overlapping copy repeats the last `offset` bytes
                pattern = bytes(out[start:])
                out += (pattern * (size // offset + 1))[:size]
        if len(out) > length:
            raise _Corrupt("snappy output longer than declared")
    if len(out) != length:
        raise _Corrupt("snappy output shorter than declared")
    return bytes(out)


# --- reading ----------------------------------------------------------------

def _read_handle(data, pos: int, limit: int) -> tuple[int, int, int]:
    offset, pos = decode_varint(data, pos, limit)
    size, pos = decode_varint(data, pos, limit)
    return offset, size, pos


def _read_block(data, offset: int, size: int, body_end: int, what: str) -> bytes:
    if offset + size + BLOCK_TRAILER_SIZE > body_end:
        raise _Corrupt(f"{what} block [{offset}, +{size}) runs past the end of the table data")
    contents = data[offset:offset + size + 1]
    kind = contents[-1]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    if google_crc32c.value(bytes(contents)) != unmask_crc(stored):
        raise _Corrupt(f"{what} block at offset {offset}: checksum mismatch")
    if kind == NO_COMPRESSION:
        return bytes(contents[:-1])
    if kind == SNAPPY_COMPRESSION:
        return snappy_decompress(bytes(contents[:-1]))
    raise _Corrupt(f"{what} block at offset {offset}: unknown compression type {kind}")


def _block_entries(block: bytes, what: str):
    """Yield (key, value) pairs of one block, undoing the prefix compression."""
    if len(block) < 4:
        raise _Corrupt(f"{what} block of {len(block)} bytes is too short")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    if num_restarts > (len(block) - 4) // 4:
        raise _Corrupt(f"{what} block claims {num_restarts} restart points")
    limit = len(block) - 4 - 4 * num_restarts
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = decode_varint(block, pos, limit, 32)
        unshared, pos = decode_varint(block, pos, limit, 32)
        value_size, pos = decode_varint(block, pos, limit, 32)
        if shared > len(key) or pos + unshared + value_size > limit:
            raise _Corrupt(f"{what} block: entry at {pos} overruns the block")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_size]
        pos += value_size


def read_table(data, path) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a table held in ``data`` (bytes-like), in key order.

    Checks the magic, every block CRC and that keys strictly increase; any fault is
    a CorruptFileError naming ``path``.
    """
    try:
        return _read_table(memoryview(data), len(data))
    except _Corrupt as exc:
        raise CorruptFileError(path, f"not a valid TensorFlow table: {exc}") from None


def _read_table(data, size: int) -> list[tuple[bytes, bytes]]:
    if size < FOOTER_SIZE:
        raise _Corrupt(f"file of {size} bytes is too short to be a table (footer is {FOOTER_SIZE})")
    footer = size - FOOTER_SIZE
    (magic,) = struct.unpack_from("<Q", data, size - 8)
    if magic != TABLE_MAGIC:
        raise _Corrupt(f"bad magic number {magic:#018x}")
    _, _, pos = _read_handle(data, footer, size - 8)
    index_offset, index_size, _ = _read_handle(data, pos, size - 8)
    index = _read_block(data, index_offset, index_size, footer, "index")
    entries: list[tuple[bytes, bytes]] = []
    previous_separator = None
    for separator, handle in _block_entries(index, "index"):
        if previous_separator is not None and separator <= previous_separator:
            raise _Corrupt("index keys are not in increasing order")
        previous_separator = separator
        offset, block_size, end = _read_handle(handle, 0, len(handle))
        block = _read_block(data, offset, block_size, footer, "data")
        for key, value in _block_entries(block, "data"):
            if entries and key <= entries[-1][0]:
                raise _Corrupt(f"keys are not in increasing order at {key!r}")
            if key > separator:
                raise _Corrupt(f"key {key!r} lies beyond its index entry {separator!r}")
            entries.append((key, value))
    return entries


# --- writing ----------------------------------------------------------------

class _BlockBuilder:
    def __init__(self, restart_interval: int):
        self.restart_interval = restart_interval
        self.reset()

    def reset(self):
        self.buffer = bytearray()
        self.restarts = [0]
        self.counter = 0
        self.last_key = b""

    def add(self, key: bytes, value: bytes):
        shared = 0
        if self.counter < self.restart_interval:
            limit = min(len(key), len(self.last_key))
            while shared < limit and key[shared] == self.last_key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buffer))
            self.counter = 0
        self.buffer += encode_varint(shared) + encode_varint(len(key) - shared)
        self.buffer += encode_varint(len(value)) + key[shared:] + value
        self.last_key = key
        self.counter += 1

    def size_estimate(self) -> int:
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        tail = b"".join(struct.pack("<I", r) for r in self.restarts)
        return bytes(self.buffer) + tail + struct.pack("<I", len(self.restarts))


def _block_with_trailer(contents: bytes) -> bytes:
    trailer_type = bytes([NO_COMPRESSION])
    crc = mask_crc(google_crc32c.value(contents + trailer_type))
    return contents + trailer_type + struct.pack("<I", crc)


def build_table(entries, *, block_size: int = DEFAULT_BLOCK_SIZE,
                restart_interval: int = DEFAULT_RESTART_INTERVAL) -> bytes:
    """An uncompressed table of (key, value) byte pairs, which must be strictly increasing.

    Laid out as table_builder.cc does: data blocks, an empty metaindex block, the
    index block (one restart per entry), the footer. Each index key is the last key
    of its data block (TensorFlow shortens it; any key in between is valid).
    """
    out = bytearray()
    index = _BlockBuilder(1)
    data = _BlockBuilder(restart_interval)
    previous = None

    def flush():
        handle = encode_varint(len(out))
        contents = data.finish()
        handle += encode_varint(len(contents))
        out.extend(_block_with_trailer(contents))
        index.add(data.last_key, handle)
        data.reset()

    for key, value in entries:
        key, value = bytes(key), bytes(value)
        if previous is not None and key <= previous:
            raise ValueError(f"table keys must strictly increase: {key!r} after {previous!r}")
        previous = key
        data.add(key, value)
        if data.size_estimate() >= block_size:
            flush()
    if data.counter:
        flush()
    metaindex_handle = encode_varint(len(out))
    metaindex = _BlockBuilder(restart_interval).finish()
    metaindex_handle += encode_varint(len(metaindex))
    out.extend(_block_with_trailer(metaindex))
    index_handle = encode_varint(len(out))
    index_contents = index.finish()
    index_handle += encode_varint(len(index_contents))
    out.extend(_block_with_trailer(index_contents))
    footer = (metaindex_handle + index_handle).ljust(2 * BLOCK_HANDLE_MAX_SIZE, b"\0")
    out.extend(footer + struct.pack("<Q", TABLE_MAGIC))
    return bytes(out)
