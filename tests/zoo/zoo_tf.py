"""Zoo entries made with TensorFlow directly: tf.function op families, ragged signatures,
TF1 classics (graph mode, v1 control flow, ref variables) and extension-library models
(tensorflow-text, ydf). Builders take the float dtype ("float32" or "float64")."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from make_zoo import WORDS, Entry, Made, default_feed, module_made

# ---------------------------------------------------------------------------
# tf.function families: one tf.Module, one signature per function
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    """One signature: inputs (name, shape, dtype; "float"/"complex" follow the build
    dtype), a body taking them by name and returning a dict, optional input makers
    (name -> (rng, batch) -> array)."""
    name: str
    inputs: tuple
    body: Callable
    feeds: dict = field(default_factory=dict)


def resolve_spec(name, shape, kind, dtype):
    """A TensorSpec, or a RaggedTensorSpec (ragged rank 1, int64 splits) for "ragged:<kind>"."""
    import tensorflow as tf
    if kind.startswith("ragged:"):
        return tf.RaggedTensorSpec(shape, resolve_dtype(kind[len("ragged:"):], dtype), 1, tf.int64)
    return tf.TensorSpec(shape, resolve_dtype(kind, dtype), name=name)


def resolve_dtype(kind, dtype):
    import tensorflow as tf
    if kind == "float":
        return tf.as_dtype(dtype)
    if kind == "complex":
        return tf.complex64 if dtype == "float32" else tf.complex128
    return tf.as_dtype(kind)


def functions_builder(make_functions):
    """``make_functions()`` -> [Function], called at build time (it needs TensorFlow)."""
    def build(dtype):
        import tensorflow as tf
        module = tf.Module()
        signatures = {}
        for function in make_functions():
            specs = [resolve_spec(name, shape, kind, dtype) for name, shape, kind in function.inputs]
            signatures[function.name] = tf.function(function.body, input_signature=specs)
        return module_made(module, signatures)
    return build


def functions_feeds(make_functions):
    makers = {}

    def feeds(signature, key, shape, dtype, rng, batch):
        if not makers:
            makers.update({(f.name, k): m for f in make_functions() for k, m in f.feeds.items()})
        maker = makers.get((signature, key))
        return None if maker is None else np.asarray(maker(rng, batch)).astype(dtype)
    return feeds


def functions_entry(name, family, note, make_functions, exact=(), batch_sizes=(1, 3), **extra):
    return Entry(name, family, "tf.function", note, functions_builder(make_functions),
                 feeds=functions_feeds(make_functions), exact=exact, batch_sizes=batch_sizes, **extra)


def tf_():
    import tensorflow as tf
    return tf


def sorted_ids(limit):
    return lambda rng, batch: np.sort(rng.integers(0, limit, size=batch * 4))


def ints(low, high, *shape):
    return lambda rng, batch: rng.integers(low, high, size=(batch, *shape))


def spd(x):
    """A symmetric positive definite batch of matrices from any square batch."""
    tf = tf_()
    n = x.shape[-1]
    return tf.matmul(x, x, transpose_b=True) + n * tf.eye(n, dtype=x.dtype)


def fft_functions():
    tf = tf_()
    return [
        Function("fft", (("x", [None, 16], "complex"),),
                 lambda x: {"fft": tf.signal.fft(x), "ifft": tf.signal.ifft(x),
                            "fft2d": tf.signal.fft2d(tf.reshape(x, [-1, 4, 4]))}),
        Function("rfft", (("x", [None, 16], "float"),),
                 lambda x: {"magnitude": tf.abs(tf.signal.rfft(x)),
                            "roundtrip": tf.signal.irfft(tf.signal.rfft(x)),
                            "rfft2d": tf.abs(tf.signal.rfft2d(tf.reshape(x, [-1, 4, 4])))}),
        Function("stft", (("signal", [None, 64], "float"),),
                 lambda signal: {"spectrogram": tf.abs(tf.signal.stft(signal, 16, 8, 16))}),
    ]


def segment_functions():
    tf = tf_()
    data = ("data", [None, 3], "float")
    ids = ("ids", [None], "int32")
    return [
        Function("sorted", (("data", [None, 3], "float"), ids),
                 lambda data, ids: {"sum": tf.math.segment_sum(data, ids),
                                    "mean": tf.math.segment_mean(data, ids),
                                    "max": tf.math.segment_max(data, ids),
                                    "min": tf.math.segment_min(data, ids),
                                    "prod": tf.math.segment_prod(data, ids)},
                 {"ids": sorted_ids(5), "data": lambda rng, b: default_feed((b * 4, 3), np.float64, rng)}),
        Function("unsorted", (data, ids),
                 lambda data, ids: {"sum": tf.math.unsorted_segment_sum(data, ids, 6),
                                    "max": tf.math.unsorted_segment_max(data, ids, 6),
                                    "min": tf.math.unsorted_segment_min(data, ids, 6),
                                    "prod": tf.math.unsorted_segment_prod(data, ids, 6),
                                    "mean": tf.math.unsorted_segment_mean(data, ids, 6),
                                    "sqrt_n": tf.math.unsorted_segment_sqrt_n(data, ids, 6)},
                 {"ids": lambda rng, b: rng.integers(-1, 6, size=b * 4),
                  "data": lambda rng, b: default_feed((b * 4, 3), np.float64, rng)}),
        Function("sparse_segment", (data, ("indices", [None], "int32"), ids),
                 lambda data, indices, ids: {
                     "sum": tf.sparse.segment_sum(data, indices, ids),
                     "mean": tf.sparse.segment_mean(data, indices, ids),
                     "sqrt_n": tf.sparse.segment_sqrt_n(data, indices, ids)},
                 {"indices": lambda rng, b: rng.integers(0, b, size=b * 4),
                  "ids": sorted_ids(4)}),
    ]


def bincount_functions():
    tf = tf_()
    values = ("values", [None, 5], "int32")
    return [
        Function("bincount", (values, ("weights", [None, 5], "float")),
                 lambda values, weights: {
                     "counts": tf.math.bincount(values, minlength=8),
                     "weighted": tf.math.bincount(values, weights=weights, minlength=8),
                     "per_row": tf.math.bincount(values, minlength=8, axis=-1),
                     "binary": tf.math.bincount(values, minlength=8, axis=-1, binary_output=True)},
                 {"values": ints(0, 8, 5)}),
    ]


def boxes(rng, count):
    corner = rng.random((count, 2)) * 0.8
    size = 0.05 + rng.random((count, 2)) * 0.4
    return np.concatenate([corner, np.minimum(corner + size, 1.0)], axis=1)


def image_functions():
    tf = tf_()
    image = ("image", [None, 12, 12, 3], "float")
    positive = {"image": lambda rng, b: rng.random((b, 12, 12, 3))}
    return [
        Function("crop_and_resize", (image, ("boxes", [None, 4], "float32"), ("box_index", [None], "int32")),
                 lambda image, boxes, box_index: {
                     "bilinear": tf.image.crop_and_resize(image, boxes, box_index, [5, 5]),
                     "nearest": tf.image.crop_and_resize(image, boxes, box_index, [4, 6], "nearest")},
                 {"boxes": lambda rng, b: boxes(rng, 2 * b),
                  "box_index": lambda rng, b: rng.integers(0, b, size=2 * b)}),
        Function("non_max_suppression", (("boxes", [None, 4], "float32"), ("scores", [None], "float32")),
                 lambda boxes, scores: {
                     "v3": tf.image.non_max_suppression(boxes, scores, 5, 0.4, 0.1),
                     # tf.image.non_max_suppression_padded is plain ops in TF2; V4 itself:
                     "v4": tf.raw_ops.NonMaxSuppressionV4(
                         boxes=boxes, scores=scores, max_output_size=5, iou_threshold=0.4,
                         score_threshold=0.1, pad_to_max_output_size=True)[0],
                     "v5": tf.image.non_max_suppression_with_scores(
                         boxes, scores, 5, 0.4, 0.1, soft_nms_sigma=0.5)[0]},
                 {"boxes": lambda rng, b: boxes(rng, 8 * b), "scores": lambda rng, b: rng.random(8 * b)}),
        Function("resize", (image,),
                 lambda image: {
                     "area": tf.compat.v1.image.resize_area(image, [5, 7]),
                     "antialias": tf.image.resize(image, [5, 7], antialias=True),
                     "lanczos": tf.image.resize(image, [7, 5], "lanczos3", antialias=True),
                     "bicubic": tf.image.resize(image, [16, 16], "bicubic")}),
        Function("color", (image,),
                 lambda image: {"hsv": tf.image.rgb_to_hsv(image),
                                "roundtrip": tf.image.hsv_to_rgb(tf.image.rgb_to_hsv(image)),
                                "contrast": tf.image.adjust_contrast(image, 1.7),
                                "saturation": tf.image.adjust_saturation(image, 0.6),
                                "hue": tf.image.adjust_hue(image, 0.1)}, positive),
    ]


def linalg_functions():
    tf = tf_()
    square = ("x", [None, 4, 4], "float")
    return [
        Function("decompositions", (square,), lambda x: {
            "cholesky": tf.linalg.cholesky(spd(x)),
            "qr_r_abs": tf.abs(tf.linalg.qr(x)[1]),
            "svd_s": tf.linalg.svd(x, compute_uv=False),
            "svd_rebuilt": (lambda s, u, v: tf.matmul(u * s[..., None, :], v, adjoint_b=True))(
                *tf.linalg.svd(x)),
            "eigh_values": tf.linalg.eigh(spd(x))[0],
            "eig_values": tf.sort(tf.math.real(tf.linalg.eig(spd(x))[0]), axis=-1)}),
        Function("solve", (square, ("rhs", [None, 4, 2], "float")), lambda x, rhs: {
            "inverse": tf.linalg.inv(spd(x)),
            "solve": tf.linalg.solve(spd(x), rhs),
            "triangular": tf.linalg.triangular_solve(tf.linalg.cholesky(spd(x)), rhs),
            "determinant": tf.linalg.det(spd(x)),
            "logdet": tf.linalg.logdet(spd(x)),
            "lu_solve": tf.linalg.lu_solve(*tf.linalg.lu(spd(x)), rhs)}),
    ]


def cumulative_functions():
    tf = tf_()
    x = ("x", [None, 6], "float")
    return [Function("cumulative", (x,), lambda x: {
        "cumsum": tf.math.cumsum(x, axis=1),
        "cumsum_exclusive_reverse": tf.math.cumsum(x, axis=1, exclusive=True, reverse=True),
        "cumprod": tf.math.cumprod(x, axis=1),
        "logsumexp": tf.math.cumulative_logsumexp(x, axis=1),
        "logsumexp_reverse": tf.math.cumulative_logsumexp(x, axis=0, reverse=True)})]


def random_functions():
    tf = tf_()
    seed = ("seed", [2], "int64")
    x = ("x", [None, 5], "float")
    return [Function("stateless", (x, seed), lambda x, seed: {
        "uniform": tf.random.stateless_uniform(tf.shape(x), seed, dtype=x.dtype),
        "normal": tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype),
        "truncated": tf.random.stateless_truncated_normal(tf.shape(x), seed, dtype=x.dtype),
        "ints": tf.random.stateless_uniform(tf.shape(x), seed, 0, 100, dtype=tf.int32),
        "categorical": tf.random.stateless_categorical(x, 4, seed),
        "dropout": tf.nn.experimental.stateless_dropout(x, 0.5, seed)},
        {"seed": lambda rng, b: np.array([7, b], np.int64)})]


def quantize_functions():
    tf = tf_()
    x = ("x", [None, 8], "float32")
    return [Function("quantize", (x,), lambda x: {
        "dequantized": tf.quantization.dequantize(
            *tf.quantization.quantize(x, -2.0, 2.0, tf.quint8)[:3]),
        "qint8": tf.cast(tf.quantization.quantize(x, -2.0, 2.0, tf.qint8, mode="SCALED")[0], tf.int32),
        "fake_args": tf.quantization.fake_quant_with_min_max_args(x, -1.5, 1.5, num_bits=6),
        "fake_vars": tf.quantization.fake_quant_with_min_max_vars(x, -1.0, 2.0),
        "quantize_dequantize": tf.quantization.quantize_and_dequantize_v2(x, -1.0, 1.0)})]


def ctc_functions():
    tf = tf_()
    logits = ("logits", [12, None, 5], "float32")
    lengths = ("lengths", [None], "int32")

    def decode(logits, lengths):
        (greedy,), greedy_score = tf.nn.ctc_greedy_decoder(logits, lengths)
        (beam,), beam_score = tf.nn.ctc_beam_search_decoder(logits, lengths, beam_width=4, top_paths=1)
        return {"greedy": tf.sparse.to_dense(greedy, default_value=-1), "greedy_score": greedy_score,
                "beam": tf.sparse.to_dense(beam, default_value=-1), "beam_score": beam_score}
    return [Function("decode", (logits, lengths), decode,
                     {"logits": lambda rng, b: 2 * rng.standard_normal((12, b, 5)),
                      "lengths": lambda rng, b: rng.integers(6, 13, size=b)})]


def special_functions():
    tf = tf_()
    unit = ("p", [None, 6], "float")
    return [
        Function("special", (unit,), lambda p: {
            "erfinv": tf.math.erfinv(p), "ndtri": tf.math.ndtri((p + 1) / 2),
            "lgamma": tf.math.lgamma(p + 2), "digamma": tf.math.digamma(p + 2),
            "i0e": tf.math.bessel_i0e(p), "i1e": tf.math.bessel_i1e(p),
            "igamma": tf.math.igamma(p + 2, p + 1.5), "betainc": tf.math.betainc(p + 2, p + 3, (p + 1) / 2)},
            {"p": lambda rng, b: rng.uniform(-0.95, 0.95, size=(b, 6))}),
        Function("max_pool_with_argmax", (("image", [None, 8, 8, 2], "float"),), lambda image: dict(zip(
            ("pooled", "argmax"), tf.nn.max_pool_with_argmax(image, 2, 2, "SAME", include_batch_in_index=True)))),
    ]


def control_flow_functions():
    tf = tf_()
    x = ("x", [None, 5], "float")

    def while_array(x):
        array = tf.TensorArray(x.dtype, size=tf.shape(x)[1], dynamic_size=False)
        i0 = tf.constant(0)

        def body(i, acc, array):
            acc = acc * 0.5 + x[:, i]
            return i + 1, acc, array.write(i, acc)
        _, last, array = tf.while_loop(lambda i, *_: i < tf.shape(x)[1], body,
                                       (i0, tf.zeros_like(x[:, 0]), array))
        return {"last": last, "stacked": array.stack(), "gathered": array.gather([0, 2])}
    return [
        Function("map_fn", (x,), lambda x: {"out": tf.map_fn(lambda row: tf.reduce_sum(row ** 2) * row, x)}),
        Function("scan", (x,), lambda x: {"out": tf.scan(lambda a, row: a * 0.9 + row, x),
                                          "foldl": tf.foldl(lambda a, row: a + tf.sin(row), x)}),
        Function("while_tensor_array", (x,), while_array),
    ]


def sorting_functions():
    tf = tf_()
    x = ("x", [None, 6], "float")
    tokens = ("tokens", [None], "int32")
    return [
        Function("sort", (x,), lambda x: {
            "sorted": tf.sort(x, direction="DESCENDING"), "argsort": tf.argsort(x, stable=True),
            "top_values": tf.math.top_k(x, 3).values, "top_indices": tf.math.top_k(x, 3).indices}),
        Function("sets", (tokens,), lambda tokens: dict(zip(
            ("unique", "index", "count"), tf.unique_with_counts(tokens))) | {
                "unique_only": tf.unique(tokens)[0],
                "setdiff": tf.compat.v1.setdiff1d(tokens, tf.constant([1, 3, 5]))[0],
                "in_set": tf.reduce_any(tf.equal(tokens[:, None], [2, 4]), axis=1)},
            {"tokens": lambda rng, b: rng.integers(0, 7, size=4 * b)}),
    ]


def ragged_functions():
    tf = tf_()
    values = ("values", [None], "float")
    splits = ("row_splits", [None], "int64")

    def rows(values, row_splits):
        return tf.RaggedTensor.from_row_splits(values, row_splits)
    makers = {"values": lambda rng, b: default_feed((int(2.5 * b) + 1,), np.float64, rng),
              "row_splits": lambda rng, b: np.concatenate(
                  [[0], np.sort(rng.integers(0, int(2.5 * b) + 2, size=b - 1)), [int(2.5 * b) + 1]])}
    return [
        Function("to_tensor", (values, splits), lambda values, row_splits: {
            "dense": rows(values, row_splits).to_tensor(default_value=-1.0, shape=[None, 4]),
            "lengths": rows(values, row_splits).row_lengths()}, makers),
        Function("reductions", (values, splits), lambda values, row_splits: {
            "sum": tf.reduce_sum(rows(values, row_splits), axis=1),
            "max": tf.reduce_max(rows(values, row_splits), axis=1),
            "mean": tf.reduce_mean(rows(values, row_splits), axis=1)}, makers),
        Function("ragged_input", (("rows", [None, None], "ragged:float"),), lambda rows: {
            "sum": tf.reduce_sum(rows, axis=1), "dense": rows.to_tensor(),
            "doubled": rows * 2.0, "row_lengths": rows.row_lengths()},
            {"rows": makers["values"], "rows_1": makers["row_splits"]}),
        Function("gather_and_range", (values, splits, ("limits", [None], "int64")),
                 lambda values, row_splits, limits: {
                     "gathered": tf.gather(rows(values, row_splits), [0, 0]).to_tensor(),
                     "ranges": tf.ragged.range(limits).to_tensor(),
                     "doubled": rows(values, row_splits) * 2.0}, dict(makers, limits=ints(0, 4))),
    ]


def tf_function_entries():
    specs = [
        ("fft", "FFT/IFFT/FFT2D, RFFT/IRFFT/RFFT2D, STFT", fft_functions, {}),
        ("segment", "segment_*, unsorted_segment_*, sparse_segment_* reductions", segment_functions, {}),
        ("bincount", "Bincount, DenseBincount (weights, axis=-1, binary_output)", bincount_functions, {}),
        ("image", "CropAndResize, NonMaxSuppressionV3/V4/V5, ResizeArea, ScaleAndTranslate "
                  "(antialias), resize bicubic, RGBToHSV/HSVToRGB, AdjustContrastv2/Saturation/Hue; "
                  "crops and resizes are float32 whatever the input dtype, so they are checked "
                  "against the stated bound, colour ops against float64",
         image_functions, {"batch_sizes": (1, 2)}),
        ("linalg", "Cholesky, Qr, Svd, SelfAdjointEigV2, Eig (symmetric input), MatrixInverse, "
                   "MatrixSolve, MatrixTriangularSolve, Lu, LogMatrixDeterminant", linalg_functions, {}),
        ("cumulative", "Cumsum, Cumprod, CumulativeLogsumexp", cumulative_functions, {}),
        ("stateless_random", "StatelessRandomUniformV2/NormalV2/TruncatedNormalV2/UniformIntV2, "
                             "StatelessMultinomial, stateless dropout", random_functions,
         {"exact": ("stateless|uniform", "stateless|dropout"), "ref64": False,
          "no_ref64_because": "random bits depend on the dtype: uniform values and dropout are "
                              "compared bit for bit, normals (float32 log/sin/cos) by the stated bound"}),
        ("quantize", "QuantizeV2/Dequantize, FakeQuantWithMinMaxArgs/Vars, QuantizeAndDequantizeV4",
         quantize_functions, {"ref64": False, "no_ref64_because": "quantization rounds to a grid "
                              "that float64 would not reproduce; one grid step is far beyond the "
                              "stated bound"}),
        ("ctc", "CTCGreedyDecoder, CTCBeamSearchDecoder (float32 only)", ctc_functions,
         {"ref64": False, "no_ref64_because": "decoded labels are exact; log-probabilities "
                                              "are checked against the stated float32 bound"}),
        ("special", "Erfinv, Ndtri, Lgamma, Digamma, BesselI0e/I1e, Igamma, Betainc, MaxPoolWithArgmax",
         special_functions, {}),
        ("control_flow", "map_fn, scan, foldl, while_loop with TensorArrays (While, TensorList*)",
         control_flow_functions, {}),
        ("sorting", "sort, argsort, TopKV2, UniqueWithCounts, ListDiff (setdiff1d)", sorting_functions, {}),
        ("ragged", "ragged signature inputs/outputs: RaggedTensorToTensor, RaggedRange, RaggedGather, "
                   "ragged reductions", ragged_functions, {}),
    ]
    return [functions_entry(f"tf_{name}", f"tf.function/{name}", note, make, **extra)
            for name, note, make, extra in specs]


# ---------------------------------------------------------------------------
# TF1 classics: graph mode with v1 control flow and ref variables, SavedModelBuilder
# ---------------------------------------------------------------------------

@contextmanager
def tf1_graph_mode():
    """v1 control flow (Enter/Exit frames, TensorArrayV3) and ref variables while building."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_v2_toggles
    tf.compat.v1.disable_control_flow_v2()
    tf.compat.v1.disable_resource_variables()
    try:
        yield
    finally:
        control_flow_v2_toggles.enable_control_flow_v2()
        tf.compat.v1.enable_resource_variables()


