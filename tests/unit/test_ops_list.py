"""The public op list: documented, current, and large enough for real exports."""
from pathlib import Path

import sm_notebook
from sm_notebook import ops

DOC = Path(__file__).resolve().parents[2] / "docs" / "SUPPORTED_OPS.md"


def test_documented_list_is_current():
    assert DOC.read_text() == ops.supported_ops_markdown(), (
        "docs/SUPPORTED_OPS.md is stale: python -m sm_notebook.ops > docs/SUPPORTED_OPS.md")


def test_at_least_180_ops_and_the_ones_keras_exports_use():
    supported = set(ops.supported_ops())
    assert len(supported) >= 180
    for op in ("MatMul", "BatchMatMulV2", "Einsum", "Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput",
               "FusedBatchNormV3", "StridedSlice", "GatherV2", "StatefulPartitionedCall", "While", "If",
               "TensorListSetItem", "HashTableV2", "ParseExampleV2", "Cast", "Bitcast", "TopKV2", "Erf"):
        assert op in supported and ops.is_supported(op), op


def test_io_ops_are_denied_not_supported():
    for op in ("ReadFile", "WriteFile", "PyFunc", "SaveV2", "MergeV2Checkpoints"):
        assert op in ops.denied_ops() and not ops.is_supported(op)


def test_ops_is_reachable_from_the_package():
    assert sm_notebook.ops.supported_ops() == ops.supported_ops()
