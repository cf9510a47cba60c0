"""The graph a signature runs, as data a view draws: nodes, edges, name scopes and calls.

Only what the signature reaches is kept: the main-graph nodes its outputs depend on,
traced back to its inputs (so no saver, restore or init nodes), and the library
functions those nodes call (StatefulPartitionedCall, If/While/Case bodies), each
pruned to what its results depend on. A call is one node; its function bodies are
listed once each and drawn in place when the call is expanded. Nodes carry their
name scope (``resnet50/conv1/Conv2D`` -> ``resnet50/conv1``), and variable handles
and resource arguments that only feed calls are put in one ``(captured)`` scope so
a TF2 export's hundreds of captured variables fold into one box.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .. import opdefs
from ..errors import SavedModelError
from ..format.tensors import (shape_from_proto, shape_label, short_dtype_name,
                              tensor_proto_to_numpy)

CAPTURED_SCOPE = "(captured)"
MAIN = ""                 # body id of the main graph
#: how a call's inputs and results line up with its functions' arguments and results:
#: op -> (inputs skipped before the first argument, roles whose results are the call's)
CALL_WIRING = {
    "If": (1, None), "StatelessIf": (1, None), "Case": (1, None), "StatelessCase": (1, None),
    "While": (0, {"body"}), "StatelessWhile": (0, {"body"}), "For": (3, {"body"}),
}
ROLE_ORDER = {"then_branch": 0, "else_branch": 1, "cond": 0, "body": 1, "f": 0}
MAX_ATTR_TEXT = 160
MAX_TENSOR_VALUES = 16
RESOURCE = 20  # DataType DT_RESOURCE
HANDLES = (RESOURCE, 21)  # DT_RESOURCE, DT_VARIANT


@dataclass
class CallTarget:
    """One function a call node runs: ``role`` is the attr naming it (``f``, ``then_branch``...)."""
    role: str
    function: str
    input_offset: int   # call input i feeds argument i - input_offset
    returns: bool       # the function's results are the call's outputs


@dataclass
class GraphNode:
    """One node of a body, with everything the details panel shows."""
    name: str
    op: str
    kind: str                 # "op", "call", "input", "output", "variable", "const"
    scope: str = ""           # name scope ("a/b"), "" at the top of the body
    attrs: dict = field(default_factory=dict)      # attr name -> short text
    device: str = ""
    inputs: list = field(default_factory=list)     # the NodeDef's input strings
    outputs: list = field(default_factory=list)    # "float32 (?, 8)" per output
    status: str | None = None                      # "unsupported" / "denied" by the engine
    calls: list = field(default_factory=list)      # CallTarget
    variable: dict | None = None                   # dtype, shape, checkpoint key


@dataclass
class GraphEdge:
    """Output ``output`` of ``source`` feeding input ``input`` of ``target`` (-1: control)."""
    source: str
    target: str
    output: int
    input: int
    label: str = ""           # dtype and shape of the tensor ("" for control edges)

    @property
    def control(self) -> bool:
        return self.input < 0


@dataclass
class GraphBody:
    """The main graph pruned to one signature, or one library function's body."""
    id: str
    title: str
    nodes: dict              # name -> GraphNode, in a stable order
    edges: list
    args: list               # node names of the arguments / signature inputs, in order
    rets: list               # node names of the results / signature outputs, in order