class Tf1Made(Made):
    """A TF1 graph in a session, exported by SavedModelBuilder with tags {serve}."""

    def __init__(self, graph, session, signature_defs, main_op=None):
        super().__init__(self._export, tf1=True)
        self.graph, self.session, self.signature_defs, self.main_op = graph, session, signature_defs, main_op

    def _export(self, path):
        import tensorflow as tf
        with self.graph.as_default():
            builder = tf.compat.v1.saved_model.Builder(path)
            builder.add_meta_graph_and_variables(self.session, ["serve"], self.signature_defs,
                                                 main_op=self.main_op)
            builder.save()

    def copy_weights_from(self, other):
        import tensorflow as tf
        with other.graph.as_default():
            source = {v.op.name: v for v in tf.compat.v1.global_variables()}
            values = other.session.run(source)
        with self.graph.as_default():
            for variable in tf.compat.v1.global_variables():
                value = values[variable.op.name]
                variable.load(value.astype(variable.dtype.base_dtype.as_numpy_dtype), self.session)


def tf1_builder(make_graph):
    """``make_graph(dtype)`` builds inside a fresh graph and returns (signature_defs, main_op)."""
    def build(dtype):
        import tensorflow as tf
        graph = tf.Graph()
        with tf1_graph_mode(), graph.as_default():
            tf.compat.v1.set_random_seed(5)
            signature_defs, main_op = make_graph(tf.as_dtype(dtype))
            session = tf.compat.v1.Session(graph=graph)
            session.run(tf.compat.v1.global_variables_initializer())
            if main_op is not None:
                session.run(main_op)
        return Tf1Made(graph, session, signature_defs, main_op)
    return build


