"""What `sm_notebook.load` returns: a model whose signatures are callable.

``model.signatures[key](**inputs)`` checks and converts the inputs against the
SignatureDef, runs the signature's plan (compiled on first call) and returns a
`SignatureOutputs` dict of arrays of the model's backend.

Calls from several threads: a signature whose plan has side effects (variable
writes, table inserts: `Plan.has_effects`) runs under the model's lock, so each
call's updates are atomic with respect to every other such call (TensorFlow makes
each update op atomic, not a call: a read, add, assign there can lose updates);
signatures without effects run concurrently, unlocked.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from ..errors import SavedModelError
from ..format.ragged import Ragged, ragged_signature_inputs
from ..format.tensors import dtype_to_numpy, shape_from_proto
from .plan import Debugger, StopExecution
from .ragged import assemble_ragged, expand_ragged_inputs, ragged_output_spec

INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclass(frozen=True)
class TensorSpec:
    """A signature input or output: graph tensor name, dtype (numpy) and shape (None dims)."""
    name: str
    dtype: np.dtype
    shape: tuple | None

    def __str__(self):
        return spec_text(self.dtype, self.shape)


def spec_text(dtype, shape) -> str:
    dtype = np.dtype(dtype)
    name = "string" if dtype == object else dtype.name
    if shape is None:
        return f"{name}[...]"
    return f"{name}[{','.join('?' if d is None else str(d) for d in shape)}]"


def _spec(info, where: str) -> TensorSpec:
    if info.WhichOneof("encoding") == "composite_tensor":
        ragged = ragged_output_spec(info, _spec, where)
        if ragged is not None:
            return ragged
    if info.WhichOneof("encoding") != "name":
        raise SavedModelError(
            f"{where} is a {info.WhichOneof('encoding')} (sparse or composite) tensor; only dense "
            "tensors can be fed or fetched by sm_notebook's engine.")
    return TensorSpec(info.name, dtype_to_numpy(info.dtype), shape_from_proto(info.tensor_shape))


class SignatureOutputs(dict):
    """Output name -> array of the model's backend; `.numpy()` gives numpy arrays."""
    __slots__ = ("_backend",)

    def __init__(self, values, backend):
        dict.__init__(self, values)  # not super(): this runs on every call
        self._backend = backend

    def numpy(self) -> dict:
        return {k: _to_numpy(self._backend, v) for k, v in self.items()}


def _to_numpy(backend, value):
    if isinstance(value, Ragged):
        return value.map_arrays(backend.to_numpy)
    return backend.to_numpy(value)


@dataclass
class DebugRun:
    """The result of `SignatureFunction.debug`: outputs (None when stopped early),
    every traced step (`records`) and every node's outputs (`values`, by node name)."""
    outputs: dict | None
    stopped_at: str | None
    records: list = field(default_factory=list)
    values: dict = field(default_factory=dict)

    def __repr__(self):
        state = f"stopped after {self.stopped_at!r}" if self.stopped_at else "ran to the end"
        return f"<DebugRun: {len(self.records)} steps, {state}>"


