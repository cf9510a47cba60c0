"""ReverseSequence: each batch row's first ``seq_lengths[b]`` steps reversed (TF1
bidirectional_dynamic_rnn's backward direction)."""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ._arrays import ints, xp_of
from .registry import kernel


@kernel("ReverseSequence")
def reverse_sequence(ctx, inputs, attrs):
    op = "ReverseSequence"
    x, lengths = inputs[0], ints(ctx, inputs[1])
    xp, rank = xp_of(ctx, x), x.ndim
    seq, batch = int(attrs["seq_dim"]), int(attrs.get("batch_dim", 0))
    for what, dim in (("seq_dim", seq), ("batch_dim", batch)):  # TensorFlow refuses negatives
        if not 0 <= dim < rank:
            raise SavedModelError(f"{op}: {what} {dim} must lie in [0, {rank}) for an input of "
                                  f"shape {tuple(x.shape)}.")
    if seq == batch:
        raise SavedModelError(f"{op}: seq_dim and batch_dim must differ, both are {seq}.")
    n, steps = x.shape[batch], x.shape[seq]
    if len(lengths) != n:
        raise SavedModelError(f"{op}: len(seq_lengths) {len(lengths)} must equal the batch "
                              f"dimension {n} of input of shape {tuple(x.shape)}.")
    if any(not 0 <= k <= steps for k in lengths):
        raise SavedModelError(f"{op}: seq_lengths {lengths} must lie in [0, {steps}], the "
                              f"size of seq_dim {seq}.")
    order = [batch, seq] + [d for d in range(rank) if d not in (batch, seq)]
    moved = xp.permute_dims(x, tuple(order))
    rows = xp.reshape(moved, (n * steps, -1)) if n * steps else moved
    t = np.arange(steps)
    source = np.asarray([np.where(t < k, k - 1 - t, t) for k in lengths], np.int64).reshape(n, steps)
    flat = (source + np.arange(n)[:, None] * steps).reshape(-1)
    if n * steps:
        rows = xp.take(rows, xp.asarray(flat), axis=0)
    result = xp.reshape(rows, tuple(moved.shape))
    return [xp.permute_dims(result, tuple(int(i) for i in np.argsort(order)))]