def predict_signature(inputs, outputs):
    import tensorflow as tf
    return tf.compat.v1.saved_model.predict_signature_def(inputs, outputs)


def dynamic_rnn_graph(dtype):
    import tensorflow as tf
    from tf_keras.src.layers.rnn import legacy_cells
    x = tf.compat.v1.placeholder(dtype, [None, 6, 3], name="x")
    lengths = tf.compat.v1.placeholder(tf.int32, [None], name="lengths")
    with tf.compat.v1.variable_scope("uni"):
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            legacy_cells.LSTMCell(5), x, sequence_length=lengths, dtype=dtype)
    with tf.compat.v1.variable_scope("bi"):
        (forward, backward), _ = tf.compat.v1.nn.bidirectional_dynamic_rnn(
            legacy_cells.GRUCell(4), legacy_cells.GRUCell(4), x, sequence_length=lengths, dtype=dtype)
    return {"serving_default": predict_signature(
        {"x": x, "lengths": lengths},
        {"outputs": outputs, "final_h": state.h, "bidirectional": tf.concat([forward, backward], -1)})}, None


def example_feature_spec(tf):
    return {"age": tf.io.FixedLenFeature([1], tf.float32, default_value=[30.0]),
            "city": tf.io.FixedLenFeature([1], tf.string, default_value=[""]),
            "word": tf.io.VarLenFeature(tf.string)}


