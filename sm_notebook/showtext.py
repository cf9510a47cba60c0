"""saved_model_cli-style text for a SavedModel proto, one function per section.

Every function returns the exact text `saved_model_cli show` prints for the
same section (newlines included), so the CLI and the notebook widgets show
what TensorFlow users already know. Two things in TensorFlow's output change
from run to run and are made deterministic here: dict entries inside function
signatures are in key order, and the op set prints in the order Python's set
gives for the current hash seed, built exactly as TensorFlow builds it (so the
two agree byte for byte under the same PYTHONHASHSEED).
"""
from __future__ import annotations

from collections.abc import Iterable

from ._proto import tensor_pb2
from .errors import SavedModelError
from .format import structured

__all__ = [
    "LIST_OPS_NEEDS_TAG_SET", "tag_sets_text", "signature_keys_text", "tensor_info_text",
    "signature_text", "ops_used", "ops_text", "concrete_functions_text", "show_all_text",
]

LIST_OPS_NEEDS_TAG_SET = "--list_ops must be paired with a tag-set or with --all.\n"
_INDENT = "  "


def tag_sets_text(saved_model) -> str:
    """'The given SavedModel contains the following tag-sets:' and one line per metagraph."""
    lines = ["The given SavedModel contains the following tag-sets:"]
    for tags in sorted(list(mg.meta_info_def.tags) for mg in saved_model.meta_graphs):
        lines.append(repr(", ".join(sorted(tags))))
    return "\n".join(lines) + "\n"


def signature_keys_text(meta_graph) -> str:
    """The SignatureDef keys of one metagraph, sorted."""
    lines = ["The given SavedModel MetaGraphDef contains SignatureDefs with the following keys:"]
    lines += [f'SignatureDef key: "{key}"' for key in sorted(meta_graph.signature_def)]
    return "\n".join(lines) + "\n"


def _dtype_enum_name(enum_value: int) -> str:
    try:
        return tensor_pb2.DataType.Name(enum_value)
    except ValueError:
        return f"<unknown DataType {enum_value}>"


def tensor_info_text(tensor_info, indent: int = 0) -> str:
    """The dtype, shape and name lines of one TensorInfo (shape as '(-1, 8)' or 'unknown_rank')."""
    prefix = _INDENT * indent
    if tensor_info.tensor_shape.unknown_rank:
        shape = "unknown_rank"
    else:
        shape = "(" + ", ".join(str(dim.size) for dim in tensor_info.tensor_shape.dim) + ")"
    return (f"{prefix}    dtype: {_dtype_enum_name(tensor_info.dtype)}\n"
            f"{prefix}    shape: {shape}\n"
            f"{prefix}    name: {tensor_info.name}\n")


def _tag_set_label(meta_graph) -> str:
    return ", ".join(meta_graph.meta_info_def.tags)


def signature_text(meta_graph, signature_key: str, indent: int = 0) -> str:
    """A SignatureDef's inputs, outputs and method name; SavedModelError if the key is absent."""
    if signature_key not in meta_graph.signature_def:
        available = sorted(meta_graph.signature_def)
        hint = (f"Available SignatureDef keys: {', '.join(available)}." if available
                else "This MetaGraphDef has no SignatureDefs.")
        import difflib
        close = difflib.get_close_matches(signature_key, available, n=1)
        if close:
            hint += f" Did you mean {close[0]!r}?"
        raise SavedModelError(
            f"No SignatureDef {signature_key!r} in the MetaGraphDef with tag-set "
            f"{_tag_set_label(meta_graph)!r}. {hint}")
    signature = meta_graph.signature_def[signature_key]
    prefix = _INDENT * indent
    parts = [f"{prefix}The given SavedModel SignatureDef contains the following input(s):\n"]
    for key in sorted(signature.inputs):
        parts.append(f"{prefix}  inputs['{key}'] tensor_info:\n")
        parts.append(tensor_info_text(signature.inputs[key], indent + 1))
    parts.append(f"{prefix}The given SavedModel SignatureDef contains the following output(s):\n")
    for key in sorted(signature.outputs):
        parts.append(f"{prefix}  outputs['{key}'] tensor_info:\n")
        parts.append(tensor_info_text(signature.outputs[key], indent + 1))
    parts.append(f"{prefix}Method name is: {signature.method_name}\n")
    return "".join(parts)


