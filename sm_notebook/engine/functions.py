"""GraphDefs and FunctionDefs as the engine's node lists, and function-call inlining.

Naming: a GraphDef input is ``node`` or ``node:index`` (flat output index); a
FunctionDef input is an argument name or ``node:out_arg:index`` (index within the
named output argument). Both start with ``^`` for control inputs. `Ref` keeps
either form; the planner turns ``out_arg`` into a flat index once kernels are known.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import SavedModelError
from .attrs import decode_attr, decode_func
from .ops.registry import FuncAttr

CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
ARG_OP = "_Arg"
MAX_CALL_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Ref:
    """One tensor: output ``index`` of ``node`` (within output argument ``arg`` when set)."""
    node: str
    arg: str | None = None
    index: int = 0

    def __str__(self):
        return f"{self.node}:{self.arg}:{self.index}" if self.arg else f"{self.node}:{self.index}"


@dataclass(slots=True)
class Node:
    """A node of a body: data inputs, control inputs and undecoded attrs."""
    name: str
    op: str
    inputs: list
    controls: list
    attr: object = field(default_factory=dict)   # name -> AttrValue proto
    function: str | None = None                  # the FunctionDef it comes from
    func_attrs: dict | None = None               # attrs of that function's instantiation
    depth: int = 0                               # how many calls deep it was inlined
    local: str | None = None                     # its name inside its function, once inlined


@dataclass
class Body:
    """A graph or function body: nodes plus the refs of its arguments and results."""
    name: str | None
    nodes: dict
    args: list = field(default_factory=list)
    rets: list = field(default_factory=list)
    control_rets: list = field(default_factory=list)
    arg_names: list = field(default_factory=list)
    ret_names: list = field(default_factory=list)


def parse_graph_input(text: str):
    """``(Ref, None)`` for a data input, ``(None, name)`` for ``^name``."""
    if text.startswith("^"):
        return None, text[1:]
    name, sep, index = text.rpartition(":")
    if sep and index.isdigit():
        return Ref(name, None, int(index)), None
    return Ref(text, None, 0), None


def parse_function_input(text: str):
    """Like `parse_graph_input` for FunctionDef naming (``node:out_arg:index`` or an arg)."""
    if text.startswith("^"):
        return None, text[1:]
    parts = text.split(":")
    if len(parts) == 3 and parts[2].isdigit():
        return Ref(parts[0], parts[1], int(parts[2])), None
    if len(parts) == 2 and parts[1].isdigit():
        return Ref(parts[0], None, int(parts[1])), None
    return Ref(text, None, 0), None


def _node_from_proto(proto, parse, function=None) -> Node:
    inputs, controls = [], []
    for text in proto.input:
        ref, control = parse(text)
        if ref is None:
            controls.append(control)
        else:
            inputs.append(ref)
    return Node(proto.name, proto.op, inputs, controls, proto.attr, function)


class GraphNodes(Mapping):
    """The main graph's nodes by name, each parsed into a `Node` on first use."""

    def __init__(self, graph_def):
        self._protos = {}
        for proto in graph_def.node:
            if proto.name in self._protos:
                raise SavedModelError(f"The graph has two nodes named {proto.name!r}; the model is corrupt.")
            self._protos[proto.name] = proto
        self._parsed = {}

    def __getitem__(self, name):
        found = self._parsed.get(name)
        if found is None:
            found = self._parsed[name] = _node_from_proto(self._protos[name], parse_graph_input)
        return found

    def __contains__(self, name):
        return name in self._protos

    def __iter__(self):
        return iter(self._protos)

    def __len__(self):
        return len(self._protos)


def graph_body(graph_def) -> Body:
    """The main graph of a metagraph as a Body (no args or rets: signatures feed and fetch)."""
    return Body(None, GraphNodes(graph_def))


