"""Loading a SavedModel for execution: pick the metagraph, restore variables, run init ops.

Order, as TensorFlow's loader: refuse IO ops any signature or init op could
run; restore variables (TF2: each captured variable from the checkpoint key of
its object-graph node; TF1: the saver's restore op, fed the model's own
variables/ prefix); run the init op (``__saved_model_init_op`` signature, else the
``saved_model_main_op`` / ``legacy_init_op`` collection) once, with every asset
tensor fed the path of its file inside assets/.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import opdefs
from ..errors import SavedModelError, SavedModelWarning
from ..format.savedmodel import ASSETS_DIR, read_saved_model, resolve_inside
from .context import DEFAULT_MAX_LOOP_ITERATIONS, DEFAULT_MEMORY_CAP
from .model import LoadedModel
from .runtime import Runtime, tensor_ref
from .scan import (INIT_OP_SIGNATURE, asset_file_defs, init_op_name, nodes_of, reachable,
                   refuse_at_load)



@dataclass
class ModelSource:
    """The parsed files of one export, shared by a model's backends."""
    export_dir: str
    saved_model: object
    meta_graph_index: int
    meta_graph: object


def load_model(export_dir, tags=None, backend="numpy", allow_io=False,
               memory_cap=DEFAULT_MEMORY_CAP,
               max_loop_iterations=DEFAULT_MAX_LOOP_ITERATIONS, optimize=True) -> LoadedModel:
    """Load the metagraph of ``export_dir`` that ``tags`` selects, ready to run on ``backend``.

    ``memory_cap``: bytes one intermediate (or one node's outputs) may take.
    ``max_loop_iterations``: iterations one run of a while loop may take (default
    10,000,000); a loop going past it fails with a SavedModelError naming it.
    ``optimize=False`` runs the plain, unoptimised plans (see engine/plan.py).
    """
    from ..tags import select_meta_graph

    _check_limits(memory_cap, max_loop_iterations)
    saved_model = read_saved_model(export_dir)
    index, meta_graph = select_meta_graph(saved_model, tags, export_dir)
    return start_model(ModelSource(str(export_dir), saved_model, index, meta_graph),
                       backend, allow_io, memory_cap, max_loop_iterations, optimize)


