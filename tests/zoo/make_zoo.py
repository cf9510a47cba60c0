"""Generate the model zoo: SavedModels made by real libraries, TensorFlow's answers, float64 references.

Usage:
    python tests/zoo/make_zoo.py                 # every missing entry (the cache is reused)
    python tests/zoo/make_zoo.py --list          # the registry: name, family, producer, note
    python tests/zoo/make_zoo.py --only NAME...  # just these (regenerated even if present)
    python tests/zoo/make_zoo.py --jobs 2        # worker processes (each imports TF once)

Where it writes and what: tests/zoo/zoo_cache.py. Nothing is downloaded: weights are
random (fixed seeds), keras-hub models come from constructor configs, vocabularies and
tokenizer models are made here.

Each entry is declared in zoo_keras.py, zoo_hub_text.py or zoo_tf.py with a builder ``build(dtype)`` that
returns a `Made` (something that can export itself). The generator builds it for
float32, exports and reloads the export with TensorFlow, and runs every signature at
each batch size. The float64 reference is the same builder under float64 (Keras: floatx
and dtype policy float64; tf.function: float64 input specs; TF1: float64 graph) with
the float32 model's variables copied in, exported and run by TensorFlow on the same
inputs cast to float64. An entry that cannot be built in float64 says why in its note
and entry.json, and the test falls back to a stated bound.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_cache  # noqa: E402

SEED = 1234
DEFAULT_BATCH_SIZES = (1, 3)
#: Float inputs are multiples of 2**-10: exact in float16/32/64, so the float64 run
#: sees the very same numbers (as tests/fixtures/make_batch_sweep.py does).
INPUT_QUANTUM = 2.0 ** -10
WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "zebra", "", "The"]
INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclass(frozen=True)
class Entry:
    """One zoo model. ``build(dtype)`` -> Made; ``feeds(signature, key, shape, dtype, rng,
    batch)`` -> array, or None for the default input (see default_feed)."""
    name: str
    family: str
    producer: str
    note: str
    build: Callable
    feeds: Callable | None = None
    batch_sizes: tuple = DEFAULT_BATCH_SIZES
    exact: tuple = ()            # "signature|output" (or "signature|*") compared bit for bit
    ref64: bool = True           # build a float64 variant for the reference
    no_ref64_because: str = ""   # why not, when ref64 is False and floats are involved
    tensorflow_runs: bool = True  # False: TensorFlow cannot run it here (extension op missing)


REGISTRY: dict[str, Entry] = {}


def register(*entries: Entry) -> None:
    for entry in entries:
        if entry.name in REGISTRY:
            raise ValueError(f"duplicate zoo entry {entry.name}")
        REGISTRY[entry.name] = entry


def load_registry() -> dict:
    if not REGISTRY:
        import zoo_hub_text
        import zoo_hub_vision
        import zoo_keras
        import zoo_tf
        register(*zoo_keras.ENTRIES, *zoo_hub_text.ENTRIES, *zoo_hub_vision.ENTRIES, *zoo_tf.ENTRIES)
    return REGISTRY


# ---------------------------------------------------------------------------
# What a builder returns
# ---------------------------------------------------------------------------

def copy_variables(destination, source) -> None:
    """Assign each source variable's value (cast) to the destination variable in the same place."""
    destination, source = list(destination), list(source)
    if len(destination) != len(source):
        raise ValueError(f"float64 variant has {len(destination)} variables, float32 {len(source)}")
    for dst, src in zip(destination, source):
        value = np.asarray(src.numpy() if hasattr(src, "numpy") else src)
        dst.assign(value.astype(np.dtype(getattr(dst.dtype, "as_numpy_dtype", dst.dtype))))


@dataclass
class Made:
    """A built model that can export itself; ``variables`` in a build-stable order."""
    export: Callable[[str], None]
    variables: Callable[[], list] = list
    tf1: bool = False
    keep: list = field(default_factory=list)  # objects the export needs alive
    #: feeds -> outputs by signature output key, computed in-process (the float64 variant
    #: then skips its own export and reload); None: export and run it like the float32 one
    call: Callable | None = None

    def copy_weights_from(self, other: "Made") -> None:
        copy_variables(self.variables(), other.variables())


def keras_made(model, endpoints=None) -> Made:
    """A Keras 3 model; exported by model.export, or by an ExportArchive with ``endpoints``
    (name -> (function, input specs)) when the serving function is not model.call."""
    def export(path):
        if endpoints is None:
            model.export(path, format="tf_saved_model", verbose=False)
            return
        import keras
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, (function, specs) in endpoints.items():
            archive.add_endpoint(name, function, input_signature=specs)
        archive.write_out(path, verbose=False)
    return Made(export, lambda: model.variables, keep=[model],
                call=None if endpoints is not None else lambda feeds: call_keras(model, feeds))