class FunctionLibrary:
    """The FunctionDefs of a graph, parsed into Bodies on first use."""

    def __init__(self, library_proto=None):
        self.defs = {}
        if library_proto is not None:
            for fdef in library_proto.function:
                self.defs[fdef.signature.name] = fdef
        self._bodies: dict[str, Body] = {}

    def __contains__(self, name) -> bool:
        return name in self.defs

    def definition(self, name: str, caller: str = "?"):
        try:
            return self.defs[name]
        except KeyError:
            raise SavedModelError(
                f"Node {caller!r} calls function {name!r}, which is not in the graph's function "
                f"library ({len(self.defs)} functions). The model is incomplete or corrupt.") from None

    def body(self, name: str, caller: str = "?") -> Body:
        """The Body of function ``name``: one ``_Arg`` node per argument."""
        found = self._bodies.get(name)
        if found is None:
            found = self._bodies[name] = self._parse(self.definition(name, caller))
        return found

    def node_names(self) -> set:
        """The names of every node of every function (what a debugger may stop after)."""
        return {n.name for fdef in self.defs.values() for n in fdef.node_def}

    def output_position(self, name: str, arg: str | None, index: int) -> int:
        """Flat output position of ``arg:index`` of a direct call of ``name`` (``arg`` None:
        already flat)."""
        if arg is None:
            return index
        outputs = self.defs[name].signature.output_arg
        for position, out in enumerate(outputs):
            if out.name == arg:
                return position + index
        raise SavedModelError(f"Function {name!r} has no output argument {arg!r}.")

    def _parse(self, fdef) -> Body:
        sig = fdef.signature
        fname = sig.name
        nodes = {}
        for arg in sig.input_arg:
            if arg.number_attr or arg.type_list_attr:
                raise SavedModelError(
                    f"Function {fname!r} has list argument {arg.name!r}; functions with list "
                    "arguments (old Defun style) are not supported.")
            nodes[arg.name] = Node(arg.name, ARG_OP, [], [], {}, fname)
        for proto in fdef.node_def:
            if proto.name in nodes:
                raise SavedModelError(f"Function {fname!r} has two nodes (or args) named {proto.name!r}.")
            nodes[proto.name] = _node_from_proto(proto, parse_function_input, fname)
        rets = []
        for out in sig.output_arg:
            if out.number_attr or out.type_list_attr:
                raise SavedModelError(f"Function {fname!r} has list output {out.name!r}; not supported.")
            if out.name not in fdef.ret:
                raise SavedModelError(f"Function {fname!r} does not say which tensor output {out.name!r} is.")
            rets.append(parse_function_input(fdef.ret[out.name])[0])
        control_rets = [fdef.control_ret.get(name, name) for name in sig.control_output]
        for name in fdef.control_ret.values():
            if name not in control_rets:
                control_rets.append(name)
        return Body(fname, nodes, [Ref(a.name) for a in sig.input_arg], rets, control_rets,
                    [a.name for a in sig.input_arg], [o.name for o in sig.output_arg])


def call_target(node: Node, library: FunctionLibrary):
    """``(function name, NameAttrList proto or decoded FuncAttr)`` when the node calls a
    library function, else None."""
    if node.op in CALL_OPS and "f" in node.attr:
        value = node.attr["f"]
        if value.WhichOneof("value") == "placeholder":  # f: $attr of the enclosing function
            func = decode_attr(value, node.func_attrs, where=f" (node {node.name!r})")
            return func.name, func
        return value.func.name, value.func
    if node.op in library:
        return node.op, None
    return None


class _Inlined:
    """Where a call's outputs and completion went after inlining."""

    def __init__(self, function: str, rets: list, done: str, library: FunctionLibrary,
                 call_op: bool):
        self.function, self.rets, self.done, self.library = function, rets, done, library
        self.call_op = call_op  # PartitionedCall-style: one list output named "output"

    def ref(self, ref: Ref) -> Ref:
        if self.call_op:
            if ref.arg not in (None, "output"):
                raise SavedModelError(f"Tensor {ref}: a {self.function!r} call has one output "
                                      "argument, 'output'.")
            position = ref.index
        else:
            position = self.library.output_position(self.function, ref.arg, ref.index)
        if position >= len(self.rets):
            raise SavedModelError(
                f"Tensor {ref} asks for output {position} of a call to {self.function!r}, "
                f"which has {len(self.rets)} outputs.")
        return Ref(self.rets[position])


