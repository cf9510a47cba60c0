"""Neural-network kernels: activations, softmax, bias, convolutions, pooling, batch norm, LRN.

Spatial ops work channels-last internally: NCHW/NCDHW inputs are permuted in
and out. Windows are walked one kernel offset at a time with strided slices
(array API code); numpy takes a strided-view fast path for Conv and pooling, and
Winograd F(2x2, 3x3) for wide 3x3 stride-1 float32 convolutions (`_winograd.py`).
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ..blas import BLAS
from . import _winograd
from ._numeric import (astype, fail, finish_outputs, float_attr, host_ints, is_half, is_numpy,
                       lowest, namespace, np_dtype, op_kernel, pad, prepared_op_kernel, scalar, wide)

# --------------------------------------------------------------------------- activations


def _activation(op, compute):
    @op_kernel(op)
    def run(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        if is_half(x):
            return [astype(xp, compute(xp, astype(xp, x, np.float32), attrs), x.dtype)]
        return [compute(xp, x, attrs)]
    return run


def _relu(xp, x, attrs):
    return xp.maximum(x, scalar(xp, 0, x))


def _relu6(xp, x, attrs):
    return xp.minimum(xp.maximum(x, scalar(xp, 0, x)), scalar(xp, 6, x))


def _elu(xp, x, attrs):
    return xp.where(x < 0, xp.expm1(x), x)


_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


def _selu(xp, x, attrs):
    return xp.where(x < 0, scalar(xp, _SELU_SCALE * _SELU_ALPHA, x) * xp.expm1(x),
                    scalar(xp, _SELU_SCALE, x) * x)


def _leaky_relu(xp, x, attrs):
    alpha = scalar(xp, float_attr(attrs, "alpha", 0.2), x)
    return xp.where(x > 0, x, x * alpha)


def _softplus_kernel(ctx, inputs, attrs):
    """log(1 + exp(x)) with TensorFlow's cut-offs: x itself above -t and exp(x) below t,
    t = log(epsilon) + 2 of the input dtype (float32: x > 13.9 gives x exactly)."""
    xp, (x,) = namespace(ctx, inputs[0])
    threshold = math.log(float(np.finfo(np_dtype(x.dtype)).eps)) + 2.0 \
        if np_dtype(x.dtype).kind == "f" else math.log(2.0 ** -7) + 2.0   # bfloat16
    w = wide(xp, x)
    result = xp.where(w > scalar(xp, -threshold, w), w,
                      xp.where(w < scalar(xp, threshold, w), xp.exp(w), xp.log1p(xp.exp(w))))
    return [astype(xp, result, x.dtype)]


op_kernel("Softplus")(_softplus_kernel)


def _softsign(xp, x, attrs):
    return x / (scalar(xp, 1, x) + xp.abs(x))


for _op, _compute in {"Relu": _relu, "Relu6": _relu6, "Elu": _elu, "Selu": _selu,
                      "LeakyRelu": _leaky_relu, "Softsign": _softsign}.items():
    _activation(_op, _compute)


_SOFTMAX_FLOATS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})


def _softmax(op, log):
    @prepared_op_kernel(op)
    def prepare(node, ctx):
        if not (ctx.is_numpy and ctx.optimize):
            return lambda inputs: run(ctx, inputs, node.attrs)

        def run_numpy(inputs):
            x = inputs[0]
            if (type(x) is np.ndarray and x.dtype in _SOFTMAX_FLOATS and x.ndim
                    and 1 < x.shape[-1] and 0 < x.size <= _SHORT_ROWS * x.shape[-1]):
                return [_softmax_few_rows(x, log)]
            return finish_outputs(ctx, run(ctx, inputs, node.attrs))
        run_numpy.finished = True
        return run_numpy

    def run(ctx, inputs, attrs):
        xp, (logits,) = namespace(ctx, inputs[0])
        if logits.ndim < 1:
            fail(op, "logits must have rank >= 1")
        w = wide(xp, logits)
        if is_numpy(xp) and ctx.optimize and w.size and w.shape[-1] > 1 and np_dtype(w.dtype).kind == "f":
            if w.size <= _SHORT_ROWS * w.shape[-1]:  # a few rows: in place on one fresh array
                return [astype(xp, _softmax_few_rows(w, log), logits.dtype)]
            if w.shape[-1] <= _SHORT_ROWS:
                return [astype(xp, _softmax_short_rows(w, log), logits.dtype)]
        shifted = w - xp.max(w, axis=-1, keepdims=True) if w.shape[-1] else w
        exp = xp.exp(shifted)
        total = xp.sum(exp, axis=-1, keepdims=True)
        result = shifted - xp.log(total) if log else exp / total
        return [astype(xp, result, logits.dtype)]
    return run


_SHORT_ROWS = 64  # numpy reduces a short last axis row by row: transpose such rows first


def _softmax_few_rows(x, log):
    """(Log)softmax of a few rows on numpy: every step after the first writes into the
    array the first step allocated. One row reduces to scalars (cheaper than keepdims)."""
    if not log:
        probabilities = _softmax_unshifted(x)
        if probabilities is not None:
            return probabilities
    if x.size == x.shape[-1]:  # the ufuncs' reduce directly: ndarray.max/sum add a Python frame
        shifted = x - np.maximum.reduce(x, axis=None)
        if log:
            shifted -= np.log(np.add.reduce(np.exp(shifted), axis=None))
            return shifted
        np.exp(shifted, out=shifted)
        shifted /= np.add.reduce(shifted, axis=None)
        return shifted
    shifted = x - np.maximum.reduce(x, axis=-1, keepdims=True)
    if log:
        shifted -= np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))
        return shifted
    np.exp(shifted, out=shifted)
    shifted /= np.add.reduce(shifted, axis=-1, keepdims=True)
    return shifted


#: largest finite value per float dtype: a row sum above it cannot divide in that dtype
_LARGEST = {dtype: float(np.finfo(dtype).max) for dtype in _SOFTMAX_FLOATS}


def _softmax_unshifted(x):
    """Softmax of a few rows on numpy as exp(x) / sum(exp(x)): without the row maximum,
    two numpy calls fewer; None when a row's sum is not within [1, the dtype's largest
    value] (overflow, NaN, or all logits so negative that the exps could underflow), where
    the shifted form is needed. Softmax is shift-invariant, and the rounding is no worse:
    exp(x) is rounded once where exp(x - max) also rounds x - max; with a row sum of at
    least 1 an exp is subnormal only where the probability itself is. Short rows are summed
    as Python floats (in float64), cheaper than a numpy reduction."""
    exps = np.exp(x)
    width = x.shape[-1]
    largest = _LARGEST[x.dtype]
    if x.size == width:
        total = sum(exps.ravel().tolist()) if width <= _SHORT_ROWS else float(
            np.add.reduce(exps, axis=None))
        if 1.0 <= total <= largest:  # False for NaN
            exps /= total
            return exps
        return None
    totals = np.add.reduce(exps, axis=-1, keepdims=True)
    sums = totals.ravel().tolist()
    grand = sum(sums)
    if grand == grand and 1.0 <= min(sums) and max(sums) <= largest:  # grand == grand: no NaN
        exps /= totals
        return exps
    return None


def _softmax_short_rows(x, log):
    """(Log)softmax over a short last axis on numpy, computed with the rows as columns so
    the max and sum reduce across long contiguous rows. Works on a copy: for one row the
    transpose is already contiguous, and ``ascontiguousarray`` would hand back x itself."""
    width = x.shape[-1]
    columns = np.array(x.reshape(-1, width).T, order="C", copy=True)
    columns -= columns.max(axis=0)
    if log:
        columns -= np.log(np.exp(columns).sum(axis=0))
    else:
        np.exp(columns, out=columns)
        columns /= columns.sum(axis=0)
    return columns.T.reshape(x.shape)


_softmax("Softmax", log=False)
_softmax("LogSoftmax", log=True)


def _channel_axis(data_format: str, rank: int) -> int:
    return 1 if data_format.startswith("NC") and rank >= 2 else rank - 1


def _broadcast_channels(xp, values, rank: int, axis: int):
    shape = [1] * rank
    shape[axis] = int(values.shape[0])
    return xp.reshape(values, tuple(shape))


@op_kernel("BiasAdd", "BiasAddV1")
def bias_add(ctx, inputs, attrs):
    """value + bias along the channel dimension (last for NHWC, second for NCHW)."""
    if ctx.is_numpy:
        value, bias = inputs
        if (value.ndim >= 2 and bias.ndim == 1 and bias.shape[0] == value.shape[-1]
                and attrs.get("data_format", "NHWC") == "NHWC"):
            return [value + bias]
    xp, (value, bias) = namespace(ctx, *inputs)
    if value.ndim < 2:
        fail("BiasAdd", f"value must have rank >= 2, got shape {tuple(value.shape)}")
    axis = _channel_axis(attrs.get("data_format", "NHWC"), value.ndim)
    if int(bias.shape[0]) != int(value.shape[axis]):
        fail("BiasAdd", f"bias of size {bias.shape[0]} does not match dimension {axis} of "
                        f"value shape {tuple(value.shape)}")
    return [value + _broadcast_channels(xp, bias, value.ndim, axis)]


# --------------------------------------------------------------------------- window geometry

def _spatial(values, data_format: str, rank: int, op: str, what: str) -> list[int]:
    """The spatial entries of a per-dimension attr given in data_format order."""
    values = list(values)
    if len(values) != rank:
        fail(op, f"{what} must have {rank} entries, got {values}")
    if data_format.startswith("NC"):
        outer, spatial = values[:2], values[2:]
    else:
        outer, spatial = [values[0], values[-1]], values[1:-1]
    if what != "explicit_paddings" and any(v != 1 for v in outer):
        fail(op, f"{what} {values} over the batch or channel dimension is not supported")
    return spatial


def _explicit_pads(attrs, data_format, rank, op):
    flat = list(attrs.get("explicit_paddings", []))
    if len(flat) != 2 * rank:
        fail(op, f"explicit_paddings must have {2 * rank} entries for padding EXPLICIT, got {flat}")
    pairs = [tuple(flat[2 * i:2 * i + 2]) for i in range(rank)]
    return _spatial(pairs, data_format, rank, op, "explicit_paddings")


def window_geometry(op, in_sizes, window, strides, dilations, padding, explicit=None):
    """Output sizes and (before, after) pads of each spatial dimension, as TensorFlow sizes them."""
    outs, pads = [], []
    for i, (n, k, s, d) in enumerate(zip(in_sizes, window, strides, dilations)):
        if s < 1 or d < 1:
            fail(op, f"strides and dilations must be >= 1, got {strides} and {dilations}")
        effective = (k - 1) * d + 1
        if padding == "VALID":
            before = after = 0
            out = (n - effective + s) // s
        elif padding == "SAME":
            out = -(-n // s)
            total = max((out - 1) * s + effective - n, 0)
            before, after = total // 2, total - total // 2
        elif padding == "EXPLICIT":
            before, after = explicit[i]
            out = (n + before + after - effective + s) // s
        else:
            fail(op, f"unknown padding {padding!r}")
        if out < 0:
            fail(op, f"Computed output size would be negative: {out} [input {n}, window {k}, "
                     f"stride {s}, dilation {d}, padding {padding}]")
        outs.append(out)
        pads.append((before, after))
    return outs, pads


def _to_channels_last(xp, x, data_format):
    if data_format.startswith("NC"):
        return xp.permute_dims(x, (0,) + tuple(range(2, x.ndim)) + (1,))
    return x


def _from_channels_last(xp, y, data_format):
    if data_format.startswith("NC"):
        return xp.permute_dims(y, (0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))
    return y


def _window_slices(offsets, dilations, strides, out_sizes):
    """Index of the input elements that kernel position ``offsets`` meets, for every output."""
    return (slice(None),) + tuple(
        slice(o * d, o * d + s * (n - 1) + 1, s) if n else slice(0, 0)
        for o, d, s, n in zip(offsets, dilations, strides, out_sizes)) + (slice(None),)


def _numpy_windows(x, window, dilations, strides, out_sizes):
    """A (N, *out, *window, C) strided view of padded channels-last x (numpy only)."""
    sn, *spatial_strides, sc = x.strides
    shape = (x.shape[0], *out_sizes, *window, x.shape[-1])
    strides_ = (sn, *(st * s for st, s in zip(spatial_strides, strides)),
                *(st * d for st, d in zip(spatial_strides, dilations)), sc)
    return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides_, writeable=False)


_PATCH_CHUNK_BYTES = 4 * 2**20  # im2col patches copied per matmul (cache-sized, bounds memory)
_TAP_CHUNK_BYTES = 128 * 2**10  # output lanes one tap-by-tap pass works on (stays in cache)
_FLAT_CHUNK = 1 << 16  # elements per pass of `_depthwise_flat` (its three runs stay in cache)
_THREADED_TAPS = 1 << 20  # multiply-adds from which the blocks of a depthwise conv use the threads
_STACKED_GROUP_MNK = 1 << 20  # multiply-adds per group below which groups share one stacked matmul
_WINOGRAD_BLOCK_TILES = 96  # fewest tiles per block of a Winograd conv (below: its products in parallel)


# --------------------------------------------------------------------------- numpy fast paths

def _tap_range(k, dilation, stride, before, size, out):
    """Outputs [first, stop) that kernel position ``k`` meets inside the unpadded input,
    and the input index of ``first``."""
    shift = k * dilation - before                  # output o reads input o * stride + shift
    first = max(0, -(shift // stride))             # ceil(-shift / stride)
    stop = min(out, (size - 1 - shift) // stride + 1) if size - 1 - shift >= 0 else 0
    return first, max(first, stop), first * stride + shift


def _taps(window, strides, dilations, pads, in_sizes, outs):
    """Per kernel position: (offsets, output slices, input slices, covers every output),
    positions that fall wholly in the padding left out."""
    return _taps_cached(tuple(int(k) for k in window), tuple(strides), tuple(dilations),
                        tuple(tuple(p) for p in pads), tuple(int(n) for n in in_sizes),
                        tuple(outs))


@functools.lru_cache(maxsize=512)
def _taps_cached(window, strides, dilations, pads, in_sizes, outs):
    per_dim = []
    for k, s, d, (before, _), size, out in zip(window, strides, dilations, pads, in_sizes, outs):
        options = []
        for offset in range(k):
            first, stop, start = _tap_range(offset, d, s, before, size, out)
            if stop > first:
                options.append((offset, slice(first, stop),
                                slice(start, start + s * (stop - first - 1) + 1, s),
                                first == 0 and stop == out))
        per_dim.append(options)
    taps = []
    for combo in itertools.product(*per_dim):
        taps.append((tuple(c[0] for c in combo), tuple(c[1] for c in combo),
                     tuple(c[2] for c in combo), all(c[3] for c in combo)))
    return tuple(taps)


def _batch_chunk(n, per_item_bytes, budget):
    return max(1, min(n, budget // max(per_item_bytes, 1)))


def _zero_padded(x, pads, value=0):
    """x (N, *S, C) padded on its spatial axes (one allocation, no np.pad)."""
    if not any(b or a for b, a in pads):
        return x
    shape = (x.shape[0],) + tuple(n + b + a for n, (b, a) in zip(x.shape[1:-1], pads)) + (x.shape[-1],)
    out = np.full(shape, value, dtype=x.dtype) if value else np.zeros(shape, dtype=x.dtype)
    out[(slice(None),) + tuple(slice(b, b + n) for n, (b, _) in zip(x.shape[1:-1], pads))] = x
    return out


def _conv_numpy(x, w, strides, dilations, pads, out_sizes):
    """Cross-correlation on numpy as BLAS matmuls: 1x1 windows directly, others over im2col
    patches built a few images (or output rows) at a time, so memory stays bounded and the
    parts of a large convolution spread over the BLAS threads (`BLAS.run_parts`)."""
    window = tuple(int(k) for k in w.shape[:-2])
    n, out_channels = int(x.shape[0]), int(w.shape[-1])
    weights = np.ascontiguousarray(w).reshape(-1, out_channels)
    if all(k == 1 for k in window) and not any(b or a for b, a in pads):
        picked = x[(slice(None),) + tuple(slice(0, s * (o - 1) + 1, s) if o else slice(0, 0)
                                          for s, o in zip(strides, out_sizes))]
        flat = BLAS.matmul(picked.reshape(-1, weights.shape[0]), weights)
        return flat.reshape((n, *out_sizes, out_channels))
    x = _zero_padded(x, pads)
    out = np.empty((n, *out_sizes, out_channels), dtype=np.result_type(x.dtype, weights.dtype))
    if not out.size:
        return out
    view = _numpy_windows(x, window, dilations, strides, out_sizes)
    depth = weights.shape[0]
    pixels = math.prod(out_sizes)
    row_pixels = pixels // out_sizes[0]
    blocks = _conv_blocks(n, out_sizes[0], row_pixels * depth * x.itemsize,
                          BLAS.parts(n * pixels * depth * out_channels, n * out_sizes[0]))
    if blocks[0][1] - blocks[0][0] > 1:  # whole images per block
        flat_out = out.reshape(n * pixels, out_channels)

        def block(i):
            b, e, _, _ = blocks[i]
            patches = view[b:e].reshape((e - b) * pixels, depth)
            np.matmul(patches, weights, out=flat_out[b * pixels:e * pixels])
    else:  # output rows of one image per block
        flat_out = out.reshape(n, out_sizes[0] * row_pixels, out_channels)

        def block(i):
            b, _, r, e = blocks[i]
            patches = view[b, r:e].reshape((e - r) * row_pixels, depth)
            np.matmul(patches, weights, out=flat_out[b, r * row_pixels:e * row_pixels])
    b, e, r, f = blocks[0]
    BLAS.run_parts(block, len(blocks), (e - b) * (f - r) * row_pixels * depth * out_channels)
    return out


def _conv_blocks(n, rows, row_bytes, parts):
    """(first image, end image, first row, end row) of each block of an im2col conv: whole
    images when one image's patches fit the chunk budget and there are enough images for
    ``parts`` blocks, else runs of output rows of one image; patches stay within
    `_PATCH_CHUNK_BYTES`."""
    image_bytes = rows * row_bytes
    if image_bytes <= _PATCH_CHUNK_BYTES and (n >= parts or rows == 1):
        chunk = min(_batch_chunk(n, image_bytes, _PATCH_CHUNK_BYTES), -(-n // parts))
        return [(b, min(n, b + chunk), 0, rows) for b in range(0, n, chunk)]
    per_image = max(1, -(-parts // n))
    step = min(_batch_chunk(rows, row_bytes, _PATCH_CHUNK_BYTES), -(-rows // per_image))
    return [(b, b + 1, r, min(rows, r + step)) for b in range(n) for r in range(0, rows, step)]


def _winograd_numpy(x, u, pads, outs):
    """x (N, H, W, C) cross-correlated with the 3x3 filters whose Winograd transform is ``u``
    (16, C, K; `_winograd.filters`), padded by ``pads``: (N, *outs, K). Blocks of tile rows
    (whole images when they fit) run on the BLAS threads, each through its own transforms
    and products; a single block runs its 16 products in parallel instead."""
    n, channels, k = int(x.shape[0]), int(x.shape[-1]), int(u.shape[-1])
    out = np.empty((n, *outs, k), dtype=x.dtype)
    if not out.size:
        return out
    tile_rows, tile_cols = -(-outs[0] // 2), -(-outs[1] // 2)
    tiles = n * tile_rows * tile_cols
    # blocks of at least _WINOGRAD_BLOCK_TILES tiles: each block packs all 16 filters again
    parts = min(BLAS.parts(16 * tiles * channels * k, n * tile_rows),
                max(1, tiles // _WINOGRAD_BLOCK_TILES))
    blocks = _conv_blocks(n, tile_rows, 16 * tile_cols * channels * x.itemsize, parts)

    def block(i, threaded=False):
        b, e, r, f = blocks[i]
        v = _winograd.input_transform(x, b, e, r, f, tile_cols, pads)
        m = np.empty((16, v.shape[1], k), dtype=x.dtype)
        if threaded:
            BLAS.run_parts(lambda s: np.matmul(v[s], u[s], out=m[s]), 16, v.shape[1] * channels * k)
        else:
            np.matmul(v, u, out=m)
        m = m.reshape(4, 4, e - b, f - r, tile_cols, k)
        if 2 * f <= outs[0] and 2 * tile_cols == outs[1]:  # whole tiles: straight into out
            _winograd.output_transform(m, out[b:e, 2 * r:2 * f])
            return
        y = _winograd.output_transform(m)
        rows = min(2 * f, outs[0]) - 2 * r
        out[b:e, 2 * r:2 * r + rows] = y[:, :rows, :outs[1]]
    if len(blocks) > 1:
        b, e, r, f = blocks[0]
        BLAS.run_parts(block, len(blocks), 16 * (e - b) * (f - r) * tile_cols * channels * k)
    else:
        threaded = BLAS.parts(16 * tiles * channels * k, 16) > 1
        if not threaded:
            BLAS.for_product(tiles * channels * k)
        block(0, threaded)
    return out


def _grouped_numpy(x, w, groups, strides, dilations, pads, outs, memo=None):
    """A grouped 2-D convolution on numpy: the im2col patches of every group, a few images
    at a time, times each group's filters in one stacked matmul (output channel
    g * per_group + j, as the per-group split). ``memo`` keeps the filters laid out per group
    (G, window * C/G, per_group) in x's dtype (half floats come widened) for the last filter
    array seen."""
    n, (kh, kw, depth, out_channels) = int(x.shape[0]), (int(d) for d in w.shape)
    per_group = out_channels // groups
    kept = memo.get("grouped") if memo is not None else None
    if kept is None or kept[0] is not w:
        stacked = np.ascontiguousarray(
            w.reshape(kh, kw, depth, groups, per_group).transpose(3, 0, 1, 2, 4), dtype=x.dtype
        ).reshape(groups, kh * kw * depth, per_group)
        kept = (w, stacked)
        if memo is not None:
            memo["grouped"] = kept
    filters = kept[1]
    out = np.empty((n, *outs, out_channels), dtype=x.dtype)
    if not out.size:
        return out
    view = _numpy_windows(_zero_padded(x, pads), (kh, kw), dilations, strides, outs)
    pixels = outs[0] * outs[1]
    chunk = _batch_chunk(n, pixels * kh * kw * depth * groups * x.itemsize, _PATCH_CHUNK_BYTES)
    BLAS.for_product(chunk * pixels * kh * kw * depth * per_group)
    for b in range(0, n, chunk):
        e = min(n, b + chunk)
        patches = view[b:e].reshape(e - b, outs[0], outs[1], kh, kw, groups, depth)
        patches = np.ascontiguousarray(patches.transpose(5, 0, 1, 2, 3, 4, 6)).reshape(
            groups, (e - b) * pixels, kh * kw * depth)
        product = np.matmul(patches, filters)                 # (G, pixels, per_group)
        out[b:e] = product.transpose(1, 0, 2).reshape(e - b, *outs, out_channels)
    return out


def _depthwise_numpy(x, w, strides, dilations, pads, outs, memo=None):
    """Depthwise conv on numpy: a multiply-add per kernel position over the outputs it meets
    (no padded copy), a few images at a time so the passes stay in cache. Filters are tiled
    along the output width and strided input columns are regrouped by phase, so every pass
    runs over long contiguous rows. ``memo`` (a node's dict) keeps the tiled filters of
    the last filter array seen (a constant: the same array object every call)."""
    n, channels = int(x.shape[0]), int(x.shape[-1])
    multiplier = int(w.shape[-1])
    rank = len(outs)
    lanes = (channels,) if multiplier == 1 else (channels, multiplier)
    dtype = np.result_type(x.dtype, w.dtype)
    out = np.empty((n, *outs) + lanes, dtype=dtype)
    if not out.size:
        return out.reshape((n, *outs, channels * multiplier))
    program, first = _depthwise_program(
        tuple(int(k) for k in w.shape[:-2]), tuple(strides), tuple(dilations),
        tuple(tuple(p) for p in pads), tuple(int(d) for d in x.shape[1:-1]), tuple(outs))
    last = memo.get("tiled") if memo is not None else None
    if last is not None and last[0] is w and last[1] == outs[-1]:
        tiled = last[2]
    else:
        filters = w[..., 0] if multiplier == 1 else w
        # filters[offsets] repeated along the output's last spatial axis: (..., out width, *lanes)
        tiled = np.repeat(np.expand_dims(filters, rank), outs[-1], axis=rank)
        if memo is not None:
            memo["tiled"] = (w, outs[-1], tiled)
    if not first:
        out.fill(0)
    step = strides[-1]
    chunk = _batch_chunk(n, out[:1].nbytes, _TAP_CHUNK_BYTES)
    starts = range(0, n, chunk)

    def block(i):  # the images [b, e): numpy's loops release the GIL, so blocks run in parallel
        b = starts[i]
        e = min(n, b + chunk)
        part, target_part = x[b:e], out[b:e]
        scratch_part = np.empty((e - b, *outs) + lanes, dtype=dtype)
        phases = [np.ascontiguousarray(part[..., r::step, :]) for r in range(step)] \
            if step > 1 else [part]
        for k, (offsets, phase, source_index, target_index, scratch_index, width) in \
                enumerate(program):
            source = phases[phase][source_index]
            if multiplier != 1:
                source = source[..., None]
            weights = tiled[offsets][:width]
            if k == 0 and first:
                np.multiply(source, weights, out=target_part)
                continue
            target = target_part[target_index]
            product = scratch_part[scratch_index]
            np.multiply(source, weights, out=product)
            np.add(target, product, out=target)
    if out.size * len(program) >= _THREADED_TAPS:
        BLAS.run_parts(block, len(starts), 0)
    else:
        for i in range(len(starts)):
            block(i)
    return out.reshape((n, *outs, channels * multiplier))


class _FlatDepthwise:
    """An NHWC depthwise conv with one filter per channel, prepared for one input shape and
    one filter array: each kernel position is one multiply-add over long contiguous runs.
    Images are laid out zero-padded and flattened; with strides, as one such layout per
    phase (the padded rows and columns ``t * stride + r`` for each remainder r), so a
    kernel position at padded offset ``k * dilation = q * stride + r`` reads phase r shifted
    by q. Output position p (counted in the layout) is then the sum over kernel positions
    of ``flat[p + offset] * filter``, the filter repeating with period C along p; positions
    beyond the output's rows and columns are computed too and dropped when the block is
    copied out. numpy runs such same-shape contiguous operands on its vectorised loops
    (strided windows it first copies through its buffers), and everything but the passes
    themselves is worked out here once."""

    @classmethod
    def build(cls, ctx, x, w, geometry):
        """The prepared conv, or None when this form does not apply."""
        if (type(x) is not np.ndarray or type(w) is not np.ndarray or x.ndim != 4 or w.ndim != 4
                or x.dtype != w.dtype or x.dtype not in _FLAT_FLOATS or w.shape[3] != 1
                or w.shape[2] != x.shape[3] or not x.size):
            return None
        data_format, strides, dilations, outs, pads = geometry(x, [int(k) for k in w.shape[:2]])
        if data_format != "NHWC" or not all(outs):
            return None
        ctx.check_alloc([x.shape[0], *outs, x.shape[3]], x.dtype, "DepthwiseConv2dNative")
        return cls(x, w, strides, dilations, pads, outs)

    def __init__(self, x, w, strides, dilations, pads, outs):
        self.w = w  # the filter array the repeated filters were made from
        n, channels = int(x.shape[0]), int(x.shape[-1])
        window = [int(k) for k in w.shape[:-2]]
        self.dtype = x.dtype
        self.out_shape = (n, *outs, channels)
        # per axis: the layout's size (outputs plus the largest shift), and per kernel index its (phase, shift)
        taps = [[divmod(k * d, s)[::-1] for k in range(size)] for size, d, s in zip(window, dilations, strides)]
        sizes = [o + max(q for _, q in axis) for o, axis in zip(outs, taps)]
        steps = [math.prod(sizes[a + 1:]) * channels for a in range(len(sizes))]
        self.area = area = math.prod(sizes) * channels
        self.phases = phases = list(itertools.product(*(range(s) for s in strides)))
        self.image = image = len(phases) * area
        self.offsets, shifts = [], []
        for position in itertools.product(*taps):
            shift = sum(q * st for (_, q), st in zip(position, steps))
            self.offsets.append(phases.index(tuple(r for r, _ in position)) * area + shift)
            shifts.append(shift)
        self.reach = max(shifts)  # positions from area - reach on would read past their phase
        # where each phase's rows and columns come from: (target slices, source slices) in x
        self.fills = []
        for phase in phases:
            target, source = [], []
            for r, s, (before, _), size, q in zip(phase, strides, pads, x.shape[1:-1], sizes):
                first = max(0, -(-(before - r) // s))
                stop = min(q, (int(size) - 1 + before - r) // s + 1)
                if stop <= first:
                    break
                begin = first * s + r - before
                target.append(slice(first, stop))
                source.append(slice(begin, begin + (stop - first - 1) * s + 1, s))
            else:
                self.fills.append((phases.index(phase), tuple(target), tuple(source)))
        self.as_is = len(phases) == 1 and tuple(sizes) == tuple(x.shape[1:-1])  # no padding to add
        self.chunk = chunk = max(1, min(n, _TAP_CHUNK_BYTES // (image * x.itemsize)))
        run = chunk * image - self.offsets[-1] if len(phases) == 1 else area - self.reach
        self.length = length = min(max(channels, _FLAT_CHUNK // channels * channels), run)  # a multiple of C
        filters = w.reshape(len(self.offsets), channels)
        self.tiles = np.tile(filters, (1, -(-length // channels)))[:, :length]
        self.sizes = tuple(sizes)
        self.kept = (slice(None),) + tuple(slice(0, o) for o in outs)
        self.starts = range(0, n, chunk)
        self.threaded = math.prod(self.out_shape) * len(self.offsets) >= _THREADED_TAPS

    def __call__(self, x):
        out = np.empty(self.out_shape, dtype=self.dtype)
        if self.threaded and len(self.starts) > 1:
            BLAS.run_parts(lambda i: self.block(x, out, i), len(self.starts), 0)
        else:
            for i in range(len(self.starts)):
                self.block(x, out, i)
        return out

    def block(self, x, out, i):
        """The images [b, e) (numpy's loops release the GIL: blocks run in parallel)."""
        b = self.starts[i]
        e = min(len(x), b + self.chunk)
        if self.as_is:
            flat = np.ascontiguousarray(x[b:e]).reshape(-1)  # only read
        else:
            source = np.zeros((e - b, len(self.phases), *self.sizes, x.shape[-1]), dtype=self.dtype)
            for phase, target, inside in self.fills:
                source[(slice(None), phase) + target] = x[(slice(b, e),) + inside]
            flat = source.reshape(-1)
        wide = np.empty((e - b) * self.area, dtype=self.dtype)
        if len(self.phases) == 1:  # the images one after another: one run over them all
            runs = [(0, 0, flat.size - self.offsets[-1])]
        else:  # each image's phases apart: one run per image
            runs = [(k * self.image, k * self.area, self.area - self.reach) for k in range(e - b)]
        length, offsets = self.length, self.offsets
        scratch = np.empty(length, dtype=self.dtype)
        for base, into, end in runs:
            tiles, product = self.tiles, scratch
            for start in range(0, end, length):
                stop = min(end, start + length)
                target = wide[into + start:into + stop]
                if stop - start != length:
                    tiles, product = self.tiles[:, :stop - start], scratch[:stop - start]
                at, until = base + start, base + stop
                np.multiply(flat[at:until], tiles[0], out=target)  # offsets[0] is 0
                for k in range(1, len(offsets)):
                    np.multiply(flat[at + offsets[k]:until + offsets[k]], tiles[k], out=product)
                    np.add(target, product, out=target)
        np.copyto(out[b:e], wide.reshape((e - b, *self.sizes, x.shape[-1]))[self.kept])


_FLAT_FLOATS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})