def call_keras(model, feeds) -> dict:
    """model(inputs) eagerly, its outputs named as model.export names them (a dict's keys,
    else output_0, output_1, ...); one feed is passed bare, several as a dict."""
    values = list(feeds.values())
    result = model(values[0] if len(values) == 1 else dict(feeds), training=False)
    if isinstance(result, dict):
        return {k: as_numpy(v) for k, v in result.items()}
    if not isinstance(result, (list, tuple)):
        result = [result]
    return {f"output_{i}": as_numpy(v) for i, v in enumerate(result)}


def module_made(owner, signatures, track_owner=False) -> Made:
    """tf.functions (with input_signatures; ``signatures``: name -> function) exported by
    tf.saved_model.save from a bare tf.Module holding ``owner``'s variables, or ``owner``
    itself when ``track_owner`` (needed for lookup tables; a tf_keras model then costs
    a trace of every layer's call for its own metadata)."""
    import tensorflow as tf

    def export(path):
        holder = tf.Module()
        holder.weights = list(owner.variables)
        if track_owner:
            holder.owner = owner
        holder.functions = dict(signatures)
        tf.saved_model.save(holder, path, signatures={
            name: fn.get_concrete_function() for name, fn in signatures.items()})
    return Made(export, lambda: owner.variables, keep=[owner])


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def default_feed(shape, dtype, rng):
    """Standard normal floats on a 2**-10 grid, small non-negative ints, words, coin flips."""
    if dtype == object:
        return np.array([WORDS[i].encode() for i in rng.integers(len(WORDS), size=shape).ravel()],
                        dtype=object).reshape(shape)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.floating):
        return (np.round(rng.standard_normal(shape) / INPUT_QUANTUM) * INPUT_QUANTUM).astype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        return (default_feed(shape, np.float32, rng) + 1j * default_feed(shape, np.float32, rng)).astype(dtype)
    return rng.integers(0, 10, size=shape).astype(dtype)


def signature_inputs(signature_def):
    """[(key, shape with None for unknown dims, numpy dtype)] of a SignatureDef, sorted."""
    import tensorflow as tf
    found = []
    for key, info in sorted(signature_def.inputs.items()):
        shape = [None if d.size < 0 else d.size for d in info.tensor_shape.dim]
        found.append((key, shape, tf.dtypes.as_dtype(info.dtype).as_numpy_dtype))
    return found


def make_feeds(entry: Entry, signature, signature_def, batch):
    rng = np.random.default_rng(zlib.crc32(f"{entry.name}|{signature}|b{batch}".encode()))
    feeds = {}
    for key, shape, dtype in signature_inputs(signature_def):
        value = entry.feeds(signature, key, shape, dtype, rng, batch) if entry.feeds else None
        if value is None:
            concrete = [batch if d is None and i == 0 else 4 if d is None else d
                        for i, d in enumerate(shape)]
            value = default_feed(concrete, np.dtype(dtype), rng)
        feeds[key] = np.asarray(value, dtype=object if dtype == object else dtype)
    return feeds


def as_float64(feeds, dtypes=None):
    """Float and complex feeds in double precision, or in ``dtypes`` (key -> numpy dtype:
    what the float64 variant's signature takes; some ops keep float32 inputs)."""
    wide = {"f": np.float64, "c": np.complex128}
    return {k: v.astype((dtypes or {}).get(k, wide[v.dtype.kind])) if v.dtype.kind in wide else v
            for k, v in feeds.items()}


# ---------------------------------------------------------------------------
# Running an export with TensorFlow
# ---------------------------------------------------------------------------

def as_numpy(value):
    """numpy array; strings become object arrays of bytes."""
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if array.dtype.kind in ("S", "U", "O"):
        array = np.array([v.encode() if isinstance(v, str) else bytes(v) for v in array.ravel()],
                         dtype=object).reshape(array.shape)
    return array


def flat_outputs(outputs) -> dict:
    """Output key -> array; a composite (ragged) output becomes "<key>#i" components."""
    import tensorflow as tf
    flat = {}
    for key, value in outputs.items():
        if isinstance(value, tf.Tensor) or not hasattr(value, "_type_spec"):
            flat[key] = as_numpy(value)
        else:
            for i, part in enumerate(tf.nest.flatten(value, expand_composites=True)):
                flat[f"{key}#{i}"] = as_numpy(part)
    return flat


