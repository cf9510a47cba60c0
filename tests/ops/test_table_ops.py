"""Hash-table kernels against TensorFlow, as programs of raw ops sharing one table state."""
from __future__ import annotations

import uuid

import numpy as np
import pytest

from harness import run_kernel
from raw_oracle import run_program
from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.ops import registry
from sm_notebook.engine.ops.table_ops import TableHandle
from sm_notebook.errors import SavedModelError


S, I32, I64, F32, F64, B = (np.dtype(t) for t in (object, np.int32, np.int64, np.float32, np.float64,
                                                    np.bool_))


def strings(*values):
    out = np.empty(len(values), object)
    out[:] = [v.encode() if isinstance(v, str) else v for v in values]
    return out


def table_step(name, key_dtype, value_dtype, op="HashTableV2", shared=None, **extra):
    attrs = {"key_dtype": key_dtype, "value_dtype": value_dtype,
             "shared_name": shared or f"{name}_{uuid.uuid4().hex}", **extra}
    return ([name], op, {}, attrs)


def find(out, table, keys, default):
    return ([out], "LookupTableFindV2", {"table_handle": f"${table}", "keys": keys,
                                         "default_value": default}, {})


def export(table, kd, vd, prefix="e"):
    return ([f"{prefix}_keys", f"{prefix}_values"], "LookupTableExportV2",
            {"table_handle": f"${table}"}, {"Tkeys": kd, "Tvalues": vd})


def size(out, table):
    return ([out], "LookupTableSizeV2", {"table_handle": f"${table}"}, {})


def init(table, keys, values, op="InitializeTableV2"):
    return ([], op, {"table_handle": f"${table}", "keys": keys, "values": values}, {})


@pytest.mark.parametrize("kd,vd,keys,values,probe,default", [
    (S, I64, strings("a", "b", "c"), np.asarray([1, 2, 3], I64), strings("b", "z", "a", ""), np.int64(-1)),
    (I64, S, np.asarray([5, -1, 7], I64), strings("five", "m1", "seven"), np.asarray([[7], [0]], I64),
     strings("?").reshape(())),
    (I32, F32, np.asarray([1, 2], I32), np.asarray([0.5, 1.5], F32), np.asarray([2, 3, 1], I32),
     np.float32(9)),
    (S, B, strings("y", "n"), np.asarray([True, False]), strings("n", "y", "?"), np.bool_(False)),
    (S, F64, strings("pi"), np.asarray([3.14], F64), strings("pi", "e"), np.asarray([-1.0, -2.0], F64)),
    (S, I64, strings("a", "a", "b"), np.asarray([1, 1, 2], I64), strings("a", "b"), np.int64(0)),
])
def test_static_table(kd, vd, keys, values, probe, default):
    steps = [table_step("t", kd, vd), size("n0", "t"), init("t", keys, values),
             find("f", "t", probe, default), size("n", "t"), export("t", kd, vd)]
    ours, error = run_program(steps)
    assert error is None and isinstance(ours["t"], TableHandle)


@pytest.mark.parametrize("case", ["reinit-same", "reinit-different", "reinit-same-with-duplicate",
                                  "duplicate-key-conflict", "find-before-init", "insert-immutable",
                                  "import-into-initialized", "wrong-key-dtype", "import-fresh"])
def test_static_table_rules(case):
    keys, values = strings("a", "b"), np.asarray([1, 2], I64)
    make = table_step("t", S, I64)
    programs = {
        "reinit-same": [make, init("t", keys, values), init("t", keys[::-1], values[::-1])],
        "reinit-different": [make, init("t", keys, values), init("t", keys[:1], values[:1])],
        "reinit-same-with-duplicate": [make, init("t", keys, values),
                                       init("t", strings("a", "b", "a"), np.asarray([1, 2, 1], I64))],
        "duplicate-key-conflict": [make, init("t", strings("a", "a"), values)],
        "find-before-init": [make, find("f", "t", keys, np.int64(0))],
        "insert-immutable": [make, init("t", keys, values),
                             init("t", strings("c"), np.asarray([3], I64), "LookupTableInsertV2")],
        "import-into-initialized": [make, init("t", keys, values),
                                    init("t", strings("c"), np.asarray([3], I64), "LookupTableImportV2")],
        "import-fresh": [make, init("t", keys, values, "LookupTableImportV2"),
                         find("f", "t", keys, np.int64(0))],
        "wrong-key-dtype": [make, init("t", keys, values),
                            find("f", "t", np.asarray([1], I32), np.int64(0))],
    }
    run_program(programs[case] + [size("n", "t")])


