"""TF2 SavedModels: keep the SavedObjectGraph's signatures in step with SignatureDef edits.

``tf.saved_model.load(...).signatures`` is read from the root object's child
``signatures`` (a ``signature_map`` user object) whose children, named by
signature key, are ``bare_concrete_function`` nodes. TensorFlow's signature
functions take keyword arguments only: their FunctionDef inputs are the input keys
in sorted order (then the captured resources), ``argument_keywords`` and the
function spec's ``kwonlyargs`` list the keys in that order, and the outputs are
returned flat in sorted key order and packed back into a dict by the
``output_signature`` (nest packs dicts by sorted key; see
signature_serialization.canonicalize_signatures). The SignatureDef in the main
graph points at a StatefulPartitionedCall of the same function. Renaming an input
or output key therefore re-orders the function's arguments or results when the
sorted order changes; this module rewrites a copy of the function, the saved
concrete function, the object node and the call node together.
"""
from __future__ import annotations

import re

from .. import opdefs
from ..errors import SavedModelError
from .._proto import graph_pb2, struct_pb2
from .graph import Graph, split_tensor_name

SIGNATURES_CHILD = "signatures"


def is_tf2(meta_graph) -> bool:
    """True when the metagraph carries a SavedObjectGraph (tf.saved_model.save wrote it)."""
    return meta_graph.HasField("object_graph_def") and len(meta_graph.object_graph_def.nodes) > 0


def signature_map_id(object_graph) -> int | None:
    """Node id of the root's ``signatures`` child, or None."""
    if not object_graph.nodes:
        return None
    for child in object_graph.nodes[0].children:
        if child.local_name == SIGNATURES_CHILD:
            return child.node_id
    return None


def signature_children(object_graph) -> dict[str, int]:
    """Signature key -> node id of its function, as tf.saved_model.load lists them."""
    map_id = signature_map_id(object_graph)
    if map_id is None:
        return {}
    return {c.local_name: c.node_id for c in object_graph.nodes[map_id].children}


def rename_signature(object_graph, old: str, new: str):
    map_id = signature_map_id(object_graph)
    if map_id is None:
        return
    for child in object_graph.nodes[map_id].children:
        if child.local_name == old:
            child.local_name = new


def remove_signature(object_graph, key: str):
    map_id = signature_map_id(object_graph)
    if map_id is None:
        return
    children = object_graph.nodes[map_id].children
    for i, child in enumerate(children):
        if child.local_name == key:
            del children[i]
            return


def add_child(object_graph, parent: int, local_name: str, node_id: int):
    object_graph.nodes[parent].children.add(node_id=node_id, local_name=local_name)


def unique_child_name(object_graph, parent: int, wanted: str) -> str:
    taken = {c.local_name for c in object_graph.nodes[parent].children}
    name, n = wanted, 0
    while name in taken:
        n += 1
        name = f"{wanted}_{n}"
    return name


def add_asset_node(object_graph, asset_file_def_index: int, attribute: str) -> str:
    """A SavedAsset node, attached to the root as ``attribute`` (made unique); returns it."""
    node = object_graph.nodes.add()
    node.asset.asset_file_def_index = asset_file_def_index
    name = unique_child_name(object_graph, 0, attribute)
    add_child(object_graph, 0, name, len(object_graph.nodes) - 1)
    return name


# --- signature functions ------------------------------------------------------------

