"""Batch inference with Dask: a SavedModel signature scored chunk by chunk on Dask workers.

    import sm_notebook.dask
    scores = sm_notebook.dask.predict("path/to/export", images)   # lazy dask array
    scores.compute()                                              # any scheduler, any Client

The signature is read once on the client (dtypes and shapes of the lazy result come
from the SignatureDef, nothing runs to infer them); each worker process loads the
model once, cached by path and fingerprint, and reuses it for every chunk. The path may
be an fsspec URL (``s3://...``; see `remote`): each machine copies the export once.
Needs the optional dependency: ``pip install -e ".[dask]"``.
"""
from __future__ import annotations

try:  # absolute imports: this is the top-level dask, not this package
    import dask  # noqa: F401
    import dask.array  # noqa: F401
except ImportError as exc:
    raise ImportError(
        f"sm_notebook.dask needs Dask, which is not installed ({exc}). Install the extra: "
        "pip install -e \".[dask]\" (from a checkout) or pip install \"sm_notebook[dask]\".") from exc

from .lazy_graph import predict
from .model_cache import clear_model_cache, model_loads

__all__ = ["predict", "model_loads", "clear_model_cache"]
