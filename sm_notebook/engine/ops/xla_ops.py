"""XLA ops that TensorFlow also runs outside XLA and Keras 3's TensorFlow backend exports:
XlaDynamicSlice and XlaDynamicUpdateSlice (``keras.ops.slice_update``, e.g. the key/value
cache of keras-hub's generate loops).

Start indices are clamped as XLA clamps them, so the slice always lies inside the operand:
``start = min(max(start, 0), dim - size)``.
"""
from __future__ import annotations

from ...errors import SavedModelError
from ._arrays import ints, xp_of
from .registry import kernel


def _clamped_starts(op, operand_shape, sizes, starts) -> list[int]:
    if len(starts) != len(operand_shape):
        raise SavedModelError(f"{op}: {len(starts)} start indices for an operand of rank "
                              f"{len(operand_shape)} (shape {tuple(operand_shape)}); one per dimension.")
    for size, dim in zip(sizes, operand_shape):
        if not 0 <= size <= dim:
            raise SavedModelError(f"{op}: a slice of shape {tuple(sizes)} does not fit an operand "
                                  f"of shape {tuple(operand_shape)}.")
    return [min(max(int(s), 0), dim - size) for s, size, dim in zip(starts, sizes, operand_shape)]


@kernel("XlaDynamicUpdateSlice")
def xla_dynamic_update_slice(ctx, inputs, attrs):
    operand, update, starts = inputs[0], inputs[1], ints(ctx, inputs[2])
    xp = xp_of(ctx, operand, update)
    if update.ndim != operand.ndim:
        raise SavedModelError(f"XlaDynamicUpdateSlice: update of rank {update.ndim} for an operand "
                              f"of rank {operand.ndim}; they must be equal.")
    begin = _clamped_starts("XlaDynamicUpdateSlice", operand.shape, update.shape, starts)
    result = xp.asarray(operand, copy=True)  # never write into the input
    if update.size:
        result[tuple(slice(b, b + n) for b, n in zip(begin, update.shape))] = update
    return [result]


@kernel("XlaDynamicSlice")
def xla_dynamic_slice(ctx, inputs, attrs):
    operand, starts, sizes = inputs[0], ints(ctx, inputs[1]), ints(ctx, inputs[2])
    xp = xp_of(ctx, operand)
    if len(sizes) != operand.ndim:
        raise SavedModelError(f"XlaDynamicSlice: {len(sizes)} slice sizes for an operand of rank "
                              f"{operand.ndim}; one per dimension.")
    begin = _clamped_starts("XlaDynamicSlice", operand.shape, sizes, starts)
    return [xp.asarray(operand[tuple(slice(b, b + n) for b, n in zip(begin, sizes))], copy=True)]
