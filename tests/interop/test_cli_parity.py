"""`sm-notebook show` prints what `saved_model_cli show` prints, byte for byte.

Against the outputs captured when the fixtures were made (tests/fixtures/cli/),
and live against saved_model_cli on models TensorFlow makes in tmp_path.
The op set of `--all`/`--list_ops` iterates in hash-seed order in both tools:
compared as a set in-process, byte for byte in a subprocess with the seed the
fixtures were captured with (PYTHONHASHSEED=0, see tests/fixtures/make_fixtures.py).
"""
import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sm_notebook import cli

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "tests" / "fixtures" / "cli"
CAPTURE_SEED = "0"
OPS_LINE = re.compile(r"^(The MetaGraph with tag set .* contains the following ops: )(.*)$", re.M)


def _captured_show_commands():
    cases = []
    for commands in sorted(CAPTURES.glob("*/commands.json")):
        for filename, command in json.loads(commands.read_text()).items():
            if command["argv"][1] == "show":
                cases.append(pytest.param(commands.parent / filename, command["argv"][1:],
                                          command["returncode"], id=f"{commands.parent.name}/{filename}"))
    return cases


CASES = _captured_show_commands()


def _op_sets_sorted(text: str) -> str:
    def sort_ops(match):
        ops = set() if match.group(2) == "set()" else ast.literal_eval(match.group(2))
        return match.group(1) + repr(sorted(ops))
    return OPS_LINE.sub(sort_ops, text)


def _env(seed):
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="3")


def _ours(argv, seed=CAPTURE_SEED, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-c", "import sys; from sm_notebook.cli import main; sys.exit(main())", *argv],
        capture_output=True, text=True, env=_env(seed), cwd=cwd, check=False)


@pytest.mark.skipif(not CASES, reason="no captured saved_model_cli outputs")
@pytest.mark.parametrize("captured, argv, returncode", CASES)
def test_matches_captured_output(captured, argv, returncode, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the captured argv names the model relative to the repository
    status = cli.main(argv)
    out = capsys.readouterr().out
    expected = captured.read_text()
    assert (status == 0) == (returncode == 0)
    assert _op_sets_sorted(out) == _op_sets_sorted(expected)


SHOW_ALL = [case for case in CASES if case.values[1][-1] == "--all" or "--list_ops" in case.values[1]]


@pytest.mark.skipif(not SHOW_ALL, reason="no captured saved_model_cli show --all outputs")
@pytest.mark.parametrize("captured, argv, returncode", SHOW_ALL)
def test_show_all_byte_for_byte_with_the_capture_seed(captured, argv, returncode):
    done = _ours(argv)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == captured.read_text()


# -- live, against saved_model_cli itself -------------------------------------------

HAVE_TF = importlib.util.find_spec("tensorflow") is not None and shutil.which("saved_model_cli")

MAKE_MODELS = textwrap.dedent('''
    import os, sys
    import tensorflow as tf
    out = sys.argv[1]

    class Module(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones([8, 3]))
            self.bare = self.ids.get_concrete_function(tf.TensorSpec([None], tf.int32, name="ids"))

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.matmul(x, self.w)}

        @tf.function
        def options(self, x, training=False, scale=2.0, tag="a", extra=None):
            return x * scale

        @tf.function
        def nested(self, pair, mapping):
            return pair[0] + pair[1] + mapping["a"] + mapping["b"]

        @tf.function
        def ids(self, ids):
            return ids + 1

        @tf.function
        def never_called(self, x):
            return x

    m = Module()
    for n in range(12):  # more traces than one digit of option numbers
        m.options(tf.zeros([n + 1]))
    m.options(tf.constant([[1.0]]), training=True)
    m.options(tf.constant([1, 2]), scale=3, tag="b")
    m.options.get_concrete_function(tf.TensorSpec([None, None, 3], tf.float64))
    m.nested((tf.constant(1.0), tf.constant(2.0)), {"b": tf.constant(3.0), "a": tf.constant(4.0)})
    m.nested.get_concrete_function([tf.TensorSpec([2], tf.float32), tf.TensorSpec([], tf.float32)],
                                   {"a": tf.TensorSpec(None, tf.float32),
                                    "b": tf.TensorSpec([1, 2, 3], tf.float32, name="bee")})
    tf.saved_model.save(m, out + "/tf2", signatures={"serving_default": m.serve, "ids": m.bare})

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        s = tf.compat.v1.placeholder(tf.string, [], name="s")
        v = tf.compat.v1.get_variable("v", [4, 2])
        y = tf.matmul(x, v, name="y")
        sparse = tf.compat.v1.sparse_placeholder(tf.float32, name="sp")
        builder = tf.compat.v1.saved_model.Builder(out + "/tf1")
        info = tf.compat.v1.saved_model.build_tensor_info
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            predict = tf.compat.v1.saved_model.predict_signature_def({"x": x, "s": s}, {"y": y})
            custom = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
                {"sp": info(sparse)}, {"y": info(y)}, "custom/method")
            builder.add_meta_graph_and_variables(
                sess, ["serve", "gpu"], signature_def_map={"serving_default": predict, "sparse": custom})
            builder.add_meta_graph(["train"], signature_def_map={"b_sig": predict, "a_sig": predict})
            builder.add_meta_graph(["serve"])
        builder.save()
''')


@pytest.fixture(scope="module")
def live_models(tmp_path_factory):
    if not HAVE_TF:
        pytest.skip("tensorflow / saved_model_cli not installed")
    out = tmp_path_factory.mktemp("live_models")
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(out)], check=True, capture_output=True,
                   env=_env(CAPTURE_SEED))
    return out


def _dict_values_unordered(text: str) -> str:
    """TensorFlow prints a signature's dict entries in protobuf map order, which varies per run."""
    return "\n".join("".join(sorted(line)) if "Value: {" in line else line for line in text.split("\n"))


LIVE = [
    ("tf2", ["--all"]),
    ("tf2", ["--tag_set", "serve", "--list_ops", "--signature_def", "serving_default"]),
    ("tf1", ["--all"]),
    ("tf1", ["--tag_set", "gpu,serve", "--signature_def", "sparse"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("model, flags", LIVE, ids=[f"{m}:{' '.join(f)}" for m, f in LIVE])
def test_live_against_saved_model_cli(live_models, model, flags):
    argv = ["show", "--dir", str(live_models / model), *flags]
    theirs = subprocess.run(["saved_model_cli", *argv], capture_output=True, text=True,
                            env=_env("7"), check=False)
    ours = _ours(argv, seed="7")
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    assert ours.returncode == 0 and ours.stderr == ""
    assert _dict_values_unordered(ours.stdout) == _dict_values_unordered(theirs.stdout)
    assert "\nConcrete Functions:" in ours.stdout or model != "tf2" or "--all" not in flags