@functools.lru_cache(maxsize=256)
def _depthwise_program(window, strides, dilations, pads, in_sizes, outs):
    """The passes of `_depthwise_numpy` for one geometry: per kernel position (offsets,
    input phase, source index, output index, scratch index, output width), a position
    covering every output first; and whether there is one."""
    taps = _taps(window, strides, dilations, pads, in_sizes, outs)
    first = next((t for t in taps if t[3]), None)
    if first is not None:
        taps = (first,) + tuple(t for t in taps if t is not first)
    step = strides[-1]
    program = []
    for offsets, out_index, in_index, _ in taps:
        cols, width = in_index[-1], out_index[-1].stop - out_index[-1].start
        if step > 1:  # the columns of one phase, contiguous
            start = cols.start // step
            phase, cols = cols.start % step, slice(start, start + width)
        else:
            phase = 0
        program.append((offsets, phase, (slice(None),) + in_index[:-1] + (cols,),
                        (slice(None),) + out_index,
                        (slice(None),) + tuple(slice(0, i.stop - i.start) for i in out_index),
                        width))
    return tuple(program), first is not None


def _pool_numpy(x, window, strides, pads, outs, average):
    """Max or summed pooling on numpy, one elementwise pass per window position (no padded copy).
    Returns the sums for average pooling; the caller divides by the window counts."""
    n, channels = int(x.shape[0]), int(x.shape[-1])
    dtype = np.float32 if average and is_half(x) else x.dtype
    taps = _taps(window, strides, [1] * len(window), pads, x.shape[1:-1], outs)
    out = np.empty((n, *outs, channels), dtype=dtype)
    if not out.size:
        return out
    combine = np.add if average else np.maximum
    first = next((t for t in taps if t[3]), None)
    if first is None:
        out.fill(0 if average else lowest(x))
    else:
        out[...] = x[(slice(None),) + first[2]]
    for _, out_index, in_index, _ in taps:
        if first is not None and out_index == first[1] and in_index == first[2]:
            continue
        target = out[(slice(None),) + out_index]
        combine(target, x[(slice(None),) + in_index], out=target)
    return out


