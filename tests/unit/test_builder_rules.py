"""Every rule the Builder enforces, and every signature / tag-set / asset API."""
import warnings

import numpy as np
import pytest
from pathlib import Path

from conftest import MODELS

import sm_notebook as sm
from sm_notebook import SavedModelError, SavedModelWarning, TagSetNotFoundError
from sm_notebook.builder import Builder, Graph


def small_graph():
    g = Graph()
    x = g.placeholder("x", "float32", (None, 3))
    w = g.variable("w", np.ones((3, 2), np.float32))
    y = g.op("MatMul", x, w, name="y")
    return g, x, y


def small_builder(tags="serve"):
    g, x, y = small_graph()
    b = Builder(graph=g, tags=tags)
    b.add_signature("serving_default", {"x": x}, {"y": y})
    return b


def tf1_builder():
    return Builder.from_saved_model(MODELS / "tf1_multi_tags")


# --- signatures ------------------------------------------------------------------

def test_add_signature_reads_dtype_and_shape_from_the_graph():
    b = small_builder()
    sig = b.signatures()["serving_default"]
    assert sig.inputs["x"].name == "x:0" and sig.inputs["x"].dtype == 1
    assert [d.size for d in sig.outputs["y"].tensor_shape.dim] == [-1, 2]
    assert sig.method_name == "tensorflow/serving/predict"


def test_signature_over_tensor_names_of_a_loaded_model():
    b = tf1_builder()
    b.add_signature("logits_only", {"x": "x:0"}, {"logits": "logits"}, tags="serve")
    sig = b.signatures("serve")["logits_only"]
    assert sig.outputs["logits"].name == "logits:0"
    assert [d.size for d in sig.outputs["logits"].tensor_shape.dim] == [-1, 4]


def test_a_signature_key_is_used_once_per_metagraph():
    b = small_builder()
    with pytest.raises(SavedModelError, match="already exists"):
        b.add_signature("serving_default", {"x": "x:0"}, {"y": "y:0"})
    b.add_signature("second", {"x": "x:0"}, {"y": "y:0"})
    with pytest.raises(SavedModelError, match="already exists"):
        b.rename_signature("second", "serving_default")


@pytest.mark.parametrize("key", ["__saved_model_init_op", "__saved_model_train_op"])
def test_reserved_keys_are_refused(key):
    b = small_builder()
    with pytest.raises(SavedModelError, match="reserved"):
        b.add_signature(key, {"x": "x:0"}, {"y": "y:0"})
    with pytest.raises(SavedModelError, match="reserved"):
        b.rename_signature("serving_default", key)
    with pytest.raises(SavedModelError, match="reserved"):
        b.add_meta_graph("other", signatures={key: sm.signature({"x": "x:0"}, {"y": "y:0"})})


def test_reserved_init_op_of_a_tf2_model_cannot_be_removed_or_renamed():
    b = Builder.from_saved_model(MODELS / "keras3_mlp")
    with pytest.raises(SavedModelError, match="reserved"):
        b.remove_signature("__saved_model_init_op")
    with pytest.raises(SavedModelError, match="reserved"):
        b.rename_signature("__saved_model_init_op", "init")


def test_missing_tensor_is_refused_with_suggestions():
    b = small_builder()
    with pytest.raises(SavedModelError, match="'y:0'"):
        b.add_signature("bad", {"x": "x:0"}, {"y": "yy:0"})


def test_dtype_disagreement_is_refused():
    b = small_builder()
    with pytest.raises(SavedModelError, match="says 'y:0' is int32, but the graph makes it float32"):
        b.add_signature("bad", {"x": "x:0"}, {"y": ("y:0", "int32")})
    b.add_signature("ok", {"x": "x:0"}, {"y": ("y:0", "float32")})


