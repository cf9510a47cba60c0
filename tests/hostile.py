"""Running sm_notebook on hostile exports: forked children with a memory limit and a
timeout, seeded mutations of an export's files, and the five stages a user runs.

Shared by tests/unit/test_fuzz.py (a bounded suite) and benchmarks/fuzz.py (long runs).
The only acceptable outcomes of a stage are success and SavedModelError.
"""
from __future__ import annotations

import os
import pickle
import random
import resource
import select
import shutil
import signal
import struct
import time
import traceback
import warnings
from pathlib import Path

from sm_notebook.format.sstable import encode_varint

MODELS = Path(__file__).parent / "fixtures" / "models"

#: Memory a child may map beyond what it had when forked (RLIMIT_AS headroom).
DEFAULT_HEADROOM = 1 << 30
#: The engine's per-allocation cap in the fuzzed loads, well under the headroom.
FUZZ_MEMORY_CAP = 1 << 28


# --- forked, limited execution ---------------------------------------------

def _address_space() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def run_forked(function, *args, timeout: float = 20.0, headroom: int | None = DEFAULT_HEADROOM):
    """Run ``function(*args)`` in a forked child limited to ``headroom`` bytes of address
    space beyond its start and ``timeout`` seconds.

    Returns ("ok", result), ("error", (exception type name, message, traceback text,
    is a SavedModelError)), ("hang", None) or ("killed", signal number).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        code = 0
        try:
            if headroom is not None:
                limit = _address_space() + headroom
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                outcome = ("ok", function(*args))
            except BaseException as exc:  # noqa: BLE001 - every escape is the finding
                from sm_notebook import SavedModelError
                outcome = ("error", (type(exc).__name__, str(exc)[:500],
                                     traceback.format_exc()[-3000:],
                                     isinstance(exc, SavedModelError)))
            data = pickle.dumps(outcome)
            os.write(write_fd, struct.pack("<Q", len(data)))
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view):]
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    chunks = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return ("hang", None)
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if ready:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if len(data) >= 8 and len(data) - 8 == struct.unpack("<Q", data[:8])[0]:
        return pickle.loads(data[8:])
    if os.WIFSIGNALED(status):
        return ("killed", os.WTERMSIG(status))
    return ("killed", -1)


# --- the five stages ---------------------------------------------------------

def zeros_for(spec):
    """A valid input for a signature input spec: zeros (b'a' for strings), unknown dims 1."""
    import numpy as np
    shape = tuple(1 if d is None else d for d in (spec.shape or ()))
    if spec.dtype == np.dtype(object):
        return np.full(shape, b"a", dtype=object)
    return np.zeros(shape, dtype=spec.dtype)


def run_stages(export_dir, output_dir, tags=None) -> list[tuple[str, str]]:
    """inspect, diagnose, load, the first signature's first call and
    Builder.from_saved_model(...).save(...): each stage's outcome ('ok' or
    'SavedModelError'); any other exception propagates (that is a finding)."""
    import sm_notebook
    from sm_notebook import SavedModelError

    outcomes = []

    def stage(name, action):
        try:
            result = action()
        except SavedModelError:
            outcomes.append((name, "SavedModelError"))
            return None
        except BaseException as exc:
            exc.add_note(f"stage: {name}")
            raise
        outcomes.append((name, "ok"))
        return result

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = stage("inspect", lambda: sm_notebook.inspect(export_dir))
        if info is not None:
            stage("diagnose", lambda: str(info.diagnose()))
        model = stage("load", lambda: sm_notebook.load(export_dir, tags=tags,
                                                       memory_cap=FUZZ_MEMORY_CAP))
        if model is not None and len(model.signatures):
            function = model.signatures[next(iter(model.signatures))]
            stage("call", lambda: function(**{k: zeros_for(s) for k, s in function.inputs.items()}))
        stage("save", lambda: sm_notebook.Builder.from_saved_model(export_dir).save(output_dir))
    return outcomes


# --- mutations ---------------------------------------------------------------

#: Files of an export that are mutated, as (relative path, is a protobuf message class name).
TARGETS = {
    "saved_model.pb": "SavedModel",
    "fingerprint.pb": "FingerprintDef",
    "variables/variables.index": None,
    "variables/variables.data-00000-of-00001": None,
}

_INTERESTING_INTS = [0, 1, -1, 2, 7, 63, 64, 65, 100, 254, 255, 256, 1 << 16, (1 << 31) - 1,
                     1 << 31, (1 << 32) - 1, 1 << 32, 1 << 40, (1 << 62), (1 << 63) - 1, -(1 << 63)]
_INTERESTING_STRINGS = ["", "\x00", "a\x00b", "../../../../etc/passwd", "/etc/passwd", "x" * 5000,
                        "\udcff", "serve", "variables", "assets/../..", "ø" * 100]


def _encode_varint(value: int) -> bytes:
    """A varint of ``value`` taken as an unsigned 64-bit integer (negatives wrap, as
    protobuf encodes int64 fields)."""
    return encode_varint(value & ((1 << 64) - 1))


def _byte_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    blob = bytearray(data)
    kind = rng.choice(["flip", "truncate", "insert", "varint", "zero_run", "duplicate"])
    if not blob:
        return bytes(rng.randbytes(rng.randint(1, 64))), "insert"
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(blob))
            blob[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        blob = blob[:rng.randrange(len(blob))]
    elif kind == "insert":
        i = rng.randrange(len(blob) + 1)
        blob[i:i] = rng.randbytes(rng.randint(1, 16))
    elif kind == "varint":
        i = rng.randrange(len(blob))
        end = i
        while end < len(blob) and blob[end] & 0x80 and end - i < 9:
            end += 1
        blob[i:end + 1] = _encode_varint(rng.choice(_INTERESTING_INTS))
    elif kind == "zero_run":
        i = rng.randrange(len(blob))
        n = rng.randint(1, 64)
        blob[i:i + n] = bytes(len(blob[i:i + n]))
    else:
        i = rng.randrange(len(blob))
        n = rng.randint(1, 256)
        blob[i:i] = blob[i:i + n]
    return bytes(blob), kind


def _fields(message, depth=0, out=None, limit=20000):
    """(message, field descriptor) of every set field, depth first (capped)."""
    out = [] if out is None else out
    if depth > 40 or len(out) > limit:
        return out
    for field, value in message.ListFields():
        out.append((message, field))
        if field.message_type is not None:
            if field.is_repeated:
                items = value.values() if field.message_type.GetOptions().map_entry and hasattr(
                    value, "values") else value
                for item in list(items)[:200]:
                    if hasattr(item, "ListFields"):
                        _fields(item, depth + 1, out, limit)
            else:
                _fields(value, depth + 1, out, limit)
    return out


def _field_value(rng: random.Random, field):
    types = field.__class__
    if field.type == field.TYPE_BOOL:
        return rng.random() < 0.5
    if field.type in (field.TYPE_FLOAT, field.TYPE_DOUBLE):
        return rng.choice([0.0, -1.0, float("inf"), float("nan"), 1e300, 1e-300])
    if field.type == field.TYPE_STRING:
        return rng.choice(_INTERESTING_STRINGS).encode("utf-8", "surrogatepass").decode(
            "utf-8", "replace")
    if field.type == field.TYPE_BYTES:
        return rng.choice([b"", b"\xff\xfe", b"\x00" * 9, rng.randbytes(rng.randint(1, 40)),
                           b"x" * 100000])
    if field.type == field.TYPE_ENUM:
        return rng.choice([v.number for v in field.enum_type.values] + [0, 99, 1000, -5])
    del types
    value = rng.choice(_INTERESTING_INTS)
    if field.type in (field.TYPE_UINT32, field.TYPE_FIXED32):
        return value & 0xFFFFFFFF
    if field.type in (field.TYPE_UINT64, field.TYPE_FIXED64):
        return value & ((1 << 64) - 1)
    if field.type in (field.TYPE_INT32, field.TYPE_SINT32, field.TYPE_SFIXED32):
        return max(-(1 << 31), min((1 << 31) - 1, value))
    return max(-(1 << 63), min((1 << 63) - 1, value))


#: Messages whose fields drive decoding and execution: edits there are picked more often.
_HOT_MESSAGES = {"NodeDef", "AttrValue", "ListValue", "TensorProto", "TensorShapeProto", "Dim",
                 "TensorInfo", "SignatureDef", "AssetFileDef", "SavedObject", "SavedVariable",
                 "SavedConcreteFunction", "StructuredValue", "BundleEntryProto",
                 "BundleHeaderProto", "TensorSliceProto", "Extent", "FunctionDef", "OpDef",
                 "ArgDef", "SaverDef", "CollectionDef", "NodeList", "BytesList"}


def _proto_mutation(rng: random.Random, data: bytes, class_name: str) -> tuple[bytes, str] | None:
    from sm_notebook._proto import saved_model_pb2
    message = getattr(saved_model_pb2, class_name)()
    try:
        message.ParseFromString(data)
    except Exception:  # noqa: BLE001 - an already mutated file
        return None
    fields = _fields(message)
    if not fields:
        return None
    hot = [(parent, field) for parent, field in fields
           if parent.DESCRIPTOR.name in _HOT_MESSAGES]
    for _ in range(rng.randint(1, 3)):
        parent, field = rng.choice(hot if hot and rng.random() < 0.7 else fields)
        try:
            if field.is_repeated:
                items = getattr(parent, field.name)
                if field.message_type is not None and field.message_type.GetOptions().map_entry:
                    if len(items) and rng.random() < 0.5:
                        del items[rng.choice(list(items))]
                    continue
                if not len(items):
                    continue
                action = rng.choice(["delete", "duplicate", "set"])
                i = rng.randrange(len(items))
                if action == "delete":
                    del items[i]
                elif action == "duplicate" and field.message_type is not None:
                    items.add().CopyFrom(items[i])
                elif action == "duplicate":
                    items.append(items[i])
                elif field.message_type is None:
                    items[i] = _field_value(rng, field)
            elif field.message_type is not None:
                if rng.random() < 0.5:
                    parent.ClearField(field.name)
            else:
                setattr(parent, field.name, _field_value(rng, field))
        except (TypeError, ValueError):
            continue
    return message.SerializeToString(), "field"


def _mutate_index_entries(rng: random.Random, data: bytes) -> tuple[bytes, str] | None:
    """Field edits of the BundleHeaderProto / BundleEntryProtos inside variables.index,
    with the table rebuilt so its block checksums hold (byte edits mostly meet a CRC)."""
    from sm_notebook.format import sstable
    try:
        rows = sstable.read_table(data, "index")
    except Exception:  # noqa: BLE001
        return None
    if not rows:
        return None
    i = rng.randrange(len(rows))
    key, value = rows[i]
    if rng.random() < 0.15 and i > 0:
        new_key = bytearray(key) or bytearray(b"k")
        new_key[rng.randrange(len(new_key))] = rng.randrange(256)
        if bytes(new_key) not in {k for k, _ in rows}:
            rows[i] = (bytes(new_key), value)
            rows.sort()
        kind = "index-key"
    else:
        mutated = _proto_mutation(rng, value, "BundleHeaderProto" if i == 0 else "BundleEntryProto")
        if mutated is None:
            return None
        rows[i] = (key, mutated[0])
        kind = "index-entry"
    return sstable.build_table(rows), kind


def _mutate_shard_fixing_crcs(rng: random.Random, export: Path) -> str:
    """Byte edits of the data shard, then every entry's CRC32C recomputed in the index, so
    that the decoders (string lengths, variants, object graph) see the mutated bytes."""
    import google_crc32c

    from sm_notebook._proto import saved_model_pb2
    from sm_notebook.format import sstable
    shard = export / "variables/variables.data-00000-of-00001"
    index = export / "variables/variables.index"
    blob = bytearray(shard.read_bytes())
    for _ in range(rng.randint(1, 4)):
        if blob:
            i = rng.randrange(len(blob))
            if rng.random() < 0.5:
                blob[i] ^= 1 << rng.randrange(8)
            else:
                end = i
                while end < len(blob) and blob[end] & 0x80 and end - i < 9:
                    end += 1
                new = _encode_varint(rng.choice(_INTERESTING_INTS))[:end + 1 - i]
                blob[i:i + len(new)] = new
    shard.write_bytes(bytes(blob))
    rows = sstable.read_table(index.read_bytes(), "index")
    for n, (key, value) in enumerate(rows[1:], 1):
        entry = saved_model_pb2.BundleEntryProto.FromString(value)
        region = bytes(blob[entry.offset:entry.offset + entry.size])
        entry.crc32c = sstable.mask_crc(google_crc32c.value(region))
        rows[n] = (key, entry.SerializeToString())
    index.write_bytes(sstable.build_table(rows))
    return "shard-crc-fixed"


def mutate_export(rng: random.Random, source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` and mutate one of its files; returns a description."""
    shutil.copytree(source, target, symlinks=True)
    present = [name for name in TARGETS if (target / name).is_file()]
    name = rng.choice(present)
    path = target / name
    data = path.read_bytes()
    class_name = TARGETS[name]
    mutated = None
    if name.endswith(".index") and rng.random() < 0.7:
        mutated = _mutate_index_entries(rng, data)
    elif name.startswith("variables/variables.data") and rng.random() < 0.7:
        return f"{name}:{_mutate_shard_fixing_crcs(rng, target)}"
    elif class_name and rng.random() < 0.6:
        mutated = _proto_mutation(rng, data, class_name)
    if mutated is None:
        mutated = _byte_mutation(rng, data)
    blob, kind = mutated
    path.write_bytes(blob)
    return f"{name}:{kind}"


def fuzz_case(source: str, seed: int, work: str, tags=None):
    """One case in the current process: mutate a copy of fixture ``source`` with ``seed``
    under ``work`` and run every stage; returns (mutation, stage outcomes)."""
    rng = random.Random(seed)
    target = Path(work) / f"case{seed}"
    description = mutate_export(rng, MODELS / source, target)
    try:
        return description, run_stages(target, Path(work) / f"case{seed}_saved", tags)
    except BaseException as exc:
        exc.add_note(f"mutation: {source} seed {seed} {description}")
        raise
    finally:
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(Path(work) / f"case{seed}_saved", ignore_errors=True)


#: Fixture models the fuzzers mutate, with the tags their load stage asks for.
FUZZ_SOURCES = {"tf1_multi_tags": ["serve"], "tf2_module": ["serve"]}
