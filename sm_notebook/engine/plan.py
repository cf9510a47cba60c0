"""A graph or function compiled once into a flat list of steps, and the loop that runs it.

Compiling (`compile_plan`): inline function calls, prune to what the fetches and
targets need, decode attrs and bind kernels, collapse TF1 while loops
(frames.py), fold constants (never stateful kernels, except resolving variable
handles and, when the model never writes variables, reading them), fold
per-channel scales into conv weights (fusion.py), drop pass-through Identity
nodes, fuse bias/activation epilogues into their producer on numpy (fusion.py),
fix the order and give every tensor a slot.

Running (`Plan.run`): one pass over frozen step tuples
``(fn, attrs, input_slots, first_output_slot, n_outputs, slots_to_free)``.
A slot is freed as soon as its last consumer has run.

Debugging (`Plan.run_debug`, driven by a `Debugger`): the same steps, one at a
time, tracing each node's inputs and outputs and stopping after a given node.
Plans with TF1 cond/while (Switch/Merge) run the same way, with dead tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SavedModelError
from .attrs import decode_node_attrs
from .functions import ARG_OP, Ref, inline_calls
from .fusion import fold_scales, fuse_epilogues
from .ops._numeric import QUIET
from .ops.control_flow_ops import DEAD
from .ops.registry import IO_OPS, OpKernel, get_kernel

#: TF1 control flow that produces or forwards dead tensors: never folded, never elided.
V1_CONTROL_FLOW = frozenset({
    "Switch", "RefSwitch", "Merge", "RefMerge", "Enter", "RefEnter", "Exit", "RefExit",
    "NextIteration", "RefNextIteration", "LoopCond", "ControlTrigger"})
#: Ops whose dead inputs do not make them dead.
TAKES_DEAD = frozenset({"Merge", "RefMerge"})
#: Stateful kernels that may still run at plan time: they create a shared resource once
#: (keyed by container and shared_name, the node name when empty) or look it up.
HANDLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable", "HashTableV2", "HashTable",
                        "MutableHashTableV2", "MutableHashTable", "MutableHashTableOfTensorsV2",
                        "MutableDenseHashTableV2"})
#: Variable reads, folded when the model never writes a variable after loading.
READ_OPS = frozenset({"ReadVariableOp", "_SmnbReadRef"})
NEVER_FOLD = V1_CONTROL_FLOW | {"Placeholder", ARG_OP}
#: Pass-through ops replaced by their input when nothing orders them.
IDENTITY_OPS = frozenset({"Identity", "Snapshot", "StopGradient", "PreventGradient", "IdentityN"})
#: Ref-variable ops (TF1) whose output is the variable itself.
REF_VARIABLE_OPS = frozenset({"VariableV2", "Variable"})
#: Ops that take a ref variable itself rather than its value.
REF_CONSUMERS = frozenset({
    "Assign", "AssignAdd", "AssignSub", "IsVariableInitialized", "ScatterUpdate", "ScatterAdd",
    "ScatterSub", "ScatterMul", "ScatterDiv", "ScatterMin", "ScatterMax", "ScatterNdUpdate",
    "ScatterNdAdd", "ScatterNdSub", "CountUpTo", "_SmnbReadRef", "RefIdentity"})
#: Largest result (bytes) constant folding keeps; bigger ones are recomputed per call.
FOLD_LIMIT_BYTES = 512 * 2**20


class StopExecution(Exception):
    """Raised by the debugger after the requested node; carries nothing else."""


@dataclass(slots=True)
class PlanNode:
    """A node with its kernel bound and its inputs as ``(node, flat index)``."""
    name: str
    op: str
    inputs: list
    controls: list
    attrs: dict
    kernel: OpKernel | None
    n_out: int
    function: str | None = None
    fn: object = None          # the callable to run (kernel.fn, wrapped when needed)
    value: list | None = None  # outputs, when known at plan time
    fused: tuple = ()          # ops of the epilogue nodes folded into this step (fusion.py)


@dataclass
class StepInfo:
    """What a step is, for errors and traces."""
    name: str
    op: str
    function: str | None
    fused: tuple = ()

    def where(self) -> str:
        return f" in function {self.function!r}" if self.function else ""


def _host_wrapper(fn):
    """Run a host-only kernel on numpy: inputs come back from the backend, outputs go to it."""
    def on_host(ctx, inputs, attrs):
        host_inputs = [x if isinstance(x, np.ndarray) or not hasattr(x, "__array_namespace__")
                       else ctx.to_numpy(x) for x in inputs]
        outputs = fn(ctx, host_inputs, attrs)
        return [ctx.asarray(o) if isinstance(o, (np.ndarray, np.generic)) else o for o in outputs]
    return on_host


# --------------------------------------------------------------------------- compiling

def compile_plan(runtime, nodes: dict, feeds: list, fetches: list, targets=(), *,
                 name: str = "graph", bindings: dict | None = None, freeze: bool = False) -> "Plan":
    """Compile a body for one set of feeds (Refs), fetches (Refs) and targets (names).

    ``runtime`` supplies ``ctx``, ``library``, ``defaults`` and ``allow_io``;
    ``bindings`` maps node names to values that replace those nodes (captured
    variables); ``freeze`` lets variable reads be folded.
    """
    fed = frozenset(feeds)
    roots = [f.node for f in fetches if f not in fed] + list(targets)
    nodes, redirect_ref, redirect_control = inline_calls(nodes, roots, runtime.library, fed)
    fetches = [redirect_ref(f) for f in fetches]
    targets = [redirect_control(t) for t in targets]
    needed = _reachable(nodes, [f for f in fetches if f not in fed], targets, fed)
    pnodes = _bind(runtime, {n: nodes[n] for n in needed}, fed, bindings or {})
    feeds = [(f.node, f.index) for f in feeds]
    fetches = [_flat(pnodes, f, fed, runtime.defaults) for f in fetches]
    if any(p.op in ("Enter", "RefEnter") for p in pnodes.values()):
        from .frames import collapse_loops
        pnodes, moved, exits = collapse_loops(pnodes, set(feeds),
                                              lambda *a, **k: assemble(runtime, *a, **k),
                                              runtime.run_plan)
        fetches = [_follow(exits, moved, f) for f in fetches]
        targets = [_follow_control(moved, t) for t in targets]
    dead = any(p.op in ("Switch", "RefSwitch") for p in pnodes.values())
    return assemble(runtime, pnodes, feeds, fetches, targets, name=name, dead=dead, freeze=freeze)


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


def _bind(runtime, nodes: dict, fed, bindings: dict) -> dict:
    """PlanNodes: kernels looked up (IO refused), attrs decoded, inputs made flat."""
    pnodes = {}
    for node in nodes.values():
        where = f" in function {node.function!r}" if node.function else ""
        if node.name in bindings:
            pnodes[node.name] = PlanNode(node.name, node.op, [], [], {}, None, 1, node.function,
                                         value=[bindings[node.name]])
            continue
        if node.op == ARG_OP:
            raise SavedModelError(f"Argument {node.name!r}{where} is used but was not passed.")
        _refuse_io(runtime, node.op, node.name, node.function, None)
        kernel = get_kernel(node.op, node.name, node.function)
        _refuse_io(runtime, node.op, node.name, node.function, kernel)
        attrs = decode_node_attrs(node.attr, node.op, runtime.defaults, node.func_attrs,
                                  where=f" (node {node.name!r}{where})")
        if node.op in HANDLE_OPS and not attrs.get("shared_name"):
            attrs["shared_name"] = node.name  # TensorFlow's rule for unnamed variables
        n_out = sum(kernel.output_sizes(attrs))
        fn = kernel.fn if (runtime.ctx.is_numpy or not kernel.host) else _host_wrapper(kernel.fn)
        controls = [c for c in node.controls if c in nodes]  # not fed-only nodes
        pnodes[node.name] = PlanNode(node.name, node.op, list(node.inputs), controls,
                                     attrs, kernel, n_out, node.function, fn)
    for pnode in list(pnodes.values()):
        pnode.inputs = [_input(pnodes, pnode, r, fed, runtime.defaults) for r in pnode.inputs]
    return pnodes


def _refuse_io(runtime, op, node, function, kernel):
    if runtime.allow_io:
        return
    if op in IO_OPS or (kernel is not None and kernel.io):
        where = f" in function {function!r}" if function else " in the main graph"
        raise SavedModelError(
            f"Op {op!r} (node {node!r}{where}) reads or writes files or runs code outside the "
            "model, and is refused before anything runs. Load with allow_io=True only if you "
            "trust this model.")


def _flat(pnodes: dict, ref: Ref, fed, defaults=None) -> tuple:
    """A Ref as ``(node, flat output index)``, checked against the producer's outputs.

    Output argument names come from the model's own OpDef when it has one.
    """
    if ref in fed:
        return ref.node, ref.index
    src = pnodes[ref.node]
    index = ref.index
    if ref.arg is not None and src.kernel is not None:
        declared = defaults.output_args(src.op) if defaults is not None else None
        if declared is not None and any(a.name == ref.arg for a in declared):
            index = OpKernel(src.op, None, declared).flat_output_index(src.attrs, ref.arg, ref.index)
        else:
            index = src.kernel.flat_output_index(src.attrs, ref.arg, ref.index)
    if index >= src.n_out:
        raise SavedModelError(
            f"Tensor {ref} asks for output {index} of node {src.name!r} ({src.op}), "
            f"which has {src.n_out} outputs.")
    return src.name, index


def _input(pnodes: dict, consumer: PlanNode, ref: Ref, fed, defaults) -> tuple:
    flat = _flat(pnodes, ref, fed, defaults)
    src = pnodes.get(flat[0])
    if src is not None and src.op in REF_VARIABLE_OPS and consumer.op not in REF_CONSUMERS:
        read_name = src.name + "/_read"
        if read_name not in pnodes:
            kernel = get_kernel("_SmnbReadRef", read_name)
            pnodes[read_name] = PlanNode(read_name, "_SmnbReadRef", [flat], [], {}, kernel, 1,
                                         src.function, kernel.fn)
        return read_name, 0
    return flat


def assemble(runtime, pnodes: dict, feeds: list, fetches: list, targets=(), *, name="graph",
             dead=False, freeze=False, allow_dead_fetch=False) -> "Plan":
    """Order, fold, elide, prune and lay out bound PlanNodes as a `Plan`."""
    fed = set(feeds)
    order = toposort(pnodes, fed)
    _fold(runtime, order, fed, freeze)
    if not dead:
        scaled = fold_scales(runtime.ctx, order, pnodes, fetches)
        fetches = [_resolve(scaled, f) for f in fetches]
        for p in order:
            p.inputs = [_resolve(scaled, r) for r in p.inputs]
    live = {p.name: p for p in order if p.value is None}
    needed = _needed(live, fetches, targets, fed)
    order = [p for p in order if p.name in needed]
    if not dead:
        # Without dead tensors, control edges only order and select nodes; both are now
        # fixed, so pass-through nodes can go.
        alias = _elide(order)
        fetches = [_resolve(alias, f) for f in fetches]
        order = [p for p in order if p.op != "NoOp" and (p.name, 0) not in alias]
        for p in order:
            p.inputs = [_resolve(alias, r) for r in p.inputs]
        if runtime.ctx.is_numpy:
            order, alias = fuse_epilogues(order, pnodes, fetches, targets)
            fetches = [_resolve(alias, f) for f in fetches]
            for p in order:
                p.inputs = [_resolve(alias, r) for r in p.inputs]
    return Plan(name, order, pnodes, feeds, fetches, dead, allow_dead_fetch)


def toposort(pnodes: dict, fed) -> list:
    """PlanNodes in an order where producers come first (NextIteration back edges ignored)."""
    consumers = {n: [] for n in pnodes}
    pending = {}
    for p in pnodes.values():
        deps = set()
        for src, index in p.inputs:
            if (src, index) in fed or src not in pnodes:
                continue
            if p.op in ("Merge", "RefMerge") and pnodes[src].op in ("NextIteration", "RefNextIteration"):
                continue
            deps.add(src)
        deps.update(c for c in p.controls if c in pnodes)
        pending[p.name] = len(deps)
        for d in deps:
            consumers[d].append(p.name)
    ready = [n for n in pnodes if pending[n] == 0]
    ready.reverse()
    order = []
    while ready:
        n = ready.pop()
        order.append(pnodes[n])
        released = []
        for c in consumers[n]:
            pending[c] -= 1
            if pending[c] == 0:
                released.append(c)
        ready.extend(reversed(released))
    if len(order) != len(pnodes):
        stuck = sorted(n for n in pnodes if pending[n] > 0)[:5]
        raise SavedModelError(f"The graph has a cycle through {', '.join(stuck)}; it cannot run.")
    return order


def _foldable(p: PlanNode, freeze: bool) -> bool:
    if p.kernel is None or p.op in NEVER_FOLD or p.kernel.io:
        return False
    if p.kernel.stateful:
        return p.op in HANDLE_OPS or (freeze and p.op in READ_OPS)
    return True


def _fold(runtime, order: list, fed, freeze: bool) -> None:
    """Run, at plan time, every node whose inputs are all known (``p.value`` set)."""
    ctx = runtime.ctx
    known = {p.name: p for p in order if p.value is not None}
    for p in order:
        if p.value is not None or not _foldable(p, freeze):
            continue
        if any((s, i) in fed or s not in known for s, i in p.inputs):
            continue
        if any(c not in known for c in p.controls):
            continue
        args = [known[s].value[i] for s, i in p.inputs]
        try:
            outputs = list(p.fn(ctx, args, p.attrs))
        except StopExecution:
            raise
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
    total = 0
    for v in values:
        total += getattr(v, "nbytes", 0) if not isinstance(v, np.ndarray) else v.nbytes
    return total


def _elide(order: list) -> dict:
    """Map ``(identity node, i)`` to the tensor it passes on."""
    alias = {}
    for p in order:
        if p.op in IDENTITY_OPS:
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


# --------------------------------------------------------------------------- running

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


class Plan:
    """Compiled steps of one body; `run` is the hot loop."""

    def __init__(self, name, steps: list, pnodes: dict, feeds, fetches, dead, allow_dead_fetch):
        self.name = name
        self.dead = dead
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
        built = []
        for k, p in enumerate(steps):
            ins = tuple(slot(r) for r in p.inputs)
            controls = tuple(self._control_slots(p, step_index, steps, slot_of) if dead else ())
            for s in ins:
                last_use[s] = k
            for group in controls:
                for s in group:
                    last_use[s] = k
            out = slot_of[(p.name, 0)] if (p.n_out or dead) else -1
            built.append([p.fn, p.attrs, ins, out, p.n_out, (), controls, p.op in TAKES_DEAD])
        self.fetch_slots = tuple(slot(f) for f in fetches)
        self.constant_fetches = frozenset(
            k for k, s in enumerate(self.fetch_slots) if template[s] is not None)
        keep = set(self.fetch_slots)
        frees = {}
        for s, k in last_use.items():
            if s not in keep and template[s] is None:
                frees.setdefault(k, []).append(s)
        for k, step in enumerate(built):
            step[5] = tuple(frees.get(k, ()))
        self.template = template
        self.steps = [tuple(s[:6]) for s in built]
        self.dead_steps = [tuple(s) for s in built]
        self.info = [StepInfo(p.name, p.op, p.function, p.fused) for p in steps]
        self.step_kinds = [_step_kind(p) for p in steps]
        self._loop_splits: dict = {}
        self._straight = None  # the generated function of `straight_line` (False: none)
        self._ran = False

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
        return f"<Plan {self.name}: {len(self.steps)} steps, {len(self.template)} slots>"

    def describe(self) -> str:
        """One line per step: index, node, op and function."""
        return "\n".join(f"[{k:4d}] {i.name} ({' + '.join((i.op,) + i.fused)}){i.where()}"
                         for k, i in enumerate(self.info))

    def run(self, ctx, args) -> list:
        """Feed ``args`` (in feed order), run every step, return the fetches."""
        if self.dead:
            return self.run_debug(ctx, args, None)
        if QUIET.active:
            return self._run(ctx, args)
        QUIET.active = True  # numpy's floating-point warnings off once, not per kernel
        try:
            with np.errstate(all="ignore"):
                return self._run(ctx, args)
        finally:
            QUIET.active = False

    def _run(self, ctx, args) -> list:
        straight = self._straight
        if straight is None:
            if not self._ran:  # first run interpreted: plans that run once never compile
                self._ran = True
            else:
                straight = self._straight = straight_line(self, enumerate(self.steps)) or False
        if straight and len(args) == len(self.feed_slots):
            return straight(ctx, args)
        return self._interpret(ctx, args)

    def _interpret(self, ctx, args) -> list:
        """The step loop over a list of slots (plans too large for `straight_line`)."""
        slots = self.template.copy()
        for s, value in zip(self.feed_slots, args):
            slots[s] = value
        try:
            interpret_steps(ctx, self.steps, slots)
        except StepFailed as failed:
            raise self._error_at(failed.index, failed.error) from failed.error
        return [slots[i] for i in self.fetch_slots]

    def run_debug(self, ctx, args, debugger: Debugger | None) -> list:
        """The readable loop: dead tensors, tracing, stopping. ``debugger`` may be None."""
        slots = self.template.copy()
        for s, value in zip(self.feed_slots, args):
            slots[s] = value
        for k, (fn, attrs, ins, out, n, free, controls, takes_dead) in enumerate(self.dead_steps):
            inputs = [slots[i] for i in ins]
            dead = any(all(slots[s] is DEAD for s in group) for group in controls)
            if not takes_dead:
                dead = dead or any(x is DEAD for x in inputs)
            if dead:
                outs = [DEAD] * max(n, 1)
            else:
                try:
                    outs = list(fn(ctx, inputs, attrs))
                except StopExecution:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise self._error_at(k, exc) from exc
                if len(outs) != n:
                    raise self._error_at(k, _arity_error(n, outs))
                if n == 0:
                    outs = [True]
            if out >= 0:
                slots[out:out + len(outs)] = outs
            if debugger is not None:
                debugger.record(self.info[k], inputs, outs[:n])
            for i in free:
                slots[i] = None
        results = [slots[i] for i in self.fetch_slots]
        if not self.allow_dead_fetch and any(r is DEAD for r in results):
            raise SavedModelError(
                f"{self.name}: an output lies on a branch of a TF1 cond that was not taken, so it "
                "has no value (TensorFlow raises the same).")
        return results

    def loop_body(self, ctx, cond_effects: bool = False) -> "LoopBody":
        """A runner of this plan as a While body that computes loop-invariant steps once;
        ``cond_effects``: the loop's cond has side effects (then variable reads stay)."""
        if self.dead or len(self.feed_slots) != len(self.fetch_slots):
            return LoopBody(self, ctx, ())
        invariant = frozenset(k for k, (feed, fetch) in enumerate(zip(self.feed_slots, self.fetch_slots))
                              if feed == fetch)
        key = (invariant, cond_effects)
        hoisted = self._loop_splits.get(key)
        if hoisted is None:
            hoisted = self._loop_splits[key] = self._invariant_steps(invariant, cond_effects)
        return LoopBody(self, ctx, hoisted)

    @property
    def has_effects(self) -> bool:
        """Whether a step has side effects (a stateful kernel other than a variable read)."""
        return "effect" in self.step_kinds

    def _loop_straight(self, hoisted: tuple, preset: tuple):
        """`straight_line` code for the steps not in ``hoisted``, whose outputs (slots
        ``preset``) come in as a third argument; built once per plan and hoisted set."""
        key = ("straight", hoisted)
        if key not in self._loop_splits:
            skip = set(hoisted)
            self._loop_splits[key] = straight_line(
                self, ((k, s) for k, s in enumerate(self.steps) if k not in skip), preset)
        return self._loop_splits[key]

    def _invariant_steps(self, invariant, cond_effects) -> tuple:
        """Indices of the steps that only depend on loop-invariant feeds and constants, in
        order; variable reads among them only when nothing in the loop has side effects."""
        if cond_effects or self.has_effects:
            movable = {"pure"}
        else:
            movable = {"pure", "read"}
        known = {self.feed_slots[k] for k in invariant}
        known.update(s for s, v in enumerate(self.template) if v is not None)
        hoisted = []
        for k, (fn, attrs, ins, out, n, free) in enumerate(self.steps):
            if self.step_kinds[k] in movable and n and all(i in known for i in ins):
                hoisted.append(k)
                known.update(range(out, out + n))
        return tuple(hoisted)

    def _error_at(self, k: int, exc: Exception) -> SavedModelError:
        info = self.info[k]
        return SavedModelError(f"Node {info.name!r} ({info.op}){info.where()} failed: {exc}")