def test_unknown_dtype_must_be_given_by_hand():
    g = Graph()
    x = g.placeholder("x", "float32", (2,))
    g.op("MysteryOp", x, name="m")
    b = Builder(graph=g)
    with pytest.raises(SavedModelError, match="cannot tell the dtype"):
        b.add_signature("s", {"x": x}, {"m": "m:0"})
    b.add_signature("s", {"x": x}, {"m": ("m:0", "float32", (2,))})
    assert b.signatures()["s"].outputs["m"].dtype == 1


def test_output_needing_an_unfed_placeholder_is_an_error():
    b = tf1_builder()
    with pytest.raises(SavedModelError, match=r"placeholder\(s\) 'labels:0'.*never run"):
        b.add_signature("loss_only", {"x": "x:0"}, {"loss": "loss:0"}, tags="train")
    b.add_signature("loss", {"x": "x:0", "labels": "labels:0"}, {"loss": "loss:0"}, tags="train")


@pytest.mark.filterwarnings("ignore:.*feed none of the outputs")
def test_output_reachable_only_from_a_variable_warns():
    g, x, _ = small_graph()
    b = Builder(graph=g)
    with pytest.warns(SavedModelWarning, match="does not depend on any input.*variables"):
        b.add_signature("weights", {"x": x}, {"w": "w/Read/ReadVariableOp:0"})


def test_input_feeding_no_output_warns():
    g, x, y = small_graph()
    unused = g.placeholder("unused", "float32", ())
    b = Builder(graph=g)
    with pytest.warns(SavedModelWarning, match="'u'.*feed none of the outputs"):
        b.add_signature("s", {"x": x, "u": unused}, {"y": y})


