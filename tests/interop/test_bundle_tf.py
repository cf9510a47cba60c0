"""TensorBundle reading and writing against TensorFlow's own checkpoint code."""
import os

import ml_dtypes
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorflow.python.framework import dtypes as tf_dtypes  # noqa: E402

from sm_notebook.format.bundle import (  # noqa: E402
    OBJECT_GRAPH_KEY, BundleReader, BundleWriter, copy_bundle,
)
from sm_notebook.format.tensors import dtype_to_numpy  # noqa: E402

#: Every dtype TensorFlow 2 variables can be checkpointed with on CPU.
VARIABLE_DTYPES = ["float16", "bfloat16", "float32", "float64", "complex64", "complex128",
                   "string", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                   "uint32", "uint64", "float8_e5m2", "float8_e4m3fn", "int4", "uint4", "int2",
                   "uint2", "float4_e2m1fn", "qint8", "quint8", "qint32"]


def _value(name, shape=(2, 3)):
    dtype = getattr(tf_dtypes, name)
    count = int(np.prod(shape))
    if name == "string":
        return tf.constant(np.array([b"", b"abc", b"\x00\xff", "\u00e9".encode(), b"x" * 300, b"z"]
                                    [:count], dtype=object).reshape(shape))
    if name.startswith("q"):
        return tf.cast(tf.constant(np.arange(count).reshape(shape) % 5), dtype)
    values = np.arange(count).reshape(shape) % 4 - (2 if name in ("int2", "int4") else 0)
    if name == "bool":
        return tf.constant(values % 2 == 0)
    if dtype.is_complex:
        return tf.constant((values + 0.5j).astype(dtype.as_numpy_dtype))
    if dtype.is_floating:
        values = values * 0.5
    return tf.constant(np.asarray(values).astype(dtype.as_numpy_dtype), dtype=dtype)


def _same(ours, theirs):
    theirs = np.asarray(theirs)
    if theirs.dtype.names:                        # TF's structured quantized dtypes
        theirs = theirs.view(theirs.dtype[0])
    assert ours.shape == theirs.shape
    if ours.dtype == object:
        assert ours.tolist() == theirs.tolist()
    else:
        assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
        assert ours.tobytes() == theirs.tobytes()


def _compare_with_tensorflow(prefix, skip=()):
    tf_reader = tf.train.load_checkpoint(str(prefix))
    shapes = tf_reader.get_variable_to_shape_map()
    dtypes = tf_reader.get_variable_to_dtype_map()
    with BundleReader(prefix) as reader:
        assert sorted(reader.keys()) == sorted(shapes)
        for key in reader.keys():
            assert reader.shape(key) == tuple(shapes[key]), key
            assert reader.dtype_enum(key) == dtypes[key].as_datatype_enum, key
            if key not in skip:
                _same(reader.read(key), tf_reader.get_tensor(key))
    return tf_reader


def test_tf2_checkpoint_of_every_dtype(tmp_path):
    variables = {name: tf.Variable(_value(name)) for name in VARIABLE_DTYPES}
    variables["scalar"] = tf.Variable(3.5)
    variables["empty"] = tf.Variable(tf.zeros((0, 4)))
    variables["big"] = tf.Variable(tf.random.uniform((300, 257)))
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "ckpt"))
    _compare_with_tensorflow(prefix)
    with BundleReader(prefix) as reader:
        paths = reader.object_paths()
        assert paths["float32"] == "float32/.ATTRIBUTES/VARIABLE_VALUE"
        assert set(paths.values()) <= set(reader.keys())
        assert len(paths) == len(variables)


def test_nested_object_graph_paths(tmp_path):
    module = tf.Module()
    module.encoder = tf.Module()
    module.encoder.layers = [tf.Module(), tf.Module()]
    module.encoder.layers[1].kernel = tf.Variable(tf.ones((2, 2)))
    module.encoder.shared = module.encoder.layers[1].kernel      # a second path to one variable
    module.bias = tf.Variable([1.0])
    prefix = tf.train.Checkpoint(model=module).write(str(tmp_path / "nested"))
    with BundleReader(prefix) as reader:
        paths = reader.object_paths()
        graph = reader.object_graph()
        # TensorFlow names a node by its breadth-first shortest path, and so do we.
        kernel_key = paths["model/encoder/shared"]
        assert kernel_key == "model/encoder/shared/.ATTRIBUTES/VARIABLE_VALUE"
        assert "model/encoder/layers/1/kernel" not in paths
        assert all(key == f"{path}/.ATTRIBUTES/VARIABLE_VALUE" for path, key in paths.items())
        assert paths["model/bias"] == "model/bias/.ATTRIBUTES/VARIABLE_VALUE"
        _same(reader.read(kernel_key), np.ones((2, 2), np.float32))
        node = next(i for i, n in enumerate(graph.nodes)
                    if [a.checkpoint_key for a in n.attributes] == [kernel_key])
        assert reader.checkpoint_key_for_node(node) == [kernel_key]
    listed = dict(tf.train.list_variables(prefix))
    assert set(paths.values()) <= set(listed)


