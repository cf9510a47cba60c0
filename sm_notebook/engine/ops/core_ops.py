"""Constants, placeholders, identities and checks.

No Print kernel: printing is an IO op (see registry.IO_OPS).
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from .registry import kernel


@kernel("Const")
def const(ctx, inputs, attrs):
    return [ctx.asarray(attrs["value"])]


@kernel("Placeholder")
def placeholder(ctx, inputs, attrs):
    raise SavedModelError(
        "this placeholder must be fed: it is an input of the graph, but the signature being run "
        "does not feed it.")


@kernel("PlaceholderWithDefault", "Identity", "Snapshot", "StopGradient", "PreventGradient")
def identity(ctx, inputs, attrs):
    return [inputs[0]]


@kernel("IdentityN")
def identity_n(ctx, inputs, attrs):
    return list(inputs)


@kernel("NoOp")
def no_op(ctx, inputs, attrs):
    return []


def _shape_text(shape) -> str:
    if shape is None:
        return "<unknown>"
    return "(" + ", ".join("?" if d is None or d < 0 else str(d) for d in shape) + ")"


@kernel("EnsureShape")
def ensure_shape(ctx, inputs, attrs):
    x = inputs[0]
    want = attrs.get("shape")
    have = tuple(int(d) for d in x.shape)
    if want is not None:
        ok = len(want) == len(have) and all(w is None or w < 0 or w == h for w, h in zip(want, have))
        if not ok:
            raise SavedModelError(f"EnsureShape: shape {have} is not compatible with {_shape_text(want)}.")
    return [x]


@kernel("CheckNumerics", "CheckNumericsV2")
def check_numerics(ctx, inputs, attrs):
    x = inputs[0]
    host = ctx.to_numpy(x)
    if host.dtype.kind in "fc" or host.dtype.name == "bfloat16":
        values = host.astype(np.complex128 if host.dtype.kind == "c" else np.float64)
        if np.isnan(values).any() or np.isinf(values).any():
            kinds = " and ".join(k for k, bad in (("NaN", np.isnan(values).any()),
                                                  ("Inf", np.isinf(values).any())) if bad)
            raise SavedModelError(f"CheckNumerics: {attrs.get('message', '')} : Tensor had {kinds} values")
    return [x]


def _summary(value, summarize: int) -> str:
    host = np.asarray(value)
    flat = host.reshape(-1)
    items = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat[:summarize]]
    more = "..." if flat.size > summarize else ""
    return "[" + " ".join(items) + more + "]"


@kernel("Assert")
def assert_(ctx, inputs, attrs):
    condition = np.asarray(ctx.to_numpy(inputs[0]))
    if not condition.all():
        summarize = int(attrs.get("summarize", 3))
        data = [_summary(ctx.to_numpy(v) if not isinstance(v, np.ndarray) else v, summarize)
                for v in inputs[1:]]
        raise SavedModelError("assertion failed: " + " ".join(data))
    return []