class TensorFlowRunner:
    """An export loaded by TensorFlow (TF2 object API, or a TF1 session)."""

    def __init__(self, path, tf1):
        import tensorflow as tf
        from tensorflow.python.saved_model import loader_impl
        self.tf = tf
        self.meta_graph = loader_impl.parse_saved_model(path).meta_graphs[0]
        self.signatures = {k: v for k, v in self.meta_graph.signature_def.items()
                           if k != INIT_OP_SIGNATURE}
        if "serving_default" in self.signatures:  # Keras 3 exports "serve" as its copy
            self.signatures.pop("serve", None)
        if tf1:
            self.graph = tf.Graph()
            self.session = tf.compat.v1.Session(graph=self.graph)
            with self.graph.as_default():
                tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        else:
            self.session = None
            self.loaded = tf.saved_model.load(path)

    def run(self, signature, feeds) -> dict:
        if self.session is not None:
            signature_def = self.signatures[signature]
            fetches = {k: v.name for k, v in signature_def.outputs.items()}
            values = self.session.run(fetches, {signature_def.inputs[k].name: v
                                                for k, v in feeds.items()})
            return {k: as_numpy(v) for k, v in values.items()}
        function = self.loaded.signatures[signature]
        return flat_outputs(function(**{k: self.tf.constant(v) for k, v in feeds.items()}))

    def close(self):
        if self.session is not None:
            self.session.close()


# ---------------------------------------------------------------------------
# One entry
# ---------------------------------------------------------------------------

def reset_state(seed=SEED):
    """Same random state and default dtypes before every build (entries share a worker)."""
    import keras
    import tensorflow as tf
    keras.backend.clear_session()  # layer and input names restart: both variants get the same
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(seed)
    tf.compat.v1.reset_default_graph()


def build(entry: Entry, dtype: str) -> Made:
    reset_state()
    return entry.build(dtype)


def compare_modes(entry, signature, outputs, ref64) -> dict:
    """How the test compares each stored output: exact, ref64 or bound (see test_zoo.py)."""
    modes = {}
    for key, value in outputs.items():
        base = key.partition("#")[0]
        if value.dtype.kind not in "fc":
            modes[key] = "exact"
        elif f"{signature}|{base}" in entry.exact or f"{signature}|*" in entry.exact:
            modes[key] = "exact"
        else:
            modes[key] = "ref64" if key in ref64 else "bound"
    return modes


def generate_entry(name: str, root: str) -> dict:
    """Export, run and store one entry; returns its record (also written as entry.json)."""
    entry = load_registry()[name]
    target = zoo_cache.entry_dir(name, Path(root))
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    started = time.perf_counter()
    made = build(entry, "float32")
    export_dir = target / "saved_model"
    made.export(str(export_dir))
    record = {"name": name, "family": entry.family, "producer": entry.producer, "note": entry.note,
              "batch_sizes": list(entry.batch_sizes), "tf1": made.tf1,
              "library_versions": zoo_cache.library_versions(), "signatures": {}}
    arrays = {}
    if not entry.tensorflow_runs:
        record.update(tensorflow_outputs=False, ref64=None, ref64_missing_because=entry.no_ref64_because)
        return _finish(target, record, arrays, started)
    runner = TensorFlowRunner(str(export_dir), made.tf1)
    feeds = {(sig, b): make_feeds(entry, sig, sdef, b)
             for sig, sdef in sorted(runner.signatures.items()) for b in entry.batch_sizes}
    outputs = {case: runner.run(case[0], feed) for case, feed in feeds.items()}
    runner.close()
    references, why_not = _float64_runs(entry, made, feeds, outputs, target)
    record.update(tensorflow_outputs=True, ref64_missing_because=why_not,
                  ref64="float64 variant of the same builder, variables copied, run by TensorFlow"
                  if references else None)
    for (sig, batch), feed in feeds.items():
        stem = f"{sig}|b{batch}"
        ref64 = references.get((sig, batch), {})
        for key, value in feed.items():
            arrays[f"{stem}|inputs|{key}"] = value
        for key, value in outputs[(sig, batch)].items():
            arrays[f"{stem}|outputs|{key}"] = value
        for key, value in ref64.items():
            arrays[f"{stem}|ref64|{key}"] = value
        modes = compare_modes(entry, sig, outputs[(sig, batch)], ref64)
        record["signatures"].setdefault(sig, {"compare": modes})
    return _finish(target, record, arrays, started)


