"""sm-notebook run / scan / demo: saved_model_cli run's output format, inputs, errors."""
import json
import re

import numpy as np
import pytest

from conftest import FIXTURES, fixture_path
from sm_notebook import cli


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _numbers(text):
    return [float(x) for x in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?|-?\d+", text)]


@pytest.mark.parametrize("name", ["tf1_multi_tags", "keras3_mlp", "tf2_module", "tf1_estimator_style"])
def test_run_prints_what_saved_model_cli_printed(name, capsys):
    """Same lines and keys; numbers within float32 tolerance (TF's kernels round differently)."""
    commands = json.loads((FIXTURES / "cli" / name / "commands.json").read_text())
    runs = {out: c["argv"][1:] for out, c in commands.items()
            if c["argv"][1] == "run" and c["returncode"] == 0}
    assert runs, f"the fixture script captured no saved_model_cli run for {name}"
    for stdout_file, argv in runs.items():
        argv = [a if a != f"tests/fixtures/models/{name}" else str(fixture_path(name)) for a in argv]
        status, out, err = _run(capsys, *argv)
        expected = (FIXTURES / "cli" / name / stdout_file).read_text()
        assert status == 0, err
        assert [l for l in out.splitlines() if l.startswith("Result")] == \
               [l for l in expected.splitlines() if l.startswith("Result")]
        np.testing.assert_allclose(_numbers(out), _numbers(expected), rtol=1e-5, atol=1e-6)


def test_run_reads_npy_inputs_and_writes_outdir(tmp_path, capsys):
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    np.save(tmp_path / "x.npy", x)
    status, out, _ = _run(capsys, "run", "--dir", fixture_path("tf1_multi_tags"), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs", f"x={tmp_path / 'x.npy'}",
                          "--outdir", tmp_path / "out")
    assert status == 0 and "Result for output key probabilities:" in out
    saved = np.load(tmp_path / "out" / "probabilities.npy")
    assert saved.shape == (1, 4) and abs(float(saved.sum()) - 1.0) < 1e-5
    status, _, err = _run(capsys, "run", "--dir", fixture_path("tf1_multi_tags"), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs", f"x={tmp_path / 'x.npy'}",
                          "--outdir", tmp_path / "out")
    assert status == 1 and "--overwrite" in err


def test_run_input_exprs_may_use_numpy(capsys):
    status, out, _ = _run(capsys, "run", "--dir", fixture_path("tf1_multi_tags"), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--input_exprs", "x=np.ones((2, 3))")
    assert status == 0 and out.count("\n") >= 3


@pytest.mark.parametrize("argv, message", [
    (["--tag_set", "serve", "--signature_def", "nope", "--input_exprs", "x=[[1,2,3]]"], "nope"),
    (["--tag_set", "gpu", "--signature_def", "serving_default", "--input_exprs", "x=[[1,2,3]]"], "gpu"),
    (["--tag_set", "serve", "--signature_def", "serving_default", "--input_exprs", "x"], "expected <input key>="),
    (["--tag_set", "serve", "--signature_def", "serving_default", "--input_exprs", "x=open('f')"],
     "Cannot use --input_exprs x \"open('f')\": calling 'open' is not allowed"),
    (["--tag_set", "serve", "--signature_def", "serving_default", "--input_exprs", "x=np.zeros(1000000000000)"],
     "limit for typed inputs"),
    (["--tag_set", "serve", "--signature_def", "serving_default", "--input_exprs", "x=[[1,2,3]]",
      "--input_examples", "x=[{'f': [1.0]}]"], "Input 'x' is given twice (again in --input_examples)"),
    (["--tag_set", "serve", "--signature_def", "serving_default", "--input_examples", "x={'f': [1.0]}"],
     "must be a list of {feature: list} dicts"),
    (["--tag_set", "serve", "--signature_def", "serving_default", "--input_examples", "x=[{'f': []}]"],
     "non-empty list"),
    (["--tag_set", "serve", "--signature_def", "serving_default", "--inputs", "x=/no/such.npy"], "Cannot read input"),
])
def test_run_errors_are_one_clear_message(argv, message, capsys):
    status, out, err = _run(capsys, "run", "--dir", fixture_path("tf1_multi_tags"), *argv)
    assert status == 1 and out == ""
    assert err.startswith("sm-notebook: error:") and message in err and "Traceback" not in err


@pytest.mark.parametrize("flag, payload", [
    ("--input_exprs", 'x=np.lib._npyio_impl.os.system("{cmd}") or [[1,2,3]]'),
    ("--input_exprs", 'x=__import__("os").system("{cmd}") or [[1,2,3]]'),
    ("--input_examples", 'x=[{{"f": [np.lib._npyio_impl.os.system("{cmd}")]}}]'),
])
def test_run_never_evaluates_its_input_text(flag, payload, tmp_path, capsys):
    """The payload that ran `id` (issue 10) is refused and runs nothing."""
    marker = tmp_path / "ran"
    status, out, err = _run(capsys, "run", "--dir", fixture_path("tf1_multi_tags"), "--tag_set", "serve",
                            "--signature_def", "serving_default", flag, payload.format(cmd=f"touch {marker}"))
    assert status == 1 and out == "" and not marker.exists()
    assert f"Cannot use {flag} x" in err and "is not" in err and "Allowed: Python literals" in err


def test_run_outdir_saves_string_outputs_as_saved_model_cli_does(tmp_path, capsys):
    """saved_model_cli np.save()s each output array; string outputs are object arrays of bytes."""
    status, out, err = _run(capsys, "run", "--dir", fixture_path("tf1_estimator_style"), "--tag_set", "serve",
                            "--signature_def", "classify", "--input_examples",
                            'inputs=[{"x": [0.5, -1.0], "k": [3]}, {"x": [2.0, 0.25], "k": [0]}]',
                            "--outdir", tmp_path)
    assert status == 0, err
    classes = np.load(tmp_path / "classes.npy", allow_pickle=True)
    assert classes.dtype == object and classes.tolist() == [[b"negative", b"positive"]] * 2
    scores = np.load(tmp_path / "scores.npy")  # numbers stay loadable without pickle
    assert scores.dtype == np.float32 and scores.shape == (2, 2)
    assert f"Output classes is saved to {tmp_path / 'classes.npy'}" in out


def test_scan_reports_unreachable_io_but_passes(capsys):
    status, out, _ = _run(capsys, "scan", "--dir", fixture_path("tf1_multi_tags"), "--tag_set", "serve")
    assert status == 0
    assert "SaveV2" in out and "not reachable" in out


def test_demo_runs_the_bundled_example_without_opening_lab(capsys):
    status, out, _ = _run(capsys, "demo", "--no-lab")
    assert status == 0
    assert "Result for output key probabilities:" in out
    assert "Did you mean" in out and "[ 2  3 -1]" in out
