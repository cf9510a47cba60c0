"""Control flow: function calls, If/While/Case, and TF1 Switch/Merge/Enter/Exit.

Functional ops run their branch and body functions through ``ctx.call_function``.
TF1 cond is dataflow with dead tensors: Switch forwards its input to one output
and marks the other `DEAD`; a node with a dead input is dead; Merge passes the
first live input on. TF1 while loops (Enter..Exit frames) are collapsed into one
structured loop at plan time (engine/frames.py); their kernels here are the
identities the loop runner does not need but the op list shows.
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from .registry import kernel


class _Dead:
    """The value of a tensor on an untaken branch of a TF1 cond."""
    __slots__ = ()

    def __repr__(self):
        return "DEAD"


DEAD = _Dead()


def truthy(ctx, value) -> bool:
    """TensorFlow's predicate rule: a scalar is its truth value (strings: non-empty);
    any other tensor is true when it has elements."""
    if type(value) is np.ndarray and value.dtype.kind == "b" and not value.ndim:
        return bool(value)
    shape = getattr(value, "shape", ())
    if len(shape) != 0:
        size = 1
        for d in shape:
            size *= int(d)
        return size > 0
    if isinstance(value, (np.ndarray, np.generic)):
        item = value.item() if isinstance(value, np.ndarray) else value
    else:
        item = ctx.to_numpy(value).item()
    if isinstance(item, (bytes, str)):
        return len(item) > 0
    return bool(item)


# --------------------------------------------------------------------------- function calls

@kernel("PartitionedCall")
def partitioned_call(ctx, inputs, attrs):
    func = attrs["f"]
    return ctx.call_function(func.name, list(inputs), func.attrs)


@kernel("StatefulPartitionedCall")
def stateful_partitioned_call(ctx, inputs, attrs):
    func = attrs["f"]
    return ctx.call_function(func.name, list(inputs), func.attrs)


def _if(ctx, inputs, attrs):
    branch = attrs["then_branch"] if truthy(ctx, inputs[0]) else attrs["else_branch"]
    return ctx.call_function(branch.name, list(inputs[1:]), branch.attrs)


kernel("If")(_if)
kernel("StatelessIf")(_if)


def _case(ctx, inputs, attrs):
    branches = attrs["branches"]
    index = int(np.asarray(ctx.to_numpy(inputs[0])).reshape(()))
    if not 0 <= index < len(branches):
        index = len(branches) - 1  # TensorFlow: out-of-range indices run the last branch
    branch = branches[index]
    return ctx.call_function(branch.name, list(inputs[1:]), branch.attrs)


kernel("Case")(_case)
kernel("StatelessCase")(_case)


def _while(ctx, inputs, attrs):
    cond, body = attrs["cond"], attrs["body"]
    values = list(inputs)
    run_cond = ctx.function(cond.name, cond.attrs)
    run_body = ctx.loop_body(body.name, body.attrs, (cond.name, cond.attrs))
    limit, iterations = ctx.max_loop_iterations, 0
    while truthy(ctx, run_cond(values)[0]):
        iterations += 1
        if iterations > limit:
            ctx.check_loop(iterations, f"While loop (body {body.name!r}, cond {cond.name!r})")
        values = run_body(values)
        if len(values) != len(inputs):
            raise SavedModelError(
                f"While body {body.name!r} returned {len(values)} values for {len(inputs)} loop variables.")
    return values


kernel("While")(_while)
kernel("StatelessWhile")(_while)


# --------------------------------------------------------------------------- TF1 control flow

@kernel("Switch", "RefSwitch")
def switch(ctx, inputs, attrs):
    data, pred = inputs
    return [DEAD, data] if truthy(ctx, pred) else [data, DEAD]


@kernel("Merge", "RefMerge")
def merge(ctx, inputs, attrs):
    for index, value in enumerate(inputs):
        if value is not DEAD:
            return [value, ctx.asarray(np.int32(index))]
    return [DEAD, DEAD]


@kernel("Enter", "RefEnter", "Exit", "RefExit", "NextIteration", "RefNextIteration", "LoopCond")
def frame_identity(ctx, inputs, attrs):
    return [inputs[0]]


@kernel("ControlTrigger")
def control_trigger(ctx, inputs, attrs):
    return []