def _float64_runs(entry, made, feeds, outputs, target):
    """({case: {float output: float64 value}}, why there are none or "")."""
    has_floats = any(v.dtype.kind in "fc" for out in outputs.values() for v in out.values())
    if not has_floats:
        return {}, ""
    if not entry.ref64:
        return {}, entry.no_ref64_because or "no float64 variant declared"
    ref_dir = Path(tempfile.mkdtemp(prefix=f"{entry.name}-f64-", dir=target))
    try:
        made64 = build(entry, "float64")
        made64.copy_weights_from(made)
        if made64.call is None:
            made64.export(str(ref_dir / "saved_model"))
            runner = TensorFlowRunner(str(ref_dir / "saved_model"), made64.tf1)
            run = lambda signature, feed: runner.run(signature, as_float64(  # noqa: E731
                feed, {k: d for k, _, d in signature_inputs(runner.signatures[signature])}))
        else:
            runner, run = None, lambda signature, feed: made64.call(as_float64(feed))
        references = {}
        for case, feed in feeds.items():
            values = run(case[0], feed)
            references[case] = {k: v for k, v in values.items()
                                if k in outputs[case] and outputs[case][k].dtype.kind in "fc"
                                and v.dtype in (np.float64, np.complex128)}
        if runner is not None:
            runner.close()
    except Exception as error:  # noqa: BLE001  (recorded: the test then uses the stated bound)
        return {}, f"float64 variant failed: {type(error).__name__}: {str(error)[:300]}"
    finally:
        shutil.rmtree(ref_dir, ignore_errors=True)
    for case, values in references.items():
        for key in [k for k, v in values.items() if not same_function(outputs[case][k], v)]:
            del values[key]
    missing = sorted({k for case, out in outputs.items() for k, v in out.items()
                      if v.dtype.kind in "fc" and k not in references[case]})
    return references, (f"outputs without a float64 counterpart: {missing}" if missing else "")


#: The float64 variant computes the same function when it agrees with the float32 run to
#: this fraction of the output's magnitude (float32 rounding: ~1e-6; mixed_float16
#: models: ~1e-3); beyond, its weights or graph differ and it is no reference.
SAME_FUNCTION_RTOL = 1e-2


def same_function(tf32, ref64) -> bool:
    """Whether ``ref64`` is the float64 answer to the float32 run's question (elements the
    float32 dtype cannot hold, identities of empty reductions, left aside)."""
    held = np.abs(ref64) <= float(np.finfo(tf32.dtype).max) if tf32.dtype.kind == "f" else \
        np.ones(ref64.shape, bool)
    finite = held & np.isfinite(ref64) & np.isfinite(tf32)
    error = float(np.max(np.abs(tf32[finite] - ref64[finite]), initial=0.0))
    return error <= SAME_FUNCTION_RTOL * float(np.max(np.abs(ref64[finite]), initial=0.0))


def _finish(target, record, arrays, started):
    np.savez_compressed(target / "values.npz", **arrays)
    record["seconds"] = round(time.perf_counter() - started, 1)
    (target / "entry.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def _generate_safely(name, root):
    """Worker entry point: (name, record or None, error text)."""
    try:
        return name, generate_entry(name, root), ""
    except Exception:  # noqa: BLE001  (reported by main; the entry stays missing)
        return name, None, traceback.format_exc()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def generate(names, root: Path, jobs: int = 1, log=print) -> dict:
    """Generate ``names`` into ``root``; returns {name: error text} of the failures."""
    root.mkdir(parents=True, exist_ok=True)
    failures = {}
    if jobs <= 1:
        results = (_generate_safely(n, str(root)) for n in names)
        for name, record, error in results:
            _report(name, record, error, failures, log)
        return failures
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_generate_safely, n, str(root)) for n in names]
        for future in as_completed(futures):
            _report(*future.result(), failures, log)
    return failures


def _report(name, record, error, failures, log):
    if record is None:
        failures[name] = error
        log(f"FAILED {name}:\n{error}")
    else:
        log(f"ok {name} ({record['seconds']} s)")


def missing_entries(root: Path) -> list:
    done = zoo_cache.complete_entries(root)
    return [n for n in load_registry() if n not in done]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="regenerate just these entries")
    parser.add_argument("--list", action="store_true", help="print the registry and exit")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--dir", type=Path, default=None, help="zoo directory (default: the cache)")
    args = parser.parse_args(argv)
    registry = load_registry()
    if args.list:
        for entry in registry.values():
            print(f"{entry.name:36} {entry.family:26} {entry.producer:16} {entry.note}")
        return 0
    root = args.dir or zoo_cache.zoo_dir()
    unknown = [n for n in args.only or () if n not in registry]
    if unknown:
        parser.error(f"unknown entries {unknown}; --list shows them")
    names = args.only or missing_entries(root)
    print(f"zoo {root}: generating {len(names)} of {len(registry)} entries", flush=True)
    failures = generate(names, root, args.jobs, log=lambda text: print(text, flush=True))
    if failures:
        print(f"{len(failures)} entries failed: {sorted(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    import make_zoo  # run as the module the entry files import, not as __main__
    sys.exit(make_zoo.main())
