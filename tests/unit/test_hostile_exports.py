"""Hostile exports (issue 10): pipes, links out of the export, huge claims, odd names.

Each case runs where a hang or a runaway allocation would show: in a forked child
with a timeout and an address-space limit (tests/hostile.py). The only acceptable
outcome is success or a SavedModelError that says what is wrong.
"""
import os
import shutil
import warnings

import numpy as np
import pytest

import sm_notebook
import sm_notebook.builder  # noqa: F401 - imported before forking, so children start warm
import sm_notebook.diagnose  # noqa: F401
import sm_notebook.engine.loader  # noqa: F401
from conftest import fixture_path
from hostile import run_forked, zeros_for
from sm_notebook import SavedModelError
from sm_notebook._proto import saved_model_pb2, tensor_pb2
from sm_notebook.format import savedmodel as files
from sm_notebook.format.tensors import tensor_proto_to_numpy

TF2 = "tf2_module"
TF1 = "tf1_multi_tags"
SHARD = "variables/variables.data-00000-of-00001"
INDEX = "variables/variables.index"


def _copy(tmp_path, name, where="m"):
    target = tmp_path / where
    shutil.copytree(fixture_path(name), target)
    return target


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _inspect_and_diagnose(export_dir):
    return str(_quiet(sm_notebook.inspect, export_dir).diagnose())


def _load_and_call(export_dir, tags=("serve",)):
    model = _quiet(sm_notebook.load, export_dir, tags=list(tags))
    key = next(iter(model.signatures))
    function = model.signatures[key]
    inputs = {k: zeros_for(spec) for k, spec in function.inputs.items()}
    return sorted(function(**inputs))


def _expect_saved_model_error(outcome, match=None):
    kind, value = outcome
    assert kind == "error", f"expected a SavedModelError, got {kind}: {value}"
    name, message, trace, is_saved_model_error = value
    assert is_saved_model_error, f"raw {name} escaped: {message}\n{trace}"
    if match:
        assert match in message, message
    return message


def _write_model(export_dir, model):
    export_dir.mkdir(parents=True, exist_ok=True)
    (export_dir / "saved_model.pb").write_bytes(model.SerializeToString())
    return export_dir


# --- 1. named pipes never block ----------------------------------------------

@pytest.mark.parametrize("name", [SHARD, INDEX, "saved_model.pb", "fingerprint.pb",
                                  "assets/vocab.txt"])
def test_named_pipe_is_refused_by_load(tmp_path, name):
    export = _copy(tmp_path, TF2)
    os.remove(export / name)
    os.mkfifo(export / name)
    outcome = run_forked(_load_and_call, export, timeout=60)
    if name == "fingerprint.pb":  # load does not read fingerprint.pb; it must not hang
        assert outcome[0] == "ok", outcome
    else:
        _expect_saved_model_error(outcome, "named pipe")


@pytest.mark.parametrize("name", [SHARD, INDEX, "saved_model.pb", "fingerprint.pb"])
def test_named_pipe_is_reported_by_inspect(tmp_path, name):
    export = _copy(tmp_path, TF2)
    os.remove(export / name)
    os.mkfifo(export / name)
    kind, value = run_forked(_inspect_and_diagnose, export, timeout=60)
    if kind == "ok":
        assert "named pipe" in value  # the diagnostics name the pipe
    else:
        _expect_saved_model_error((kind, value), "named pipe")


def test_named_pipe_shard_of_tf1_model(tmp_path):
    export = _copy(tmp_path, TF1)
    os.remove(export / SHARD)
    os.mkfifo(export / SHARD)
    _expect_saved_model_error(run_forked(_load_and_call, export, timeout=60), "named pipe")


def test_directory_in_place_of_saved_model_pb(tmp_path):
    export = _copy(tmp_path, TF1)
    os.remove(export / "saved_model.pb")
    (export / "saved_model.pb").mkdir()
    with pytest.raises(SavedModelError, match="is a directory"):
        sm_notebook.inspect(export)


# --- 2. sizes: saved_model.pb over 2 GiB, big reads under a memory limit ------

def _sparse_saved_model(tmp_path, size):
    export = tmp_path / "big"
    export.mkdir()
    with open(export / "saved_model.pb", "wb") as handle:
        handle.truncate(size)
    return export


def test_saved_model_over_2_gib_is_refused_before_reading(tmp_path):
    export = _sparse_saved_model(tmp_path, 2**31 + 16)
    message = _expect_saved_model_error(run_forked(sm_notebook.inspect, export, headroom=256 << 20))
    assert "2,147,483,664 bytes" in message and "at most 2,147,483,647" in message
    _expect_saved_model_error(run_forked(sm_notebook.load, export, headroom=256 << 20),
                              "at most 2,147,483,647")