#: Plans with more steps run in the slot interpreter (compiling takes about 30 us a step).
STRAIGHT_LINE_LIMIT = 2000


def straight_line(plan: Plan, steps, preset: tuple = ()):
    """A Python function ``run(ctx, args) -> fetches`` doing ``steps`` (``(index, step)``
    pairs of ``plan``) as straight-line code: slots become local variables, a slot is
    deleted after its last use, constants and kernels are globals of the function. The
    same work as the slot interpreter without its per-step bookkeeping. With ``preset``
    (slots computed beforehand: a loop's invariant steps) it is ``run(ctx, args, values)``.
    None when a step reads a slot nothing sets, or the plan is too large."""
    steps = list(steps)
    if plan.dead or len(steps) > STRAIGHT_LINE_LIMIT:
        return None
    template = plan.template
    names = {"_arity_error": _arity_error, "StopExecution": StopExecution,
             "_error_at": plan._error_at}
    lines = ["def run(ctx, args, preset):" if preset else "def run(ctx, args):"]
    local = set()
    for j, s in enumerate(plan.feed_slots):
        lines.append(f"    s{s} = args[{j}]")
        local.add(s)
    for j, s in enumerate(preset):
        lines.append(f"    s{s} = preset[{j}]")
        local.add(s)

    def ref(s):
        if s in local:
            return f"s{s}"
        if template[s] is not None:
            names[f"K{s}"] = template[s]
            return f"K{s}"
        raise LookupError(s)

    lines.append("    try:")
    try:
        for k, (fn, attrs, ins, out, n, free) in steps:
            names[f"F{k}"], names[f"A{k}"] = fn, attrs
            call = f"F{k}(ctx, [{', '.join(ref(i) for i in ins)}], A{k})"
            lines.append(f"        k = {k}")
            lines.append(f"        r = {call}")
            lines.append(f"        if len(r) != {n}:")
            lines.append(f"            raise _arity_error({n}, r)")
            if n:
                targets = [f"s{i}" for i in range(out, out + n)]
                lines.append(f"        {', '.join(targets)}{',' if n == 1 else ''} = r")
                local.update(range(out, out + n))
            gone = [f"s{i}" for i in free if i in local]
            if gone:
                lines.append(f"        del {', '.join(gone)}")
                local.difference_update(i for i in free)
        fetched = ", ".join(ref(s) for s in plan.fetch_slots)
    except LookupError:
        return None
    lines += ["    except StopExecution:", "        raise",
              "    except Exception as exc:",
              "        raise _error_at(k, exc) from exc",
              f"    return [{fetched}]"]
    if not steps:
        lines[lines.index("    try:") + 1:lines.index("    except StopExecution:")] = ["        k = 0"]
    exec(compile("\n".join(lines), f"<plan {plan.name}>", "exec"), names)  # noqa: S102
    return names["run"]