@dataclass
class GraphModel:
    """A signature's graph: the main body and every function body it may call."""
    export_dir: str
    signature: str
    tags: list
    bodies: dict             # body id -> GraphBody (MAIN first)

    @property
    def main(self) -> GraphBody:
        return self.bodies[MAIN]

    def unsupported(self) -> list:
        """``(body id, node name, op, status)`` of every node the engine cannot or will not run."""
        return [(body.id, node.name, node.op, node.status) for body in self.bodies.values()
                for node in body.nodes.values() if node.status]

    def problems_inside(self, node: GraphNode) -> int:
        """Nodes the engine cannot run: the node itself, and every one in the functions it
        calls (recursively)."""
        counts, seen, pending = int(bool(node.status)), set(), [c.function for c in node.calls]
        while pending:
            name = pending.pop()
            if name in seen or name not in self.bodies:
                continue
            seen.add(name)
            for inner in self.bodies[name].nodes.values():
                counts += bool(inner.status)
                pending.extend(c.function for c in inner.calls)
        return counts

    def to_dict(self) -> dict:
        """Plain data for the front end (see graph_frontend/src/model.js)."""
        return {"export_dir": self.export_dir, "signature": self.signature, "tags": self.tags,
                "root": MAIN, "bodies": {bid: _body_dict(body) for bid, body in self.bodies.items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def _body_dict(body: GraphBody) -> dict:
    nodes = []
    for node in body.nodes.values():
        item = {"name": node.name, "op": node.op, "kind": node.kind, "scope": node.scope,
                "attrs": node.attrs, "device": node.device, "inputs": node.inputs,
                "outputs": node.outputs}
        if node.status:
            item["status"] = node.status
        if node.calls:
            item["calls"] = [{"role": c.role, "function": c.function, "offset": c.input_offset,
                              "returns": c.returns} for c in node.calls]
        if node.variable:
            item["variable"] = node.variable
        nodes.append(item)
    edges = [[e.source, e.target, e.output, e.input, e.label] for e in body.edges]
    return {"id": body.id, "title": body.title, "args": body.args, "rets": body.rets,
            "nodes": nodes, "edges": edges}


# ---------------------------------------------------------------------- building

def build_graph_model(info, signature: str = "serving_default", tags=None) -> GraphModel:
    """The graph of ``signature`` in the metagraph ``tags`` selects (``info``: SavedModelInfo)."""
    mg = info.meta_graph(tags)
    if signature not in mg.signatures:
        info.signature(signature, mg.tags)  # raises, listing the keys
    proto = mg.proto
    library = {f.signature.name: f for f in proto.graph_def.library.function}
    status = _engine_status(set(library))
    builder = _BodyBuilder(library, status)
    main = builder.main_body(proto, proto.signature_def[signature], signature)
    _label_variables(main, proto, info.bundle)
    bodies = {MAIN: main}
    pending = [c.function for n in main.nodes.values() for c in n.calls]
    while pending:
        name = pending.pop(0)
        if name in bodies or name not in library:
            continue
        bodies[name] = body = builder.function_body(library[name])
        pending.extend(c.function for n in body.nodes.values() for c in n.calls)
    _pass_variables_into_calls(bodies)
    return GraphModel(str(info.export_dir), signature, sorted(mg.tags), bodies)


def _engine_status(library_names):
    """op -> "unsupported" / "denied" / None, as the engine's scan judges it."""
    from ..engine import ops as _kernels  # noqa: F401 - importing registers every kernel
    from ..engine.scan import problem_status
    cache = {}

    def status(op):
        if op not in cache:
            cache[op] = problem_status(op, library_names)
        return cache[op]
    return status


class _BodyBuilder:
    """Builds the main graph's body for one signature and the bodies of the functions it calls."""

    def __init__(self, library, status):
        self.library = library
        self.status = status
        self._current = {}   # the NodeDefs of the function being built, by name

    # -- the main graph, pruned to one signature

    def main_body(self, meta_graph, sig, key) -> GraphBody:
        protos = {n.name: n for n in meta_graph.graph_def.node}
        inputs = {k: _tensor_node(sig.inputs[k].name) for k in sorted(sig.inputs)}
        inputs = {k: name for k, name in inputs.items() if name in protos}  # diagnose() reports the rest
        outputs = {k: sig.outputs[k].name for k in sorted(sig.outputs)}
        stops = set(inputs.values())
        roots = [_tensor_node(t) for t in outputs.values() if t]
        kept = _reach(roots, protos, stops, lambda text: _graph_source(text)[0])
        position = {name: i for i, name in enumerate(protos)}
        nodes = {}
        for name in sorted(kept, key=position.__getitem__):
            node = self._node(protos[name])
            if name in stops:
                node.kind, node.scope = "input", ""
                node.attrs["signature input"] = ", ".join(k for k, v in inputs.items() if v == name)
            nodes[name] = node
        edges = self._edges(nodes, protos, _graph_source, stops)
        rets = []
        for out_key, tensor in outputs.items():
            ret = f"output:{out_key}"
            spec = sig.outputs[out_key]
            label = _type_label(spec.dtype, shape_from_proto(spec.tensor_shape)
                                if spec.HasField("tensor_shape") else None)
            nodes[ret] = GraphNode(ret, "Output", "output", attrs={"tensor": tensor}, outputs=[label])
            source, index = _graph_source(tensor)
            if source in nodes:
                edges.append(GraphEdge(source, ret, index, 0, label))
            rets.append(ret)
        _own_scopes(nodes)
        _fold_captures(nodes, edges)
        return GraphBody(MAIN, key, nodes, edges, list(dict.fromkeys(inputs.values())), rets)

    # -- a library function

    def function_body(self, fdef) -> GraphBody:
        sig = fdef.signature
        protos = self._current = {n.name: n for n in fdef.node_def}
        nodes = {}
        for i, arg in enumerate(sig.input_arg):
            nodes[arg.name] = self._arg_node(fdef, i, arg)
        ret_tensors = [fdef.ret.get(out.name, "") for out in sig.output_arg]
        roots = [_function_source_name(t) for t in ret_tensors if t]
        roots += [fdef.control_ret.get(n, n) for n in sig.control_output]
        kept = _reach(roots, protos, set(nodes), _function_source_name)
        for node_def in fdef.node_def:
            if node_def.name in kept:
                nodes[node_def.name] = self._node(node_def)
        edges = self._edges(nodes, protos, self._function_source, set())
        rets = []
        for out, tensor in zip(sig.output_arg, ret_tensors):
            ret = f"output:{out.name}"
            source, index = self._function_source(tensor)
            label = _edge_label(nodes.get(source), index) or _type_label(_arg_dtype(out, {}), None)
            nodes[ret] = GraphNode(ret, "Output", "output", attrs={"tensor": tensor}, outputs=[label])
            if source in nodes:
                edges.append(GraphEdge(source, ret, index, 0, label))
            rets.append(ret)
        _own_scopes(nodes)
        _fold_captures(nodes, edges)
        return GraphBody(sig.name, sig.name, nodes, edges, [a.name for a in sig.input_arg], rets)

    def _arg_node(self, fdef, position, arg) -> GraphNode:
        shapes = fdef.arg_attr[position].attr.get("_output_shapes") if position in fdef.arg_attr else None
        shape = shape_from_proto(shapes.list.shape[0]) if shapes is not None and shapes.list.shape else None
        node = GraphNode(arg.name, "_Arg", "input", attrs={"index": str(position)},
                         outputs=[_type_label(arg.type, shape)])
        if arg.type == RESOURCE:  # a captured variable (its dtype and shape when recorded)
            handle = arg.handle_data[0] if arg.handle_data else None
            node.variable = {"dtype": short_dtype_name(handle.dtype) if handle else "?",
                             "shape": shape_label(shape_from_proto(handle.shape)) if handle else "?",
                             "key": ""}
        return node

    def _function_source(self, text: str) -> tuple[str, int]:
        """``node:out_arg:i`` -> (node, flat output index); an argument -> (arg, 0)."""
        parts = text.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            return parts[0], int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else 0
        name, arg, index = parts[0], parts[1], int(parts[2])
        proto = self._current.get(name)
        if proto is None:
            return name, index
        if proto.op in self.library:
            outs = [o.name for o in self.library[proto.op].signature.output_arg]
            return name, (outs.index(arg) + index) if arg in outs else index
        info = opdefs.get(proto.op)
        try:
            return name, info.output_index(_sizing_attrs(proto), arg, index) if info else index
        except SavedModelError:
            return name, index

    # -- shared

    def _node(self, proto) -> GraphNode:
        calls = self._calls(proto)
        kind = "call" if calls else _kind(proto.op)
        node = GraphNode(proto.name, proto.op, kind, scope=proto.name.rpartition("/")[0],
                         attrs=_attrs_with_defaults(proto),
                         device=proto.device, inputs=list(proto.input),
                         outputs=self._output_labels(proto), status=self.status(proto.op), calls=calls)
        if kind == "variable":
            shape = shape_from_proto(proto.attr["shape"].shape) if "shape" in proto.attr else None
            dtype = proto.attr["dtype"].type if "dtype" in proto.attr else 0
            node.variable = {"dtype": short_dtype_name(dtype) if dtype else "?",
                             "shape": shape_label(shape), "key": ""}
        return node

    def _calls(self, proto) -> list:
        offset, returning = CALL_WIRING.get(proto.op, (0, None))
        found = [("op", proto.op)] if proto.op in self.library else []
        for name in proto.attr:
            value = proto.attr[name]
            kind = value.WhichOneof("value")
            if kind == "func":
                found.append((name, value.func.name))
            elif kind == "list":
                found.extend((f"{name}[{i}]", f.name) for i, f in enumerate(value.list.func))
        found = [(role, f) for role, f in found if f in self.library]
        found.sort(key=lambda item: (ROLE_ORDER.get(item[0], 2), item[0]))
        return [CallTarget(role, f, offset, returning is None or role in returning) for role, f in found]

    def _output_labels(self, proto) -> list:
        dtypes = _output_dtypes(proto, self.library)
        shapes = [shape_from_proto(s) for s in proto.attr["_output_shapes"].list.shape] \
            if "_output_shapes" in proto.attr else []
        count = max(len(dtypes), len(shapes))
        return [_type_label(dtypes[i] if i < len(dtypes) else 0, shapes[i] if i < len(shapes) else None)
                for i in range(count)]

    def _edges(self, nodes, protos, parse, stops) -> list:
        edges = []
        for name, node in nodes.items():
            if name in stops or name not in protos:
                continue
            position = 0
            for text in protos[name].input:
                if text.startswith("^"):
                    source = text[1:]
                    if source in nodes:
                        edges.append(GraphEdge(source, name, -1, -1))
                    continue
                source, index = parse(text)
                if source in nodes:
                    edges.append(GraphEdge(source, name, index, position, _edge_label(nodes[source], index)))
                position += 1
        return edges


def _reach(roots, protos, stops, source_of) -> set:
    """Names of the nodes ``roots`` depend on (data and control), not looking past ``stops``."""
    seen, stack = set(), [r for r in roots if r in protos or r in stops]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in stops or name not in protos:
            continue
        for text in protos[name].input:
            source = text[1:] if text.startswith("^") else source_of(text)
            if source in protos or source in stops:
                stack.append(source)
    return seen


def _own_scopes(nodes) -> None:
    """A node named like a scope (``dense`` beside ``dense/MatMul``) joins that scope."""
    scopes = set()
    for node in nodes.values():
        parts = node.scope.split("/") if node.scope else []
        scopes.update("/".join(parts[:i + 1]) for i in range(len(parts)))
    for node in nodes.values():
        if node.name in scopes and node.kind not in ("input", "output"):
            node.scope = node.name


def _fold_captures(nodes, edges) -> None:
    """Place variable handles and resource arguments: beside their readers when those share
    one name scope (a layer's weights inside the layer), in ``(captured)`` when they only
    feed calls (a TF2 signature's captured variables)."""
    consumers = {}
    for edge in edges:
        consumers.setdefault(edge.source, []).append(nodes[edge.target])
    for node in nodes.values():
        resource = node.kind == "variable" or (node.kind == "input" and node.variable is not None)
        readers = consumers.get(node.name)
        if not resource or not readers:
            continue
        if all(r.kind == "call" for r in readers):
            node.scope = CAPTURED_SCOPE
        elif node.kind == "input" and len({r.scope for r in readers}) == 1 and readers[0].scope:
            node.scope = readers[0].scope


def _label_variables(body: GraphBody, meta_graph, bundle) -> None:
    """Checkpoint keys of the main graph's variables (TF2: through the calls' bound inputs)."""
    if bundle is None:
        return
    keys = set(bundle.keys())
    for node in body.nodes.values():
        if node.variable is None:
            continue
        shared = node.attrs.get("shared_name", "").strip('"')
        node.variable["key"] = node.name if node.name in keys else shared if shared in keys else ""
    object_graph = meta_graph.object_graph_def
    if not object_graph.nodes:
        return
    try:
        checkpoint = bundle.object_graph()
    except SavedModelError:
        return
    if checkpoint is None:
        return
    for node in body.nodes.values():
        for call in node.calls:
            function = object_graph.concrete_functions.get(call.function)
            if function is None or not function.bound_inputs:
                continue
            captured = node.inputs[len(node.inputs) - len(function.bound_inputs):]
            for text, node_id in zip(captured, function.bound_inputs):
                source = body.nodes.get(_tensor_node(text))
                if source is None or source.variable is None or not 0 <= node_id < len(checkpoint.nodes):
                    continue
                for attribute in checkpoint.nodes[node_id].attributes:
                    if attribute.name == "VARIABLE_VALUE":
                        source.variable["key"] = attribute.checkpoint_key


def _pass_variables_into_calls(bodies) -> None:
    """A resource argument gets the checkpoint key of the variable its call sites pass it
    (none when two call sites pass different variables), down every level of calls."""
    conflicting, order, seen = set(), [MAIN], set()
    while order:
        body = bodies[order.pop(0)]
        if body.id in seen:
            continue
        seen.add(body.id)
        sources = {(e.target, e.input): body.nodes[e.source] for e in body.edges if not e.control}
        for node in body.nodes.values():
            for call in node.calls:
                callee = bodies.get(call.function)
                if callee is None:
                    continue
                order.append(callee.id)
                for position, arg in enumerate(callee.args):
                    source = sources.get((node.name, position + call.input_offset))
                    target = callee.nodes[arg].variable
                    key = (source.variable or {}).get("key") if source is not None else None
                    if not key or target is None or (callee.id, arg) in conflicting:
                        continue
                    if target["key"] and target["key"] != key:
                        conflicting.add((callee.id, arg))
                        target["key"] = ""
                    else:
                        target["key"] = key


def variable_statistics(bundle, key: str) -> dict:
    """Shape, dtype and value statistics of checkpoint tensor ``key`` (read from the bundle)."""
    if bundle is None or not key or key not in set(bundle.keys()):
        return {}
    value = np.asarray(bundle.read(key))
    stats = {"checkpoint key": key, "dtype": str(value.dtype), "shape": shape_label(value.shape),
             "elements": str(value.size)}
    if value.size and (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
        data = value.astype(np.float64)
        finite = data[np.isfinite(data)]
        stats.update({"min": f"{finite.min():.6g}" if finite.size else "nan",
                      "max": f"{finite.max():.6g}" if finite.size else "nan",
                      "mean": f"{finite.mean():.6g}" if finite.size else "nan",
                      "std": f"{finite.std():.6g}" if finite.size else "nan",
                      "zeros": f"{np.count_nonzero(data == 0) / data.size:.1%}",
                      "non-finite": str(int(data.size - finite.size))})
    return stats


# ---------------------------------------------------------------------- small helpers

def _tensor_node(tensor_name: str) -> str:
    return tensor_name.lstrip("^").partition(":")[0]


def _graph_source(text: str) -> tuple[str, int]:
    name, sep, index = text.rpartition(":")
    return (name, int(index)) if sep and index.isdigit() else (text, 0)


def _function_source_name(text: str) -> str:
    return text.split(":")[0]


def _kind(op: str) -> str:
    if op in opdefs.ops_with("variable"):
        return "variable"
    if op in opdefs.ops_with("placeholder") or op == "PlaceholderWithDefault":
        return "input"
    if op == "Const":
        return "const"
    return "op"


def _sizing_attrs(proto) -> dict:
    """The node's int and list attrs, decoded as opdefs' output_index wants them."""
    decoded = {}
    for name in proto.attr:
        value = proto.attr[name]
        kind = value.WhichOneof("value")
        if kind == "i":
            decoded[name] = value.i
        elif kind == "list":
            decoded[name] = list(value.list.type) or list(value.list.shape) or list(value.list.i)
    return decoded


def _arg_dtype(arg, attrs) -> int:
    if arg.type:
        return arg.type
    value = attrs.get(arg.type_attr) if arg.type_attr else None
    return value.type if value is not None else 0


def _output_dtypes(proto, library) -> list:
    """DataType enums of the node's outputs, from its function's or op's definition."""
    if proto.op in library:
        return [_arg_dtype(a, proto.attr) for a in library[proto.op].signature.output_arg]
    info = opdefs.get(proto.op)
    if info is None:
        return []
    dtypes = []
    try:
        sizes = info.output_sizes(_sizing_attrs(proto))
    except SavedModelError:
        return []
    for arg, size in zip(info.outputs, sizes):
        if arg.type_list_attr:
            types = list(proto.attr[arg.type_list_attr].list.type) if arg.type_list_attr in proto.attr else []
            dtypes.extend(types + [0] * (size - len(types)))
        else:
            dtype = arg.type or (proto.attr[arg.type_attr].type if arg.type_attr in proto.attr else 0)
            dtypes.extend([dtype] * size)
    return dtypes


def _type_label(dtype: int, shape) -> str:
    """``float32 (?, 8)``; handles (resource, variant) without their scalar shape."""
    name = short_dtype_name(dtype) if dtype else "?"
    return f"{name} {shape_label(shape)}" if shape is not None and dtype not in HANDLES else name


def _edge_label(node: GraphNode | None, index: int) -> str:
    if node is None or index >= len(node.outputs):
        return ""
    return node.outputs[index]


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ATTR_TEXT else text[:MAX_ATTR_TEXT - 1] + "\u2026"


def _attrs_with_defaults(proto) -> dict:
    """The node's attrs as text, and the op's defaults it leaves out, marked ``(default)``."""
    shown = {k: attr_text(proto.attr[k]) for k in proto.attr if k != "_output_shapes"}
    info = opdefs.get(proto.op)
    for name, attr in (info.attrs.items() if info else ()):
        if name not in shown and attr.has_default:
            shown[name] = f"{attr_text(attr.default)} (default)"
    return dict(sorted(shown.items()))


def attr_text(value) -> str:
    """A short readable text for one AttrValue."""
    kind = value.WhichOneof("value")
    if kind == "list":
        return _clip("[" + ", ".join(_list_items(value.list)) + "]")
    return _clip(_scalar_text(kind, getattr(value, kind)) if kind else "")


def _list_items(lst) -> list:
    for kind in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
        items = getattr(lst, kind)
        if len(items):
            return [_scalar_text(kind, item) for item in items[:20]] + (["\u2026"] if len(items) > 20 else [])
    return []


def _scalar_text(kind: str, value) -> str:
    if kind == "s":
        try:
            return json.dumps(value.decode("utf-8"))
        except UnicodeDecodeError:
            return repr(value)
    if kind == "type":
        return short_dtype_name(value) if value else "invalid"
    if kind == "shape":
        return shape_label(shape_from_proto(value))
    if kind == "tensor":
        return _tensor_text(value)
    if kind == "func":
        return value.name
    if kind == "placeholder":
        return f"${value}"
    if kind == "b":
        return "true" if value else "false"
    return str(value)


def _tensor_text(proto) -> str:
    head = f"{short_dtype_name(proto.dtype) if proto.dtype else '?'} {shape_label(shape_from_proto(proto.tensor_shape))}"
    try:
        array = tensor_proto_to_numpy(proto, max_elements=MAX_TENSOR_VALUES)
    except (SavedModelError, ValueError, TypeError):
        return head
    if array.dtype == object:
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.ravel()]
        return f"{head} {json.dumps(values)}"
    return f"{head} {np.array2string(array.ravel(), separator=', ', threshold=MAX_TENSOR_VALUES)}"
