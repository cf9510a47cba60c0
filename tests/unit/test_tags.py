"""Exact tag-set selection and the suggestions that explain a miss."""
import warnings

import pytest

from sm_notebook import SavedModelError, SavedModelWarning, TagSetNotFoundError
from sm_notebook._proto import saved_model_pb2
from sm_notebook.tags import misspelled_standard_tag, normalize_tags, select_meta_graph


def make_model(*tag_sets, signatures=None):
    model = saved_model_pb2.SavedModel()
    for i, tags in enumerate(tag_sets):
        mg = model.meta_graphs.add()
        mg.meta_info_def.tags.extend(tags)
        for key in (signatures or {}).get(i, [f"sig{i}"]):
            mg.signature_def[key].method_name = "tensorflow/serving/predict"
    return model


def test_exact_match_is_required_and_superset_is_not_taken():
    model = make_model(["serve", "gpu"], ["serve"])
    index, _ = select_meta_graph(model, "serve")
    assert index == 1
    index, _ = select_meta_graph(model, ["gpu", "serve"])
    assert index == 0


def test_bare_string_is_one_tag_never_characters():
    assert normalize_tags("serve") == frozenset({"serve"})
    assert normalize_tags(("serve", "gpu")) == frozenset({"serve", "gpu"})
    with pytest.raises(SavedModelError):
        normalize_tags(42)
    with pytest.raises(SavedModelError):
        normalize_tags(["serve", 3])


def test_none_takes_the_only_metagraph_and_refuses_several():
    assert select_meta_graph(make_model(["serve"]), None)[0] == 0
    with pytest.raises(TagSetNotFoundError) as info:
        select_meta_graph(make_model(["serve"], ["train"]), None)
    assert info.value.requested is None
    assert "tags=" in str(info.value)


def test_superset_is_suggested_with_everything_available():
    model = make_model(["serve", "gpu"], ["train"])
    with pytest.raises(TagSetNotFoundError) as info:
        select_meta_graph(model, "serve")
    err = info.value
    assert err.requested == frozenset({"serve"})
    assert err.available == [frozenset({"serve", "gpu"}), frozenset({"train"})]
    assert err.suggestions[0] == frozenset({"serve", "gpu"})
    assert "{'gpu', 'serve'}" in str(err) and "{'train'}" in str(err)
    assert "What to do" in str(err)


def test_ambiguity_names_every_candidate_with_signatures():
    model = make_model(["serve", "gpu"], ["serve", "cpu"], signatures={0: ["on_gpu"], 1: ["on_cpu"]})
    with pytest.raises(TagSetNotFoundError) as info:
        select_meta_graph(model, ["serve"])
    text = str(info.value)
    assert "Ambiguous" in text and "on_gpu" in text and "on_cpu" in text
    assert set(info.value.suggestions[:2]) == {frozenset({"serve", "gpu"}), frozenset({"serve", "cpu"})}


@pytest.mark.parametrize("request_tags, expected, reason", [
    (["Serve"], {"serve"}, "case"),
    ([" serve "], {"serve"}, "whitespace"),
    (["serving"], {"serve"}, "spelling"),
    (["trian"], {"train"}, "spelling"),
    (["serve,gpu"], {"serve", "gpu"}, "commas"),
    (list("serve"), {"serve"}, "characters"),
])
def test_near_misses_are_explained(request_tags, expected, reason):
    model = make_model(["serve"], ["serve", "gpu"], ["train"])
    with pytest.raises(TagSetNotFoundError) as info:
        select_meta_graph(model, request_tags)
    assert info.value.suggestions[0] == frozenset(expected)
    assert reason in str(info.value)


def test_model_saved_with_a_split_string_is_detected():
    model = make_model(list("serve"))
    with pytest.raises(TagSetNotFoundError) as info:
        select_meta_graph(model, "serve")
    assert info.value.suggestions == [frozenset("serve")]
    assert "string 'serve' where a list of tags" in str(info.value)


def test_empty_tag_set_is_suggested_when_nothing_else_fits():
    model = make_model([])
    with pytest.raises(TagSetNotFoundError) as info:
        select_meta_graph(model, "serve")
    assert info.value.suggestions == [frozenset()]
    assert select_meta_graph(model, [])[0] == 0


def test_duplicates_take_the_first_and_warn_about_the_shadowed_one():
    model = make_model(["serve"], ["serve"], signatures={0: ["first_sig"], 1: ["second_sig"]})
    with pytest.warns(SavedModelWarning) as record:
        index, _ = select_meta_graph(model, "serve")
    assert index == 0
    message = str(record[0].message)
    assert "second_sig" in message and "#1" in message and "shadowed" in message


def test_no_warning_without_duplicates():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select_meta_graph(make_model(["serve"], ["train"]), "train")


def test_no_meta_graphs_is_a_clear_error():
    with pytest.raises(SavedModelError, match="no MetaGraphDef"):
        select_meta_graph(saved_model_pb2.SavedModel(), "serve")


@pytest.mark.parametrize("tag, meant", [("Serve", "serve"), ("serving", "serve"), ("trian", "train"),
                                        ("GPU", "gpu"), ("serve", None), ("custom_tag", None)])
def test_misspelled_standard_tags(tag, meant):
    assert misspelled_standard_tag(tag) == meant
