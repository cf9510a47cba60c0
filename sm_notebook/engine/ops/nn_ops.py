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
from ..half import to_float32, to_half
from . import _winograd
from ._numeric import (HALF, HALF_WIDE_MIN, astype, fail, finish_outputs, float_attr, host_ints,
                       is_half, is_numpy, lowest, namespace, np_dtype, op_kernel, pad,
                       prepared_op_kernel, scalar, wide)

# --------------------------------------------------------------------------- activations


def _activation(op, compute):
    @op_kernel(op)
    def run(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        if op == "Relu" and type(x) is np.ndarray and x.dtype == HALF and ctx.optimize:
            return [_relu_half_bits(x)]
        if is_half(x):
            return [astype(xp, compute(xp, astype(xp, x, np.float32), attrs), x.dtype)]
        return [compute(xp, x, attrs)]
    return run


def _relu_half_bits(x):
    """Relu of float16 on its bits, as int16: those at or below -1024 (0xFC00, -inf) are
    -0, the negative numbers and -inf, made +0 (as max(x, 0) in float32 does); NaNs and
    the rest stay. numpy's float16 maximum converts every element."""
    return np.where(x.view(np.int16) > -1024, x, np.zeros((), HALF))


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
    the shifted form is needed, or the dtype is neither float32 nor float64. Softmax is shift-invariant, and the rounding is no worse:
    exp(x) is rounded once where exp(x - max) also rounds x - max; with a row sum of at
    least 1 an exp is subnormal only where the probability itself is. Short rows are summed
    as Python floats (in float64), cheaper than a numpy reduction."""
    largest = _LARGEST.get(x.dtype)
    if largest is None:
        return None
    exps = np.exp(x)
    width = x.shape[-1]
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
            if value.dtype is HALF and bias.dtype is HALF and value.size >= HALF_WIDE_MIN \
                    and ctx.optimize:  # the same sums as numpy's half loop, in float32
                return [to_half(to_float32(value) + bias.astype(np.float32))]
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
_THREADED_TAPS = 1 << 19  # multiply-adds from which the blocks of a depthwise conv use the threads
_KEPT_PADDING_BYTES = 4 * 2**20  # padded copies a flat depthwise conv keeps for its next call
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


def _conv_numpy(x, w, strides, dilations, pads, out_sizes, epilogue=None):
    """Cross-correlation on numpy as BLAS matmuls: 1x1 windows directly, others over im2col
    patches built a few images (or output rows) at a time, so memory stays bounded and the
    parts of a large convolution spread over the BLAS threads (`BLAS.run_parts`).
    ``epilogue`` (2-D only; see `_block_finish`): applied to each block of the output."""
    window = tuple(int(k) for k in w.shape[:-2])
    n, out_channels = int(x.shape[0]), int(w.shape[-1])
    weights = np.ascontiguousarray(w).reshape(-1, out_channels)
    if all(k == 1 for k in window) and not any(b or a for b, a in pads):
        picked = x[(slice(None),) + tuple(slice(0, s * (o - 1) + 1, s) if o else slice(0, 0)
                                          for s, o in zip(strides, out_sizes))]
        shape = (n, *out_sizes, out_channels)
        if epilogue is not None:
            out = np.empty(shape, dtype=np.result_type(x.dtype, weights.dtype))
            finish = _block_finish(epilogue, out)
            if finish is not None:
                BLAS.matmul(picked.reshape(-1, weights.shape[0]), weights, finish, out_sizes[-1],
                            out.reshape(-1, out_channels))
                return out
        return BLAS.matmul(picked.reshape(-1, weights.shape[0]), weights).reshape(shape)
    x = _zero_padded(x, pads)
    out = np.empty((n, *out_sizes, out_channels), dtype=np.result_type(x.dtype, weights.dtype))
    if not out.size:
        return out
    finish = _block_finish(epilogue, out)
    view = _numpy_windows(x, window, dilations, strides, out_sizes)
    depth = weights.shape[0]
    pixels = math.prod(out_sizes)
    row_pixels = pixels // out_sizes[0]
    blocks = _conv_blocks(n, out_sizes[0], row_pixels * depth * x.itemsize,
                          BLAS.parts(n * pixels * depth * out_channels, n * out_sizes[0], row_pixels))
    if blocks[0][1] - blocks[0][0] > 1:  # whole images per block
        flat_out = out.reshape(n * pixels, out_channels)

        def block(i):
            b, e, _, _ = blocks[i]
            patches = view[b:e].reshape((e - b) * pixels, depth)
            np.matmul(patches, weights, out=flat_out[b * pixels:e * pixels])
            if finish is not None:
                finish.rows(blocks[i])
    else:  # output rows of one image per block
        flat_out = out.reshape(n, out_sizes[0] * row_pixels, out_channels)

        def block(i):
            b, _, r, e = blocks[i]
            patches = view[b, r:e].reshape((e - r) * row_pixels, depth)
            np.matmul(patches, weights, out=flat_out[b, r * row_pixels:e * row_pixels])
            if finish is not None:
                finish.rows(blocks[i])
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


def _winograd_numpy(x, u, pads, outs, epilogue=None):
    """x (N, H, W, C) cross-correlated with the 3x3 filters whose Winograd transform is ``u``
    (16, C, K; `_winograd.filters`), padded by ``pads``: (N, *outs, K). Blocks of tile rows
    (whole images when they fit) run on the BLAS threads, each through its own transforms
    and products, then ``epilogue`` (`_block_finish`); a single block runs its 16 products
    in parallel instead."""
    n, channels, k = int(x.shape[0]), int(x.shape[-1]), int(u.shape[-1])
    out = np.empty((n, *outs, k), dtype=x.dtype)
    if not out.size:
        return out
    finish = _block_finish(epilogue, out)
    tile_rows, tile_cols = -(-outs[0] // 2), -(-outs[1] // 2)
    tiles = n * tile_rows * tile_cols
    # blocks of at least _WINOGRAD_BLOCK_TILES tiles: each block packs all 16 filters again
    parts = min(BLAS.parts(16 * tiles * channels * k, n * tile_rows, tile_cols),
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
        else:
            y = _winograd.output_transform(m)
            rows = min(2 * f, outs[0]) - 2 * r
            out[b:e, 2 * r:2 * r + rows] = y[:, :rows, :outs[1]]
        if finish is not None:
            finish.rows((b, e, 2 * r, 2 * f))
    if len(blocks) > 1:
        b, e, r, f = blocks[0]
        BLAS.run_parts(block, len(blocks), 16 * (e - b) * (f - r) * tile_cols * channels * k)
    else:
        threaded = BLAS.parts(16 * tiles * channels * k, 16) > 1
        if not threaded:
            BLAS.for_product(tiles * channels * k)
        block(0, threaded)
    return out


def _block_finish(epilogue, out):
    """``epilogue`` (a fused step's, from `fusion`) bound to the fresh output ``out``
    (N, H, W, K), to be applied block by block as the blocks are computed; None when there is
    none or it does not apply (the caller's step then applies it to the whole output)."""
    if epilogue is None or out.ndim != 4 or not out.size:
        return None
    apply = epilogue(out)
    return None if apply is None else _Finish(apply, int(out.shape[1]))


class _Finish:
    """``apply(lo, hi)`` on rows lo:hi of the output seen as (N * H, W, K)."""

    def __init__(self, apply, height):
        self.apply, self.height = apply, height

    def __call__(self, lo, hi):  # BLAS.matmul's runs of rows are image rows
        self.apply(lo, hi)

    def rows(self, block):
        """The block (first image, end image, first row, end row) of output rows."""
        b, e, r, f = block
        self.apply(b * self.height + r, (e - 1) * self.height + min(f, self.height))


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
    one filter array: the whole sum over kernel positions is one `np.einsum` per column
    phase over strided views of the input (no product arrays: each output element is read
    and written once per position in one C loop, which also releases the GIL).

    The input is read from a zero-padded copy whose columns are split by phase (padded
    column ``q * stride + r`` at phase r, index q), so that within a phase an output row is
    one contiguous run of ``out width * C`` elements and the kernel positions of that phase
    are a regular grid of offsets; with stride 1, no padding and a contiguous input, from
    the input itself. The filters are tiled along the output width once. The padded copies
    are kept between calls (their borders stay zero; only the inside is rewritten), one per
    concurrent call; the output is always a fresh array."""

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
        self.w = w  # the filter array the tiled filters were made from
        n, height, width, channels = (int(d) for d in x.shape)
        (kh, kw), (sh, sw), (dh, dw) = w.shape[:2], strides, dilations
        self.dtype = x.dtype
        self.out_shape = (n, *outs, channels)
        # the padded extent each axis needs, and the column phases' width
        rows = (outs[0] - 1) * sh + (kh - 1) * dh + 1
        cols = (outs[1] - 1) * sw + (kw - 1) * dw + 1
        self.as_is = sw == 1 and pads[0][0] == 0 and pads[1][0] == 0 and rows <= height and cols <= width
        if self.as_is:  # the input itself: rows of `width` columns
            phase_cols, row_len = width, width * channels
            self.layout = None
        else:
            phase_cols = -(-cols // sw)
            row_len = sw * phase_cols * channels
            self.layout = (rows, sw, phase_cols, channels)
            self.fills = []  # (phase, target rows, target cols, source rows, source cols)
            top = max(0, pads[0][0])
            row_stop = min(rows, pads[0][0] + height)
            if row_stop > top:
                for r in range(sw):
                    first = max(0, -(-(pads[1][0] - r) // sw))
                    stop = min(phase_cols, (pads[1][0] + width - 1 - r) // sw + 1, (cols - 1 - r) // sw + 1)
                    if stop > first:
                        begin = first * sw + r - pads[1][0]
                        self.fills.append((r, slice(top, row_stop), slice(first, stop),
                                           slice(top - pads[0][0], row_stop - pads[0][0]),
                                           slice(begin, begin + (stop - first - 1) * sw + 1, sw)))
        image = (height if self.as_is else rows) * row_len
        step = sw // math.gcd(dw, sw)
        out_run = outs[1] * channels
        item = x.itemsize
        self.phases, self.tiles = [], []  # per column phase: (view offset, taps, strides), tiles
        for r in range(sw):
            kxs = [k for k in range(kw) if (k * dw) % sw == r]
            if not kxs:
                continue
            q = (kxs[0] * dw) // sw
            offset = (r * phase_cols + q) * channels * item
            strides_ = (dh * row_len * item, step * dw // sw * channels * item, image * item,
                        sh * row_len * item, item)
            tiles = np.ascontiguousarray(np.broadcast_to(
                w[:, kxs[0]::step, :, 0][:, :len(kxs), None, :], (kh, len(kxs), outs[1], channels)))
            self.phases.append((offset, (kh, len(kxs)), strides_))
            self.tiles.append(tiles.reshape(kh, len(kxs), out_run))
        self.out_run = out_run
        image_bytes = math.prod(self.out_shape[1:]) * item
        self.chunk = chunk = max(1, min(n, _TAP_CHUNK_BYTES // image_bytes))  # blocks stay in cache
        self.threaded = math.prod(self.out_shape) * kh * kw >= _THREADED_TAPS
        if self.threaded and n > 1:
            self.chunk = chunk = min(chunk, -(-n // 2))
        self.starts = range(0, n, chunk)
        self.spare: list = []  # (padded copy, its views per image count) not in use (pop/append are atomic)

    def __call__(self, x, epilogue=None):
        """The conv of x (a fresh array); ``epilogue(out)`` (`fusion._fused`) may give an
        ``apply(lo, hi)`` to call on each block of output rows once written."""
        out = np.empty(self.out_shape, dtype=self.dtype)
        finish = _block_finish(epilogue, out)
        if self.threaded and len(self.starts) > 1:
            BLAS.run_parts(lambda i: self.block(x, out, i, finish), len(self.starts), 0)
        else:
            for i in range(len(self.starts)):
                self.block(x, out, i, finish)
        return out

    def block(self, x, out, i, finish=None):
        """The images [b, e) (einsum releases the GIL: blocks run in parallel), then
        ``finish`` on their rows."""
        b = self.starts[i]
        e = min(len(x), b + self.chunk)
        n = e - b
        if self.as_is:
            kept, views = None, self._views(np.ascontiguousarray(x[b:e]), n)
        else:
            try:
                kept = self.spare.pop()
            except IndexError:
                padded = np.zeros((self.chunk, *self.layout), dtype=self.dtype)
                kept = (padded, {})
            padded, views_of = kept
            part = padded[:n]
            for r, rows, cols, in_rows, in_cols in self.fills:
                part[:, rows, r, cols] = x[b:e, in_rows, in_cols]
            views = views_of.get(n)
            if views is None:
                views = views_of[n] = self._views(padded, n)
        target = out[b:e].reshape(n, self.out_shape[1], self.out_run)
        for k, (view, tiles) in enumerate(zip(views, self.tiles)):
            if k == 0:
                np.einsum("ijnrl,ijl->nrl", view, tiles, out=target)
            else:
                np.add(target, np.einsum("ijnrl,ijl->nrl", view, tiles), out=target)
        if kept is not None and kept[0].nbytes <= _KEPT_PADDING_BYTES:
            self.spare.append(kept)
        if finish is not None:
            finish.rows((b, e, 0, self.out_shape[1]))

    def _views(self, source, n):
        """Per column phase, the (kernel rows, kernel columns, images, output rows, output
        row run) view of the contiguous ``source`` that its einsum reads."""
        return [np.ndarray((*taps, n, self.out_shape[1], self.out_run), self.dtype, source,
                           offset, strides) for offset, taps, strides in self.phases]


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
    if len(window) == 2 and not any(b or a for b, a in pads) and window[0] > 1 and window[1] > 1:
        return _pool_separable(x, window, strides, outs, combine, out)
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
    program = _backprop_program(window, tuple(strides), tuple(dilations), tuple(tuple(p) for p in pads),
                                tuple(int(d) for d in in_sizes), tuple(out_sizes))
    if not math.prod(in_sizes) * n * channels or not dy.size or not program:
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
        images = slice(b, e)
        for offsets, position, out_index, target_index in program:
            target = buffer[(images,) + target_index]
            if depthwise:
                part = np.einsum("...cm,cm->...c", grouped[(slice(None),) + out_index], w[offsets])
            else:
                part = per_position[(position, slice(None)) + out_index]
            np.add(target, part, out=target)
    if not phased:
        return buffer
    rank = len(in_sizes)
    order = tuple(range(rank)) + (rank + 1, rank, rank + 2)  # (..., q, r, C)
    interleaved = buffer.transpose(order).reshape((n, *in_sizes[:-1], columns * step, channels))
    return np.ascontiguousarray(interleaved[..., :width, :])


def _pool_separable(x, window, strides, outs, combine, out):
    """2-D pooling (windows of at least 2x2) without padding in two steps: the window's
    rows combined over whole image rows (long contiguous runs), then its columns; max is
    exact either way, a sum only reassociated. ``out`` (N, *outs, C) receives the result."""
    (kh, kw), (sh, sw), (ho, wo) = window, strides, outs
    rows = combine(x[:, 0:sh * (ho - 1) + 1:sh], x[:, 1:sh * (ho - 1) + 2:sh], dtype=out.dtype)
    for ky in range(2, kh):
        combine(rows, x[:, ky:ky + sh * (ho - 1) + 1:sh], out=rows)
    combine(rows[:, :, 0:sw * (wo - 1) + 1:sw], rows[:, :, 1:sw * (wo - 1) + 2:sw], out=out)
    for kx in range(2, kw):
        combine(out, rows[:, :, kx:kx + sw * (wo - 1) + 1:sw], out=out)
    return out


@functools.lru_cache(maxsize=256)
def _backprop_program(window, strides, dilations, pads, in_sizes, out_sizes):
    """The adds of `_conv_backprop_numpy` for one geometry: per kernel position (offsets,
    its index among the positions, the dy index, the gradient buffer index after the image
    axis: with a stride along the last axis, in the phase layout ``(..., r, q, C)``)."""
    step = strides[-1]
    program = []
    for offsets, out_index, in_index, _ in _taps(window, strides, dilations, pads, in_sizes, out_sizes):
        if step > 1:
            cols, count = in_index[-1], out_index[-1].stop - out_index[-1].start
            first = cols.start // step
            target = in_index[:-1] + (cols.start % step, slice(first, first + count))
        else:
            target = in_index
        program.append((offsets, int(np.ravel_multi_index(offsets, window)), out_index, target))
    return tuple(program)


# --------------------------------------------------------------------------- convolution

def _conv_channels_last(ctx, xp, x, w, strides, dilations, pads, out_sizes, op, memo=None,
                        epilogue=None):
    """Cross-correlation of x (N, *S, C) with w (*K, C, O): (N, *out, O). ``memo`` (a node's
    dict) keeps what is made from the last filter array seen (a constant: the same array
    object every call): its float32 copy (half floats) and its Winograd transform.
    ``epilogue``: a fused step's, applied per block by the float32/float64 numpy paths
    (`_block_finish`)."""
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
        if out_dtype not in _MATMUL_FLOATS:
            epilogue = None  # half floats: the epilogue runs on the narrowed output (TF rounds first)
        x, w = to_float32(x) if x.dtype is HALF else wide(xp, x), kept[1]
        if memo is not None and _winograd.applies(w, strides, dilations, x, out_sizes):
            if kept[2] is None:
                kept[2] = _winograd.filters(w)
            out = _winograd_numpy(x, kept[2], pads, out_sizes, epilogue)
        else:
            out = _conv_numpy(x, w, strides, dilations, pads, out_sizes, epilogue)
        return to_half(out) if out_dtype is HALF else astype(xp, out, out_dtype)
    if is_half(x):
        x, w = astype(xp, x, np.float32), astype(xp, w, np.float32)
    x = pad(xp, x, [(0, 0)] + list(pads) + [(0, 0)])
    out = xp.zeros((n, *out_sizes, out_channels), dtype=x.dtype)
    for offsets in itertools.product(*(range(k) for k in window)):
        patch = x[_window_slices(offsets, dilations, strides, out_sizes)]
        out = out + xp.matmul(patch, w[offsets + (Ellipsis,)])
    return astype(xp, out, out_dtype)


def _grouped_conv(ctx, xp, x, w, strides, dilations, pads, out_sizes, op, memo=None, epilogue=None):
    in_channels, filter_channels = int(x.shape[-1]), int(w.shape[-2])
    if filter_channels == 0 or in_channels % filter_channels:
        fail(op, f"input depth {in_channels} must be a multiple of the filter depth {filter_channels}")
    groups = in_channels // filter_channels
    if groups == 1:
        return _conv_channels_last(ctx, xp, x, w, strides, dilations, pads, out_sizes, op, memo,
                                   epilogue)
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


_MATMUL_FLOATS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})
_EPILOGUE_BLOCK_BYTES = 256 * 2**10  # output rows of a pointwise block written before their epilogue (in cache)
_POOLED_MNK = 1 << 20  # multiply-adds from which the blocks of a pointwise conv go to the pool threads
_BLOCKED_FILTER_BYTES = 256 * 2**10  # largest 1x1 filter whose products are cut into small row blocks


def _pointwise_blocks(a, matrix, out, finish, rows, width):
    """``out = a @ matrix`` (a: ``rows`` image rows of ``width`` pixels) in blocks of a few
    image rows (`_EPILOGUE_BLOCK_BYTES` of output), each block's ``finish`` right after its
    product while it is in cache; the blocks on the pool threads from `_POOLED_MNK` (a
    helper that does not wake in time takes no block). Only for small filters
    (`_BLOCKED_FILTER_BYTES`): every block reads the whole filter again. The blocks depend
    on the product alone, so results are the same bits at any thread count."""
    channels, k = matrix.shape
    step = max(1, min(rows, _EPILOGUE_BLOCK_BYTES // max(1, width * k * out.itemsize)))
    starts = range(0, rows, step)

    def block(i):
        lo, hi = starts[i], min(rows, starts[i] + step)
        np.matmul(a[lo * width:hi * width], matrix, out=out[lo * width:hi * width])
        finish(lo, hi)
    if len(starts) > 1 and rows * width * channels * k >= _POOLED_MNK:
        BLAS.run_parts(block, len(starts), 0)
    else:
        BLAS.for_product(step * width * channels * k)
        for i in range(len(starts)):
            block(i)


def _pointwise(ctx, attrs, general):
    """``general`` (a Conv2D's prepared numpy run) as a step that finishes its outputs and
    takes a fused step's epilogue (`_block_finish`); with 1x1 stride-1 unpadded NHWC
    convolutions of float32/float64 contiguous images taken straight to the one matrix product
    `_conv_numpy` computes (pixels times the filter's (C, K) matrix: same BLAS call, same
    result), without the geometry and dispatch per call; the filter's matrix is kept for
    the last filter array seen (a view of it: in-place changes show through)."""
    if (attrs.get("data_format", "NHWC") != "NHWC" or list(attrs.get("strides", ())) != [1, 1, 1, 1]
            or any(d != 1 for d in attrs.get("dilations", [1, 1, 1, 1]))
            or (attrs.get("padding") == "EXPLICIT" and any(attrs.get("explicit_paddings", ())))):
        def run(inputs, epilogue=None):
            return finish_outputs(ctx, general(inputs, epilogue))
        run.finished = run.takes_epilogue = True
        return run
    cap = ctx.memory_cap
    kept = [None, None]  # the last filter array taken this way, its (C, K) matrix

    def run(inputs, epilogue=None):
        x, w = inputs
        if w is not kept[0]:
            if (type(w) is not np.ndarray or w.ndim != 4 or w.shape[:2] != (1, 1)
                    or w.dtype not in _MATMUL_FLOATS or not w.flags.c_contiguous):
                return finish_outputs(ctx, general(inputs, epilogue))
            kept[:] = w, w.reshape(w.shape[2], w.shape[3])
        matrix = kept[1]
        if (type(x) is np.ndarray and x.dtype is w.dtype and x.ndim == 4
                and x.shape[3] == matrix.shape[0] and x.flags.c_contiguous):
            n, h, width, channels = x.shape
            k = matrix.shape[1]
            if n * h * width * k * x.itemsize <= cap:
                a = x.reshape(n * h * width, channels)
                if epilogue is not None:
                    y = np.empty((n, h, width, k), dtype=x.dtype)
                    finish = _block_finish(epilogue, y)
                    if finish is not None:
                        if matrix.nbytes <= _BLOCKED_FILTER_BYTES:
                            _pointwise_blocks(a, matrix, y.reshape(-1, k), finish, n * h, width)
                        else:
                            BLAS.matmul(a, matrix, finish, width, y.reshape(-1, k))
                        return [y]
                return [BLAS.matmul(a, matrix).reshape(n, h, width, k)]
        return finish_outputs(ctx, general(inputs, epilogue))
    run.finished = run.takes_epilogue = True
    return run


def _conv_kernel(op, rank, default_format):
    @prepared_op_kernel(op)
    def prepare(node, ctx):
        geometry = ConvGeometry(op, node.attrs, rank, default_format)
        memo: dict = {}

        def run(inputs, epilogue=None):
            xp, (x, w) = namespace(ctx, *inputs)
            if x.ndim != rank or w.ndim != rank:
                fail(op, f"input and filter must have rank {rank}, got {tuple(x.shape)} and {tuple(w.shape)}")
            data_format, strides, dilations, outs, pads = geometry(x, [int(k) for k in w.shape[:-2]])
            x = _to_channels_last(xp, x, data_format)
            if data_format != "NHWC":
                epilogue = None
            y = _grouped_conv(ctx, xp, x, w, strides, dilations, pads, outs, op, memo, epilogue)
            return [_from_channels_last(xp, y, data_format)]
        return _pointwise(ctx, node.attrs, run) if op == "Conv2D" and ctx.is_numpy and ctx.optimize else run
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
    kept: list = [None, None]  # a read-only float16 filter array and its float32 copy

    def prepared(x, w):
        key = (getattr(x, "shape", None), getattr(x, "dtype", None))
        found = flat.get(key)
        if found is None or found[0] is not w or type(w) is not np.ndarray or w.flags.writeable:
            if len(flat) > 8:
                flat.clear()
            found = flat[key] = (w, _FlatDepthwise.build(ctx, x, w, geometry))
        return found[1]

    def run(inputs, epilogue=None):
        """``epilogue`` (`fusion._fused`): applied per block of images by the flat form
        (float32 and float64; a float16 conv runs its epilogue on the narrowed output)."""
        x, w = inputs
        if type(x) is np.ndarray and x.dtype is HALF and type(w) is np.ndarray and w.dtype is HALF:
            # float16: the float32 forms on widened values, rounded once (the general path widens too)
            if w.flags.writeable:
                wide_w = w.astype(np.float32)
            else:  # a constant: widened once, read-only like it (so the float32 form keeps it)
                if kept[0] is not w:
                    kept[1] = w.astype(np.float32)
                    kept[1].flags.writeable = False
                    kept[0] = w
                wide_w = kept[1]
            y = run([to_float32(x), wide_w])[0]
            return [to_half(y) if type(y) is np.ndarray else y]
        conv = prepared(x, w)
        if conv is None:
            return finish_outputs(ctx, depthwise_conv2d(ctx, inputs, geometry, memo))
        return [conv(inputs[0], epilogue)]
    run.finished = run.takes_epilogue = True
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
        if is_numpy(xp) and result.base is None:  # fresh (a 1x1 window's is a view of x)
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