class SignatureFunction:
    """One signature's pieces: object node, saved concrete function, FunctionDef, call node."""

    def __init__(self, meta_graph, graph: Graph, key: str):
        self.meta_graph = meta_graph
        self.graph = graph
        self.key = key
        object_graph = meta_graph.object_graph_def
        children = signature_children(object_graph)
        if key not in children:
            raise SavedModelError(
                f"Signature {key!r} has a SignatureDef but no function in the SavedObjectGraph "
                "(root.signatures), so tf.saved_model.load would not list it; this export is "
                "inconsistent. Re-export it with tf.saved_model.save.")
        self.node_id = children[key]
        node = object_graph.nodes[self.node_id]
        if node.WhichOneof("kind") != "bare_concrete_function":
            raise SavedModelError(
                f"Signature {key!r} is a {node.WhichOneof('kind')} node, not the "
                "bare_concrete_function TensorFlow 2 writes for signatures; sm_notebook cannot "
                "edit its keys faithfully. Re-export the model with a current TensorFlow.")
        self.bare = node.bare_concrete_function
        self.function_name = self.bare.concrete_function_name
        self.saved = object_graph.concrete_functions[self.function_name]
        self.function_def = _library_function(graph.graph_def, self.function_name)
        self.input_keys = list(self.bare.argument_keywords)
        self.output_keys = sorted(_dict_fields(self.saved.output_signature, "output_signature",
                                               key))
        self.input_specs = _input_specs(self.saved, key)
        if sorted(self.input_specs) != sorted(self.input_keys):
            raise SavedModelError(
                f"Signature {key!r}: argument_keywords {self.input_keys} do not match the "
                f"input signature {sorted(self.input_specs)}; the export is inconsistent.")
        if len(self.function_def.signature.output_arg) != len(self.output_keys):
            raise SavedModelError(
                f"Signature {key!r}: the function returns "
                f"{len(self.function_def.signature.output_arg)} tensors but its output "
                f"signature has {len(self.output_keys)} keys; cannot map them.")
        self.call_node = self._call_node()

    def _call_node(self):
        signature_def = self.meta_graph.signature_def[self.key]
        names = {split_tensor_name(i.name)[0] for i in signature_def.outputs.values()
                 if i.WhichOneof("encoding") == "name"}
        if len(names) != 1:
            raise SavedModelError(
                f"Signature {self.key!r}: its outputs come from {len(names)} nodes, not one call "
                "of the signature function; the export was not written by tf.saved_model.save.")
        node = self.graph.node(names.pop())
        if node.op not in opdefs.ops_with("function_call") or node.attr["f"].func.name != self.function_name:
            raise SavedModelError(
                f"Signature {self.key!r}: its outputs are not results of a call to "
                f"{self.function_name!r}; sm_notebook cannot keep the SignatureDef and the "
                "SavedObjectGraph consistent for this export.")
        return node

    def input_position(self, tensor_name: str) -> int | None:
        """Which keyword argument a main-graph tensor feeds, or None."""
        for position, ref in enumerate(self.call_node.input[:len(self.input_keys)]):
            if _same_tensor(ref, tensor_name):
                return position
        return None

    def output_position(self, tensor_name: str) -> int | None:
        node, index = split_tensor_name(tensor_name)
        if node != self.call_node.name or index >= len(self.output_keys):
            return None
        return index


def _same_tensor(a: str, b: str) -> bool:
    return split_tensor_name(a) == split_tensor_name(b)


def _library_function(graph_def, name: str):
    for function in graph_def.library.function:
        if function.signature.name == name:
            return function
    raise SavedModelError(f"The function library has no function {name!r}, which a signature "
                          "refers to; the export is corrupt.")


def _dict_fields(value: struct_pb2.StructuredValue, what: str, key: str) -> dict:
    if value.WhichOneof("kind") != "dict_value":
        raise SavedModelError(
            f"Signature {key!r}: its {what} is a {value.WhichOneof('kind')}, not the dict "
            "TensorFlow writes for signatures; sm_notebook cannot remap it.")
    return dict(value.dict_value.fields)


def _input_specs(saved, key) -> dict:
    signature = saved.canonicalized_input_signature
    if (signature.WhichOneof("kind") != "tuple_value" or len(signature.tuple_value.values) != 2
            or signature.tuple_value.values[0].tuple_value.values):
        raise SavedModelError(
            f"Signature {key!r}: its function takes positional arguments, not the keyword "
            "arguments TensorFlow gives signature functions; sm_notebook cannot remap it.")
    return _dict_fields(signature.tuple_value.values[1], "input signature", key)


def _spec_named(spec: struct_pb2.StructuredValue, name: str) -> struct_pb2.StructuredValue:
    result = struct_pb2.StructuredValue()
    result.CopyFrom(spec)
    if result.WhichOneof("kind") == "tensor_spec_value":
        result.tensor_spec_value.name = name
    return result