def feature_columns_graph(dtype):
    import tensorflow as tf
    fc = tf.compat.v1.feature_column
    examples = tf.compat.v1.placeholder(tf.string, [None], name="examples")
    features = tf.io.parse_example(examples, example_feature_spec(tf))
    age = fc.numeric_column("age")
    buckets = fc.bucketized_column(age, [18.0, 25.0, 40.0, 60.0])
    city = fc.categorical_column_with_hash_bucket("city", 11)
    word = fc.categorical_column_with_vocabulary_list("word", ["the", "cat", "sat", "mat"])
    columns = [age, buckets, fc.indicator_column(word), fc.embedding_column(city, 3),
               fc.indicator_column(fc.crossed_column([buckets, "city"], 13)),
               fc.embedding_column(word, 2, combiner="sqrtn")]
    dense = tf.cast(fc.input_layer(features, columns), dtype)
    weights = tf.compat.v1.get_variable("head", [dense.shape[-1], 2], dtype)
    logits = tf.matmul(dense, weights)
    scores = tf.cast(tf.nn.softmax(logits), tf.float32)  # a classify signature's scores are float32
    return ({"serving_default": tf.compat.v1.saved_model.classification_signature_def(
        examples, tf.constant([[b"no", b"yes"]]), scores),
        "predict": predict_signature({"examples": examples}, {"logits": logits})},
        tf.compat.v1.tables_initializer())


