"""The committed *_pb2 modules are what protoc generates from protos/ today."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "protos" / "sm_notebook" / "_proto"
GENERATED_DIR = ROOT / "sm_notebook" / "_proto"


def test_generated_modules_are_not_stale(tmp_path):
    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools (test extra) regenerates the modules")
    # protoc runs in its own process: in-process it can crash beside TensorFlow's protobuf runtime
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in PROTO_DIR.glob("*.proto"))
    assert protos, "no .proto files found"
    out = tmp_path / "out"
    out.mkdir()
    include = str(Path(protoc.__file__).parent / "_proto")
    result = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path / 'protos'}",
                             f"-I{include}", f"--python_out={out}", f"--pyi_out={out}", *protos],
                            cwd=tmp_path / "protos", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    fresh = sorted((out / "sm_notebook" / "_proto").glob("*_pb2.py*"))
    assert [p.name for p in fresh] == sorted(p.name for p in GENERATED_DIR.glob("*_pb2.py*"))
    for path in fresh:
        committed = (GENERATED_DIR / path.name).read_text()
        assert path.read_text() == committed, (
            f"{path.name} is stale; regenerate with: python -m grpc_tools.protoc -Iprotos "
            "--python_out=. --pyi_out=. protos/sm_notebook/_proto/*.proto")


def test_every_proto_has_a_generated_module():
    for proto in PROTO_DIR.glob("*.proto"):
        assert (GENERATED_DIR / (proto.stem + "_pb2.py")).is_file(), proto.name
