"""Export TF1-style models with TensorFlow's own tf.compat.v1 producers (not a test module).

Run as ``python tf1_producers.py OUT_DIR``: ``disable_v2_behavior`` is process-wide, so the
tests run this in a subprocess. Each model is a SavedModel with signature
``serving_default``.

* ``dynamic_rnn``: tf.compat.v1.nn.dynamic_rnn over an LSTMCell (TF1 while frame,
  TensorArrayV3 scatter/read/write/gather).
* ``bidirectional_rnn``: tf.compat.v1.nn.bidirectional_dynamic_rnn over GRUCells, with
  sequence lengths (ReverseSequence, masked steps).
* ``tensor_array_loops``: tf.compat.v1.map_fn, and a tf.compat.v1.while_loop writing a
  dynamic-size TensorArray read back with stack, concat and size.
* ``feature_columns``: Estimator-style tf.Example serving (``examples``: serialized
  tf.train.Example strings) into tf.compat.v1.feature_column.input_layer with numeric,
  bucketized, hashed, vocabulary, crossed (indicator) and multi-valent indicator columns.
* ``feature_columns_embedded``: the same with embedding columns (SparseSegmentMean/SqrtN).
* ``linear_model``: tf.compat.v1.feature_column.linear_model (the canned LinearClassifier's
  logits) over numeric, bucketized, hashed, weighted identity and crossed columns.

The RNNs are written twice, ``<name>_float32`` and ``<name>_float64`` (the float64 twin
holds the same weights and is the exact reference); the feature-column models (float32
embedding tables whatever the output type) once, ``<name>_float32``.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.nn.rnn_cell needs tf_keras

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1
STEPS, FEATURES, UNITS = 5, 3, 4


def dynamic_rnn(dtype):
    x = v1.placeholder(dtype, [None, STEPS, FEATURES], name="x")
    outputs, state = v1.nn.dynamic_rnn(v1.nn.rnn_cell.LSTMCell(UNITS), x, dtype=dtype)
    return {"x": x}, {"outputs": outputs, "c": state.c, "h": state.h}


def bidirectional_rnn(dtype):
    x = v1.placeholder(dtype, [None, STEPS, FEATURES], name="x")
    lengths = v1.placeholder(tf.int32, [None], name="lengths")
    (fw, bw), (fw_state, bw_state) = v1.nn.bidirectional_dynamic_rnn(
        v1.nn.rnn_cell.GRUCell(UNITS), v1.nn.rnn_cell.GRUCell(UNITS), x,
        sequence_length=lengths, dtype=dtype)
    return {"x": x, "lengths": lengths}, {"fw": fw, "bw": bw, "fw_state": fw_state,
                                          "bw_state": bw_state}


def tensor_array_loops(dtype):
    x = v1.placeholder(dtype, [None, STEPS, FEATURES], name="x")
    mapped = v1.map_fn(lambda row: tf.tanh(row) * 2.0 + tf.reduce_sum(row), x)
    columns = tf.transpose(x, [2, 0, 1])  # [FEATURES, batch, STEPS]

    def body(i, ta):
        return i + 1, ta.write(i, tf.cumsum(columns[i], axis=1))

    empty = tf.TensorArray(dtype, size=0, dynamic_size=True, infer_shape=False,
                           clear_after_read=False)  # read twice: stack and concat
    count, written = v1.while_loop(lambda i, ta: i < tf.shape(columns)[0], body,
                                   [tf.constant(0), empty])
    return {"x": x}, {"mapped": mapped, "stacked": written.stack(),
                      "concatenated": written.concat(), "size": written.size() + count * 0}


def _feature_columns(embedded):
    fc = v1.feature_column
    examples = v1.placeholder(tf.string, [None], name="examples")
    age = fc.numeric_column("age", dtype=tf.float32)
    city = fc.categorical_column_with_hash_bucket("city", 20)
    color = fc.categorical_column_with_vocabulary_list("color", ["red", "green", "blue"])
    tags = fc.categorical_column_with_hash_bucket("tags", 9)
    ages = fc.bucketized_column(age, [18.0, 30.0, 50.0])
    cross = fc.crossed_column([ages, "city"], 50)
    columns = [age, ages, fc.indicator_column(color), fc.indicator_column(cross),
               fc.indicator_column(tags)]
    if embedded:
        columns += [fc.embedding_column(city, 3), fc.embedding_column(cross, 2, combiner="sqrtn"),
                    fc.embedding_column(tags, 2, combiner="mean")]
    parsed = v1.parse_example(examples, fc.make_parse_example_spec(columns))
    return {"examples": examples}, {"net": fc.input_layer(parsed, columns)}


def _linear_model():
    fc = v1.feature_column
    examples = v1.placeholder(tf.string, [None], name="examples")
    age = fc.numeric_column("age", dtype=tf.float32)
    ids = fc.categorical_column_with_identity("ids", 10)
    columns = [age, fc.bucketized_column(age, [18.0, 30.0, 50.0]),
               fc.categorical_column_with_hash_bucket("city", 20),
               fc.weighted_categorical_column(ids, "ids_weight"),
               fc.crossed_column(["city", ids], 30)]
    parsed = v1.parse_example(examples, fc.make_parse_example_spec(columns))
    return {"examples": examples}, {"logits": fc.linear_model(parsed, columns, units=2)}


#: name -> (builder of (inputs, outputs) for a dtype, the dtypes to export)
MODELS = {
    "dynamic_rnn": (dynamic_rnn, (tf.float32, tf.float64)),
    "bidirectional_rnn": (bidirectional_rnn, (tf.float32, tf.float64)),
    "tensor_array_loops": (tensor_array_loops, (tf.float32, tf.float64)),
    "feature_columns": (lambda dtype: _feature_columns(False), (tf.float32,)),
    "feature_columns_embedded": (lambda dtype: _feature_columns(True), (tf.float32,)),
    "linear_model": (lambda dtype: _linear_model(), (tf.float32,)),
}


def export(out_dir, name, build, dtype):
    graph = tf.Graph()
    with graph.as_default():
        inputs, outputs = build(dtype)
        with v1.Session() as sess:
            sess.run([v1.global_variables_initializer(), v1.tables_initializer()])
            rng = np.random.default_rng(7)
            for var in sorted(v1.global_variables(), key=lambda v: v.name):
                value = rng.uniform(-0.8, 0.8, var.shape.as_list())
                var.load(value.astype(var.dtype.base_dtype.as_numpy_dtype), sess)
            v1.saved_model.simple_save(sess, os.path.join(out_dir, f"{name}_{dtype.name}"),
                                       inputs, outputs, legacy_init_op=v1.tables_initializer())


def main(out_dir):
    v1.disable_v2_behavior()
    for name, (build, dtypes) in MODELS.items():
        for dtype in dtypes:
            export(out_dir, name, build, dtype)


if __name__ == "__main__":
    main(sys.argv[1])
