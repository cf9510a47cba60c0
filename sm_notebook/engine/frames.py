"""TF1 while loops: each Enter..Exit frame rewritten into one structured loop node.

A ``tf.compat.v1.while_loop`` is a frame: Enter nodes bring values in (loop
variables, or loop-invariant ``is_constant`` ones), each loop variable has a
Merge(Enter, NextIteration), Switch(Merge, LoopCond) sends it to Exit (done) or
into the body, and NextIteration carries the body's result to the next round.

Here the frame's nodes become a sub-plan run with dead tensors: fed the Merge
values (and the constant Enters), it returns the NextIteration inputs and the
Exit inputs. While the NextIteration values are live the loop goes on; the Exit
values that are live when it stops are the loop's outputs. Inner frames are
collapsed first, so they are single nodes of their parent's sub-plan.
"""
from __future__ import annotations

import numpy as np

from ..errors import SavedModelError
from .nodes import PlanNode, toposort
from .ops.control_flow_ops import DEAD

ENTER = ("Enter", "RefEnter")
EXIT = ("Exit", "RefExit")
NEXT = ("NextIteration", "RefNextIteration")
MERGE = ("Merge", "RefMerge")


def frames_of(pnodes: dict, order: list) -> dict:
    """Node name -> the frame its outputs live in: a tuple of frame names, () at top level."""
    frame = {}
    for p in order:
        sources = [frame[s] for s, _ in p.inputs if s in frame and not (
            p.op in MERGE and pnodes[s].op in NEXT)]
        sources += [frame[c] for c in p.controls if c in frame]
        base = max(sources, key=len) if sources else ()
        if p.op in ENTER:
            frame[p.name] = base + (p.attrs.get("frame_name", ""),)
        elif p.op in EXIT:
            frame[p.name] = base[:-1]
        else:
            frame[p.name] = base
    return frame


def collapse_loops(pnodes: dict, fed: set, assemble, runtime) -> tuple:
    """Replace every frame by a `_V1Loop` node; ``assemble`` builds the sub-plans and
    ``runtime.run_inner(plan, args)`` runs them (under the debugger when one is on).

    Returns the new nodes and ``moved``: old node name -> loop node name, where an
    Exit's output ``(exit, 0)`` became output ``k`` of the loop (``exits``).
    """

    moved, exits = {}, {}
    while True:
        order = toposort(pnodes, fed)
        frame = frames_of(pnodes, order)
        inner = [f for f in set(frame.values()) if f]
        if not inner:
            return pnodes, moved, exits
        target = max(inner, key=len)
        members = [p for p in order if frame[p.name] == target
                   or (p.op in EXIT and _input_frame(p, frame) == target)]
        loop = _build_loop(target, members, pnodes, assemble)
        loop.runtime = runtime
        member_names = {p.name for p in members}
        rest = {n: p for n, p in pnodes.items() if n not in member_names}
        exit_index = {name: k for k, name in enumerate(loop.exit_names)}
        node = PlanNode(loop.name, "_V1Loop", loop.inputs, loop.controls, {"frame": target[-1]},
                        None, len(loop.exit_names), None, run=loop.run, flags=_loop_flags(loop.body))
        for p in rest.values():
            p.inputs = [(loop.name, exit_index[s]) if s in exit_index else (s, i) for s, i in p.inputs]
            p.controls = [loop.name if c in member_names else c for c in p.controls]
        rest[loop.name] = node
        for name in member_names:
            moved[name] = loop.name
        for name, k in exit_index.items():
            exits[name] = (loop.name, k)
        pnodes = rest


def _loop_flags(body) -> frozenset:
    """A loop is stateful when its body is; only call-private state (TF1 TensorArrays)
    leaves it free of effects (no model lock) though never folded or hoisted."""
    if body.has_effects:
        return frozenset({"stateful"})
    if "private" in body.step_kinds:
        return frozenset({"stateful", "call_private"})
    return frozenset()


def _input_frame(p, frame):
    return frame.get(p.inputs[0][0], ()) if p.inputs else ()