def test_feeding_an_intermediate_tensor_cuts_the_graph():
    g, x, y = small_graph()
    z = g.op("Relu", y, name="z")
    b = Builder(graph=g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.add_signature("from_middle", {"h": y}, {"z": z})


def test_signature_without_outputs_is_refused():
    b = small_builder()
    with pytest.raises(SavedModelError, match="no outputs"):
        b.add_signature("empty", {"x": "x:0"}, {})


def test_classify_method_with_wrong_keys_warns():
    b = small_builder()
    with pytest.warns(SavedModelWarning, match="classify"):
        b.set_method_name("serving_default", "tensorflow/serving/classify")
    assert b.signatures()["serving_default"].method_name == "tensorflow/serving/classify"


def test_rename_remove_and_key_renames_on_tf1():
    b = tf1_builder()
    b.rename_signature("serving_default", "predict", tags="serve")
    b.rename_input("predict", "x", "features", tags="serve")
    b.rename_output("predict", "probabilities", "probs", tags="serve")
    b.remove_signature("lookup", tags="serve")
    sig = b.signatures("serve")
    assert sorted(sig) == ["predict"]
    assert list(sig["predict"].inputs) == ["features"] and list(sig["predict"].outputs) == ["probs"]
    assert sig["predict"].outputs["probs"].name == "probabilities:0"
    with pytest.raises(SavedModelError, match="no input 'x'"):
        b.rename_input("predict", "x", "y", tags="serve")
    with pytest.raises(SavedModelError, match="Did you mean 'predict'"):
        b.remove_signature("predikt", tags="serve")


def test_renaming_to_an_existing_key_is_refused():
    b = tf1_builder()
    b.add_signature("two", {"x": "x:0"}, {"a": "logits:0", "b": "probabilities:0"}, tags="serve")
    with pytest.raises(SavedModelError, match="already has an output 'b'"):
        b.rename_output("two", "a", "b", tags="serve")


# --- tag-sets ---------------------------------------------------------------------

def test_tags_none_means_the_only_metagraph_and_is_an_error_with_several():
    b = tf1_builder()
    with pytest.raises(SavedModelError, match="3 metagraphs.*pass tags="):
        b.rename_signature("serving_default", "x")
    with pytest.raises(TagSetNotFoundError, match="Did you mean"):
        b.rename_signature("serving_default", "x", tags="serving")


def test_a_bare_string_tag_is_one_tag():
    b = small_builder(tags="serve")
    assert b.tag_sets == [frozenset({"serve"})]
    b.add_meta_graph("gpu")
    assert frozenset({"gpu"}) in b.tag_sets
    assert frozenset("gpu") not in b.tag_sets


def test_duplicate_tag_sets_are_refused():
    b = small_builder()
    with pytest.raises(SavedModelError, match="already exists"):
        b.add_meta_graph(["serve"])
    b.add_meta_graph(["serve", "gpu"])
    with pytest.raises(SavedModelError, match="Another metagraph already has"):
        b.set_tags(["serve", "gpu"], "serve")


def test_empty_tag_set_only_when_asked_for():
    b = small_builder()
    with pytest.raises(SavedModelError, match="allow_empty=True"):
        b.add_meta_graph([])
    with pytest.raises(SavedModelError, match="allow_empty=True"):
        b.set_tags("serve", [])
    b.set_tags("serve", [], allow_empty=True)
    assert b.tag_sets == [frozenset()]


def test_tags_must_be_strings():
    b = small_builder()
    with pytest.raises(SavedModelError, match="not a string"):
        b.add_meta_graph(["serve", 3])


def test_add_meta_graph_shares_the_graph_and_takes_new_signatures():
    b = small_builder()
    b.add_meta_graph(["serve", "gpu"], signatures={
        "gpu_predict": sm.signature({"x": "x:0"}, {"y": "y:0"})})
    assert sorted(b.signatures(["serve", "gpu"])) == ["gpu_predict"]
    assert b.get_graph(["serve", "gpu"]) is b.get_graph("serve")


def test_set_tags_and_remove_meta_graph():
    b = tf1_builder()
    b.set_tags(["serve", "gpu"], ["serve", "gpu", "tpu"])
    b.remove_meta_graph("train")
    assert b.tag_sets == [frozenset({"serve"}), frozenset({"serve", "gpu", "tpu"})]


def test_loaded_duplicate_tag_sets_must_be_resolved_before_saving(tmp_path):
    b = Builder.from_saved_model(MODELS / "tf1_duplicate_tags")
    with pytest.raises(SavedModelError, match="pass index="):
        b.rename_signature("first_sig", "a", tags="serve")
    with pytest.raises(SavedModelError, match=r"#0 and #1 both have the tag-set"):
        b.save(tmp_path / "out")
    b.set_tags("serve", ["serve", "canary"], index=1)
    b.save(tmp_path / "out")
    assert sm.inspect(tmp_path / "out").tag_sets == [frozenset({"serve"}),
                                                    frozenset({"serve", "canary"})]


def test_tf2_models_warn_when_a_second_metagraph_is_added():
    b = Builder.from_saved_model(MODELS / "keras3_mlp")
    with pytest.warns(SavedModelWarning, match="falls back to the TF1 path"):
        b.add_meta_graph(["serve", "extra"])


def test_tf2_new_signature_over_unrelated_tensors_is_refused_with_the_limit():
    b = Builder.from_saved_model(MODELS / "keras3_mlp")
    sig = b.signatures()["serving_default"]
    with pytest.raises(SavedModelError, match="derive a new signature function only from"):
        b.add_signature("echo", {"features": sig.inputs["features"].name},
                        {"same": sig.inputs["features"].name})


def test_tf2_derived_signature_must_feed_every_argument():
    b = Builder.from_saved_model(MODELS / "tf2_module")
    sig = b.signatures()["int_and_bool"]
    with pytest.raises(SavedModelError, match="int_and_bool_mask.*never run"):
        b.add_signature("partial", {"ids": sig.inputs["ids"].name},
                        {"count": sig.outputs["count"].name})
    ids, mask = sig.inputs["ids"].name, sig.inputs["mask"].name
    with pytest.raises(SavedModelError, match="every argument"):
        b.add_signature("twice", {"ids": ids, "again": ids, "mask": mask},
                        {"count": sig.outputs["count"].name})


# --- assets ---------------------------------------------------------------------

def test_add_asset_records_asset_file_def_and_collection(tmp_path):
    vocab = tmp_path / "words.txt"
    vocab.write_text("a\nb\n")
    b = tf1_builder()
    tensor = b.add_asset(vocab, tags="serve")
    proto = b._select("serve").proto
    names = [a.filename for a in proto.asset_file_def]
    assert "words.txt" in names and "vocab.txt" in names   # the collection's asset moved along
    assert tensor.dtype == "string"
    recorded = [a.value for a in proto.collection_def["saved_model_assets"].any_list.value]
    assert sum(b"words.txt" in value for value in recorded) == 1
    with pytest.raises(SavedModelError, match="already exists"):
        b.add_asset(tmp_path / "words.txt", name="vocab.txt", tags="serve")
    with pytest.raises(SavedModelError, match="relative path"):
        b.add_asset(vocab, name="../x.txt", tags="serve")
    with pytest.raises(SavedModelError, match="not a file"):
        b.add_asset(tmp_path / "missing.txt", tags="serve")


def test_add_asset_to_a_tf2_model_adds_a_saved_asset_node(tmp_path):
    vocab = tmp_path / "labels.txt"
    vocab.write_text("cat\ndog\n")
    b = Builder.from_saved_model(MODELS / "keras3_mlp")
    b.add_asset(vocab)
    og = b._select(None).proto.object_graph_def
    root_children = {c.local_name: c.node_id for c in og.nodes[0].children}
    asset_node = og.nodes[root_children["labels"]]
    assert asset_node.WhichOneof("kind") == "asset"
    index = asset_node.asset.asset_file_def_index
    assert b._select(None).proto.asset_file_def[index].filename == "labels.txt"


def test_tags_stored_as_characters_can_be_repaired(tmp_path):
    b = Builder.from_saved_model(MODELS / "tf1_string_tag")
    b.set_tags(set("serve"), "serve")
    b.save(tmp_path / "fixed")
    assert sm.inspect(tmp_path / "fixed").tag_sets == [frozenset({"serve"})]


def test_building_and_saving_never_imports_tensorflow(tmp_path):
    import subprocess
    import sys
    script = (
        "import sys, numpy as np, sm_notebook as sm\n"
        "g = sm.Graph(); x = g.placeholder('x', 'float32', (None, 2))\n"
        "y = g.op('Relu', g.op('MatMul', x, g.variable('w', np.ones((2, 2), np.float32))))\n"
        "b = sm.Builder(graph=g); b.add_signature('s', {'x': x}, {'y': y})\n"
        f"b.save({str(tmp_path / 'm')!r})\n"
        f"e = sm.Builder.from_saved_model({str(MODELS / 'keras3_mlp')!r})\n"
        "e.rename_output('serving_default', 'output_0', 'p')\n"
        f"e.save({str(tmp_path / 'k')!r})\n"
        "bad = [m for m in sys.modules if m.startswith(('tensorflow', 'keras'))]\n"
        "sys.exit(1 if bad else 0)\n")
    root = MODELS.parents[2]
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]


def test_arguments_of_the_wrong_type_are_saved_model_errors(tmp_path):
    """Issue 10: the Builder raised raw TypeErrors for non-string keys and non-path paths."""
    from sm_notebook import Builder
    source = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "tf1_multi_tags"
    builder = Builder.from_saved_model(source)
    calls = [lambda: builder.rename_signature(1, "x", tags=["serve"]),
             lambda: builder.remove_signature(7, tags=["serve"]),
             lambda: builder.add_asset(3),
             lambda: builder.save(123),
             lambda: builder.save(None)]
    for call in calls:
        with pytest.raises(SavedModelError):
            call()
    assert not any(tmp_path.iterdir())
