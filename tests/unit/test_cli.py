"""The sm-notebook command: output format, error paths, exit codes, no tracebacks."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fixture_names, fixture_path
from sm_notebook import cli, showtext
from sm_notebook._proto import meta_graph_pb2, saved_model_pb2, tensor_pb2

REPO = Path(__file__).resolve().parents[2]


def _tensor_info(name, dtype, dims=None):
    info = meta_graph_pb2.TensorInfo(name=name, dtype=dtype)
    if dims is None:
        info.tensor_shape.unknown_rank = True
    else:
        for size in dims:
            info.tensor_shape.dim.add(size=size)
    return info


def _write_model(directory: Path) -> Path:
    """Two TF1-style metagraphs: {'serve'} with two signatures, {'train', 'extra'} with none."""
    model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    serve = model.meta_graphs.add()
    serve.meta_info_def.tags.append("serve")
    sig = serve.signature_def["predict"]
    sig.method_name = "tensorflow/serving/predict"
    sig.inputs["x"].CopyFrom(_tensor_info("x:0", tensor_pb2.DT_FLOAT, [-1, 8]))
    sig.inputs["b"].CopyFrom(_tensor_info("b:0", tensor_pb2.DT_STRING, []))
    sig.outputs["y"].CopyFrom(_tensor_info("y:0", tensor_pb2.DT_INT64, None))
    serve.signature_def["other"].outputs["z"].CopyFrom(_tensor_info("", 99, [3]))
    for op in ("Placeholder", "MatMul", "Placeholder"):
        serve.graph_def.node.add(name=op.lower(), op=op)
    train = model.meta_graphs.add()
    train.meta_info_def.tags.extend(["train", "extra"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pb").write_bytes(model.SerializeToString())
    return directory


@pytest.fixture
def model_dir(tmp_path):
    return _write_model(tmp_path / "model")


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_tag_sets_listing(model_dir, capsys):
    status, out, err = _run(capsys, "show", "--dir", model_dir)
    assert status == 0 and err == ""
    assert out == ("The given SavedModel contains the following tag-sets:\n"
                   "'serve'\n"
                   "'extra, train'\n")


def test_signature_keys_listing(model_dir, capsys):
    status, out, _ = _run(capsys, "show", "--dir", model_dir, "--tag_set", "serve")
    assert status == 0
    assert out == ("The given SavedModel MetaGraphDef contains SignatureDefs with the following keys:\n"
                   'SignatureDef key: "other"\n'
                   'SignatureDef key: "predict"\n')


def test_tag_set_order_and_spaces_do_not_matter(model_dir, capsys):
    status, out, _ = _run(capsys, "show", "--dir", model_dir, "--tag_set", "train, extra")
    assert status == 0
    assert out.endswith("following keys:\n")


def test_signature_inputs_outputs(model_dir, capsys):
    status, out, _ = _run(capsys, "show", "--dir", model_dir, "--tag_set", "serve",
                          "--signature_def", "predict")
    assert status == 0
    assert out == (
        "The given SavedModel SignatureDef contains the following input(s):\n"
        "  inputs['b'] tensor_info:\n"
        "      dtype: DT_STRING\n"
        "      shape: ()\n"
        "      name: b:0\n"
        "  inputs['x'] tensor_info:\n"
        "      dtype: DT_FLOAT\n"
        "      shape: (-1, 8)\n"
        "      name: x:0\n"
        "The given SavedModel SignatureDef contains the following output(s):\n"
        "  outputs['y'] tensor_info:\n"
        "      dtype: DT_INT64\n"
        "      shape: unknown_rank\n"
        "      name: y:0\n"
        "Method name is: tensorflow/serving/predict\n")


def test_unknown_dtype_and_empty_fields_still_print(model_dir, capsys):
    status, out, _ = _run(capsys, "show", "--dir", model_dir, "--tag_set", "serve",
                          "--signature_def", "other")
    assert status == 0
    assert "      dtype: <unknown DataType 99>\n      shape: (3)\n      name: \n" in out
    assert out.endswith("Method name is: \n")


def test_list_ops(model_dir, capsys):
    status, out, _ = _run(capsys, "show", "--dir", model_dir, "--tag_set", "serve", "--list_ops")
    assert status == 0
    first = out.splitlines()[0]
    assert first.startswith("The MetaGraph with tag set ['serve'] contains the following ops: {")
    assert first.endswith("}") and "'MatMul'" in first and "'Placeholder'" in first


def test_list_ops_without_tag_set_says_so_then_lists_tag_sets(model_dir, capsys):
    status, out, _ = _run(capsys, "show", "--dir", model_dir, "--list_ops")
    assert status == 0
    assert out.startswith(showtext.LIST_OPS_NEEDS_TAG_SET
                          + "The given SavedModel contains the following tag-sets:\n")


def test_empty_metagraph_ops_is_empty_set(model_dir, capsys):
    _, out, _ = _run(capsys, "show", "--dir", model_dir, "--tag_set", "train,extra", "--list_ops")
    assert out.splitlines()[0] == (
        "The MetaGraph with tag set ['train', 'extra'] contains the following ops: set()")


def test_show_all(model_dir, capsys):
    status, out, _ = _run(capsys, "show", "--dir", model_dir, "--all")
    assert status == 0
    assert out.startswith("\nMetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:\n"
                          "\nsignature_def['other']:\n"
                          "  The given SavedModel SignatureDef contains the following input(s):\n")
    assert "\nMetaGraphDef with tag-set: 'train, extra' contains" in out
    assert "Concrete Functions" not in out  # TF1 models have no object graph
    assert out.endswith("The MetaGraph with tag set ['train', 'extra'] contains the following ops: set()\n")


# -- errors -------------------------------------------------------------------

def _assert_one_error(status, out, err):
    assert status == 1
    assert err.startswith("sm-notebook: error: ")
    assert "Traceback" not in err


def test_missing_directory(tmp_path, capsys):
    status, out, err = _run(capsys, "show", "--dir", tmp_path / "nope")
    _assert_one_error(status, out, err)
    assert "does not exist" in err and out == ""


def test_directory_without_saved_model(tmp_path, capsys):
    status, out, err = _run(capsys, "show", "--dir", tmp_path, "--all")
    _assert_one_error(status, out, err)
    assert "saved_model.pb" in err


def test_corrupt_saved_model(tmp_path, capsys):
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff\xff not a protobuf")
    status, out, err = _run(capsys, "show", "--dir", tmp_path)
    _assert_one_error(status, out, err)
    assert "saved_model.pb" in err


def test_unknown_tag_set(model_dir, capsys):
    status, out, err = _run(capsys, "show", "--dir", model_dir, "--tag_set", "srve")
    _assert_one_error(status, out, err)
    assert "srve" in err and "--tag_set serve" in err


def test_unknown_signature(model_dir, capsys):
    status, out, err = _run(capsys, "show", "--dir", model_dir, "--tag_set", "serve",
                            "--signature_def", "predcit")
    _assert_one_error(status, out, err)
    assert "'predcit'" in err and "other, predict" in err and "Did you mean 'predict'" in err


def test_list_ops_is_printed_before_a_signature_error(model_dir, capsys):
    status, out, err = _run(capsys, "show", "--dir", model_dir, "--tag_set", "serve",
                            "--list_ops", "--signature_def", "nope")
    _assert_one_error(status, out, err)
    assert out.startswith("The MetaGraph with tag set ['serve']")


@pytest.mark.parametrize("argv", [[], ["show"], ["frobnicate", "--dir", "x"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage: sm-notebook" in capsys.readouterr().err


def test_duplicate_tag_sets_warn_in_one_line(capsys):
    if "tf1_duplicate_tags" not in fixture_names():
        pytest.fail("fixture tf1_duplicate_tags is missing: python tests/fixtures/make_fixtures.py")
    status, out, err = _run(capsys, "show", "--dir", fixture_path("tf1_duplicate_tags"),
                            "--tag_set", "serve")
    assert status == 0 and 'SignatureDef key: "first_sig"' in out
    assert err.startswith("sm-notebook: warning: ") and err.count("\n") == 1


def test_subcommand_table_lists_show_and_diagnose():
    names = [command.name for command in cli.SUBCOMMANDS]
    assert names[:2] == ["show", "diagnose"]
    assert all(callable(c.run) and callable(c.add_arguments) for c in cli.SUBCOMMANDS)


# -- diagnose -------------------------------------------------------------------

def test_diagnose_clean_model_exits_0(capsys):
    if "tf1_multi_tags" not in fixture_names():
        pytest.fail("fixture tf1_multi_tags is missing: python tests/fixtures/make_fixtures.py")
    import sm_notebook
    status, out, _ = _run(capsys, "diagnose", "--dir", fixture_path("tf1_multi_tags"))
    report = sm_notebook.inspect(fixture_path("tf1_multi_tags")).diagnose()
    assert out == f"{report}\n"
    assert status == (1 if report.errors else 0)


def test_diagnose_model_with_errors_exits_1(capsys):
    if "tf1_duplicate_tags" not in fixture_names():
        pytest.fail("fixture tf1_duplicate_tags is missing: python tests/fixtures/make_fixtures.py")
    status, out, _ = _run(capsys, "diagnose", "--dir", fixture_path("tf1_duplicate_tags"))
    assert status == 1 and "ERROR" in out


def test_diagnose_missing_directory(tmp_path, capsys):
    status, out, err = _run(capsys, "diagnose", "--dir", tmp_path / "nope")
    _assert_one_error(status, out, err)


# -- the real process -----------------------------------------------------------

MAIN = "import sys; from sm_notebook.cli import main; sys.exit(main())"


def _subprocess(*argv):
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", MAIN, *map(str, argv)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=path), check=False)


def test_process_smoke(model_dir, tmp_path):
    done = _subprocess("show", "--dir", model_dir, "--all")
    assert done.returncode == 0 and done.stderr == ""
    assert "signature_def['predict']" in done.stdout
    bad = _subprocess("show", "--dir", tmp_path / "nope")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("sm-notebook: error: ") and "Traceback" not in bad.stderr


@pytest.mark.parametrize("model", ["tf1", "tf2_module", "keras3_mobilenetv2"])
def test_show_imports_nothing_heavy(model, model_dir):
    if model != "tf1" and model not in fixture_names():
        pytest.fail(f"fixture {model} is missing: python tests/fixtures/make_fixtures.py")
    directory = model_dir if model == "tf1" else fixture_path(model)
    probe = ("import sys; from sm_notebook.cli import main; main(sys.argv[1:]); "
             "heavy = [m for m in ('numpy', 'IPython', 'ipywidgets', 'tensorflow', 'ml_dtypes') "
             "if m in sys.modules]; sys.stderr.write(repr(heavy))")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", probe, "show", "--dir", str(directory), "--all"],
                          capture_output=True, text=True, env=env, check=False)
    assert done.stderr == "[]"