def test_shared_names():
    shared = f"shared_{uuid.uuid4().hex}"
    steps = [table_step("a", S, I64, shared=shared), table_step("b", S, I64, shared=shared),
             init("a", strings("q"), np.asarray([7], I64)), find("f", "b", strings("q", "r"), np.int64(0)),
             table_step("c", S, I32, shared=shared)]
    ours, error = run_program(steps)
    assert error is not None  # conflicting dtypes under one shared name
    assert ours["a"] == ours["b"]


def test_mutable_tables():
    steps = [
        table_step("m", I64, F32, op="MutableHashTableV2"),
        find("f0", "m", np.asarray([1], I64), np.float32(-1)),
        init("m", np.asarray([1, 2, 3], I64), np.asarray([1, 2, 3], F32), "LookupTableInsertV2"),
        init("m", np.asarray([2, 8, 8], I64), np.asarray([20, 1, 2], F32), "LookupTableInsertV2"),
        ([], "LookupTableRemoveV2", {"table_handle": "$m", "keys": np.asarray([3, 9], I64)}, {}),
        size("n", "m"), export("m", I64, F32),
        find("f1", "m", np.asarray([[1, 2], [3, 8]], I64), np.float32(-1)),
        find("f2", "m", np.asarray([1, 5], I64), np.asarray([-1, -5], F32)),
        init("m", np.asarray([5], I64), np.asarray([5], F32), "LookupTableImportV2"),
        export("m", I64, F32, "e2"),
        table_step("v", S, I64, op="MutableHashTableOfTensorsV2", value_shape=(2,)),
        init("v", strings("a", "b"), np.asarray([[1, 2], [3, 4]], I64), "LookupTableInsertV2"),
        find("g", "v", strings("a", "z"), np.asarray([0, -1], I64)),
        find("g2", "v", strings("b", "z"), np.asarray([[5, 5], [6, 6]], I64)),
        export("v", S, I64, "ev"),
        find("bad", "v", strings("a"), np.int64(-1)),
    ]
    _, error = run_program(steps)
    assert error is not None  # a scalar default for a table of vectors


def test_anonymous_tables():
    steps = [(["a"], "AnonymousHashTable", {}, {"key_dtype": S, "value_dtype": I64}),
             init("a", strings("x", "y"), np.asarray([1, 2], I64)),
             find("f", "a", strings("y", "z"), np.int64(-1)),
             (["m"], "AnonymousMutableHashTable", {}, {"key_dtype": I64, "value_dtype": F32}),
             init("m", np.asarray([3], I64), np.asarray([0.5], F32), "LookupTableInsertV2"),
             find("g", "m", np.asarray([3, 4], I64), np.float32(0)),
             (["v"], "AnonymousMutableHashTableOfTensors", {},
              {"key_dtype": S, "value_dtype": F32, "value_shape": (2,)}),
             init("v", strings("k"), np.asarray([[1, 2]], F32), "LookupTableInsertV2"),
             find("h", "v", strings("k", "q"), np.asarray([0, 0], F32)),
             size("n", "v")]
    ours, error = run_program(steps)
    assert error is None
    again = registry.get_kernel("AnonymousHashTable").fn(
        KernelContext(), [], {"key_dtype": S, "value_dtype": I64, "_node_name": "n"})
    assert again[0] != ours["a"]


def test_tables_without_shared_name_are_per_node():
    ctx = KernelContext()
    make = registry.get_kernel("HashTableV2").fn
    attrs = {"key_dtype": S, "value_dtype": I64, "shared_name": ""}
    assert make(ctx, [], dict(attrs, _node_name="n1")) == make(ctx, [], dict(attrs, _node_name="n1"))
    assert make(ctx, [], dict(attrs, _node_name="n1")) != make(ctx, [], dict(attrs, _node_name="n2"))
    assert make(ctx, [], attrs) != make(ctx, [], attrs)


def write(path, text: bytes):
    path.write_bytes(text)
    return str(path)


