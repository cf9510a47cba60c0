"""The engine reads every fact about an op from the op table (sm_notebook.opdefs)."""
from __future__ import annotations

import sm_notebook.engine.ops  # noqa: F401
from sm_notebook import opdefs
from sm_notebook.engine.ops.registry import KERNELS


def test_every_kernel_has_an_op_definition():
    """A kernel without an OpDef would have its output arguments guessed."""
    missing = sorted(op for op in KERNELS if opdefs.get(op) is None)
    assert not missing, f"kernels without an op table entry: {missing}"


def test_internal_ops_are_engine_named_and_flagged():
    read = opdefs.require("_SmnbReadRef")
    assert read.is_stateful and "variable_read" in read.flags
    assert [a.name for a in read.outputs] == ["value"]


def test_list_outputs_are_sized_from_the_op_definition():
    """FunctionDef references like ``split:output:1`` resolve through the OpDef."""
    assert opdefs.require("Split").n_outputs({"num_split": 3}) == 3
    assert opdefs.require("OnesLike").outputs[0].name == "y"
    assert opdefs.require("Cast").outputs[0].name == "y"
    assert opdefs.require("IdentityN").output_index({"T": [1, 1, 1]}, "output", 2) == 2
