"""Run panel: pick a tag-set and signature, feed notebook variables, typed values, files or
generated inputs, see outputs (statistics, top-k, histogram) and timing. Typed values are parsed by sm_notebook.literals, never evaluated."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ipywidgets as W

from ... import render as display
from ..input_files import read_input_file, score_labels
from ._common import initial_meta_graph, load_info, message_html
from .progress import Progress

GENERATED = ("zeros", "random")


@dataclass(frozen=True)
class InputFile:
    """An input read from a file when the panel runs (see notebook/input_files.py)."""
    path: str
BACKENDS = ("numpy", "cupy")


def numpy_dtype(dtype_enum_name: str):
    """numpy dtype for a ``DT_*`` name (strings are object arrays of bytes)."""
    from ..._proto.tensor_pb2 import DataType
    from ...format.tensors import dtype_to_numpy
    return dtype_to_numpy(DataType.Value(dtype_enum_name))


def generate_input(spec, how: str = "zeros", batch_size: int = 1, seed: int = 0) -> np.ndarray:
    """An array for a TensorSpec: zeros or random values, unknown dims filled by ``batch_size``."""
    from ...errors import SavedModelError
    if spec.shape is None:
        raise SavedModelError(f"Input {spec.key!r} has unknown rank; give a value instead of {how!r}.")
    shape = tuple(batch_size if d is None or d < 0 else d for d in spec.shape)
    dtype = np.dtype(numpy_dtype(spec.dtype))
    rng = np.random.default_rng(seed)
    if dtype.kind == "O":
        return np.full(shape, b"", dtype=object)
    if how == "zeros":
        return np.zeros(shape, dtype=dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(0, 10, size=shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def notebook_arrays(namespace) -> list[str]:
    """Names in ``namespace`` holding arrays, numbers or lists (what an input can come from)."""
    if not namespace:
        return []
    return sorted(name for name, value in namespace.items()
                  if not name.startswith("_") and (hasattr(value, "__array__") or hasattr(value, "__array_namespace__")
                                                   or isinstance(value, (list, tuple, int, float, bool, bytes))))


class RunPanel(W.VBox):
    """Run a signature; ``set_input``, ``inputs()``, ``run()`` and ``result`` do the same from Python."""

    def __init__(self, path_or_info, tags=None, signature=None, backend="numpy", namespace=None,
                 batch_size: int = 1, background=None):
        self.info = load_info(path_or_info)
        self.path = self.info.export_dir
        self.namespace = namespace if namespace is not None else _user_namespace()
        self.sources: dict = {}       # input key -> "zeros" | "random" | variable name | typed value | array
        self.result: display.RunResult | None = None
        #: run in a thread so that Cancel can be clicked (default: inside a Jupyter kernel)
        self.background = _in_kernel() if background is None else background
        self._thread = None
        self._watch = None
        self.load_seconds = 0.0
        self._models: dict = {}
        mg0 = initial_meta_graph(self.info, tags, signature)
        self.meta_graph_picker = W.Dropdown(
            options=[(f"#{mg.index} {display.tags_text(mg.tags)}", mg.index) for mg in self.info.meta_graphs],
            value=mg0.index, description="tag-set")
        self.signature_picker = W.Dropdown(description="signature")
        self.batch_field = W.BoundedIntText(value=batch_size, min=1, max=1 << 20, description="batch size",
                                            layout=W.Layout(width="180px"))
        self.backend_toggle = W.ToggleButtons(options=list(BACKENDS), value=backend, description="backend")
        self.inputs_box = W.VBox()
        self.refresh_button = W.Button(description="\u21bb variables", tooltip="re-read notebook variables")
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.status = W.HTML()
        self.progress_box = W.VBox()
        self.result_view = W.HTML()
        super().__init__([W.HBox([self.meta_graph_picker, self.signature_picker]),
                          W.HBox([self.batch_field, self.backend_toggle]),
                          W.HTML("<b>inputs</b>"), self.inputs_box,
                          W.HBox([self.run_button, self.refresh_button]), self.status,
                          self.progress_box, self.result_view])
        self.meta_graph_picker.observe(lambda _: self._on_meta_graph(), names="value")
        self.signature_picker.observe(lambda _: self._render_inputs(), names="value")
        self.refresh_button.on_click(lambda _: self._render_inputs())
        self.run_button.on_click(lambda _: self._run_from_button())
        self._on_meta_graph()
        if signature is not None:
            self.select(signature)

    def __repr__(self):
        last = f", last run {self.result.seconds * 1e3:.1f} ms" if self.result else ""
        return (f"<RunPanel {str(self.path)!r} metagraph #{self.meta_graph_picker.value} "
                f"signature={self.signature_picker.value!r} backend={self.backend_toggle.value!r}{last}>")

    @property
    def meta_graph(self):
        return self.info.meta_graphs[self.meta_graph_picker.value]

    @property
    def signature(self):
        """The selected SignatureInfo (None when the metagraph has none)."""
        key = self.signature_picker.value
        return self.meta_graph.signatures.get(key) if key else None

    def select(self, signature=None, tags=None):
        """Select a metagraph (exact tag-set) and/or a signature key."""
        if tags is not None:
            self.meta_graph_picker.value = self.info.meta_graph(tags).index
        if signature is not None:
            self.info.signature(signature, self.meta_graph.tags)  # raises, listing the keys
            self.signature_picker.value = signature
        return self

    def set_input_file(self, key: str, path):
        """Feed input ``key`` from a ``.npy``/``.npz`` (``x.npz[name]``) or image file (read at run time)."""
        sig = self.signature
        if sig is None or key not in sig.inputs:
            raise KeyError(f"No input {key!r}; inputs: {list(sig.inputs) if sig else []}")
        self.sources[key] = InputFile(str(path))
        field = self._file_fields.get(key)
        if field is not None and field.value != str(path):
            field.value = str(path)
        return self

    def set_input(self, key: str, source):
        """Feed input ``key`` from "zeros", "random", a notebook variable's name, a typed value
        (``"[[1.0, 2.0]]"``, ``"np.ones((2, 8), np.float32)"``: see sm_notebook.literals), or an array."""
        sig = self.signature
        if sig is None or key not in sig.inputs:
            raise KeyError(f"No input {key!r}; inputs: {list(sig.inputs) if sig else []}")
        self.sources[key] = source
        if isinstance(source, str):
            dropdown = self._dropdowns.get(key)
            if dropdown is not None:
                if source not in dropdown.options:
                    dropdown.options = list(dropdown.options) + [source]
                dropdown.value = source
        return self

    def inputs(self) -> dict:
        """The arrays the next run will feed, by input key."""
        from ...errors import SavedModelError
        from ...literals import parse_value
        sig = self.signature
        if sig is None:
            raise SavedModelError("This metagraph has no signature to run.")
        result = {}
        for i, (key, spec) in enumerate(sig.inputs.items()):
            source = self.sources.get(key, "zeros")
            if isinstance(source, str) and source in GENERATED:
                result[key] = generate_input(spec, source, self.batch_field.value, seed=i)
            elif isinstance(source, str):  # a variable's name or a typed value: parsed, never evaluated
                result[key] = parse_value(source, what=f"input {key!r}", names=self.namespace)
            elif isinstance(source, InputFile):
                result[key] = read_input_file(source.path, spec)
            else:
                result[key] = source
        return result

    def model(self):
        """The loaded model for the selected tag-set and backend (loaded once, then reused)."""
        import sm_notebook
        key = (self.meta_graph.index, self.backend_toggle.value)
        if key not in self._models:
            with display.Timer() as timer:
                self._models[key] = sm_notebook.load(self.path, tags=self.meta_graph.tags,
                                                     backend=self.backend_toggle.value)
            self.load_seconds = timer.seconds
        return self._models[key]

    def run(self, progress: Progress | None = None, watch=None) -> display.RunResult:
        """Run the selected signature on `inputs()`; the result is kept in ``result`` and shown.
        ``watch`` (a RunWatch) sees every op and can cancel the run."""
        from ...engine.watch import RunWatch
        progress = progress or Progress("run", steps=2, show=False)
        watch = watch or RunWatch()
        sig = self.signature
        feeds = self.inputs()
        with progress:
            progress.step(f"loading {self.path.name} ({self.backend_toggle.value})")
            model = self.model()
            progress.step(f"running {sig.key!r}")
            with display.Timer() as timer:
                outputs = model.signatures[sig.key].run_watched(watch, **feeds)
        outputs = dict(outputs)
        self.result = display.RunResult(outputs, sig.key, self.meta_graph.tags,
                                        self.backend_toggle.value, timer.seconds, feeds,
                                        labels=score_labels(self.meta_graph, outputs))
        self.result_view.value = display.run_result_html(self.result)
        self.status.value = message_html(
            f"ran in {timer.seconds * 1e3:.1f} ms (model load {self.load_seconds * 1e3:.0f} ms, once)", "ok")
        return self.result

    def wait(self, timeout=None):
        """Wait for a background run started by the Run button to end."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    def cancel(self):
        """Stop the run under way at its next op (what the Cancel button does)."""
        if self._watch is not None:
            self._watch.cancel()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run_from_button(self):
        if self.running:
            return
        progress = Progress("run", steps=2, show=False)
        watch = progress.watch(on_cancel=lambda: None)
        self._watch = watch
        self.progress_box.children = [progress.widget]
        self.run_button.disabled = True
        if self.background:
            import threading
            self._thread = threading.Thread(target=self._run_and_report, args=(progress, watch),
                                            name="sm_notebook run panel", daemon=True)
            self._thread.start()
        else:
            self._run_and_report(progress, watch)

    def _run_and_report(self, progress, watch):
        try:
            self.run(progress, watch)
        except Exception as exc:  # shown in the panel: a button has nowhere else to report
            self.result = None  # an old result under a new error would read as this run's
            self.result_view.value = ""
            self.progress_box.children = []
            self.status.value = message_html(f"{type(exc).__name__}: {exc}", "error")
        finally:
            self.run_button.disabled = False

    def _on_meta_graph(self):
        keys = [k for k in self.meta_graph.signatures if not k.startswith("__saved_model")]
        self.signature_picker.options = keys
        self.signature_picker.value = ("serving_default" if "serving_default" in keys
                                       else keys[0] if keys else None)
        self._render_inputs()

    def _render_inputs(self):
        sig = self.signature
        self._dropdowns, self._value_fields, self._file_fields = {}, {}, {}
        rows = []
        variables = notebook_arrays(self.namespace)
        for key, spec in (sig.inputs.items() if sig else []):
            source = self.sources.get(key, "zeros")
            options = list(GENERATED) + variables
            if isinstance(source, str) and source not in options:
                options.append(source)
            dropdown = W.Dropdown(options=options, value=source if isinstance(source, str) else "zeros",
                                  layout=W.Layout(width="200px"))
            dropdown.observe(lambda c, k=key: self.sources.__setitem__(k, c.new), names="value")
            self._dropdowns[key] = dropdown
            typed = W.Text(placeholder="or type a value, e.g. [[1.0, 2.0]]", continuous_update=False,
                           layout=W.Layout(width="260px"))
            typed.observe(lambda c, k=key: self.set_input(k, c.new.strip()) if c.new.strip() else None,
                          names="value")
            self._value_fields[key] = typed
            from_file = W.Text(placeholder="or a file: x.npy, x.npz[name], photo.jpg",
                               value=source.path if isinstance(source, InputFile) else "",
                               continuous_update=False, layout=W.Layout(width="260px"))
            from_file.observe(lambda c, k=key: self.set_input_file(k, c.new.strip()) if c.new.strip() else None,
                              names="value")
            self._file_fields[key] = from_file
            rows.append(W.HBox([W.HTML(display.code_html(key), layout=W.Layout(width="160px")),
                                W.HTML(display.muted_html(f"{display.dtype_text(spec.dtype)} "
                                                          f"{display.shape_text(spec.shape)}"),
                                       layout=W.Layout(width="160px")), dropdown, typed, from_file]))
        self.inputs_box.children = rows or [W.HTML(display.muted_html("no inputs" if sig else "no signature"))]


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where a button's handler may run the model in a thread)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def _user_namespace():
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except ImportError:
        return {}
    return shell.user_ns if shell is not None else {}
