"""Fast Fourier transforms: FFT/IFFT (1-3D, complex) and RFFT/IRFFT (1-3D, real <-> complex),
and Roll (tf.signal.fftshift).

Written once against the array API's ``fft`` extension (``xp.fft.fftn`` and friends),
which numpy, cupy and array_api_strict provide. TensorFlow's CPU kernels (DUCC) only
crop: an input dimension shorter than ``fft_length`` (``fft_length[-1] // 2 + 1`` for the
innermost dimension of IRFFT) is refused, as there; ``tf.signal.rfft`` pads with its own
``Pad`` op before the raw op. IRFFT ignores the imaginary parts of the DC and Nyquist
bins, as DUCC's (and the array API's) complex-to-real transform does.
"""
from __future__ import annotations

from ._numeric import fail, host_ints, namespace, op_kernel


def _innermost(op, x, rank):
    if x.ndim < rank:
        fail(op, f"Input must have rank of at least {rank} but got: {list(x.shape)}")
    return tuple(range(-rank, 0))


def _complex_transform(inverse, rank):
    name = f"{'I' if inverse else ''}FFT{'' if rank == 1 else f'{rank}D'}"

    @op_kernel(name)
    def kernel(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        axes = _innermost(name, x, rank)
        if x.size == 0:
            return [xp.zeros(x.shape, dtype=x.dtype)]
        transform = xp.fft.ifftn if inverse else xp.fft.fftn
        return [transform(x, axes=axes)]
    kernel.__name__ = name.lower()
    kernel.__doc__ = f"{name}: the {'inverse ' if inverse else ''}DFT over the {rank} innermost dimensions."
    return kernel


def _fft_lengths(op, ctx, x, fft_length, rank, inverse):
    """``fft_length`` checked as TensorFlow checks it; the input's required dimensions."""
    axes = _innermost(op, x, rank)
    lengths = host_ints(ctx, fft_length)
    if len(lengths) != rank:
        fail(op, f"fft_length must have shape [{rank}]")
    for i, n in enumerate(lengths):
        if n < 0:
            fail(op, f"fft_length[{i}] must >= 0, but got: {n}")
    needed = list(lengths)
    if inverse:
        needed[-1] = lengths[-1] // 2 + 1
    if x.size:
        for axis, n in zip(axes, needed):
            if x.shape[axis] < n:
                fail(op, f"Input dimension {x.ndim + axis} must have length of at least {n} "
                         f"but got: {x.shape[axis]}")
        if 0 in lengths:  # DUCC aborts the whole process on a zero-size transform
            fail(op, f"fft_length {lengths} holds a 0: TensorFlow aborts on a zero-size FFT; "
                     "a model cannot have run with it")
    return axes, lengths, needed


def _real_transform(inverse, rank):
    name = f"{'I' if inverse else ''}RFFT{'' if rank == 1 else f'{rank}D'}"

    @op_kernel(name)
    def kernel(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        axes, lengths, needed = _fft_lengths(name, ctx, x, inputs[1], rank, inverse)
        batch = tuple(x.shape[:x.ndim - rank])
        if inverse:
            out_shape = batch + tuple(lengths)
            out_dtype = xp.float64 if x.dtype == xp.complex128 else xp.float32
        else:
            out_shape = batch + tuple(lengths[:-1]) + (lengths[-1] // 2 + 1,)
            out_dtype = xp.complex128 if x.dtype == xp.float64 else xp.complex64
        if x.size == 0 or 0 in out_shape:
            # TensorFlow leaves the output of an empty input uninitialized; zeros here
            return [xp.zeros(out_shape, dtype=out_dtype)]
        # crop to what the transform reads (IRFFT's innermost: fft_length // 2 + 1 bins)
        x = x[(...,) + tuple(slice(0, n) for n in needed)]
        transform = xp.fft.irfftn if inverse else xp.fft.rfftn
        return [transform(x, s=tuple(lengths), axes=axes)]
    kernel.__name__ = name.lower()
    kernel.__doc__ = (f"{name}: the {'complex-to-real inverse' if inverse else 'real-to-complex'} "
                      f"DFT over the {rank} innermost dimensions, cropped to fft_length.")
    return kernel


for _rank in (1, 2, 3):
    for _inverse in (False, True):
        _complex_transform(_inverse, _rank)
        _real_transform(_inverse, _rank)


@op_kernel("Roll")
def roll(ctx, inputs, attrs):
    """Shift elements along axes, wrapping around (what tf.signal.fftshift lowers to); shifts
    of an axis named twice add up."""
    xp, (x,) = namespace(ctx, inputs[0])
    shifts, axes = host_ints(ctx, inputs[1]), host_ints(ctx, inputs[2])
    if len(shifts) != len(axes):
        fail("Roll", f"shift and axis must have the same size, got {shifts} and {axes}")
    total: dict = {}
    for shift, axis in zip(shifts, axes):
        if not -x.ndim <= axis < x.ndim:
            fail("Roll", f"axis {axis} is out of range for a tensor of rank {x.ndim}")
        axis %= x.ndim
        total[axis] = total.get(axis, 0) + shift
    moved = {a: s for a, s in total.items() if x.shape[a] and s % x.shape[a]}
    if not moved:
        return [xp.asarray(x, copy=True)]
    return [xp.roll(x, shift=tuple(moved.values()), axis=tuple(moved))]
