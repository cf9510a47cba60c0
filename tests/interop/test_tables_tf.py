"""Mutable hash tables in TF2 exports: what TensorFlow inserted before saving is restored
from the checkpoint at load, and inserts are seen by later lookups in the same call, in
later calls and in other signatures, as TensorFlow's loaded model sees them."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import sm_notebook as sm  # noqa: E402

pytestmark = pytest.mark.interop


TABLES = {  # kind: (key dtype, value dtype, default value, anonymous, dense)
    "string_to_int": (tf.string, tf.int64, -1, False, False),
    "int_to_vector": (tf.int64, tf.float32, [-1.0, -2.0], False, False),  # ...OfTensorsV2
    "anonymous": (tf.string, tf.int64, -1, True, False),                  # AnonymousMutableHashTable
    "dense": (tf.int64, tf.float32, -1.0, False, True),                   # MutableDenseHashTableV2
    "dense_vector": (tf.int64, tf.float32, [-1.0, -2.0], False, True),
    "dense_anonymous": (tf.int64, tf.int64, -1, True, True),              # AnonymousMutableDenseHashTable
}


class TableModule(tf.Module):
    def __init__(self, kind):
        super().__init__()
        key_dtype, value_dtype, default, anonymous, dense = TABLES[kind]
        if dense:
            self.table = tf.lookup.experimental.DenseHashTable(
                key_dtype, value_dtype, default_value=default, empty_key=0, deleted_key=-1,
                initial_num_buckets=16, experimental_is_anonymous=anonymous)
        else:
            self.table = tf.lookup.experimental.MutableHashTable(
                key_dtype, value_dtype, default_value=default, experimental_is_anonymous=anonymous)
        value_shape = [None] + ([len(default)] if isinstance(default, list) else [])
        self.insert_lookup = tf.function(self._insert_lookup, input_signature=[
            tf.TensorSpec([None], key_dtype), tf.TensorSpec(value_shape, value_dtype),
            tf.TensorSpec([None], key_dtype)])
        self.lookup = tf.function(self._lookup, input_signature=[tf.TensorSpec([None], key_dtype)])

    def _insert_lookup(self, keys, values, query):
        self.table.insert(keys, values)
        return {"found": self.table.lookup(query), "size": self.table.size()}

    def _lookup(self, query):
        return {"found": self.table.lookup(query), "size": self.table.size()}


def _calls(kind, saved=False):
    """(signature, inputs) in order: two insert-and-lookup calls, then a plain lookup;
    ``saved``: the insert made before saving instead."""
    key_dtype, value_dtype, default, _, _ = TABLES[kind]
    if key_dtype == tf.string:
        keys = lambda *ks: np.array([k.encode() for k in ks], dtype=object)  # noqa: E731
    else:
        keys = lambda *ks: np.array([ord(k) for k in ks], np.int64)  # noqa: E731
    width = len(default) if isinstance(default, list) else 0

    def values(*vs):
        dtype = value_dtype.as_numpy_dtype
        v = np.array(vs, dtype)
        return (v[:, None] * np.arange(1, width + 1, dtype=dtype)) if width else v

    if saved:
        return dict(keys=keys("e", "a", "f"), values=values(5, 9, 6))
    return [("lookup", dict(query=keys("a", "e", "z", "f"))),
            ("insert_lookup", dict(keys=keys("a", "b"), values=values(1, 2), query=keys("a", "c"))),
            ("insert_lookup", dict(keys=keys("c", "a"), values=values(3, 4), query=keys("a", "b", "c", "d"))),
            ("lookup", dict(query=keys("d", "c", "b", "a", "e")))]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    paths = {}
    for kind in TABLES:
        module = TableModule(kind)
        saved = _calls(kind, saved=True)
        module.table.insert(tf.constant(saved["keys"]), tf.constant(saved["values"]))
        if TABLES[kind][4]:
            module.table.remove(tf.constant(saved["keys"][2:]))  # leaves a deleted_key bucket
        path = tmp_path_factory.mktemp(kind)
        tf.saved_model.save(module, str(path), signatures={
            "insert_lookup": module.insert_lookup, "lookup": module.lookup})
        paths[kind] = path
    return paths


def _tf_results(path, kind):
    loaded = tf.saved_model.load(str(path))
    results = []
    for key, inputs in _calls(kind):
        out = loaded.signatures[key](**{k: tf.constant(v) for k, v in inputs.items()})
        results.append({k: v.numpy() for k, v in out.items()})
    return results


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("kind", list(TABLES))
def test_saved_and_inserted_values_are_found_in_later_calls_and_other_signatures(exports, kind,
                                                                               optimize):
    expected = _tf_results(exports[kind], kind)
    model = sm.load(exports[kind], optimize=optimize)
    for (key, inputs), want in zip(_calls(kind), expected):
        got = model.signatures[key](**inputs).numpy()
        assert sorted(got) == sorted(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{kind} {key} {name}")


def test_tf1_saver_restores_table_contents(tmp_path):
    """A TF1 graph's Saver restores MutableHashTable and DenseHashTable contents through
    its saveables (LookupTableImportV2 in the restore op)."""
    graph = tf.Graph()
    with graph.as_default():
        query = tf.compat.v1.placeholder(tf.string, [None], name="query")
        ids = tf.compat.v1.placeholder(tf.int64, [None], name="ids")
        words = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=-1)
        dense = tf.lookup.experimental.DenseHashTable(tf.int64, tf.float32, default_value=-1.0,
                                                      empty_key=0, deleted_key=-1,
                                                      initial_num_buckets=8)
        fill = [words.insert(tf.constant(["p", "q"]), tf.constant([10, 20], tf.int64)),
                dense.insert(tf.constant([3, 4], tf.int64), tf.constant([0.3, 0.4]))]
        outputs = {"word": words.lookup(query), "value": dense.lookup(ids)}
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(fill)
            feeds = {"query": np.array([b"q", b"x", b"p"], object), "ids": np.array([4, 5, 3])}
            expected = session.run(outputs, {query: feeds["query"], ids: feeds["ids"]})
            builder = tf.compat.v1.saved_model.Builder(str(tmp_path / "m"))
            signature = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
                {"query": query, "ids": ids}, outputs)
            builder.add_meta_graph_and_variables(session, ["serve"],
                                                 signature_def_map={"serving_default": signature})
            builder.save()
    got = sm.load(tmp_path / "m").signatures["serving_default"](**feeds)
    for name, want in expected.items():
        np.testing.assert_array_equal(got[name], want)


def test_tables_rebuilt_by_the_init_op_answer_as_tensorflow(tmp_path):
    """StaticHashTable (tensor initializer) and Keras StringLookup save no table contents:
    the export's init op rebuilds them, here as in TensorFlow."""
    import keras

    words = keras.Input(shape=(None,), dtype="string")
    lookup = keras.Model(words, keras.layers.StringLookup(vocabulary=["a", "b", "c"])(words))
    lookup.export(str(tmp_path / "lookup"))

    class Static(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(["x", "y"], [1, 2]), -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def find(self, keys):
            return {"v": self.table.lookup(keys)}

    module = Static()
    tf.saved_model.save(module, str(tmp_path / "static"), signatures={"find": module.find})
    for name, key, inputs in (("lookup", "serving_default", [[b"a", b"z", b"c"]]),
                              ("static", "find", [b"x", b"q", b"y"])):
        theirs = tf.saved_model.load(str(tmp_path / name)).signatures[key]
        ours = sm.load(tmp_path / name).signatures[key]
        (arg,) = ours.inputs
        value = np.array(inputs, dtype=object)
        want = {k: v.numpy() for k, v in theirs(**{arg: tf.constant(value)}).items()}
        got = ours(**{arg: value})
        for out, expected in want.items():
            np.testing.assert_array_equal(got[out], expected)


def _copy(source, target):
    import shutil

    shutil.copytree(source, target)
    return target


def test_saved_state_that_cannot_be_restored_refuses_the_load(exports, tmp_path, monkeypatch):
    from sm_notebook.engine.ops import registry

    monkeypatch.delitem(registry.KERNELS, "LookupTableImportV2")
    with pytest.raises(sm.SavedModelError, match=r"saved state 'table' of object 'table' .*cannot be "
                                                 r"restored.*LookupTableImportV2"):
        sm.load(exports["string_to_int"])


def test_saved_state_without_a_restore_function_warns(exports, tmp_path):
    from sm_notebook.format.savedmodel import read_saved_model

    path = _copy(exports["string_to_int"], tmp_path / "m")
    saved_model = read_saved_model(path)
    for saved in saved_model.meta_graphs[0].object_graph_def.nodes:
        saved.ClearField("saveable_objects")
    (path / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    with pytest.warns(sm.SavedModelWarning, match=r"Object 'table' has saved state \(table\)"):
        model = sm.load(path)
    found = model.signatures["lookup"](query=np.array([b"e"], dtype=object))["found"]
    assert found.tolist() == [-1]  # left as created: empty