def test_saved_model_larger_than_memory_is_a_saved_model_error(tmp_path):
    export = _sparse_saved_model(tmp_path, 1536 << 20)
    _expect_saved_model_error(run_forked(sm_notebook.inspect, export, headroom=512 << 20),
                              "memory")


# --- 3. allocations a model's numbers control are capped ----------------------

def _splat(dtype, dims, value=None):
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in dims:
        proto.tensor_shape.dim.add().size = size
    if value is not None:
        proto.dcomplex_val.extend(value)
    return proto


def _model_with_numpy_value_signature(tensor):
    """A tiny TF2-style model whose one function's input signature embeds ``tensor``."""
    model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    meta_graph = model.meta_graphs.add()
    meta_graph.meta_info_def.tags.append("serve")
    graph = meta_graph.object_graph_def
    root = graph.nodes.add()
    root.children.add(node_id=1, local_name="f")
    graph.nodes.add().function.concrete_functions.append("__inference_f_1")
    meta_graph.graph_def.library.function.add().signature.name = "__inference_f_1"
    signature = graph.concrete_functions["__inference_f_1"].canonicalized_input_signature
    args, kwargs = signature.tuple_value.values.add(), signature.tuple_value.values.add()
    args.tuple_value.values.add().numpy_value.CopyFrom(tensor)
    kwargs.dict_value.SetInParent()
    return model


def test_inspect_does_not_materialise_a_huge_constant(tmp_path):
    # complex128 of 2**27 elements from one value: 2 GiB if decoded.
    tensor = _splat(tensor_pb2.DT_COMPLEX128, [1 << 27], [1.0, 2.0])
    model = _model_with_numpy_value_signature(tensor)
    assert len(model.SerializeToString()) < 150
    export = _write_model(tmp_path / "m", model)
    kind, value = run_forked(_inspect_and_diagnose, export, headroom=512 << 20)
    assert kind == "ok", value
    info = sm_notebook.inspect(export)
    described = repr(info.meta_graphs[0].concrete_functions)
    assert "shape=(134217728,)" in described and "complex128" in described


def test_splat_constant_is_refused_before_allocating():
    tensor = _splat(tensor_pb2.DT_COMPLEX128, [1 << 27], [1.0, 2.0])
    kind, value = run_forked(tensor_proto_to_numpy, tensor, headroom=512 << 20)
    assert kind == "error" and value[3], value
    assert "would allocate" in value[1]
    small = tensor_proto_to_numpy(_splat(tensor_pb2.DT_COMPLEX128, [4], [1.0, 2.0]))
    assert small.tolist() == [1 + 2j] * 4


def _graph_model_with_const(tensor):
    model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    meta_graph = model.meta_graphs.add()
    meta_graph.meta_info_def.tags.append("serve")
    node = meta_graph.graph_def.node.add(name="c", op="Const")
    node.attr["dtype"].type = tensor.dtype
    node.attr["value"].tensor.CopyFrom(tensor)
    signature = meta_graph.signature_def["serving_default"]
    signature.method_name = "tensorflow/serving/predict"
    signature.outputs["y"].name = "c:0"
    signature.outputs["y"].dtype = tensor.dtype
    return model


def test_load_refuses_a_splat_constant_above_the_cap(tmp_path):
    export = _write_model(tmp_path / "m", _graph_model_with_const(
        _splat(tensor_pb2.DT_COMPLEX128, [1 << 27], [1.0, 2.0])))
    _expect_saved_model_error(run_forked(_load_and_call, export, headroom=1 << 30),
                              "would allocate")


# --- 4. raw exceptions become SavedModelError ----------------------------------

def _rewrite_index_entry(prefix, key, **fields):
    from sm_notebook.format import sstable
    path = f"{prefix}.index"
    rows = sstable.read_table(open(path, "rb").read(), path)
    out = []
    for row_key, value in rows:
        if row_key == key.encode():
            entry = saved_model_pb2.BundleEntryProto.FromString(value)
            for name, number in fields.items():
                setattr(entry, name, number)
            value = entry.SerializeToString()
        out.append((row_key, value))
    with open(path, "wb") as handle:
        handle.write(sstable.build_table(out))


