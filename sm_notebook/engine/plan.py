"""A graph or function compiled once into a flat list of prepared steps, and the one loop
that runs them.

Compiling (`compile_plan`): inline function calls, prune to what the fetches and
targets need, bind kernels and decode attrs, collapse TF1 while loops (frames.py),
then, when optimising: fold constants (never stateful kernels, except resolving
variable handles and, when the model never writes variables, reading them), fold
per-channel scales into conv weights and fuse bias/activation epilogues into their
producer (fusion.py), drop pass-through Identity nodes. Finally every kernel is
prepared (``kernel.prepare(node, ctx) -> run``) and every tensor gets a slot.

``optimize=False`` compiles the plain plan: every node of the pruned graph is one step
running its own kernel's general path. It is the reference the optimised plan is tested
against, and the plan the debugger runs.

Running (`Plan.run`, `execute`): one loop over step tuples ``(run, input_slots,
first_output_slot, n_outputs, slots_to_free)``; a slot is freed once its last consumer
has run. The same loop serves signatures, function bodies, While bodies (with their
loop-invariant steps computed once), TF1 cond/while plans with dead tensors, and the
debugger (tracing and stopping). From its second run an optimised plan runs the same
steps compiled to straight-line code (`compile_steps`), which a same-run A/B benchmark
showed pays (about a fifth of a small model's call).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from .. import opdefs
from ..errors import SavedModelError, UnsupportedOpError
from .attrs import decode_node_attrs
from .blas import BLAS
from .context import check_output_count
from .functions import ARG_OP, Ref, inline_calls
from .fusion import fold_scales, fuse_epilogues
from .ops.control_flow_ops import DEAD
from .nodes import PlanNode, toposort
from .quiet import quiet, restore as restore_warnings
from .ops.registry import KERNELS, get_kernel
from .reach import (Missing, Support, check_support, fold_branches, prune_dead_nodes, refused_error,
                    static_switches)

#: Largest result (bytes) constant folding keeps; bigger ones are recomputed per call.
FOLD_LIMIT_BYTES = 512 * 2**20
#: Internal node ops, defined here rather than by TensorFlow.
READ_REF_OP = "_SmnbReadRef"
V1_LOOP_OP = "_V1Loop"


class StopExecution(BaseException):
    """Raised by the debugger after the requested node; passes through every handler."""


@dataclass
class StepInfo:
    """What a step is, for errors and traces."""
    name: str
    op: str
    function: str | None
    fused: tuple = ()

    def where(self) -> str:
        return f" in function {self.function!r}" if self.function else ""


# --------------------------------------------------------------------------- compiling

def compile_plan(runtime, nodes: dict, feeds: list, fetches: list, targets=(), *,
                 name: str = "graph", bindings: dict | None = None, freeze: bool = False) -> "Plan":
    """Compile a body for one set of feeds (Refs), fetches (Refs) and targets (names).

    ``runtime`` supplies ``ctx``, ``library``, ``defaults``, ``allow_io`` and
    ``optimize``; ``bindings`` maps node names to values that replace those nodes
    (captured variables); ``freeze`` lets variable reads be folded. Ops the engine lacks
    are refused here unless only a branch needs them (reach.py).
    """
    bound = bind_body(runtime, nodes, feeds, fetches, targets, bindings or {})
    if bound.support.refused:
        raise refused_error(name[0].upper() + name[1:], bound.support.refused)
    pnodes, feeds, fetches, targets = bound.pnodes, bound.feeds, bound.fetches, bound.targets
    if any("v1_control_flow" in p.flags and p.op in ("Enter", "RefEnter") for p in pnodes.values()):
        from .frames import collapse_loops
        pnodes, moved, exits = collapse_loops(pnodes, set(feeds),
                                              lambda *a, **k: assemble(runtime, *a, **k),
                                              runtime)
        fetches = [_follow(exits, moved, f) for f in fetches]
        targets = [_follow_control(moved, t) for t in targets]
    dead = any(p.op in ("Switch", "RefSwitch") for p in pnodes.values())
    plan = assemble(runtime, pnodes, feeds, fetches, targets, name=name, dead=dead, freeze=freeze)
    plan.support = bound.support
    return plan


@dataclass
class BoundBody:
    """A body inlined, pruned to its fetches and bound (`bind_body`)."""
    pnodes: dict
    feeds: list      # (node, index)
    fetches: list    # (node, flat index)
    targets: list
    support: Support


def bind_body(runtime, nodes: dict, feeds: list, fetches: list, targets=(),
              bindings: dict | None = None) -> BoundBody:
    """Inline calls (If/Case with a constant predicate become calls of their branch),
    prune to what the fetches and targets need, bind kernels, and sort the ops the engine
    lacks by when they would run (`reach.check_support`); `scan` shares this."""
    fed = frozenset(feeds)
    library = runtime.library
    roots = [f.node for f in fetches if f not in fed] + list(targets)
    nodes, redirect_ref, redirect_control = inline_calls(nodes, roots, library, fed)
    while folded := fold_branches(runtime, nodes, fed):
        nodes = {**nodes, **folded}
        roots = [redirect_ref(f).node for f in fetches if f not in fed] + \
            [redirect_control(t) for t in targets]
        nodes, again_ref, again_control = inline_calls(nodes, roots, library, fed)
        redirect_ref = _chain(redirect_ref, again_ref)
        redirect_control = _chain(redirect_control, again_control)
    fetches = [redirect_ref(f) for f in fetches]
    targets = [redirect_control(t) for t in targets]
    needed = {n: nodes[n] for n in _reachable(nodes, [f for f in fetches if f not in fed],
                                               targets, fed)}
    dead_ports = static_switches(runtime, needed, fed)
    pnodes, missing = _bind(runtime, needed, fed, bindings or {}, fetches)
    support = check_support(runtime, pnodes, fed, missing, dead_ports)
    flat_fetches = [_flat(pnodes, f, fed, runtime.defaults) for f in fetches]
    pnodes = prune_dead_nodes(pnodes, support.dead_nodes, {s for s, _ in flat_fetches} | set(targets))
    return BoundBody(pnodes, [(f.node, f.index) for f in feeds], flat_fetches, targets, support)


def _chain(first, then):
    return lambda x: then(first(x))


def _follow(exits: dict, moved: dict, ref: tuple) -> tuple:
    """Where a fetched tensor went when its frame became a loop node."""
    while ref[0] in exits or ref[0] in moved:
        if ref[0] not in exits:
            raise SavedModelError(f"Tensor {ref[0]}:{ref[1]} lies inside a TF1 while loop; "
                                  "only the loop's Exit outputs can be fetched.")
        ref = exits[ref[0]]
    return ref


def _follow_control(moved: dict, name: str) -> str:
    while name in moved:
        name = moved[name]
    return name


def _reachable(nodes: dict, fetches, targets, fed) -> list:
    """Names of the nodes the fetches and targets need, in graph order."""
    seen = set()
    fed_nodes = {f.node for f in fed}  # control edges to fed nodes need nothing run
    stack = [f.node for f in fetches] + list(targets)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        node = nodes.get(name)
        if node is None:
            raise SavedModelError(f"The graph refers to node {name!r}, which does not exist.")
        seen.add(name)
        stack.extend(r.node for r in node.inputs if r not in fed)
        stack.extend(c for c in node.controls if c not in fed_nodes)
    return [n for n in nodes if n in seen]


def op_info(op: str, defaults=None):
    """The op's definition: the model's own OpDef first, then the op table."""
    declared = defaults.op_info(op) if defaults is not None else None
    return declared if declared is not None else opdefs.get(op)


def _bind(runtime, nodes: dict, fed, bindings: dict, fetches=()) -> tuple[dict, dict]:
    """PlanNodes (kernels looked up, IO refused, attrs decoded, inputs made flat), and
    the nodes whose op has no kernel: name -> `Missing` (their kernel is set by
    `check_support`)."""
    pnodes, missing = {}, {}
    consumed = None  # node -> outputs its consumers use, for missing ops without an OpDef
    for node in nodes.values():
        where = f" in function {node.function!r}" if node.function else ""
        if node.name in bindings:
            pnodes[node.name] = PlanNode(node.name, node.op, [], [], {}, None, 1, node.function,
                                         value=[bindings[node.name]])
            continue
        if node.op == ARG_OP:
            raise SavedModelError(f"Argument {node.name!r}{where} is used but was not passed.")
        table = opdefs.get(node.op)
        flags = table.flags if table is not None else frozenset()
        if "anonymous_handle" in flags and node.function is None:
            flags = flags | {"handle"}  # a restored resource: created once, then shared
        _refuse_io(runtime, node.op, node.name, node.function, flags)
        kernel = KERNELS.get(node.op)
        attrs = decode_node_attrs(node.attr, node.op, runtime.defaults, node.func_attrs,
                                  where=f" (node {node.name!r}{where})")
        if kernel is None:
            missing[node.name] = Missing(node.op, node.name, node.local or node.name, node.function)
            if consumed is None:
                consumed = _outputs_used(nodes, fetches)
            n_out = _missing_output_count(node, attrs, runtime.defaults, consumed,
                                          runtime.ctx.memory_cap)
        else:
            if "handle" in flags and not attrs.get("shared_name"):
                attrs["shared_name"] = node.name  # TensorFlow's rule for unnamed variables
            n_out = _output_count(node, attrs, runtime.defaults, runtime.ctx.memory_cap)
        controls = [c for c in node.controls if c in nodes]  # not fed-only nodes
        pnodes[node.name] = PlanNode(node.name, node.op, list(node.inputs), controls,
                                     attrs, kernel, n_out, node.function, flags=flags)
    for pnode in list(pnodes.values()):
        pnode.inputs = [_input(runtime, pnodes, pnode, r, fed) for r in pnode.inputs]
    return pnodes, missing


def _outputs_used(nodes: dict, fetches) -> dict:
    """Node name -> 1 + the highest output index its consumers and the fetches read."""
    used: dict = {}
    for ref in [r for node in nodes.values() for r in node.inputs] + list(fetches):
        used[ref.node] = max(used.get(ref.node, 1), ref.index + 1)
    return used


def _missing_output_count(node, attrs, defaults, consumed: dict, memory_cap) -> int:
    """Outputs of a node without a kernel: from its OpDef when there is one (the model's
    stripped_op_list names extension ops too), else as many as its consumers use."""
    if op_info(node.op, defaults) is not None:
        try:
            return _output_count(node, attrs, defaults, memory_cap)
        except SavedModelError:
            pass
    count = consumed.get(node.name, 1)
    check_output_count(count, f"Op {node.op} (node {node.name!r})", memory_cap)
    return count


def _output_count(node, attrs, defaults, memory_cap=None) -> int:
    """How many outputs the node has, from its OpDef; refused before anything is built
    per output when the sizing attrs are missing or the count is absurd."""
    where = f" (node {node.name!r}{' in function ' + repr(node.function) if node.function else ''})"
    info = op_info(node.op, defaults)
    if info is None:  # a kernel without a definition: tests/unit/test_engine_op_table.py
        raise SavedModelError(f"Op {node.op}{where} has no OpDef in the model or the op table; "
                              "its outputs cannot be counted.")
    try:
        count = info.n_outputs(attrs)
    except SavedModelError as exc:
        raise SavedModelError(f"{exc}{where}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SavedModelError(f"Op {node.op}{where}: its output count cannot be read from its "
                              f"attributes ({exc}).") from None
    check_output_count(count, f"Op {node.op}{where}", memory_cap)
    return count


def _refuse_io(runtime, op, node, function, flags):
    if runtime.allow_io or "io" not in flags:
        return
    where = f" in function {function!r}" if function else " in the main graph"
    raise SavedModelError(
        f"Op {op!r} (node {node!r}{where}) reads or writes files or runs code outside the "
        "model, and is refused before anything runs. Load with allow_io=True only if you "
        "trust this model.")


def _flat(pnodes: dict, ref: Ref, fed, defaults=None) -> tuple:
    """A Ref as ``(node, flat output index)``, checked against the producer's outputs.

    ``node:out_arg:index`` is resolved with the producer's OpDef (the model's own when it
    has one, else the op table), never guessed.
    """
    if ref in fed:
        return ref.node, ref.index
    src = pnodes[ref.node]
    index = ref.index
    if ref.arg is not None and src.value is None and op_info(src.op, defaults) is not None:
        index = op_info(src.op, defaults).output_index(src.attrs, ref.arg, ref.index)
    if index >= src.n_out:
        raise SavedModelError(
            f"Tensor {ref} asks for output {index} of node {src.name!r} ({src.op}), "
            f"which has {src.n_out} outputs.")
    return src.name, index


def _input(runtime, pnodes: dict, consumer: PlanNode, ref: Ref, fed) -> tuple:
    flat = _flat(pnodes, ref, fed, runtime.defaults)
    src = pnodes.get(flat[0])
    if src is not None and "ref_variable" in src.flags and "ref_consumer" not in consumer.flags:
        read_name = src.name + "/_read"
        if read_name not in pnodes:
            kernel = get_kernel(READ_REF_OP, read_name)
            pnodes[read_name] = PlanNode(read_name, READ_REF_OP, [flat], [], {}, kernel, 1,
                                         src.function, flags=opdefs.require(READ_REF_OP).flags)
        return read_name, 0
    return flat


def assemble(runtime, pnodes: dict, feeds: list, fetches: list, targets=(), *, name="graph",
             dead=False, freeze=False, allow_dead_fetch=False) -> "Plan":
    """Order, (optimise,) prune, prepare and lay out bound PlanNodes as a `Plan`."""
    fed = set(feeds)
    order = toposort(pnodes, fed)
    optimize = runtime.optimize
    if optimize:
        _fold(runtime, order, fed, freeze)
    else:
        _fold(runtime, [p for p in order if "handle" in p.flags], fed, False)
    if optimize and not dead:
        scaled = fold_scales(runtime.ctx, order, pnodes, fetches)
        fetches = [_resolve(scaled, f) for f in fetches]
        for p in order:
            p.inputs = [_resolve(scaled, r) for r in p.inputs]
    live = {p.name: p for p in order if p.value is None}
    needed = _needed(live, fetches, targets, fed)
    order = [p for p in order if p.name in needed]
    if optimize and not dead:
        # Without dead tensors, control edges only order and select nodes; both are now
        # fixed, so pass-through nodes can go.
        alias = _elide(order)
        fetches = [_resolve(alias, f) for f in fetches]
        order = [p for p in order if p.op != "NoOp" and (p.name, 0) not in alias]
        for p in order:
            p.inputs = [_resolve(alias, r) for r in p.inputs]
        if runtime.ctx.is_numpy:
            order, alias = fuse_epilogues(runtime.ctx, order, pnodes, fetches, targets)
            fetches = [_resolve(alias, f) for f in fetches]
            for p in order:
                p.inputs = [_resolve(alias, r) for r in p.inputs]
    for p in order:
        p.prepare(runtime.ctx)
    return Plan(name, order, pnodes, feeds, fetches, dead, allow_dead_fetch, optimize)


def _foldable(p: PlanNode, freeze: bool) -> bool:
    if p.kernel is None or p.op in (ARG_OP, "Placeholder") or "v1_control_flow" in p.flags \
            or "io" in p.flags or "placeholder" in p.flags:
        return False
    if "stateful" in p.flags:
        return "handle" in p.flags or (freeze and "variable_read" in p.flags)
    return True


def _fold(runtime, order: list, fed, freeze: bool) -> None:
    """Run, at plan time, every node whose inputs are all known (``p.value`` set)."""
    ctx = runtime.ctx
    known = {p.name: p for p in order if p.value is not None}
    with np.errstate(all="ignore"):
        for p in order:
            if p.value is not None or not _foldable(p, freeze):
                continue
            if any((s, i) in fed or s not in known for s, i in p.inputs):
                continue
            if any(c not in known for c in p.controls):
                continue
            args = [known[s].value[i] for s, i in p.inputs]
            try:
                outputs = list(p.prepare(ctx)(args))
            except Exception:  # noqa: BLE001 - left for run time, where it fails in context
                continue
            if len(outputs) != p.n_out or _nbytes(outputs) > FOLD_LIMIT_BYTES:
                continue
            for value in outputs:
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False  # shared by every call: kernels must not write
            p.value = outputs
            known[p.name] = p


def _nbytes(values) -> int:
    return sum(v.nbytes if isinstance(v, np.ndarray) else getattr(v, "nbytes", 0) for v in values)


def _elide(order: list) -> dict:
    """Map ``(identity node, i)`` to the tensor it passes on."""
    alias = {}
    for p in order:
        if "identity" in p.flags:
            for i, ref in enumerate(p.inputs):
                alias[(p.name, i)] = _resolve(alias, ref)
    return alias


def _resolve(alias: dict, ref: tuple) -> tuple:
    return alias.get(ref, ref)


def _needed(live: dict, fetches, targets, fed) -> set:
    seen = set()
    stack = [s for s, i in fetches if (s, i) not in fed] + list(targets)
    while stack:
        n = stack.pop()
        if n in seen or n not in live:
            continue
        seen.add(n)
        p = live[n]
        stack.extend(s for s, i in p.inputs if (s, i) not in fed)
        stack.extend(p.controls)
    return seen


# --------------------------------------------------------------------------- debugging

@dataclass
class TraceRecord:
    """One node run under the debugger."""
    index: int
    depth: int
    name: str
    op: str
    function: str | None
    inputs: list
    outputs: list

    def __str__(self):
        indent = "  " * self.depth
        where = f"  [{self.function}]" if self.function else ""
        return (f"[{self.index:4d}] {indent}{self.name} ({self.op}){where}: "
                f"{_summaries(self.inputs)} -> {_summaries(self.outputs)}")


def describe_value(value) -> str:
    """``float32[2,3]``-style summary of a tensor, or the type of an engine object."""
    if value is DEAD:
        return "dead"
    if not isinstance(value, (np.ndarray, np.generic)) and not hasattr(value, "__array_namespace__"):
        return type(value).__name__
    name = str(value.dtype).rsplit(".", 1)[-1]
    name = "string" if name == "object" else name
    return f"{name}[{','.join(str(d) for d in value.shape)}]"


def _summaries(values) -> str:
    return "(" + ", ".join(describe_value(v) for v in values) + ")"


@dataclass
class Debugger:
    """Notebook debugging switches for one call.

    ``trace``: print each node's inputs/outputs (True), or call ``trace(record)``.
    ``stop_after``: a node name, or the index of a traced step; execution stops
    right after it. ``keep``: keep every node's outputs in ``values``.
    """
    trace: object = False
    stop_after: object = None
    keep: bool = True
    records: list = field(default_factory=list)
    values: dict = field(default_factory=dict)
    stopped_at: str | None = None
    depth: int = 0

    def record(self, info: StepInfo, inputs, outputs):
        rec = TraceRecord(len(self.records), self.depth, info.name, " + ".join((info.op,) + info.fused),
                          info.function, list(inputs), list(outputs))
        self.records.append(rec)
        if self.keep:
            self.values[info.name] = list(outputs)
        if self.trace is True:
            print(rec)
        elif callable(self.trace):
            self.trace(rec)
        if self.stop_after is not None and (self.stop_after == info.name or self.stop_after == rec.index):
            self.stopped_at = info.name
            raise StopExecution()

    def check_target(self, known_names) -> None:
        """Refuse a ``stop_after`` node name that is not among ``known_names``, naming the
        nearest ones (a silent run to the end would look like success)."""
        if not isinstance(self.stop_after, str) or self.stop_after in known_names:
            return
        near = difflib.get_close_matches(self.stop_after, list(known_names), n=5, cutoff=0.5)
        hint = f" Near names: {', '.join(map(repr, near))}." if near else ""
        raise SavedModelError(
            f"stop_after={self.stop_after!r} names no node this signature can run.{hint} "
            "Use a node name from the trace (debug(trace=True)) or a step index.")


# --------------------------------------------------------------------------- running

class Plan:
    """Prepared steps of one body; `run` calls `execute`, the one step loop."""

    def __init__(self, name, steps: list, pnodes: dict, feeds, fetches, dead, allow_dead_fetch,
                 optimized=True):
        self.name = name
        self.support: Support | None = None  # missing ops by when they run (compile_plan)
        self.dead = dead
        self.optimized = optimized
        self.allow_dead_fetch = allow_dead_fetch
        slot_of = {}
        template = []

        def new_slot(key, value=None):
            slot_of[key] = len(template)
            template.append(value)
            return slot_of[key]

        self.feed_slots = tuple(new_slot(f) for f in feeds)
        step_index = {p.name: k for k, p in enumerate(steps)}
        for p in steps:
            for i in range(p.n_out):
                new_slot((p.name, i))
            if dead and p.n_out == 0:
                new_slot((p.name, 0))  # liveness marker for control edges

        def slot(ref):
            found = slot_of.get(ref)
            if found is None:
                src, index = ref
                producer = pnodes.get(src)
                if producer is None or producer.value is None:
                    raise SavedModelError(f"Internal error: no value for tensor {src}:{index}.")
                found = new_slot(ref, producer.value[index])
            return found

        last_use = {}
        built, dead_info = [], []
        for k, p in enumerate(steps):
            ins = tuple(slot(r) for r in p.inputs)
            controls = tuple(self._control_slots(p, step_index, steps, slot_of)) if dead else ()
            for s in ins:
                last_use[s] = k
            for group in controls:
                for s in group:
                    last_use[s] = k
            out = slot_of[(p.name, 0)] if (p.n_out or dead) else -1
            built.append([p.run, ins, out, p.n_out, ()])
            dead_info.append((controls, "takes_dead" in p.flags))
        self.fetch_slots = tuple(slot(f) for f in fetches)
        self.constant_fetches = frozenset(
            k for k, s in enumerate(self.fetch_slots) if template[s] is not None)
        keep = set(self.fetch_slots)
        frees = {}
        for s, k in last_use.items():
            if s not in keep and template[s] is None:
                frees.setdefault(k, []).append(s)
        for k, step in enumerate(built):
            step[4] = tuple(frees.get(k, ()))
        self.template = template
        self.steps = [tuple(s) for s in built]
        self.dead_info = dead_info if dead else None
        self.info = [StepInfo(p.name, p.op, p.function, p.fused) for p in steps]
        self.step_kinds = [_step_kind(p) for p in steps]
        #: whether a step has side effects (a stateful kernel other than a variable read)
        self.has_effects = "effect" in self.step_kinds
        self.all_steps = range(len(self.steps))
        self._hoisting: dict = {}
        self._compiled = None  # compile_steps' function after the first run (False: none)

    @staticmethod
    def _control_slots(p, step_index, steps, slot_of):
        groups = []
        for c in p.controls:
            if c in step_index:
                src = steps[step_index[c]]
                groups.append(tuple(slot_of[(c, i)] for i in range(max(src.n_out, 1))))
        return groups

    def __len__(self):
        return len(self.steps)

    def __repr__(self):
        kind = "" if self.optimized else ", unoptimised"
        return f"<Plan {self.name}: {len(self.steps)} steps, {len(self.template)} slots{kind}>"

    def describe(self) -> str:
        """One line per step: index, node, op and function."""
        return "\n".join(f"[{k:4d}] {i.name} ({' + '.join((i.op,) + i.fused)}){i.where()}"
                         for k, i in enumerate(self.info))

    def run(self, args, debugger: Debugger | None = None) -> list:
        """Feed ``args`` (in feed order), run every step, return the fetches; numpy's
        floating-point warnings are off meanwhile (kernels run inside `run` only)."""
        token = quiet()
        try:
            return self.execute(args, debugger)
        finally:
            BLAS.restore()
            restore_warnings(token)

    def execute(self, args, debugger: Debugger | None = None) -> list:
        """Fill the slots, run every step (`execute_steps`), collect the fetches. From the
        second run on, an optimised plan without dead tensors or debugger runs its steps
        compiled to straight-line code (`compile_steps`): the same steps, in the same order."""
        compiled = self._compiled
        if compiled and debugger is None and len(args) == len(self.feed_slots):
            return compiled(args)
        if compiled is None and debugger is None:
            self._compiled = False if (self.dead or not self.optimized) else compile_steps(
                self, range(len(self.steps))) or False
        slots = self.fill(args)
        execute_steps(self.steps, slots, self.info, self.dead_info, debugger)
        return self.collect(slots)

    def fill(self, args, template=None) -> list:
        slots = (self.template if template is None else template).copy()
        for s, value in zip(self.feed_slots, args):
            slots[s] = value
        return slots

    def collect(self, slots) -> list:
        results = [slots[i] for i in self.fetch_slots]
        if self.dead and not self.allow_dead_fetch and any(r is DEAD for r in results):
            raise SavedModelError(
                f"{self.name}: an output lies on a branch of a TF1 cond that was not taken, so it "
                "has no value (TensorFlow raises the same).")
        return results

    def loop_body(self, cond_effects: bool = False) -> "LoopBody":
        """A runner of this plan as a While body that computes loop-invariant steps once;
        ``cond_effects``: the loop's cond has side effects (then variable reads stay)."""
        if self.dead or not self.optimized or len(self.feed_slots) != len(self.fetch_slots):
            return LoopBody(self, ())
        invariant = frozenset(k for k, (feed, fetch) in enumerate(zip(self.feed_slots, self.fetch_slots))
                              if feed == fetch)
        key = (invariant, cond_effects)
        hoisted = self._hoisting.get(key)
        if hoisted is None:
            hoisted = self._hoisting[key] = self._invariant_steps(invariant, cond_effects)
        return LoopBody(self, hoisted)

    def compiled_rest(self, hoisted: tuple, preset: tuple):
        """`compile_steps` of the steps not in ``hoisted`` (built once per hoisted set)."""
        key = ("compiled", hoisted)
        if key not in self._hoisting:
            skip = set(hoisted)
            self._hoisting[key] = compile_steps(self, (k for k in self.all_steps if k not in skip),
                                                preset)
        return self._hoisting[key]

    def _invariant_steps(self, invariant, cond_effects) -> tuple:
        """Indices of the steps that only depend on loop-invariant feeds and constants, in
        order; variable reads among them only when nothing in the loop has side effects."""
        movable = {"pure"} if cond_effects or self.has_effects else {"pure", "read"}
        known = {self.feed_slots[k] for k in invariant}
        known.update(s for s, v in enumerate(self.template) if v is not None)
        hoisted = []
        for k, (run, ins, out, n, free) in enumerate(self.steps):
            if self.step_kinds[k] in movable and n and all(i in known for i in ins):
                hoisted.append(k)
                known.update(range(out, out + n))
        return tuple(hoisted)


