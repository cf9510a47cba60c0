"""sm_notebook.format.bundle and sstable: TensorBundle reading/writing without TensorFlow."""
import os
import struct
import time
from pathlib import Path

import google_crc32c
import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sm_notebook._proto import saved_model_pb2, tensor_pb2, trackable_object_graph_pb2
from sm_notebook.errors import CorruptFileError, SavedModelError
from sm_notebook.format import sstable
from sm_notebook.format.bundle import (
    OBJECT_GRAPH_KEY, BundleReader, BundleWriter, copy_bundle, data_filename, decode_slice_key,
    index_filename,
)
from sm_notebook.format.tensors import shape_to_proto

from conftest import FIXTURES, fixture_names  # noqa: E402

DT = tensor_pb2.DataType
TOG = trackable_object_graph_pb2.TrackableObjectGraph


def _values():
    """One tensor of every dtype a checkpoint can hold, with awkward shapes."""
    rng = np.random.default_rng(0)
    values = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f64_scalar": np.float64(np.pi),
        "f16": np.array([1.5, -0.0, np.inf], np.float16),
        "bf16": np.array([[1.5, -2.25]], ml_dtypes.bfloat16),
        "c64": np.array([1 + 2j, -3.5j], np.complex64),
        "c128": np.array([[1e300 + 1j]], np.complex128),
        "bool": np.array([True, False, True]),
        "i8": np.array([-128, 127], np.int8), "i16": np.array([-3], np.int16),
        "i32": np.arange(7, dtype=np.int32), "i64": np.array([2 ** 62, -1], np.int64),
        "u8": np.array([255, 0], np.uint8), "u16": np.array([65535], np.uint16),
        "u32": np.array([2 ** 32 - 1], np.uint32), "u64": np.array([2 ** 64 - 1], np.uint64),
        "f8": np.array([0.5, -2], ml_dtypes.float8_e4m3fn),
        "f8_e5m2": np.array([0.5, 3], ml_dtypes.float8_e5m2),
        "i4": np.array([-8, 7, 0], ml_dtypes.int4), "u4": np.array([15], ml_dtypes.uint4),
        "f4": np.array([1, -0.5], ml_dtypes.float4_e2m1fn),
        "empty": np.zeros((0, 3), np.float32),
        "str": np.array([b"", b"hello", "\u00e9".encode(), b"\x00\xff" * 100], dtype=object),
        "str_scalar": np.array(b"single", dtype=object),
        "str_empty": np.zeros((0,), dtype=object),
        "nested/key/.ATTRIBUTES/VARIABLE_VALUE": np.ones((2, 2, 2), np.float32),
    }
    return values


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape
    if a.dtype == object:
        assert a.tolist() == b.tolist()
    else:
        assert a.tobytes() == b.tobytes()


def _write(prefix, values, dtypes=None):
    with BundleWriter(prefix) as writer:
        for key, value in values.items():
            writer.add(key, value, dtype=(dtypes or {}).get(key))
    return str(prefix)


@pytest.fixture
def bundle(tmp_path):
    return _write(tmp_path / "variables" / "variables", _values())


def _index_rows(prefix):
    return sstable.read_table(Path(index_filename(prefix)).read_bytes(), "index")


def _rewrite_index(prefix, edit):
    """Re-encode the index after edit(key, BundleEntryProto or header) mutates protos."""
    rows = []
    for key, value in _index_rows(prefix):
        message = (saved_model_pb2.BundleHeaderProto if key == b"" else saved_model_pb2.BundleEntryProto)()
        message.ParseFromString(value)
        edit(key.decode("utf-8", "surrogateescape"), message)
        rows.append((key, message.SerializeToString()))
    Path(index_filename(prefix)).write_bytes(sstable.build_table(rows))


# --- round trips ------------------------------------------------------------

def test_writer_reader_round_trip_every_dtype(bundle):
    values = _values()
    with BundleReader(bundle) as reader:
        assert reader.keys() == sorted(values, key=lambda k: k.encode())
        assert reader.header.num_shards == 1 and reader.header.version.producer == 1
        for key, value in values.items():
            value = np.asarray(value)
            read = reader.read(key)
            _same(read, value)
            assert reader.shape(key) == value.shape
            assert reader.dtype(key) == value.dtype
        assert reader.entry("i4").dtype == DT.Value("DT_INT4")
        assert reader.dtype_enum("bf16") == DT.Value("DT_BFLOAT16")
        assert "f32" in reader and "nope" not in reader and len(reader) == len(values)