def _next_function_uid(graph_def) -> int:
    uids = [int(m.group(1)) for f in graph_def.library.function
            if (m := re.search(r"_(\d+)$", f.signature.name))]
    return max(uids, default=0) + 1


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def rewrite_signature_function(meta_graph, graph: Graph, source: SignatureFunction,
                               input_map: dict[str, int], output_map: dict[str, int],
                               target_key: str, in_place: bool) -> dict[str, str]:
    """Make the function of ``target_key`` take ``input_map`` (new key -> source argument
    position) and return ``output_map`` (new key -> source output position).

    A new FunctionDef is always written (the source may be shared); ``in_place`` re-points
    the source's object node and call node, otherwise new ones are added. Returns the
    new SignatureDef output tensor names by key.
    """
    object_graph = meta_graph.object_graph_def
    new_inputs = sorted(input_map)
    new_outputs = sorted(output_map)
    arg_order = [input_map[k] for k in new_inputs]
    out_order = [output_map[k] for k in new_outputs]
    if sorted(arg_order) != list(range(len(source.input_keys))):
        raise SavedModelError(
            f"Signature {target_key!r} must feed every argument of {source.key!r}'s function "
            f"exactly once ({', '.join(source.input_keys)}); TensorFlow functions have no "
            "optional arguments.")
    uid = _next_function_uid(graph.graph_def)
    name = f"__inference_signature_wrapper_{_safe(target_key)}_{uid}"

    function = graph.graph_def.library.function.add()
    _permuted_function(function, source, name, arg_order, out_order, new_inputs)

    saved = object_graph.concrete_functions[name]
    saved.CopyFrom(source.saved)
    fields = saved.canonicalized_input_signature.tuple_value.values[1].dict_value.fields
    old_specs = dict(source.input_specs)
    for key in list(fields):
        del fields[key]
    for key in new_inputs:
        fields[key].CopyFrom(_spec_named(old_specs[source.input_keys[input_map[key]]], key))
    out_fields = saved.output_signature.dict_value.fields
    old_out = {k: struct_pb2.StructuredValue() for k in source.output_keys}
    for k in source.output_keys:
        old_out[k].CopyFrom(source.saved.output_signature.dict_value.fields[k])
    for key in list(out_fields):
        del out_fields[key]
    for key in new_outputs:
        out_fields[key].CopyFrom(_spec_named(old_out[source.output_keys[output_map[key]]], key))

    if in_place and _references(object_graph, source.node_id) == 1:
        bare = source.bare
    else:
        node = object_graph.nodes.add()
        node.bare_concrete_function.CopyFrom(source.bare)
        bare = node.bare_concrete_function
        if in_place:   # the node is shared with another object: re-point this key only
            remove_signature(object_graph, target_key)
        add_child(object_graph, signature_map_id(object_graph), target_key,
                  len(object_graph.nodes) - 1)
    bare.concrete_function_name = name
    del bare.argument_keywords[:]
    bare.argument_keywords.extend(new_inputs)
    bare.allowed_positional_arguments = 0
    _set_kwonlyargs(bare, new_inputs)

    call = source.call_node if in_place and _call_exclusive(meta_graph, graph, source) else None
    if call is None:
        copy = graph_pb2.NodeDef()
        copy.CopyFrom(source.call_node)
        copy.name = graph.unique_name(re.sub(r"_\d+$", "", source.call_node.name))
        call = graph.add_node_def(copy)
    _permute_call(call, name, arg_order, out_order, len(source.input_keys))
    graph.forget_types(call.name)
    if in_place:
        _drop_if_unused(meta_graph, graph, source.function_name)
    return {key: f"{call.name}:{i}" for i, key in enumerate(new_outputs)}


def _references(object_graph, node_id: int) -> int:
    """How many children entries, over all objects, point at ``node_id``."""
    return sum(child.node_id == node_id for node in object_graph.nodes for child in node.children)


def _permuted_function(function, source, name, arg_order, out_order, new_inputs):
    function.CopyFrom(source.function_def)
    function.signature.name = name
    n = len(arg_order)
    old_args = list(source.function_def.signature.input_arg)
    del function.signature.input_arg[:]
    for position in arg_order + list(range(n, len(old_args))):
        function.signature.input_arg.add().CopyFrom(old_args[position])
    index_map = {old: new for new, old in enumerate(arg_order + list(range(n, len(old_args))))}
    function.arg_attr.clear()
    for old, attrs in source.function_def.arg_attr.items():
        function.arg_attr[index_map[old]].CopyFrom(attrs)
    for new, key in enumerate(new_inputs):
        if new in function.arg_attr and "_user_specified_name" in function.arg_attr[new].attr:
            function.arg_attr[new].attr["_user_specified_name"].s = key.encode()
    function.resource_arg_unique_id.clear()
    for old, unique in source.function_def.resource_arg_unique_id.items():
        function.resource_arg_unique_id[index_map[old]] = unique
    if "_input_shapes" in function.attr:
        shapes = list(source.function_def.attr["_input_shapes"].list.shape)
        if len(shapes) == len(old_args):
            del function.attr["_input_shapes"].list.shape[:]
            for old in arg_order + list(range(n, len(old_args))):
                function.attr["_input_shapes"].list.shape.add().CopyFrom(shapes[old])
    old_outputs = list(source.function_def.signature.output_arg)
    del function.signature.output_arg[:]
    for position in out_order:
        function.signature.output_arg.add().CopyFrom(old_outputs[position])
    kept = {old_outputs[p].name for p in out_order}
    for ret_name in list(function.ret):
        if ret_name not in kept:
            del function.ret[ret_name]


