"""Our parse of every fixture equals TensorFlow's parse of the same bytes, field by field."""
import pytest

from conftest import fixture_names, fixture_path
from sm_notebook._proto import saved_model_pb2 as ours_pb2
from sm_notebook.format import savedmodel as files

tf = pytest.importorskip("tensorflow")
from google.protobuf import text_format  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2 as tf_pb2  # noqa: E402
from tensorflow.core.protobuf import fingerprint_pb2 as tf_fingerprint_pb2  # noqa: E402

NAMES = fixture_names()


def _tf_parse(path):
    message = tf_pb2.SavedModel()
    data = path.read_bytes()
    if path.suffix == ".pbtxt":
        text_format.Parse(data.decode(), message)
    else:
        message.ParseFromString(data)
    return message


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_parse_equals_tensorflows(name):
    path = files.saved_model_path(fixture_path(name))
    ours = files.read_saved_model(fixture_path(name))
    theirs = _tf_parse(path)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


@pytest.mark.parametrize("name", NAMES)
def test_tensorflow_parses_what_we_serialize(name):
    ours = files.read_saved_model(fixture_path(name))
    theirs = tf_pb2.SavedModel.FromString(ours.SerializeToString())
    assert theirs == _tf_parse(files.saved_model_path(fixture_path(name)))


@pytest.mark.parametrize("name", NAMES)
def test_fingerprint_parse_and_recomputed_fields(name):
    path = fixture_path(name) / files.FINGERPRINT_PB
    if not path.is_file():
        pytest.skip(f"{name} has no fingerprint.pb (TF1 builders do not write one)")
    theirs = tf_fingerprint_pb2.FingerprintDef.FromString(path.read_bytes())
    ours = files.read_fingerprint(fixture_path(name))
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    from sm_notebook.format.fingerprint import stale_fingerprint_fields
    assert stale_fingerprint_fields(fixture_path(name), ours) == []


def test_any_type_urls_are_tensorflows_and_unpack():
    for name in NAMES:
        model = files.read_saved_model(fixture_path(name))
        for mg in model.meta_graphs:
            for collection in mg.collection_def.values():
                if collection.HasField("any_list"):
                    for value in collection.any_list.value:
                        assert value.type_url.startswith("type.googleapis.com/tensorflow.")
                        files.unpack_any(value)


def test_pbtxt_with_expanded_any_parses(tmp_path):
    model = files.read_saved_model(fixture_path("tf1_multi_tags"))
    tf_model = tf_pb2.SavedModel.FromString(model.SerializeToString())
    text = text_format.MessageToString(tf_model)  # TF's pool expands Any fields as [type.googleapis.com/...]
    (tmp_path / "saved_model.pbtxt").write_text(text)
    parsed = files.read_saved_model(tmp_path)
    assert parsed.SerializeToString(deterministic=True) == model.SerializeToString(deterministic=True)


def test_stale_fingerprint_is_detected(copy_fixture):
    names = [n for n in NAMES if (fixture_path(n) / files.FINGERPRINT_PB).is_file()]
    assert names, "the TF2 fixtures carry fingerprint.pb"
    path = copy_fixture(names[0])
    model = files.read_saved_model(path)
    next(iter(model.meta_graphs[0].signature_def.values())).method_name = "edited/by/hand"
    (path / "saved_model.pb").write_bytes(model.SerializeToString())
    import sm_notebook
    report = sm_notebook.inspect(path).diagnose()
    assert "stale-fingerprint" in report.codes()
    assert ours_pb2.FingerprintDef  # the proto class is importable without TF
