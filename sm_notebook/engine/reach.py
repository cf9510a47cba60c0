"""What a body can actually reach: branches with constant predicates, and which missing ops
refuse a plan, which refuse only a branch, and which can never run.

TensorFlow runs only the branch a predicate picks, so an op the engine lacks matters
only where it can run:

* a functional If/StatelessIf/Case whose predicate is constant (constant ops, and
  PlaceholderWithDefault nodes the caller does not feed) becomes a call of the branch
  it takes, inlined like any call; the other branches are gone (`fold_branches`);
* a node on a TF1 cond branch (Switch/Merge) is *guarded* by the Switch ports it needs
  to be live; a Switch whose predicate is constant kills one port for good, and what
  needs it never runs (`Support.never`); any other guard makes a missing op a refusal
  when the branch is taken (`Support.conditional`), raised by a stand-in kernel;
* If/Case branch functions (predicate not constant) are checked at plan time; a branch
  that needs a missing op makes the If refuse when it picks that branch;
* everything else a body needs is refused when the plan is compiled (`Support.refused`).

`check_support` is the one place that decides this; the planner (plan.py) raises on
``refused``, and `scan` reports the same `Support` without running anything but the
constant predicates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import opdefs
from .._proto import graph_pb2
from ..errors import SavedModelError, UnsupportedOpError
from .attrs import decode_node_attrs
from .functions import ARG_OP, Node, Ref
from .nodes import toposort
from .ops.control_flow_ops import truthy
from .ops.registry import KERNELS, FuncAttr, OpKernel

IF_OPS = frozenset({"If", "StatelessIf"})
CASE_OPS = frozenset({"Case", "StatelessCase"})
BRANCH_OPS = IF_OPS | CASE_OPS
SWITCH_OPS = ("Switch", "RefSwitch")
#: Largest constant (elements) the predicate evaluator computes; predicates are tiny.
STATIC_LIMIT = 1 << 16
_NOT_STATIC_FLAGS = frozenset({"placeholder", "stateful", "io", "v1_control_flow", "call",
                               "no_fold", "handle"})


@dataclass(frozen=True)
class Missing:
    """A node whose op the engine lacks: ``node`` is its full name in the plan, ``local``
    its name inside ``function`` (the same in the main graph); ``branch`` says when it
    runs (None: whenever the body runs)."""
    op: str
    node: str
    local: str
    function: str | None
    branch: str | None = None

    def where(self) -> str:
        inside = f" in function {self.function!r}" if self.function else " in the main graph"
        return f"node {self.node!r}{inside}"

    def key(self) -> tuple:
        return self.op, self.local, self.function


@dataclass
class Support:
    """Missing ops of one body, by when they would run."""
    refused: list = field(default_factory=list)      # whenever the body runs
    conditional: list = field(default_factory=list)  # only if a branch is taken
    never: list = field(default_factory=list)        # on branches constant predicates never take
    dead_nodes: set = field(default_factory=set)     # this body's nodes that never run

    def merge(self, other: "Support", branch: str | None = None) -> None:
        """Add ``other`` (a function this body runs); ``branch``: it runs only when that
        branch is taken, so its refusals become conditional."""
        if branch is not None:
            self.conditional += [_on_branch(m, branch) for m in other.refused + other.conditional]
        else:
            self.refused += other.refused
            self.conditional += other.conditional
        self.never += other.never


def _on_branch(missing: Missing, branch: str) -> Missing:
    text = branch if missing.branch is None else f"{branch}, then {missing.branch}"
    return Missing(missing.op, missing.node, missing.local, missing.function, text)


# --------------------------------------------------------------------------- constants

class StaticValues:
    """Values of tensors known before any call: constants and what pure supported ops
    compute from them; PlaceholderWithDefault passes its default when not fed."""

    def __init__(self, runtime, nodes, fed):
        self.runtime, self.nodes, self.fed = runtime, nodes, fed
        self._outputs: dict = {}

    def value(self, ref: Ref, depth: int = 0):
        """The value of ``ref`` or None when it is not known before a call."""
        if ref in self.fed or depth > 100:
            return None
        node = self.nodes.get(ref.node)
        if node is None:
            return None
        if ref.node not in self._outputs:
            self._outputs[ref.node] = self._evaluate(node, depth)
        outputs = self._outputs[ref.node]
        if outputs is None:
            return None
        index = ref.index
        if ref.arg is not None:
            try:
                index = _op_info(node.op, self.runtime.defaults).output_index(
                    self._attrs(node), ref.arg, ref.index)
            except (SavedModelError, AttributeError):
                return None
        return outputs[index] if 0 <= index < len(outputs) else None

    def _attrs(self, node):
        return decode_node_attrs(node.attr, node.op, self.runtime.defaults, node.func_attrs)

    def _evaluate(self, node: Node, depth: int):
        if node.op == "PlaceholderWithDefault":
            value = self.value(node.inputs[0], depth + 1) if node.inputs else None
            return None if value is None else [value]
        info = opdefs.get(node.op)
        kern = KERNELS.get(node.op)
        if kern is None or info is None or node.op == ARG_OP or info.flags & _NOT_STATIC_FLAGS:
            return None
        args = []
        for ref in node.inputs:
            value = self.value(ref, depth + 1)
            if value is None:
                return None
            args.append(value)
        try:
            attrs = self._attrs(node)
            outputs = list(kern.fn(self.runtime.ctx, args, attrs))
        except Exception:  # noqa: BLE001 - not static; the call reports it in context
            return None
        if any(int(np.prod(getattr(v, "shape", ()) or (1,))) > STATIC_LIMIT for v in outputs):
            return None
        return outputs


def _op_info(op, defaults):
    declared = defaults.op_info(op) if defaults is not None else None
    return declared if declared is not None else opdefs.get(op)


def branch_taken(ctx, node: Node, predicate):
    """The AttrValue (a func) of the branch ``predicate`` picks, or None when the branch
    attr is not a plain function (a placeholder of the enclosing function)."""
    if node.op in IF_OPS:
        value = node.attr.get("then_branch" if truthy(ctx, predicate) else "else_branch")
        return value if value is not None and value.WhichOneof("value") == "func" else None
    value = node.attr.get("branches")
    if value is None or value.WhichOneof("value") != "list" or not value.list.func:
        return None
    index = int(np.asarray(ctx.to_numpy(predicate)).reshape(()))
    funcs = value.list.func
    chosen = funcs[index] if 0 <= index < len(funcs) else funcs[-1]  # TF: out of range -> last
    return graph_pb2.AttrValue(func=chosen)


def fold_branches(runtime, nodes: dict, fed) -> dict:
    """Functional If/Case nodes whose predicate is constant, rewritten as calls of the
    branch they take (to be inlined): node name -> new Node. Empty when there are none."""
    values = None
    rewritten = {}
    for name, node in nodes.items():
        if node.op not in BRANCH_OPS or not node.inputs:
            continue
        values = values or StaticValues(runtime, nodes, fed)
        predicate = values.value(node.inputs[0])
        if predicate is None:
            continue
        try:
            chosen = branch_taken(runtime.ctx, node, predicate)
        except (TypeError, ValueError):
            continue
        if chosen is None:
            continue
        call = "PartitionedCall" if node.op.startswith("Stateless") else "StatefulPartitionedCall"
        rewritten[name] = Node(name, call, node.inputs[1:], node.controls, {"f": chosen},
                               node.function, node.func_attrs, node.depth, node.local)
    return rewritten


def static_switches(runtime, nodes: dict, fed) -> dict:
    """Switch node name -> the output port (0 or 1) its constant predicate never feeds."""
    values = None
    dead = {}
    for name, node in nodes.items():
        if node.op in SWITCH_OPS and len(node.inputs) == 2:
            values = values or StaticValues(runtime, nodes, fed)
            predicate = values.value(node.inputs[1])
            if predicate is not None:
                dead[name] = 0 if truthy(runtime.ctx, predicate) else 1
    return dead


# --------------------------------------------------------------------------- support

def _guards(pnodes: dict, fed) -> dict:
    """Node name -> the TF1 cond Switch ports ``(switch, port)`` it needs live (TF1 loop
    switches, whose predicate is a LoopCond, are not branches)."""
    guards: dict = {}
    empty = frozenset()

    def of(ref):
        source, port = ref
        found = guards.get(source, empty)
        producer = pnodes.get(source)
        if producer is not None and producer.op in SWITCH_OPS and _is_cond_switch(pnodes, producer):
            return found | {(source, port)}
        return found

    for p in toposort(pnodes, fed):
        # a loop Merge's NextIteration input comes later (a back edge): it adds nothing
        inputs = [of(r) for r in p.inputs if r[0] in guards or r[0] not in pnodes]
        if "takes_dead" in p.flags:
            data = frozenset.intersection(*inputs) if inputs else empty
        else:
            data = frozenset().union(*inputs)
        guards[p.name] = data.union(*(guards.get(c, empty) for c in p.controls))
    return guards


def _is_cond_switch(pnodes, switch) -> bool:
    source = pnodes.get(switch.inputs[1][0]) if len(switch.inputs) == 2 else None
    return source is None or source.op != "LoopCond"


def _predicate_name(pnodes, ref) -> str:
    """The tensor a predicate comes from, through identities."""
    source, index = ref
    while source in pnodes and "identity" in pnodes[source].flags and pnodes[source].inputs:
        source, index = pnodes[source].inputs[0]
    return f"{source}:{index}"


def _branch_text(pnodes, guard) -> str:
    parts = sorted({f"`{_predicate_name(pnodes, pnodes[switch].inputs[1])}` is {bool(port)}"
                    for switch, port in guard})
    return "the branch where " + " and ".join(parts)


def function_attrs(attrs: dict):
    """``(attr name, position or None, FuncAttr)`` for every function a node's attrs name."""
    for key, value in attrs.items():
        if isinstance(value, FuncAttr):
            yield key, None, value
        elif isinstance(value, list):
            for k, item in enumerate(value):
                if isinstance(item, FuncAttr):
                    yield key, k, item