def execute_steps(steps, slots, info, dead_info=None, debugger: Debugger | None = None) -> None:
    """The step loop: run ``(run, input_slots, first_output_slot, n_outputs, slots_to_free)``
    steps over ``slots`` in place. ``dead_info`` (TF1 cond/while plans): per step, its
    control-input slot groups and whether dead inputs leave it alive. ``debugger``: traces
    each step and may stop after one. A failure is raised naming the step's node."""
    k = -1
    try:
        for k, (run, ins, out, n, free) in enumerate(steps):
            inputs = [slots[i] for i in ins]
            if dead_info is not None and _is_dead(dead_info[k], slots, inputs):
                outs = [DEAD] * max(n, 1)
            else:
                outs = run(inputs)
                if len(outs) != n:
                    raise _arity_error(n, outs)
                if n == 0 and dead_info is not None:
                    outs = [True]
            if n == 1:
                slots[out] = outs[0]
            elif out >= 0:
                slots[out:out + len(outs)] = outs
            if debugger is not None:
                debugger.record(info[k], inputs, outs[:n])
            for i in free:
                slots[i] = None
    except Exception as exc:  # noqa: BLE001 - re-raised with the node's name
        if k < 0 or isinstance(exc, UnsupportedOpError):  # names its node already
            raise
        where = info[k]
        raise SavedModelError(f"Node {where.name!r} ({where.op}){where.where()} failed: {exc}") from exc


