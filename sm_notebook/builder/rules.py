"""The rules a SavedModel must follow to load and serve, checked before anything is written.

Each breach is a SavedModelError saying what is wrong and how to fix it; what loads
but looks wrong is a SavedModelWarning. The reachability rule follows how a TF1
Session prunes a signature's graph: feeding a tensor cuts the graph there, and any
Placeholder still needed must be fed ("You must feed a value for placeholder tensor").
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from .. import opdefs
from ..errors import SavedModelError, SavedModelWarning
from ..tags import format_tag_set
from .graph import Graph, split_tensor_name
from .signatures import CLASSIFY_METHOD, REGRESS_METHOD, RESERVED_KEYS



def check_user_signature_key(key, action: str = "add"):
    """Signature keys are non-empty strings, and the reserved ``__saved_model_*`` keys
    belong to TensorFlow (its init and train ops)."""
    if not isinstance(key, str) or not key:
        raise SavedModelError(f"A signature key must be a non-empty string; got {key!r}.")
    if key in RESERVED_KEYS:
        raise SavedModelError(
            f"Cannot {action} a signature named {key!r}: the key is reserved for TensorFlow's "
            f"{'initialization' if 'init' in key else 'training'} op, which loaders run (init) "
            "or look up (train) by that name. Choose another key, e.g. 'serving_default'.")


def check_tag_set(tag_set: frozenset, allow_empty: bool):
    """An empty tag-set is allowed only when asked for (TF1's loader accepts tags=[]), as
    it is almost always a mistake (e.g. tags=set('') or a forgotten argument)."""
    if not tag_set and not allow_empty:
        raise SavedModelError(
            "The tag-set is empty. A metagraph is found by its tags, so give at least one "
            "(e.g. tags='serve'); pass allow_empty=True if an empty tag-set is really meant.")


def check_unique_tag_sets(tag_sets: list[frozenset]):
    """No two metagraphs may share a tag-set: loaders pick the first and hide the others."""
    seen: dict[frozenset, int] = {}
    for index, tag_set in enumerate(tag_sets):
        if tag_set in seen:
            raise SavedModelError(
                f"MetaGraphDefs #{seen[tag_set]} and #{index} both have the tag-set "
                f"{format_tag_set(tag_set)}; TensorFlow would load #{seen[tag_set]} and silently "
                f"ignore #{index}. Give one of them other tags (Builder.set_tags(old, new, "
                f"index={index})) or remove it (Builder.remove_meta_graph(tags, index={index})).")
        seen[tag_set] = index


@dataclass
class Reachability:
    """What one signature output needs from the graph."""
    output_key: str
    unfed_placeholders: list[str] = field(default_factory=list)
    inputs_reached: set[str] = field(default_factory=set)
    state_reached: bool = False


def trace_output(graph: Graph, output_name: str, fed: dict[str, str],
                 output_key: str) -> Reachability:
    """Walk back from one output, stopping at fed tensors (``fed``: tensor name -> input key)."""
    result = Reachability(output_key)
    start = _canonical(output_name)
    if start in fed:
        result.inputs_reached.add(fed[start])
        return result
    stack = [split_tensor_name(start)[0]]
    seen = set()
    needs_feed, state_ops = opdefs.ops_with("placeholder"), opdefs.ops_with("handle")
    while stack:
        name = stack.pop()
        if name in seen or name not in graph:
            continue
        seen.add(name)
        node = graph.node(name)
        if node.op in needs_feed:
            result.unfed_placeholders.append(f"{name}:0")
            continue
        if node.op in state_ops:
            result.state_reached = True
        for inp in node.input:
            if inp.startswith("^"):
                stack.append(inp[1:])
                continue
            tensor = _canonical(inp)
            if tensor in fed:
                result.inputs_reached.add(fed[tensor])
            else:
                stack.append(split_tensor_name(tensor)[0])
    return result


def _canonical(name: str) -> str:
    node, index = split_tensor_name(name)
    return f"{node}:{index}"


def check_reachability(graph: Graph, signature_def, where: str):
    """Error when an output needs a Placeholder that is not an input (the signature can
    never run); warn when an output depends on no input, or an input feeds no output."""
    fed = {_canonical(info.name): key for key, info in signature_def.inputs.items()
           if info.WhichOneof("encoding") == "name"}
    for key, info in signature_def.inputs.items():
        if info.WhichOneof("encoding") == "coo_sparse":
            for part in (info.coo_sparse.indices_tensor_name, info.coo_sparse.values_tensor_name,
                         info.coo_sparse.dense_shape_tensor_name):
                fed[_canonical(part)] = key
    used_inputs = set()
    for key, info in signature_def.outputs.items():
        if info.WhichOneof("encoding") != "name":
            continue
        trace = trace_output(graph, info.name, fed, key)
        used_inputs |= trace.inputs_reached
        if trace.unfed_placeholders:
            missing = sorted(set(trace.unfed_placeholders))
            raise SavedModelError(
                f"{where}: output {key!r} ({info.name!r}) depends on the placeholder(s) "
                f"{', '.join(map(repr, missing))}, which are not inputs of the signature, so it "
                "can never run (TensorFlow: 'You must feed a value for placeholder tensor'). "
                f"Add them as inputs, e.g. inputs={{..., {split_tensor_name(missing[0])[0]!r}: "
                f"{missing[0]!r}}}, or choose an output computed from the inputs.")
        if not trace.inputs_reached and fed:
            source = "variables" if trace.state_reached else "constants"
            warnings.warn(
                f"{where}: output {key!r} ({info.name!r}) does not depend on any input of the "
                f"signature: it is computed from {source} only, so every call returns the same "
                "value. Check that the output tensor is the one you meant.",
                SavedModelWarning, stacklevel=4)
    unused = sorted(set(fed.values()) - used_inputs)
    if unused and signature_def.outputs:
        warnings.warn(
            f"{where}: input(s) {', '.join(map(repr, unused))} feed none of the outputs; "
            "callers must still supply them. Remove them or check the output tensors.",
            SavedModelWarning, stacklevel=4)


def check_outputs_present(signature_def, where: str):
    """A signature without outputs computes nothing (TensorFlow Serving rejects it)."""
    if not signature_def.outputs:
        raise SavedModelError(f"{where} has no outputs; give at least one, e.g. "
                              "outputs={'y': 'dense/BiasAdd:0'}.")


def check_method(signature_def, where: str):
    """Classify and regress signatures have fixed keys (signature_def_utils.is_valid_signature)."""
    method = signature_def.method_name
    inputs, outputs = set(signature_def.inputs), set(signature_def.outputs)
    if method == CLASSIFY_METHOD:
        if inputs != {"inputs"} or not outputs or not outputs <= {"classes", "scores"}:
            warnings.warn(
                f"{where}: method {method!r} expects one input 'inputs' (serialized "
                "tf.Example strings) and outputs 'classes' and/or 'scores'; TensorFlow Serving "
                f"will reject inputs {sorted(inputs)} / outputs {sorted(outputs)}.",
                SavedModelWarning, stacklevel=4)
    elif method == REGRESS_METHOD:
        if inputs != {"inputs"} or outputs != {"outputs"}:
            warnings.warn(
                f"{where}: method {method!r} expects exactly input 'inputs' and output "
                f"'outputs'; TensorFlow Serving will reject inputs {sorted(inputs)} / outputs "
                f"{sorted(outputs)}.", SavedModelWarning, stacklevel=4)
