"""What running a metagraph can touch, read from the protos alone (no engine): the nodes
and functions its signatures, init op and restore op reach, and the ops among them that
come from outside core TensorFlow. `load` refuses those (engine/scan.py), and
`diagnose` reports them."""
from __future__ import annotations

from .opdefs.extension_ops import library_of

MAIN_OP_COLLECTIONS = ("saved_model_main_op", "legacy_init_op")


def function_refs(node, library_names) -> list:
    """Names of the functions a NodeDef may call: its op, and every function its attrs name.

    That includes the functions inside a func attr's own attrs: a called function
    can pass them on through a ``placeholder`` attr (``f: $body``), so they run too.
    """
    names = [node.op] if node.op in library_names else []
    for value in node.attr.values():
        names.extend(attr_function_names(value))
    return names


def attr_function_names(value) -> list:
    """Function names in an AttrValue: func values and func lists, nested attrs included."""
    pending, names = [value], []
    while pending:
        current = pending.pop()
        kind = current.WhichOneof("value")
        funcs = [current.func] if kind == "func" else list(current.list.func) if kind == "list" else []
        for func in funcs:
            names.append(func.name)
            pending.extend(func.attr.values())
    return names


def node_name(tensor_name: str) -> str:
    """``^node``, ``node:1`` or ``node`` -> ``node`` (node names hold no ``:``)."""
    return tensor_name.lstrip("^").partition(":")[0]


def root_nodes(meta_graph, include_restore=True) -> list:
    """Main-graph node names signatures, init ops and the restore op start from."""
    roots = []
    for sig in meta_graph.signature_def.values():
        roots.extend(node_name(t.name) for t in sig.outputs.values() if t.name)
        roots.extend(node_name(c.name) for t in sig.outputs.values()
                     for c in t.composite_tensor.components if c.name)
    for key in MAIN_OP_COLLECTIONS:
        if key in meta_graph.collection_def:
            roots.extend(node_name(n) for n in meta_graph.collection_def[key].node_list.value)
    saver = meta_graph.saver_def
    if include_restore and saver.restore_op_name and not meta_graph.object_graph_def.nodes:
        roots.append(node_name(saver.restore_op_name))
    return roots


def reachable(meta_graph, roots) -> tuple[set, set]:
    """``(main-graph node names, function names)`` that running ``roots`` may touch."""
    graph = meta_graph.graph_def
    nodes = {n.name: n for n in graph.node}
    library = {f.signature.name: f for f in graph.library.function}
    seen_nodes, seen_functions = set(), set()
    stack = [r for r in roots if r in nodes]
    functions = []
    while stack:
        name = stack.pop()
        if name in seen_nodes:
            continue
        seen_nodes.add(name)
        node = nodes[name]
        functions.extend(function_refs(node, library))
        for text in node.input:
            source = node_name(text)
            if source in nodes:
                stack.append(source)
    while functions:
        name = functions.pop()
        if name in seen_functions or name not in library:
            continue
        seen_functions.add(name)
        for node in library[name].node_def:
            functions.extend(function_refs(node, library))
    return seen_nodes, seen_functions


def nodes_of(meta_graph, node_names, function_names):
    graph = meta_graph.graph_def
    for node in graph.node:
        if node.name in node_names:
            yield node, None
    for fdef in graph.library.function:
        if fdef.signature.name in function_names:
            for node in fdef.node_def:
                yield node, fdef.signature.name



def foreign_ops(meta_graph) -> list:
    """``(op, node, function, library)`` for every reachable node whose op is outside core
    TensorFlow (and is not one of the model's own functions)."""
    library = {f.signature.name for f in meta_graph.graph_def.library.function}
    live_nodes, live_functions = reachable(meta_graph, root_nodes(meta_graph))
    found = []
    for node, function in nodes_of(meta_graph, live_nodes, live_functions):
        source = None if node.op in library else library_of(node.op)
        if source is not None:
            found.append((node.op, node.name, function, source))
    return found