def serialized_examples(signature, key, shape, dtype, rng, batch):
    import tensorflow as tf
    found = []
    for _ in range(batch):
        feature = {"age": tf.train.Feature(float_list=tf.train.FloatList(value=[rng.integers(10, 80)])),
                   "word": tf.train.Feature(bytes_list=tf.train.BytesList(value=[
                       WORDS[i].encode() for i in rng.integers(len(WORDS), size=rng.integers(0, 4))]))}
        if rng.random() < 0.8:  # else the default applies
            feature["city"] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[WORDS[rng.integers(len(WORDS))].encode()]))
        found.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return np.array(found, dtype=object)


def is_training_graph(dtype):
    import tensorflow as tf
    x = tf.compat.v1.placeholder(dtype, [None, 6], name="x")
    is_training = tf.compat.v1.placeholder_with_default(False, [], name="is_training")
    weights = tf.compat.v1.get_variable("dense", [6, 8], dtype)
    hidden = tf.matmul(x, weights)
    scale = tf.compat.v1.get_variable("gamma", [8], dtype, tf.compat.v1.random_uniform_initializer(0.5, 1.5))
    offset = tf.compat.v1.get_variable("beta", [8], dtype, tf.compat.v1.random_normal_initializer(0, 0.1))
    mean = tf.compat.v1.get_variable("moving_mean", [8], dtype, tf.compat.v1.random_normal_initializer(0, 0.2))
    variance = tf.compat.v1.get_variable("moving_variance", [8], dtype,
                                         tf.compat.v1.random_uniform_initializer(0.5, 2.0))
    normalized = tf.compat.v1.cond(
        is_training,
        lambda: tf.nn.batch_normalization(hidden, *tf.nn.moments(hidden, [0]), offset, scale, 1e-3),
        lambda: tf.nn.batch_normalization(hidden, mean, variance, offset, scale, 1e-3))
    dropped = tf.compat.v1.cond(is_training, lambda: tf.nn.dropout(normalized, rate=0.5),
                                lambda: tf.identity(normalized))
    return {"serving_default": predict_signature({"x": x}, {"y": tf.nn.relu(dropped)})}, None