class SignatureFunction:
    """One SignatureDef, callable with keyword arguments named like its inputs."""

    def __init__(self, model, key: str, signature_def):
        self._model = model
        self.key = key
        self.method_name = signature_def.method_name
        self._signature_def = signature_def
        self.inputs = {k: _spec(v, f"Input {k!r} of signature {key!r}")
                       for k, v in sorted(signature_def.inputs.items())}
        self.outputs = {k: _spec(v, f"Output {k!r} of signature {key!r}")
                        for k, v in sorted(signature_def.outputs.items())}
        self.ragged_inputs = ragged_signature_inputs(model._source.meta_graph, key)
        self._input_keys = list(self.inputs)
        self._fetches = [c for s in self.outputs.values() for c in getattr(s, "components", (s,))]
        self._backend = model._runtime.ctx.backend
        #: output keys (the fetches in order) when every output is dense and the backend is
        #: numpy (outputs checked in one pass), else None
        self._numpy_outputs = (tuple(self.outputs) if self._backend.is_numpy and all(
            isinstance(s, TensorSpec) for s in self.outputs.values()) else None)
        #: (key, dtype, rank, known dims) per input when a numpy array of the spec's dtype
        #: and shape is taken as it is (numpy backend, no ragged inputs, numeric dtypes), else None
        self._plain_inputs = (tuple((k, s.dtype, *_shape_test(s.shape)) for k, s in self.inputs.items())
                              if self._backend.is_numpy and not self.ragged_inputs and all(
                                  s.dtype.kind in "biufc" for s in self.inputs.values()) else None)
        self._feed_values = list(model._feeds.values())  # asset paths fed to every call
        self._plan = None

    def __repr__(self):
        parts = {k for arg in self.ragged_inputs.values() for k in arg.keys}
        args = ", ".join([f"{k}: {arg.spec}" for k, arg in self.ragged_inputs.items()]
                         + [f"{k}: {v}" for k, v in self.inputs.items() if k not in parts])
        outs = ", ".join(f"{k}: {v}" for k, v in self.outputs.items())
        return f"<SignatureFunction {self.key}({args}) -> {{{outs}}}>"

    @property
    def plan(self):
        """The compiled plan (compiled on first use)."""
        if self._plan is None:
            self._plan = self._compile(self._model._runtime)
        return self._plan

    def _compile(self, runtime):
        return runtime.graph_plan(
            [s.name for s in self.inputs.values()] + list(self._model._feeds),
            [s.name for s in self._fetches], name=f"signature {self.key!r}")

    def __call__(self, **inputs) -> SignatureOutputs:
        args = self._convert(inputs)
        plan = self._plan if self._plan is not None else self.plan
        runtime = self._model._runtime
        if plan.has_effects:  # calls with side effects are atomic with respect to each other
            with self._model._call_lock:
                values = runtime.run_plan(plan, args)
        else:
            values = plan.run(args, runtime.debugger)  # runtime.run_plan without its frame
        return self._outputs(values, plan, args)

    def run_watched(self, watch, **inputs) -> SignatureOutputs:
        """Call the signature reporting each step to ``watch`` (an engine.watch.RunWatch);
        after ``watch.cancel()`` it stops at the next step boundary and raises RunCancelled."""
        from .watch import RunCancelled
        args = self._convert(inputs)
        plan = self.plan
        runtime = self._model._runtime.watching(watch)
        watch.begin(len(plan.steps))
        try:
            with self._model._call_lock if plan.has_effects else nullcontext():
                values = runtime.run_plan(plan, args)
        except StopExecution:
            raise RunCancelled(self.key, watch.done, watch.total, watch.stopped_at) from None
        return self._outputs(values, plan, args)

    def debug(self, trace=True, stop_after=None, **inputs) -> DebugRun:
        """Run once node by node on the unoptimised plan (every node of the graph is a
        step, nothing fused or folded away): ``trace`` prints each node's inputs and
        outputs (or pass a callable), ``stop_after`` (node name or step index) stops
        there; a name no node of this signature has is refused, naming the nearest."""
        args = self._convert(inputs)
        debugger = Debugger(trace=trace, stop_after=stop_after)
        runtime = self._model._runtime.debugging(debugger)
        plan = self._compile(runtime)
        debugger.check_target({i.name for i in plan.info} | runtime.library.node_names())
        try:
            with self._model._call_lock if plan.has_effects else nullcontext():
                values = runtime.run_plan(plan, args)
            outputs = self._outputs(values, plan, args)
        except StopExecution:
            outputs = None
        if isinstance(stop_after, int) and not isinstance(stop_after, bool) and outputs is not None:
            raise SavedModelError(f"stop_after={stop_after}: the run had only "
                                  f"{len(debugger.records)} steps (0 to {len(debugger.records) - 1}).")
        return DebugRun(outputs, debugger.stopped_at, debugger.records, debugger.values)

    # ---------------------------------------------------------------- inputs and outputs

    def _convert(self, inputs: dict) -> list:
        plain = self._plain_inputs
        if plain is not None and len(inputs) == len(plain):
            args = []
            for k, dtype, rank, fixed in plain:  # the common call: every input already as it should be
                value = inputs.get(k)
                if type(value) is not np.ndarray or value.dtype is not dtype:  # else compared below
                    break
                shape = value.shape
                if rank is not None:
                    if len(shape) != rank:
                        break
                    for axis, size in fixed:  # a loop, not all(): a generator costs more
                        if shape[axis] != size:
                            break
                    else:
                        args.append(value)
                        continue
                    break
                args.append(value)
            else:
                if self._feed_values:
                    args += self._feed_values
                return args
        backend = self._backend
        inputs = expand_ragged_inputs(inputs, self.ragged_inputs, backend.to_numpy,
                                      lambda k: f"Input {k!r} of signature {self.key!r}")
        unknown = [k for k in inputs if k not in self.inputs]
        missing = [k for k in self._input_keys if k not in inputs
                   and k not in self._signature_def.defaults]
        if unknown or missing:
            problems = []
            if unknown:
                problems.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
            if missing:
                problems.append(f"missing input(s) {', '.join(map(repr, missing))}")
            valid = ", ".join(f"{k}: {v}" for k, v in self.inputs.items())
            raise SavedModelError(
                f"Signature {self.key!r}: {' and '.join(problems)}. Its inputs are: {valid}.")
        args = []
        for k in self._input_keys:
            value = inputs[k] if k in inputs else _default(self._signature_def.defaults[k])
            spec = self.inputs[k]
            if (type(value) is np.ndarray and backend.is_numpy and value.dtype == spec.dtype
                    and spec.dtype.kind in "biufc" and _shape_fits(value.shape, spec.shape)):
                args.append(value)  # already what convert_input would return
                continue
            array = convert_input(value, spec, f"Input {k!r} of signature {self.key!r}", backend)
            args.append(backend.asarray(array))
        return args + self._feed_values

    def _outputs(self, values, plan, args=()) -> SignatureOutputs:
        """The fetched values as outputs the caller owns: constants, variable values and
        anything sharing memory with an input are copied (as TensorFlow returns fresh
        tensors), so changing an output changes nothing else."""
        backend = self._backend
        keys = self._numpy_outputs
        if keys is not None and not plan.constant_fetches:
            if len(keys) == 1:  # one output: no lists, no zip
                v = values[0]
                if type(v) is np.ndarray and v.flags.writeable and v.base is None:
                    for a in args:  # owning its memory, it can only be an input itself
                        if v is a:
                            v = v.copy()
                            break
                elif not (type(v) is np.ndarray and v.flags.writeable and not _shares_memory(
                        v, [a for a in args if type(a) is np.ndarray])):
                    v = _owned_numpy(v)
                return SignatureOutputs({keys[0]: v}, backend)
            inputs = [a for a in args if type(a) is np.ndarray]
            fetched = [v if type(v) is np.ndarray and v.flags.writeable and not _shares_memory(v, inputs)
                       else _owned_numpy(v) for v in values]
            return SignatureOutputs(zip(keys, fetched), backend)
        inputs = [a for a in args if type(a) is np.ndarray]
        fetched = []
        for position, v in enumerate(values):
            if type(v) is np.ndarray:
                if (position in plan.constant_fetches or not v.flags.writeable
                        or _shares_memory(v, inputs)):
                    v = v.copy()
            elif position in plan.constant_fetches and hasattr(v, "copy"):
                v = v.copy()
            if backend.is_numpy and not isinstance(v, np.ndarray):
                v = np.asarray(v)
            fetched.append(v)
        result, taken = {}, iter(fetched)
        for k, spec in self.outputs.items():
            if isinstance(spec, TensorSpec):
                result[k] = next(taken)
            else:
                result[k] = assemble_ragged([next(taken) for _ in spec.components])
        return SignatureOutputs(result, backend)