def test_files_are_laid_out_like_tensorflow(bundle):
    index = Path(index_filename(bundle)).read_bytes()
    assert struct.unpack("<Q", index[-8:])[0] == 0xDB4775248B80FB57
    data = Path(data_filename(bundle, 0, 1)).read_bytes()
    with BundleReader(bundle) as reader:
        entries = [reader.entry(key) for key in reader.keys()]
    assert sum(e.size for e in entries) == len(data)
    position = 0
    for entry in sorted(entries, key=lambda e: (e.offset, e.size)):     # packed, no padding
        assert entry.offset == position
        position += entry.size
    f32 = next(e for k, e in zip(reader.keys(), entries) if k == "f32")
    assert data[f32.offset:f32.offset + f32.size] == _values()["f32"].tobytes()
    masked = sstable.mask_crc(google_crc32c.value(_values()["f32"].tobytes()))
    assert f32.crc32c == masked
    strings = next(e for k, e in zip(reader.keys(), entries) if k == "str_scalar")
    # varint64 length, masked crc32c of the length hashed as uint32, then the bytes
    stored = data[strings.offset:strings.offset + strings.size]
    assert stored[0] == 6 and stored[5:] == b"single"
    assert struct.unpack("<I", stored[1:5])[0] == sstable.mask_crc(google_crc32c.value(struct.pack("<I", 6)))
    leftovers = [p.name for p in Path(bundle).parent.iterdir() if "tempstate" in p.name]
    assert leftovers == []


def test_quantized_and_forced_dtypes(tmp_path):
    prefix = _write(tmp_path / "q", {"q": np.array([1, -2], np.int8), "h": [1.0, 2.0]},
                    dtypes={"q": DT.Value("DT_QINT8"), "h": DT.Value("DT_HALF")})
    with BundleReader(prefix) as reader:
        assert reader.dtype_enum("q") == DT.Value("DT_QINT8")
        _same(reader.read("q"), np.array([1, -2], np.int8))
        _same(reader.read("h"), np.array([1, 2], np.float16))


def test_variants_round_trip(tmp_path):
    items = np.empty(2, dtype=object)
    items[0] = tensor_pb2.VariantTensorDataProto(type_name="a", metadata=b"m")
    items[1] = tensor_pb2.VariantTensorDataProto(type_name="b")
    prefix = _write(tmp_path / "v", {"v": items})
    with BundleReader(prefix) as reader:
        assert reader.read("v").tolist() == items.tolist()


def test_writer_refuses_bad_keys_and_values(tmp_path):
    with BundleWriter(tmp_path / "x") as writer:
        writer.add("a", np.float32(1))
        for bad in ("", "a", "\x00slice"):
            with pytest.raises(SavedModelError):
                writer.add(bad, np.float32(1))
        with pytest.raises(SavedModelError):
            writer.add("r", np.array([tensor_pb2.ResourceHandleProto()], dtype=object),
                       dtype=DT.Value("DT_RESOURCE"))
        with pytest.raises(SavedModelError):
            writer.add("s", np.array([1, b"x"], dtype=object))
    with pytest.raises(SavedModelError, match="finished"):
        writer.add("late", np.float32(1))


def test_failed_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with BundleWriter(tmp_path / "w") as writer:
            writer.add("a", np.float32(1))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_many_entries_span_blocks(tmp_path):
    values = {f"layer_{i:04d}/kernel": np.full((2,), i, np.int32) for i in range(3000)}
    prefix = _write(tmp_path / "many", values)
    with BundleReader(prefix) as reader:
        assert reader.keys() == sorted(values)
        assert reader.read("layer_2999/kernel").tolist() == [2999, 2999]


def test_missing_key_suggests(bundle):
    with BundleReader(bundle) as reader:
        with pytest.raises(SavedModelError, match="f32"):
            reader.read("f33")
        with pytest.raises(SavedModelError):
            reader.entry("nope")
        with pytest.raises(SavedModelError):
            reader.shape("nope")