def _is_dead(dead_info, slots, inputs) -> bool:
    controls, takes_dead = dead_info
    if any(all(slots[s] is DEAD for s in group) for group in controls):
        return True
    return not takes_dead and any(x is DEAD for x in inputs)


def _step_kind(p: PlanNode) -> str:
    """'pure', 'read' (a variable read), 'private' (state private to the call: never
    hoisted, no lock) or 'effect' (any other stateful kernel)."""
    if "stateful" not in p.flags:
        return "pure"
    if "call_private" in p.flags:
        return "private"
    return "read" if "variable_read" in p.flags else "effect"


class LoopBody:
    """Runs a body plan once per loop iteration; the loop-invariant steps (their inputs are
    loop variables the body passes through unchanged, or constants) run in the first
    iteration only, and later iterations start from their results. One per While run."""

    def __init__(self, plan: Plan, hoisted: tuple):
        self.plan = plan
        self.hoisted = hoisted
        self.template = None  # plan.template plus the hoisted results, after iteration one

    def run(self, args) -> list:
        plan = self.plan
        if not self.hoisted:
            return plan.execute(args)
        if self.template is not None:
            if self.compiled:
                return self.compiled(args, self.preset)
            slots = plan.fill(args, self.template)
            execute_steps(self.steps, slots, self.info)
            return plan.collect(slots)
        hoisted = set(self.hoisted)
        rest = [k for k in plan.all_steps if k not in hoisted]
        self.steps = [plan.steps[k] for k in rest]
        self.info = [plan.info[k] for k in rest]
        # Hoisted steps free nothing: later steps of the body may still read their inputs.
        first_steps = [plan.steps[k][:4] + ((),) for k in self.hoisted]
        slots = plan.fill(args)
        execute_steps(first_steps, slots, [plan.info[k] for k in self.hoisted])
        template = plan.template.copy()
        for k in self.hoisted:
            out, n = plan.steps[k][2], plan.steps[k][3]
            template[out:out + n] = slots[out:out + n]
        self.template = template
        preset_slots = tuple(s for k in self.hoisted
                             for s in range(plan.steps[k][2], plan.steps[k][2] + plan.steps[k][3]))
        self.preset = [slots[s] for s in preset_slots]
        self.compiled = plan.compiled_rest(self.hoisted, preset_slots)
        execute_steps(self.steps, slots, self.info)
        return plan.collect(slots)