def _owned_numpy(value):
    """A fetched value as a numpy array the caller owns (``value`` is not a constant of the
    plan, and is read-only, shares memory with an input or is no numpy array)."""
    if type(value) is np.ndarray:
        return value.copy()
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _shares_memory(value: np.ndarray, inputs) -> bool:
    """Whether ``value`` is, or is a view into, one of ``inputs`` (an array owning its
    memory can only be an input itself)."""
    if value.base is None:
        for a in inputs:  # a loop, not any(): a generator costs more than the check
            if value is a:
                return True
        return False
    return any(np.may_share_memory(value, a) for a in inputs)


def _default(tensor_proto):
    from ..format.tensors import tensor_proto_to_numpy
    return tensor_proto_to_numpy(tensor_proto)


def _to_bytes(item):
    if isinstance(item, bytes):
        return item
    if isinstance(item, (str, np.str_)):
        return str(item).encode("utf-8")
    if isinstance(item, (bytearray, np.bytes_)):
        return bytes(item)
    raise TypeError(type(item).__name__)


def convert_input(value, spec: TensorSpec, what: str, backend=None) -> np.ndarray:
    """``value`` as a numpy array of the spec's dtype, checked against its shape."""
    want = spec.dtype
    if not isinstance(value, (np.ndarray, np.generic, list, tuple, int, float, bool, complex, str,
                              bytes)) and hasattr(value, "__array_namespace__") and backend is not None:
        value = backend.to_numpy(value)
    if want == object:
        array = _string_array(value, spec, what)
    else:
        try:
            source = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise SavedModelError(f"{what} expects {spec}; {exc}.") from None
        array = _cast(source, want, spec, what, isinstance(value, np.ndarray))
    if not _shape_fits(array.shape, spec.shape):
        raise SavedModelError(
            f"{what} expects shape {spec_text(want, spec.shape)}, got shape {tuple(array.shape)}.")
    return array


def _shape_test(spec_shape) -> tuple:
    """(rank, ((axis, size) of every known dimension)) of a spec's shape; rank None: any shape."""
    if spec_shape is None:
        return None, ()
    return len(spec_shape), tuple((axis, d) for axis, d in enumerate(spec_shape) if d is not None)


