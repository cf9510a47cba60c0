"""Plan-time rewrite: fold a constant per-channel scale into conv/matmul weights.

``Mul(Conv2D(x, W), s)`` with constant ``W`` and ``s`` (a scalar or one value per
output channel) becomes ``Conv2D(x, W * s)``, as TensorFlow's grappler does; Keras
writes inference batch norms this way. Also for DepthwiseConv2dNative and MatMul.
The Conv2D output must have no other consumer; ``W`` itself is left unchanged.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

SCALABLE = frozenset({"Conv2D", "DepthwiseConv2dNative", "MatMul"})


def fold_scales(ctx, order: list, pnodes: dict, fetches: list) -> dict:
    """Rewrite in place; returns the alias ``(mul node, 0) -> (conv node, 0)`` of each fold."""
    from .plan import PlanNode

    uses = Counter(r for p in order for r in p.inputs)
    uses.update(fetches)
    alias = {}
    for mul in order:
        if mul.op != "Mul" or mul.value is not None or len(mul.inputs) != 2:
            continue
        for k_ref, s_ref in (mul.inputs, mul.inputs[::-1]):
            conv, scale = pnodes.get(k_ref[0]), pnodes.get(s_ref[0])
            if (conv is None or scale is None or scale.value is None or conv.value is not None
                    or conv.op not in SCALABLE or k_ref[1] != 0 or uses[k_ref] != 1
                    or len(conv.inputs) != 2):
                continue
            weights = pnodes.get(conv.inputs[1][0])
            if weights is None or weights.value is None:
                continue
            scaled = _scaled(ctx, conv, weights.value[conv.inputs[1][1]], scale.value[s_ref[1]])
            if scaled is None:
                continue
            name = conv.name + "/_scaled_filter"
            pnodes[name] = PlanNode(name, "Const", [], [], {}, None, 1, conv.function, value=[scaled])
            conv.inputs = [conv.inputs[0], (name, 0)]
            alias[(mul.name, 0)] = (conv.name, 0)
            break
    return alias


def _scaled(ctx, conv, weights, scale):
    """``weights * scale`` laid out for the op, or None when the pattern does not apply."""
    w, s = ctx.to_numpy(weights), ctx.to_numpy(scale)
    if w.dtype != s.dtype or w.dtype.kind != "f" or s.ndim > (2 if conv.op == "MatMul" else 4):
        return None
    if s.ndim and any(d != 1 for d in s.shape[:-1]):
        return None
    channels = s.shape[-1] if s.ndim else None
    s = s.reshape(-1)
    if conv.op == "Conv2D":
        if conv.attrs.get("data_format", "NHWC") != "NHWC" or w.ndim != 4:
            return None
        out = w.shape[3]
        factor = s.reshape(1) if channels is None else s
    elif conv.op == "DepthwiseConv2dNative":
        if conv.attrs.get("data_format", "NHWC") != "NHWC" or w.ndim != 4:
            return None
        out = w.shape[2] * w.shape[3]
        factor = s.reshape(1, 1) if channels is None else s.reshape(w.shape[2], w.shape[3]) \
            if channels == out else None
    else:
        if w.ndim != 2:
            return None
        transposed = conv.attrs.get("transpose_b", False)
        out = w.shape[0] if transposed else w.shape[1]
        factor = s if channels is None or channels == out else None
        if factor is not None and transposed:
            factor = factor.reshape(-1, 1)
    if factor is None or (channels is not None and channels != out):
        return None
    value = (w * factor).astype(w.dtype)
    value.flags.writeable = False
    return ctx.asarray(value)