def tf1_entries():
    return [
        Entry("tf1_dynamic_rnn", "tf1", "tf1", "dynamic_rnn(LSTMCell) and bidirectional_dynamic_rnn"
              "(GRUCell) with sequence_length: v1 while frames, TensorArrayV3 and friends",
              tf1_builder(dynamic_rnn_graph),
              feeds=lambda s, k, shape, d, rng, b: rng.integers(1, 7, size=b) if k == "lengths" else None),
        Entry("tf1_feature_columns", "tf1", "tf1", "Estimator-style tf.Example input: bucketized, "
              "hashed, crossed, vocabulary, embedding and indicator columns (ParseExample, Bucketize, "
              "sparse ops, tables)", tf1_builder(feature_columns_graph), feeds=serialized_examples),
        Entry("tf1_is_training", "tf1", "tf1", "batch norm and dropout behind an is_training "
              "placeholder_with_default(False) with v1 cond (Switch/Merge); only the False branch runs",
              tf1_builder(is_training_graph)),
    ]


# ---------------------------------------------------------------------------
# Extension libraries: refused, naming every op outside core TensorFlow
# ---------------------------------------------------------------------------

def text_builder(make_tokenizer, outputs):
    """A tensorflow-text tokenizer in a serving function over a batch of sentences."""
    def build(dtype):
        import tensorflow as tf
        tokenizer = make_tokenizer()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            return outputs(tokenizer, text)
        module = tf.Module()
        module.tokenizer = tokenizer
        return module_made(module, {"serving_default": serve}, track_owner=True)
    return build