def check_support(runtime, pnodes: dict, fed, missing: dict, dead_ports: dict) -> Support:
    """Sort the plan's missing ops (``missing``: node name -> `Missing`) by when they run,
    give guarded ones a stand-in kernel that refuses when it runs, and make If/Case nodes
    refuse a branch that needs a missing op (see the module docstring). Functions named
    by other nodes' attrs (While bodies, ...) count as run whenever their node runs."""
    support = Support()
    guards = _guards(pnodes, fed) if any(p.op in SWITCH_OPS for p in pnodes.values()) else {}
    for name, p in pnodes.items():
        guard = guards.get(name, frozenset())
        never = any(dead_ports.get(switch) == port for switch, port in guard)
        if never:
            support.dead_nodes.add(name)
        branch = _branch_text(pnodes, guard) if guard and not never else None
        if name in missing:
            found = Missing(**{**missing[name].__dict__, "branch": branch})
            kind = support.never if never else support.conditional if guard else support.refused
            kind.append(found)
            p.kernel = _refusing_kernel(found)
            continue
        funcs = list(function_attrs(p.attrs)) if p.kernel is not None and "call" in p.flags else []
        inners = [(key, position, runtime.function_support(func.name, func.attrs))
                  for key, position, func in funcs]
        if never:
            for _, _, inner in inners:
                support.never += inner.refused + inner.conditional + inner.never
        elif p.op in BRANCH_OPS:
            refused_branches = {}
            for key, position, inner in inners:
                label = _branch_label(pnodes, p, key, position)
                label = label if branch is None else f"{branch}, then {label}"
                support.merge(inner, label)
                if inner.refused:
                    refused_branches[(key, position)] = (label, inner.refused)
            if refused_branches:
                p.kernel = _refusing_branches(p, refused_branches)
        else:
            for _, _, inner in inners:
                support.merge(inner, branch)
                if branch is not None and inner.refused:  # a While (...) on a TF1 cond branch
                    first = inner.refused[0]
                    p.kernel = _refusing_kernel(Missing(first.op, first.node, first.local,
                                                        first.function, branch))
    return support


