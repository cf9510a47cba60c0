"""fingerprint.pb: recompute the fields TensorFlow derives from the files, to spot stale ones.

Matches tensorflow/cc/saved_model/fingerprinting.cc: saved_model_checksum is
Fingerprint64 of the deterministic SavedModel serialization, signature_def_hash
chains FingerprintCat64 over metagraph 0's signatures sorted by key,
saved_object_graph_hash chains (name without UID, concrete function) sorted by UID,
checkpoint_hash is Fingerprint64 of variables/variables.index (0 if absent).
graph_def_program_hash needs TensorFlow's graph regularization and is not recomputed.
saved_model_checksum hashes TensorFlow's C++ re-serialization of the parsed proto,
which differs from Python's deterministic serialization (checked on TF 2.21 exports:
ours equals the file bytes, TF's does not), so it is not used to judge staleness.
"""
from __future__ import annotations

import re
from pathlib import Path

from . import savedmodel as files
from .farmhash import fingerprint64, fingerprint_cat64


def saved_model_checksums(export_dir) -> set[int]:
    """Fingerprints that TensorFlow may have recorded for this saved_model.pb."""
    path = files.saved_model_path(export_dir)
    raw = path.read_bytes()
    result = {fingerprint64(raw)}
    model = files.read_saved_model(export_dir)
    result.add(fingerprint64(model.SerializeToString(deterministic=True)))
    return result


def signature_def_hash(meta_graph) -> int:
    result = 0
    for key in sorted(meta_graph.signature_def):
        result = fingerprint_cat64(result, fingerprint64(key.encode()))
        data = meta_graph.signature_def[key].SerializeToString(deterministic=True)
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
        data = object_graph.concrete_functions[name].SerializeToString(deterministic=True)
        result = fingerprint_cat64(result, fingerprint64(data))
    return result


def checkpoint_hash(export_dir) -> int:
    index = Path(export_dir) / (files.VARIABLES_PREFIX + ".index")
    return fingerprint64(index.read_bytes()) if index.is_file() else 0


def compute_fingerprint_fields(export_dir) -> dict[str, int]:
    """The recomputable FingerprintDef fields for the files as they are now."""
    model = files.read_saved_model(export_dir)
    fields = {"checkpoint_hash": checkpoint_hash(export_dir)}
    if model.meta_graphs:
        fields["signature_def_hash"] = signature_def_hash(model.meta_graphs[0])
        object_hash = saved_object_graph_hash(model.meta_graphs[0].object_graph_def)
        if object_hash is not None:
            fields["saved_object_graph_hash"] = object_hash
    return fields


def stale_fingerprint_fields(export_dir, fingerprint) -> list[str]:
    """Names of the fingerprint.pb fields that disagree with the files."""
    stale = []
    for name, value in compute_fingerprint_fields(export_dir).items():
        if getattr(fingerprint, name) != value:
            stale.append(name)
    return stale
