"""The whole-model consistency report: tag collisions, dangling tensors, missing files.

Each problem says what is wrong, where, and how to fix it. Errors make a model
unloadable or wrong; warnings make it surprising; notes are worth knowing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SavedModelError
from .format import savedmodel as files
from .graph_reach import foreign_ops
from .tags import (SHADOWING_FIX, duplicate_groups, format_tag_set, misspelled_standard_tag,
                   shadowing_message, tag_sets_of)

SEVERITY_ORDER = {"error": 0, "warning": 1, "note": 2}


@dataclass(frozen=True)
class Problem:
    """One finding: severity ("error", "warning" or "note"), a stable code, message and fix."""
    severity: str
    code: str
    message: str
    fix: str = ""
    meta_graph: int | None = None

    def __str__(self):
        where = f"[metagraph #{self.meta_graph}] " if self.meta_graph is not None else ""
        text = f"{self.severity.upper()} {self.code}: {where}{self.message}"
        return text + (f"\n    Fix: {self.fix}" if self.fix else "")


class DiagnosticReport:
    """Problems first (errors, then warnings, then notes), then a summary of the model."""

    def __init__(self, export_dir, problems, summary):
        self.export_dir = Path(export_dir)
        self.problems: list[Problem] = sorted(problems, key=lambda p: SEVERITY_ORDER[p.severity])
        self.summary: list[str] = summary

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when nothing makes the model unloadable or wrong."""
        return not self.errors

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def __str__(self):
        counts = {s: sum(p.severity == s for p in self.problems) for s in SEVERITY_ORDER}
        head = (f"Diagnostics for {self.export_dir}: {counts['error']} error(s), "
                f"{counts['warning']} warning(s), {counts['note']} note(s)")
        lines = [head]
        lines += [str(p) for p in self.problems] or ["No problems found."]
        lines.append("")
        lines += self.summary
        return "\n".join(lines)

    def __repr__(self):
        return f"<DiagnosticReport {str(self.export_dir)!r}: {len(self.problems)} problem(s)>"

    def _repr_html_(self):
        from .render import report_html
        return report_html(self)


def diagnose(info, extra_checks=()) -> DiagnosticReport:
    """Run every check over an inspected SavedModel (a SavedModelInfo), then ``extra_checks``
    (functions of ``info`` yielding Problems, from higher layers)."""
    problems: list[Problem] = []
    for check in (_check_no_meta_graphs, check_tag_sets, _check_signatures, _check_serving,
                  _check_variables, _check_assets, _check_fingerprint, _check_foreign_ops,
                  *extra_checks):
        problems.extend(check(info))
    summary = [f"MetaGraphDef #{mg.index} {format_tag_set(mg.tags)}: "
               f"{len(mg.signatures)} signature(s) ({', '.join(mg.signatures) or 'none'}), "
               f"{len(mg.variables)} variable(s), {len(mg.assets)} asset(s), "
               f"{sum(mg.op_counts.values())} op node(s)" for mg in info.meta_graphs]
    return DiagnosticReport(info.export_dir, problems, summary)


def _check_no_meta_graphs(info):
    if info.meta_graphs:
        return
    if files.looks_like_frozen_graph(info.export_dir):
        yield Problem("error", "frozen-graph",
                      "saved_model.pb holds a bare GraphDef (a frozen graph), not a SavedModel: "
                      "there are no MetaGraphDefs, tags or signatures.",
                      "Wrap it: sm_notebook.Builder(graph=...) with a signature, or re-export "
                      "with tf.saved_model.save.")
    else:
        yield Problem("error", "no-meta-graph", "The SavedModel contains no MetaGraphDef.",
                      "Re-export the model; an empty SavedModel cannot be loaded.")


