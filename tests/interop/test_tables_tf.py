"""Mutable hash tables in TF2 exports: inserts are seen by later lookups in the same call,
in later calls and in other signatures, as TensorFlow's loaded model sees them."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import sm_notebook as sm  # noqa: E402
from sm_notebook import SavedModelError  # noqa: E402

pytestmark = pytest.mark.interop


TABLES = {  # kind: (key dtype, value dtype, default value, anonymous)
    "string_to_int": (tf.string, tf.int64, -1, False),
    "int_to_vector": (tf.int64, tf.float32, [-1.0, -2.0], False),   # MutableHashTableOfTensorsV2
    "anonymous": (tf.string, tf.int64, -1, True),                   # AnonymousMutableHashTable
}


class TableModule(tf.Module):
    def __init__(self, kind):
        super().__init__()
        key_dtype, value_dtype, default, anonymous = TABLES[kind]
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


def _calls(kind):
    """(signature, inputs) in order: two insert-and-lookup calls, then a plain lookup."""
    key_dtype, value_dtype, default, _ = TABLES[kind]
    if key_dtype == tf.string:
        keys = lambda *ks: np.array([k.encode() for k in ks], dtype=object)  # noqa: E731
    else:
        keys = lambda *ks: np.array([ord(k) for k in ks], np.int64)  # noqa: E731
    width = len(default) if isinstance(default, list) else 0

    def values(*vs):
        dtype = value_dtype.as_numpy_dtype
        v = np.array(vs, dtype)
        return (v[:, None] * np.arange(1, width + 1, dtype=dtype)) if width else v

    return [("insert_lookup", dict(keys=keys("a", "b"), values=values(1, 2), query=keys("a", "c"))),
            ("insert_lookup", dict(keys=keys("c", "a"), values=values(3, 4), query=keys("a", "b", "c", "d"))),
            ("lookup", dict(query=keys("d", "c", "b", "a")))]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    paths = {}
    for kind in TABLES:
        module = TableModule(kind)
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


@pytest.mark.parametrize("kind", [
    "string_to_int", "int_to_vector",
    "anonymous"])
def test_inserted_values_are_found_in_the_same_call_later_calls_and_other_signatures(exports, kind):
    expected = _tf_results(exports[kind], kind)
    model = sm.load(exports[kind])
    for (key, inputs), want in zip(_calls(kind), expected):
        got = model.signatures[key](**inputs).numpy()
        assert sorted(got) == sorted(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{kind} {key} {name}")


def test_a_dense_hash_table_is_refused_not_answered_wrongly(tmp_path):
    class Dense(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.experimental.DenseHashTable(
                tf.int64, tf.int64, default_value=-1, empty_key=0, deleted_key=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
        def insert_lookup(self, keys):
            self.table.insert(keys, keys * 10)
            return {"found": self.table.lookup(keys)}

    module = Dense()
    tf.saved_model.save(module, str(tmp_path), signatures={"insert_lookup": module.insert_lookup})
    with pytest.raises(SavedModelError, match="MutableDenseHashTableV2"):
        sm.load(tmp_path).signatures["insert_lookup"](keys=np.array([3, 4]))