def prune_dead_nodes(pnodes: dict, dead: set, kept: set) -> dict:
    """``pnodes`` without the ``dead`` nodes (a TF1 cond branch its constant predicate never
    takes), except those in ``kept`` (fetched or run as targets: they stay, and are dead
    when the plan runs). A Merge input from a pruned node reads a constant dead tensor,
    so the Merge still reports which input was live."""
    from .nodes import PlanNode
    from .ops.control_flow_ops import DEAD

    dead = dead - kept
    if not dead:
        return pnodes
    kept_nodes = {n: p for n, p in pnodes.items() if n not in dead}
    marker = None
    for p in kept_nodes.values():
        if not any(s in dead for s, _ in p.inputs) and not any(c in dead for c in p.controls):
            continue
        if marker is None:
            marker = PlanNode("_smnb_dead_branch", "Const", [], [], {}, None, 1, value=[DEAD])
        p.inputs = [(marker.name, 0) if s in dead else (s, i) for s, i in p.inputs]
        p.controls = [c for c in p.controls if c not in dead]
    if marker is not None:
        kept_nodes[marker.name] = marker
    return kept_nodes


def _branch_label(pnodes, p, key, position) -> str:
    """``the branch of If node 'n' taken when `pred:0` is True``."""
    if key == "then_branch":
        value = "True"
    elif key == "else_branch":
        value = "False"
    else:
        value = str(position) + (" (or out of range)" if position == len(p.attrs[key]) - 1 else "")
    where = f" in function {p.function!r}" if p.function else ""
    predicate = _predicate_name(pnodes, p.inputs[0]) if p.inputs else "its predicate"
    return f"the branch of {p.op} node {p.name!r}{where} taken when `{predicate}` is {value}"


