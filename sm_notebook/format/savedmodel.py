"""The export directory on disk: saved_model.pb/.pbtxt, fingerprint.pb, assets.

Only reading and parsing lives here; edits and writes belong to the builder.
"""
from __future__ import annotations

import os
from pathlib import Path

from google.protobuf import any_pb2, message as _message

from ..errors import CorruptFileError, SavedModelError
from .._proto import graph_pb2, meta_graph_pb2, saved_model_pb2
from .diskfiles import MAX_PROTO_BYTES, inside, present, read_regular

SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
FINGERPRINT_PB = "fingerprint.pb"
VARIABLES_DIR = "variables"
VARIABLES_PREFIX = os.path.join(VARIABLES_DIR, "variables")
ASSETS_DIR = "assets"
ASSETS_EXTRA_DIR = "assets.extra"

#: Largest saved_model.pbtxt read_saved_model parses: protobuf's Python text parser
#: runs at about 1 MB/s, so a 20 MB text export would take most of a minute.
MAX_PBTXT_BYTES = 8 << 20

TF_TYPE_URL_PREFIX = "type.googleapis.com/tensorflow."
OUR_TYPE_URL_PREFIX = "type.googleapis.com/smnb."

#: TensorFlow message names that may appear in google.protobuf.Any fields
#: (collection_def any_list, meta_info_def.any_info), mapped to our classes.
ANY_MESSAGE_TYPES = {
    "tensorflow.AssetFileDef": meta_graph_pb2.AssetFileDef,
    "tensorflow.SaverDef": meta_graph_pb2.SaverDef,
    "tensorflow.TensorInfo": meta_graph_pb2.TensorInfo,
    "tensorflow.SignatureDef": meta_graph_pb2.SignatureDef,
    "tensorflow.GraphDef": graph_pb2.GraphDef,
    "tensorflow.NodeDef": graph_pb2.NodeDef,
}


def saved_model_path(export_dir) -> Path:
    """The saved_model.pb (preferred, as TensorFlow does) or .pbtxt of an export."""
    export_dir = Path(export_dir)
    if not export_dir.exists():
        raise SavedModelError(
            f"No SavedModel at {str(export_dir)!r}: the directory does not exist. "
            "Pass the export directory that holds saved_model.pb.")
    if not export_dir.is_dir():
        raise SavedModelError(
            f"{str(export_dir)!r} is a file, not a SavedModel directory. "
            "Pass the directory that holds saved_model.pb.")
    for name in (SAVED_MODEL_PB, SAVED_MODEL_PBTXT):
        if present(export_dir / name, root=export_dir):
            return export_dir / name
    found = sorted(p.name for p in export_dir.iterdir())[:10]
    raise SavedModelError(
        f"No SavedModel in {str(export_dir)!r}: neither {SAVED_MODEL_PB} nor "
        f"{SAVED_MODEL_PBTXT} exists (found: {', '.join(found) or 'nothing'}). "
        "Pass the export directory that tf.saved_model.save or the SavedModelBuilder wrote.")


def parse_saved_model_bytes(data: bytes, path="saved_model.pb") -> saved_model_pb2.SavedModel:
    """Parse binary saved_model.pb bytes; a parse failure is a CorruptFileError."""
    model = saved_model_pb2.SavedModel()
    try:
        model.ParseFromString(data)
    except (_message.DecodeError, RecursionError, ValueError) as exc:
        raise CorruptFileError(path, f"not a valid SavedModel protobuf ({exc}). "
                               "The file is truncated or corrupt; re-export the model.") from None
    except MemoryError:
        raise CorruptFileError(path, f"parsing its {len(data):,} bytes ran out of memory.") from None
    return model


def parse_saved_model_text(text: str, path="saved_model.pbtxt") -> saved_model_pb2.SavedModel:
    """Parse saved_model.pbtxt; expanded Any fields naming tensorflow.* types are accepted."""
    from google.protobuf import text_format  # only for .pbtxt exports: kept off the load path

    model = saved_model_pb2.SavedModel()
    text = text.replace("[" + TF_TYPE_URL_PREFIX, "[" + OUR_TYPE_URL_PREFIX)
    try:
        text_format.Parse(text, model, allow_unknown_extension=False)
    except (text_format.ParseError, RecursionError, ValueError) as exc:
        raise CorruptFileError(path, f"text format syntax error: {exc}. "
                               "Fix the line named, or re-export the model.") from None
    except MemoryError:
        raise CorruptFileError(path, f"parsing its {len(text):,} characters ran out of "
                               "memory.") from None
    _restore_tf_type_urls(model)
    return model


PBTXT_ADVICE = (
    "Text SavedModels parse at about 1 MB/s in Python, so larger ones are refused; convert "
    "it to a binary saved_model.pb once: Path('saved_model.pb').write_bytes(sm_notebook."
    "format.savedmodel.parse_saved_model_text(Path('saved_model.pbtxt').read_text())"
    ".SerializeToString()), then remove the .pbtxt.")


