"""The %%savedmodel cell format: parsing, writing back, and the Builder calls each edit makes."""
import pytest

import sm_notebook
from notebook_fixtures import copy_model, fixture_model  # noqa: F401 (fixtures)
from sm_notebook.notebook.edits import (Edit, EditSyntaxError, apply_edits, format_edits, outline_diff,
                                        parse_edits, parse_tag_set, preview_edits)

CELL = """
# a comment line
meta_graph: serve
rename: predict -> serving_default      # trailing comment
rename_input: serving_default x -> features
rename_output: serving_default output_0 -> probabilities
method: serving_default classify
remove: old
add: scores
  inputs: x=x:0
  outputs: probabilities=probabilities:0, ids=token_ids:0
  method: regress
tags: serve -> serve,gpu
add_meta_graph: serve,tpu from serve
remove_meta_graph: {'train'}
add_asset: data/vocab.txt as vocab.txt
"""


def test_parse_every_directive():
    edits = parse_edits(CELL)
    assert [e.kind for e in edits] == ["rename", "rename_input", "rename_output", "method", "remove", "add",
                                       "tags", "add_meta_graph", "remove_meta_graph", "add_asset"]
    serve = frozenset({"serve"})
    assert edits[0] == Edit("rename", ("predict", "serving_default"), serve, line=4)
    assert edits[1].args == ("serving_default", "x", "features")
    assert edits[3].args == ("serving_default", "tensorflow/serving/classify")
    add = edits[5]
    assert add.args == ("scores",) and add.tags == serve
    assert add.options == {"inputs": {"x": "x:0"}, "outputs": {"probabilities": "probabilities:0", "ids": "token_ids:0"},
                           "method": "tensorflow/serving/regress"}
    assert edits[6].args == (serve, frozenset({"serve", "gpu"})) and edits[6].tags is None
    assert edits[7].args == (frozenset({"serve", "tpu"}), serve)
    assert edits[8].args == (frozenset({"train"}),)
    assert edits[9].args == ("data/vocab.txt", "vocab.txt")


def test_default_tags_apply_until_a_meta_graph_line():
    edits = parse_edits("remove: a\nmeta_graph: serve,gpu\nremove: b", tags="train")
    assert [e.tags for e in edits] == [frozenset({"train"}), frozenset({"serve", "gpu"})]


def test_format_round_trips():
    edits = parse_edits(CELL)
    again = parse_edits(format_edits(edits))
    assert [(e.kind, e.args, e.tags, e.options) for e in again] == [(e.kind, e.args, e.tags, e.options) for e in edits]


@pytest.mark.parametrize("text, tags", [
    ("serve,gpu", {"serve", "gpu"}), ("{'gpu', 'serve'}", {"serve", "gpu"}), ("serve gpu", {"serve", "gpu"}),
    ("{}", set()), ("", set())])
def test_tag_set_spellings(text, tags):
    assert parse_tag_set(text) == frozenset(tags)


@pytest.mark.parametrize("cell, message, line", [
    ("rename: a", "expected 'OLD -> NEW'", 1),
    ("\nrename_input: sig a b -> c", "expected 'SIGNATURE OLD -> NEW'", 2),
    ("remove: a b", "expected one signature key", 1),
    ("method: sig", "expected 'SIGNATURE METHOD'", 1),
    ("add: s\n  inputs: x", "expected KEY=TENSOR", 2),
    ("add: s\n  outputs: a=x:0, a=y:0", "appears twice", 2),
    ("add: s\n  colour: red", "only inputs, outputs and method", 2),
    ("tags: serve", "expected 'OLD_TAGS -> NEW_TAGS'", 1),
    ("remvoe: a", "did you mean 'remove'", 1),
    ("rename:", "needs arguments", 1),
    ("remove_meta_graph: @one", "@ takes a metagraph number", 1),
])
def test_syntax_errors_name_the_line(cell, message, line):
    with pytest.raises(EditSyntaxError, match=message) as caught:
        parse_edits(cell)
    assert caught.value.line_number == line
    assert str(caught.value).startswith(f"line {line}: ")


class RecordingBuilder:
    """Stands in for the Builder to check which call each edit makes (not a result check)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


def test_each_edit_is_one_builder_call():
    builder = RecordingBuilder()
    apply_edits(builder, parse_edits(CELL))
    names = [c[0] for c in builder.calls]
    assert names == ["rename_signature", "rename_input", "rename_output", "set_method_name", "remove_signature",
                     "add_signature", "set_tags", "add_meta_graph", "remove_meta_graph", "add_asset"]
    assert builder.calls[0] == ("rename_signature", ("predict", "serving_default"), {"tags": frozenset({"serve"})})
    assert builder.calls[6] == ("set_tags", (["serve"], ["gpu", "serve"]), {"allow_empty": False, "index": None})
    assert builder.calls[9] == ("add_asset", ("data/vocab.txt",), {"name": "vocab.txt", "tags": frozenset({"serve"})})


def test_metagraphs_by_number():
    edits = parse_edits("tags: @1 -> serve,gpu\ntags: @0 serve -> {}\nremove_meta_graph: @2")
    assert [(e.args, e.options) for e in edits] == [
        ((None, frozenset({"serve", "gpu"})), {"index": 1}),
        ((frozenset({"serve"}), frozenset()), {"index": 0}),
        ((None,), {"index": 2})]
    assert format_edits(edits) == "tags: @1 -> gpu,serve\ntags: @0 serve -> {}\nremove_meta_graph: @2"
    builder = RecordingBuilder()
    apply_edits(builder, edits)
    assert builder.calls[1] == ("set_tags", (["serve"], []), {"allow_empty": True, "index": 0})
    with pytest.raises(EditSyntaxError, match="@ takes a metagraph number"):
        parse_edits("tags: @x -> serve")


def test_a_failing_edit_names_its_line():
    class Refusing(RecordingBuilder):
        def remove_signature(self, key, tags=None):
            raise sm_notebook.SavedModelError(f"No signature {key!r}.")
    with pytest.raises(sm_notebook.SavedModelError, match=r"^line 3: remove: old: No signature 'old'\.$"):
        apply_edits(Refusing(), parse_edits("rename: a -> b\n\nremove: old"))


def test_outline_diff_of_identical_models_is_empty():
    info = sm_notebook.inspect(fixture_model("tf1_multi_tags"))
    assert outline_diff(info, info) == ""


def test_preview_writes_nothing_and_diffs(copy_model):
    path = copy_model("tf1_multi_tags")
    before = sorted(p.name for p in path.rglob("*"))
    _, diff, warnings = preview_edits(path, parse_edits("rename: lookup -> tokens_to_ids", tags="serve"))
    assert warnings == []
    assert "-  signature lookup" in diff and "+  signature tokens_to_ids" in diff
    assert sorted(p.name for p in path.rglob("*")) == before
