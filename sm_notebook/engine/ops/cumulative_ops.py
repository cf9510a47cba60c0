"""CumulativeLogsumexp: log(cumsum(exp(x))) along an axis, as TensorFlow's running
LogSumExp reducer (exact where a shift by the maximum would underflow the smaller terms),
on math_ops' scan."""
from __future__ import annotations

from functools import partial

from .math_ops import _scan


def _log_sum_exp(xp, total, step, lowest):
    """TensorFlow's LogSumExp(total, step): max + log1p(exp(min - max)), -inf when max is,
    with std::max/std::min's NaN behaviour (a NaN ``step`` is passed over, a NaN total kept)."""
    high = xp.where(total < step, step, total)
    low = xp.where(step < total, step, total)
    return xp.where(high < lowest, high, xp.log1p(xp.exp(low - high)) + high)


def cumulative_log_sum_exp(xp, x, axis, dtype, include_initial):
    """The running LogSumExp of x along ``axis`` from -inf (kept first when
    include_initial), with the signature of xp.cumulative_sum."""
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, 1)
    first = x[tuple(index)] if x.shape[axis] else xp.sum(x, axis=axis, keepdims=True)
    total = xp.full_like(first, float("-inf"), dtype=dtype)
    lowest = float(xp.finfo(dtype).min)
    parts = [total] if include_initial else []
    for i in range(int(x.shape[axis])):
        index[axis] = slice(i, i + 1)
        total = _log_sum_exp(xp, total, x[tuple(index)], lowest)
        parts.append(total)
    return xp.concat(parts, axis=axis) if parts else x


_scan("CumulativeLogsumexp", lambda xp: partial(cumulative_log_sum_exp, xp))
