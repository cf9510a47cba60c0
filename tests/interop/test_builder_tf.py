"""Exports written by the Builder, checked with real TensorFlow (both loaders and saved_model_cli)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import FIXTURES, MODELS  # noqa: E402

import sm_notebook as sm  # noqa: E402
from sm_notebook import SavedModelWarning  # noqa: E402
from sm_notebook.builder import Builder, Graph  # noqa: E402

pytestmark = pytest.mark.interop
TF_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def expected(name):
    return np.load(FIXTURES / "expected" / f"{name}.npz", allow_pickle=True)


def feeds_and_outputs(name, tags, key):
    data = expected(name)
    prefix = f"{tags}|{key}|"
    inputs = {k[len(prefix) + 7:]: data[k] for k in data.files if k.startswith(prefix + "inputs|")}
    outputs = {k[len(prefix) + 8:]: data[k] for k in data.files if k.startswith(prefix + "outputs|")}
    return inputs, outputs


def run_tf1(path, tags, key, feeds):
    """Load with tf.compat.v1.saved_model.loader.load and run one signature."""
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), str(path))
        signature = meta_graph.signature_def[key]
        fetches = {k: v.name for k, v in signature.outputs.items()}
        return session.run(fetches, {signature.inputs[k].name: v for k, v in feeds.items()})


def run_tf2(loaded, key, feeds):
    function = loaded.signatures[key]
    result = function(**{k: tf.constant(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in result.items()}


def assert_outputs(got, want, rename=None):
    rename = rename or {}
    assert sorted(got) == sorted(rename.get(k, k) for k in want)
    for key, value in want.items():
        np.testing.assert_allclose(got[rename.get(key, key)], value, rtol=1e-5, atol=1e-6)


def user_signatures(loaded):
    return sorted(k for k in loaded.signatures if not k.startswith("__saved_model"))


# --- TF1 ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def edited_tf1(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf1")
    path = root / "model"
    shutil.copytree(MODELS / "tf1_multi_tags", path)
    labels = root / "labels.txt"
    labels.write_text("a\nb\n")
    builder = Builder.from_saved_model(path)
    builder.rename_signature("serving_default", "predict", tags="serve")
    builder.rename_input("predict", "x", "features", tags="serve")
    builder.rename_output("predict", "probabilities", "probs", tags="serve")
    builder.set_tags(["serve", "gpu"], ["serve", "gpu", "tpu"])
    builder.add_meta_graph(["serve", "canary"], copy_from="serve", signatures={
        "logits": sm.signature({"x": "x:0"}, {"logits": "logits:0"})})
    builder.add_asset(labels, tags="serve")
    graph = builder.get_graph("serve")
    predicted = graph.op("ArgMax", "probabilities:0", 1, name="predicted")
    builder.add_signature("classes", {"x": "x:0"}, {"class": predicted}, tags="serve")
    builder.save(path, overwrite=True)       # in place
    return path


def test_edited_tf1_loads_under_new_tags_with_original_results(edited_tf1):
    feeds, outputs = feeds_and_outputs("tf1_multi_tags", "serve", "serving_default")
    got = run_tf1(edited_tf1, ["serve"], "predict", {"features": feeds["x"]})
    assert_outputs(got, outputs, {"probabilities": "probs"})
    feeds, outputs = feeds_and_outputs("tf1_multi_tags", "serve", "lookup")
    assert_outputs(run_tf1(edited_tf1, ["serve"], "lookup", feeds), outputs)   # asset still fed
    feeds, outputs = feeds_and_outputs("tf1_multi_tags", "gpu,serve", "predict_gpu")
    assert_outputs(run_tf1(edited_tf1, ["serve", "gpu", "tpu"], "predict_gpu", feeds), outputs)
    with pytest.raises(RuntimeError, match="could not be found"):
        run_tf1(edited_tf1, ["serve", "gpu"], "predict_gpu", feeds)


def test_ops_added_to_a_loaded_graph_run_in_tensorflow(edited_tf1):
    feeds, outputs = feeds_and_outputs("tf1_multi_tags", "serve", "serving_default")
    got = run_tf1(edited_tf1, ["serve"], "classes", feeds)
    np.testing.assert_array_equal(got["class"], outputs["probabilities"].argmax(1))


def test_added_tf1_metagraph_shares_variables(edited_tf1):
    feeds, _ = feeds_and_outputs("tf1_multi_tags", "serve", "serving_default")
    logits = run_tf1(edited_tf1, ["serve", "canary"], "logits", feeds)["logits"]
    probs = run_tf1(edited_tf1, ["serve"], "predict", {"features": feeds["x"]})["probs"]
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, rtol=1e-5)


def test_edited_tf1_in_the_tf2_loader(edited_tf1):
    loaded = tf.saved_model.load(str(edited_tf1), tags=["serve"])
    assert user_signatures(loaded) == ["classes", "lookup", "predict"]
    feeds, outputs = feeds_and_outputs("tf1_multi_tags", "serve", "serving_default")
    assert_outputs(run_tf2(loaded, "predict", {"features": feeds["x"]}), outputs,
                   {"probabilities": "probs"})
    paths = [p.asset_path.numpy().decode() for p in loaded.asset_paths]
    assert any(p.endswith("labels.txt") for p in paths)


# --- TF2 ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def edited_tf2(tmp_path_factory):
    path = tmp_path_factory.mktemp("tf2") / "model"
    builder = Builder.from_saved_model(MODELS / "tf2_module")
    builder.rename_input("int_and_bool", "ids", "z_ids")          # sorted order changes
    builder.rename_output("int_and_bool", "any_even", "zz_even")  # sorted order changes
    builder.rename_signature("half_precision", "half")
    builder.remove_signature("control_flow")
    sig = builder.signatures()["int_and_bool"]
    builder.add_signature("count_only", {"b_mask": sig.inputs["mask"].name,
                                         "a_ids": sig.inputs["z_ids"].name},
                          {"n": sig.outputs["count"].name, "sel": sig.outputs["selected"].name})
    builder.save(path)
    return path


def test_edited_tf2_lists_exactly_the_expected_signatures(edited_tf2):
    loaded = tf.saved_model.load(str(edited_tf2))
    assert user_signatures(loaded) == ["asset_table", "const_table", "count_only", "half",
                                       "int_and_bool", "serving_default", "string_ops"]


def test_edited_tf2_signatures_give_original_results(edited_tf2):
    loaded = tf.saved_model.load(str(edited_tf2))
    feeds, outputs = feeds_and_outputs("tf2_module", "serve", "int_and_bool")
    got = run_tf2(loaded, "int_and_bool", {"z_ids": feeds["ids"], "mask": feeds["mask"]})
    assert_outputs(got, outputs, {"any_even": "zz_even"})
    got = run_tf2(loaded, "count_only", {"a_ids": feeds["ids"], "b_mask": feeds["mask"]})
    assert_outputs(got, {"n": outputs["count"], "sel": outputs["selected"]})
    feeds, outputs = feeds_and_outputs("tf2_module", "serve", "half_precision")
    assert_outputs(run_tf2(loaded, "half", feeds), outputs)
    for key in ("asset_table", "serving_default", "const_table"):
        feeds, outputs = feeds_and_outputs("tf2_module", "serve", key)
        assert_outputs(run_tf2(loaded, key, feeds), outputs)
    spec = loaded.signatures["int_and_bool"].structured_input_signature[1]
    assert sorted(spec) == ["mask", "z_ids"]


def test_edited_tf2_runs_through_the_tf1_signature_defs(edited_tf2):
    feeds, outputs = feeds_and_outputs("tf2_module", "serve", "int_and_bool")
    got = run_tf1(edited_tf2, ["serve"], "int_and_bool", {"z_ids": feeds["ids"], "mask": feeds["mask"]})
    assert_outputs(got, outputs, {"any_even": "zz_even"})


def test_edited_keras_export(tmp_path):
    path = tmp_path / "keras"
    builder = Builder.from_saved_model(MODELS / "keras3_mlp")
    builder.rename_output("serving_default", "output_0", "probabilities")
    builder.rename_input("serving_default", "features", "x")
    builder.rename_signature("serve", "predict")
    builder.save(path)
    loaded = tf.saved_model.load(str(path))
    assert user_signatures(loaded) == ["predict", "serving_default"]
    feeds, outputs = feeds_and_outputs("keras3_mlp", "serve", "serving_default")
    assert_outputs(run_tf2(loaded, "serving_default", {"x": feeds["features"]}), outputs,
                   {"output_0": "probabilities"})
    assert_outputs(run_tf2(loaded, "predict", feeds), outputs)


def test_asset_added_to_a_tf2_model_is_restored(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    builder = Builder.from_saved_model(MODELS / "keras3_mlp")
    builder.add_asset(labels)
    builder.save(tmp_path / "model")
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    assert tf.io.read_file(loaded.labels.asset_path).numpy() == b"cat\ndog\n"


def test_second_metagraph_on_a_tf2_model_loads_through_the_v1_path(tmp_path):
    builder = Builder.from_saved_model(MODELS / "keras3_mlp")
    sig = builder.signatures()["serving_default"]
    with pytest.warns(SavedModelWarning, match="TF1 path"):
        builder.add_meta_graph(["serve", "batch"], signatures={"predict": sm.signature(
            {"features": sig.inputs["features"].name}, {"y": sig.outputs["output_0"].name})})
    builder.save(tmp_path / "model")
    feeds, outputs = feeds_and_outputs("keras3_mlp", "serve", "serving_default")
    loaded = tf.saved_model.load(str(tmp_path / "model"), tags=["serve", "batch"])
    assert_outputs(run_tf2(loaded, "predict", feeds), {"y": outputs["output_0"]})
    loaded = tf.saved_model.load(str(tmp_path / "model"), tags=["serve"])
    assert_outputs(run_tf2(loaded, "serving_default", feeds), outputs)


# --- saved_model_cli ---------------------------------------------------------------

def saved_model_cli(*args):
    result = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli",
                             *args], capture_output=True, text=True, env=TF_ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("which", ["tf1", "tf2"])
def test_saved_model_cli_shows_and_runs_edited_exports(which, edited_tf1, edited_tf2, tmp_path):
    if which == "tf1":
        path, tags, key = edited_tf1, "serve", "predict"
        feeds, outputs = feeds_and_outputs("tf1_multi_tags", "serve", "serving_default")
        feeds, outputs = {"features": feeds["x"]}, {"probs": outputs["probabilities"]}
    else:
        path, tags, key = edited_tf2, "serve", "count_only"
        feeds, outputs = feeds_and_outputs("tf2_module", "serve", "int_and_bool")
        feeds = {"a_ids": feeds["ids"], "b_mask": feeds["mask"]}
        outputs = {"n": outputs["count"], "sel": outputs["selected"]}
    shown = saved_model_cli("show", "--dir", str(path), "--all")
    assert f"signature_def['{key}']" in shown
    arguments = []
    for name, value in feeds.items():
        np.save(tmp_path / f"{name}.npy", value)
        arguments.append(f"{name}={tmp_path / name}.npy")
    out = tmp_path / "out"
    saved_model_cli("run", "--dir", str(path), "--tag_set", tags, "--signature_def", key,
                    "--inputs", ";".join(arguments), "--outdir", str(out))
    for name, value in outputs.items():
        np.testing.assert_allclose(np.load(out / f"{name}.npy"), value, rtol=1e-5)


# --- composing from scratch -----------------------------------------------------------

def composed_model(path):
    rng = np.random.RandomState(0)
    weights = {"w1": rng.randn(4, 8).astype(np.float32), "b1": rng.randn(8).astype(np.float32),
               "w2": rng.randn(8, 3).astype(np.float32), "b2": rng.randn(3).astype(np.float32),
               "k": rng.randn(3, 3, 2, 5).astype(np.float32),
               "wide": rng.randn(180, 64).astype(np.float32)}   # big: zeros initializer
    g = Graph()
    x = g.placeholder("x", "float32", (None, 4))
    v = {name: g.variable(name, value) for name, value in weights.items()}
    hidden = g.op("Relu", g.op("BiasAdd", g.op("MatMul", x, v["w1"]), v["b1"]), name="hidden")
    logits = g.op("BiasAdd", g.op("MatMul", hidden, v["w2"]), v["b2"], name="logits")
    probs = g.op("Softmax", logits, name="probs")
    images = g.placeholder("images", "float32", (None, 6, 6, 2))
    conv = g.op("Conv2D", images, v["k"], strides=[1, 1, 1, 1], padding="SAME", name="conv")
    pooled = g.op("AvgPool", g.op("Tanh", conv), ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                  padding="VALID", name="pooled")
    features = g.op("MatMul", g.op("Reshape", pooled, [-1, 45]),
                    g.op("Slice", v["wide"], [0, 0], [45, 4], T=np.float32, Index=np.int32))
    summary = g.op("Sigmoid", features, name="summary")
    builder = Builder(graph=g)
    builder.add_signature("serving_default", {"x": x}, {"probs": probs, "logits": logits})
    builder.add_signature("vision", {"images": images}, {"pooled": pooled, "summary": summary})
    builder.save(path)
    return weights


def numpy_reference(weights, x, images):
    hidden = np.maximum(x @ weights["w1"] + weights["b1"], 0)
    logits = hidden @ weights["w2"] + weights["b2"]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = np.zeros(images.shape[:3] + (5,), np.float32)
    for i in range(6):
        for j in range(6):
            conv[:, i, j] = np.einsum("nhwc,hwco->no", padded[:, i:i + 3, j:j + 3], weights["k"])
    pooled = np.tanh(conv).reshape(-1, 3, 2, 3, 2, 5).mean(axis=(2, 4))
    summary = 1 / (1 + np.exp(-(pooled.reshape(-1, 45) @ weights["wide"][:45, :4])))
    return {"probs": probs, "logits": logits}, {"pooled": pooled, "summary": summary}


def test_composed_model_runs_in_both_loaders_and_the_engine(tmp_path):
    path = tmp_path / "composed"
    weights = composed_model(path)
    rng = np.random.RandomState(1)
    x = rng.randn(3, 4).astype(np.float32)
    images = rng.randn(2, 6, 6, 2).astype(np.float32)
    dense, vision = numpy_reference(weights, x, images)

    assert_outputs(run_tf1(path, ["serve"], "serving_default", {"x": x}), dense)
    assert_outputs(run_tf1(path, ["serve"], "vision", {"images": images}), vision)
    loaded = tf.saved_model.load(str(path))
    assert user_signatures(loaded) == ["serving_default", "vision"]
    assert_outputs(run_tf2(loaded, "serving_default", {"x": x}), dense)
    assert_outputs(run_tf2(loaded, "vision", {"images": images}), vision)
    values = {v.name.split(":")[0]: v.numpy() for v in loaded.variables}
    for name, value in weights.items():
        np.testing.assert_array_equal(values[name], value)

    model = sm.load(path)
    assert_outputs(model.signatures["serving_default"](x=x), dense)
    assert_outputs(model.signatures["vision"](images=images), vision)


# --- round trips ---------------------------------------------------------------------

def checkpoint_values(path):
    reader = tf.train.load_checkpoint(str(Path(path) / "variables" / "variables"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize("name", ["tf1_multi_tags", "keras3_mlp", "tf2_module"])
def test_round_trip_is_indistinguishable_to_tensorflow(name, tmp_path):
    copy = Builder.from_saved_model(MODELS / name).save(tmp_path / name)
    original = sm.inspect(MODELS / name)
    assert sm.inspect(copy).tag_sets == original.tag_sets
    before, after = checkpoint_values(MODELS / name), checkpoint_values(copy)
    assert sorted(before) == sorted(after)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value)
    data = expected(name)
    for tags in {k.split("|")[0] for k in data.files}:
        tag_list = tags.split(",")
        keys = {k.split("|")[1] for k in data.files if k.startswith(tags + "|")}
        if name.startswith("tf1"):
            for key in keys:
                feeds, outputs = feeds_and_outputs(name, tags, key)
                assert_outputs(run_tf1(copy, tag_list, key, feeds), outputs)
        else:
            a = tf.saved_model.load(str(MODELS / name))
            b = tf.saved_model.load(str(copy))
            assert user_signatures(a) == user_signatures(b)
            for key in sorted(keys - {"string_ops", "control_flow"}):
                feeds, outputs = feeds_and_outputs(name, tags, key)
                assert_outputs(run_tf2(b, key, feeds), outputs)


# --- nodes composed from the op table ----------------------------------------------------

def _composed_graph():
    g = Graph()
    x = g.placeholder("x", "float32", (None, 4, 4, 3))
    m = g.placeholder("m", "float32", (None, 3))
    k = g.constant(np.ones((2, 2, 3, 5), np.float32))
    w = g.constant(np.ones((3, 6), np.float32))
    g.op("Conv2D", x, k, strides=[1, 1, 1, 1], padding="SAME")
    g.op("MaxPool", x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    g.op("MatMul", m, w, transpose_b=False)
    g.op("LeakyRelu", m, alpha=1)                    # an int given to a float attr
    g.op("Mean", x, [1, 2], keep_dims=True)
    g.op("ConcatV2", [m, m, m], 1)
    g.op("Split", 1, m, num_split=3)
    g.op("Unpack", m, num=3, axis=1)
    g.op("IdentityN", [m, x])
    g.op("Cumsum", m, 0)
    g.op("OnesLike", m)
    g.op("Cast", m, DstT="int64")
    g.op("ArgMax", m, 1)
    g.op("Shape", x)
    g.op("Unique", g.op("Reshape", m, [-1]))
    g.op("FusedBatchNormV3", x, *[g.constant(np.ones(3, np.float32))] * 4, is_training=False)
    g.op("StringJoin", [g.constant(b"a"), g.constant(b"b")], separator="-")
    return g


def test_composed_nodes_import_into_tensorflow_with_the_types_and_shapes_it_infers():
    """Every attr left out (OpDef defaults) is filled in by TensorFlow's importer, and
    our inferred dtypes and known dims agree with TensorFlow's own shape inference."""
    g = _composed_graph()
    graph_def = tf.compat.v1.GraphDef.FromString(g.graph_def.SerializeToString())
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
    for node in g.graph_def.node:
        operation = graph.get_operation_by_name(node.name)
        for index, tensor in enumerate(operation.outputs):
            ours = g.tensor(f"{node.name}:{index}")
            assert ours.dtype_enum == tensor.dtype.as_datatype_enum, (node.name, index)
            theirs = tensor.shape.as_list() if tensor.shape.rank is not None else None
            if ours.shape is None or theirs is None:
                continue
            assert len(ours.shape) == len(theirs), (node.name, index, ours.shape, theirs)
            for a, b in zip(ours.shape, theirs):
                assert a is None or b is None or a == b, (node.name, index, ours.shape, theirs)