#: Plans with more steps are not compiled (compiling takes about 30 us a step).
COMPILE_LIMIT = 2000


def compile_steps(plan: Plan, indexes, preset: tuple = ()):
    """The steps ``indexes`` of ``plan`` as one Python function of straight-line code:
    ``run(args) -> fetches`` (``run(args, values)`` with ``preset``: slots computed
    beforehand, a While body's hoisted steps). Slots become local variables, deleted after
    their last use; kernels and constants become globals. It does exactly what
    `execute_steps` does without its per-step bookkeeping (a benchmark on this project's
    machine showed the bookkeeping costs about a fifth of a small model's call). None when
    a step reads a slot nothing sets or the plan is too large."""
    indexes = list(indexes)
    if plan.dead or len(indexes) > COMPILE_LIMIT:
        return None
    template = plan.template
    names = {"_arity_error": _arity_error, "_failed": _failed, "_info": plan.info}
    lines = ["def run(args, preset):" if preset else "def run(args):"]
    local = set()
    for j, slot in enumerate(plan.feed_slots):
        lines.append(f"    s{slot} = args[{j}]")
        local.add(slot)
    for j, slot in enumerate(preset):
        lines.append(f"    s{slot} = preset[{j}]")
        local.add(slot)

    def ref(slot):
        if slot in local:
            return f"s{slot}"
        if template[slot] is not None:
            names[f"K{slot}"] = template[slot]
            return f"K{slot}"
        raise LookupError(slot)

    body = ["        k = -1"]
    try:
        for k in indexes:
            run, ins, out, n, free = plan.steps[k]
            names[f"R{k}"] = run
            body.append(f"        k = {k}")
            body.append(f"        r = R{k}([{', '.join(ref(i) for i in ins)}])")
            body.append(f"        if len(r) != {n}:")
            body.append(f"            raise _arity_error({n}, r)")
            if n:
                targets = [f"s{i}" for i in range(out, out + n)]
                body.append(f"        {', '.join(targets)}{',' if n == 1 else ''} = r")
                local.update(range(out, out + n))
            gone = [f"s{i}" for i in free if i in local]
            if gone:
                body.append(f"        del {', '.join(gone)}")
                local.difference_update(free)
        fetched = ", ".join(ref(slot) for slot in plan.fetch_slots)
    except LookupError:
        return None
    lines += ["    try:", *body, "    except Exception as exc:",
              "        raise _failed(_info, k, exc) from exc", f"    return [{fetched}]"]
    exec(compile("\n".join(lines), f"<plan {plan.name}>", "exec"), names)  # noqa: S102
    return names["run"]


def _failed(info, k, exc):
    if k < 0 or isinstance(exc, UnsupportedOpError):
        return exc
    where = info[k]
    return SavedModelError(f"Node {where.name!r} ({where.op}){where.where()} failed: {exc}")


def _arity_error(n, outs) -> SavedModelError:
    return SavedModelError(f"its kernel returned {len(outs)} outputs instead of {n}.")
