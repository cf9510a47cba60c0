"""Small helpers shared by the array, cast, list and scatter kernels.

Not an op module (the leading underscore keeps the registry from importing it).
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import SavedModelError
from ..backend import is_numpy_namespace, numpy_namespace  # noqa: F401  (used by the op modules)


def xp_of(ctx, *arrays):
    """``ctx.xp``, or numpy's namespace when an input holds a host-only dtype."""
    if not ctx.is_numpy and any(isinstance(a, (np.ndarray, np.generic)) for a in arrays):
        return numpy_namespace()
    return ctx.xp


def move_to(ctx, xp, array):
    """Put ``array`` in namespace ``xp`` (ctx.xp or numpy's)."""
    if is_numpy_namespace(xp):
        return ctx.to_numpy(array)
    if isinstance(array, (np.ndarray, np.generic)):
        return ctx.xp.asarray(array)
    return array


def np_dtype(array) -> np.dtype:
    """The numpy dtype of an array of any backend."""
    dtype = array.dtype
    if isinstance(dtype, np.dtype):
        return dtype
    inner = getattr(dtype, "_np_dtype", None)
    if inner is not None:
        return np.dtype(inner)
    return np.dtype(str(dtype).rsplit(".", 1)[-1])


def xp_dtype(xp, dtype):
    """The dtype object of namespace ``xp`` for a numpy dtype."""
    if is_numpy_namespace(xp):
        return np.dtype(dtype)
    return getattr(xp, np.dtype(dtype).name)


def ints(ctx, array) -> list[int]:
    """A small integer tensor (shape, axes, sizes) as a flat list of Python ints."""
    return [int(v) for v in ctx.to_numpy(array).reshape(-1)]


def scalar(ctx, array, op: str, what: str):
    """The one value of a scalar (or one-element) tensor, as a Python number."""
    if type(array) is np.ndarray and array.size == 1:
        return array.item()
    host = ctx.to_numpy(array)
    if host.size != 1:
        raise SavedModelError(f"{op}: {what} must be a scalar, got shape {host.shape}.")
    return host.reshape(-1)[0].item()


def canonical_axis(axis: int, rank: int, op: str, what: str = "axis") -> int:
    """``axis`` in [-rank, rank) made non-negative; SavedModelError otherwise."""
    if not -rank <= axis < rank:
        raise SavedModelError(f"{op}: {what} {axis} is out of range for a tensor of rank {rank} "
                              f"(expected [{-rank}, {rank})).")
    return axis + rank if axis < 0 else axis


def num_elements(shape) -> int:
    return math.prod(int(d) for d in shape)


def fresh_copy(xp, array):
    """A writable array that owns its memory."""
    return xp.asarray(array, copy=True)


def host_result(ctx, xp, host: np.ndarray):
    """A numpy result moved into ``xp`` (the backend, unless xp is numpy's)."""
    if is_numpy_namespace(xp):
        return host
    return ctx.asarray(host)
