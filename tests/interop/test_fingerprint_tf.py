"""fingerprint.pb: what we compute equals what TensorFlow computes for the same files."""
import pytest

import sm_notebook
from conftest import fixture_names, fixture_path
from sm_notebook.format import fingerprint as F, savedmodel as files

tf = pytest.importorskip("tensorflow")
from tensorflow.core.protobuf import fingerprint_pb2  # noqa: E402
from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting as tf_fingerprinting  # noqa: E402

HASH_FIELDS = ("saved_model_checksum", "graph_def_program_hash", "signature_def_hash",
               "saved_object_graph_hash", "checkpoint_hash")
WITH_FINGERPRINT = [n for n in fixture_names() if (fixture_path(n) / files.FINGERPRINT_PB).is_file()]


def _tensorflows(export_dir):
    return fingerprint_pb2.FingerprintDef.FromString(tf_fingerprinting.CreateFingerprintDef(str(export_dir)))


@pytest.mark.parametrize("name", WITH_FINGERPRINT)
def test_recomputed_fields_equal_tensorflows(name):
    ours = F.compute_fingerprint_fields(fixture_path(name))
    theirs = _tensorflows(fixture_path(name))
    for field in HASH_FIELDS:
        assert ours[field] == getattr(theirs, field), field


@pytest.mark.parametrize("name", ["keras3_mlp", "tf2_module"])
def test_builder_writes_the_fingerprint_tensorflow_would(tmp_path, name):
    builder = sm_notebook.Builder.from_saved_model(fixture_path(name))
    key = sorted(k for k in builder.signatures() if not k.startswith("__"))[0]
    builder.rename_signature(key, key + "_renamed")
    out = builder.save(tmp_path / "edited")
    written = fingerprint_pb2.FingerprintDef.FromString((out / files.FINGERPRINT_PB).read_bytes())
    theirs = _tensorflows(out)
    for field in HASH_FIELDS:
        assert getattr(written, field) == getattr(theirs, field), field
    assert tf.saved_model.experimental.read_fingerprint(str(out)).signature_def_hash == theirs.signature_def_hash
    assert sm_notebook.inspect(out).diagnose().ok