def test_negative_checkpoint_offset(tmp_path):
    from sm_notebook.format.bundle import BundleReader, BundleWriter
    prefix = tmp_path / "ckpt"
    with BundleWriter(prefix) as writer:
        writer.add("a", np.arange(4, dtype=np.float32))
        writer.add("b", np.arange(4, dtype=np.float32))
    _rewrite_index_entry(prefix, "b", offset=-8)
    with BundleReader(prefix) as reader:
        with pytest.raises(SavedModelError, match="negative offset"):
            reader.read("b")
        assert reader.read("a").tolist() == [0, 1, 2, 3]


def test_a_header_claiming_billions_of_shards_is_refused(tmp_path):
    """Found by the long fuzz run: Builder.save walked 2**31 shard names (a hang)."""
    from sm_notebook.format import sstable
    from sm_notebook.format.bundle import BundleReader, BundleWriter
    prefix = tmp_path / "ckpt"
    with BundleWriter(prefix) as writer:
        writer.add("a", np.arange(4, dtype=np.float32))
    path = f"{prefix}.index"
    rows = sstable.read_table(open(path, "rb").read(), path)
    header = saved_model_pb2.BundleHeaderProto.FromString(rows[0][1])
    header.num_shards = 2**31 - 1
    rows[0] = (rows[0][0], header.SerializeToString())
    with open(path, "wb") as handle:
        handle.write(sstable.build_table(rows))
    with pytest.raises(SavedModelError, match="2,147,483,647 data shards"):
        BundleReader(prefix)


def _set_asset_filename(export, filename):
    model = files.read_saved_model(export)
    for meta_graph in model.meta_graphs:
        for asset in meta_graph.asset_file_def:
            asset.filename = filename
    (export / "saved_model.pb").write_bytes(model.SerializeToString())


@pytest.mark.parametrize("filename", ["vo\x00cab.txt", "v" * 5000],
                         ids=["nul-byte", "5000-characters"])
def test_unusable_asset_name(tmp_path, filename):
    export = _copy(tmp_path, TF2)
    _set_asset_filename(export, filename)
    report = _inspect_and_diagnose(export)
    assert "missing-asset" in report
    with pytest.raises(SavedModelError):
        _load_and_call(export)
    _quiet(sm_notebook.Builder.from_saved_model, export)


def test_rank_100_constant():
    tensor = tensor_pb2.TensorProto(dtype=tensor_pb2.DT_FLOAT)
    for _ in range(100):
        tensor.tensor_shape.dim.add().size = 1
    tensor.float_val.append(1.0)
    with pytest.raises(SavedModelError, match="rank 100.*at most 64"):
        tensor_proto_to_numpy(tensor)


def test_rank_100_checkpoint_entry(tmp_path):
    from sm_notebook.format.bundle import BundleReader, BundleWriter
    prefix = tmp_path / "ckpt"
    with BundleWriter(prefix) as writer:
        writer.add("a", np.zeros((1,) * 32, np.float32))
    from sm_notebook.format import sstable
    path = f"{prefix}.index"
    rows = sstable.read_table(open(path, "rb").read(), path)
    entry = saved_model_pb2.BundleEntryProto.FromString(rows[1][1])
    for _ in range(68):
        entry.shape.dim.add().size = 1
    rows[1] = (rows[1][0], entry.SerializeToString())
    with open(path, "wb") as handle:
        handle.write(sstable.build_table(rows))
    with BundleReader(prefix) as reader:
        assert len(reader.shape("a")) == 100
        with pytest.raises(SavedModelError, match="rank 100"):
            reader.read("a")


def test_non_utf8_shared_name_on_load(tmp_path):
    export = _copy(tmp_path, TF1)
    model = files.read_saved_model(export)
    for meta_graph in model.meta_graphs:
        meta_graph.saver_def.restore_op_name = ""  # restore by name, reading shared_name
        for node in meta_graph.graph_def.node:
            if node.op == "VariableV2":
                node.attr["shared_name"].s = b"\xff\xfe"
    (export / "saved_model.pb").write_bytes(model.SerializeToString())
    with pytest.raises(SavedModelError, match="not UTF-8"):
        _quiet(sm_notebook.load, export, tags=["serve"])


