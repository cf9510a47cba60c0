"""Keras 3 preprocessing layers exported in a tf.function serving signature run against
TensorFlow at batch 1 and 3 (StringLookup, IntegerLookup, Hashing, Discretization,
CategoryEncoding, TextVectorization in every output mode with bigrams, HashedCrossing), made
with Keras 3 and with tf_keras."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import sm_notebook  # noqa: E402
from sm_notebook.engine.scan import scan_model  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.slow]
BATCHES = (1, 3)
TEXTS = ["the cat sat", "the dog ran far", "a cat and a dog", "the the the", ""]
WORDS = ["a", "b", "c", "zz", ""]


def _layers(layers):
    text_args = dict(ngrams=2, max_tokens=12)
    return {
        "string_lookup": (lambda: layers.StringLookup(vocabulary=["a", "b", "c"]), "words"),
        "string_lookup_multi_hot": (lambda: layers.StringLookup(
            vocabulary=["a", "b", "c"], output_mode="multi_hot"), "word_rows"),
        "string_lookup_tf_idf": (lambda: layers.StringLookup(
            vocabulary=["a", "b", "c"], output_mode="tf_idf",
            idf_weights=[0.5, 0.25, 0.125]), "word_rows"),
        "integer_lookup_count": (lambda: layers.IntegerLookup(
            vocabulary=[3, 5, 7], output_mode="count"), "int_rows"),
        "integer_lookup_masked": (lambda: layers.IntegerLookup(
            vocabulary=[3, 5, 7], mask_token=0, num_oov_indices=2), "ints"),
        "string_lookup_inverted": (lambda: layers.StringLookup(
            vocabulary=["a", "b", "c"], invert=True), "small_ints"),
        "hashing_multi_hot": (lambda: layers.Hashing(num_bins=6, output_mode="multi_hot"),
                              "word_rows"),
        "hashing_salted": (lambda: layers.Hashing(num_bins=10, salt=[133, 137]), "words"),
        "hashing_int": (lambda: layers.Hashing(num_bins=7), "ints"),
        "discretization": (lambda: layers.Discretization(bin_boundaries=[-1.0, 0.0, 0.5]),
                           "floats"),
        "category_encoding_multi_hot": (lambda: layers.CategoryEncoding(
            num_tokens=8, output_mode="multi_hot"), "small_int_rows"),
        "category_encoding_count": (lambda: layers.CategoryEncoding(
            num_tokens=8, output_mode="count"), "small_int_rows"),
        "category_encoding_one_hot": (lambda: layers.CategoryEncoding(
            num_tokens=8, output_mode="one_hot"), "small_ints"),
        **{f"text_vectorization_{mode}": (
            lambda mode=mode: _adapted(layers.TextVectorization(
                output_mode=mode, **text_args,
                **({"output_sequence_length": 6} if mode == "int" else {}))),
            "texts") for mode in ("int", "multi_hot", "count", "tf_idf")},
    }


def _adapted(layer):
    layer.adapt(np.asarray(TEXTS))
    return layer


SPECS = {
    "words": tf.TensorSpec([None], tf.string), "word_rows": tf.TensorSpec([None, 2], tf.string),
    "texts": tf.TensorSpec([None], tf.string), "ints": tf.TensorSpec([None], tf.int64),
    "int_rows": tf.TensorSpec([None, 3], tf.int64), "small_ints": tf.TensorSpec([None], tf.int64),
    "small_int_rows": tf.TensorSpec([None, 2], tf.int64),
    "floats": tf.TensorSpec([None], tf.float32),
}


def _feed(kind, batch, rng):
    if kind == "words":
        return np.asarray([WORDS[i] for i in rng.integers(0, len(WORDS), batch)], object)
    if kind == "word_rows":
        return np.asarray([WORDS[i] for i in rng.integers(0, len(WORDS), batch * 2)],
                          object).reshape(batch, 2)
    if kind == "texts":
        return np.asarray([TEXTS[i] + " cat" * int(i) for i in rng.integers(0, len(TEXTS), batch)],
                          object)
    if kind == "ints":
        return rng.integers(-5, 50, batch).astype(np.int64)
    if kind == "int_rows":
        return rng.integers(2, 8, (batch, 3)).astype(np.int64)
    if kind == "small_ints":
        return rng.integers(0, 4, batch).astype(np.int64)
    if kind == "small_int_rows":
        return rng.integers(0, 8, (batch, 2)).astype(np.int64)
    return np.concatenate([[0.0, -1.0], rng.standard_normal(batch)])[-batch:].astype(np.float32)


def _export(path, layer, spec):
    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        @tf.function(input_signature=[spec])
        def serve(self, x):
            return {"y": self.layer(x)}

    module = Serving()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


LIBRARIES = ["keras", "tf_keras"]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", sorted(_layers(None)))
def test_keras_preprocessing_layer_matches_tensorflow(tmp_path, library, name):
    layers = pytest.importorskip(library).layers
    make, kind = _layers(layers)[name]
    _export(tmp_path / name, make(), SPECS[kind])
    missing = scan_model(str(tmp_path / name)).unsupported
    assert not missing
    theirs = tf.saved_model.load(str(tmp_path / name)).signatures["serving_default"]
    ours = sm_notebook.load(tmp_path / name, tags=["serve"]).signatures["serving_default"]
    rng = np.random.default_rng(3)
    for batch in BATCHES:
        x = _feed(kind, batch, rng)
        expected = theirs(x=tf.constant(x))["y"].numpy()
        got = ours(x=x).numpy()["y"]
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        # exact, floats included: tf_idf is one count times one float32 weight
        np.testing.assert_array_equal(got, expected, err_msg=f"{name} batch {batch}")


@pytest.mark.parametrize("library", LIBRARIES)
def test_hashed_crossing_matches_tensorflow(tmp_path, library):
    layers = pytest.importorskip(library).layers
    layer = layers.HashedCrossing(num_bins=11)

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string),
                                      tf.TensorSpec([None], tf.int64)])
        def serve(self, words, ids):
            return {"y": self.layer((words, ids))}

    module = Serving()
    tf.saved_model.save(module, str(tmp_path / "crossing"),
                        signatures={"serving_default": module.serve})
    assert scan_model(str(tmp_path / "crossing")).ok
    theirs = tf.saved_model.load(str(tmp_path / "crossing")).signatures["serving_default"]
    ours = sm_notebook.load(tmp_path / "crossing", tags=["serve"]).signatures["serving_default"]
    rng = np.random.default_rng(4)
    for batch in BATCHES:
        feeds = {"words": _feed("words", batch, rng), "ids": _feed("ints", batch, rng)}
        expected = theirs(**{k: tf.constant(v) for k, v in feeds.items()})["y"].numpy()
        np.testing.assert_array_equal(ours(**feeds).numpy()["y"], expected)


def test_keras_text_classifier_export_matches_tensorflow(tmp_path):
    """A Keras 3 model (TextVectorization tf_idf with bigrams into Dense) saved with
    model.export(); float32 outputs judged against a float64 product of the same weights."""
    from conftest import assert_float32_near_reference

    vectorize = _adapted(keras.layers.TextVectorization(output_mode="tf_idf", ngrams=2,
                                                        max_tokens=12))
    dense = keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(seed=1),
                               bias_initializer="ones")
    words = keras.Input(shape=(), dtype="string")
    model = keras.Model(words, dense(vectorize(words)))
    model.export(str(tmp_path / "classifier"), verbose=False)
    theirs = tf.saved_model.load(str(tmp_path / "classifier")).signatures["serve"]
    ours = sm_notebook.load(tmp_path / "classifier", tags=["serve"]).signatures["serve"]
    kernel, bias = (np.asarray(w, np.float64) for w in dense.get_weights())
    rng = np.random.default_rng(8)
    for batch in BATCHES:
        x = _feed("texts", batch, rng)
        (key, expected), = theirs(tf.constant(x)).items()
        features = np.asarray(vectorize(tf.constant(x)), np.float64)
        got = ours(**{next(iter(ours.inputs)): x}).numpy()[key]
        assert_float32_near_reference(got, expected.numpy(), features @ kernel + bias,
                                      what=f"classifier batch {batch}")
