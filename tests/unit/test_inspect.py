"""inspect() and diagnose() on the TensorFlow-made fixtures (no TensorFlow needed)."""
import pytest

import sm_notebook
from conftest import fixture_names, fixture_path, manifest
from sm_notebook.tags import format_tag_set

MANIFEST = manifest()
NAMES = [n for n in fixture_names() if n in MANIFEST]


def _dtype_short(info_dtype):
    return info_dtype


@pytest.mark.parametrize("name", NAMES)
def test_tag_sets_in_file_order(name):
    info = sm_notebook.inspect(fixture_path(name))
    assert info.tag_sets == [frozenset(ts) for ts in MANIFEST[name]["tag_sets"]]
    assert all(isinstance(ts, frozenset) for ts in info.tag_sets)


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_manifest(name):
    info = sm_notebook.inspect(fixture_path(name))
    for mg, expected in zip(info.meta_graphs, MANIFEST[name]["meta_graphs"]):
        assert set(expected["signatures"]) <= set(mg.signatures) | {"__saved_model_init_op"}
        for key, sig in expected["signatures"].items():
            ours = mg.signatures[key]
            assert ours.method_name == sig["method_name"]
            for side in ("inputs", "outputs"):
                assert set(getattr(ours, side)) == set(sig[side])
                for tensor_key, spec in sig[side].items():
                    mine = getattr(ours, side)[tensor_key]
                    assert mine.name == spec["name"]
                    assert mine.dtype_short == spec["dtype"]
                    expected_shape = None if spec["shape"] is None else tuple(
                        None if d == -1 else d for d in spec["shape"])
                    assert mine.shape == expected_shape


@pytest.mark.parametrize("name", NAMES)
def test_ops_census_counts_graph_and_functions(name):
    info = sm_notebook.inspect(fixture_path(name))
    for mg in info.meta_graphs:
        assert mg.op_counts, "every fixture graph has ops"
        total = len(mg.proto.graph_def.node) + sum(len(f.node_def) for f in mg.proto.graph_def.library.function)
        assert sum(mg.op_counts.values()) == total


@pytest.mark.parametrize("name", NAMES)
def test_variables_are_in_the_bundle(name):
    info = sm_notebook.inspect(fixture_path(name))
    if info.bundle is None:
        pytest.skip(f"{name} has no variables")
    keys = set(info.bundle.keys())
    for mg in info.meta_graphs:
        for var in mg.variables:
            if var.checkpoint_key:
                assert var.checkpoint_key in keys, (var, sorted(keys)[:20])


def test_tf1_multi_tags_assets_and_diagnosis_are_clean():
    info = sm_notebook.inspect(fixture_path("tf1_multi_tags"))
    serve = info.meta_graph("serve")
    assert [a.filename for a in serve.assets] == ["vocab.txt"]
    assert serve.assets[0].exists
    assert {v.name for v in serve.variables} >= {v.checkpoint_key for v in serve.variables}
    report = info.diagnose()
    assert report.ok, str(report)
    assert "MetaGraphDef #0" in str(report)


def test_tf1_multi_tags_meta_graph_selection_is_exact():
    info = sm_notebook.inspect(fixture_path("tf1_multi_tags"))
    assert info.meta_graph(["serve", "gpu"]).index == 1
    assert info.meta_graph("train").index == 2
    with pytest.raises(sm_notebook.TagSetNotFoundError) as err:
        info.meta_graph("gpu")
    assert frozenset({"serve", "gpu"}) in err.value.suggestions


def test_duplicate_tag_sets_are_diagnosed_and_warned():
    path = fixture_path("tf1_duplicate_tags")
    report = sm_notebook.inspect(path).diagnose()
    assert "duplicate-tag-set" in report.codes()
    assert "second_sig" in str(report)
    with pytest.warns(sm_notebook.SavedModelWarning, match="second_sig"):
        sm_notebook.inspect(path).meta_graph("serve")


def test_ambiguous_serve_is_diagnosed():
    info = sm_notebook.inspect(fixture_path("tf1_ambiguous_serve"))
    assert "ambiguous-serve" in info.diagnose().codes()
    with pytest.raises(sm_notebook.TagSetNotFoundError, match="Ambiguous"):
        info.meta_graph("serve")


def test_split_string_tag_set_is_diagnosed():
    info = sm_notebook.inspect(fixture_path("tf1_string_tag"))
    assert "split-string-tag" in info.diagnose().codes()
    with pytest.raises(sm_notebook.TagSetNotFoundError) as err:
        info.meta_graph("serve")
    assert err.value.suggestions[0] == info.tag_sets[0]


def test_tf2_module_variables_map_through_the_object_graph():
    info = sm_notebook.inspect(fixture_path("tf2_module"))
    mg = info.meta_graphs[0]
    assert mg.is_tf2
    assert mg.variables and all(v.checkpoint_key.endswith(".ATTRIBUTES/VARIABLE_VALUE") for v in mg.variables)
    assert mg.concrete_functions


def test_format_tag_set_is_sorted_and_quoted():
    assert format_tag_set({"serve", "gpu"}) == "{'gpu', 'serve'}"