def _conv_backprop_numpy(dy, w, in_sizes, strides, dilations, pads, depthwise):
    """The input gradient on numpy: batched matmuls give every kernel position's
    contribution, then one add per position into the (unpadded) input gradient. With a
    stride along the last spatial axis the gradient is gathered by phase of that axis, so
    the adds run over contiguous rows, and interleaved once at the end."""
    window = tuple(int(k) for k in w.shape[:-2])
    n, out_sizes = int(dy.shape[0]), [int(d) for d in dy.shape[1:-1]]
    channels = int(w.shape[-2])
    dtype = np.result_type(dy.dtype, w.dtype)
    taps = _taps(window, strides, dilations, pads, in_sizes, out_sizes)
    if not math.prod(in_sizes) * n * channels or not dy.size or not taps:
        return np.zeros((n, *in_sizes, channels), dtype=dtype)
    step, width = int(strides[-1]), int(in_sizes[-1])
    phased = step > 1
    if phased:  # dx[..., q * step + r, :] lives at buffer[..., r, q, :]
        columns = -(-width // step)
        buffer = np.zeros((n, *in_sizes[:-1], step, columns, channels), dtype=dtype)
    else:
        buffer = np.zeros((n, *in_sizes, channels), dtype=dtype)
    positions = math.prod(window)
    by_position = w.reshape(positions, channels, -1).transpose(0, 2, 1)  # (P, O, C)
    chunk = _batch_chunk(n, positions * math.prod(out_sizes) * channels * dtype.itemsize,
                         _PATCH_CHUNK_BYTES)
    for b in range(0, n, chunk):
        e = min(n, b + chunk)
        if depthwise:
            grouped = dy[b:e].reshape((e - b, *out_sizes, channels, int(w.shape[-1])))
        else:  # (position, images, *out, C): contributions contiguous for the adds below
            per_position = np.matmul(dy[b:e].reshape(-1, dy.shape[-1]), by_position).reshape(
                (positions, e - b, *out_sizes, channels))
        for offsets, out_index, in_index, _ in taps:
            if phased:
                cols, count = in_index[-1], out_index[-1].stop - out_index[-1].start
                first = cols.start // step
                target = buffer[(slice(b, e),) + in_index[:-1] + (cols.start % step,
                                                                  slice(first, first + count))]
            else:
                target = buffer[(slice(b, e),) + in_index]
            if depthwise:
                part = np.einsum("...cm,cm->...c", grouped[(slice(None),) + out_index], w[offsets])
            else:
                part = per_position[(np.ravel_multi_index(offsets, window), slice(None)) + out_index]
            np.add(target, part, out=target)
    if not phased:
        return buffer
    rank = len(in_sizes)
    order = tuple(range(rank)) + (rank + 1, rank, rank + 2)  # (..., q, r, C)
    interleaved = buffer.transpose(order).reshape((n, *in_sizes[:-1], columns * step, channels))
    return np.ascontiguousarray(interleaved[..., :width, :])


# --------------------------------------------------------------------------- convolution

def _conv_channels_last(ctx, xp, x, w, strides, dilations, pads, out_sizes, op, memo=None):
    """Cross-correlation of x (N, *S, C) with w (*K, C, O): (N, *out, O). ``memo`` (a node's
    dict) keeps what is made from the last filter array seen (a constant: the same array
    object every call): its float32 copy (half floats) and its Winograd transform."""
    window = [int(k) for k in w.shape[:-2]]
    n, out_channels = int(x.shape[0]), int(w.shape[-1])
    out_dtype = np_dtype(x.dtype)
    ctx.check_alloc([n, *out_sizes, out_channels], out_dtype, op)
    if is_numpy(xp) and ctx.optimize:  # the general code is the reference
        kept = memo.get("filters") if memo is not None else None
        if kept is None or kept[0] is not w:
            kept = [w, wide(xp, w), None]  # the filters given, in float32, Winograd-transformed
            if memo is not None:
                memo["filters"] = kept
        x, w = wide(xp, x), kept[1]
        if memo is not None and _winograd.applies(w, strides, dilations, x, out_sizes):
            if kept[2] is None:
                kept[2] = _winograd.filters(w)
            return astype(xp, _winograd_numpy(x, kept[2], pads, out_sizes), out_dtype)
        return astype(xp, _conv_numpy(x, w, strides, dilations, pads, out_sizes), out_dtype)
    if is_half(x):
        x, w = astype(xp, x, np.float32), astype(xp, w, np.float32)
    x = pad(xp, x, [(0, 0)] + list(pads) + [(0, 0)])
    out = xp.zeros((n, *out_sizes, out_channels), dtype=x.dtype)
    for offsets in itertools.product(*(range(k) for k in window)):
        patch = x[_window_slices(offsets, dilations, strides, out_sizes)]
        out = out + xp.matmul(patch, w[offsets + (Ellipsis,)])
    return astype(xp, out, out_dtype)


def _grouped_conv(ctx, xp, x, w, strides, dilations, pads, out_sizes, op, memo=None):
    in_channels, filter_channels = int(x.shape[-1]), int(w.shape[-2])
    if filter_channels == 0 or in_channels % filter_channels:
        fail(op, f"input depth {in_channels} must be a multiple of the filter depth {filter_channels}")
    groups = in_channels // filter_channels
    if groups == 1:
        return _conv_channels_last(ctx, xp, x, w, strides, dilations, pads, out_sizes, op, memo)
    out_channels = int(w.shape[-1])
    if out_channels % groups:
        fail(op, f"output depth {out_channels} must be divisible by the number of groups {groups}")
    per_group = out_channels // groups
    if filter_channels == 1 and len(out_sizes) == 2 and is_numpy(xp) and ctx.optimize:
        # one input channel per group (Keras 3's Conv2D(groups=channels), e.g. ConvNeXt's 7x7):
        # a depthwise convolution, output channel g * per_group + j as DepthwiseConv2dNative's
        depthwise = xp.reshape(w, (*w.shape[:2], groups, per_group))
        out = _depthwise_numpy(wide(xp, x), wide(xp, depthwise), strides, dilations, pads, out_sizes)
        return astype(xp, out, np_dtype(x.dtype))
    group_mnk = int(x.shape[0]) * math.prod(out_sizes) * math.prod(w.shape[:-1]) * per_group
    if len(out_sizes) == 2 and is_numpy(xp) and ctx.optimize and group_mnk < _STACKED_GROUP_MNK:
        ctx.check_alloc([int(x.shape[0]), *out_sizes, out_channels], np_dtype(x.dtype), op)
        out = _grouped_numpy(wide(xp, x), w, groups, strides, dilations, pads, out_sizes, memo)
        return astype(xp, out, np_dtype(x.dtype))
    parts = [
        _conv_channels_last(ctx, xp, x[..., g * filter_channels:(g + 1) * filter_channels],
                            w[..., g * per_group:(g + 1) * per_group],
                            strides, dilations, pads, out_sizes, op)
        for g in range(groups)]
    return xp.concat(parts, axis=-1)


class ConvGeometry:
    """One node's (data_format, strides, dilations, output sizes, pads), remembered per
    input shape and window (the prepared state of a convolution step)."""

    def __init__(self, op, attrs, rank, default_format):
        self.op, self.attrs, self.rank, self.default_format = op, attrs, rank, default_format
        self.known: dict = {}

    def __call__(self, x, window):
        key = (tuple(x.shape), tuple(window))
        found = self.known.get(key)
        if found is None:
            found = _conv_geometry(self.op, x, window, self.attrs, self.rank, self.default_format)
            if len(self.known) > 64:
                self.known.clear()
            self.known[key] = found
        return found


def _conv_geometry(op, x, window, attrs, rank, default_format):
    data_format = attrs.get("data_format", default_format)
    padding = attrs["padding"]
    strides = _spatial(attrs["strides"], data_format, rank, op, "strides")
    dilations = _spatial(attrs.get("dilations", [1] * rank), data_format, rank, op, "dilations")
    explicit = _explicit_pads(attrs, data_format, rank, op) if padding == "EXPLICIT" else None
    if data_format.startswith("NC"):
        in_sizes = [int(d) for d in x.shape[2:]]
    else:
        in_sizes = [int(d) for d in x.shape[1:-1]]
    outs, pads = window_geometry(op, in_sizes, window, strides, dilations, padding, explicit)
    return data_format, strides, dilations, outs, pads


def _conv_kernel(op, rank, default_format):
    @prepared_op_kernel(op)
    def prepare(node, ctx):
        geometry = ConvGeometry(op, node.attrs, rank, default_format)
        memo: dict = {}

        def run(inputs):
            xp, (x, w) = namespace(ctx, *inputs)
            if x.ndim != rank or w.ndim != rank:
                fail(op, f"input and filter must have rank {rank}, got {tuple(x.shape)} and {tuple(w.shape)}")
            data_format, strides, dilations, outs, pads = geometry(x, [int(k) for k in w.shape[:-2]])
            x = _to_channels_last(xp, x, data_format)
            y = _grouped_conv(ctx, xp, x, w, strides, dilations, pads, outs, op, memo)
            return [_from_channels_last(xp, y, data_format)]
        return run
    return prepare


_conv_kernel("Conv2D", 4, "NHWC")
_conv_kernel("Conv3D", 5, "NDHWC")


@prepared_op_kernel("DepthwiseConv2dNative")
def prepare_depthwise_conv2d(node, ctx):
    geometry = ConvGeometry("DepthwiseConv2dNative", node.attrs, 4, "NHWC")
    memo: dict = {}
    if not (ctx.is_numpy and ctx.optimize):  # the general code is the reference
        return lambda inputs: depthwise_conv2d(ctx, inputs, geometry, memo)
    flat: dict = {}  # (x shape, x dtype) -> (filter array, its _FlatDepthwise or None)

    def run(inputs):
        x, w = inputs
        key = (getattr(x, "shape", None), getattr(x, "dtype", None))
        found = flat.get(key)
        if found is None or found[0] is not w or type(w) is not np.ndarray or w.flags.writeable:
            if len(flat) > 8:
                flat.clear()
            found = flat[key] = (w, _FlatDepthwise.build(ctx, x, w, geometry))
        if found[1] is None:
            return finish_outputs(ctx, depthwise_conv2d(ctx, inputs, geometry, memo))
        return [found[1](x)]
    run.finished = True
    return run


def depthwise_conv2d(ctx, inputs, geometry, memo=None):
    """Each input channel c convolved with filter[..., c, m]: output channel c * M + m."""
    xp, (x, w) = namespace(ctx, *inputs)
    op = "DepthwiseConv2dNative"
    if x.ndim != 4 or w.ndim != 4:
        fail(op, f"input and filter must have rank 4, got {tuple(x.shape)} and {tuple(w.shape)}")
    data_format, strides, dilations, outs, pads = geometry(x, [int(k) for k in w.shape[:2]])
    x = _to_channels_last(xp, x, data_format)
    n, channels, multiplier = int(x.shape[0]), int(x.shape[-1]), int(w.shape[-1])
    if int(w.shape[2]) != channels:
        fail(op, f"filter depth {w.shape[2]} must equal the input depth {channels}")
    out_dtype = np_dtype(x.dtype)
    ctx.check_alloc([n, *outs, channels * multiplier], out_dtype, op)
    work_x, work_w = wide(xp, x), wide(xp, w)
    if is_numpy(xp) and ctx.optimize:  # the general code is the reference
        out = _depthwise_numpy(work_x, work_w, strides, dilations, pads, outs, memo)
        return [_from_channels_last(xp, astype(xp, out, out_dtype), data_format)]
    work_x = pad(xp, work_x, [(0, 0)] + pads + [(0, 0)])
    out = xp.zeros((n, *outs, channels, multiplier), dtype=work_x.dtype)
    for offsets in itertools.product(*(range(int(k)) for k in w.shape[:2])):
        patch = work_x[_window_slices(offsets, dilations, strides, outs)]
        out = out + patch[..., None] * work_w[offsets + (Ellipsis,)]
    out = astype(xp, xp.reshape(out, (n, *outs, channels * multiplier)), out_dtype)
    return [_from_channels_last(xp, out, data_format)]


def _conv_backprop_input(ctx, xp, dy, w, in_sizes, strides, dilations, pads, depthwise, op):
    """The gradient of a convolution with respect to its input, channels-last (transposed conv)."""
    window = [int(k) for k in w.shape[:-2]]
    out_sizes = [int(d) for d in dy.shape[1:-1]]
    n, channels = int(dy.shape[0]), int(w.shape[-2])
    out_dtype = np_dtype(dy.dtype)
    buffer_sizes = [max(size + before + after, (o - 1) * s + (k - 1) * d + 1 if o else 0)
                    for size, (before, after), o, s, k, d
                    in zip(in_sizes, pads, out_sizes, strides, window, dilations)]
    ctx.check_alloc([n, *buffer_sizes, channels], out_dtype, op)
    dy, w = wide(xp, dy), wide(xp, w)
    if is_numpy(xp) and ctx.optimize:  # the general code is the reference
        return astype(xp, _conv_backprop_numpy(dy, w, in_sizes, strides, dilations, pads, depthwise),
                      out_dtype)
    if depthwise:
        dy = xp.reshape(dy, (n, *out_sizes, channels, int(w.shape[-1])))
    dx = xp.zeros((n, *buffer_sizes, channels), dtype=dy.dtype)
    for offsets in itertools.product(*(range(k) for k in window)):
        if depthwise:
            contribution = xp.sum(dy * w[offsets + (Ellipsis,)], axis=-1)
        else:
            contribution = xp.matmul(dy, xp.matrix_transpose(w[offsets + (Ellipsis,)]))
        index = _window_slices(offsets, dilations, strides, out_sizes)
        dx[index] = dx[index] + contribution
    crop = (slice(None),) + tuple(slice(b, b + size) for (b, _), size in zip(pads, in_sizes)) + (slice(None),)
    return astype(xp, dx[crop], out_dtype)


def _backprop_input_kernel(op, rank, default_format, depthwise=False):
    @op_kernel(op)
    def run(ctx, inputs, attrs):
        sizes = host_ints(ctx, inputs[0])
        xp, (w, dy) = namespace(ctx, inputs[1], inputs[2])
        data_format = attrs.get("data_format", default_format)
        if len(sizes) != rank or dy.ndim != rank or w.ndim != rank:
            fail(op, f"input_sizes {sizes}, filter {tuple(w.shape)} and out_backprop "
                     f"{tuple(dy.shape)} must all have rank {rank}")
        in_sizes = sizes[2:] if data_format.startswith("NC") else sizes[1:-1]
        padding = attrs["padding"]
        strides = _spatial(attrs["strides"], data_format, rank, op, "strides")
        dilations = _spatial(attrs.get("dilations", [1] * rank), data_format, rank, op, "dilations")
        explicit = _explicit_pads(attrs, data_format, rank, op) if padding == "EXPLICIT" else None
        window = [int(k) for k in w.shape[:-2]]
        outs, pads = window_geometry(op, in_sizes, window, strides, dilations, padding, explicit)
        dy = _to_channels_last(xp, dy, data_format)
        if [int(d) for d in dy.shape[1:-1]] != outs:
            fail(op, f"out_backprop spatial sizes {list(dy.shape[1:-1])} do not match the "
                     f"convolution output {outs} of input sizes {in_sizes}")
        dx = _conv_backprop_input(ctx, xp, dy, w, in_sizes, strides, dilations, pads, depthwise, op)
        return [_from_channels_last(xp, dx, data_format)]
    return run


_backprop_input_kernel("Conv2DBackpropInput", 4, "NHWC")
_backprop_input_kernel("Conv3DBackpropInputV2", 5, "NDHWC")
_backprop_input_kernel("DepthwiseConv2dNativeBackpropInput", 4, "NHWC", depthwise=True)


# --------------------------------------------------------------------------- pooling

def _pool(ctx, xp, op, x, ksize, strides, attrs, rank, default_format, average):
    data_format = attrs.get("data_format", default_format)
    padding = attrs["padding"]
    window = _spatial(ksize, data_format, rank, op, "ksize")
    steps = _spatial(strides, data_format, rank, op, "strides")
    explicit = _explicit_pads(attrs, data_format, rank, op) if padding == "EXPLICIT" else None
    x = _to_channels_last(xp, x, data_format)
    in_sizes = [int(d) for d in x.shape[1:-1]]
    dilations = [1] * len(window)
    outs, pads = window_geometry(op, in_sizes, window, steps, dilations, padding, explicit)
    n, channels = int(x.shape[0]), int(x.shape[-1])
    out_dtype = np_dtype(x.dtype)
    ctx.check_alloc([n, *outs, channels], out_dtype, op)
    if not math.prod(window):
        fail(op, f"ksize {window} must be positive")
    if is_numpy(xp) and ctx.optimize:  # the general code is the reference
        result = _pool_numpy(x, window, steps, pads, outs, average)
    else:
        work = wide(xp, x) if average else x
        padded = pad(xp, work, [(0, 0)] + pads + [(0, 0)], 0 if average else lowest(x))
        result = None
        for offsets in itertools.product(*(range(k) for k in window)):
            patch = padded[_window_slices(offsets, dilations, steps, outs)]
            if result is None:
                result = patch
            else:
                result = result + patch if average else xp.maximum(result, patch)
    if average:
        counts = _window_counts(in_sizes, window, steps, pads, outs).reshape((1, *outs, 1))
        if is_numpy(xp):
            np.divide(result, counts, out=result)
        else:
            result = result / xp.asarray(counts, dtype=result.dtype)
    return _from_channels_last(xp, astype(xp, result, out_dtype), data_format)


def _window_counts(in_sizes, window, strides, pads, outs) -> np.ndarray:
    """How many real (unpadded) inputs each output window covers: the AvgPool divisor."""
    counts = np.ones((), dtype=np.float64)
    for n, k, s, (before, _), out in zip(in_sizes, window, strides, pads, outs):
        start = np.arange(out) * s - before
        per_dim = np.minimum(start + k, n) - np.maximum(start, 0)
        counts = np.multiply.outer(counts, np.maximum(per_dim, 1))
    return counts.astype(np.float32)


def _pool_kernel(op, rank, default_format, average, sizes_as_inputs=False):
    @op_kernel(op)
    def run(ctx, inputs, attrs):
        if sizes_as_inputs:
            ksize, strides = host_ints(ctx, inputs[1]), host_ints(ctx, inputs[2])
        else:
            ksize, strides = attrs["ksize"], attrs["strides"]
        xp, (x,) = namespace(ctx, inputs[0])
        if x.ndim != rank:
            fail(op, f"input must have rank {rank}, got shape {tuple(x.shape)}")
        return [_pool(ctx, xp, op, x, ksize, strides, attrs, rank, default_format, average)]
    return run


_pool_kernel("MaxPool", 4, "NHWC", average=False)
_pool_kernel("MaxPoolV2", 4, "NHWC", average=False, sizes_as_inputs=True)
_pool_kernel("AvgPool", 4, "NHWC", average=True)
_pool_kernel("MaxPool3D", 5, "NDHWC", average=False)
_pool_kernel("AvgPool3D", 5, "NDHWC", average=True)


# --------------------------------------------------------------------------- normalization

def _fused_batch_norm(op, with_reserve_3):

    @op_kernel(op)
    def run(ctx, inputs, attrs):
        xp, (x, scale, offset, mean, variance) = namespace(ctx, *inputs[:5])
        data_format = attrs.get("data_format", "NHWC")
        epsilon = float_attr(attrs, "epsilon", 1e-4)
        factor = float_attr(attrs, "exponential_avg_factor", 1.0)
        axis = _channel_axis(data_format, x.ndim)
        stats_dtype = np_dtype(scale.dtype)
        w = astype(xp, x, stats_dtype)

        def per_channel(v):
            return _broadcast_channels(xp, v, x.ndim, axis)

        if attrs.get("is_training", True):
            axes = tuple(a for a in range(x.ndim) if a != axis)
            count = math.prod(int(x.shape[a]) for a in axes)
            batch_mean = xp.mean(w, axis=axes) if count else xp.zeros_like(scale)
            centered = w - per_channel(batch_mean)
            batch_var = xp.mean(centered * centered, axis=axes) if count else xp.zeros_like(scale)
            unbiased = batch_var * scalar(xp, count / max(count - 1, 1), batch_var)
            y = centered * per_channel(scale / xp.sqrt(batch_var + scalar(xp, epsilon, batch_var)))
            y = y + per_channel(offset)
            if factor != 1.0:
                keep = scalar(xp, 1.0 - factor, batch_mean)
                new = scalar(xp, factor, batch_mean)
                running_mean = keep * mean + new * batch_mean
                running_var = keep * variance + new * unbiased
            else:
                running_mean, running_var = batch_mean, unbiased
            results = [astype(xp, y, x.dtype), running_mean, running_var, batch_mean, batch_var]
        else:
            factor_ = scale / xp.sqrt(variance + scalar(xp, epsilon, variance))
            y = (w - per_channel(mean)) * per_channel(factor_) + per_channel(offset)
            results = [astype(xp, y, x.dtype), mean, variance, mean, variance]
        if with_reserve_3:
            results.append(xp.zeros((0,), dtype=scale.dtype))
        return results
    return run


_fused_batch_norm("FusedBatchNorm", with_reserve_3=False)
_fused_batch_norm("FusedBatchNormV2", with_reserve_3=False)
_fused_batch_norm("FusedBatchNormV3", with_reserve_3=True)


@op_kernel("LRN")
def local_response_normalization(ctx, inputs, attrs):
    """x / (bias + alpha * sum of x^2 over the depth_radius neighbouring channels) ** beta."""
    xp, (x,) = namespace(ctx, inputs[0])
    if x.ndim != 4:
        fail("LRN", f"input must have rank 4, got shape {tuple(x.shape)}")
    radius = int(attrs.get("depth_radius", 5))
    bias, alpha, beta = (float_attr(attrs, k, d) for k, d in (("bias", 1.0), ("alpha", 1.0), ("beta", 0.5)))
    w = wide(xp, x)
    channels = int(w.shape[-1])
    squares = pad(xp, w * w, [(0, 0)] * 3 + [(radius, radius)])
    total = xp.zeros_like(w)
    for shift in range(2 * radius + 1):
        total = total + squares[..., shift:shift + channels]
    base = scalar(xp, bias, w) + scalar(xp, alpha, w) * total
    return [astype(xp, w * xp.pow(base, scalar(xp, -beta, w)), x.dtype)]



# --------------------------------------------------------------------------- losses

def _log_softmax_parts(xp, logits):
    """(shifted logits, log of the sum of their exponentials) along the last axis."""
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    return shifted, xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


@op_kernel("SoftmaxCrossEntropyWithLogits")
def softmax_cross_entropy(ctx, inputs, attrs):
    """Per-row -sum(labels * log_softmax(features)), and softmax(features) - labels."""
    xp, (features, labels) = namespace(ctx, *inputs)
    if features.ndim == 1:
        features = xp.reshape(features, (1, -1))
    if labels.ndim == 1:
        labels = xp.reshape(labels, (1, -1))
    features, labels = xp.broadcast_arrays(features, labels)
    if features.ndim != 2:
        fail("SoftmaxCrossEntropyWithLogits", f"logits and labels must be 2-D, got {tuple(features.shape)}")
    w, y = wide(xp, features), wide(xp, labels)
    shifted, log_total = _log_softmax_parts(xp, w)
    loss = xp.sum(y * (log_total - shifted), axis=-1)
    backprop = xp.exp(shifted - log_total) - y
    return [astype(xp, loss, features.dtype), astype(xp, backprop, features.dtype)]


@op_kernel("SparseSoftmaxCrossEntropyWithLogits")
def sparse_softmax_cross_entropy(ctx, inputs, attrs):
    """Per-row -log_softmax(features)[label], and softmax(features) - one_hot(label)."""
    op = "SparseSoftmaxCrossEntropyWithLogits"
    xp, (features, labels) = namespace(ctx, *inputs)
    if features.ndim != 2 or labels.ndim != 1 or features.shape[0] != labels.shape[0]:
        fail(op, f"logits must be 2-D and labels 1-D of the same batch, got "
                 f"{tuple(features.shape)} and {tuple(labels.shape)}")
    classes = int(features.shape[1])
    host_labels = np.asarray(ctx.to_numpy(labels))
    bad = (host_labels < 0) | (host_labels >= classes)
    if bad.any():
        fail(op, f"Received a label value of {host_labels[bad][0]} which is outside the valid "
                 f"range of [0, {classes}).")
    w = wide(xp, features)
    shifted, log_total = _log_softmax_parts(xp, w) if classes else (w, w[:, :0])
    one_hot = astype(xp, xp.reshape(labels, (-1, 1)) == xp.reshape(
        xp.arange(classes, dtype=labels.dtype), (1, -1)), np_dtype(w.dtype))
    loss = xp.sum(one_hot * (log_total - shifted), axis=-1)
    backprop = xp.exp(shifted - log_total) - one_hot
    return [astype(xp, loss, features.dtype), astype(xp, backprop, features.dtype)]