def test_saved_model_variables_and_bound_inputs(tmp_path):
    module = tf.Module()
    module.w = tf.Variable([[1.0, 2.0]])
    module.f = tf.function(lambda x: tf.matmul(x, module.w, transpose_b=True),
                           input_signature=[tf.TensorSpec([None, 2])])
    tf.saved_model.save(module, str(tmp_path / "sm"))
    prefix = tmp_path / "sm" / "variables" / "variables"
    _compare_with_tensorflow(prefix, skip={OBJECT_GRAPH_KEY})
    from sm_notebook._proto import saved_model_pb2
    saved = saved_model_pb2.SavedModel.FromString((tmp_path / "sm" / "saved_model.pb").read_bytes())
    object_graph = saved.meta_graphs[0].object_graph_def
    bound = [node_id for function in object_graph.concrete_functions.values()
             for node_id in function.bound_inputs]
    assert bound
    with BundleReader(prefix) as reader:
        for node_id in bound:
            assert reader.checkpoint_key_for_node(node_id) == ["w/.ATTRIBUTES/VARIABLE_VALUE"]


def test_tf1_partitioned_variables(tmp_path):
    prefix = str(tmp_path / "tf1" / "model")
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        partitioned = tf.compat.v1.get_variable(
            "embedding", shape=[10, 3], partitioner=tf.compat.v1.fixed_size_partitioner(3),
            initializer=tf.compat.v1.random_normal_initializer())
        plain = tf.compat.v1.get_variable("plain", initializer=tf.constant([b"a", b"bb"]))
        session.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().save(session, prefix, write_meta_graph=False)
        expected = session.run(tf.concat(list(partitioned), axis=0))
        expected_plain = session.run(plain)
    tf_reader = _compare_with_tensorflow(prefix)
    with BundleReader(prefix) as reader:
        assert reader.entry("embedding").slices
        _same(reader.read("embedding"), expected)
        _same(reader.read("plain"), expected_plain.astype(object))
        _same(tf_reader.get_tensor("embedding"), expected)


def test_sharded_checkpoint(tmp_path):
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=2000)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    variables = {f"v{i}": tf.Variable(tf.fill([100], float(i))) for i in range(6)}
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "sharded"), options=options)
    with BundleReader(prefix) as reader:
        assert reader.header.num_shards > 1
        assert len({reader.entry(k).shard_id for k in reader.keys()}) > 1
    _compare_with_tensorflow(prefix)


def _our_values():
    rng = np.random.default_rng(1)
    values = {
        "f32": rng.standard_normal((4, 5)).astype(np.float32), "f64": np.float64(-1.25),
        "f16": np.array([0.5, -2], np.float16), "bf16": np.array([1.5, 7], ml_dtypes.bfloat16),
        "c64": np.array([1 - 1j], np.complex64), "c128": np.array([[2j, 3]], np.complex128),
        "bool": np.array([[True, False]]), "i8": np.array([-5], np.int8),
        "i16": np.array([300], np.int16), "i32": np.arange(10, dtype=np.int32),
        "i64": np.array([-(2 ** 40)], np.int64), "u8": np.array([200], np.uint8),
        "u16": np.array([60000], np.uint16), "u32": np.array([4e9], np.uint32),
        "u64": np.array([2 ** 63 + 5], np.uint64), "f8": np.array([1.5], ml_dtypes.float8_e4m3fn),
        "i4": np.array([-3, 5], ml_dtypes.int4), "u4": np.array([9], ml_dtypes.uint4),
        "strings": np.array([[b"", b"x" * 1000], ["\u00e9", "b"]], dtype=object),
        "empty": np.zeros((3, 0), np.float32),
        "layer/.ATTRIBUTES/VARIABLE_VALUE": np.ones((2, 2), np.float32),
    }
    return values