def read_saved_model(export_dir) -> saved_model_pb2.SavedModel:
    """Read and parse the SavedModel proto of an export directory."""
    path = saved_model_path(export_dir)
    if path.name == SAVED_MODEL_PBTXT:
        data = read_regular(path, root=export_dir, max_bytes=MAX_PBTXT_BYTES, what=path.name,
                            advice=PBTXT_ADVICE)
    else:
        data = read_regular(path, root=export_dir, max_bytes=MAX_PROTO_BYTES, what=path.name)
    if path.name == SAVED_MODEL_PBTXT:
        try:
            return parse_saved_model_text(data.decode("utf-8"), path)
        except UnicodeDecodeError:
            raise CorruptFileError(path, "not UTF-8 text; a .pbtxt must be protobuf text format.") from None
    return parse_saved_model_bytes(data, path)


def looks_like_frozen_graph(export_dir) -> bool:
    """True when saved_model.pb holds a bare GraphDef (a frozen graph), not a SavedModel."""
    path = saved_model_path(export_dir)
    if path.name != SAVED_MODEL_PB:
        return False
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(read_regular(path, root=export_dir, max_bytes=MAX_PROTO_BYTES))
    except (_message.DecodeError, RecursionError, ValueError, MemoryError, SavedModelError):
        return False
    return len(graph.node) > 0 and all(n.op for n in graph.node)


def read_fingerprint(export_dir):
    """The FingerprintDef of fingerprint.pb, or None when the export has none."""
    path = Path(export_dir) / FINGERPRINT_PB
    if not present(path, root=export_dir):
        return None
    fingerprint = saved_model_pb2.FingerprintDef()
    try:
        fingerprint.ParseFromString(read_regular(path, root=export_dir, max_bytes=MAX_PROTO_BYTES))
    except (_message.DecodeError, RecursionError, ValueError) as exc:
        raise CorruptFileError(path, f"not a valid FingerprintDef ({exc}); delete it or re-export.") from None
    return fingerprint


def unpack_any(value: any_pb2.Any):
    """Decode a google.protobuf.Any written by TensorFlow into our message class.

    TensorFlow writes type URLs such as type.googleapis.com/tensorflow.AssetFileDef;
    our messages live in package smnb, so the type is looked up explicitly.
    """
    type_name = value.type_url.rsplit("/", 1)[-1]
    if type_name.startswith("smnb."):
        type_name = "tensorflow." + type_name[len("smnb."):]
    cls = ANY_MESSAGE_TYPES.get(type_name)
    if cls is None:
        raise SavedModelError(
            f"Cannot decode a google.protobuf.Any of type {value.type_url!r}; "
            f"known types: {', '.join(sorted(ANY_MESSAGE_TYPES))}.")
    result = cls()
    try:
        result.ParseFromString(value.value)
    except (_message.DecodeError, ValueError) as exc:
        raise SavedModelError(f"Corrupt {type_name} inside a google.protobuf.Any: {exc}.") from None
    return result


def pack_any(message) -> any_pb2.Any:
    """Wrap one of our messages in an Any with TensorFlow's type URL."""
    full_name = message.DESCRIPTOR.full_name
    if full_name.startswith("smnb."):
        full_name = "tensorflow." + full_name[len("smnb."):]
    return any_pb2.Any(type_url="type.googleapis.com/" + full_name,
                       value=message.SerializeToString(deterministic=True))


def _restore_tf_type_urls(model: saved_model_pb2.SavedModel) -> None:
    for meta_graph in model.meta_graphs:
        for collection in meta_graph.collection_def.values():
            if collection.HasField("any_list"):
                for value in collection.any_list.value:
                    value.type_url = value.type_url.replace(OUR_TYPE_URL_PREFIX, TF_TYPE_URL_PREFIX)
        info = meta_graph.meta_info_def
        if info.HasField("any_info"):
            info.any_info.type_url = info.any_info.type_url.replace(OUR_TYPE_URL_PREFIX, TF_TYPE_URL_PREFIX)


def list_asset_files(export_dir, subdir=ASSETS_DIR) -> list[str]:
    """Relative paths of the regular files under assets/ (or assets.extra/), sorted.

    Links are followed only while they stay inside the export; pipes, devices and
    links out of it are left out (reading them is refused elsewhere).
    """
    root = Path(export_dir) / subdir
    try:
        if not root.is_dir():
            return []
        inside(root, export_dir)
    except SavedModelError:
        return []
    found = []
    for directory, subdirs, names in os.walk(root, followlinks=False):
        for name in names + [d for d in subdirs if os.path.islink(os.path.join(directory, d))]:
            path = os.path.join(directory, name)
            try:
                if present(path, root=export_dir):
                    found.append(os.path.relpath(path, root))
            except SavedModelError:
                continue
    return sorted(found)


def resolve_inside(export_dir, relative: str) -> Path:
    """Join a model-supplied relative path to the export dir, refusing escapes (also
    through symbolic links) and names no file can have (NUL bytes, too long)."""
    return inside(Path(export_dir) / relative, export_dir)
