"""Matrix diagonal kernels: MatrixDiag*, MatrixDiagPart*, MatrixSetDiag* (V1-V3), Diag, DiagPart.

A band of diagonals ``k = (low, high)`` is stored row by row from ``high`` down
to ``low``; diagonals shorter than the longest are padded on the side that
``align`` names (superdiagonals first word, subdiagonals second).
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ._arrays import ints, move_to, np_dtype, num_elements, xp_dtype, xp_of
from .registry import kernel

_ALIGNS = ("LEFT_LEFT", "LEFT_RIGHT", "RIGHT_LEFT", "RIGHT_RIGHT")


def _band(ctx, k_t, op):
    k = ints(ctx, k_t)
    if not 1 <= len(k) <= 2:
        raise SavedModelError(f"{op}: k must be a scalar or a pair, got {k}.")
    low, high = k[0], k[-1]
    if low > high:
        raise SavedModelError(f"{op}: lower_diag_index ({low}) must not exceed upper_diag_index "
                              f"({high}).")
    return low, high


def _diag_len(rows, cols, d):
    return min(rows + min(d, 0), cols - max(d, 0))


def _offset(align, d, length, max_len):
    first, second = align.split("_")
    left = (d >= 0 and first == "LEFT") or (d <= 0 and second == "LEFT")
    return 0 if left else max_len - length


def _matrix_positions(rows, cols, low, high, max_len, align):
    """For each matrix cell: whether it lies in the band, and its flat index in the diagonals."""
    i = np.arange(rows)[:, None]
    c = np.arange(cols)[None, :]
    d = c - i
    in_band = (d >= low) & (d <= high)
    flat = np.zeros((rows, cols), np.int64)
    for diag in range(low, high + 1):
        on = d == diag
        length = _diag_len(rows, cols, diag)
        pos = np.minimum(i, c) + _offset(align, diag, length, max_len)
        flat = np.where(on, (high - diag) * max_len + pos, flat)
    return in_band, flat


def _take_last(ctx, xp, x, flat_index, batch):
    """``x[..., flat_index]`` with ``flat_index`` any shape, over the flattened last axis."""
    index = move_to(ctx, xp, flat_index.reshape(-1))
    taken = xp.take(x, index, axis=x.ndim - 1)
    return xp.reshape(taken, batch + flat_index.shape)


def _scalar_like(ctx, xp, value, x):
    if value is None:
        return xp.zeros((), dtype=x.dtype)
    return xp.reshape(move_to(ctx, xp, value), ())


def diag_part(ctx, op, x, low, high, padding, align):
    xp = xp_of(ctx, x)
    ctx.check_alloc((max(high - low + 1, 0),), np.int64, op)  # one index row per diagonal
    if x.ndim < 2:
        raise SavedModelError(f"{op}: input must be at least 2-D, got shape {tuple(x.shape)}.")
    rows, cols = x.shape[-2], x.shape[-1]
    batch = tuple(x.shape[:-2])
    if rows and cols and not (-rows < low <= high < cols):
        raise SavedModelError(f"{op}: diagonal band [{low}, {high}] is out of bounds for a "
                              f"{rows}x{cols} matrix.")
    max_len = max(max(_diag_len(rows, cols, d) for d in range(low, high + 1)), 0)
    count = high - low + 1
    flat = np.zeros((count, max_len), np.int64)
    valid = np.zeros((count, max_len), bool)
    for r, d in enumerate(range(high, low - 1, -1)):
        length = max(_diag_len(rows, cols, d), 0)
        j = np.arange(max_len) - _offset(align, d, length, max_len)
        valid[r] = (j >= 0) & (j < length)
        jj = np.clip(j, 0, max(length - 1, 0))
        flat[r] = np.where(d >= 0, jj * cols + jj + d, (jj - d) * cols + jj)
    if count * max_len == 0 or rows * cols == 0:
        out = xp.zeros(batch + (count, max_len), dtype=x.dtype)
    else:
        values = _take_last(ctx, xp, xp.reshape(x, batch + (rows * cols,)), flat, batch)
        out = xp.where(move_to(ctx, xp, valid), values, _scalar_like(ctx, xp, padding, x))
    return xp.reshape(out, batch + (max_len,)) if low == high else out


def _diag_shape(diagonal, low, high, op):
    single = low == high
    if diagonal.ndim < (1 if single else 2):
        raise SavedModelError(f"{op}: diagonal of shape {tuple(diagonal.shape)} has too few "
                              "dimensions.")
    if not single and diagonal.shape[-2] != high - low + 1:
        raise SavedModelError(f"{op}: diagonal.shape[-2] must be the number of diagonals "
                              f"({high - low + 1}), got {diagonal.shape[-2]}.")
    batch = tuple(diagonal.shape[:-1] if single else diagonal.shape[:-2])
    return batch, diagonal.shape[-1]


def matrix_diag(ctx, op, diagonal, low, high, rows, cols, padding, align):
    xp = xp_of(ctx, diagonal)
    batch, max_len = _diag_shape(diagonal, low, high, op)
    min_rows, min_cols = max_len - min(high, 0), max_len + max(low, 0)
    if rows == -1 and cols == -1:
        rows = cols = max(min_rows, min_cols)
    elif rows == -1:
        rows = min_rows
    elif cols == -1:
        cols = min_cols
    if rows < min_rows or cols < min_cols or max(
            _diag_len(rows, cols, d) for d in range(low, high + 1)) != max_len:
        raise SavedModelError(f"{op}: a {rows}x{cols} matrix does not fit diagonals of length "
                              f"{max_len} in band [{low}, {high}].")
    ctx.check_alloc(batch + (rows, cols), np_dtype(diagonal), op)
    in_band, flat = _matrix_positions(rows, cols, low, high, max_len, align)
    source = xp.reshape(diagonal, batch + ((high - low + 1) * max_len,))
    values = _take_last(ctx, xp, source, flat, batch)
    return xp.where(move_to(ctx, xp, in_band), values, _scalar_like(ctx, xp, padding, diagonal))


def set_diag(ctx, op, x, diagonal, low, high, align):
    xp = xp_of(ctx, x, diagonal)
    x, diagonal = move_to(ctx, xp, x), move_to(ctx, xp, diagonal)
    if x.ndim < 2:
        raise SavedModelError(f"{op}: input must be at least 2-D, got shape {tuple(x.shape)}.")
    rows, cols = x.shape[-2], x.shape[-1]
    batch = tuple(x.shape[:-2])
    max_len = max(_diag_len(rows, cols, d) for d in range(low, high + 1))
    expected = batch + ((max_len,) if low == high else (high - low + 1, max_len))
    if tuple(diagonal.shape) != expected:
        raise SavedModelError(f"{op}: diagonal must have shape {expected}, got "
                              f"{tuple(diagonal.shape)}.")
    in_band, flat = _matrix_positions(rows, cols, low, high, max_len, align)
    source = xp.reshape(diagonal, batch + ((high - low + 1) * max_len,))
    return xp.where(move_to(ctx, xp, in_band), _take_last(ctx, xp, source, flat, batch), x)


def _align(attrs, default):
    align = attrs.get("align", default)
    if align not in _ALIGNS:
        raise SavedModelError(f"align must be one of {_ALIGNS}, got {align!r}.")
    return align


def _scalar_int(ctx, t):
    return ints(ctx, t)[0]


@kernel("MatrixDiagPartV3")
def matrix_diag_part_v3(ctx, inputs, attrs):
    x, k_t, padding = inputs
    low, high = _band(ctx, k_t, "MatrixDiagPartV3")
    return [diag_part(ctx, "MatrixDiagPartV3", x, low, high, padding, _align(attrs, "RIGHT_LEFT"))]


@kernel("MatrixDiagPartV2")
def matrix_diag_part_v2(ctx, inputs, attrs):
    x, k_t, padding = inputs
    low, high = _band(ctx, k_t, "MatrixDiagPartV2")
    return [diag_part(ctx, "MatrixDiagPartV2", x, low, high, padding, "LEFT_LEFT")]


@kernel("MatrixDiagPart")
def matrix_diag_part(ctx, inputs, attrs):
    return [diag_part(ctx, "MatrixDiagPart", inputs[0], 0, 0, None, "LEFT_LEFT")]


@kernel("MatrixDiagV3")
def matrix_diag_v3(ctx, inputs, attrs):
    diagonal, k_t, rows_t, cols_t, padding = inputs
    low, high = _band(ctx, k_t, "MatrixDiagV3")
    return [matrix_diag(ctx, "MatrixDiagV3", diagonal, low, high, _scalar_int(ctx, rows_t),
                        _scalar_int(ctx, cols_t), padding, _align(attrs, "RIGHT_LEFT"))]


@kernel("MatrixDiagV2")
def matrix_diag_v2(ctx, inputs, attrs):
    diagonal, k_t, rows_t, cols_t, padding = inputs
    low, high = _band(ctx, k_t, "MatrixDiagV2")
    return [matrix_diag(ctx, "MatrixDiagV2", diagonal, low, high, _scalar_int(ctx, rows_t),
                        _scalar_int(ctx, cols_t), padding, "LEFT_LEFT")]


@kernel("MatrixDiag")
def matrix_diag_v1(ctx, inputs, attrs):
    return [matrix_diag(ctx, "MatrixDiag", inputs[0], 0, 0, -1, -1, None, "LEFT_LEFT")]


@kernel("MatrixSetDiagV3")
def matrix_set_diag_v3(ctx, inputs, attrs):
    x, diagonal, k_t = inputs
    low, high = _band(ctx, k_t, "MatrixSetDiagV3")
    return [set_diag(ctx, "MatrixSetDiagV3", x, diagonal, low, high, _align(attrs, "RIGHT_LEFT"))]


@kernel("MatrixSetDiagV2")
def matrix_set_diag_v2(ctx, inputs, attrs):
    x, diagonal, k_t = inputs
    low, high = _band(ctx, k_t, "MatrixSetDiagV2")
    return [set_diag(ctx, "MatrixSetDiagV2", x, diagonal, low, high, "LEFT_LEFT")]


@kernel("MatrixSetDiag")
def matrix_set_diag_v1(ctx, inputs, attrs):
    return [set_diag(ctx, "MatrixSetDiag", inputs[0], inputs[1], 0, 0, "LEFT_LEFT")]


@kernel("Diag")
def diag(ctx, inputs, attrs):
    x = inputs[0]
    xp = xp_of(ctx, x)
    n = num_elements(x.shape)
    if x.ndim < 1:
        raise SavedModelError(f"Diag: input must be at least 1-D, got shape {tuple(x.shape)}.")
    ctx.check_alloc((n, n), np_dtype(x), "Diag")
    eye = xp.eye(n, dtype=xp_dtype(xp, np.bool_))
    out = xp.where(eye, xp.reshape(x, (1, n)), xp.zeros((), dtype=x.dtype))
    return [xp.reshape(out, tuple(x.shape) * 2)]


@kernel("DiagPart")
def diag_part_kernel(ctx, inputs, attrs):
    x = inputs[0]
    xp = xp_of(ctx, x)
    half = x.ndim // 2
    if x.ndim % 2 or x.ndim == 0 or tuple(x.shape[:half]) != tuple(x.shape[half:]):
        raise SavedModelError(f"DiagPart: input must have even rank and shape [D1..Dk, D1..Dk], "
                              f"got {tuple(x.shape)}.")
    n = num_elements(x.shape[:half])
    flat = xp.reshape(x, (n * n,))
    index = move_to(ctx, xp, np.arange(n, dtype=np.int64) * (n + 1))
    return [xp.reshape(xp.take(flat, index), tuple(x.shape[:half]))]
