"""`sm-notebook run` inputs and outputs against TensorFlow's saved_model_cli.

--input_examples builds the tf.train.Examples saved_model_cli builds, and --outdir
writes .npy files that load as saved_model_cli's do (string outputs included).
"""
import subprocess
import sys

import numpy as np
import pytest

from conftest import fixture_path
from sm_notebook import cli
from sm_notebook.format.example import serialize_example

pytestmark = pytest.mark.interop

EXAMPLES = 'inputs=[{"x": [0.5, -1.0], "k": [3]}, {"x": [2.0, 0.25], "k": [0]}]'


@pytest.mark.parametrize("features", [
    {"x": [0.5, -1.0], "k": [3]},
    {"s": ["h\u00e9llo", "b"], "b": [b"\x00\xff", b""], "n": [-2, 2**63 - 1, -2**63]},
    {"f": [1.0, 2], "i": [0]},
])
def test_examples_are_the_ones_saved_model_cli_builds(features):
    from tensorflow.core.example import example_pb2
    from tensorflow.python.tools import saved_model_cli

    ours = example_pb2.Example.FromString(serialize_example(features))
    theirs = example_pb2.Example.FromString(saved_model_cli._create_example_string(features))
    assert ours == theirs


def test_outdir_files_load_as_saved_model_cli_writes_them(tmp_path, capsys):
    model = str(fixture_path("tf1_estimator_style"))
    argv = ["run", "--dir", model, "--tag_set", "serve", "--signature_def", "classify",
            "--input_examples", EXAMPLES]
    completed = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *argv,
                                "--outdir", str(tmp_path / "tf")], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert cli.main([*argv, "--outdir", str(tmp_path / "ours")]) == 0, capsys.readouterr().err
    for key in ("classes", "scores"):
        theirs = np.load(tmp_path / "tf" / f"{key}.npy", allow_pickle=True)
        ours = np.load(tmp_path / "ours" / f"{key}.npy", allow_pickle=True)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        if theirs.dtype == object:
            assert ours.tolist() == theirs.tolist()
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