def wordpiece_vocabulary():
    return ["[UNK]", "the", "cat", "sat", "on", "mat", "##s", "##at", "c", "m", "s", "##t", "dog"]


def make_whitespace():
    import tensorflow_text as text
    return text.WhitespaceTokenizer()


def make_wordpiece():
    import tensorflow as tf
    import tensorflow_text as text
    table = tf.lookup.StaticVocabularyTable(tf.lookup.KeyValueTensorInitializer(
        wordpiece_vocabulary(), tf.range(len(wordpiece_vocabulary()), dtype=tf.int64)), 1)
    return text.BertTokenizer(table, token_out_type=tf.int64, lower_case=True)


def make_fast_wordpiece():
    import tensorflow_text as text
    return text.FastWordpieceTokenizer(wordpiece_vocabulary(), token_out_type="int64")


def make_sentencepiece():
    import io

    import sentencepiece
    import tensorflow_text as text
    model = io.BytesIO()
    sentences = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(i % 6 + 2)) for i in range(200)]
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model,
                                             vocab_size=20, model_type="unigram")
    return text.SentencepieceTokenizer(model=model.getvalue())


def dense_tokens(tokenizer, text):
    tokens = tokenizer.tokenize(text)
    while hasattr(tokens, "merge_dims") and tokens.ragged_rank > 1:
        tokens = tokens.merge_dims(-2, -1)
    default = "" if tokens.dtype.name == "string" else -1
    return {"tokens": tokens.to_tensor(default_value=default)}