def refusal_text(missing: Missing) -> str:
    """Why a branch cannot run, and what to do."""
    branch = missing.branch[:1].upper() + missing.branch[1:]
    return (f"{branch} needs op {missing.op} ({missing.where()}), which sm_notebook's "
            f"engine does not run{library_note([missing.op])}. Call it so that it takes another "
            "branch (e.g. leave the predicate at its default), or run this model with TensorFlow.")


def refused_error(what: str, refused: list) -> UnsupportedOpError:
    """The error for a body that needs missing ops whenever it runs."""
    listed = "; ".join(f"{m.op} ({m.where()})" for m in refused[:10])
    more = f" and {len(refused) - 10} more" if len(refused) > 10 else ""
    return UnsupportedOpError(
        f"{what} needs ops sm_notebook's engine does not run: {listed}{more}"
        f"{library_note(m.op for m in refused)}. {len(KERNELS)} ops are supported (see "
        "sm_notebook.ops.supported_ops()); run `sm-notebook scan --dir DIR` to list every "
        "unsupported op of a model.", [m.op for m in refused])


def library_note(ops) -> str:
    """`` (X comes from tensorflow-text)``-style note for ops outside core TensorFlow."""
    from ..opdefs.extension_ops import library_of

    parts = []
    for op in sorted(set(ops)):
        library = library_of(op)
        if library is not None:
            parts.append(f"{op} comes from {library}")
    return f"; {'; '.join(parts)}" if parts else ""


def _refusing_kernel(missing: Missing) -> OpKernel:
    """A stand-in for a missing op's kernel: refuses when (if ever) it runs."""
    def prepare(node, ctx):
        def run(inputs):
            if missing.branch is None:
                raise refused_error("This plan", [missing])
            raise UnsupportedOpError(refusal_text(missing), [missing.op], missing.branch)
        return run
    return OpKernel(missing.op, prepare)


def _refusing_branches(p, refused: dict) -> OpKernel:
    """The If/Case kernel, refusing first when the predicate picks a refused branch."""
    original = p.kernel

    def prepare(node, ctx):
        run_original = original.prepare(node, ctx)
        branches = node.attrs.get("branches") or []

        def run(inputs):
            if p.op in IF_OPS:
                key = ("then_branch" if truthy(ctx, inputs[0]) else "else_branch", None)
            else:
                index = int(np.asarray(ctx.to_numpy(inputs[0])).reshape(()))
                key = ("branches", index if 0 <= index < len(branches) else len(branches) - 1)
            if key in refused:
                label, needs = refused[key]
                first = needs[0]
                raise UnsupportedOpError(refusal_text(Missing(first.op, first.node, first.local,
                                                              first.function, label)),
                                         [m.op for m in needs], label)
            return run_original(inputs)
        return run
    return OpKernel(original.op, prepare)