def _set_kwonlyargs(bare, keys):
    if not bare.HasField("function_spec"):
        return
    for item in bare.function_spec.fullargspec.named_tuple_value.values:
        if item.key == "kwonlyargs":
            del item.value.list_value.values[:]
            for key in keys:
                item.value.list_value.values.add().string_value = key


def _call_exclusive(meta_graph, graph: Graph, source: SignatureFunction) -> bool:
    """True when only the source signature reads the call node's results."""
    name = source.call_node.name
    for key, signature_def in meta_graph.signature_def.items():
        if key == source.key:
            continue
        for info in list(signature_def.inputs.values()) + list(signature_def.outputs.values()):
            if info.WhichOneof("encoding") == "name" and split_tensor_name(info.name)[0] == name:
                return False
    for node in graph.graph_def.node:
        for inp in node.input:
            if split_tensor_name(inp.lstrip("^"))[0] == name:
                return False
    return True


def _permute_call(call, function_name, arg_order, out_order, num_args):
    call.attr["f"].func.name = function_name
    old_inputs = list(call.input)
    data = [i for i in old_inputs if not i.startswith("^")]
    control = [i for i in old_inputs if i.startswith("^")]
    order = arg_order + list(range(num_args, len(data)))
    del call.input[:]
    call.input.extend([data[p] for p in order] + control)
    tin = list(call.attr["Tin"].list.type)
    if len(tin) == len(order):
        del call.attr["Tin"].list.type[:]
        call.attr["Tin"].list.type.extend(tin[p] for p in order)
    if "_read_only_resource_inputs" in call.attr:
        position = {old: new for new, old in enumerate(order)}
        values = [position[i] for i in call.attr["_read_only_resource_inputs"].list.i
                  if i in position]
        del call.attr["_read_only_resource_inputs"].list.i[:]
        call.attr["_read_only_resource_inputs"].list.i.extend(sorted(values))
    tout = list(call.attr["Tout"].list.type)
    del call.attr["Tout"].list.type[:]
    call.attr["Tout"].list.type.extend(tout[p] for p in out_order)
    if "_output_shapes" in call.attr:
        shapes = list(call.attr["_output_shapes"].list.shape)
        if len(shapes) == len(tout):
            del call.attr["_output_shapes"].list.shape[:]
            for p in out_order:
                call.attr["_output_shapes"].list.shape.add().CopyFrom(shapes[p])


def _function_referenced(graph_def, object_graph, name: str) -> bool:
    def in_attrs(attr_map):
        for value in attr_map.values():
            if value.WhichOneof("value") == "func" and value.func.name == name:
                return True
            if value.WhichOneof("value") == "list" and any(f.name == name for f in value.list.func):
                return True
        return False

    if any(in_attrs(node.attr) for node in graph_def.node):
        return True
    for function in graph_def.library.function:
        if function.signature.name != name and any(in_attrs(n.attr) for n in function.node_def):
            return True
    if any(g.function_name == name or g.gradient_func == name for g in graph_def.library.gradient):
        return True
    for node in object_graph.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function" and name in node.function.concrete_functions:
            return True
        if kind == "bare_concrete_function" and node.bare_concrete_function.concrete_function_name == name:
            return True
    return False


def _drop_if_unused(meta_graph, graph: Graph, name: str):
    """Remove a FunctionDef and its saved concrete function once nothing refers to them."""
    if _function_referenced(graph.graph_def, meta_graph.object_graph_def, name):
        return
    functions = graph.graph_def.library.function
    for i, function in enumerate(functions):
        if function.signature.name == name:
            del functions[i]
            break
    if name in meta_graph.object_graph_def.concrete_functions:
        del meta_graph.object_graph_def.concrete_functions[name]
