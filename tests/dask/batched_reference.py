"""The single-process reference for a Dask job: the same batches, scored one call each.

A job's outputs equal these bit for bit. They need not equal one call on all rows: BLAS
sums a row's products in an order that can depend on how many rows a call has (OpenBLAS
picks other kernels for other row counts; numpy's own matmul differs by ~1e-7)."""
import numpy as np

import sm_notebook


def scored_in_batches(path, row_chunks, batch_size=None, signature="serving_default", tags=None,
                      **inputs) -> dict:
    """Row-wise outputs of ``signature`` for ``inputs`` split into ``row_chunks`` and each chunk
    into batches of at most ``batch_size`` rows (0-d inputs are fed whole to every call)."""
    function = sm_notebook.load(path, tags=tags).signatures[signature]
    pieces, start = [], 0
    for rows in row_chunks:
        step = batch_size or max(rows, 1)
        for first in range(start, start + rows, step):
            stop = min(first + step, start + rows)
            pieces.append(function(**{k: v if np.ndim(v) == 0 else v[first:stop]
                                      for k, v in inputs.items()}).numpy())
        start += rows
    return {k: np.concatenate([p[k] for p in pieces]) for k, v in pieces[0].items() if np.ndim(v)}
