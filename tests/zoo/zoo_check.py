"""Run zoo entries with sm_notebook and judge them against TensorFlow (no TensorFlow import).

Each signature ends in one of:
    pass      every output at every batch size matches (see `compare_output`)
    refused   a SavedModelError before or while running (an extension library's model:
              one that names its ops and the library); `unsupported` lists the ops the scan
              finds missing for the signature
    mismatch  ran, but an output differs beyond its bound (wrong numbers, shapes, dtypes)
    error     anything else: another exception, an extension model's refusal that does
              not name each op outside core TensorFlow and the library, a model
              TensorFlow could not run either
Tolerances: float outputs with a float64 reference use conftest.assert_float32_near_reference
(TensorFlow's own error against float64, pooled over the batch sizes); outputs marked
exact (integers, strings, bools, random bits, quantized grids) must be equal;
float outputs without a float64 reference must be within FALLBACK_ULPS units in the last
place of the largest TensorFlow value (see below).
"""
from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import zoo_cache  # noqa: E402
from conftest import assert_float32_near_reference  # noqa: E402

#: Entries whose float outputs have no float64 reference (decoder scores, float32-only
#: ops) are short op chains; a different but correct rounding order moves each result
#: by a few units in the last place per accumulated term. 64 units of the largest
#: output allow reordering a sum of up to ~64 terms, while a wrong kernel (wrong axis,
#: lost term, wrong branch) is off by the size of the values.
FALLBACK_ULPS = 64
#: Ops that only extension libraries register, by the library that does.
EXTENSION_LIBRARIES = {"tensorflow-text": ("tensorflow_text", "tensorflow-text"),
                       "ydf": ("ydf", "YDF", "decision forests", "decision_forests")}


@dataclass
class SignatureResult:
    entry: str
    family: str
    signature: str
    status: str                        # pass, refused, mismatch, error
    detail: str = ""
    unsupported: list = field(default_factory=list)   # ops the scan says the engine lacks
    seconds: float = 0.0


def output_nodes(signature_def) -> list:
    """Node names of a SignatureDef's outputs (each component of a composite output)."""
    names = []
    for info in signature_def.outputs.values():
        tensors = [info.name] if info.name else [c.name for c in info.composite_tensor.components]
        names.extend(t.lstrip("^").partition(":")[0] for t in tensors)
    return names


def unsupported_ops(export_dir) -> dict:
    """signature -> the ops it or the init op could run that the engine lacks or refuses
    (IO), found as the engine's scan finds them."""
    from sm_notebook.engine import scan
    from sm_notebook.format.savedmodel import read_saved_model
    from sm_notebook.tags import select_meta_graph

    _, meta_graph = select_meta_graph(read_saved_model(str(export_dir)), None, str(export_dir))
    library = {f.signature.name: f for f in meta_graph.graph_def.library.function}
    signatures = meta_graph.signature_def
    init = [n for key in scan.MAIN_OP_COLLECTIONS if key in meta_graph.collection_def
            for n in meta_graph.collection_def[key].node_list.value]
    if scan.INIT_OP_SIGNATURE in signatures:
        init += output_nodes(signatures[scan.INIT_OP_SIGNATURE])
    found = {}
    for key, signature_def in signatures.items():
        nodes, functions = scan.reachable(meta_graph, init + output_nodes(signature_def))
        ops = {n.op for n in meta_graph.graph_def.node if n.name in nodes}
        ops.update(n.op for f in functions for n in library[f].node_def)
        found[key] = sorted(op for op in ops if scan.problem_status(op, library))
    return found


def flat_components(value) -> list:
    """A ragged output (sm_notebook.Ragged or anything with flat_values/nested_row_splits)
    as TensorFlow's components: flat values, then the row splits, outermost first."""
    return [np.asarray(value.flat_values), *(np.asarray(s) for s in value.nested_row_splits)]


