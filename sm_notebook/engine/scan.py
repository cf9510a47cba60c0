"""Which ops of a model the engine cannot run (unsupported) or refuses (IO), before running any.

Every node of the main graph and of every library function is listed. What `load`
refuses (`load_refusals`: IO ops, and ops from outside core TensorFlow) is what any
signature, the init op or the variable restore op could run, following inputs, control
inputs and every function an attr names. Which missing ops stop a call is the planner's
decision, shared here: each signature, the init op and the TF1 restore op is bound as
its plan would be (`plan.bind_body`: calls inlined, If/Case with a constant predicate
reduced to their branch, pruned to the fetches) and its `reach.Support` says which
missing ops refuse it, which refuse only a branch ("conditional") and which sit on
branches never taken. Nothing runs but the constant predicates. The save function
TensorFlow writes into every SavedModel (SaveV2, MergeV2Checkpoints, ...) is present
but unreachable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import opdefs
from ..errors import SavedModelError, UnsupportedOpError
from ..format.savedmodel import unpack_any
from ..graph_reach import (MAIN_OP_COLLECTIONS, attr_function_names, foreign_ops,  # noqa: F401
                           function_refs, node_name, nodes_of, reachable, root_nodes)
from ..opdefs.extension_ops import library_of
from .ops.registry import KERNELS

INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclass(frozen=True)
class OpProblem:
    """One node whose op is unsupported or denied."""
    op: str
    node: str
    function: str | None
    status: str        # "unsupported", "conditional" (only a branch needs it) or "denied"
    reachable: bool
    library: str | None = None   # the extension library of an op outside core TensorFlow
    branch: str | None = None    # for "conditional": the branch that needs it

    def where(self) -> str:
        return f"function {self.function!r}" if self.function else "main graph"


@dataclass(frozen=True)
class EntryVerdict:
    """What calling one signature (or running the init or restore op) would do."""
    name: str                  # "signature 'serving_default'", "init op 'init'", ...
    refused: tuple = ()        # ops that stop every call
    conditional: tuple = ()    # (op, branch) pairs: stop a call that takes the branch
    error: str | None = None   # another reason it cannot be planned

    @property
    def runs(self) -> bool:
        return not self.refused and self.error is None

    def __str__(self):
        if self.error is not None:
            return f"{self.name}: cannot run: {self.error}"
        if self.refused:
            return f"{self.name}: cannot run: needs {', '.join(self.refused)}"
        if self.conditional:
            unless = "; ".join(f"{branch[:1].lower() + branch[1:]} (it needs {op})"
                               for op, branch in self.conditional)
            return f"{self.name}: runs; a call is refused if it takes {unless}"
        return f"{self.name}: runs"


@dataclass
class ScanReport:
    """The result of `scan_model`: problems, and every op the model uses."""
    export_dir: str
    tags: list
    problems: list = field(default_factory=list)
    ops: list = field(default_factory=list)        # every op used, sorted
    reachable_ops: list = field(default_factory=list)
    verdicts: list = field(default_factory=list)   # EntryVerdict per signature, init, restore

    def _names(self, status, reachable_only=True):
        return sorted({p.op for p in self.problems
                       if p.status == status and (p.reachable or not reachable_only)})

    @property
    def unsupported(self) -> list:
        """Ops a signature or init op would run but the engine lacks."""
        return self._names("unsupported")

    @property
    def denied(self) -> list:
        """IO ops a signature or init op would run (refused unless allow_io=True)."""
        return self._names("denied")

    @property
    def conditional(self) -> list:
        """Ops only branches need: a call taking such a branch is refused."""
        return self._names("conditional")

    @property
    def foreign(self) -> dict:
        """Reachable ops from outside core TensorFlow -> the library they come from."""
        return {p.op: p.library for p in self.problems if p.library and p.reachable}

    @property
    def ok(self) -> bool:
        """Whether `load` succeeds and every signature can be called (a call taking a
        branch listed under ``conditional`` is still refused)."""
        return not self.unsupported and not self.denied and all(v.runs for v in self.verdicts)

    def __str__(self):
        verdict = "all runnable" if self.ok and not self.conditional else \
            "runnable unless a branch listed below is taken" if self.ok else "problems found"
        lines = [f"Scan of {self.export_dir} (tags {self.tags}): {len(self.ops)} ops used, "
                 f"{verdict}."]
        lines += [f"  {v}" for v in self.verdicts if not v.runs or v.conditional]
        for title, status in (("Unsupported", "unsupported"), ("Only in branches", "conditional"),
                              ("Denied (IO)", "denied")):
            for live in (True, False):
                found = [p for p in self.problems if p.status == status and p.reachable == live]
                if found:
                    tail = "" if live else " (not reachable: no signature, init op or restore op runs it)"
                    lines.append(f"{title}{tail}:")
                    by_op = {}
                    for p in found:
                        by_op.setdefault(p.op, []).append(p)
                    for op, uses in sorted(by_op.items()):
                        first = uses[0]
                        more = f" and {len(uses) - 1} more" if len(uses) > 1 else ""
                        source = f" (from {first.library})" if first.library else ""
                        lines.append(f"  {op}{source}: node {first.node!r} in {first.where()}{more}")
        return "\n".join(lines)

    __repr__ = __str__


def problem_status(op: str, library_names=()) -> str | None:
    """"denied", "unsupported" or None for an op name."""
    kern = KERNELS.get(op)
    if op in opdefs.ops_with("io"):
        return "denied"
    if kern is None and op not in library_names:
        return "unsupported"
    return None


def foreign_library(op: str, library_names=()) -> str | None:
    """The library an op outside core TensorFlow comes from (None for TensorFlow's ops,
    the engine's, and the model's own functions)."""
    if op in library_names or op in KERNELS:
        return None
    return library_of(op)


def load_refusals(meta_graph, allow_io=False) -> tuple[list, list]:
    """What `load` refuses before running anything, among what a signature, the init op
    or the restore op could run: ``(denied, foreign)``, IO ops (unless ``allow_io``) as
    ``(op, node, function)`` and ops from outside core TensorFlow as ``(op, node,
    function, library)``."""
    library = {f.signature.name for f in meta_graph.graph_def.library.function}
    live_nodes, live_functions = reachable(meta_graph, root_nodes(meta_graph))
    denied = [] if allow_io else [
        (node.op, node.name, function)
        for node, function in nodes_of(meta_graph, live_nodes, live_functions)
        if problem_status(node.op, library) == "denied"]
    return denied, foreign_ops(meta_graph)


def refuse_at_load(meta_graph, allow_io=False) -> None:
    """Raise what `load_refusals` finds, naming every op (and its library)."""
    denied, foreign = load_refusals(meta_graph, allow_io)
    if foreign:
        by_library = {}
        for op, _, _, library in foreign:
            by_library.setdefault(library, set()).add(op)
        parts = [f"{_and(sorted(ops))} {'comes' if len(ops) == 1 else 'come'} from {library}"
                 for library, ops in sorted(by_library.items())]
        first = "; ".join(f"{op} (node {node!r} in {_where(f)})" for op, node, f, _ in foreign[:10])
        raise UnsupportedOpError(
            f"The model uses ops from outside core TensorFlow, which sm_notebook's engine "
            f"does not run: {'; '.join(parts)}. Refused before anything runs (first uses: "
            f"{first}). Run the model with TensorFlow and that library installed, or export "
            "it without them (e.g. preprocess outside the model).", [op for op, _, _, _ in foreign])
    if denied:
        listed = "; ".join(f"{op} (node {node!r} in {_where(f)})" for op, node, f in denied[:10])
        raise SavedModelError(
            f"The model would run IO ops, refused before anything runs: {listed}. They read or "
            "write files or run code outside the model. Load with allow_io=True only if you trust it.")


def _and(names) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _where(function) -> str:
    return f"function {function!r}" if function else "the main graph"


def init_op_name(meta_graph) -> str | None:
    """The node the loader runs once after restoring, as TensorFlow picks it."""
    sig = meta_graph.signature_def.get(INIT_OP_SIGNATURE)
    if sig is not None and INIT_OP_SIGNATURE in sig.outputs:
        return node_name(sig.outputs[INIT_OP_SIGNATURE].name)
    for key in MAIN_OP_COLLECTIONS:
        collection = meta_graph.collection_def.get(key)
        if collection is not None and collection.node_list.value:
            return node_name(collection.node_list.value[0])
    return None


def asset_file_defs(meta_graph) -> list:
    """The AssetFileDefs of the metagraph (field, or the TF1 saved_model_assets collection)."""
    found = list(meta_graph.asset_file_def)
    collection = meta_graph.collection_def.get("saved_model_assets")
    if collection is not None and collection.HasField("any_list"):
        names = {a.tensor_info.name for a in found}
        for value in collection.any_list.value:
            asset = unpack_any(value)
            if asset.tensor_info.name not in names:
                found.append(asset)
    return found


def entry_points(meta_graph) -> list:
    """``(name, feeds, fetches, targets)`` (tensor and node names) of what `load` and
    calls run: every signature, the init op, and the TF1 restore op."""
    assets = [a.tensor_info.name for a in asset_file_defs(meta_graph) if a.tensor_info.name]
    entries = []
    for key, sig in sorted(meta_graph.signature_def.items()):
        if key == INIT_OP_SIGNATURE:
            continue
        feeds = [t.name for t in sig.inputs.values() if t.name] + assets
        entries.append((f"signature {key!r}", feeds, [t.name for t in sig.outputs.values()], []))
    init = init_op_name(meta_graph)
    if init:
        entries.append((f"init op {init!r}", assets, [], [init]))
    saver = meta_graph.saver_def
    if saver.restore_op_name and saver.filename_tensor_name and not meta_graph.object_graph_def.nodes:
        entries.append(("variable restore op", [saver.filename_tensor_name], [],
                        [node_name(saver.restore_op_name)]))
    return entries


def entry_supports(meta_graph, export_dir=None) -> list:
    """``(EntryVerdict, Support or None)`` per entry point, as the planner binds it."""
    from .plan import bind_body
    from .runtime import Runtime, tensor_ref

    runtime = Runtime(meta_graph, export_dir, allow_io=True, optimize=False)
    results = []
    for name, feeds, fetches, targets in entry_points(meta_graph):
        try:
            support = bind_body(runtime, runtime.graph.nodes, [tensor_ref(f) for f in feeds],
                                [tensor_ref(f) for f in fetches], targets).support
        except SavedModelError as exc:
            results.append((EntryVerdict(name, error=str(exc)), None))
            continue
        refused = tuple(sorted({m.op for m in support.refused}))
        conditional = tuple(sorted({(m.op, m.branch) for m in support.conditional}))
        results.append((EntryVerdict(name, refused, conditional), support))
    return results


def engine_problems(info):
    """Diagnose's problems for what load + call will do on each metagraph (warnings: the
    model may be fine for TensorFlow): signatures the engine cannot run, and calls that
    are refused when they take a branch. Extension-library ops are diagnose's own check."""
    from ..diagnose import Problem
    for mg in info.meta_graphs:
        try:
            report = scan_meta_graph(mg.proto, str(info.export_dir), sorted(mg.tags))
        except SavedModelError as exc:
            yield Problem("warning", "engine-cannot-plan", f"sm_notebook's engine cannot plan this "
                          f"metagraph: {exc}", "Run it with TensorFlow.", mg.index)
            continue
        if report.foreign:
            continue  # refused at load; diagnose's foreign-ops error says why
        for verdict in report.verdicts:
            if not verdict.runs:
                why = verdict.error or f"it needs {', '.join(verdict.refused)}"
                yield Problem("warning", "engine-unsupported",
                              f"sm_notebook's engine cannot run {verdict.name}: {why}.",
                              "Run it with TensorFlow, or see docs/SUPPORTED_OPS.md for what the "
                              "engine runs (`sm-notebook scan` lists every node).", mg.index)
            elif verdict.conditional:
                yield Problem("note", "engine-branch-refusal", f"sm_notebook's engine: {verdict}.",
                              "Keep to the default branch, or run it with TensorFlow.", mg.index)
        if report.denied:
            yield Problem("warning", "engine-io-ops", f"The model runs ops that touch files or "
                          f"processes ({', '.join(report.denied)}); sm_notebook refuses them "
                          "unless load(..., allow_io=True).", "Load with allow_io=True only for "
                          "a model you trust.", mg.index)