def test_opening_reads_only_the_index(tmp_path):
    prefix = _write(tmp_path / "big", {"big": np.zeros(8 << 20, np.float32)})   # 32 MB
    reader = BundleReader(prefix)   # speed is measured in benchmarks/bench_bundle_open.py
    keys, shape = reader.keys(), reader.shape("big")
    assert keys == ["big"] and shape == (8 << 20,) and reader._shards == {}  # no shard touched yet
    assert reader.read("big").shape == (8 << 20,)
    reader.close()


# --- copying ----------------------------------------------------------------

def test_add_from_and_add_raw_copy_entries(bundle, tmp_path):
    with BundleReader(bundle) as source, BundleWriter(tmp_path / "copy") as writer:
        for key in source.keys():
            writer.add_from(source, key)
        writer.add_from(source, "f32", new_key="renamed")
        entry = source.entry("i32")
        writer.add_raw("raw", entry, np.arange(7, dtype=np.int32).tobytes())
        with pytest.raises(SavedModelError, match="CRC"):
            writer.add_raw("raw2", entry, np.arange(1, 8, dtype=np.int32).tobytes())
        with pytest.raises(SavedModelError, match="bytes"):
            writer.add_raw("raw3", entry, b"\0" * 4)
    with BundleReader(tmp_path / "copy") as copy, BundleReader(bundle) as source:
        for key in source.keys():
            _same(copy.read(key), source.read(key))
        _same(copy.read("renamed"), source.read("f32"))
        _same(copy.read("raw"), np.arange(7, dtype=np.int32))


def test_add_from_detects_corrupt_source(bundle, tmp_path):
    _flip_data_byte(bundle, "f32")
    with BundleReader(bundle) as source, BundleWriter(tmp_path / "copy") as writer:
        with pytest.raises(CorruptFileError, match="checksum"):
            writer.add_from(source, "f32")
        writer.abort()


def test_copy_bundle_links_or_copies(bundle, tmp_path):
    written = copy_bundle(bundle, tmp_path / "elsewhere" / "variables")
    assert [Path(p).name for p in written] == ["variables.index", "variables.data-00000-of-00001"]
    source_data = Path(data_filename(bundle, 0, 1))
    assert os.stat(written[1]).st_ino == source_data.stat().st_ino      # same filesystem: linked
    with BundleReader(tmp_path / "elsewhere" / "variables") as reader:
        _same(reader.read("str"), _values()["str"])
    assert not [p for p in (tmp_path / "elsewhere").iterdir() if "tempstate" in p.name]


def test_copy_bundle_missing_shard(bundle, tmp_path):
    os.remove(data_filename(bundle, 0, 1))
    with pytest.raises(CorruptFileError, match="data-00000-of-00001"):
        copy_bundle(bundle, tmp_path / "dst")


# --- multi-shard, big-endian, sliced bundles built by hand --------------------

def _entry(dtype, shape, shard, offset, data, crc=None):
    entry = saved_model_pb2.BundleEntryProto(dtype=DT.Value(dtype), shard_id=shard, offset=offset,
                                             size=len(data))
    entry.shape.CopyFrom(shape_to_proto(shape))
    entry.crc32c = sstable.mask_crc(google_crc32c.value(data) if crc is None else crc)
    return entry


def _header(num_shards, big_endian=False):
    header = saved_model_pb2.BundleHeaderProto(num_shards=num_shards, endianness=int(big_endian))
    header.version.producer = 1
    return header


def _write_index(prefix, header, entries):
    rows = [(b"", header.SerializeToString())]
    rows += [(key if isinstance(key, bytes) else key.encode(), entry.SerializeToString())
             for key, entry in sorted(entries.items(), key=lambda kv: kv[0] if isinstance(kv[0], bytes)
                                      else kv[0].encode())]
    Path(index_filename(prefix)).write_bytes(sstable.build_table(rows))


def test_multi_shard(tmp_path):
    prefix = str(tmp_path / "sharded")
    a, b = np.arange(4, dtype=np.float32), np.arange(3, dtype=np.int64)
    Path(data_filename(prefix, 0, 2)).write_bytes(a.tobytes())
    Path(data_filename(prefix, 1, 2)).write_bytes(b"pad" + b.tobytes())
    _write_index(prefix, _header(2), {"a": _entry("DT_FLOAT", (4,), 0, 0, a.tobytes()),
                                      "b": _entry("DT_INT64", (3,), 1, 3, b.tobytes())})
    with BundleReader(prefix) as reader:
        _same(reader.read("a"), a)
        _same(reader.read("b"), b)


