"""fingerprint.pb: recompute the fields TensorFlow derives from the files, to spot stale ones.

Matches tensorflow/cc/saved_model/fingerprinting.cc: saved_model_checksum is
Fingerprint64 of the deterministic SavedModel serialization, signature_def_hash
chains FingerprintCat64 over metagraph 0's signatures sorted by key,
saved_object_graph_hash chains (name without UID, concrete function) sorted by UID,
checkpoint_hash is Fingerprint64 of variables/variables.index (0 if absent).
graph_def_program_hash hashes metagraph 0's GraphDef after SimpleDelete regularization
(call ops' function names lose their UID suffix and config_proto, string Consts lose
their value, library and versions are cleared). Every hash is over C++'s deterministic
serialization, which canonical.cpp_deterministic_bytes reproduces.
"""
from __future__ import annotations

import re
from pathlib import Path

from .. import opdefs
from . import savedmodel as files
from .canonical import cpp_deterministic_bytes
from .farmhash import fingerprint64, fingerprint_cat64

FINGERPRINT_PRODUCER = 4  # what TF 2.21 writes (kFingerprintProducer)


def saved_model_checksum(saved_model) -> int:
    return fingerprint64(cpp_deterministic_bytes(saved_model))


def _suffix_uid(name: str):
    """GetSuffixUID: the integer after the last underscore, or None."""
    head, sep, tail = name.rpartition("_")
    return int(tail) if sep and tail.isdigit() else None


def graph_def_program_hash(graph_def) -> int:
    """ComputeHash(SimpleDelete(graph_def))."""
    graph = type(graph_def)()
    graph.CopyFrom(graph_def)
    calls = opdefs.ops_with("function_call")   # fingerprinting.cc: (Stateful)PartitionedCall
    for node in graph.node:
        if node.op in calls and "f" in node.attr:
            name = node.attr["f"].func.name
            uid = _suffix_uid(name)
            if uid is not None:
                node.attr["f"].func.name = name[: -len(str(uid))]
            if "config_proto" in node.attr:
                node.attr["config_proto"].s = b""
        if node.op == "Const" and node.attr["dtype"].type == 7:  # DT_STRING
            node.attr["value"].Clear()
    graph.library.Clear()
    graph.library.SetInParent()
    graph.versions.Clear()
    graph.versions.SetInParent()
    return fingerprint64(cpp_deterministic_bytes(graph))


def signature_def_hash(meta_graph) -> int:
    result = 0
    for key in sorted(meta_graph.signature_def):
        result = fingerprint_cat64(result, fingerprint64(key.encode()))
        data = cpp_deterministic_bytes(meta_graph.signature_def[key])
        result = fingerprint_cat64(result, fingerprint64(data))
    return result


def saved_object_graph_hash(object_graph) -> int | None:
    """None when a concrete function name carries no numeric UID suffix (TF refuses then)."""
    by_uid = {}
    for name in object_graph.concrete_functions:
        match = re.search(r"_(\d+)$", name)
        if not match:
            return None
        by_uid[int(match.group(1))] = name
    result = 0
    for uid in sorted(by_uid):
        name = by_uid[uid]
        result = fingerprint_cat64(result, fingerprint64(name[: -len(str(uid))].encode()))
        data = cpp_deterministic_bytes(object_graph.concrete_functions[name])
        result = fingerprint_cat64(result, fingerprint64(data))
    return result


def checkpoint_hash(export_dir) -> int:
    index = Path(export_dir) / (files.VARIABLES_PREFIX + ".index")
    return fingerprint64(index.read_bytes()) if index.is_file() else 0


def compute_fingerprint_fields(export_dir, saved_model=None) -> dict[str, int]:
    """The FingerprintDef hash fields for the files as they are now (pass ``saved_model``
    when it is already parsed)."""
    model = saved_model if saved_model is not None else files.read_saved_model(export_dir)
    fields = {"saved_model_checksum": saved_model_checksum(model),
              "checkpoint_hash": checkpoint_hash(export_dir)}
    if model.meta_graphs:
        first = model.meta_graphs[0]
        fields["graph_def_program_hash"] = graph_def_program_hash(first.graph_def)
        fields["signature_def_hash"] = signature_def_hash(first)
        object_hash = saved_object_graph_hash(first.object_graph_def)
        if object_hash is not None:
            fields["saved_object_graph_hash"] = object_hash
    return fields


def make_fingerprint(export_dir):
    """A FingerprintDef for the export as written, as TensorFlow's CreateFingerprintDef makes it.

    Returns None when TensorFlow could not make one either (a concrete function name
    without a UID suffix, or no metagraph).
    """
    import uuid

    from .._proto import saved_model_pb2

    fields = compute_fingerprint_fields(export_dir)
    if "saved_object_graph_hash" not in fields:  # also absent without a metagraph
        return None
    fingerprint = saved_model_pb2.FingerprintDef(**fields)
    fingerprint.uuid = str(uuid.uuid4().int)  # TF writes a random 128-bit integer in decimal
    fingerprint.version.producer = FINGERPRINT_PRODUCER
    return fingerprint


def stale_fingerprint_fields(export_dir, fingerprint, saved_model=None) -> list[str]:
    """Names of the fingerprint.pb fields that disagree with the files."""
    stale = []
    for name, value in compute_fingerprint_fields(export_dir, saved_model).items():
        if getattr(fingerprint, name) != value:
            stale.append(name)
    return stale