def test_tensorflow_reads_our_bundles(tmp_path):
    values = _our_values()
    prefix = str(tmp_path / "ours" / "variables")
    with BundleWriter(prefix) as writer:
        for key, value in values.items():
            writer.add(key, value)
    tf_reader = tf.train.load_checkpoint(prefix)
    assert sorted(tf_reader.get_variable_to_shape_map()) == sorted(values)
    for key, value in values.items():
        value = np.asarray(value)
        if value.dtype == object:
            value = np.array([v.encode() if isinstance(v, str) else v for v in value.reshape(-1)],
                             dtype=object).reshape(value.shape)
        _same(value, tf_reader.get_tensor(key))
    restored = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=["f32", "strings", "bf16"],
                                    shape_and_slices=["", "", ""],
                                    dtypes=[tf.float32, tf.string, tf.bfloat16])
    _same(restored[0].numpy(), values["f32"])
    _same(restored[2].numpy(), values["bf16"])
    assert restored[1].numpy().tolist() == [[b"", b"x" * 1000], ["\u00e9".encode(), b"b"]]
    # RestoreV2 with a slice spec reads part of a tensor we wrote whole.
    part = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=["f32"], shape_and_slices=["4 5 1,2:-"],
                                dtypes=[tf.float32])[0]
    _same(part.numpy(), values["f32"][1:3])


def test_tf1_saver_restores_our_bundle(tmp_path):
    prefix = str(tmp_path / "tf1" / "variables")
    with BundleWriter(prefix) as writer:
        writer.add("w", np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
        writer.add("step", np.int64(42))
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        w = tf.compat.v1.get_variable("w", shape=[2, 2])
        step = tf.compat.v1.get_variable("step", shape=[], dtype=tf.int64)
        tf.compat.v1.train.Saver([w, step]).restore(session, prefix)
        assert session.run(w).tolist() == [[1, 2], [3, 4]] and session.run(step) == 42


def test_edited_saved_model_loads_in_tensorflow(tmp_path):
    module = tf.Module()
    module.w = tf.Variable([1.0, 2.0, 3.0])
    module.label = tf.Variable(b"old")
    module.f = tf.function(lambda: module.w * 2.0, input_signature=[])
    export = tmp_path / "export"
    tf.saved_model.save(module, str(export))
    source = str(export / "variables" / "variables")
    staging = str(tmp_path / "staging" / "variables")
    with BundleReader(source) as reader, BundleWriter(staging) as writer:
        for key in reader.keys():
            if key == "w/.ATTRIBUTES/VARIABLE_VALUE":
                writer.add(key, np.array([10.0, 20.0, 30.0], np.float32))
            elif key == "label/.ATTRIBUTES/VARIABLE_VALUE":
                writer.add(key, np.array(b"new", dtype=object))
            else:
                writer.add_from(reader, key)
    copy_bundle(staging, source)
    assert not [n for n in os.listdir(export / "variables") if "tempstate" in n]
    loaded = tf.saved_model.load(str(export))
    assert loaded.f().numpy().tolist() == [20.0, 40.0, 60.0]
    assert loaded.label.numpy() == b"new"
    # ... and the TF1 loader restores it too.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        tf.compat.v1.saved_model.load(session, ["serve"], str(export))


def test_variant_checkpoint(tmp_path):
    dataset = tf.data.Dataset.range(10)
    iterator = iter(dataset)
    next(iterator)
    prefix = tf.train.Checkpoint(iterator=iterator).write(str(tmp_path / "it"))
    tf_reader = tf.train.load_checkpoint(prefix)
    variant_keys = [k for k, d in tf_reader.get_variable_to_dtype_map().items() if d == tf.variant]
    if not variant_keys:
        pytest.skip("this TensorFlow saves iterators without variant tensors")
    with BundleReader(prefix) as reader:
        for key in variant_keys:
            value = reader.read(key)
            assert value.dtype == object and value.size >= 1
            assert all(item.type_name for item in value.reshape(-1))
        with BundleWriter(tmp_path / "copy" / "it") as writer:
            for key in reader.keys():
                writer.add_from(reader, key)
    restored_iterator = iter(dataset)
    tf.train.Checkpoint(iterator=restored_iterator).read(str(tmp_path / "copy" / "it")).assert_consumed()
    assert next(restored_iterator).numpy() == 1


def test_reader_dtypes_match_tensorflow_numpy_types():
    for name in VARIABLE_DTYPES:
        dtype = getattr(tf_dtypes, name)
        storage = np.dtype(dtype.as_numpy_dtype)
        if storage.names:
            storage = storage[0]
        assert dtype_to_numpy(dtype.as_datatype_enum) == (object if name == "string" else storage)