def test_big_endian_bundle(tmp_path):
    prefix = str(tmp_path / "be")
    floats = np.array([1.5, -2], np.float32)
    complexes = np.array([1 + 2j], np.complex128)
    halves = np.array([0.5, 3], ml_dtypes.bfloat16)
    raw_f = floats.astype(">f4").tobytes()
    raw_c = complexes.astype(">c16").tobytes()
    raw_h = halves.view(np.uint16).astype(">u2").tobytes()
    # A string tensor written on a big-endian machine: lengths hashed as big-endian uint32.
    crc = google_crc32c.value(struct.pack(">I", 2))
    checksum = struct.pack(">I", sstable.mask_crc(crc))
    crc = google_crc32c.extend(google_crc32c.extend(crc, checksum), b"hi")
    raw_s = b"\x02" + checksum + b"hi"
    blob, entries, offset = b"", {}, 0
    for key, dtype, shape, raw, crc_value in (("c", "DT_COMPLEX128", (1,), raw_c, None),
                                              ("f", "DT_FLOAT", (2,), raw_f, None),
                                              ("h", "DT_BFLOAT16", (2,), raw_h, None),
                                              ("s", "DT_STRING", (1,), raw_s, crc)):
        entries[key] = _entry(dtype, shape, 0, offset, raw, crc_value)
        blob += raw
        offset += len(raw)
    Path(data_filename(prefix, 0, 1)).write_bytes(blob)
    _write_index(prefix, _header(1, big_endian=True), entries)
    with BundleReader(prefix) as reader:
        _same(reader.read("f"), floats)
        _same(reader.read("c"), complexes)
        _same(reader.read("h"), halves)
        assert reader.read("s").tolist() == [b"hi"]


def _ordered_signed(value):
    """OrderedCode::WriteSignedNumIncreasing for -64 <= value < 64 (one byte)."""
    assert -64 <= value < 64
    return bytes([(0x80 ^ value) & 0xFF])


def _slice_key(name, extents):
    key = b"\x00" + name.encode().replace(b"\x00", b"\x00\xff") + b"\x00\x01" + bytes([1, len(extents)])
    for start, length in extents:
        key += _ordered_signed(start) + _ordered_signed(length)
    return key


def test_ordered_code_vectors():
    # Examples from ordered_code.cc: 0x424242 -> f0 42 42 42, -0x800 -> 38 00.
    from sm_notebook.format.bundle import _read_ordered_signed
    assert _read_ordered_signed(bytes.fromhex("f0424242"), 0) == (0x424242, 4)
    assert _read_ordered_signed(bytes.fromhex("3800"), 0) == (-0x800, 2)
    assert _read_ordered_signed(b"\x80", 0) == (0, 1)
    assert _read_ordered_signed(b"\x7f", 0) == (-1, 1)
    assert _read_ordered_signed(b"\xbf", 0) == (63, 1)
    assert _read_ordered_signed(b"\x40", 0) == (-64, 1)
    assert _read_ordered_signed(bytes.fromhex("c040"), 0) == (64, 2)
    assert _read_ordered_signed(bytes.fromhex("ffc07fffffffffffffff"), 0) == (2 ** 63 - 1, 10)
    assert decode_slice_key(_slice_key("a\x00b", [(0, -1), (2, 3)])) == ("a\x00b", ((0, -1), (2, 3)))
    with pytest.raises(ValueError):
        decode_slice_key(b"\x01\x02")


