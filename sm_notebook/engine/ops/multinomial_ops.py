"""StatelessMultinomial, seeded Multinomial and StatelessRandomBinomial, bit for bit
TensorFlow's CPU kernels.

Multinomial (``MultinomialFunctor``).

Per row: the largest finite logit ``m`` (the dtype's lowest value if none), the
cumulative sums in float64 of ``exp(logit - m)`` over the finite logits (summed in order,
as numpy's cumsum does; a parallel scan on another backend could round differently), then per sample
a uniform double (``SimplePhilox::RandDouble``: two consecutive 32-bit words, the first
giving the high 20 mantissa bits) times the row's total, and the class is the number of
CDF entries not above it (``std::upper_bound``). A row without finite logits gives
``num_classes``.

TensorFlow shards the rows over its intra-op thread pool and each shard starts its
stream ``start_row * (num_samples + 3) // 4`` blocks in, then draws its rows one after
the other; so the samples depend on where the shards begin. The split is Eigen's
``parallelFor`` for the kernel's cost estimate, reproduced here for a given thread
count (`tensorflow_threads`). A single shard (a total cost under about 210000 cycles:
batch 1, or small batch x classes x samples) does not depend on the thread count.
TensorFlow's vectorized ``exp`` may differ from ours by an ulp in a CDF entry, which
changes a sample only when the uniform draw falls on that ulp.

Binomial (``RandomBinomialFunctor``): each output has its own stretch of the stream, so
sharding does not matter; the rejection samplers run one output at a time on the host in
float64 with the C library's log/log1p (Python's math), as TensorFlow's do.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ...errors import SavedModelError
from ._arrays import xp_dtype
from ..backend import numpy_namespace
from .random_ops import (RESERVED_BLOCKS_PER_OUTPUT, Philox, _host, _namespace, _output_shape,
                         _seed_generator, _stateful_generator, _unit_double, philox_words)
from .registry import kernel, prepared_kernel

_LOGIT_DTYPES = ("float16", "float32", "float64")
# Eigen's TensorCostModel constants (cycles)
_STARTUP_CYCLES = 100000.0
_PER_THREAD_CYCLES = 100000.0
_TASK_SIZE = 40000.0
_MAX_OVERSHARDING = 4


def tensorflow_threads() -> int:
    """TensorFlow's default intra-op pool size: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _divup(a: int, b: int) -> int:
    return -(-a // b)


def shard_size(batch: int, num_classes: int, num_samples: int, threads: int) -> int:
    """Rows per shard of TensorFlow's CPU kernel (``batch`` when it runs as one shard).

    ``Shard`` hands the rows to Eigen's ``parallelFor`` with the kernel's cost per row,
    ``50 * (num_samples * log2(num_classes) + num_classes)`` cycles.
    """
    cost = int(50 * (num_samples * math.log(num_classes) / math.log(2) + num_classes))
    if batch <= 1 or threads <= 1:
        return batch
    wanted = (batch * cost - _STARTUP_CYCLES) / _PER_THREAD_CYCLES + 0.9
    if min(threads, max(1, int(min(wanted, 2**31 - 1)))) == 1:
        return batch
    # Eigen's CalculateParallelForBlock
    block_size = min(batch, max(_divup(batch, _MAX_OVERSHARDING * threads),
                                int(_TASK_SIZE / cost) if cost else 2**62))
    max_block_size = min(batch, 2 * block_size)
    block_count = _divup(batch, block_size)
    max_efficiency = block_count / (_divup(block_count, threads) * threads)
    previous = block_count
    while max_efficiency < 1.0 and previous > 1:
        coarser_size = _divup(batch, previous - 1)
        if coarser_size > max_block_size:
            break
        coarser_count = _divup(batch, coarser_size)
        previous = coarser_count
        efficiency = coarser_count / (_divup(coarser_count, threads) * threads)
        if efficiency + 0.01 >= max_efficiency:
            block_size, block_count = coarser_size, coarser_count
            max_efficiency = max(max_efficiency, efficiency)
    return block_size


def multinomial(xp, gen, logits, num_samples: int, out_dtype, threads: int):
    """Samples ``[batch, num_samples]`` of ``out_dtype`` from ``logits`` (float64 array
    ``[batch, classes]``) as TensorFlow's CPU kernel draws them with ``threads`` threads."""
    f64, i64, u64 = xp_dtype(xp, np.float64), xp_dtype(xp, np.int64), xp_dtype(xp, np.uint64)
    batch, classes = logits.shape
    finite = xp.isfinite(logits)
    zeros = xp.zeros_like(logits)
    lowest = xp.asarray(-np.finfo(np.float64).max, dtype=f64)
    top = xp.max(xp.where(finite, logits, lowest), axis=1, keepdims=True)
    cdf = xp.cumulative_sum(xp.where(finite, xp.exp(xp.where(finite, logits - top, zeros)), zeros),
                            axis=1)
    rows_per_shard = shard_size(batch, classes, num_samples, threads)
    row = xp.reshape(xp.arange(batch, dtype=i64), (batch, 1))
    sample = xp.reshape(xp.arange(num_samples, dtype=i64), (1, num_samples))
    start = (row // rows_per_shard) * rows_per_shard
    word = (start * (num_samples + 3) // 4) * 4 + 2 * ((row - start) * num_samples + sample)
    words = philox_words(xp, gen.key, gen.counter, xp.astype(xp.reshape(word // 4, (-1,)), u64))
    second_pair = xp.reshape(word % 4, (-1,)) == 2
    high = xp.where(second_pair, words[2], words[0])
    low = xp.where(second_pair, words[3], words[1])
    uniforms = xp.reshape(_unit_double(xp, high, low), (batch, num_samples))
    targets = uniforms * cdf[:, -1:]
    out = xp_dtype(xp, out_dtype)
    rows = [xp.searchsorted(cdf[b, :], targets[b, :], side="right") for b in range(batch)]
    return xp.astype(xp.stack(rows, axis=0), out) if rows else xp.zeros((0, num_samples), dtype=out)


def _multinomial_call(ctx, op, logits, num_samples_t, attrs, generator):
    """One call of a multinomial kernel: its samples and the number drawn (0 when the
    output is empty). ``generator()`` gives the Philox position, read after the checks."""
    logit_dtype = np.dtype(attrs.get("T", np.dtype(np.float32)))
    out_dtype = np.dtype(attrs.get("output_dtype", np.dtype(np.int64)))
    if logit_dtype.name not in _LOGIT_DTYPES:
        raise SavedModelError(f"{op}: logits of dtype {logit_dtype.name} are not supported; "
                              f"TensorFlow's CPU kernel takes {', '.join(_LOGIT_DTYPES)}.")
    if out_dtype.name not in ("int32", "int64"):
        raise SavedModelError(f"{op}: output_dtype {out_dtype.name} is not supported; "
                              "TensorFlow's kernel gives int32 or int64.")
    if len(logits.shape) != 2:
        raise SavedModelError(f"{op}: logits should be a matrix [batch, classes], got shape "
                              f"{list(logits.shape)}.")
    count = _host(ctx, num_samples_t)
    if count.ndim != 0:
        raise SavedModelError(f"{op}: num_samples should be a scalar, got shape {list(count.shape)}.")
    num_samples = int(count)
    if num_samples < 0:
        raise SavedModelError(f"{op}: num_samples should be nonnegative, got {num_samples}.")
    batch, classes = (int(d) for d in logits.shape)
    if classes <= 0:
        raise SavedModelError(f"{op}: num_classes should be positive, got {classes}.")
    gen = generator()
    ctx.check_alloc((batch, num_samples), out_dtype, op)
    xp = ctx.xp
    if batch * num_samples == 0:
        return xp.zeros((batch, num_samples), dtype=ctx.dtype(out_dtype)), 0
    if _namespace(ctx, logit_dtype) is not xp:  # float16 on a backend without it: widen on the host
        logits = xp.asarray(np.asarray(logits).astype(np.float64))
    values = xp.astype(logits, ctx.dtype(np.float64))
    samples = multinomial(xp, gen, values, num_samples, out_dtype, tensorflow_threads())
    return samples, batch * num_samples


@kernel("StatelessMultinomial")
def stateless_multinomial(ctx, inputs, attrs):
    op = "StatelessMultinomial"
    logits, num_samples_t, seed = inputs
    return [_multinomial_call(ctx, op, logits, num_samples_t, attrs,
                              lambda: _seed_generator(ctx, op, seed))[0]]


@prepared_kernel("Multinomial")
def prepare_multinomial(node, ctx):
    """The seeded stateful op (``tf.random.categorical`` with a seed): each call reserves
    ``256 * batch * 2 * ceil4(num_samples)`` blocks of the generator."""
    state = {"gen": _stateful_generator(node)}

    def run(inputs):
        logits, num_samples_t = inputs
        samples, drawn = _multinomial_call(ctx, "Multinomial", logits, num_samples_t,
                                           node.attrs, lambda: state["gen"])
        if drawn:
            batch, num_samples = samples.shape
            state["gen"] = state["gen"].skipped(
                batch * 2 * _divup(num_samples, 4) * 4 * RESERVED_BLOCKS_PER_OUTPUT)
        return [samples]
    return run


# ---- StatelessRandomBinomial (TensorFlow's RandomBinomialFunctor) ---------------------------

#: Generator blocks reserved per output by each sampler (``gen.Skip(k * output_idx)``).
_BTRS_BLOCKS = 256
_INVERSION_BLOCKS = 42
_STIRLING_TAIL = (0.0810614667953272, 0.0413406959554092, 0.0276779256849983,
                  0.02079067210376509, 0.0166446911898211, 0.0138761288230707,
                  0.0118967099458917, 0.0104112652619720, 0.00925546218271273,
                  0.00833056343336287)
_BINOMIAL_DTYPES = ("float16", "float32", "float64", "int32", "int64")


_PREFETCH_BLOCKS = 4  # blocks drawn ahead per output: enough for most samples


def _draw_order(gen: Philox, first_blocks: np.ndarray, blocks: int) -> list[list[float]]:
    """Per output, the uniform doubles of blocks ``first + 0 .. blocks - 1`` in the order
    its sampler takes them: block by block, each block's two values
    (``UniformDistribution<double>``) last first, as TensorFlow's ``UNIFORM`` macro does."""
    xp = numpy_namespace()
    offsets = (first_blocks[:, None] + np.arange(blocks, dtype=np.uint64)).reshape(-1)
    w = philox_words(xp, gen.key, gen.counter, offsets)
    pairs = np.stack([_unit_double(xp, w[2], w[3]), _unit_double(xp, w[0], w[1])], axis=1)
    return pairs.reshape(first_blocks.shape[0], 2 * blocks).tolist()


class _Uniforms:
    """The uniform doubles one output's sampler draws, starting with ``drawn`` (the
    values of blocks ``next_block - len(drawn) / 2 ..``), more computed on demand."""

    def __init__(self, gen: Philox, next_block: int, drawn: list[float]):
        self.gen, self.next_block, self.pending = gen, next_block, drawn[::-1]

    def __call__(self) -> float:
        if not self.pending:
            self.pending = _draw_order(self.gen, np.array([self.next_block], np.uint64),
                                       _PREFETCH_BLOCKS)[0][::-1]
            self.next_block += _PREFETCH_BLOCKS
        return self.pending.pop()


def _stirling_tail(k: float) -> float:
    if k <= 9:
        return _STIRLING_TAIL[int(k)]
    kp1sq = (k + 1) * (k + 1)
    return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (k + 1)


def _binomial_inversion(count: float, prob: float, uniform) -> float:
    """Sums of geometric waiting times until they pass ``count``."""
    geom_sum, successes = 0.0, 0
    log_q = math.log1p(-prob)
    while True:
        geom_sum += math.ceil(math.log(uniform()) / log_q)
        if geom_sum > count:
            return float(successes)
        successes += 1


def _btrs(count: float, prob: float, uniform) -> float:
    """Hormann's BTRS transformed rejection, TensorFlow's arithmetic order."""
    stddev = math.sqrt(count * prob * (1 - prob))
    b = 1.15 + 2.53 * stddev
    a = -0.0873 + 0.0248 * b + 0.01 * prob
    c = count * prob + 0.5
    v_r = 0.92 - 4.2 / b
    r = prob / (1 - prob)
    alpha = (2.83 + 5.1 / b) * stddev
    m = math.floor((count + 1) * prob)
    while True:
        u = uniform() - 0.5
        v = uniform()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + c)
        if us >= 0.07 and v <= v_r:
            return float(k)
        if k < 0 or k > count:
            continue
        v = math.log(v * alpha / (a / (us * us) + b))
        upperbound = ((m + 0.5) * math.log((m + 1) / (r * (count - m + 1)))
                      + (count + 1) * math.log((count - m + 1) / (count - k + 1))
                      + (k + 0.5) * math.log(r * (count - k + 1) / (k + 1))
                      + _stirling_tail(m) + _stirling_tail(count - m)
                      - _stirling_tail(k) - _stirling_tail(count - k))
        if v <= upperbound:
            return float(k)


def binomial_samples(gen: Philox, counts: np.ndarray, probs: np.ndarray,
                     samples_per_batch: int) -> np.ndarray:
    """float64 samples ``[samples_per_batch, batch]`` for the flat ``counts``/``probs``
    (of their own dtype, whose arithmetic picks the sampler); output ``i = b *
    samples_per_batch + s`` starts its stream ``256 * i`` (BTRS) or ``42 * i`` (inversion)
    blocks in, so the result does not depend on TensorFlow's sharding."""
    dtype = counts.dtype.type
    out = np.zeros((samples_per_batch, counts.shape[0]), np.float64)
    draws = []  # (batch, dcount, p, flip, sampler, stride) of the columns needing a sampler
    for b, (count, prob) in enumerate(zip(counts, probs)):
        dcount = float(count)
        if dcount <= 0.0 or prob <= 0:
            continue
        if prob >= 1:
            out[:, b] = dcount
        elif not prob <= 0.5 and not prob > 0.5:  # NaN
            out[:, b] = np.nan
        else:
            flip = bool(prob > 0.5)
            p = dtype(dtype(1) - prob) if flip else prob
            btrs = bool(dtype(count * p) >= dtype(10))
            draws.append((b, dcount, float(p), flip, _btrs if btrs else _binomial_inversion,
                          _BTRS_BLOCKS if btrs else _INVERSION_BLOCKS))
    if not draws:
        return out
    samples = np.arange(samples_per_batch, dtype=np.uint64)
    first = np.concatenate([(b * samples_per_batch + samples) * stride
                            for b, _, _, _, _, stride in draws])
    drawn = iter(_draw_order(gen, first, _PREFETCH_BLOCKS))  # one pass over every output
    starts = iter(first.tolist())
    for b, dcount, p, flip, sampler, _ in draws:
        for s in range(samples_per_batch):
            value = sampler(dcount, p, _Uniforms(gen, next(starts) + _PREFETCH_BLOCKS, next(drawn)))
            out[s, b] = dcount - value if flip else value
    return out


@kernel("StatelessRandomBinomial")
def stateless_random_binomial(ctx, inputs, attrs):
    op = "StatelessRandomBinomial"
    shape_t, seed, counts_t, probs_t = inputs
    out_dtype = np.dtype(attrs.get("dtype", np.dtype(np.int64)))
    counts, probs = _host(ctx, counts_t), _host(ctx, probs_t)
    for what, dtype in (("dtype", out_dtype), ("T", counts.dtype)):
        if dtype.name not in _BINOMIAL_DTYPES:
            raise SavedModelError(f"{op}: {what} {dtype.name} is not supported; TensorFlow's "
                                  f"CPU kernel takes {', '.join(_BINOMIAL_DTYPES)}.")
    try:
        batch_shape = np.broadcast_shapes(counts.shape, probs.shape)
    except ValueError:
        raise SavedModelError(f"{op}: counts and probs must have compatible batch dimensions: "
                              f"{list(counts.shape)} vs. {list(probs.shape)}.") from None
    dims = _output_shape(ctx, op, shape_t, out_dtype)
    if len(dims) < len(batch_shape) or dims[len(dims) - len(batch_shape):] != tuple(batch_shape):
        raise SavedModelError(f"{op}: shape {list(dims)} must end with the broadcast shape of "
                              f"counts and probs, {list(batch_shape)}.")
    if counts.dtype.kind == "f" and not np.all(np.isfinite(counts)):
        raise SavedModelError(f"{op}: counts must be finite; TensorFlow's sampler has no "
                              "defined result for an infinite or NaN count.")
    gen = _seed_generator(ctx, op, seed)
    samples_per_batch = math.prod(dims[:len(dims) - len(batch_shape)])
    values = binomial_samples(gen, np.broadcast_to(counts, batch_shape).reshape(-1),
                              np.broadcast_to(probs, batch_shape).reshape(-1).astype(counts.dtype),
                              samples_per_batch) if math.prod(dims) else np.zeros(dims)
    if out_dtype.name == "float16":  # TensorFlow rounds the double through float
        values = values.astype(np.float32)
    with np.errstate(invalid="ignore"):  # NaN (a NaN prob) to an integer dtype
        host = values.astype(out_dtype).reshape(dims)
    return [ctx.asarray(host) if ctx.backend.supports(out_dtype) else host]