def compare_output(ours, tf32, ref64, mode, what, pooled=()):
    """Raise AssertionError when ``ours`` does not match TensorFlow's ``tf32`` under ``mode``."""
    ours = np.asarray(ours)
    if ours.shape != tf32.shape:
        raise AssertionError(f"{what}: shape {ours.shape}, TensorFlow {tf32.shape}")
    if ours.dtype != tf32.dtype:
        raise AssertionError(f"{what}: dtype {ours.dtype}, TensorFlow {tf32.dtype}")
    if mode == "exact":
        if not np.array_equal(ours, tf32, equal_nan=tf32.dtype.kind in "fc"):
            bad = int(np.sum(ours != tf32))
            raise AssertionError(f"{what}: {bad} of {tf32.size} elements differ from TensorFlow "
                                 f"(compared exactly), e.g. {ours.ravel()[:5]} vs {tf32.ravel()[:5]}")
        return
    if tf32.dtype.kind == "c":
        as_pairs = lambda a: np.stack([a.real, a.imag], -1)  # noqa: E731
        ours, tf32 = as_pairs(ours), as_pairs(tf32)
        ref64 = None if ref64 is None else as_pairs(ref64)
        pooled = [(as_pairs(t), as_pairs(r)) for t, r in pooled]
    if mode == "ref64":
        ours, tf32, ref64, pooled = split_off_sentinels(ours, tf32, ref64, pooled, what)
        assert_float32_near_reference(ours, tf32, ref64, what, pooled=pooled)
        return
    finite = np.isfinite(tf32)
    np.testing.assert_array_equal(ours[~finite], tf32[~finite], err_msg=f"{what}: NaN/inf differ")
    scale = float(np.max(np.abs(tf32[finite]), initial=0.0))
    bound = FALLBACK_ULPS * float(np.finfo(tf32.dtype).eps) * scale + float(np.finfo(tf32.dtype).tiny)
    error = float(np.max(np.abs(ours[finite].astype(np.float64) - tf32[finite]), initial=0.0))
    if error > bound:
        raise AssertionError(f"{what}: max|ours - TensorFlow| = {error:.3g} exceeds "
                             f"{FALLBACK_ULPS} ulp of max|TensorFlow| = {bound:.3g} (no float64 reference)")


def beyond_float32(ref64, dtype):
    """Elements whose float64 value the output dtype cannot hold: the identity of an empty
    reduction (max of nothing is the dtype's lowest value), not a rounding of the same number."""
    return np.abs(ref64) > float(np.finfo(dtype).max)


def split_off_sentinels(ours, tf32, ref64, pooled, what):
    """Compare dtype-dependent sentinels exactly with TensorFlow; return the rest, flattened."""
    sentinel = beyond_float32(ref64, tf32.dtype)
    if not sentinel.any():
        return ours, tf32, ref64, pooled
    np.testing.assert_array_equal(ours[sentinel], tf32[sentinel],
                                  err_msg=f"{what}: empty-reduction values differ from TensorFlow")
    keep = lambda t, r: (t[~beyond_float32(r, t.dtype)], r[~beyond_float32(r, t.dtype)])  # noqa: E731
    return (ours[~sentinel], *keep(tf32, ref64), [keep(t, r) for t, r in pooled])


def check_signature_outputs(name, signature, got_by_batch, cases, modes):
    """Compare every stored output of one signature at every batch size."""
    for batch, got in got_by_batch.items():
        want = cases[(signature, batch)]
        stored = zoo_cache.grouped_components(want["outputs"])
        if sorted(got) != sorted(stored):
            raise AssertionError(f"{name} {signature} b{batch}: outputs {sorted(got)}, "
                                 f"TensorFlow {sorted(stored)}")
        for key, value in got.items():
            parts = flat_components(value) if isinstance(stored[key], list) else [value]
            names = [f"{key}#{i}" for i in range(len(parts))] if isinstance(stored[key], list) else [key]
            if len(names) != len(want["outputs"].keys() & set(names)):
                raise AssertionError(f"{name} {signature} b{batch} {key}: {len(parts)} components")
            for part, stored_key in zip(parts, names):
                pooled = [(cases[(signature, b)]["outputs"][stored_key], cases[(signature, b)]["ref64"][stored_key])
                          for b in got_by_batch if b != batch and stored_key in cases[(signature, b)]["ref64"]]
                compare_output(part, want["outputs"][stored_key], want["ref64"].get(stored_key),
                               modes.get(stored_key, "bound"), f"{name} {signature} b{batch} {stored_key}",
                               pooled)