def test_sliced_entries_are_reassembled(tmp_path):
    prefix = str(tmp_path / "sliced")
    full = np.arange(20, dtype=np.float32).reshape(5, 4)
    top, bottom = full[:2], full[2:]
    full_entry = saved_model_pb2.BundleEntryProto(dtype=DT.Value("DT_FLOAT"))
    full_entry.shape.CopyFrom(shape_to_proto((5, 4)))
    for start, length in ((0, 2), (2, 3)):
        extent_proto = full_entry.slices.add()
        row = extent_proto.extent.add()
        row.start, row.length = start, length
        extent_proto.extent.add()                      # full extent along columns
    Path(data_filename(prefix, 0, 1)).write_bytes(top.tobytes() + bottom.tobytes())
    entries = {"w": full_entry,
               _slice_key("w", [(0, 2), (0, -1)]): _entry("DT_FLOAT", (2, 4), 0, 0, top.tobytes()),
               _slice_key("w", [(2, 3), (0, -1)]): _entry("DT_FLOAT", (3, 4), 0, len(top.tobytes()),
                                                          bottom.tobytes())}
    _write_index(prefix, _header(1), entries)
    with BundleReader(prefix) as reader:
        assert reader.keys() == ["w"]
        _same(reader.read("w"), full)
        with BundleWriter(tmp_path / "merged") as writer:
            writer.add_from(reader, "w")
    with BundleReader(tmp_path / "merged") as merged:
        _same(merged.read("w"), full)
    # A listed slice whose entry is missing, and slices that leave a gap.
    del entries[_slice_key("w", [(2, 3), (0, -1)])]
    _write_index(prefix, _header(1), entries)
    with BundleReader(prefix) as reader, pytest.raises(CorruptFileError, match="missing"):
        reader.read("w")
    del full_entry.slices[1]
    entries["w"] = full_entry
    _write_index(prefix, _header(1), entries)
    with BundleReader(prefix) as reader, pytest.raises(CorruptFileError, match="cover"):
        reader.read("w")


# --- object graph -----------------------------------------------------------

