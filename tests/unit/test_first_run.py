"""Following the README on a fresh machine: the demo, pasted commands, command-line advice,
both option spellings, and diagnose on exports that will not load."""
import importlib.util
import shlex
import shutil

import pytest

import sm_notebook as sm
from sm_notebook import cli

from conftest import fixture_path


def test_every_command_the_demo_prints_works_when_pasted(capsys):
    assert cli.main(["demo", "--no-lab"]) == 0
    printed = [line[2:] for line in capsys.readouterr().out.splitlines() if line.startswith("$ sm-notebook ")]
    assert len(printed) >= 2
    for command in printed:
        argv = shlex.split(command)[1:]
        assert cli.main(argv) == 0, command
        capsys.readouterr()


def test_demo_without_jupyterlab_prints_what_to_run(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jupyterlab" else real(name, *a))
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "JupyterLab is not installed" in out and "pip install" in out and "jupyter lab" in out


def test_lab_is_opened_with_allow_root_as_root(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert cli.lab_command("/nb")[-1] == "--allow-root"
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert "--allow-root" not in cli.lab_command("/nb")


def test_demo_opens_the_lab_in_a_terminal(monkeypatch, capsys):
    calls = []
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr(cli, "subprocess_call", lambda command: calls.append(command) or 0)
    assert cli.main(["demo"]) == 0
    assert calls and calls[0][1:3] == ["-m", "jupyterlab"]
    assert "$ jupyter lab" in capsys.readouterr().out


def test_command_line_errors_give_command_line_advice(capsys):
    path = str(fixture_path("tf1_multi_tags"))
    assert cli.main(["show", "--dir", path, "--tag_set", "serve,gpux"]) == 1
    err = capsys.readouterr().err
    assert "--tag_set gpu,serve" in err and "tags=" not in err
    assert cli.main(["run", "--dir", path, "--tag_set", "", "--signature_def", "x"]) == 1
    assert "tags=" not in capsys.readouterr().err


def test_a_space_separated_tag_string_is_explained_like_commas(capsys):
    path = fixture_path("tf1_multi_tags")
    with pytest.raises(sm.TagSetNotFoundError) as caught:
        sm.load(path, tags="serve gpu")
    assert caught.value.suggestions[0] == {"serve", "gpu"}
    assert "contains spaces" in str(caught.value) and "near-miss" not in str(caught.value)
    assert "tags=['gpu', 'serve']" in str(caught.value)
    assert cli.main(["show", "--dir", str(path), "--tag_set", "serve gpu"]) == 1
    err = capsys.readouterr().err
    assert "contains spaces" in err and "--tag_set gpu,serve" in err


def test_cli_accepts_the_magic_spellings(capsys):
    path = str(fixture_path("tf1_multi_tags"))
    assert cli.main(["show", "--dir", path, "--tags", "serve", "--signature", "serving_default"]) == 0
    by_magic_names = capsys.readouterr().out
    assert cli.main(["show", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default"]) == 0
    assert capsys.readouterr().out == by_magic_names


def test_diagnose_reports_a_tf2_export_without_its_variables(copy_fixture):
    path = copy_fixture("keras3_mlp")
    shutil.rmtree(path / "variables")
    report = sm.inspect(path).diagnose()
    assert "missing-variables-bundle" in report.codes()
    assert "stale-fingerprint" not in report.codes()
    with pytest.raises(sm.SavedModelError):
        sm.load(path)


def test_diagnose_warns_without_serving_default(tmp_path, copy_fixture):
    from sm_notebook.builder import Builder
    builder = Builder.from_saved_model(copy_fixture("tf2_module"))
    builder.rename_signature("serving_default", "predict")
    path = builder.save(tmp_path / "renamed")
    problem = next(p for p in sm.inspect(path).diagnose().problems if p.code == "no-serving-default")
    assert problem.severity == "warning" and "predict" in problem.message and "rename_signature" in problem.fix


def test_diagnose_warns_about_auto_generated_output_names():
    report = sm.inspect(fixture_path("keras3_mlp")).diagnose()
    problem = next(p for p in report.problems if p.code == "auto-output-names")
    assert "output_0" in problem.message and "rename_output" in problem.fix


def test_a_fix_is_shown_once():
    report = sm.inspect(fixture_path("tf1_duplicate_tags")).diagnose()
    problem = next(p for p in report.problems if p.code == "duplicate-tag-set")
    assert "Fix" not in problem.message and problem.fix


def test_show_marks_a_shadowed_metagraph_in_its_heading():
    from sm_notebook import render
    info = sm.inspect(fixture_path("tf1_duplicate_tags"))
    text = render.saved_model_text(info)
    headings = [line for line in text.splitlines() if line.startswith("MetaGraphDef #")]
    assert "SHADOWED by #0" not in headings[0] and "SHADOWED by #0" in headings[1]
    assert "SHADOWED by #0" in render.saved_model_html(info)
