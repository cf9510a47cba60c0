"""The save/restore subgraph and SaverDef that tf.compat.v1.train.Saver writes.

Mirrors ``Saver(sharded=True, write_version=V2)`` as the SavedModelBuilder creates it
(tensorflow/python/training/saver.py, BulkSaverBuilder): a filename
PlaceholderWithDefault, ShardedFilename + SaveV2 + MergeV2Checkpoints for saving,
and RestoreV2 + one AssignVariableOp per variable under ``restore_all``. Loaders run
``restore_op_name`` with the checkpoint prefix fed to ``filename_tensor_name``.
Variables and their VariableDefs go to the ``variables`` and
``trainable_variables`` collections, which TF1 and TF2's v1 loader rebuild them from.
"""
from __future__ import annotations

import numpy as np

from .._proto import meta_graph_pb2, saved_object_graph_pb2
from .graph import Graph, VariableRecord

DT_STRING = "string"


def add_saver(graph: Graph, variables: list[VariableRecord]) -> meta_graph_pb2.SaverDef:
    """Add the save/restore nodes for ``variables`` (checkpoint key = variable name)."""
    scope = graph.unique_name("save")
    records = sorted(variables, key=lambda v: v.name)
    names = np.array([v.name.encode() for v in records], dtype=object)
    slices = np.array([b""] * len(records), dtype=object)

    default = graph.constant(b"model", name=f"{scope}/filename/input")
    filename = graph.op("PlaceholderWithDefault", default, name=f"{scope}/filename", shape=())
    prefix = graph.op("PlaceholderWithDefault", filename, name=f"{scope}/Const", shape=())
    is_s3 = graph.op("StaticRegexFullMatch", prefix, name=f"{scope}/StaticRegexFullMatch",
                     pattern="^s3://.*")
    part = graph.constant(b".part", name=f"{scope}/Const_1")
    temp_part = graph.constant(b"_temp/part", name=f"{scope}/Const_2")
    suffix = graph.op("Select", is_s3, part, temp_part, name=f"{scope}/Select")
    temp_prefix = graph.op("StringJoin", [prefix, suffix], name=f"{scope}/StringJoin")
    num_shards = graph.constant(np.int32(1), name=f"{scope}/num_shards")
    shard = graph.constant(np.int32(0), name=f"{scope}/ShardedFilename/shard")
    shard_file = graph.op("ShardedFilename", temp_prefix, shard, num_shards,
                          name=f"{scope}/ShardedFilename")
    save_names = graph.constant(names, name=f"{scope}/SaveV2/tensor_names")
    save_slices = graph.constant(slices, name=f"{scope}/SaveV2/shape_and_slices")
    save = graph.op("SaveV2", shard_file, save_names, save_slices,
                    [graph.tensor(v.snapshot) for v in records], name=f"{scope}/SaveV2")
    saved = graph.op("Identity", shard_file, name=f"{scope}/control_dependency",
                     control_inputs=[save])
    prefixes = graph.op("Pack", [shard_file], name=f"{scope}/MergeV2Checkpoints/checkpoint_prefixes",
                        control_inputs=[saved])
    merge = graph.op("MergeV2Checkpoints", prefixes, prefix, name=f"{scope}/MergeV2Checkpoints")
    save_result = graph.op("Identity", prefix, name=f"{scope}/Identity",
                           control_inputs=[merge, saved])

    restore_names = graph.constant(names, name=f"{scope}/RestoreV2/tensor_names")
    restore_slices = graph.constant(slices, name=f"{scope}/RestoreV2/shape_and_slices")
    restored = graph.op("RestoreV2", prefix, restore_names, restore_slices,
                        name=f"{scope}/RestoreV2", dtypes=[v.dtype for v in records])
    if len(records) == 1:
        restored = (restored,)
    assigns = []
    for i, (record, value) in enumerate(zip(records, restored)):
        suffix_i = "" if i == 0 else f"_{i}"
        copied = graph.op("Identity", value, name=f"{scope}/Identity_{i + 1}")
        assigns.append(graph.op("AssignVariableOp", f"{record.name}:0", copied,
                                name=f"{scope}/AssignVariableOp{suffix_i}", dtype=record.dtype))
    shard_restore = graph.op("NoOp", name=f"{scope}/restore_shard", control_inputs=assigns)
    restore_all = graph.op("NoOp", name=f"{scope}/restore_all", control_inputs=[shard_restore])

    return meta_graph_pb2.SaverDef(
        filename_tensor_name=prefix.name, save_tensor_name=save_result.name,
        restore_op_name=restore_all.name, max_to_keep=5, sharded=True,
        keep_checkpoint_every_n_hours=10000.0,
        version=meta_graph_pb2.SaverDef.V2)


def variable_defs(variables: list[VariableRecord]) -> tuple[list[bytes], list[bytes]]:
    """Serialized VariableDefs for the ``variables`` and ``trainable_variables`` collections."""
    all_defs, trainable = [], []
    for record in variables:
        proto = saved_object_graph_pb2.VariableDef(
            variable_name=f"{record.name}:0", initial_value_name=record.initial_value,
            initializer_name=record.initializer, snapshot_name=record.snapshot,
            is_resource=True, trainable=record.trainable)
        data = proto.SerializeToString()
        all_defs.append(data)
        if record.trainable:
            trainable.append(data)
    return all_defs, trainable
