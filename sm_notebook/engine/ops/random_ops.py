"""Random ops, bit for bit TensorFlow's CPU kernels: Philox4x32-10 and its distributions.

TensorFlow's CPU kernels fill an output in groups (``FillPhiloxRandom``): a distribution
turns one Philox block (four uint32 words) into ``K`` outputs (4 for 32-bit and half
dtypes, 2 for 64-bit ones), and group ``g`` uses the generator skipped by ``g`` blocks,
so the result does not depend on how the work is sharded. Truncated normal needs a
variable number of words per group: group ``g`` starts ``K * 256 / 4`` blocks further
on and draws words one at a time until ``K`` values fall inside (-2, 2).

Seeds: the V1 stateless ops scramble their ``seed`` pair into a key and counter
(``GenerateKey``: one Philox block of the seed under a fixed key); the V2 ops take the
key and counter themselves (``StatelessRandomGetKeyCounter`` makes them). The seeded
stateful ops (``RandomUniform`` ... with ``seed``/``seed2`` attrs) start from key
``seed``, counter ``(0, seed2)`` and advance by ``256 * size`` blocks per call, as
TensorFlow's per-kernel generator does; a model needing fresh randomness (both seeds 0)
is refused.

The bits and uniform outputs are exact. Normal outputs use TensorFlow's Box-Muller
formula with log/sqrt/sin/cos computed in float64 and rounded once; TensorFlow's float32
kernel calls glibc's ``logf`` and ``sincosf``, which are not correctly rounded, so a few
percent of float32/float16/bfloat16 normal values differ from TensorFlow's by one unit
in the last place (see tests/ops/EXCLUSIONS.md).
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import SavedModelError
from ..backend import is_numpy_namespace, numpy_namespace
from ._libm import logf_from_bits, sincosf
from ._arrays import np_dtype, xp_dtype
from .registry import kernel, prepared_kernel

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_PHILOX_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_PHILOX_KEY_STEPS = (0x9E3779B9, 0xBB67AE85)
_SEED_SCRAMBLE_KEY = (0x3EC8F720, 0x02461E29)  # GenerateKey's fixed key
RNG_ALG_PHILOX = 1
RNG_ALG_THREEFRY = 2
RNG_ALG_AUTO_SELECT = 3  # Philox on CPU
#: Blocks of the generator reserved per output by the stateful kernels and by truncated
#: normal's groups (TensorFlow's kReservedSamplesPerOutput).
RESERVED_BLOCKS_PER_OUTPUT = 256
#: Philox blocks (or truncated-normal groups) computed together.
CHUNK_GROUPS = 1 << 14
_TRUNCATE_AT = 2.0
_EPSILON_BITS = 0x33D6BF95  # the float 1e-7f: Box-Muller's floor for u1
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


class Philox:
    """A Philox4x32-10 generator position: a 64-bit key and a 128-bit counter."""

    def __init__(self, key: int, counter: int):
        self.key = key & _MASK64
        self.counter = counter & ((1 << 128) - 1)

    @classmethod
    def from_seed(cls, seed0: int, seed1: int) -> "Philox":
        """TensorFlow's ``GenerateKey``: the seed pair scrambled by one Philox block."""
        counter = (seed0 & _MASK64) | (seed1 & _MASK64) << 64
        fixed_key = _SEED_SCRAMBLE_KEY[0] | _SEED_SCRAMBLE_KEY[1] << 32
        words = [int(w[0]) for w in philox_words(numpy_namespace(), fixed_key, counter, 0, 1)]
        return cls(words[0] | words[1] << 32, (words[2] | words[3] << 32) << 64)

    def skipped(self, blocks: int) -> "Philox":
        return Philox(self.key, self.counter + blocks)

    def key_counter(self) -> tuple[list[int], list[int]]:
        """The key ``[k]`` and counter ``[lo, hi]`` as the V2 ops' uint64 tensors hold them."""
        return [self.key], [self.counter & _MASK64, self.counter >> 64]