def scan_meta_graph(meta_graph, export_dir="", tags=()) -> ScanReport:
    """Check every node of one metagraph (graph and functions), and bind what load and
    each signature run as the planner would."""
    from . import ops  # noqa: F401  (registers every kernel)

    graph = meta_graph.graph_def
    library = {f.signature.name for f in graph.library.function}
    live_nodes, live_functions = reachable(meta_graph, root_nodes(meta_graph))
    report = ScanReport(str(export_dir), sorted(tags))
    supports = entry_supports(meta_graph, str(export_dir) if export_dir else None)
    report.verdicts = [verdict for verdict, _ in supports]
    refused, branches = set(), {}
    for _, support in supports:
        if support is not None:
            refused.update(m.key() for m in support.refused)
            for m in support.conditional:
                branches.setdefault(m.key(), m.branch)
    used, used_live = set(), set()

    def check(node, function, live):
        used.add(node.op)
        if live:
            used_live.add(node.op)
        status = problem_status(node.op, library)
        if not status:
            return
        foreign = foreign_library(node.op, library)
        key = (node.op, node.name, function)
        branch = None
        if status == "unsupported" and not foreign:
            if key in refused:
                live = True
            elif key in branches:
                status, branch, live = "conditional", branches[key], True
            else:
                live = False  # no plan needs it (pruned, or on a branch never taken)
        report.problems.append(OpProblem(node.op, node.name, function, status, live, foreign, branch))

    for node in graph.node:
        check(node, None, node.name in live_nodes)
    for fdef in graph.library.function:
        live = fdef.signature.name in live_functions
        for node in fdef.node_def:
            check(node, fdef.signature.name, live)
    report.ops = sorted(used)
    report.reachable_ops = sorted(used_live)
    return report


def scan_model(export_dir, tags=None) -> ScanReport:
    """Scan the metagraph ``load(export_dir, tags)`` would pick; runs nothing but the
    pure ops of constant branch predicates."""
    from ..format.savedmodel import read_saved_model
    from ..tags import select_meta_graph

    saved_model = read_saved_model(export_dir)
    _, meta_graph = select_meta_graph(saved_model, tags, export_dir)
    return scan_meta_graph(meta_graph, export_dir, list(meta_graph.meta_info_def.tags))
