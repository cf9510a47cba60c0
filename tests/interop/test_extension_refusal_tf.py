"""A real tensorflow-text export is refused at load, naming every op from outside core
TensorFlow and its library; scan and diagnose say the same. The export is made in a
child process, so tensorflow-text's ops never enter this process's op registry (which
tests/interop/test_opdefs_current.py compares with the op table)."""
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_text")

import sm_notebook as sm  # noqa: E402
from sm_notebook.engine.scan import scan_model  # noqa: E402
from sm_notebook.errors import UnsupportedOpError  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.slow]

EXPORT = textwrap.dedent("""
    import sys
    import tensorflow as tf
    import tensorflow_text as text

    class Tokens(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def tokenize(self, lines):
            normalized = text.normalize_utf8(lines, "NFKC")
            return {"tokens": text.WhitespaceTokenizer().tokenize(normalized).flat_values}

    module = Tokens()
    tf.saved_model.save(module, sys.argv[1], signatures={"tokenize": module.tokenize})
""")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    path = tmp_path_factory.mktemp("tftext") / "m"
    subprocess.run([sys.executable, "-c", EXPORT, str(path)], check=True, capture_output=True,
                   timeout=600)
    return path


def test_a_tensorflow_text_export_is_refused_naming_its_ops(export):
    with pytest.raises(UnsupportedOpError) as caught:
        sm.load(export)
    message = str(caught.value)
    assert "NormalizeUTF8" in caught.value.ops
    assert "TFText>WhitespaceTokenizeWithOffsetsV2" in caught.value.ops
    assert "come from tensorflow-text" in message and "unknown library" not in message
    report = scan_model(export)
    assert not report.ok and set(report.foreign.values()) == {"tensorflow-text"}
    assert {"NormalizeUTF8", "TFText>WhitespaceTokenizeWithOffsetsV2"} <= set(report.foreign)
    codes = sm.inspect(export).diagnose().codes()
    assert "foreign-ops" in codes