VOCAB_CASES = [
    (b"a\tx\r\nb\ty\nc\tz\nb\tw", -2, -1, S, I64, {}),
    (b"a\tx\r\nb\ty\nc\tz\nb\tw", 0, -1, S, I64, {}),
    (b"a\tx\r\nb\ty\nc\tz\nb\ty", 0, 1, S, S, {}),
    (b"a\nb\nc\n", -2, -1, S, I64, {"vocab_size": 2, "offset": 10}),
    (b"a\nb\nc\n", -2, -1, S, I64, {"vocab_size": 4}),
    (b"a\nb\nc\n", -1, -2, I64, S, {}),
    (b"1,2.5\n3,4\n", 0, 1, I64, F32, {"delimiter": ","}),
    (b"1,2.5\n3,4\nx,5\n", 0, 1, I64, F32, {"delimiter": ","}),
    (b"1,2.5\n3,4\nx,5\n", 1, 0, S, S, {"delimiter": ","}),
    (b" 7 ;0.5\n8;1e3\n", 0, 1, I32, F64, {"delimiter": ";"}),
    (b"a\nb\nc\n", 0, 1, S, S, {}),
    (b"a\nb\nc\n", -2, -1, I64, I64, {}),
    (b"a\nb\nc\n", -2, -1, S, I32, {}),
    (b"a\nb\nc\n", -2, -2, S, S, {}),
    (b"a\n\nb\n", -2, -1, S, I64, {}),
    (b"a\tx\n", 0, 1, S, S, {"delimiter": "\tx"}),
    (b"w1 w2\nw3\n", -2, -1, S, I64, {}),
    (b"\xe9t\xe9\nna\xefve\n", -2, -1, S, I64, {}),
]


@pytest.mark.parametrize("content,key_index,value_index,kd,vd,extra", VOCAB_CASES)
def test_text_file_initializer(tmp_path, content, key_index, value_index, kd, vd, extra):
    filename = write(tmp_path / "vocab.txt", content)
    probe = strings("a", "b", "c", "zz") if kd.kind == "O" else np.asarray([0, 1, 7, 3], kd)
    default = strings("-").reshape(()) if vd.kind == "O" else np.zeros((), vd)
    steps = [table_step("t", kd, vd),
             ([], "InitializeTableFromTextFileV2",
              {"table_handle": "$t", "filename": strings(filename).reshape(())},
              {"key_index": key_index, "value_index": value_index, **extra}),
             size("n", "t"), export("t", kd, vd), find("f", "t", probe, default)]
    run_program(steps, export_dir=tmp_path)


def _init_from_file(ctx, filename):
    handle = registry.get_kernel("HashTableV2").fn(
        ctx, [], {"key_dtype": S, "value_dtype": I64, "shared_name": uuid.uuid4().hex})[0]
    registry.get_kernel("InitializeTableFromTextFileV2").fn(
        ctx, [handle, strings(filename).reshape(())], {"key_index": -2, "value_index": -1})
    return handle


def test_vocabulary_must_stay_inside_the_export_dir(tmp_path):
    model = tmp_path / "model"
    (model / "assets").mkdir(parents=True)
    write(tmp_path / "secret.txt", b"password\n")
    inside = write(model / "assets" / "vocab.txt", b"a\nb\n")
    ctx = KernelContext(export_dir=model)
    handle = _init_from_file(ctx, inside)                  # the model's own asset: allowed
    assert len(ctx.resources[handle.key].data) == 2
    _init_from_file(ctx, "assets/vocab.txt")                # relative to the export dir
    for escape in ("../secret.txt", str(tmp_path / "secret.txt"), "assets/../../secret.txt"):
        with pytest.raises(SavedModelError, match="outside its export directory"):
            _init_from_file(ctx, escape)
    with pytest.raises(SavedModelError, match="no export"):
        _init_from_file(KernelContext(), str(tmp_path / "secret.txt"))


def test_missing_vocabulary_file(tmp_path):
    with pytest.raises(SavedModelError, match="cannot read"):
        _init_from_file(KernelContext(export_dir=tmp_path), "absent.txt")


def _dense(name, kd, vd, empty, deleted, op="MutableDenseHashTableV2", **extra):
    attrs = {"value_dtype": vd, **extra}  # key_dtype: the empty_key's
    if op == "MutableDenseHashTableV2":
        attrs["shared_name"] = f"{name}_{uuid.uuid4().hex}"
    return ([name], op, {"empty_key": empty, "deleted_key": deleted}, attrs)