def ydf_builder(dtype):
    """A 5-tree gradient boosted model trained by ydf, exported by ydf-tf (its inference op)."""
    import ydf
    rng = np.random.default_rng(3)
    data = {"f1": rng.standard_normal(200).astype(np.float32),
            "f2": rng.standard_normal(200).astype(np.float32)}
    data["label"] = (data["f1"] + 0.5 * data["f2"] > 0).astype(np.int64)
    model = ydf.GradientBoostedTreesLearner(label="label", num_trees=5).train(data)
    return Made(lambda path: model.to_tensorflow_saved_model(path, mode="tf"))


def extension_entries():
    sentence = lambda s, k, shape, d, rng, b: np.array(  # noqa: E731
        [" ".join(WORDS[i] for i in rng.integers(len(WORDS), size=4)).encode() for _ in range(b)],
        dtype=object)
    tokenizers = [("whitespace", "WhitespaceTokenizer", make_whitespace),
                  ("bert", "BertTokenizer (vocabulary table, lower-casing, WordPiece)", make_wordpiece),
                  ("fast_wordpiece", "FastWordpieceTokenizer", make_fast_wordpiece),
                  ("sentencepiece", "SentencepieceTokenizer (a 20-piece model trained here)",
                   make_sentencepiece)]
    entries = [Entry(f"text_{name}", "extension/tensorflow-text", "tensorflow-text",
                     f"tensorflow_text.{what}; expected: refused before running, naming the ops",
                     text_builder(make, dense_tokens), feeds=sentence, ref64=False)
               for name, what, make in tokenizers]
    entries.append(Entry("ydf_gbt", "extension/ydf", "ydf",
                         "ydf GradientBoostedTrees (5 trees) exported by ydf-tf; expected: refused",
                         ydf_builder, ref64=False, no_ref64_because="trees: TensorFlow's float32 "
                         "answer is the reference"))
    return entries


ENTRIES = [*tf_function_entries(), *tf1_entries(), *extension_entries()]