def test_overlapping_slices_cannot_claim_a_huge_tensor(tmp_path):
    """Slices that share their bytes would let a small checkpoint claim any shape."""
    from sm_notebook.format import sstable
    from sm_notebook.format.bundle import BundleReader, BundleWriter, data_filename
    prefix = tmp_path / "ckpt"
    with BundleWriter(prefix) as writer:
        writer.add("piece", np.arange(4, dtype=np.float32))
    path = f"{prefix}.index"
    rows = sstable.read_table(open(path, "rb").read(), path)
    piece = saved_model_pb2.BundleEntryProto.FromString(rows[1][1])
    full = saved_model_pb2.BundleEntryProto(dtype=piece.dtype)
    full.shape.dim.add().size = 8
    slice_rows = []
    for start in (0, 4):
        extent = full.slices.add().extent.add()
        extent.start, extent.length = start, 4
        key = (b"\x00" + b"big\x00\x01" + b"\x01\x01" + bytes([0x80 + start]) + b"\x84")
        slice_rows.append((key, piece.SerializeToString()))  # both point at the same bytes
    rows = [rows[0]] + sorted(slice_rows) + [(b"big", full.SerializeToString())]
    with open(path, "wb") as handle:
        handle.write(sstable.build_table(sorted(rows)))
    assert os.path.getsize(data_filename(prefix, 0, 1)) == 16
    with BundleReader(prefix) as reader:
        with pytest.raises(SavedModelError, match="share bytes"):
            reader.read("big")


# --- 5. links out of the export are never followed ------------------------------

def _move_out_and_link(export, name, outside):
    outside.mkdir(exist_ok=True)
    moved = outside / os.path.basename(name)
    shutil.move(export / name, moved)
    os.symlink(moved, export / name)


@pytest.mark.parametrize("name", [SHARD, INDEX, "variables", "saved_model.pb", "assets"])
def test_load_refuses_links_out_of_the_export(tmp_path, name):
    export = _copy(tmp_path, TF2)
    _move_out_and_link(export, name, tmp_path / "elsewhere")
    with pytest.raises(SavedModelError, match="outside its export directory"):
        _load_and_call(export)


@pytest.mark.parametrize("name", [SHARD, INDEX, "saved_model.pb"])
def test_tf1_load_refuses_links_out_of_the_export(tmp_path, name):
    export = _copy(tmp_path, TF1)
    _move_out_and_link(export, name, tmp_path / "elsewhere")
    with pytest.raises(SavedModelError, match="outside its export directory"):
        _load_and_call(export)


def test_inspect_reports_links_out_of_the_export(tmp_path):
    export = _copy(tmp_path, TF2)
    _move_out_and_link(export, "saved_model.pb", tmp_path / "elsewhere")
    with pytest.raises(SavedModelError, match="outside its export directory"):
        sm_notebook.inspect(export)
    export = _copy(tmp_path, TF2, "m2")
    _move_out_and_link(export, INDEX, tmp_path / "elsewhere2")
    report = _inspect_and_diagnose(export)
    assert "corrupt-variables" in report and "outside its export directory" in report
    export = _copy(tmp_path, TF2, "m3")
    _move_out_and_link(export, "assets", tmp_path / "elsewhere3")
    info = sm_notebook.inspect(export)
    assert info.asset_files == [] and not info.meta_graphs[0].assets[0].exists


def test_links_inside_the_export_are_followed(tmp_path):
    export = _copy(tmp_path, TF2)
    expected = _load_and_call(_copy(tmp_path, TF2, "plain"))
    store = export / "store"
    store.mkdir()
    for name in (SHARD, INDEX, "saved_model.pb", "assets/vocab.txt"):
        moved = store / os.path.basename(name)
        shutil.move(export / name, moved)
        os.symlink(os.path.relpath(moved, (export / name).parent), export / name)
    assert _load_and_call(export) == expected
    assert sm_notebook.inspect(export).asset_files == ["vocab.txt"]


def test_large_pbtxt_is_refused_with_a_way_out(tmp_path):
    """Python's text_format parses ~1 MB/s: above MAX_PBTXT_BYTES a clear refusal, and the
    conversion the message gives yields a binary export that loads."""
    from sm_notebook.format.savedmodel import MAX_PBTXT_BYTES
    export = _copy(tmp_path, "tf1_pbtxt")
    text = (export / "saved_model.pbtxt").read_text()
    padded = text + "\n" + "#" * (MAX_PBTXT_BYTES - len(text) + 10) + "\n"
    (export / "saved_model.pbtxt").write_text(padded)
    with pytest.raises(SavedModelError, match="at most 8,388,608 bytes.*parse_saved_model_text"):
        sm_notebook.inspect(export)
    from pathlib import Path
    from sm_notebook.format.savedmodel import parse_saved_model_text
    binary = parse_saved_model_text(Path(export / "saved_model.pbtxt").read_text())
    (export / "saved_model.pb").write_bytes(binary.SerializeToString())
    os.remove(export / "saved_model.pbtxt")
    assert sm_notebook.inspect(export).tag_sets