def _inline(call: Node, function: str, func_proto, library: FunctionLibrary, nodes: dict):
    """Copy the body of ``function`` into ``nodes`` in place of ``call``."""
    if call.depth >= MAX_CALL_DEPTH:
        raise SavedModelError(
            f"Function calls nest deeper than {MAX_CALL_DEPTH} at node {call.name!r} "
            f"(calling {function!r}); the model is recursive or corrupt.")
    body = library.body(function, call.name)
    if len(call.inputs) != len(body.args):
        raise SavedModelError(
            f"Node {call.name!r} passes {len(call.inputs)} inputs to function {function!r}, "
            f"which takes {len(body.args)}.")
    func_attrs = None
    if isinstance(func_proto, FuncAttr):  # already decoded from a placeholder
        func_attrs = dict(func_proto.attrs) or None
    elif func_proto is not None and func_proto.attr:
        func_attrs = decode_func(func_proto, call.func_attrs).attrs
    elif func_proto is None and call.attr:
        func_attrs = {k: decode_attr(v, call.func_attrs) for k, v in call.attr.items()
                      if not k.startswith("_")}
    prefix, attempt = call.name + "/", 0
    while any(prefix + name in nodes for name in body.nodes):  # keep clear of existing names
        attempt += 1
        prefix = f"{call.name}/_inlined_{attempt}/"
    args = {arg_ref.node: value for arg_ref, value in zip(body.args, call.inputs)}
    depth = call.depth + 1
    extra_controls = []
    if call.controls:
        gate = prefix + "_control_in"
        nodes[gate] = Node(gate, "NoOp", [], list(call.controls), {}, function, None, depth)
        extra_controls = [gate]

    def ref(r: Ref) -> Ref:
        return args[r.node] if r.node in args else Ref(prefix + r.node, r.arg, r.index)

    def control(name: str) -> str:
        return args[name].node if name in args else prefix + name

    for node in body.nodes.values():
        if node.op == ARG_OP:
            continue
        copy = Node(prefix + node.name, node.op, [ref(r) for r in node.inputs],
                    [control(c) for c in node.controls] + extra_controls,
                    node.attr, node.function, func_attrs if func_attrs is not None else node.func_attrs,
                    depth, node.local or node.name)
        nodes[copy.name] = copy
    done = prefix + "_done"
    ret_refs = [ref(r) for r in body.rets]
    computed = [prefix + r.node for r in body.rets if r.node not in args]
    nodes[done] = Node(done, "NoOp", [], [control(c) for c in body.control_rets] + computed
                       + extra_controls, {}, function, None, depth)
    rets = []
    for i, r in enumerate(ret_refs):
        name = f"{prefix}_ret_{i}"
        nodes[name] = Node(name, "Identity", [r], [done] if body.control_rets else [], {},
                           function, None, depth)
        rets.append(name)
    return _Inlined(function, rets, done, library, call.op in CALL_OPS), rets + [done]


class _Overlay:
    """Nodes of a body plus the nodes inlining adds, without copying the body."""

    def __init__(self, base):
        self.base, self.added = base, {}

    def get(self, name):
        found = self.added.get(name)
        return found if found is not None else (self.base[name] if name in self.base else None)

    def __contains__(self, name):
        return name in self.added or name in self.base

    def __setitem__(self, name, node):
        self.added[name] = node

    def names(self):
        yield from self.base
        yield from self.added


def inline_calls(nodes, roots, library: FunctionLibrary, fed=frozenset()):
    """Inline every function call reachable from ``roots`` (node names).

    Returns ``(nodes, redirect_ref, redirect_control)``: the reachable nodes (in graph
    order) with calls replaced by their bodies, and functions mapping any old Ref or
    control name to its new one. ``fed`` Refs are not followed.
    """
    nodes = _Overlay(nodes)
    inlined: dict[str, _Inlined] = {}
    seen = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = nodes.get(name)
        if node is None:
            raise SavedModelError(f"The graph refers to node {name!r}, which does not exist.")
        target = call_target(node, library)
        if target is not None:
            inlined[name], new_names = _inline(node, target[0], target[1], library, nodes)
            stack.extend(new_names)
            continue
        stack.extend(r.node for r in node.inputs if r not in fed)
        stack.extend(node.controls)

    def redirect_ref(r: Ref) -> Ref:
        while r.node in inlined:
            r = inlined[r.node].ref(r)
        return r

    def redirect_control(name: str) -> str:
        while name in inlined:
            name = inlined[name].done
        return name

    result = {}
    for name in nodes.names():
        if name not in seen or name in inlined:
            continue
        node = nodes.get(name)
        if any(r.node in inlined for r in node.inputs) or any(c in inlined for c in node.controls):
            node = Node(node.name, node.op, [redirect_ref(r) for r in node.inputs],
                        [redirect_control(c) for c in node.controls], node.attr, node.function,
                        node.func_attrs, node.depth, node.local)
        result[name] = node
    return result, redirect_ref, redirect_control