def unnamed_extension_ops(message, unsupported, producer) -> list:
    """What an extension-library model's refusal leaves out: each op outside core
    TensorFlow (not in TensorFlow's op registry, sm_notebook.opdefs) and the library."""
    from sm_notebook import opdefs
    if producer not in EXTENSION_LIBRARIES:
        return []
    missing = [op for op in unsupported if op not in opdefs.all_ops() and op not in message]
    if not any(word in message for word in EXTENSION_LIBRARIES[producer]):
        missing.append(f"the library {producer}")
    return missing


def evaluate_entry(name, root=None, backend="numpy") -> list:
    """One SignatureResult per signature of a generated entry."""
    import sm_notebook
    record = zoo_cache.read_entry(name, root)
    export_dir = zoo_cache.entry_dir(name, root) / "saved_model"
    cases = zoo_cache.read_values(name, root)
    signatures = sorted(record["signatures"]) or ["serving_default"]
    try:
        unsupported = unsupported_ops(export_dir)
    except Exception as error:  # noqa: BLE001  (reported as the entry's error)
        return [SignatureResult(name, record["family"], s, "error", f"scan: {error!r}")
                for s in signatures]

    def result(signature, status, detail="", seconds=0.0):
        return SignatureResult(name, record["family"], signature, status, detail,
                               unsupported.get(signature, []), seconds)

    try:
        model = sm_notebook.load(export_dir, backend=backend)
    except sm_notebook.SavedModelError as error:
        return [_refusal(result, s, error, unsupported.get(s, []), record) for s in signatures]
    except Exception:  # noqa: BLE001
        return [result(s, "error", "load: " + traceback.format_exc(limit=-3)) for s in signatures]
    results = []
    for signature in signatures:
        started = time.perf_counter()
        try:
            got = {}
            for batch in record["batch_sizes"]:
                feeds = {k: _read_only(v) for k, v in cases[(signature, batch)]["inputs"].items()}
                got[batch] = dict(model.signatures[signature](**feeds).numpy())
        except sm_notebook.SavedModelError as error:
            results.append(_refusal(result, signature, error, unsupported.get(signature, []), record))
            continue
        except Exception:  # noqa: BLE001
            results.append(result(signature, "error", traceback.format_exc(limit=-4)))
            continue
        seconds = time.perf_counter() - started
        if not record.get("tensorflow_outputs", True):
            results.append(result(signature, "error", "ran, but TensorFlow could not: nothing to compare"))
            continue
        try:
            check_signature_outputs(name, signature, got, cases, record["signatures"][signature]["compare"])
        except AssertionError as error:
            results.append(result(signature, "mismatch", str(error)[:2000], seconds))
            continue
        results.append(result(signature, "pass", "", seconds))
    return results


def _refusal(result, signature, error, unsupported, record):
    """A SavedModelError is a clean refusal, unless an extension model's leaves out an op
    outside core TensorFlow or the library."""
    message = str(error)
    unnamed = unnamed_extension_ops(message, unsupported, record["producer"])
    if not unnamed:
        return result(signature, "refused", message[:600])
    return result(signature, "error", f"refusal not naming {', '.join(unnamed)}: {message[:600]}")


def _read_only(array):
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def evaluate_zoo(root=None, names=None) -> list:
    """Results for every complete entry (or ``names``) of the zoo."""
    entries = zoo_cache.complete_entries(root)
    results = []
    for name in names or sorted(entries):
        results.extend(evaluate_entry(name, root))
    return results