class _Loop:
    """One collapsed frame: its inputs from outside, its sub-plan and how to iterate it."""

    def __init__(self, name):
        self.name = name
        self.inputs, self.controls, self.exit_names = [], [], []

    def run(self, inputs):
        ctx = self.runtime.ctx
        constants = [inputs[k] for k in self.constant_positions]
        state = [inputs[k] for k in self.variable_positions]
        first = [ctx.asarray(np.int32(i)) for i in self.enter_slots]
        later = [ctx.asarray(np.int32(i)) for i in self.next_slots]
        exits = [DEAD] * len(self.exit_names)
        n = len(state)
        indexes = first
        limit, iterations = ctx.max_loop_iterations, 0
        while True:
            outs = self.runtime.run_inner(self.body, state + indexes + constants)
            nexts = outs[:n]
            for k, value in enumerate(outs[n:]):
                if value is not DEAD:
                    exits[k] = value
            alive = [v is not DEAD for v in nexts]
            if not any(alive):
                return exits
            if not all(alive):
                raise SavedModelError(
                    f"TF1 while loop {self.name!r}: some loop variables went on to the next "
                    "iteration and others did not; the frame is malformed.")
            iterations += 1
            if iterations > limit:
                ctx.check_loop(iterations, f"TF1 while loop {self.name!r}")
            state = nexts
            indexes = later


def _build_loop(frame: tuple, members: list, pnodes: dict, assemble) -> _Loop:
    frame_name = frame[-1]
    loop = _Loop(f"{frame_name}/_loop" if frame_name else "_loop")
    names = {p.name for p in members}
    enters = [p for p in members if p.op in ENTER]
    merges = [p for p in members if p.op in MERGE
              and any(s in names and pnodes[s].op in NEXT for s, _ in p.inputs)]
    exits = [p for p in members if p.op in EXIT]
    for e in enters:
        loop.inputs.append(e.inputs[0])
        loop.controls.extend(c for c in e.controls if c not in names and c not in loop.controls)
    enter_position = {e.name: k for k, e in enumerate(enters)}
    loop.constant_positions = [k for k, e in enumerate(enters) if e.attrs.get("is_constant")]
    variable_enters = {e.name for e in enters if not e.attrs.get("is_constant")}
    loop.variable_positions, loop.enter_slots, loop.next_slots = [], [], []
    feeds_state, feeds_index, fetch_next = [], [], []
    for m in merges:
        (a, _), (b, _) = m.inputs[0], m.inputs[1]
        if len(m.inputs) != 2:
            raise SavedModelError(f"TF1 loop merge {m.name!r} has {len(m.inputs)} inputs, not 2.")
        enter, nxt = (a, b) if a in variable_enters else (b, a)
        if enter not in variable_enters or pnodes[nxt].op not in NEXT:
            raise SavedModelError(f"TF1 loop merge {m.name!r} is not Merge(Enter, NextIteration).")
        loop.variable_positions.append(enter_position[enter])
        loop.enter_slots.append(0 if enter == a else 1)
        loop.next_slots.append(1 if enter == a else 0)
        feeds_state.append((m.name, 0))
        feeds_index.append((m.name, 1))
        fetch_next.append(pnodes[nxt].inputs[0])
    merge_names = {m.name for m in merges}
    for p in members:
        if p.op in ENTER or p.op in EXIT or p.op in NEXT or p.name in merge_names:
            continue
        if any(s in variable_enters for s, _ in p.inputs):
            raise SavedModelError(
                f"Node {p.name!r} reads the loop variable Enter directly, not through its "
                "Merge; this TF1 while-loop layout is not supported.")
    feeds_const = [(e.name, 0) for e in enters if e.attrs.get("is_constant")]
    fetch_exit = [x.inputs[0] for x in exits]
    loop.exit_names = [x.name for x in exits]
    body_nodes = {p.name: p for p in members
                  if not (p.op in ENTER or p.op in EXIT or p.op in NEXT or p.name in merge_names)}
    loop.body = assemble(body_nodes, feeds_state + feeds_index + feeds_const,
                         fetch_next + fetch_exit, (), name=f"TF1 while loop {frame_name!r}",
                         dead=True, allow_dead_fetch=True)
    return loop
