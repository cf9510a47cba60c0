"""Quantization kernels: QuantizeV2, Dequantize, FakeQuant*, QuantizeAndDequantizeV2/V3/V4.

Every formula is TensorFlow's CPU kernel's, in its order and precision: the scalar
range arithmetic (nudging, scale factors) is done on the host in float32 (float64 where
TensorFlow divides a double by a float), the per-element arithmetic on the backend in
the input's precision. Quantized dtypes (qint8, quint8, qint16, quint16, qint32) are
held as their storage integers (int8, uint8, ...), as everywhere in the engine.
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ._arrays import canonical_axis, np_dtype, xp_dtype
from .registry import kernel

_F32 = np.float32


def _host(ctx, array) -> np.ndarray:
    return np.asarray(ctx.to_numpy(array))


def _fail(op, message):
    raise SavedModelError(f"{op}: {message}")


def _f32(xp, value):
    return xp.asarray(np.float32(value), dtype=xp_dtype(xp, np.float32))


def round_half_away(xp, x):
    """``std::round``: halves away from zero, exact for every float."""
    below = xp.floor(x)
    fraction = x - below  # exact
    up = (fraction > 0.5) | ((fraction == 0.5) & (x > 0))
    return xp.where(up, below + 1, below)


def flush_subnormal(values):
    """Host float32 range values as TensorFlow's CPU computes them, with subnormal results
    flushed to (signed) zero: a range of 1 / FLT_MAX is 0 there."""
    values = np.asarray(values, _F32)
    tiny = np.abs(values) < np.finfo(_F32).tiny
    return np.where(tiny, np.copysign(_F32(0), values), values).astype(_F32)


def clamp(xp, x, low, high):
    """Eigen's ``x.cwiseMin(high).cwiseMax(low)``: ``std::min``/``std::max`` keep ``x``
    when a bound is NaN (numpy's minimum/maximum would give NaN)."""
    x = xp.where(high < x, high, x)
    return xp.where(x < low, low, x)


def round_half_up(xp, x):
    """Eigen's ``scalar_round_up_op``: ``floor(x + 0.5)``."""
    return xp.floor(x + 0.5)


def _channel_view(xp, x, axis):
    """``x`` as (outer, channels, inner) around ``axis`` (TensorFlow's flat_inner_outer_dims)."""
    shape = tuple(x.shape)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return xp.reshape(x, (outer, shape[axis], inner))


# ---- fake quantization ----------------------------------------------------------------------

def nudge(low, high, quant_min: int, quant_max: int):
    """TensorFlow's ``Nudge`` in float32 (arrays of channels): nudged min, max, scale and
    inverse scale, the zero point rounded half away from zero onto an integer."""
    low, high = np.asarray(low, _F32), np.asarray(high, _F32)
    qmin, qmax = _F32(quant_min), _F32(quant_max)
    with np.errstate(all="ignore"):
        scale = ((high - low) / (qmax - qmin)).astype(_F32)
        inverse_scale = ((qmax - qmin) / (high - low)).astype(_F32)
        zero_from_min = (qmin - low / scale).astype(_F32)
        rounded = round_half_away(np, zero_from_min)
        zero_point = np.where(zero_from_min < qmin, qmin, np.where(zero_from_min > qmax, qmax, rounded))
        zero_point = zero_point.astype(np.int64).astype(np.uint16).astype(_F32)  # uint16 cast
        nudged_min = ((qmin - zero_point) * scale).astype(_F32)
        nudged_max = ((qmax - zero_point) * scale).astype(_F32)
    return nudged_min, nudged_max, scale, inverse_scale


def _fake_quant(xp, x, low, high, num_bits, narrow_range, divide):
    """The FakeQuant functors; ``divide``: the Vars op divides by the scale where Args and
    PerChannel multiply by its inverse. ``low``/``high`` broadcast over the last axis."""
    nudged_min, nudged_max, scale, inverse_scale = nudge(
        low, high, 1 if narrow_range else 0, (1 << num_bits) - 1)
    with np.errstate(all="ignore"):
        quant_zero = np.floor((-nudged_min * inverse_scale).astype(_F32) + _F32(0.5)).astype(_F32)
    f32 = xp_dtype(xp, np.float32)
    as_array = (lambda v: xp.asarray(v.astype(_F32), dtype=f32))
    clamped = clamp(xp, x, as_array(nudged_min), as_array(nudged_max))
    shifted = clamped - as_array(nudged_min)
    scaled = shifted / as_array(scale) if divide else shifted * as_array(inverse_scale)
    out = xp.floor(scaled - as_array(quant_zero) + _f32(xp, 0.5)) * as_array(scale)
    both_zero = (np.asarray(low) == 0) & (np.asarray(high) == 0)  # TensorFlow outputs zeros
    if both_zero.any():
        out = xp.where(xp.asarray(both_zero), xp.zeros_like(out), out)
    return out


def _fake_quant_attrs(op, attrs):
    num_bits = int(attrs.get("num_bits", 8))
    if not 2 <= num_bits <= 16:
        _fail(op, f"num_bits must be between 2 and 16, inclusive; got {num_bits}.")
    return num_bits, bool(attrs.get("narrow_range", False))


def _float32_input(op, x):
    if np_dtype(x).name != "float32":
        _fail(op, f"inputs must be float32, got {np_dtype(x).name}.")


@kernel("FakeQuantWithMinMaxArgs")
def fake_quant_with_min_max_args(ctx, inputs, attrs):
    op = "FakeQuantWithMinMaxArgs"
    _float32_input(op, inputs[0])
    num_bits, narrow_range = _fake_quant_attrs(op, attrs)
    low, high = _F32(attrs.get("min", -6.0)), _F32(attrs.get("max", 6.0))
    if not low < high:
        _fail(op, f"min has to be smaller than max, was: {low} >= {high}.")
    return [_fake_quant(ctx.xp, inputs[0], low, high, num_bits, narrow_range, divide=False)]


@kernel("FakeQuantWithMinMaxVars")
def fake_quant_with_min_max_vars(ctx, inputs, attrs):
    op = "FakeQuantWithMinMaxVars"
    _float32_input(op, inputs[0])
    num_bits, narrow_range = _fake_quant_attrs(op, attrs)
    low, high = _host(ctx, inputs[1]), _host(ctx, inputs[2])
    if low.ndim != 0 or high.ndim != 0:
        _fail(op, f"min and max must be scalars, got shapes {list(low.shape)} and {list(high.shape)}.")
    return [_fake_quant(ctx.xp, inputs[0], low, high, num_bits, narrow_range, divide=True)]


@kernel("FakeQuantWithMinMaxVarsPerChannel")
def fake_quant_with_min_max_vars_per_channel(ctx, inputs, attrs):
    op = "FakeQuantWithMinMaxVarsPerChannel"
    x = inputs[0]
    _float32_input(op, x)
    num_bits, narrow_range = _fake_quant_attrs(op, attrs)
    low, high = _host(ctx, inputs[1]), _host(ctx, inputs[2])
    depth = x.shape[-1] if x.ndim else None
    for name, value in (("min", low), ("max", high)):
        if value.ndim != 1 or value.shape[0] != depth:
            _fail(op, f"{name} must be a vector with as many values as the last dimension of "
                      f"inputs ({depth}), got shape {list(value.shape)}.")
    return [_fake_quant(ctx.xp, x, low, high, num_bits, narrow_range, divide=False)]


# ---- QuantizeAndDequantize ------------------------------------------------------------------

def quantization_range(signed: bool, num_bits: int, narrow_range: bool, low, high, dtype):
    """``ComputeQuantizationRange`` in ``dtype``: (min, max, scale, inverse scale) per channel."""
    t = np.dtype(dtype).type
    if signed:
        min_q = -(1 << (num_bits - 1)) + (1 if narrow_range else 0)
        max_q = (1 << (num_bits - 1)) - 1
    else:
        min_q, max_q = 0, (1 << num_bits) - 1
    low, high = np.asarray(low, dtype), np.asarray(high, dtype)
    min_qt, max_qt = t(min_q), t(max_q)
    biggest = np.finfo(dtype).max
    with np.errstate(all="ignore"):
        from_min = np.where(min_qt * low > 0, (min_qt / low).astype(dtype), biggest).astype(dtype)
        from_max = np.where(max_qt * high > 0, (max_qt / high).astype(dtype), biggest).astype(dtype)
        use_min = from_min < from_max
        scale = np.where(use_min, from_min, from_max).astype(dtype)
        inverse = np.where(use_min, low / min_qt, high / max_qt).astype(dtype)
        new_low = np.where(use_min, low, (min_qt * inverse).astype(dtype)).astype(dtype)
        new_high = np.where(use_min, (max_qt * inverse).astype(dtype), high).astype(dtype)
    return new_low, new_high, scale, inverse


def _quantize_and_dequantize(ctx, op, inputs, attrs, num_bits, round_mode):
    xp = ctx.xp
    x = inputs[0]
    dtype = np_dtype(x)
    signed = bool(attrs.get("signed_input", True))
    range_given = bool(attrs.get("range_given", False))
    narrow_range = bool(attrs.get("narrow_range", False))
    axis = int(attrs.get("axis", -1))
    if not 0 < num_bits < (62 if signed else 63):
        _fail(op, f"num_bits is out of range: {num_bits} with signed_input {signed}.")
    if round_mode not in ("HALF_TO_EVEN", "HALF_UP"):
        _fail(op, f"round_mode must be HALF_TO_EVEN or HALF_UP, got {round_mode!r}.")
    if axis < -1:
        _fail(op, f"Axis must be at least -1. Found {axis}.")
    if axis != -1 and axis >= x.ndim:
        _fail(op, f"Shape must be at least rank {axis + 1} but is rank {x.ndim}.")
    compute = np.dtype(np.float32) if dtype.itemsize < 4 else dtype  # half types: float32 steps
    view = _channel_view(xp, x, axis) if axis != -1 else xp.reshape(x, (1, 1, -1))
    depth = view.shape[1]
    low, high = _host(ctx, inputs[1]).astype(np.float64), _host(ctx, inputs[2]).astype(np.float64)
    if op != "QuantizeAndDequantizeV3":
        for name, value in (("input_min", low), ("input_max", high)):
            if value.ndim != 0:
                _fail(op, f"{name} must be a scalar.")
        if range_given and axis != -1:
            _fail(op, "a per-channel range (axis != -1 with range_given) needs "
                      "QuantizeAndDequantizeV3: TensorFlow's V2 and V4 kernels take scalar ranges only.")
    if range_given:
        expected = () if axis == -1 else (depth,)
        for name, value in (("input_min", low), ("input_max", high)):
            if value.shape != expected:
                _fail(op, f"{name} must have shape {list(expected)}, got {list(value.shape)}.")
        if axis == -1 and low > high:
            _fail(op, f"Invalid range: input_min {low} > input_max {high}")
        low, high = low.reshape(-1), high.reshape(-1)
    else:
        if int(np.prod(view.shape)) == 0:
            return [xp.asarray(x, copy=True)]
        host = _host(ctx, view).astype(compute)
        low, high = host.min(axis=(0, 2)), host.max(axis=(0, 2))
    low, high, scale, inverse = quantization_range(signed, num_bits, narrow_range,
                                                   np.asarray(low).astype(dtype).astype(compute),
                                                   np.asarray(high).astype(dtype).astype(compute),
                                                   compute)
    cdt = xp_dtype(xp, compute) if ctx.backend.supports(compute) else compute
    as_array = (lambda v: xp.asarray(v.reshape(1, -1, 1).astype(compute), dtype=cdt))
    values = xp.astype(view, cdt) if compute != dtype else view
    if range_given:
        values = clamp(xp, values, as_array(low), as_array(high))
    values = _narrow(values * as_array(scale), dtype)
    rounded = xp.round(values) if round_mode == "HALF_TO_EVEN" else round_half_up(xp, values)
    out = _narrow(_narrow(rounded, dtype) * as_array(inverse), dtype)
    if compute != dtype:
        out = np.asarray(out).astype(dtype)
    return [xp.reshape(out, tuple(x.shape))]


def _narrow(values, dtype):
    """Half-precision inputs: each Eigen half operation rounds its float result to the dtype."""
    if np.dtype(dtype).itemsize >= 4:
        return values
    return np.asarray(values).astype(dtype).astype(np.float32)


@kernel("QuantizeAndDequantizeV2", "QuantizeAndDequantizeV4")
def quantize_and_dequantize_v2(ctx, inputs, attrs):
    return _quantize_and_dequantize(ctx, "QuantizeAndDequantizeV2", inputs, attrs,
                                    int(attrs.get("num_bits", 8)),
                                    str(attrs.get("round_mode", "HALF_TO_EVEN")))


@kernel("QuantizeAndDequantizeV3")
def quantize_and_dequantize_v3(ctx, inputs, attrs):
    bits = _host(ctx, inputs[3])
    if bits.ndim != 0:
        _fail("QuantizeAndDequantizeV3", f"num_bits must be a scalar, got shape {list(bits.shape)}.")
    return _quantize_and_dequantize(ctx, "QuantizeAndDequantizeV3", inputs, attrs, int(bits),
                                    "HALF_TO_EVEN")


# ---- QuantizeV2 and Dequantize ----------------------------------------------------------------

_MODES = ("MIN_COMBINED", "MIN_FIRST", "SCALED")


def _int_limits(dtype):
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _ranges(ctx, op, inputs, x, axis, what=("min_range", "max_range")):
    """The per-slice float32 ranges and the number of slices (1 for axis -1)."""
    low, high = _host(ctx, inputs[1]), _host(ctx, inputs[2])
    if axis == -1:
        for name, value in zip(what, (low, high)):
            if value.size != 1:
                _fail(op, f"{name} must be a scalar when axis is -1, got shape {list(value.shape)}.")
        return low.reshape(-1).astype(_F32), high.reshape(-1).astype(_F32), 1
    slices = x.shape[axis]
    for name, value in zip(what, (low, high)):
        if value.ndim != 1 or value.shape[0] != slices:
            _fail(op, f"{name} must be a vector of {slices} values (dimension {axis} of the "
                      f"input), got shape {list(value.shape)}.")
    return low.astype(_F32), high.astype(_F32), slices


def _axis(op, attrs, x):
    axis = int(attrs.get("axis", -1))
    if axis == -1:
        return -1
    if axis < -1:
        _fail(op, f"axis must be -1 or a dimension of the input, got {axis}.")
    return canonical_axis(axis, x.ndim, op)


@kernel("QuantizeV2")
def quantize_v2(ctx, inputs, attrs):
    op = "QuantizeV2"
    xp, x = ctx.xp, inputs[0]
    dtype = np.dtype(attrs["T"])
    mode = str(attrs.get("mode", "MIN_COMBINED"))
    round_mode = str(attrs.get("round_mode", "HALF_AWAY_FROM_ZERO"))
    narrow_range = bool(attrs.get("narrow_range", False))
    ensure_minimum_range = _F32(attrs.get("ensure_minimum_range", 0.01))
    if mode not in _MODES:
        _fail(op, f"Mode string must be 'MIN_COMBINED', 'MIN_FIRST', or 'SCALED', is '{mode}'.")
    if round_mode not in ("HALF_AWAY_FROM_ZERO", "HALF_TO_EVEN"):
        _fail(op, f"Round mode string must be 'HALF_AWAY_FROM_ZERO' or 'HALF_TO_EVEN', is '{round_mode}'.")
    if round_mode == "HALF_TO_EVEN" and mode != "SCALED":
        _fail(op, f"Round mode 'HALF_TO_EVEN' only supported for mode 'SCALED', but mode is '{mode}'.")
    axis = _axis(op, attrs, x)
    low_in, high_in, slices = _ranges(ctx, op, inputs, x, axis)
    if slices != 1 and mode == "MIN_FIRST":
        _fail(op, "MIN_FIRST mode is not implemented for Quantize with axis != -1.")
    if np.any(high_in < low_in):
        _fail(op, "input_max_range must be larger than input_min_range.")
    low = np.minimum(_F32(0), low_in)
    epsilon = (np.maximum(_F32(1), np.maximum(np.abs(low_in), np.abs(high_in))) *
               ensure_minimum_range).astype(_F32)
    high = np.maximum(_F32(0), np.maximum(high_in, (low + epsilon).astype(_F32)))
    lowest, highest = _int_limits(dtype)
    view = _channel_view(xp, x, axis) if slices != 1 else xp.reshape(x, (1, 1, -1))
    f32 = xp_dtype(xp, np.float32)
    column = (lambda v: xp.asarray(np.asarray(v, _F32).reshape(1, -1, 1), dtype=f32))
    with np.errstate(all="ignore"):
        if mode == "MIN_COMBINED":
            scale = ((np.float64(highest) - np.float64(lowest)) /
                     (high - low).astype(np.float64)).astype(_F32)
            shifted = (clamp(xp, view, column(low), column(high)) - column(low)) * column(scale)
            if lowest < 0:
                half_range = _F32((np.float64(highest) - np.float64(lowest) + 1) / 2.0)
                quantized = round_half_away(xp, shifted - _f32(xp, half_range))
            else:
                quantized = xp.floor(shifted + _f32(xp, 0.5))  # a cast of a positive float truncates
        elif mode == "MIN_FIRST":
            quantized = _min_first(xp, view, low[0], high[0], dtype)
        else:
            min_output = _F32(lowest + (1 if narrow_range else 0))
            max_output = _F32(highest)
            from_min = np.where(min_output * low > 0, min_output / low, np.finfo(_F32).max).astype(_F32)
            from_max = np.where(max_output * high > 0, max_output / high, np.finfo(_F32).max).astype(_F32)
            scale = np.minimum(from_min, from_max)
            low = flush_subnormal((min_output / scale).astype(_F32))
            high = flush_subnormal((max_output / scale).astype(_F32))
            scaled = clamp(xp, view, column(low), column(high)) * column(scale)
            quantized = xp.round(scaled) if round_mode == "HALF_TO_EVEN" else round_half_away(xp, scaled)
    out = _cast_to_int(xp, quantized, dtype)
    range_shape = () if slices == 1 else (slices,)
    return [xp.reshape(out, tuple(x.shape)),
            xp.asarray(low.reshape(range_shape), dtype=f32), xp.asarray(high.reshape(range_shape), dtype=f32)]


def _min_first(xp, x, low, high, dtype):
    """``FloatTensorToQuantizedInPlaceUsingEigen``: scale by (2^bits - 1) / range, round,
    shift by the rounded scaled minimum, clamp to the dtype (and int32)."""
    steps = float(1 << (8 * np.dtype(dtype).itemsize))
    scale = _F32(0.0) if high == low else _F32((steps - 1.0) / np.float64(_F32(high - low)))
    min_scaled = round_half_away(np, np.asarray(_F32(low * scale)))
    lowest, highest = _int_limits(dtype)
    offset = _F32(min_scaled - _F32(lowest))
    values = round_half_away(xp, x * _f32(xp, scale)) - _f32(xp, offset)
    lower = max(_F32(lowest), _F32(-2.147483648e9))
    upper = min(_F32(highest), _F32(2.147483520e9))
    return xp.minimum(xp.maximum(values, _f32(xp, lower)), _f32(xp, upper))


def _cast_to_int(xp, values, dtype):
    """Whole float32 values inside ``dtype``'s range as ``dtype`` (through int64: float32
    holds 2**31 for qint32's top, which the clamps keep out)."""
    i64 = xp_dtype(xp, np.int64)
    return xp.astype(xp.astype(values, i64), xp_dtype(xp, dtype))


@kernel("Dequantize")
def dequantize(ctx, inputs, attrs):
    op = "Dequantize"
    xp, x = ctx.xp, inputs[0]
    dtype = np_dtype(x)
    out_dtype = np.dtype(attrs.get("dtype", np.float32))
    mode = str(attrs.get("mode", "MIN_COMBINED"))
    narrow_range = bool(attrs.get("narrow_range", False))
    if mode not in _MODES:
        _fail(op, f"Mode string must be 'MIN_COMBINED', 'MIN_FIRST', or 'SCALED', is '{mode}'.")
    if out_dtype.name not in ("float32", "bfloat16"):
        _fail(op, f"dtype must be float32 or bfloat16, got {out_dtype.name}.")
    if out_dtype.name == "bfloat16" and mode != "MIN_COMBINED":
        _fail(op, f"When output type is bfloat16, Mode string must be 'MIN_COMBINED', is '{mode}'.")
    axis = _axis(op, attrs, x)
    low, high, slices = _ranges(ctx, op, inputs, x, axis)
    if slices != 1 and mode == "MIN_FIRST":
        _fail(op, "MIN_FIRST mode is not implemented for Dequantize with axis != -1.")
    lowest, highest = _int_limits(dtype)
    view = _channel_view(xp, x, axis) if slices != 1 else xp.reshape(x, (1, 1, -1))
    f32 = xp_dtype(xp, np.float32)
    column = (lambda v: xp.asarray(np.asarray(v, _F32).reshape(1, -1, 1), dtype=f32))
    values = xp.astype(view, f32)
    with np.errstate(all="ignore"):
        if mode == "MIN_COMBINED":
            half_range = _F32(0) if lowest == 0 else _F32((_F32(highest) - _F32(lowest) + _F32(1)) / _F32(2))
            scale = ((high - low) / (_F32(highest) - _F32(lowest))).astype(_F32)
            out = (values + _f32(xp, half_range)) * column(scale) + column(low)
        elif mode == "MIN_FIRST":
            steps = float(1 << (8 * dtype.itemsize))
            scale = _F32(np.float64(_F32(high[0] - low[0])) / (steps - 1.0))
            rounded_min = low[0] if high[0] == low[0] else _F32(
                round_half_away(np, np.asarray(_F32(low[0] / scale))) * scale)
            out = _f32(xp, _F32(rounded_min - _F32(lowest) * scale)) + values * _f32(xp, scale)
        else:
            min_output = _F32(lowest + (1 if narrow_range else 0))
            if lowest == 0:
                scale = (high / _F32(highest)).astype(_F32)
            else:
                scale = np.maximum(low / min_output, high / _F32(highest)).astype(_F32)
            if dtype.itemsize == 4 and slices == 1:
                # whole-tensor path: qint32 -> float -> int -> float, 2**31 wraps to -2**31
                values = xp.where(values >= 2.0 ** 31, _f32(xp, -2.0 ** 31), values)
            out = values * column(scale)
    out = xp.reshape(out, tuple(x.shape))
    if out_dtype.name == "bfloat16":
        return [np.asarray(ctx.to_numpy(out)).astype(out_dtype)]
    return [out]
