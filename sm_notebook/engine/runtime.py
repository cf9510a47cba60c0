"""One metagraph on one backend: kernel context, function library and compiled plans."""
from __future__ import annotations

import copy

from .attrs import OpDefaults
from .context import DEFAULT_MEMORY_CAP, KernelContext
from .functions import FunctionLibrary, graph_body, parse_graph_input
from .malloc import keep_freed_memory
from .plan import Debugger, Plan, bind_body, compile_plan
from .reach import Support
from ..errors import SavedModelError


def tensor_ref(name: str):
    """``node:0``-style tensor name -> Ref (a bare node name means output 0)."""
    ref, control = parse_graph_input(name)
    if ref is None:
        raise SavedModelError(f"{name!r} names a control dependency, not a tensor.")
    return ref


class Runtime:
    """Runs parts of a metagraph: graph plans for signatures and init ops, function plans
    for If/While/... kernels (``ctx.call_function``, ``ctx.function``, ``ctx.loop_body``).

    ``optimize=False`` compiles every plan unoptimised (see plan.py). `debugging` gives
    a view of the same model, sharing its variables and tables, whose plans are
    unoptimised and traced by a `Debugger`.
    """

    def __init__(self, meta_graph, export_dir=None, backend="numpy", allow_io=False,
                 memory_cap=DEFAULT_MEMORY_CAP, optimize=True, **context_options):
        from . import ops  # noqa: F401  (registers every kernel)

        self.meta_graph = meta_graph
        info = meta_graph.meta_info_def
        self.defaults = OpDefaults(info.stripped_op_list if info.HasField("stripped_op_list") else None)
        self.library = FunctionLibrary(meta_graph.graph_def.library)
        self.graph = graph_body(meta_graph.graph_def)
        self.allow_io = allow_io
        self.optimize = optimize
        if backend is None or backend == "numpy":
            keep_freed_memory()  # see engine/malloc.py
        self.ctx = KernelContext(backend, export_dir, allow_io, memory_cap, optimize=optimize,
                                 **context_options)
        self._bind_context(self.ctx)
        self.bindings: dict = {}          # main-graph node name -> value (captured variables)
        self.freeze_variables = False     # True when no signature writes a variable
        self.debugger: Debugger | None = None
        self._function_plans: dict = {}
        self._function_supports: dict = {}

    def _bind_context(self, ctx):
        ctx.function_caller = self.call_function
        ctx.function_runner = self.function_runner
        ctx.loop_body_runner = self.loop_body_runner

    def watching(self, debugger: Debugger) -> "Runtime":
        """This model's optimised plans run under ``debugger`` (a RunWatch): the top-level
        steps report to it; function bodies and loops run as usual."""
        view = copy.copy(self)
        view.debugger = debugger
        return view

    def debugging(self, debugger: Debugger) -> "Runtime":
        """This model under ``debugger``: unoptimised plans, same variables and tables."""
        view = copy.copy(self)
        view.optimize = False
        view.freeze_variables = False
        view.debugger = debugger
        view._function_plans = {}
        view.ctx = copy.copy(self.ctx)  # shares backend, resources and options
        view.ctx.optimize = False
        view._bind_context(view.ctx)
        return view

    def graph_plan(self, feeds, fetches, targets=(), *, name="graph", freeze=None) -> Plan:
        """Compile the main graph for tensor names ``feeds`` -> ``fetches`` (+ ``targets`` run)."""
        return compile_plan(
            self, self.graph.nodes, [tensor_ref(f) for f in feeds], [tensor_ref(f) for f in fetches],
            [t.lstrip("^").split(":")[0] for t in targets], name=name, bindings=self.bindings,
            freeze=self.freeze_variables if freeze is None else freeze)

    def run_graph(self, feeds: dict, fetches=(), targets=(), name="graph") -> list:
        """Compile and run once (init ops, restore): ``feeds`` maps tensor names to values."""
        plan = self.graph_plan(list(feeds), list(fetches), targets, name=name, freeze=False)
        return self.run_plan(plan, list(feeds.values()))

    def run_plan(self, plan: Plan, args: list) -> list:
        """Run a plan from outside the engine (numpy's warnings silenced for the run)."""
        return plan.run(args, self.debugger)

    def run_inner(self, plan: Plan, args: list) -> list:
        """Run a plan from inside a kernel (a plan run is already under way)."""
        return plan.execute(args, self.debugger)

    def _function_body(self, name: str, attrs: dict | None):
        body = self.library.body(name)
        if attrs:
            return body, {n: _with_attrs(node, attrs) for n, node in body.nodes.items()}
        return body, body.nodes

    def function_support(self, name: str, attrs: dict | None = None) -> Support:
        """The ops function ``name`` needs that the engine lacks, by when they run
        (reach.py); a function that cannot be bound at all is left to its call."""
        key = _function_key(name, attrs)
        found = self._function_supports.get(key)
        if found is None:
            self._function_supports[key] = Support()  # a recursive call adds nothing new
            try:
                body, nodes = self._function_body(name, attrs)
                found = bind_body(self, nodes, body.args, body.rets, body.control_rets).support
            except SavedModelError:
                found = Support()
            self._function_supports[key] = found
        return found

    def function_plan(self, name: str, attrs: dict | None = None) -> Plan:
        key = _function_key(name, attrs)
        plan = self._function_plans.get(key)
        if plan is None:
            body, nodes = self._function_body(name, attrs)
            plan = compile_plan(self, nodes, body.args, body.rets, body.control_rets,
                                name=f"function {name!r}")
            plan.n_args = len(body.args)
            self._function_plans[key] = plan
        return plan

    def function_runner(self, name: str, attrs: dict):
        """``run(inputs) -> outputs`` for library function ``name``; its plan is compiled
        on the first call (a branch never taken is never compiled)."""
        plan = None

        def run(inputs):
            nonlocal plan
            if plan is None:
                plan = self.function_plan(name, attrs)
            return self._call(name, plan, inputs, plan.execute)
        return run

    def loop_body_runner(self, name: str, attrs: dict, cond=None):
        """Like `function_runner`, for one While run: loop-invariant steps run once.
        ``cond``: the loop's cond function as ``(name, attrs)``."""
        plan = self.function_plan(name, attrs)
        cond_effects = cond is not None and self.function_plan(*cond).has_effects
        body = plan.loop_body(cond_effects) if self.debugger is None else None
        return lambda inputs: self._call(name, plan, inputs,
                                         plan.execute if body is None else _no_debugger(body.run))

    def call_function(self, name: str, inputs: list, attrs: dict) -> list:
        """``ctx.call_function``: run library function ``name`` on ``inputs``."""
        plan = self.function_plan(name, attrs)
        return self._call(name, plan, inputs, plan.execute)

    def _call(self, name, plan, inputs, execute):
        if len(inputs) != plan.n_args:
            raise SavedModelError(f"Function {name!r} takes {plan.n_args} inputs, got {len(inputs)}.")
        debugger = self.debugger
        if debugger is None:
            return execute(inputs)
        debugger.depth += 1
        try:
            return execute(inputs, debugger)
        finally:
            debugger.depth -= 1


def _function_key(name: str, attrs: dict | None):
    return name if not attrs else (name, repr(sorted(attrs.items(), key=lambda kv: kv[0])))


def _no_debugger(run):
    return lambda inputs, debugger=None: run(inputs)


def _with_attrs(node, attrs):
    from .functions import Node
    return Node(node.name, node.op, node.inputs, node.controls, node.attr, node.function,
                attrs, node.depth, node.local)