def _check_limits(memory_cap, max_loop_iterations) -> None:
    for name, value in (("memory_cap", memory_cap), ("max_loop_iterations", max_loop_iterations)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SavedModelError(f"load(..., {name}={value!r}): expected a positive integer.")


def start_model(source: ModelSource, backend, allow_io, memory_cap,
                max_loop_iterations=DEFAULT_MAX_LOOP_ITERATIONS, optimize=True) -> LoadedModel:
    """A fresh runtime for ``source``: checked, variables restored, init op run."""
    meta_graph = source.meta_graph
    runtime = Runtime(meta_graph, source.export_dir, backend, allow_io, memory_cap, optimize,
                      max_loop_iterations=int(max_loop_iterations))
    refuse_at_load(meta_graph, allow_io)
    signature_nodes, signature_functions = reachable(meta_graph, _signature_roots(meta_graph))
    if meta_graph.object_graph_def.nodes:
        _restore_tf2(runtime, source)
        if _unbound_handles(runtime, meta_graph, signature_nodes):
            _restore_tf1(runtime, source)  # the saver's restore function, as TF's C++ loader runs it
    else:
        _restore_tf1(runtime, source)
    feeds = asset_feeds(source.export_dir, meta_graph)
    init_op = init_op_name(meta_graph)
    if init_op:
        runtime.run_graph(feeds, targets=[init_op], name=f"init op {init_op!r}")
    writes = opdefs.ops_with("variable_write")  # when no signature can write, reads are folded
    runtime.freeze_variables = not any(  # restore and init ops have run: only signatures count
        n.op in writes
        for n, _ in nodes_of(meta_graph, signature_nodes, signature_functions))
    return LoadedModel(source, runtime, feeds, start_model)


def _signature_roots(meta_graph) -> list:
    return [tensor_ref(t.name).node for key, sig in meta_graph.signature_def.items()
            if key != INIT_OP_SIGNATURE for t in sig.outputs.values() if t.name]


def _unbound_handles(runtime, meta_graph, nodes) -> bool:
    """Whether a signature uses a main-graph VarHandleOp that no capture bound."""
    return any(n.op == "VarHandleOp" and n.name not in runtime.bindings
               for n in meta_graph.graph_def.node if n.name in nodes)


def asset_path(export_dir, filename: str) -> Path:
    """The path of an asset inside assets/: escapes (also through links) are refused, and
    so is anything there that is not a regular file (a named pipe would block a reader).
    A missing file is left to the op that reads it, as in TensorFlow."""
    from ..format.diskfiles import present

    path = resolve_inside(export_dir, str(Path(ASSETS_DIR) / filename))
    present(path, root=export_dir)
    return path


def asset_feeds(export_dir, meta_graph) -> dict:
    """Asset tensor name -> path of its file inside the export's assets/ (escapes refused)."""
    feeds = {}
    for asset in asset_file_defs(meta_graph):
        path = asset_path(export_dir, asset.filename)
        if asset.tensor_info.name:
            feeds[asset.tensor_info.name] = np.array(str(path).encode("utf-8"), dtype=object)
    return feeds


def _variables_prefix(export_dir) -> Path | None:
    """variables/variables when its index exists; the index and every shard it declares
    must be regular files inside the export (checked here, before any op reads them)."""
    from ..format.bundle import BundleReader
    from ..format.diskfiles import present

    prefix = Path(export_dir) / "variables" / "variables"
    if not present(str(prefix) + ".index", root=export_dir):
        return None
    with BundleReader(prefix, root=export_dir) as reader:
        if reader.header.num_shards > 100_000:
            raise SavedModelError(f"{prefix}.index declares {reader.header.num_shards} data "
                                  "shards; the checkpoint index is corrupt.")
        reader.check_shards()
    return prefix


def _attr_text(attrs, name: str, node_name: str) -> str:
    """A string attr (shared_name, container) as text; bytes that are not UTF-8 are refused."""
    if name not in attrs:
        return ""
    try:
        return attrs[name].s.decode("utf-8")
    except UnicodeDecodeError:
        raise SavedModelError(f"Node {node_name!r}: attr {name!r} is not UTF-8 text "
                              f"({attrs[name].s[:40]!r}); the graph is corrupt.") from None


def _restore_tf1(runtime: Runtime, source: ModelSource) -> None:
    prefix = _variables_prefix(source.export_dir)
    saver = source.meta_graph.saver_def
    if prefix is None:
        return
    restore_op = tensor_ref(saver.restore_op_name).node if saver.restore_op_name else ""
    if restore_op and restore_op in runtime.graph.nodes and saver.filename_tensor_name:
        feeds = {saver.filename_tensor_name: np.array(str(prefix).encode("utf-8"), dtype=object)}
        runtime.run_graph(feeds, targets=[restore_op], name="variable restore")
        return
    _restore_by_name(runtime, prefix, source.export_dir)


def _restore_by_name(runtime: Runtime, prefix: Path, export_dir) -> None:
    """No saver: variables named like their checkpoint keys (VariableV2 node, VarHandleOp
    shared_name) get those values."""
    from ..format.bundle import BundleReader
    from .ops.resource_ops import variable

    reader = BundleReader(prefix, root=export_dir)
    keys = set(reader.keys())
    variable_ops = opdefs.ops_with("variable")
    for node in runtime.meta_graph.graph_def.node:
        if node.op not in variable_ops:
            continue
        shared = _attr_text(node.attr, "shared_name", node.name) or node.name
        key = node.name if node.name in keys else shared if shared in keys else None
        if key is not None:
            container = _attr_text(node.attr, "container", node.name)
            var = variable(runtime.ctx, container, shared)
            if reader.dtype(key) != object:
                runtime.ctx.check_alloc(reader.shape(key), reader.dtype(key), f"variable {key!r}")
            var.value = runtime.ctx.asarray(reader.read(key))


def _restore_tf2(runtime: Runtime, source: ModelSource) -> None:
    """Bind each captured variable of a signature call to its checkpoint value.

    Main-graph calls (StatefulPartitionedCall) pass a concrete function's captures as
    trailing inputs, in the order of ``bound_inputs`` (object-graph node ids); node id
    N's value is under the checkpoint key of node N of the checkpoint's object graph.
    """
    from .ops.resource_ops import Variable

    meta_graph = source.meta_graph
    object_graph = meta_graph.object_graph_def
    prefix = _variables_prefix(source.export_dir)
    reader = None
    restored: dict[int, Variable] = {}
    resources: dict[int, object] = {}   # captured resource objects -> their main-graph Ref
    nodes = runtime.graph.nodes
    calls = opdefs.ops_with("function_call")
    for proto in meta_graph.graph_def.node:
        if proto.op not in calls or "f" not in proto.attr:
            continue
        node = nodes[proto.name]
        function = object_graph.concrete_functions.get(node.attr["f"].func.name)
        if function is None or not function.bound_inputs:
            continue
        captured = node.inputs[len(node.inputs) - len(function.bound_inputs):]
        for ref, node_id in zip(captured, function.bound_inputs):
            if not 0 <= node_id < len(object_graph.nodes):
                raise SavedModelError(f"Concrete function {node.attr['f'].func.name!r} captures "
                                      f"object {node_id}, which the object graph lacks.")
            saved = object_graph.nodes[node_id]
            kind = saved.WhichOneof("kind")
            source_node = nodes.get(ref.node)
            if source_node is None:
                continue
            if kind in ("constant", "asset") and source_node.op == "Placeholder":
                runtime.bindings[ref.node] = _captured_value(runtime, source, saved, kind)
                continue
            if kind == "resource":
                resources.setdefault(node_id, ref)
                continue
            if kind != "variable" or source_node.op not in ("VarHandleOp", "Placeholder"):
                continue
            var = restored.get(node_id)
            if var is None:
                if reader is None:
                    reader = _reader(prefix, source.export_dir)
                var = restored[node_id] = _restore_variable(runtime, reader, node_id, saved.variable)
            runtime.bindings[ref.node] = var
            if source_node.op == "VarHandleOp":
                attrs = source_node.attr
                shared = _attr_text(attrs, "shared_name", ref.node)
                container = _attr_text(attrs, "container", ref.node)
                runtime.ctx.resources[("var", container, shared or ref.node)] = var
    if resources and prefix is not None:
        _restore_saveables(runtime, object_graph, reader or _reader(prefix, source.export_dir),
                           resources, restored)


def _restore_saveables(runtime, object_graph, reader, resources: dict, variables: dict) -> None:
    """Restore the saved state of captured resources (MutableHashTable, DenseHashTable, ...)
    as TensorFlow's loader does: each SavedObject ``saveable_objects`` entry names a save
    function, which gives the checkpoint keys of its tensors (``name, slice, tensor``
    triples for the object's checkpoint key), and a restore function, called with those
    tensors read from the bundle. Both run on the resource the signatures capture."""
    checkpoint = reader.object_graph()
    paths = _object_paths(object_graph)
    stored = set(reader.keys())
    for node_id, ref in sorted(resources.items()):
        saved = object_graph.nodes[node_id]
        attributes = {a.name: a.checkpoint_key for a in checkpoint.nodes[node_id].attributes} \
            if checkpoint is not None and node_id < len(checkpoint.nodes) else {}
        if not saved.saveable_objects:
            if attributes:
                warnings.warn(SavedModelWarning(
                    f"Object {paths.get(node_id, node_id)!r} has saved state "
                    f"({', '.join(sorted(attributes))}) but the export gives no function to "
                    "restore it; it starts as its creator makes it."), stacklevel=4)
            continue
        handle = None
        for name, saveable in sorted(saved.saveable_objects.items()):
            key = attributes.get(name)
            if key is None:
                continue  # nothing saved under this name: left as created, as TensorFlow does
            where = f"{name!r} of object {paths.get(node_id, node_id)!r}"
            try:
                if handle is None:
                    handle = runtime.run_graph({}, fetches=[f"{ref.node}:{ref.index}"],
                                               name=f"resource {paths.get(node_id, node_id)!r}")[0]
                _restore_saveable(runtime, object_graph, reader, stored, saveable, key,
                                  {node_id: handle, **variables})
            except SavedModelError as exc:
                raise SavedModelError(
                    f"The saved state {where} (checkpoint key {key!r}), which a signature "
                    f"uses, cannot be restored: {exc} Refused rather than run the model "
                    "without it.") from exc


def _restore_saveable(runtime, object_graph, reader, stored, saveable, key, captured):
    """Run one saveable's save function for its checkpoint keys, read them, and pass the
    tensors to its restore function."""
    save_fn, save_captures = _bare_function(object_graph, saveable.save_function)
    restore_fn, restore_captures = _bare_function(object_graph, saveable.restore_function)
    specs = runtime.call_function(save_fn, [np.array(key.encode(), dtype=object)]
                                  + _captures(save_captures, captured), {})
    tensors = []
    for spec in specs[0::3]:  # (name, slice spec, tensor) per saved tensor
        spec_key = np.asarray(spec).reshape(()).item()
        spec_key = spec_key.decode("utf-8") if isinstance(spec_key, bytes) else str(spec_key)
        if spec_key not in stored:
            raise SavedModelError(f"the checkpoint lacks {spec_key!r}.")
        tensors.append(runtime.ctx.asarray(reader.read(spec_key)))
    runtime.call_function(restore_fn, tensors + _captures(restore_captures, captured), {})


def _bare_function(object_graph, node_id: int):
    """``(function name, captured object ids)`` of a save or restore function object."""
    if not 0 <= node_id < len(object_graph.nodes) or \
            object_graph.nodes[node_id].WhichOneof("kind") != "bare_concrete_function":
        raise SavedModelError(f"its save/restore function (object {node_id}) is not a "
                              "concrete function; the export is malformed.")
    name = object_graph.nodes[node_id].bare_concrete_function.concrete_function_name
    function = object_graph.concrete_functions.get(name)
    return name, list(function.bound_inputs) if function is not None else []


def _captures(ids, captured: dict) -> list:
    missing = [i for i in ids if i not in captured]
    if missing:
        raise SavedModelError(f"its functions capture objects {missing}, which no signature "
                              "captures, so sm_notebook has no value for them.")
    return [captured[i] for i in ids]


def _object_paths(object_graph) -> dict:
    """Object id -> its attribute path from the root (``h``, ``layer.table``)."""
    paths, pending = {0: ""}, [0]
    while pending:
        parent = pending.pop()
        for child in object_graph.nodes[parent].children:
            if child.node_id not in paths:
                base = paths[parent]
                paths[child.node_id] = f"{base}.{child.local_name}" if base else child.local_name
                pending.append(child.node_id)
    return paths


def _captured_value(runtime, source: ModelSource, saved, kind: str):
    """The value a captured constant or asset placeholder stands for."""
    from ..format.tensors import tensor_proto_to_numpy

    meta_graph = source.meta_graph
    if kind == "asset":
        assets = asset_file_defs(meta_graph)
        index = saved.asset.asset_file_def_index
        if not 0 <= index < len(assets):
            raise SavedModelError(f"Asset object refers to asset_file_def {index}, which does not exist.")
        path = asset_path(source.export_dir, assets[index].filename)
        return np.array(str(path).encode("utf-8"), dtype=object)
    name = saved.constant.operation
    nodes = runtime.graph.nodes
    if name not in nodes or nodes[name].op != "Const":
        raise SavedModelError(f"Captured constant {name!r} is not a Const node of the main graph.")
    return runtime.ctx.asarray(tensor_proto_to_numpy(nodes[name].attr["value"].tensor))


def _reader(prefix, export_dir):
    from ..format.bundle import BundleReader
    if prefix is None:
        raise SavedModelError(
            f"The model captures variables but {export_dir}/variables/variables.index does not "
            "exist; the export is incomplete.")
    return BundleReader(prefix, root=export_dir)


def _restore_variable(runtime, reader, node_id: int, saved_variable):
    from ..format.tensors import dtype_to_numpy, shape_from_proto
    from .ops.resource_ops import Variable

    graph = reader.object_graph()
    name = saved_variable.name or f"object {node_id}"
    if graph is None or node_id >= len(graph.nodes):
        raise SavedModelError(
            f"Variable {name!r} (object {node_id}) cannot be restored: the checkpoint has no object "
            "graph entry for it.")
    keys = [a.checkpoint_key for a in graph.nodes[node_id].attributes if a.name == "VARIABLE_VALUE"]
    if not keys:
        raise SavedModelError(
            f"Variable {name!r} (object {node_id}) has no VARIABLE_VALUE in the checkpoint.")
    if reader.dtype(keys[0]) != object:
        runtime.ctx.check_alloc(reader.shape(keys[0]), reader.dtype(keys[0]), f"variable {name!r}")
    value = reader.read(keys[0])
    dtype = dtype_to_numpy(saved_variable.dtype)
    if value.dtype != dtype:
        raise SavedModelError(f"Variable {name!r}: the checkpoint holds {value.dtype.name}, "
                              f"the model declares {dtype.name}.")
    return Variable(name, dtype, shape_from_proto(saved_variable.shape), runtime.ctx.asarray(value))
