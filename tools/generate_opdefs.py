"""Write sm_notebook/opdefs/tf_ops.pb: every op in TensorFlow's registry, as an OpList.

The only place TensorFlow runs for the op table. Documentation strings and full-type
annotations are dropped (the package never reads them); ops are sorted by name and
the proto serialized deterministically, so the same TensorFlow gives the same bytes.
The sidecar tf_ops.json holds the TensorFlow version and the op names in file order,
so the package can index ops without walking the parsed list.

    python tools/generate_opdefs.py            # rewrite the committed files
    python tools/generate_opdefs.py --out DIR  # write them into DIR instead
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "sm_notebook" / "opdefs"
DATA_FILE = "tf_ops.pb"
VERSION_FILE = "tf_ops.json"


def registered_op_list():
    """TensorFlow's whole op registry (TF_GetAllOpList) and TensorFlow's version."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow.python.client import pywrap_tf_session

    buffer = pywrap_tf_session.TF_GetAllOpList()
    try:
        data = pywrap_tf_session.TF_GetBuffer(buffer)
    finally:
        pywrap_tf_session.TF_DeleteBuffer(buffer)
    return bytes(data), tf.__version__


def strip_op_list(data: bytes) -> bytes:
    """Parse TensorFlow's OpList into our proto, drop docs, sort by name, serialize."""
    sys.path.insert(0, str(ROOT))
    from sm_notebook._proto import graph_pb2

    source = graph_pb2.OpList()
    source.ParseFromString(data)
    source.DiscardUnknownFields()
    result = graph_pb2.OpList()
    for op_def in sorted(source.op, key=lambda o: o.name):
        op_def.ClearField("summary")
        op_def.ClearField("description")
        for arg in list(op_def.input_arg) + list(op_def.output_arg):
            arg.ClearField("description")
            arg.ClearField("experimental_full_type")
        for attr in op_def.attr:
            attr.ClearField("description")
        result.op.add().CopyFrom(op_def)
    return result.SerializeToString(deterministic=True)


def generate(out_dir: Path) -> tuple[Path, Path]:
    """Write the data file and its version sidecar into ``out_dir``; returns both paths."""
    raw, version = registered_op_list()
    data = strip_op_list(raw)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_path, version_path = out_dir / DATA_FILE, out_dir / VERSION_FILE
    data_path.write_bytes(data)
    from sm_notebook._proto import graph_pb2
    names = [op_def.name for op_def in graph_pb2.OpList.FromString(data).op]
    version_path.write_text(json.dumps({"tensorflow": version, "ops": names}, indent=0) + "\n")
    return data_path, version_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder to write tf_ops.pb and tf_ops.json into")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