def check_tag_sets(info):
    """Tag-set problems: duplicates, empty, split strings, misspellings, 'serve' ambiguity."""
    proto = info.proto
    for group in duplicate_groups(proto):
        yield Problem("error", "duplicate-tag-set", shadowing_message(proto, group, with_fix=False),
                      SHADOWING_FIX[0].upper() + SHADOWING_FIX[1:], group[1])
    available = list(dict.fromkeys(tag_sets_of(proto)))
    for mg in info.meta_graphs:
        tags = mg.tags
        if not tags:
            yield Problem("warning", "empty-tag-set",
                          "This metagraph has the empty tag-set; loaders must ask for tags=[] "
                          "explicitly, and TF Serving's default ('serve') will not find it.",
                          "Builder.set_tags([], ['serve']).", mg.index)
        word = next((w for w in ("serve", "train", "eval") if len(tags) > 1
                     and all(len(t) == 1 for t in tags) and tags == frozenset(w)), None)
        if word:
            yield Problem("error", "split-string-tag",
                          f"The tag-set {format_tag_set(tags)} is the characters of {word!r}: the "
                          "model was saved with a string where a list of tags was meant.",
                          f"Builder.set_tags({sorted(tags)!r}, [{word!r}]).", mg.index)
            continue
        for tag in sorted(tags):
            meant = misspelled_standard_tag(tag)
            if meant:
                yield Problem("warning", "misspelled-tag",
                              f"Tag {tag!r} looks like a misspelling of the standard tag {meant!r}; "
                              f"loaders asking for {meant!r} will not find this metagraph.",
                              f"Builder.set_tags({sorted(tags)!r}, {sorted((tags - {tag}) | {meant})!r}).",
                              mg.index)
    if "serve" in {t for ts in available for t in ts} and frozenset({"serve"}) not in available:
        holders = [ts for ts in available if "serve" in ts]
        if len(holders) > 1:
            yield Problem("warning", "ambiguous-serve",
                          f"tags=['serve'] matches nothing: {len(holders)} tag-sets contain 'serve' "
                          f"({', '.join(format_tag_set(ts) for ts in holders)}) but none equals it, "
                          "and loaders (and TF Serving's default) require an exact match.",
                          "Add a plain {'serve'} metagraph (Builder.add_meta_graph(['serve'], "
                          "copy_from=...)) or always pass the full tag-set.")
        elif len(holders) == 1:
            yield Problem("note", "no-plain-serve",
                          f"No metagraph has exactly {{'serve'}}; the one serving metagraph is "
                          f"{format_tag_set(holders[0])}, so tags=['serve'] will not find it.",
                          f"Load with tags={sorted(holders[0])!r}.")


def _graph_outputs(meta_graph):
    return {node.name for node in meta_graph.graph_def.node}


def _check_signatures(info):
    for mg in info.meta_graphs:
        nodes = _graph_outputs(mg.proto)
        if not mg.signatures:
            yield Problem("note", "no-signatures",
                          "This metagraph has no SignatureDef; serving systems cannot call it.",
                          "Builder.add_signature(...).", mg.index)
        for key, sig in mg.signatures.items():
            for side, specs in (("input", sig.inputs), ("output", sig.outputs)):
                for spec in specs.values():
                    names = [spec.name] if spec.encoding == "name" else list(spec.components)
                    for name in names:
                        node = name.split(":")[0].lstrip("^")
                        if node not in nodes:
                            yield Problem("error", "missing-tensor",
                                          f"Signature {key!r} {side} {spec.key!r} refers to tensor "
                                          f"{name!r}, but the graph has no node {node!r}.",
                                          "Point it at an existing tensor (Builder.add_signature) or "
                                          "remove the signature.", mg.index)


#: Output keys TensorFlow invents when a serving function returns a bare tensor or a tuple.
AUTO_OUTPUT_KEY = re.compile(r"output_\d+")


def _check_serving(info):
    """Serving conventions: the metagraph TF Serving loads has serving_default; outputs have
    real names."""
    serving = [mg for mg in info.meta_graphs if mg.tags == {"serve"}] or \
        [mg for mg in info.meta_graphs if "serve" in mg.tags]
    for mg in info.meta_graphs:
        keys = [k for k in mg.signatures if not k.startswith("__saved_model")]
        if len(serving) == 1 and mg is serving[0] and keys and "serving_default" not in keys:
            yield Problem("warning", "no-serving-default",
                          f"This serving metagraph has no 'serving_default' signature (it has "
                          f"{', '.join(keys)}); TensorFlow Serving requests that name no signature "
                          "fail with 'Serving signature key \"serving_default\" not found'.",
                          f"Builder.rename_signature({keys[0]!r}, 'serving_default') or add one.",
                          mg.index)
        for key in keys:
            auto = sorted(k for k in mg.signatures[key].outputs if AUTO_OUTPUT_KEY.fullmatch(k))
            if auto:
                yield Problem("warning", "auto-output-names",
                              f"Signature {key!r} has auto-generated output names ({', '.join(auto)}): "
                              "the serving function returned a tensor or a tuple, so clients must "
                              "know what each position means.",
                              f"Return a dict from the serving function, or "
                              f"Builder.rename_output({key!r}, {auto[0]!r}, 'a_real_name').", mg.index)


