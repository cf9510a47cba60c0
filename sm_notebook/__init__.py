"""sm_notebook: inspect, diagnose, edit and run TensorFlow SavedModels without TensorFlow.

The public surface only; heavy parts (engine, builder, notebook) load on first use.
"""
from .errors import SavedModelError, SavedModelWarning, TagSetNotFoundError

__all__ = [
    "inspect", "load", "diff", "summary", "Builder", "Graph", "signature", "Ragged",
    "set_num_threads",
    "SavedModelError", "TagSetNotFoundError", "SavedModelWarning",
]
__version__ = "0.1.0"


def inspect(export_dir):
    """Describe a SavedModel: tag-sets, metagraphs, signatures, ops, variables, assets."""
    from .inspection import inspect as _inspect  # module named inspection: `inspect` stays this function
    info = _inspect(export_dir)
    info.extra_checks.append(_engine_check)
    return info


def _engine_check(info):
    """diagnose()'s view of what the engine will do (the same verdicts as `sm-notebook scan`)."""
    from .engine.scan import engine_problems
    return engine_problems(info)


def diff(a, b, values=True):
    """What differs between the exports in ``a`` and ``b``: tag-sets, signatures, variables
    (values too unless ``values=False``), assets and op counts. Prints as text, shows as HTML."""
    from .compare import diff as _diff
    return _diff(a, b, values=values)


def summary(export_dir, tags=None):
    """A Keras-style table of the variables (parameters and bytes) grouped by layer."""
    from .parameters import summary as _summary
    return _summary(export_dir, tags)


def load(export_dir, tags=None, backend="numpy", **options):
    """Load a SavedModel for execution, choosing the metagraph exactly as TensorFlow does.

    ``tags``: an iterable of tags, or one string naming ONE tag; ``None`` takes the only
    metagraph (an error when there are several). ``backend``: "numpy", "cupy" or an
    array API namespace. Options: ``allow_io`` (default False), ``memory_cap`` (bytes one
    intermediate may take, default 8 GiB), ``max_loop_iterations`` (iterations one run of a
    while loop may take, default 10,000,000).
    """
    from .engine.loader import load_model
    return load_model(export_dir, tags=tags, backend=backend, **options)


def set_num_threads(threads):
    """Cap the threads the engine gives large matrix products and convolutions (1: one core
    for everything); ``None`` (the default) uses the cores this process may run on. Small
    products always run on one thread. ``SM_NOTEBOOK_NUM_THREADS`` sets the starting cap."""
    from .engine.blas import set_num_threads as _set
    _set(threads)


def _graph_view(info, signature, tags):
    """``SavedModelInfo.graph``: the view sits in the notebook layer, above inspection, so the
    public surface (above every layer) builds it."""
    from .notebook.graph_view import GraphView
    return GraphView(info, signature, tags)


def __getattr__(name):
    if name in ("Builder", "Graph", "signature"):
        from . import builder
        return getattr(builder, name)
    if name == "Ragged":
        from .format.ragged import Ragged
        return Ragged
    if name == "ops":
        import importlib
        return importlib.import_module(".ops", __name__)
    raise AttributeError(f"module 'sm_notebook' has no attribute {name!r}")


def load_ipython_extension(ipython):
    """``%load_ext sm_notebook``: register the %savedmodel magics."""
    from .notebook.magics import load_ipython_extension as _load
    _load(ipython)
