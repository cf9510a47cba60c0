"""Plan-time rewrites: fold a constant per-channel scale into conv/matmul weights, and fuse
bias/activation epilogues into their producer's step.

``Mul(Conv2D(x, W), s)`` with constant ``W`` and ``s`` (a scalar or one value per
output channel) becomes ``Conv2D(x, W * s)``, as TensorFlow's grappler does; Keras
writes inference batch norms this way. Also for DepthwiseConv2dNative and MatMul, and
through a constant bias between them (``Mul(BiasAdd(Conv2D(x, W), b), s)`` becomes
``BiasAdd(Conv2D(x, W * s), b * s)``, Keras 3's convolution with bias then batch norm);
``Add(BiasAdd(y, b), t)`` of constant per-channel ``b`` and ``t`` becomes
``BiasAdd(y, b + t)``. Each rewritten output must have no other consumer; ``W`` itself is
left unchanged.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .half import HALF, to_float32, to_half
from .nodes import PlanNode

SCALABLE = frozenset({"Conv2D", "DepthwiseConv2dNative", "MatMul"})


def fold_scales(ctx, order: list, pnodes: dict, fetches: list) -> dict:
    """Rewrite in place; returns the alias ``(mul or add node, 0) -> (node it folded into, 0)``
    of each fold."""
    uses = Counter(r for p in order for r in p.inputs)
    uses.update(fetches)
    alias = {}
    for node in order:
        if node.value is not None or len(node.inputs) != 2 or node.op not in ("Mul", *_BIAS_ADDS):
            continue
        inputs = [alias.get(r, r) for r in node.inputs]
        if node.op == "BiasAdd" and node.attrs.get("data_format", "NHWC") != "NHWC":
            continue
        for k_ref, s_ref in (inputs, inputs[::-1])[:1 if node.op == "BiasAdd" else 2]:
            first, scale = pnodes.get(k_ref[0]), pnodes.get(s_ref[0])
            if (first is None or scale is None or scale.value is None or first.value is not None
                    or k_ref[1] != 0 or uses[k_ref] != 1 or len(first.inputs) != 2):
                continue
            if node.op == "Mul":
                done = _fold_scale(ctx, first, scale.value[s_ref[1]], pnodes, uses)
            else:
                done = _fold_bias(ctx, first, scale.value[s_ref[1]], pnodes)
            if done:
                alias[(node.name, 0)] = (first.name, 0)
                uses[(first.name, 0)] = uses[(node.name, 0)]
                break
    return alias


_BIAS_ADDS = ("BiasAdd", "AddV2", "Add")


def _fold_scale(ctx, producer, scale, pnodes, uses) -> bool:
    """``producer * scale`` folded into the producer (a conv or matmul with constant
    weights, or a constant bias add on one whose output it alone reads); whether it was."""
    conv, bias = producer, None
    if producer.op in _BIAS_ADDS:
        bias = _bias_input(producer, pnodes)
        if bias is None:
            return False
        conv = pnodes.get(producer.inputs[1 - bias][0])
        if conv is None or conv.value is not None or producer.inputs[1 - bias][1] != 0 \
                or uses[producer.inputs[1 - bias]] != 1 or len(conv.inputs) != 2:
            return False
    if conv.op not in SCALABLE or (bias is not None and not _wide_float(scale)):
        return False  # through a half-float bias: TF rounds between the add and the scale
    weights = pnodes.get(conv.inputs[1][0])
    if weights is None or weights.value is None:
        return False
    scaled = _scaled(ctx, conv, weights.value[conv.inputs[1][1]], scale)
    if scaled is None:
        return False
    if bias is not None:
        values = _channel_values(ctx, producer, _constant(pnodes, producer.inputs[bias]), scale, np.multiply,
                                 _rank(conv))
        if values is None:
            return False
        _replace_input(producer, bias, values, "/_scaled_bias", pnodes)
    _replace_input(conv, 1, scaled, "/_scaled_filter", pnodes)
    return True


def _fold_bias(ctx, producer, shift, pnodes) -> bool:
    """``producer + shift`` folded into the producer, itself a constant bias add on a conv or
    matmul; whether it was."""
    bias = _bias_input(producer, pnodes) if producer.op in _BIAS_ADDS else None
    if bias is None or not _wide_float(shift):
        return False  # half floats: TF rounds after each add
    below = pnodes.get(producer.inputs[1 - bias][0])
    if below is None or below.op not in SCALABLE:
        return False
    values = _channel_values(ctx, producer, _constant(pnodes, producer.inputs[bias]), shift, np.add,
                             _rank(below))
    if values is None:
        return False
    _replace_input(producer, bias, values, "/_shifted_bias", pnodes)
    return True


def _wide_float(value) -> bool:
    """Whether a constant is float32 or float64 (folds that reassociate roundings are kept
    to these: TensorFlow's half-float kernels round after each op)."""
    return np.dtype(getattr(value, "dtype", np.float16)) in (np.float32, np.float64)


def _bias_input(add, pnodes):
    """Index of the constant per-channel float input of a bias add (BiasAdd: NHWC), or None."""
    if add.op == "BiasAdd":
        order = (1,) if add.attrs.get("data_format", "NHWC") == "NHWC" else ()
    else:
        order = (1, 0)
    for i in order:
        value = _constant(pnodes, add.inputs[i])
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and \
                all(d == 1 for d in value.shape[:-1]) and value.ndim <= 4:
            return i
    return None


def _channel_values(ctx, add, bias, other, ufunc, rank):
    """``ufunc(bias, other)`` of a bias add's constant and a per-channel constant, in the
    bias's dtype, shaped as the two broadcast together, or None when ``other`` is not one
    value per channel of the bias (or one value) or would widen the output (of a BiasAdd
    on a ``rank``-dimensional input)."""
    b, o = ctx.to_numpy(bias), ctx.to_numpy(other)
    if o.dtype != b.dtype or o.ndim > 4 or any(d != 1 for d in o.shape[:-1]):
        return None
    if o.size != 1 and b.size != 1 and o.size != b.size:
        return None
    if add.op == "BiasAdd":
        if o.size not in (1, b.size) or o.ndim > rank:
            return None
        shape = b.shape
    else:
        shape = np.broadcast_shapes(b.shape, o.shape)
    value = ufunc(b.reshape(-1), o.reshape(-1)).astype(b.dtype).reshape(shape)
    value.flags.writeable = False
    return ctx.asarray(value)


def _rank(producer) -> int:
    return 2 if producer.op == "MatMul" else 4


def _replace_input(node, index, value, suffix, pnodes):
    """Point ``node``'s input ``index`` at a new plan constant ``value``."""
    name = node.name + suffix
    pnodes[name] = PlanNode(name, "Const", [], [], {}, None, 1, node.function, value=[value])
    node.inputs = [(name, 0) if i == index else ref for i, ref in enumerate(node.inputs)]


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


# --------------------------------------------------------------------------- in-place epilogues

#: Ops whose fresh float output the following bias add / residual add / activation may
#: overwrite in place (numpy backend only).
EPILOGUE_PRODUCERS = frozenset({"Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput",
                                "MatMul", "BatchMatMulV2", "BatchMatMulV3"})
_ADDS = frozenset({"AddV2", "Add", "BiasAdd"})
_SCALES = frozenset({"Mul"})
_CLIPS = {"Relu": (0.0, None), "Relu6": (0.0, 6.0)}
_SMALL_CHANNELS = 1024  # channel vectors tiled along the next axis so numpy's inner loops stay long


def fuse_epilogues(ctx, order: list, pnodes: dict, fetches: list, targets=()) -> tuple[list, dict]:
    """Fold ``producer -> bias add / channel scale -> (residual add) -> Relu/Relu6`` chains
    into the producer's step, computed in place on its output, as TensorFlow's grappler
    fuses them; and a zero ``Pad`` feeding a convolution into the convolution's padding.

    Each link must be the only consumer of the previous output and nothing may order on
    the nodes by control edges. Returns the new order and the alias of each chain's last
    output to the producer's. The kernels stay the reference: a link whose values do not
    allow the in-place form (dtype, broadcasting) runs its own prepared kernel instead. The
    debugger traces a fused step once, under the producer's name, with the chain's result.
    """
    consumers: dict = {}
    for p in order:
        for ref in p.inputs:
            consumers.setdefault(ref, []).append(p)
    for ref in fetches:
        consumers.setdefault(ref, []).append(None)
    ordered = {c for p in order for c in p.controls} | set(targets)

    def only_consumer(p):
        users = consumers.get((p.name, 0), [])
        if p.n_out != 1 or len(users) != 1 or users[0] is None or p.name in ordered:
            return None
        return users[0]

    alias, dropped, moved, fused_names = {}, set(), {}, set()
    for producer in order:
        if producer.name in dropped:
            continue
        if producer.op in ("Conv2D", "DepthwiseConv2dNative"):
            _absorb_pad(producer, pnodes, consumers, ordered, dropped)  # before preparing it
        if producer.op not in EPILOGUE_PRODUCERS or producer.value is not None:
            continue
        links, extras, last, current = [], [], producer, producer
        while True:
            consumer = only_consumer(current)
            if consumer is None or consumer.name in dropped:
                break
            link = _link(ctx, consumer, (current.name, 0), pnodes, len(extras))
            if link is None:
                break
            link_fn, extra = link
            links.append(link_fn)
            if extra is not None:
                extras.append(extra)
            current = last = consumer
        if not links:
            continue
        n_main = len(producer.inputs)
        producer.run = _fused(producer.prepare(ctx), n_main, links)
        producer.inputs = producer.inputs + extras
        chain = [producer]
        node = producer
        while node is not last:
            node = consumers[(node.name, 0)][0]
            chain.append(node)
            producer.controls = producer.controls + [c for c in node.controls
                                                     if c not in producer.controls]
            dropped.add(node.name)
        producer.fused = tuple(p.op for p in chain[1:])
        alias[(last.name, 0)] = (producer.name, 0)
        moved[last.name] = producer  # runs where its last link ran: residual inputs are ready
        fused_names.add(producer.name)
    new_order = []
    for p in order:
        if p.name in moved:
            new_order.append(moved[p.name])
        elif p.name not in dropped and p.name not in fused_names:
            new_order.append(p)
    return new_order, alias


def _constant(pnodes, ref):
    src = pnodes.get(ref[0])
    return None if src is None or src.value is None else src.value[ref[1]]


def _link(ctx, consumer, ref, pnodes, n_extra):
    """``(step, extra input or None)`` for one epilogue node, or None when it does not fuse."""
    if consumer.op in _CLIPS and len(consumer.inputs) == 1:
        return _clip_step(consumer.prepare(ctx), *_CLIPS[consumer.op]), None
    if consumer.op not in _ADDS | _SCALES or len(consumer.inputs) != 2 or \
            consumer.inputs.count(ref) != 1:
        return None
    first = consumer.inputs[0] == ref
    other = consumer.inputs[1] if first else consumer.inputs[0]
    if consumer.op == "BiasAdd":
        if not first or consumer.attrs.get("data_format", "NHWC") != "NHWC":
            return None
    value = _constant(pnodes, other)
    if value is None:
        return (_add_step(consumer.prepare(ctx), first, n_extra), other) if consumer.op in _ADDS else None
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or \
            any(d != 1 for d in value.shape[:-1]):
        return None
    ufunc = np.multiply if consumer.op in _SCALES else np.add
    return _channel_step(consumer.prepare(ctx), value, first, ufunc), None


def _writable(y):
    return type(y) is np.ndarray and y.dtype.kind == "f" and y.flags.writeable


def _channel_step(reference, value, first, ufunc):
    """y + bias or y * scale (a constant per-channel vector or scalar), in place when it
    keeps y's shape; else the node's own prepared kernel (``reference``)."""
    vector = value.reshape(-1)
    tiles = {}

    def run(y, extras):
        if (_writable(y) and y.dtype == vector.dtype and y.ndim >= value.ndim
                and (vector.size == 1 or (y.ndim and y.shape[-1] == vector.size))):
            bias = vector
            if y.ndim >= 2 and 1 < vector.size < _SMALL_CHANNELS:
                rows = y.shape[-2]
                bias = tiles.get(rows)
                if bias is None:
                    bias = tiles[rows] = np.tile(vector, (rows, 1))
            ufunc(y, bias, out=y)
            return y
        return reference([y, value] if first else [value, y])[0]

    def inplace(y):
        if y.dtype == vector.dtype and y.ndim >= value.ndim and (
                vector.size == 1 or (y.ndim and y.shape[-1] == vector.size)):
            bias = vector
            if y.ndim >= 2 and 1 < vector.size < _SMALL_CHANNELS:
                bias = np.tile(vector, (y.shape[-2], 1))
            return ufunc, (bias,), -1
        return None

    def widened(w, extras):  # w: float32 holding float16 values (`_widened_links`)
        if vector.dtype != HALF or w.ndim < value.ndim or not (
                vector.size == 1 or (w.ndim and w.shape[-1] == vector.size)):
            return False
        key = (w.shape[-2] if w.ndim >= 2 and 1 < vector.size < _SMALL_CHANNELS else None, "wide")
        bias = tiles.get(key)
        if bias is None:
            bias = vector if key[0] is None else np.tile(vector, (key[0], 1))
            bias = tiles[key] = bias.astype(np.float32)
        ufunc(w, bias, out=w)
        return True
    run.inplace = inplace
    run.widened, run.rounds = widened, True
    return run


def _add_step(reference, first, index):
    """y + another tensor (same dtype, broadcasting into y's shape), in place."""
    def run(y, extras):
        other = extras[index]
        if (type(other) is np.ndarray and other.dtype is y.dtype and _writable(y)
                and (other.shape == y.shape or _fits_into(other.shape, y.shape))):
            np.add(y, other, out=y)
            return y
        return reference([y, other] if first else [other, y])[0]
    run.inplace = lambda y: (np.add, (), index)  # when the other tensor has y's shape and dtype

    def widened(w, extras):
        other = extras[index]
        if type(other) is not np.ndarray or other.dtype != HALF or not (
                other.shape == w.shape or _fits_into(other.shape, w.shape)):
            return False
        np.add(w, other, out=w)
        return True
    run.widened, run.rounds = widened, True
    return run


def _fits_into(small, big) -> bool:
    """Whether ``small`` broadcasts to ``big`` without growing it."""
    if len(small) == 1 and big:
        return small[0] == big[-1] or small[0] == 1
    return len(small) <= len(big) and all(
        s == 1 or s == b for s, b in zip(small[::-1], big[::-1]))


def _clip_step(reference, low, high):
    """Relu/Relu6 in place (np.maximum and np.clip keep NaN, as the kernels do)."""
    bounds = {}  # dtype -> low as a 0-d array of it (numpy converts a Python float on every call)

    def run(y, extras):
        if _writable(y) and y.dtype.itemsize >= 4:
            if high is None:
                bound = bounds.get(y.dtype)
                if bound is None:
                    bound = bounds[y.dtype] = np.asarray(low, dtype=y.dtype)
                np.maximum(y, bound, out=y)
            else:
                np.clip(y, low, high, out=y)
            return y
        return reference([y])[0]

    def inplace(y):
        if y.dtype.itemsize < 4:
            return None
        if high is None:
            return np.maximum, (np.asarray(low, dtype=y.dtype),), -1
        return _CLIP, (np.asarray(low, dtype=y.dtype), np.asarray(high, dtype=y.dtype)), -1

    def widened(w, extras):  # clipping commutes with rounding to half: no rounding before it
        if high is None:
            np.maximum(w, np.float32(low), out=w)
        else:
            _CLIP(w, np.float32(low), np.float32(high), out=w)
        return True
    run.inplace = inplace
    run.widened, run.rounds = widened, False
    return run


#: numpy's clip ufunc (np.clip adds two Python frames around it)
_CLIP = getattr(getattr(np, "_core", None) and np._core.umath, "clip", None) or np.clip


def _fused(produce, n_main, links):
    """One step: the producer's prepared kernel, then each link on its output, which is
    never one of the step's inputs (copied first if the kernel returned a view of one).
    Per shape and dtype of that output, each link's in-place ufunc and operands are
    worked out once (``link.inplace``); a call then applies them directly, a residual
    operand checked for y's shape and dtype first. Anything else runs the links. A kernel
    that ``takes_epilogue`` (a Conv2D) is handed them instead, to apply to each block of
    its output as soon as it is computed (`_block_epilogue`), while the block is in cache."""
    forms: dict = {}  # shape of the producer's output -> (dtype, constant pairs, in-place forms)
    blocked = getattr(produce, "takes_epilogue", False)
    fresh = getattr(produce, "fresh", False)  # its output is always a writable array it allocated

    def known_for(y):
        known = forms.get(y.shape)
        if known is None or known[0] is not y.dtype:
            known = _bind_forms(forms, y, links)
        return known

    def forms_for(y):
        return known_for(y)[2]

    def run(inputs):
        main = inputs if len(inputs) == n_main else inputs[:n_main]
        if blocked:
            taken = []

            def epilogue(y):
                apply = _block_epilogue(forms_for(y), y, inputs, n_main) if y.dtype.kind == "f" else None
                taken.append(apply is not None)
                return apply
            y = produce(main, epilogue)[0]
            if taken and taken[0]:
                return [y]
        else:
            y = produce(main)[0]
        if not fresh:
            y = _own(y, inputs)
        if type(y) is np.ndarray and y.dtype is HALF and y.size >= _WIDE_MIN:
            w = _widened_links(y, inputs[n_main:], links)
            if w is not None:
                return [w]
        if type(y) is np.ndarray and (fresh or y.flags.writeable):
            known = known_for(y)
            pairs = known[1]
            if pairs is not None:  # constant operands only: one ufunc call per link
                for ufunc, operand in pairs:
                    ufunc(y, operand, out=y)
                return [y]
            ops = known[2]
            if ops is not None:
                for k, (ufunc, operands, index) in enumerate(ops):
                    if index >= 0:
                        other = inputs[n_main + index]
                        if type(other) is not np.ndarray or other.dtype is not y.dtype or other.shape != y.shape:
                            return [_run_links(y, inputs[n_main:], links[k:])]
                        ufunc(y, other, out=y)
                    else:
                        ufunc(y, *operands, out=y)
                return [y]
        return [_run_links(y, inputs[n_main:], links)]
    return run


def _bind_forms(forms: dict, y, links) -> tuple:
    """``(dtype, pairs, ops)`` for producer outputs of y's shape and dtype, remembered in
    ``forms``: ``ops`` the links' in-place forms (None unless y is a float array every link
    has one for), ``pairs`` the same as ``(ufunc, operand)`` when every operand is one
    constant (else None)."""
    ops = [link.inplace(y) for link in links] if y.dtype.kind == "f" else [None]
    if None in ops:
        ops = None
    pairs = None
    if ops is not None and all(index < 0 and len(operands) == 1 for _, operands, index in ops):
        pairs = tuple((ufunc, operands[0]) for ufunc, operands, _ in ops)
    if len(forms) > 16:
        forms.clear()
    known = forms[y.shape] = (y.dtype, pairs, ops)
    return known


def _block_epilogue(ops, y, inputs, n_main):
    """``apply(lo, hi)``: the in-place forms ``ops`` on rows lo:hi of the fresh output ``y``
    seen as (N * H, W, K), residual operands cut the same way; None when ``ops`` is None or a
    residual is not a contiguous array of y's shape and dtype."""
    if ops is None or y.ndim != 4:
        return None
    n, h, w, k = y.shape
    steps = []
    for ufunc, operands, index in ops:
        other = None
        if index >= 0:
            other = inputs[n_main + index]
            if (type(other) is not np.ndarray or other.dtype is not y.dtype or other.shape != y.shape
                    or not other.flags.c_contiguous):
                return None
            other = other.reshape(n * h, w, k)
        steps.append((ufunc, operands, other))
    rows = y.reshape(n * h, w, k)

    def apply(lo, hi):
        block = rows[lo:hi]
        for ufunc, operands, other in steps:
            ufunc(block, *((other[lo:hi],) if other is not None else operands), out=block)
    return apply


_WIDE_MIN = 256  # float16 outputs this large run their links in float32 (numpy's half loops are slow)


def _widened_links(y, extras, links):
    """The links on a float32 copy of a float16 ``y``, rounded to float16 where TensorFlow's
    half kernels round (after each add or scale: each computes in float32 and rounds its
    result; clipping commutes with rounding), narrowed once at the end: the same values as
    running the links in float16. None when a link does not take this form (``y`` is
    untouched then)."""
    w = to_float32(y)
    unrounded = False
    for link in links:
        widened = getattr(link, "widened", None)
        if widened is None:
            return None
        if unrounded and link.rounds:
            w = to_float32(to_half(w))
            unrounded = False
        if not widened(w, extras):
            return None
        unrounded = unrounded or link.rounds
    return to_half(w)


def _run_links(y, extras, links):
    for link in links:
        y = link(y, extras)
    return y


def _own(y, inputs):
    """``y``, or a copy of it when it may share memory with an input (in-place links
    must only write buffers the plan allocated)."""
    if type(y) is np.ndarray:
        if y.base is None:  # owns its memory: fresh unless it is an input itself
            for x in inputs:
                if x is y:
                    return y.copy()
            return y
        for x in inputs:
            if type(x) is np.ndarray and np.may_share_memory(x, y):
                return y.copy()
    return y


def _absorb_pad(conv, pnodes, consumers, ordered, dropped):
    """``Conv(Pad(x, constant paddings))`` -> ``Conv(x)`` with the pads made explicit padding."""
    if conv.attrs.get("data_format", "NHWC") != "NHWC" or conv.attrs.get("padding") not in (
            "VALID", "EXPLICIT") or len(conv.inputs) != 2:
        return
    pad = pnodes.get(conv.inputs[0][0])
    if (pad is None or pad.op != "Pad" or pad.value is not None or conv.inputs[0][1] != 0
            or pad.name in ordered or len(consumers.get((pad.name, 0), [])) != 1):
        return
    paddings = _constant(pnodes, pad.inputs[1])
    if not isinstance(paddings, np.ndarray) or paddings.shape != (4, 2):
        return
    pads = [[int(b), int(a)] for b, a in paddings.tolist()]
    if pads[0] != [0, 0] or pads[3] != [0, 0] or min(min(p) for p in pads) < 0:
        return
    explicit = list(conv.attrs.get("explicit_paddings", [])) or [0] * 8
    if len(explicit) != 8:
        return
    conv.attrs = {**conv.attrs, "padding": "EXPLICIT",
                  "explicit_paddings": [e + p for e, p in zip(explicit, sum(pads, []))]}
    conv.inputs = [pad.inputs[0], conv.inputs[1]]
    conv.run = None  # its attrs changed: prepare afresh
    conv.controls = conv.controls + [c for c in pad.controls if c not in conv.controls]
    dropped.add(pad.name)