def test_dense_hash_tables():
    """Inserts, removes, lookups (one default or one per key) and sizes as TensorFlow.
    Exports are not compared: TensorFlow's lists every bucket, ours the live entries
    (tests below)."""
    steps = [
        _dense("d", I64, F32, np.int64(-1), np.int64(-2)),
        find("f0", "d", np.asarray([1], I64), np.float32(-1)),
        init("d", np.asarray([1, 2, 3], I64), np.asarray([1, 2, 3], F32), "LookupTableInsertV2"),
        init("d", np.asarray([2, 8], I64), np.asarray([20, 8], F32), "LookupTableInsertV2"),
        ([], "LookupTableRemoveV2", {"table_handle": "$d", "keys": np.asarray([3, 9], I64)}, {}),
        size("n", "d"),
        find("f1", "d", np.asarray([1, 2, 3, 8], I64), np.float32(-1)),
        find("f2", "d", np.asarray([1, 5], I64), np.asarray([-7, -5], F32)),
        find("f_empty", "d", np.asarray([], I64), np.float32(-1)),
        find("f_scalar", "d", np.int64(2), np.float32(-1)),
        _dense("v", S, I64, strings("").reshape(()), strings("<del>").reshape(()), value_shape=(2,)),
        init("v", strings("a", "b"), np.asarray([[1, 2], [3, 4]], I64), "LookupTableInsertV2"),
        find("g", "v", strings("a", "z"), np.asarray([0, -1], I64)),
        _dense("a", I32, F64, np.int32(0), np.int32(-1), op="AnonymousMutableDenseHashTable"),
        init("a", np.asarray([4], I32), np.asarray([0.25], F64), "LookupTableInsertV2"),
        find("h", "a", np.asarray([4, 5], I32), np.float64(9)), size("m", "a"),
    ]
    _, error = run_program(steps)
    assert error is None


@pytest.mark.parametrize("step", [
    init("d", np.asarray([-1], I64), np.asarray([1], F32), "LookupTableInsertV2"),
    init("d", np.asarray([-2], I64), np.asarray([1], F32), "LookupTableInsertV2"),
    find("f", "d", np.asarray([4, -1], I64), np.float32(0)),
    ([], "LookupTableRemoveV2", {"table_handle": "$d", "keys": np.asarray([-2], I64)}, {}),
    find("f", "d", np.asarray([[1, 2]], I64), np.float32(0)),
    init("d", np.asarray([5, 6], I64), np.asarray([5, 6], F32), "LookupTableImportV2"),
], ids=["insert-empty", "insert-deleted", "find-empty", "remove-deleted", "find-matrix",
        "import-vector"])
def test_dense_hash_table_marker_keys_are_refused(step):
    _, error = run_program([_dense("d", I64, F32, np.int64(-1), np.int64(-2)), step])
    assert error is not None


def test_dense_hash_table_same_markers_are_refused():
    _, error = run_program([_dense("d", I64, F32, np.int64(-1), np.int64(-1))])
    assert error is not None


def test_dense_hash_table_exports_its_live_entries():
    ctx = KernelContext()
    make = registry.get_kernel("MutableDenseHashTableV2").fn
    (handle,) = make(ctx, [np.int64(-1), np.int64(-2)], {"key_dtype": I64, "value_dtype": F32,
                                                          "shared_name": "t"})
    registry.get_kernel("LookupTableInsertV2").fn(
        ctx, [handle, np.asarray([4, 9], I64), np.asarray([0.5, 1.5], F32)], {})
    keys, values = registry.get_kernel("LookupTableExportV2").fn(ctx, [handle], {})
    assert keys.tolist() == [[4], [9]] and values.tolist() == [[0.5], [1.5]]


def test_dense_hash_table_imports_tensorflows_bucket_array():
    """What a checkpoint holds (TensorFlow's export: every bucket, free ones holding the
    marker keys) imports into the same entries; an import where TensorFlow's hashing would
    not find a key (a hand-made array) is not reproduced (EXCLUSIONS.md)."""
    import tensorflow as tf

    table = tf.lookup.experimental.DenseHashTable(tf.int64, tf.float32, default_value=-1.0,
                                                  empty_key=-1, deleted_key=-2, initial_num_buckets=8)
    table.insert(tf.constant([5, 7, 9, 12], tf.int64), tf.constant([0.5, 0.7, 0.9, 1.2]))
    table.remove(tf.constant([7], tf.int64))
    keys, values = (t.numpy() for t in table.export())
    ctx = KernelContext()
    (handle,) = registry.get_kernel("MutableDenseHashTableV2").fn(
        ctx, [np.int64(-1), np.int64(-2)], {"key_dtype": I64, "value_dtype": F32, "shared_name": "i"})
    registry.get_kernel("LookupTableImportV2").fn(ctx, [handle, keys, values], {})
    probe = np.asarray([5, 7, 9, 12, 3], I64)
    (found,) = registry.get_kernel("LookupTableFindV2").fn(ctx, [handle, probe, np.float32(-1)], {})
    np.testing.assert_array_equal(found, table.lookup(tf.constant(probe)).numpy())
    (count,) = registry.get_kernel("LookupTableSizeV2").fn(ctx, [handle], {})
    assert int(count) == int(table.size()) == 3