def philox_words(xp, key: int, counter: int, first, count: int | None = None):
    """The four uint32 words (uint64 arrays) of the Philox blocks at ``counter + first + i``.

    ``first`` is a Python int (then ``count`` blocks are made) or a uint64 array of block
    offsets. Multiplications are uint64 products of 32-bit values (exact), so this runs
    on any array API namespace.
    """
    u64 = xp_dtype(xp, np.uint64)
    if count is not None:
        offsets = xp.arange(count, dtype=u64)
        base = counter + first
    else:
        offsets = first
        base = counter
    base_lo, base_hi = base & _MASK64, (base >> 64) & _MASK64
    lo = offsets + base_lo  # wraps modulo 2**64
    carry = xp.astype(lo < base_lo, u64) if base_lo else xp.zeros_like(lo)
    hi = carry + base_hi
    c0, c1, c2, c3 = lo & _MASK32, lo >> 32, hi & _MASK32, hi >> 32
    k0, k1 = key & _MASK32, key >> 32
    m0, m1 = _PHILOX_MULTIPLIERS
    for _ in range(10):
        p0 = c0 * m0
        p1 = c2 * m1
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & _MASK32
        k0 = (k0 + _PHILOX_KEY_STEPS[0]) & _MASK32
        k1 = (k1 + _PHILOX_KEY_STEPS[1]) & _MASK32
    return c0, c1, c2, c3


# ---- words -> values (TensorFlow's random_distributions.h) ------------------------------

def _unit_float(xp, words, dtype):
    """``Uint32ToFloat`` and its half/bfloat16 forms: a mantissa of low bits over [1, 2), minus 1."""
    bits = {"float16": 10, "bfloat16": 7}.get(np.dtype(dtype).name, 23)
    mantissa = xp.astype(words & ((1 << bits) - 1), xp_dtype(xp, np.float32))
    return mantissa * (2.0 ** -bits)  # exact: a bits-bit integer times a power of two


def _unit_double(xp, high, low):
    """``Uint64ToDouble``: 20 low bits of ``high`` and 32 of ``low`` as a mantissa, minus 1."""
    f64 = xp_dtype(xp, np.float64)
    mantissa = xp.astype(high & 0xFFFFF, f64) * 2.0 ** 32 + xp.astype(low, f64)
    return mantissa * 2.0 ** -52


def _unit_float_bits(xp, words):
    """The float32 bit patterns (int64) of ``max(Uint32ToFloat(w), 1e-7)``: the mantissa
    ``m`` of the low 23 bits is the float ``m * 2**-23``, normalised by its bit length."""
    i64, f64 = xp_dtype(xp, np.int64), xp_dtype(xp, np.float64)
    m = xp.astype(words & 0x7FFFFF, i64)
    nonzero = xp.maximum(m, xp.ones_like(m))
    top = xp.astype(xp.floor(xp.log2(xp.astype(nonzero, f64))), i64)
    top = xp.where((nonzero >> top) == 0, top - 1, top)  # exact, whatever log2's rounding
    top = xp.where((nonzero >> top) > 1, top + 1, top)
    bits = ((top + 104) << 23) | ((nonzero << (23 - top)) & 0x7FFFFF)
    return xp.where(m == 0, xp.full_like(m, _EPSILON_BITS), bits)


def _box_muller_float(xp, x0, x1):
    """``BoxMullerFloat``: two float32 normals from two words, with glibc's logf/sincosf."""
    f32, f64 = xp_dtype(xp, np.float32), xp_dtype(xp, np.float64)
    # 2.0f * M_PI * u: a double product, rounded to float
    v1 = xp.astype(xp.astype(_unit_float(xp, x1, np.float32), f64) * (2.0 * math.pi), f32)
    u2 = xp.sqrt(-2.0 * logf_from_bits(xp, _unit_float_bits(xp, x0)))
    sine, cosine = sincosf(xp, v1)
    return sine * u2, cosine * u2


def _box_muller_double(xp, x0, x1, x2, x3):
    """``BoxMullerDouble``: two float64 normals from four words. log, sin and cos are the
    C library's own (Python's math module calls them), one value at a time on the host."""
    u1 = xp.maximum(_unit_double(xp, x0, x1), xp.asarray(1.0e-7, dtype=xp_dtype(xp, np.float64)))
    v1 = (2.0 * math.pi) * _unit_double(xp, x2, x3)
    u2 = xp.sqrt(-2.0 * _host_libm(xp, math.log, u1))
    return _host_libm(xp, math.sin, v1) * u2, _host_libm(xp, math.cos, v1) * u2


def _host_libm(xp, fn, values):
    """``fn`` (a C library function through Python's math module) of each value."""
    if is_numpy_namespace(xp):
        return np.fromiter(map(fn, values.tolist()), dtype=np.float64, count=values.size)
    host = np.from_dlpack(values)  # the array API's way to the host (cupy: copy first)
    out = np.fromiter(map(fn, host.tolist()), dtype=np.float64, count=host.size)
    return xp.asarray(out)


