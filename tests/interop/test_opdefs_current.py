"""The committed op table (sm_notebook/opdefs/tf_ops.pb) is what the installed TensorFlow registers."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "sm_notebook" / "opdefs"
REGENERATE = "python tools/generate_opdefs.py"


def test_committed_op_table_equals_a_fresh_generation(tmp_path):
    """Every op the installed TensorFlow registers is in the table with the same definition.

    The table may hold a few more internal ops (names starting with ``_``, e.g.
    ``_CopyFromGpuToHost``): TensorFlow registers those only when some of its libraries
    happen to be loaded, which varies between environments with the same version."""
    from sm_notebook._proto import graph_pb2

    subprocess.run([sys.executable, str(ROOT / "tools" / "generate_opdefs.py"), "--out",
                    str(tmp_path)], check=True, capture_output=True, cwd=ROOT)
    fresh_version = json.loads((tmp_path / "tf_ops.json").read_text())["tensorflow"]
    committed_version = json.loads((COMMITTED / "tf_ops.json").read_text())["tensorflow"]
    assert fresh_version == committed_version, (
        f"The op table was generated from TensorFlow {committed_version}; the installed one is "
        f"{fresh_version}. Regenerate it: {REGENERATE}")
    fresh = {o.name: o.SerializeToString(deterministic=True) for o in
             graph_pb2.OpList.FromString((tmp_path / "tf_ops.pb").read_bytes()).op}
    committed = {o.name: o.SerializeToString(deterministic=True) for o in
                 graph_pb2.OpList.FromString((COMMITTED / "tf_ops.pb").read_bytes()).op}
    missing = sorted(set(fresh) - set(committed))
    changed = sorted(name for name in set(fresh) & set(committed) if fresh[name] != committed[name])
    extra = sorted(name for name in set(committed) - set(fresh) if not name.startswith("_"))
    assert not (missing or changed or extra), (
        f"sm_notebook/opdefs/tf_ops.pb is stale (missing {missing[:10]}, changed {changed[:10]}, "
        f"not registered {extra[:10]}). Regenerate it: {REGENERATE}")


def test_table_answers_match_tensorflows_registry():
    from tensorflow.python.framework import op_def_registry
    from sm_notebook import opdefs

    for name in ("Split", "ConcatV2", "IdentityN", "Unpack", "OnesLike", "Cast", "VariableV2",
                 "FusedBatchNormV3", "StatefulPartitionedCall"):
        theirs, ours = op_def_registry.get(name), opdefs.require(name)
        assert [a.name for a in theirs.output_arg] == [a.name for a in ours.outputs], name
        assert [(a.type, a.type_attr, a.number_attr, a.type_list_attr, a.is_ref)
                for a in theirs.input_arg] == \
            [(a.type, a.type_attr, a.number_attr, a.type_list_attr, a.is_ref) for a in ours.inputs]
        assert theirs.is_stateful == ours.is_stateful, name
        assert {a.name for a in theirs.attr} == set(ours.attrs), name