def ops_used(graph_def) -> set:
    """The op types a graph uses, its library functions' bodies included (functions excluded).

    Built with the same sequence of set insertions as TensorFlow's
    ops_used_by_graph_def, so the set iterates in the same order.
    """
    functions = {f.signature.name: f for f in graph_def.library.function}
    used = set()
    to_visit = []

    def use(op_name):
        if op_name not in used and op_name in functions:
            to_visit.append(functions[op_name])
        used.add(op_name)

    def visit(node):
        use(node.op)
        if node.op in ("PartitionedCall", "StatefulPartitionedCall"):
            use(node.attr["f"].func.name if "f" in node.attr else "")

    for node in graph_def.node:
        visit(node)
    while to_visit:
        for node in to_visit.pop().node_def:
            visit(node)
    return set([op for op in used if op not in functions])  # noqa: C403 (same insertions as TF)


def ops_text(meta_graph) -> str:
    """'The MetaGraph with tag set [...] contains the following ops: {...}'."""
    tags = list(meta_graph.meta_info_def.tags)
    return (f"The MetaGraph with tag set {tags} contains the following ops: "
            f"{ops_used(meta_graph.graph_def)}\n")


def _quoted(value) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _type_name(value) -> str:
    if isinstance(value, structured.TypeSpec):
        return value.class_name
    if isinstance(value, structured.ConstantTensor):
        return "SymbolicTensor"
    return type(value).__name__


def _arguments_text(arguments, argument_type: str, indent: int, backspaces: bool) -> str:
    prefix = _INDENT * indent
    close = "\b\b" if backspaces else ""
    parts = []
    for index, element in enumerate(arguments, 1):
        if indent == 4:
            parts.append(f"{prefix}{argument_type} #{index}\n")
        if isinstance(element, str):
            parts.append(f"{prefix}  {element}\n")
        elif isinstance(element, structured.TensorSpec):
            parts.append(f"{_INDENT * (indent + 1)}{element.name}: {element!r}\n")
        elif isinstance(element, Iterable) and not isinstance(element, dict):
            items = [_quoted(value) + ", " for value in element]
            if not backspaces and items:
                items[-1] = items[-1][:-2]
            parts.append(f"{prefix}  DType: {_type_name(element)}\n")
            parts.append(f"{prefix}  Value: [{''.join(items)}{close}]\n")
        elif isinstance(element, dict):
            items = [f"'{key}': {_quoted(value)}, " for key, value in element.items()]
            if not backspaces and items:
                items[-1] = items[-1][:-2]
            parts.append(f"{prefix}  DType: dict\n")
            parts.append(f"{prefix}  Value: {{{''.join(items)}{close}}}\n")
        else:
            parts.append(f"{prefix}  DType: {_type_name(element)}\n")
            parts.append(f"{prefix}  Value: {element}\n")
    return "".join(parts)


def _function_text(function, backspaces: bool) -> str:
    parts = [f"\n  Function Name: '{function.name}'\n"]
    for index, option in enumerate(function.options, 1):
        args, kwargs = option.callable_with()
        if args:
            parts.append(f"    Option #{index}\n      Callable with:\n")
            parts.append(_arguments_text(args, "Argument", 4, backspaces))
        if kwargs:
            parts.append(_arguments_text(kwargs, "Named Argument", 4, backspaces))
    return "".join(parts)


def concrete_functions_text(saved_model, backspaces: bool = True) -> str:
    """The '\\nConcrete Functions:' section of `show --all`; '' for a TF1 model.

    TensorFlow builds it by loading the model; this reads the SavedObjectGraph
    instead. Where TensorFlow's loader would fail (several metagraphs, an
    undecodable signature) the section says 'N/A' as TensorFlow's does.
    saved_model_cli ends each list value with two backspaces over the last
    ', '; backspaces=False drops that separator instead (for HTML).
    """
    meta_graphs = saved_model.meta_graphs
    if not any(mg.HasField("object_graph_def") for mg in meta_graphs):
        return ""
    header = "\nConcrete Functions:"
    unlisted = header + " N/A (could not be listed due to unknown reasons)\n"
    if len(meta_graphs) != 1:
        return unlisted
    meta_graph = meta_graphs[0]
    try:
        functions = structured.describe_concrete_functions(
            meta_graph.object_graph_def, meta_graph.graph_def.library,
            meta_graph.meta_info_def.stripped_op_list)
    except SavedModelError:
        return unlisted
    return header + "".join(_function_text(f, backspaces) for f in functions)


def show_all_text(saved_model) -> str:
    """Everything `saved_model_cli show --all` prints."""
    parts = []
    for meta_graph in sorted(saved_model.meta_graphs, key=lambda mg: list(mg.meta_info_def.tags)):
        parts.append(f"\nMetaGraphDef with tag-set: '{_tag_set_label(meta_graph)}' "
                     "contains the following SignatureDefs:\n")
        for key in sorted(meta_graph.signature_def):
            parts.append(f"\nsignature_def['{key}']:\n")
            parts.append(signature_text(meta_graph, key, indent=1))
        parts.append(ops_text(meta_graph))
    parts.append(concrete_functions_text(saved_model))
    return "".join(parts)