def _step_kind(p: PlanNode) -> str:
    """'pure', 'read' (a variable read) or 'effect' (any other stateful kernel)."""
    if p.kernel is None or not p.kernel.stateful:
        return "pure"
    return "read" if p.op in READ_OPS else "effect"


class LoopBody:
    """Runs a body plan once per loop iteration; the loop-invariant steps (their inputs are
    loop variables the body passes through unchanged, or constants) run in the first
    iteration only, and later iterations start from their results. One per While run."""

    def __init__(self, plan: Plan, ctx, hoisted: tuple):
        self.plan, self.ctx = plan, ctx
        self.hoisted = hoisted
        self.template = None  # plan.template plus the hoisted results, after iteration one

    def run(self, args) -> list:
        plan = self.plan
        if not self.hoisted:
            return plan.run(self.ctx, args)
        if QUIET.active:
            return self._run(args)
        QUIET.active = True
        try:
            with np.errstate(all="ignore"):
                return self._run(args)
        finally:
            QUIET.active = False

    def _run(self, args) -> list:
        plan = self.plan
        if not self.hoisted:
            return plan._run(self.ctx, args)
        if self.template is None:
            slots = plan.template.copy()
            for s, value in zip(plan.feed_slots, args):
                slots[s] = value
            steps = plan.steps
            hoisted = set(self.hoisted)
            try:
                for k in self.hoisted:
                    fn, attrs, ins, out, n, free = steps[k]
                    outs = fn(self.ctx, [slots[i] for i in ins], attrs)
                    if len(outs) != n:
                        raise _arity_error(n, outs)
                    slots[out:out + n] = outs
            except StopExecution:
                raise
            except Exception as exc:  # noqa: BLE001
                raise plan._error_at(k, exc) from exc
            template = plan.template.copy()
            for k in self.hoisted:
                out, n = steps[k][3], steps[k][4]
                template[out:out + n] = slots[out:out + n]
            self.template = template
            self.steps = [s for k, s in enumerate(steps) if k not in hoisted]
            self.index = [k for k in range(len(steps)) if k not in hoisted]
            preset = tuple(s for k in self.hoisted
                           for s in range(steps[k][3], steps[k][3] + steps[k][4]))
            self.preset = [slots[s] for s in preset]
            self.straight = plan._loop_straight(self.hoisted, preset)
        if self.straight and len(args) == len(plan.feed_slots):
            return self.straight(self.ctx, args, self.preset)
        slots = self.template.copy()
        for s, value in zip(plan.feed_slots, args):
            slots[s] = value
        try:
            interpret_steps(self.ctx, self.steps, slots)
        except StepFailed as failed:
            raise plan._error_at(self.index[failed.index], failed.error) from failed.error
        return [slots[i] for i in plan.fetch_slots]


class StepFailed(Exception):
    """A kernel failed at position ``index`` of the steps being interpreted."""

    def __init__(self, index: int, error: Exception):
        super().__init__(index, error)
        self.index = index
        self.error = error


def interpret_steps(ctx, steps, slots) -> None:
    """The slot interpreter: run frozen ``(fn, attrs, ins, out, n, free)`` steps over
    ``slots`` in place, freeing each slot after its last use. A kernel's failure is
    raised as StepFailed (the failing step is found only then, costing nothing per step)."""
    try:
        for fn, attrs, ins, out, n, free in steps:
            outs = fn(ctx, [slots[i] for i in ins], attrs)
            if len(outs) != n:
                raise _arity_error(n, outs)
            if n == 1:
                slots[out] = outs[0]
            elif n:
                slots[out:out + n] = outs
            for i in free:
                slots[i] = None
    except StopExecution:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised by the caller with the node's name
        raise StepFailed(next(k for k, s in enumerate(steps) if s[1] is attrs), exc) from exc


def _arity_error(n, outs) -> SavedModelError:
    return SavedModelError(f"its kernel returned {len(outs)} outputs instead of {n}.")