def _interleave(xp, *columns):
    return xp.reshape(xp.stack(columns, axis=1), (-1,))


def _group_size(dtype) -> int:
    """Outputs per Philox block (``kResultElementCount``): 2 for 64-bit dtypes, else 4."""
    return 2 if np.dtype(dtype).itemsize == 8 else 4


def _chunked(xp, groups: int, make_chunk):
    """``make_chunk(first, count)`` over ``groups`` groups in chunks of `CHUNK_GROUPS`,
    concatenated: the temporaries of a chunk stay in the CPU cache (twice as fast for a
    million outputs as one pass over everything)."""
    parts = [make_chunk(first, min(CHUNK_GROUPS, groups - first))
             for first in range(0, groups, CHUNK_GROUPS) or [0]]  # an empty chunk for no groups
    return parts[0] if len(parts) == 1 else xp.concat(parts)


def _fill(xp, gen: Philox, count: int, dtype, values_from_words):
    """``count`` outputs, group ``g`` made by ``values_from_words`` from block ``g``."""
    blocks = -(-count // _group_size(dtype))
    values = _chunked(xp, blocks, lambda first, size: values_from_words(
        *philox_words(xp, gen.key, gen.counter, first, size)))
    return values[:count]


def uniform(xp, gen, count, dtype):
    """``UniformDistribution`` for floats: [0, 1)."""
    if np.dtype(dtype).itemsize == 8:
        return _fill(xp, gen, count, dtype,
                     lambda w0, w1, w2, w3: _interleave(xp, _unit_double(xp, w0, w1),
                                                        _unit_double(xp, w2, w3)))
    values = _fill(xp, gen, count, dtype,
                   lambda *words: _interleave(xp, *(_unit_float(xp, w, dtype) for w in words)))
    return _to_dtype(xp, values, dtype)


def normal(xp, gen, count, dtype):
    """``NormalDistribution``: standard normals by Box-Muller on word pairs."""
    if np.dtype(dtype).itemsize == 8:
        return _fill(xp, gen, count, dtype,
                     lambda *words: _interleave(xp, *_box_muller_double(xp, *words)))

    def from_words(w0, w1, w2, w3):
        return _interleave(xp, *_box_muller_float(xp, w0, w1), *_box_muller_float(xp, w2, w3))
    return _to_dtype(xp, _fill(xp, gen, count, dtype, from_words), dtype)


def truncated_normal(xp, gen, count, dtype):
    """``TruncatedNormalDistribution``: normals inside (-2, 2), rejection per group.

    Group ``g`` reads blocks ``g * K * 64``, ``+1``, ... and keeps its first ``K``
    candidates inside the bounds. Groups are first given one block each (enough for
    83% of float32 groups, 91% of float64 ones); the others are redone with twice as
    many blocks, until every group has its values.
    """
    size = _group_size(dtype)
    groups = -(-count // size)
    values = _chunked(xp, groups, lambda first, n: _truncated_groups(xp, gen, first, n, size))
    return _to_dtype(xp, values[:count], dtype)


def _truncated_groups(xp, gen, first, groups, size):
    """The values of truncated-normal groups ``first .. first + groups - 1``, flat."""
    stride = size * RESERVED_BLOCKS_PER_OUTPUT // 4
    u64, i64 = xp_dtype(xp, np.uint64), xp_dtype(xp, np.int64)
    pending = xp.arange(groups, dtype=i64)
    blocks = 1
    values = None
    while values is None or pending.shape[0]:
        starts = (xp.astype(pending, u64) + first) * stride
        candidates = []
        for b in range(blocks):
            words = philox_words(xp, gen.key, gen.counter, starts + b)
            if size == 2:
                candidates.extend(_box_muller_double(xp, *words))
            else:
                candidates.extend(_box_muller_float(xp, words[0], words[1]))
                candidates.extend(_box_muller_float(xp, words[2], words[3]))
        stacked = xp.stack(candidates, axis=1)  # (pending groups, candidates) in draw order
        inside = xp.abs(stacked) < _TRUNCATE_AT
        rank = xp.cumulative_sum(xp.astype(inside, xp_dtype(xp, np.int32)), axis=1)
        done = rank[:, -1] >= size
        picked = [xp.sum(xp.where(inside & (rank == k + 1), stacked, xp.zeros_like(stacked)), axis=1)
                  for k in range(size)]
        finished = xp.stack(picked, axis=1)
        values = finished if values is None else _merge_rows(xp, values, pending[done], finished[done])
        pending = pending[~done]
        blocks *= 2
    return xp.reshape(values, (-1,))


def _merge_rows(xp, values, rows, replacement):
    """``values`` with row ``rows[j]`` replaced by ``replacement[j]`` (``rows`` ascending)."""
    if rows.shape[0] == 0:
        return values
    order = xp.arange(values.shape[0], dtype=rows.dtype)
    position = xp.searchsorted(rows, order)
    position = xp.minimum(position, xp.asarray(rows.shape[0] - 1, dtype=position.dtype))
    hit = xp.take(rows, position) == order
    return xp.where(hit[:, None], xp.take(replacement, position, axis=0), values)


def _to_dtype(xp, values, dtype):
    dtype = np.dtype(dtype)
    if np_dtype(values).name == dtype.name:
        return values
    if dtype.name in ("float16", "bfloat16"):  # host-only dtypes: round to nearest even
        return np.asarray(values).astype(dtype)
    return xp.astype(values, xp_dtype(xp, dtype))


def _raw_bits(xp, gen, count, dtype):
    """One word per 32-bit output, two (low word first) per 64-bit output, as uint64."""
    if np.dtype(dtype).itemsize == 8:
        return _fill(xp, gen, count, dtype, lambda w0, w1, w2, w3: _interleave(
            xp, w0 | (w1 << 32), w2 | (w3 << 32)))
    return _fill(xp, gen, count, dtype, lambda *words: _interleave(xp, *words))


def uniform_int(xp, gen, count, dtype, low: int, high: int):
    """``UniformDistribution`` for ints: ``low + bits % (high - low)`` (no bias correction,
    as TensorFlow)."""
    span = xp.asarray((high - low) & _MASK64, dtype=xp_dtype(xp, np.uint64))
    offsets = _raw_bits(xp, gen, count, dtype) % span
    return _from_uint(xp, (offsets + (low & _MASK64)) & _MASK64, dtype)


def uniform_full_int(xp, gen, count, dtype):
    """``UniformFullIntDistribution``: the raw bits, 32 or 64 of them per output."""
    return _from_uint(xp, _raw_bits(xp, gen, count, dtype), dtype)


def _from_uint(xp, bits, dtype):
    """uint64 values holding ``dtype``'s bit pattern, as ``dtype`` (two's complement for signed)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return xp.astype(bits, xp_dtype(xp, dtype))
    i64 = xp_dtype(xp, np.int64)
    if dtype.itemsize == 8:
        high = xp.astype(bits >> 32, i64)
        high = xp.where(high >= 2 ** 31, high - 2 ** 32, high)
        return high * 2 ** 32 + xp.astype(bits & _MASK32, i64)
    low = xp.astype(bits & _MASK32, i64)
    return xp.astype(xp.where(low >= 2 ** 31, low - 2 ** 32, low), xp_dtype(xp, dtype))


# ---- kernels -------------------------------------------------------------------------------

def _host(ctx, array) -> np.ndarray:
    return np.asarray(ctx.to_numpy(array))


def _output_shape(ctx, op, shape_tensor, dtype):
    shape = _host(ctx, shape_tensor)
    if shape.ndim > 1:
        raise SavedModelError(f"{op}: shape must be a vector, got a tensor of shape {shape.shape}.")
    dims = tuple(int(d) for d in shape.reshape(-1))
    if any(d < 0 for d in dims):
        raise SavedModelError(f"{op}: shape {list(dims)} has a negative dimension.")
    ctx.check_alloc(dims, dtype, op)
    return dims


def _namespace(ctx, dtype):
    """ctx.xp, or numpy for dtypes the backend lacks (float16, bfloat16 on strict backends)."""
    return ctx.xp if ctx.backend.supports(dtype) else numpy_namespace()


def _seed_generator(ctx, op, seed) -> Philox:
    values = _host(ctx, seed)
    if values.shape != (2,):
        raise SavedModelError(f"{op}: seed must have shape [2], not {list(values.shape)}.")
    return Philox.from_seed(int(values[0]), int(values[1]))


def _key_counter_generator(ctx, op, key, counter, alg) -> Philox:
    """The V2 ops' generator from their key, counter and alg inputs (alg 3 = Philox on CPU)."""
    alg_value = _host(ctx, alg)
    if alg_value.ndim != 0:
        raise SavedModelError(f"{op}: alg must be a scalar, got shape {list(alg_value.shape)}.")
    alg_id = int(alg_value)
    if alg_id == RNG_ALG_AUTO_SELECT:
        alg_id = RNG_ALG_PHILOX
    if alg_id != RNG_ALG_PHILOX:
        raise SavedModelError(
            f"{op}: unsupported algorithm id {alg_id}. TensorFlow's CPU kernels (and "
            f"sm_notebook's) implement Philox only: alg {RNG_ALG_PHILOX}, or "
            f"{RNG_ALG_AUTO_SELECT} (auto-select); ThreeFry ({RNG_ALG_THREEFRY}) is refused.")
    key_value, counter_value = _host(ctx, key), _host(ctx, counter)
    if key_value.shape != (1,):
        raise SavedModelError(f"{op}: key must have shape [1], not {list(key_value.shape)}.")
    if counter_value.ndim != 1 or counter_value.shape[0] < 2:
        raise SavedModelError(f"{op}: counter must be a vector with length at least 2; got "
                              f"shape {list(counter_value.shape)}.")
    words = [int(v) & _MASK64 for v in counter_value[:2].astype(np.uint64)]
    return Philox(int(key_value.astype(np.uint64)[0]), words[0] | words[1] << 64)


def _int_bounds(ctx, op, minval, maxval):
    low, high = _host(ctx, minval), _host(ctx, maxval)
    for name, value in (("minval", low), ("maxval", high)):
        if value.ndim != 0:
            raise SavedModelError(f"{op}: {name} must be 0-D, got shape {list(value.shape)}.")
    if not int(low) < int(high):
        raise SavedModelError(f"{op}: Need minval < maxval: {int(low)} >= {int(high)}.")
    return int(low), int(high)


def _check_dtype(op, dtype, allowed):
    if np.dtype(dtype).name not in allowed:
        raise SavedModelError(f"{op}: dtype {np.dtype(dtype).name} is not supported; "
                              f"TensorFlow's CPU kernel takes {', '.join(allowed)}.")


def _sample(ctx, op, shape_tensor, dtype, gen, draw, *args):
    dims = _output_shape(ctx, op, shape_tensor, dtype)
    xp = _namespace(ctx, dtype)
    count = math.prod(dims)
    return xp.reshape(draw(xp, gen, count, dtype, *args), dims)


_FLOAT_DRAWS = {"Uniform": uniform, "Normal": normal, "TruncatedNormal": truncated_normal}
_INT_DTYPES = ("int32", "int64")
_FULL_INT_DTYPES = ("int32", "int64", "uint32", "uint64")


def _register_stateless(name, draw):
    @kernel(f"StatelessRandom{name}" if name != "TruncatedNormal" else "StatelessTruncatedNormal")
    def stateless_v1(ctx, inputs, attrs, draw=draw, name=name):
        op = f"Stateless{name}"
        dtype = attrs.get("dtype", np.dtype(np.float32))
        _check_dtype(op, dtype, _FLOAT_DTYPES)
        return [_sample(ctx, op, inputs[0], dtype, _seed_generator(ctx, op, inputs[1]), draw)]

    @kernel(f"StatelessRandom{name}V2" if name != "TruncatedNormal" else "StatelessTruncatedNormalV2")
    def stateless_v2(ctx, inputs, attrs, draw=draw, name=name):
        op = f"Stateless{name}V2"
        dtype = attrs.get("dtype", np.dtype(np.float32))
        _check_dtype(op, dtype, _FLOAT_DTYPES)
        gen = _key_counter_generator(ctx, op, *inputs[1:4])
        return [_sample(ctx, op, inputs[0], dtype, gen, draw)]


for _name, _draw in _FLOAT_DRAWS.items():
    _register_stateless(_name, _draw)


@kernel("StatelessRandomUniformInt")
def stateless_random_uniform_int(ctx, inputs, attrs):
    op = "StatelessRandomUniformInt"
    dtype = attrs["dtype"]
    _check_dtype(op, dtype, _INT_DTYPES)
    low, high = _int_bounds(ctx, op, inputs[2], inputs[3])
    gen = _seed_generator(ctx, op, inputs[1])
    return [_sample(ctx, op, inputs[0], dtype, gen, uniform_int, low, high)]


@kernel("StatelessRandomUniformIntV2")
def stateless_random_uniform_int_v2(ctx, inputs, attrs):
    op = "StatelessRandomUniformIntV2"
    dtype = attrs["dtype"]
    _check_dtype(op, dtype, _INT_DTYPES)
    gen = _key_counter_generator(ctx, op, *inputs[1:4])
    low, high = _int_bounds(ctx, op, inputs[4], inputs[5])
    return [_sample(ctx, op, inputs[0], dtype, gen, uniform_int, low, high)]


@kernel("StatelessRandomUniformFullInt")
def stateless_random_uniform_full_int(ctx, inputs, attrs):
    op = "StatelessRandomUniformFullInt"
    dtype = attrs.get("dtype", np.dtype(np.uint64))
    _check_dtype(op, dtype, _FULL_INT_DTYPES)
    gen = _seed_generator(ctx, op, inputs[1])
    return [_sample(ctx, op, inputs[0], dtype, gen, uniform_full_int)]


@kernel("StatelessRandomUniformFullIntV2")
def stateless_random_uniform_full_int_v2(ctx, inputs, attrs):
    op = "StatelessRandomUniformFullIntV2"
    dtype = attrs.get("dtype", np.dtype(np.uint64))
    _check_dtype(op, dtype, _FULL_INT_DTYPES)
    gen = _key_counter_generator(ctx, op, *inputs[1:4])
    return [_sample(ctx, op, inputs[0], dtype, gen, uniform_full_int)]


def _key_counter_outputs(ctx, op, seed):
    key, counter = _seed_generator(ctx, op, seed).key_counter()
    u64 = ctx.dtype(np.uint64)
    return [ctx.xp.asarray(key, dtype=u64), ctx.xp.asarray(counter, dtype=u64)]


@kernel("StatelessRandomGetKeyCounter")
def stateless_random_get_key_counter(ctx, inputs, attrs):
    return _key_counter_outputs(ctx, "StatelessRandomGetKeyCounter", inputs[0])


@kernel("StatelessRandomGetKeyCounterAlg")
def stateless_random_get_key_counter_alg(ctx, inputs, attrs):
    outputs = _key_counter_outputs(ctx, "StatelessRandomGetKeyCounterAlg", inputs[0])
    return outputs + [ctx.xp.asarray(RNG_ALG_PHILOX, dtype=ctx.dtype(np.int32))]


@kernel("StatelessRandomGetAlg")
def stateless_random_get_alg(ctx, inputs, attrs):
    return [ctx.xp.asarray(RNG_ALG_PHILOX, dtype=ctx.dtype(np.int32))]


# ---- seeded stateful ops -----------------------------------------------------------------

def _stateful_generator(node) -> Philox:
    """``GuardedPhiloxRandom::Init(seed, seed2)``: key ``seed``, counter ``(0, seed2)``."""
    seed, seed2 = int(node.attrs.get("seed", 0)), int(node.attrs.get("seed2", 0))
    if seed == 0 and seed2 == 0:
        raise SavedModelError(
            f"{node.op} (node {node.name!r}) has seed=0 and seed2=0: TensorFlow draws fresh "
            "random numbers for it on every load, which sm_notebook cannot reproduce. Give "
            "the op a seed (tf.random.set_seed or seed=) when exporting, or use the "
            "tf.random.stateless_* ops.")
    return Philox(seed, (seed2 & _MASK64) << 64)


def _register_stateful(op, draw, dtype_attr, allowed, bounded=False):
    @prepared_kernel(op)
    def prepare(node, ctx):
        dtype = node.attrs.get(dtype_attr)
        _check_dtype(op, dtype, allowed)
        state = {"gen": _stateful_generator(node)}

        def run(inputs):
            args = _int_bounds(ctx, op, inputs[1], inputs[2]) if bounded else ()
            dims = _output_shape(ctx, op, inputs[0], dtype)
            gen = state["gen"]
            # TensorFlow reserves 256 blocks per output for every call, whatever the distribution
            state["gen"] = gen.skipped(math.prod(dims) * RESERVED_BLOCKS_PER_OUTPUT)
            return [_sample(ctx, op, inputs[0], dtype, gen, draw, *args)]
        return run


_register_stateful("RandomUniform", uniform, "dtype", _FLOAT_DTYPES)
_register_stateful("RandomStandardNormal", normal, "dtype", _FLOAT_DTYPES)
_register_stateful("TruncatedNormal", truncated_normal, "dtype", _FLOAT_DTYPES)
_register_stateful("RandomUniformInt", uniform_int, "Tout", _INT_DTYPES, bounded=True)