def _check_variables(info):
    if info.bundle_error is not None:
        yield Problem("error", "corrupt-variables", str(info.bundle_error),
                      "Restore variables/ from a good copy or re-export the model.")
        return
    if info.bundle is not None:
        try:
            info.bundle.check_shards()
        except SavedModelError as exc:
            yield Problem("error", "corrupt-variables", str(exc),
                          "Restore variables/ from a good copy or re-export the model.")
            return
    keys = set(info.bundle.keys()) if info.bundle is not None else set()
    for mg in info.meta_graphs:
        expected = [v for v in mg.variables if v.checkpoint_key or not mg.is_tf2 or info.bundle is None]
        if expected and info.bundle is None:
            yield Problem("error", "missing-variables-bundle",
                          f"The graph has {len(expected)} variable(s) but there is no "
                          f"{files.VARIABLES_PREFIX}.index.",
                          "Copy the variables/ directory next to saved_model.pb.", mg.index)
            continue
        missing = [v for v in expected if v.checkpoint_key and v.checkpoint_key not in keys]
        if missing and not _restored_by_saver(mg, keys):
            shown = ", ".join(v.checkpoint_key for v in missing[:5])
            yield Problem("error", "missing-variable",
                          f"{len(missing)} variable(s) are not in the bundle: {shown}"
                          f"{' ...' if len(missing) > 5 else ''}.",
                          "Re-export with the variables saved, or restore variables/.", mg.index)


def _restored_by_saver(meta_graph, keys) -> bool:
    """TF1 savers may rename keys; trust the bundle when no graph variable name matches at all."""
    return not meta_graph.is_tf2 and keys and not any(v.checkpoint_key in keys for v in meta_graph.variables)


def _check_assets(info):
    for mg in info.meta_graphs:
        for asset in mg.assets:
            if not asset.exists:
                yield Problem("error", "missing-asset",
                              f"Asset {asset.filename!r} (tensor {asset.tensor_name!r}) is recorded "
                              f"but {asset.path} does not exist.",
                              "Copy the file into assets/ (Builder.add_asset).", mg.index)


def _check_fingerprint(info):
    if info.fingerprint is None:
        return
    try:
        from .format.fingerprint import stale_fingerprint_fields
    except ImportError:
        return
    try:
        stale = stale_fingerprint_fields(info.export_dir, info.fingerprint, info.proto)
    except SavedModelError as exc:
        yield Problem("warning", "fingerprint-unchecked", f"fingerprint.pb could not be checked: {exc}")
        return
    if stale == ["checkpoint_hash"] and info.bundle is None:
        return  # the variables are missing: _check_variables says so, the fingerprint is not stale
    if stale:
        yield Problem("warning", "stale-fingerprint",
                      f"fingerprint.pb does not match the files ({', '.join(stale)} differ): it was "
                      "written for another version of this model, and tools that key caches on "
                      "it will be misled.",
                      "Delete fingerprint.pb or re-save with sm_notebook.Builder (which rewrites it).")


def _check_foreign_ops(info):
    """Ops from outside core TensorFlow that a signature, init op or restore op can run
    (graph_reach.foreign_ops): `load` refuses the model, as TensorFlow without the library
    would; which other ops the engine lacks is `sm-notebook scan`'s report."""
    for mg in info.meta_graphs:
        found = foreign_ops(mg.proto)
        if not found:
            continue
        by_library: dict = {}
        for op, _, _, library in found:
            by_library.setdefault(library, set()).add(op)
        listed = "; ".join(f"{', '.join(sorted(ops))} from {library}"
                           for library, ops in sorted(by_library.items()))
        yield Problem("error", "foreign-ops",
                      f"The model runs ops from outside core TensorFlow: {listed}. TensorFlow "
                      "loads it only with those libraries installed, and sm_notebook's engine "
                      "refuses it.",
                      "Run it with TensorFlow and the library (pip install it), or export the "
                      "model without those ops (e.g. preprocess outside the model).", mg.index)