def _shape_fits(shape, spec_shape) -> bool:
    """Whether an array shape matches a spec's (None: any shape; None dimensions: any size)."""
    return spec_shape is None or (len(spec_shape) == len(shape) and all(
        d is None or d == n for d, n in zip(spec_shape, shape)))


def _string_array(value, spec, what) -> np.ndarray:
    source = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if source.dtype.kind not in "OSU":
        raise SavedModelError(f"{what} expects strings ({spec}), got {source.dtype.name} values.")
    out = np.empty(source.shape, dtype=object)
    try:
        for index, item in np.ndenumerate(source):
            out[index] = _to_bytes(item)
    except TypeError as exc:
        raise SavedModelError(f"{what} expects strings ({spec}), got an element of type {exc}.") from None
    return out


def _cast(source: np.ndarray, want: np.dtype, spec, what, from_array: bool) -> np.ndarray:
    if source.dtype == want:
        return source
    have = source.dtype.kind
    target = "f" if want.name == "bfloat16" else want.kind
    allowed = {"b": "b", "i": "iu", "u": "iu", "f": "iuf", "c": "iufc"}.get(target, "")
    if have == "f" and source.dtype.name == "bfloat16":
        have = "f"
    if have not in allowed or (have == "b" and target != "b"):
        raise SavedModelError(
            f"{what} expects {spec}, got {source.dtype.name} values; convert them first "
            f"(e.g. np.asarray(x, dtype='{'string' if want == object else want.name}')).")
    if target in "iu" and source.size:
        info = np.iinfo(want)
        low, high = source.min(), source.max()
        if low < info.min or high > info.max:
            raise SavedModelError(f"{what} expects {spec}: values {low}..{high} do not fit {want.name}.")
    return source.astype(want)


class Signatures(Mapping):
    """Signature key -> SignatureFunction (the init op signature is left out)."""

    def __init__(self, functions: dict):
        self._functions = functions

    def __getitem__(self, key):
        try:
            return self._functions[key]
        except KeyError:
            from ..errors import SignatureNotFoundError
            raise SignatureNotFoundError(
                f"No signature {key!r}; the model has: {', '.join(sorted(self._functions)) or 'none'}. "
                "Pick one of those keys (sm-notebook show --dir DIR --tag_set T lists them).",
                key, sorted(self._functions)) from None

    def __iter__(self):
        return iter(self._functions)

    def __len__(self):
        return len(self._functions)

    def __repr__(self):
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self._functions.items()) + "}"


class LoadedModel:
    """A SavedModel metagraph loaded for execution on one backend.

    ``signatures``: key -> `SignatureFunction`. ``to(backend)``: the same model
    on another backend (variables restored and init ops run again there).
    """

    def __init__(self, source, runtime, feeds: dict, restart):
        self._source = source
        self._restart = restart  # start_model(source, backend, ...) of engine/loader.py
        self._runtime = runtime
        self._feeds = feeds  # tensor name -> value fed to every plan (asset paths)
        self._call_lock = threading.RLock()  # held by calls of signatures with side effects
        meta_graph = source.meta_graph
        self.export_dir = source.export_dir
        self.tags = frozenset(meta_graph.meta_info_def.tags)
        self.signatures = Signatures({
            key: SignatureFunction(self, key, sig) for key, sig in sorted(meta_graph.signature_def.items())
            if key != INIT_OP_SIGNATURE})

    @property
    def backend(self) -> str:
        return self._runtime.ctx.backend.name

    def __repr__(self):
        return (f"<LoadedModel {str(self.export_dir)!r} tags={sorted(self.tags)} "
                f"backend={self.backend} signatures={list(self.signatures)}>")

    def to(self, backend) -> "LoadedModel":
        """This model on another backend ("numpy", "cupy" or an array API namespace)."""
        runtime = self._runtime
        return self._restart(self._source, backend, runtime.allow_io, runtime.ctx.memory_cap,
                             runtime.ctx.max_loop_iterations, runtime.optimize)

    def numpy(self, outputs) -> dict:
        """Any signature's outputs as numpy arrays (ragged ones as `Ragged` of numpy arrays)."""
        return {k: _to_numpy(self._runtime.ctx.backend, v) for k, v in outputs.items()}

    @property
    def variables(self) -> dict:
        """Variable name -> Variable engine object (value on the backend)."""
        from .ops.resource_ops import Variable
        found = {}
        for value in list(self._runtime.bindings.values()) + list(self._runtime.ctx.resources.values()):
            if isinstance(value, Variable):
                found.setdefault(value.name, value)
        return found
