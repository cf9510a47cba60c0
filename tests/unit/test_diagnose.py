"""diagnose(): each consistency problem is found, explained, and comes with a fix."""
import shutil

import pytest

import sm_notebook
from conftest import fixture_path
from sm_notebook.format import savedmodel as files
from sm_notebook.format.bundle import BundleReader, BundleWriter


def _codes(path):
    return sm_notebook.inspect(path).diagnose().codes()


def test_clean_fixtures_have_no_errors():
    for name in ("tf1_multi_tags", "keras3_mlp", "tf2_module", "tfkeras_mlp"):
        report = sm_notebook.inspect(fixture_path(name)).diagnose()
        assert report.ok, f"{name}:\n{report}"


def test_missing_asset_file(copy_fixture):
    path = copy_fixture("tf1_multi_tags")
    (path / "assets" / "vocab.txt").unlink()
    report = sm_notebook.inspect(path).diagnose()
    assert "missing-asset" in report.codes()
    problem = next(p for p in report.problems if p.code == "missing-asset")
    assert "vocab.txt" in problem.message and problem.fix


def test_missing_variable_in_the_bundle(copy_fixture):
    path = copy_fixture("keras3_mlp")
    prefix = path / "variables" / "variables"
    with BundleReader(prefix) as reader:
        keys = reader.keys()
        dropped = next(k for k in keys if k.startswith("variables/"))
        rebuilt = path / "rebuilt"
        with BundleWriter(rebuilt) as writer:
            for key in keys:
                if key != dropped:
                    writer.add_from(reader, key)
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.move(str(rebuilt) + suffix, str(prefix) + suffix)
    report = sm_notebook.inspect(path).diagnose()
    assert "missing-variable" in report.codes(), str(report)
    assert dropped in str(report)


def test_missing_bundle(copy_fixture):
    path = copy_fixture("tf1_multi_tags")
    shutil.rmtree(path / "variables")
    assert "missing-variables-bundle" in _codes(path)


def test_corrupt_bundle_is_reported_not_raised(copy_fixture):
    path = copy_fixture("tf1_multi_tags")
    (path / "variables" / "variables.index").write_bytes(b"\x00" * 10)
    report = sm_notebook.inspect(path).diagnose()
    assert "corrupt-variables" in report.codes()
    assert "variables.index" in str(report)


def test_signature_tensor_missing_from_graph(copy_fixture):
    path = copy_fixture("tf1_multi_tags")
    model = files.read_saved_model(path)
    model.meta_graphs[0].signature_def["serving_default"].outputs["probabilities"].name = "no_such_node:0"
    (path / "saved_model.pb").write_bytes(model.SerializeToString())
    report = sm_notebook.inspect(path).diagnose()
    assert "missing-tensor" in report.codes()
    assert "no_such_node" in str(report)


@pytest.mark.parametrize("tags, code", [(["Serve"], "misspelled-tag"), (["serving", "gpu"], "misspelled-tag"),
                                        ([], "empty-tag-set")])
def test_tag_problems(copy_fixture, tags, code):
    path = copy_fixture("tf1_pbtxt")
    model = files.read_saved_model(path)
    del model.meta_graphs[0].meta_info_def.tags[:]
    model.meta_graphs[0].meta_info_def.tags.extend(tags)
    (path / "saved_model.pbtxt").unlink()
    (path / "saved_model.pb").write_bytes(model.SerializeToString())
    report = sm_notebook.inspect(path).diagnose()
    assert code in report.codes()
    assert all(p.fix for p in report.problems if p.severity != "note")


def test_report_text_puts_problems_first():
    report = sm_notebook.inspect(fixture_path("tf1_duplicate_tags")).diagnose()
    text = str(report)
    assert text.index("ERROR duplicate-tag-set") < text.index("MetaGraphDef #0")
    assert "Fix:" in text


def test_integer_map_keys_serialize_in_cpp_order():
    from sm_notebook._proto import graph_pb2
    from sm_notebook.format.canonical import cpp_deterministic_bytes
    function = graph_pb2.FunctionDef()
    function.arg_attr[10].attr["a"].i = 1
    function.arg_attr[2].attr["a"].i = 1
    data = cpp_deterministic_bytes(function)
    assert data.index(b"\x08\x02") < data.index(b"\x08\x0a")   # key 2 before key 10, as C++ sorts
    assert graph_pb2.FunctionDef.FromString(data) == function


def test_stale_fingerprint_after_hand_edit(copy_fixture):
    path = copy_fixture("keras3_mlp")
    model = files.read_saved_model(path)
    model.meta_graphs[0].graph_def.node.add(name="extra", op="NoOp")
    (path / "saved_model.pb").write_bytes(model.SerializeToString())
    report = sm_notebook.inspect(path).diagnose()
    assert "stale-fingerprint" in report.codes()
    assert "graph_def_program_hash" in str(report)


def test_no_map_value_type_holds_an_integer_keyed_map():
    """canonical._map_entry relies on this: map entries need no re-encoding of their values."""
    from google.protobuf.descriptor import FieldDescriptor

    from sm_notebook._proto import saved_model_pb2
    from sm_notebook.format import canonical
    seen, stack = set(), [saved_model_pb2.SavedModel.DESCRIPTOR, saved_model_pb2.FingerprintDef.DESCRIPTOR]
    while stack:
        descriptor = stack.pop()
        if descriptor.full_name in seen:
            continue
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            if canonical._is_map(field):
                value = field.message_type.fields_by_name["value"]
                if value.type == FieldDescriptor.TYPE_MESSAGE:
                    assert not canonical._needs_reencoding(value.message_type), field.full_name
            stack.append(field.message_type)
    assert "smnb.FunctionDef" in seen