def _object_graph():
    graph = TOG()
    root, model, layer, kernel, optimizer, slot = (graph.nodes.add() for _ in range(6))
    root.children.add(node_id=1, local_name="model")
    root.children.add(node_id=4, local_name="optimizer")
    model.children.add(node_id=2, local_name="layer_with_weights-0")
    layer.children.add(node_id=3, local_name="kernel")
    layer.children.add(node_id=1, local_name="back_edge")          # cycles are fine
    kernel.attributes.add(name="VARIABLE_VALUE", full_name="dense/kernel",
                          checkpoint_key="model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    optimizer.attributes.add(name="iter", checkpoint_key="optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE")
    optimizer.slot_variables.add(original_variable_node_id=3, slot_name="m", slot_variable_node_id=5)
    slot.attributes.add(name="VARIABLE_VALUE", checkpoint_key="model/layer_with_weights-0/kernel/"
                        ".OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE")
    return graph


def test_object_graph_paths(tmp_path):
    graph = _object_graph()
    prefix = _write(tmp_path / "tf2", {OBJECT_GRAPH_KEY: np.array(graph.SerializeToString(), dtype=object),
                                       "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE":
                                       np.ones(2, np.float32)})
    with BundleReader(prefix) as reader:
        assert reader.object_graph() == graph
        assert reader.object_paths() == {
            "model/layer_with_weights-0/kernel":
                "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE",
            "optimizer/iter": "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE",
            "model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m":
                "model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
        }
        assert reader.checkpoint_key_for_node(3) == [
            "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
        assert reader.checkpoint_key_for_node(1) == []
        with pytest.raises(SavedModelError, match="99"):
            reader.checkpoint_key_for_node(99)


def test_no_object_graph(bundle):
    with BundleReader(bundle) as reader:
        assert reader.object_graph() is None and reader.object_paths() == {}
        with pytest.raises(SavedModelError, match="TF1"):
            reader.checkpoint_key_for_node(0)


def test_corrupt_object_graph(tmp_path):
    prefix = _write(tmp_path / "g", {OBJECT_GRAPH_KEY: np.array(b"\xff\xff\xff", dtype=object)})
    with BundleReader(prefix) as reader, pytest.raises(CorruptFileError, match="TrackableObjectGraph"):
        reader.object_graph()
    graph = TOG()
    graph.nodes.add().children.add(node_id=7, local_name="ghost")
    prefix = _write(tmp_path / "g2", {OBJECT_GRAPH_KEY: np.array(graph.SerializeToString(), dtype=object)})
    with BundleReader(prefix) as reader, pytest.raises(CorruptFileError, match="7"):
        reader.object_paths()


# --- corruption ---------------------------------------------------------------

def _flip_data_byte(prefix, key):
    with BundleReader(prefix) as reader:
        entry = reader.entry(key)
    path = Path(data_filename(prefix, 0, 1))
    data = bytearray(path.read_bytes())
    data[entry.offset + entry.size - 1] ^= 0x40
    path.write_bytes(bytes(data))


def _expect_corrupt(prefix, key, match, path_suffix):
    with pytest.raises(CorruptFileError, match=match) as info:
        with BundleReader(prefix) as reader:
            reader.read(key)
    assert info.value.path.endswith(path_suffix)
    return info.value


def test_missing_index(tmp_path):
    with pytest.raises(CorruptFileError, match="does not exist") as info:
        BundleReader(tmp_path / "nothing")
    assert info.value.path.endswith("nothing.index")


def test_missing_shard(bundle):
    os.remove(data_filename(bundle, 0, 1))
    with BundleReader(bundle) as reader:
        assert reader.shape("f32") == (3, 4)          # the index alone still answers
    _expect_corrupt(bundle, "f32", "does not exist", ".data-00000-of-00001")


def test_truncated_shard(bundle):
    path = Path(data_filename(bundle, 0, 1))
    path.write_bytes(path.read_bytes()[:20])
    error = _expect_corrupt(bundle, "str", "truncated", ".data-00000-of-00001")
    assert "str" in str(error)


@pytest.mark.parametrize("key", ["f32", "str", "i4", "bool"])
def test_bad_data_crc(bundle, key):
    _flip_data_byte(bundle, key)
    _expect_corrupt(bundle, key, "checksum", ".data-00000-of-00001")


def test_bad_string_length_checksum(bundle):
    with BundleReader(bundle) as reader:
        entry = reader.entry("str")
    path = Path(data_filename(bundle, 0, 1))
    data = bytearray(path.read_bytes())
    data[entry.offset + 4] ^= 1          # inside the 4 varint lengths' checksum
    path.write_bytes(bytes(data))
    _expect_corrupt(bundle, "str", "checksum", ".data-00000-of-00001")


@pytest.mark.parametrize("edit,key,match", [
    (lambda k, e: k == "f32" and setattr(e, "size", e.size - 4), "f32", "needs 48"),
    (lambda k, e: k == "f32" and setattr(e, "dtype", 77), "f32", "77"),
    (lambda k, e: k == "f32" and setattr(e, "dtype", DT.Value("DT_RESOURCE")), "f32", "DT_RESOURCE"),
    (lambda k, e: k == "f32" and e.shape.dim.add(size=-5), "f32", "invalid shape"),
    (lambda k, e: k == "f32" and setattr(e.shape, "unknown_rank", True), "f32", "unknown rank"),
    (lambda k, e: k == "f32" and e.shape.dim.add(size=1 << 40), "f32", "needs"),
    (lambda k, e: k == "str" and e.shape.dim.add(size=1 << 40), "str", "elements in only"),
    (lambda k, e: k == "f32" and setattr(e, "shard_id", 3), "f32", "shard 3"),
    (lambda k, e: k == "f32" and setattr(e, "offset", 1 << 50), "f32", "spans bytes"),
    (lambda k, e: k == "f32" and [e.shape.dim.add(size=1 << 40) for _ in range(3)], "f32", "too many"),
])
def test_bad_index_entries(bundle, edit, key, match):
    _rewrite_index(bundle, edit)
    start = time.perf_counter()
    with pytest.raises(CorruptFileError, match=match):
        with BundleReader(bundle) as reader:
            reader.read(key)
    assert time.perf_counter() - start < 1


def test_bad_header(bundle):
    _rewrite_index(bundle, lambda k, m: k == "" and setattr(m.version, "min_consumer", 5))
    with pytest.raises(SavedModelError, match="newer TensorFlow"):
        BundleReader(bundle)


def test_header_missing(tmp_path):
    prefix = str(tmp_path / "nohdr")
    Path(index_filename(prefix)).write_bytes(sstable.build_table([(b"a", b"")]))
    with pytest.raises(CorruptFileError, match="header"):
        BundleReader(prefix)


def test_unparseable_entry(tmp_path):
    prefix = str(tmp_path / "junk")
    Path(index_filename(prefix)).write_bytes(sstable.build_table(
        [(b"", _header(1).SerializeToString()), (b"k", b"\xff\xff\xff")]))
    with BundleReader(prefix) as reader:
        assert reader.keys() == ["k"]
        with pytest.raises(CorruptFileError, match="BundleEntryProto"):
            reader.read("k")


@pytest.mark.parametrize("mutate,match", [
    (lambda b: b[:-1], "magic"),
    (lambda b: b[:30], "too short"),
    (lambda b: b"", "too short"),
    (lambda b: b[:10] + bytes([b[10] ^ 1]) + b[11:], "checksum"),
    (lambda b: os.urandom(len(b)), "table"),
    (lambda b: b[:-48] + b"\xff" * 40 + b[-8:], "table"),
])
def test_bad_index_bytes(bundle, mutate, match):
    path = Path(index_filename(bundle))
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(CorruptFileError, match=match) as info:
        BundleReader(bundle)
    assert info.value.path.endswith(".index")


# --- sstable ------------------------------------------------------------------

def _snappy_literal(data):
    assert len(data) <= 60
    return bytes([(len(data) - 1) << 2]) + data


def test_snappy_decompress():
    # "abcabcabcabcX": literal "abc", copy-1 (len 9, offset 3, overlapping), literal "X".
    stream = bytes([13]) + _snappy_literal(b"abc") + bytes([((9 - 4) << 2) | 1, 3]) + _snappy_literal(b"X")
    assert sstable.snappy_decompress(stream) == b"abcabcabcabcX"
    # copy-2 (tag 2) and copy-4 (tag 3), plus a literal with a 1-byte length (60 + 1 bytes).
    long_literal = bytes(range(61))
    stream = bytes([61 + 5 + 5]) + bytes([60 << 2, 60]) + long_literal
    stream += bytes([((5 - 1) << 2) | 2]) + struct.pack("<H", 61)
    stream += bytes([((5 - 1) << 2) | 3]) + struct.pack("<I", 10)
    out = sstable.snappy_decompress(stream)
    assert out == long_literal + long_literal[:5] + (long_literal + long_literal[:5])[-10:-5]
    for bad in (bytes([5]) + bytes([1, 0]),                     # copy before any output
                bytes([3]) + _snappy_literal(b"ab"),            # shorter than declared
                bytes([1]) + _snappy_literal(b"ab"),            # longer than declared
                bytes([0xff, 0xff, 0xff, 0x7f]) + b"x",         # absurd declared length
                bytes([3]) + bytes([2 << 2]),                   # truncated literal
                bytes([0x80])):                                 # truncated varint
        with pytest.raises(sstable._Corrupt):
            sstable.snappy_decompress(bad)


def test_snappy_compressed_blocks_are_read():
    rows = [(b"", b"header"), (b"key1", b"value" * 3)]
    plain = sstable.build_table(rows)
    # Re-encode the single data block as snappy (literal-only stream).
    data_block_size = sstable.decode_varint(plain, len(plain) - 48, len(plain))
    table = sstable._read_table(memoryview(plain), len(plain))
    assert table == rows and data_block_size
    block = sstable._BlockBuilder(16)
    for key, value in rows:
        block.add(key, value)
    contents = block.finish()
    compressed = sstable.encode_varint(len(contents))
    for i in range(0, len(contents), 60):
        compressed += _snappy_literal(contents[i:i + 60])
    typed = compressed + b"\x01"
    body = typed + struct.pack("<I", sstable.mask_crc(google_crc32c.value(typed)))
    handle = sstable.encode_varint(0) + sstable.encode_varint(len(compressed))
    index = sstable._BlockBuilder(1)
    index.add(b"key1", handle)
    metaindex_at = len(body)
    body += sstable._block_with_trailer(sstable._BlockBuilder(16).finish())
    index_at = len(body)
    index_contents = index.finish()
    body += sstable._block_with_trailer(index_contents)
    footer = (sstable.encode_varint(metaindex_at) + sstable.encode_varint(8) +
              sstable.encode_varint(index_at) + sstable.encode_varint(len(index_contents)))
    body += footer.ljust(40, b"\0") + struct.pack("<Q", sstable.TABLE_MAGIC)
    assert sstable.read_table(body, "x") == rows
    unknown = bytearray(body)
    unknown[len(compressed)] = 7
    unknown[len(compressed) + 1:len(compressed) + 5] = struct.pack(
        "<I", sstable.mask_crc(google_crc32c.value(bytes(unknown[:len(compressed) + 1]))))
    with pytest.raises(CorruptFileError, match="compression type 7"):
        sstable.read_table(bytes(unknown), "x")


def test_crc_mask_matches_leveldb_definition():
    crc = google_crc32c.value(b"foo")
    assert sstable.mask_crc(crc) == ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
    assert sstable.unmask_crc(sstable.mask_crc(crc)) == crc
    assert sstable.mask_crc(crc) != crc


def test_table_restart_points_and_prefix_compression():
    rows = [(b"", b"h")] + [(b"prefix/%03d" % i, b"v%d" % i) for i in range(40)]
    table = sstable.build_table(rows, block_size=1 << 20, restart_interval=16)
    assert sstable.read_table(table, "t") == rows
    assert len(table) < sum(len(k) + len(v) for k, v in rows)        # keys share prefixes
    with pytest.raises(ValueError, match="increase"):
        sstable.build_table([(b"b", b""), (b"a", b"")])


def _data_block_count(table):
    footer = len(table) - sstable.FOOTER_SIZE
    _, _, pos = sstable._read_handle(table, footer, len(table))
    offset, size, _ = sstable._read_handle(table, pos, len(table))
    return len(list(sstable._block_entries(sstable._read_block(table, offset, size, footer, "i"), "i")))


def test_table_with_many_blocks():
    rows = [(b"", b"h")] + [(b"k%06d" % i, b"x" * (i % 50)) for i in range(5000)]
    table = sstable.build_table(rows, block_size=4096)
    assert _data_block_count(table) > 20
    assert sstable.read_table(table, "t") == rows
    assert _data_block_count(sstable.build_table(rows[:10])) == 1


# --- fixtures made by TensorFlow --------------------------------------------

@pytest.mark.parametrize("name", [n for n in fixture_names()
                                  if (FIXTURES / "models" / n / "variables" / "variables.index").exists()])
def test_fixture_variables_match_tensorflow(name):
    expected = np.load(FIXTURES / "expected" / f"{name}.variables.npz", allow_pickle=True)
    with BundleReader(FIXTURES / "models" / name / "variables" / "variables") as reader:
        keys = [k for k in reader.keys() if k != OBJECT_GRAPH_KEY]
        assert sorted(keys) == sorted(expected.files)
        for key in keys:
            value, want = reader.read(key), expected[key]
            assert value.shape == want.shape, key
            if value.dtype == object:
                assert value.tolist() == want.tolist(), key
            else:
                assert value.dtype == want.dtype, key
                assert value.tobytes() == want.tobytes(), key


# --- fuzzing ------------------------------------------------------------------

_FUZZ_VALUES = {
    "a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([b"x", b"yz"], dtype=object),
    "c": np.array([1 + 1j], np.complex64), "d": np.array(True), "e": np.int64(5),
    OBJECT_GRAPH_KEY: np.array(_object_graph().SerializeToString(), dtype=object),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    prefix = _write(tmp_path_factory.mktemp("fuzz") / "variables", _FUZZ_VALUES)
    return (Path(index_filename(prefix)).read_bytes(), Path(data_filename(prefix, 0, 1)).read_bytes())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(target=st.sampled_from(["index", "data"]),
       operation=st.sampled_from(["truncate", "flip", "splice", "overwrite"]),
       position=st.floats(0, 1), payload=st.binary(min_size=1, max_size=24),
       flip=st.integers(1, 255))
def test_mutated_bundles_only_raise_savedmodelerror(tmp_path_factory, pristine, target, operation,
                                                    position, payload, flip):
    prefix = str(tmp_path_factory.mktemp("mutant") / "variables")
    index, data = pristine
    blob = bytearray(index if target == "index" else data)
    at = min(int(position * len(blob)), len(blob) - 1)
    if operation == "truncate":
        blob = blob[:at]
    elif operation == "flip":
        blob[at] ^= flip
    elif operation == "splice":
        blob[at:at] = payload
    else:
        blob[at:at + len(payload)] = payload
    Path(index_filename(prefix)).write_bytes(bytes(blob) if target == "index" else index)
    Path(data_filename(prefix, 0, 1)).write_bytes(bytes(blob) if target == "data" else data)
    try:
        with BundleReader(prefix) as reader:
            for key in reader.keys():
                for probe in (reader.entry, reader.dtype, reader.shape, reader.read):
                    try:
                        probe(key)
                    except SavedModelError:
                        pass
            reader.object_paths()
    except SavedModelError:
        pass
