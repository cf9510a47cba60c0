"""Which ops of a model the engine cannot run (unsupported) or refuses (IO), before running any.

Every node of the main graph and of every library function is checked. A node is
*reachable* when a signature, the init op or the variable restore op can run it
(through inputs, control inputs and the functions of call/If/While/... attrs);
only reachable problems stop `load`. The save function TensorFlow writes into
every SavedModel (SaveV2, MergeV2Checkpoints, ...) is present but unreachable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import opdefs
from .ops.registry import KERNELS

INIT_OP_SIGNATURE = "__saved_model_init_op"
MAIN_OP_COLLECTIONS = ("saved_model_main_op", "legacy_init_op")


@dataclass(frozen=True)
class OpProblem:
    """One node whose op is unsupported or denied."""
    op: str
    node: str
    function: str | None
    status: str        # "unsupported" or "denied"
    reachable: bool

    def where(self) -> str:
        return f"function {self.function!r}" if self.function else "main graph"


@dataclass
class ScanReport:
    """The result of `scan_model`: problems, and every op the model uses."""
    export_dir: str
    tags: list
    problems: list = field(default_factory=list)
    ops: list = field(default_factory=list)        # every op used, sorted
    reachable_ops: list = field(default_factory=list)

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
    def ok(self) -> bool:
        return not self.unsupported and not self.denied

    def __str__(self):
        lines = [f"Scan of {self.export_dir} (tags {self.tags}): {len(self.ops)} ops used, "
                 f"{'all runnable' if self.ok else 'problems found'}."]
        for title, status in (("Unsupported", "unsupported"), ("Denied (IO)", "denied")):
            for reachable in (True, False):
                found = [p for p in self.problems if p.status == status and p.reachable == reachable]
                if found:
                    tail = "" if reachable else " (not reachable from any signature or init op)"
                    lines.append(f"{title}{tail}:")
                    by_op = {}
                    for p in found:
                        by_op.setdefault(p.op, []).append(p)
                    for op, uses in sorted(by_op.items()):
                        first = uses[0]
                        more = f" and {len(uses) - 1} more" if len(uses) > 1 else ""
                        lines.append(f"  {op}: node {first.node!r} in {first.where()}{more}")
        return "\n".join(lines)

    __repr__ = __str__


def function_refs(node, library_names) -> list:
    """Names of the functions a NodeDef may call: its op, and every function its attrs name.

    That includes the functions inside a func attr's own attrs: a called function
    can pass them on through a ``placeholder`` attr (``f: $body``), so they run too.
    """
    names = [node.op] if node.op in library_names else []
    for value in node.attr.values():
        names.extend(attr_function_names(value))
    return names


def attr_function_names(value) -> list:
    """Function names in an AttrValue: func values and func lists, nested attrs included."""
    pending, names = [value], []
    while pending:
        current = pending.pop()
        kind = current.WhichOneof("value")
        funcs = [current.func] if kind == "func" else list(current.list.func) if kind == "list" else []
        for func in funcs:
            names.append(func.name)
            pending.extend(func.attr.values())
    return names


def _node_name(tensor_name: str) -> str:
    """``^node``, ``node:1`` or ``node`` -> ``node`` (node names hold no ``:``)."""
    return tensor_name.lstrip("^").partition(":")[0]


def root_nodes(meta_graph, include_restore=True) -> list:
    """Main-graph node names signatures, init ops and the restore op start from."""
    roots = []
    for sig in meta_graph.signature_def.values():
        roots.extend(_node_name(t.name) for t in sig.outputs.values() if t.name)
        roots.extend(_node_name(c.name) for t in sig.outputs.values()
                     for c in t.composite_tensor.components if c.name)
    for key in MAIN_OP_COLLECTIONS:
        if key in meta_graph.collection_def:
            roots.extend(_node_name(n) for n in meta_graph.collection_def[key].node_list.value)
    saver = meta_graph.saver_def
    if include_restore and saver.restore_op_name and not meta_graph.object_graph_def.nodes:
        roots.append(_node_name(saver.restore_op_name))
    return roots


def reachable(meta_graph, roots) -> tuple[set, set]:
    """``(main-graph node names, function names)`` that running ``roots`` may touch."""
    graph = meta_graph.graph_def
    nodes = {n.name: n for n in graph.node}
    library = {f.signature.name: f for f in graph.library.function}
    seen_nodes, seen_functions = set(), set()
    stack = [r for r in roots if r in nodes]
    functions = []
    while stack:
        name = stack.pop()
        if name in seen_nodes:
            continue
        seen_nodes.add(name)
        node = nodes[name]
        functions.extend(function_refs(node, library))
        for text in node.input:
            source = _node_name(text)
            if source in nodes:
                stack.append(source)
    while functions:
        name = functions.pop()
        if name in seen_functions or name not in library:
            continue
        seen_functions.add(name)
        for node in library[name].node_def:
            functions.extend(function_refs(node, library))
    return seen_nodes, seen_functions


def problem_status(op: str, library_names=()) -> str | None:
    """"denied", "unsupported" or None for an op name."""
    kern = KERNELS.get(op)
    if op in opdefs.ops_with("io"):
        return "denied"
    if kern is None and op not in library_names:
        return "unsupported"
    return None


def scan_meta_graph(meta_graph, export_dir="", tags=()) -> ScanReport:
    """Check every node of one metagraph (graph and functions)."""
    from . import ops  # noqa: F401  (registers every kernel)

    graph = meta_graph.graph_def
    library = {f.signature.name for f in graph.library.function}
    live_nodes, live_functions = reachable(meta_graph, root_nodes(meta_graph))
    report = ScanReport(str(export_dir), sorted(tags))
    used, used_live = set(), set()

    def check(node, function, live):
        used.add(node.op)
        if live:
            used_live.add(node.op)
        status = problem_status(node.op, library)
        if status:
            report.problems.append(OpProblem(node.op, node.name, function, status, live))

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
    """Scan the metagraph ``load(export_dir, tags)`` would pick; runs nothing."""
    from ..format.savedmodel import read_saved_model
    from ..tags import select_meta_graph

    saved_model = read_saved_model(export_dir)
    _, meta_graph = select_meta_graph(saved_model, tags, export_dir)
    return scan_meta_graph(meta_graph, export_dir, list(meta_graph.meta_info_def.tags))
