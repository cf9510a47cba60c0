"""A read-only description of a whole SavedModel: what `show`, diagnostics and widgets display.

Nothing here executes the model or reads variable values; the variables bundle
is opened for its index (names, dtypes, shapes) only.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import opdefs
from .errors import SavedModelError
from .format import savedmodel as files
from .tags import format_tag_set, select_meta_graph

@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature, as its TensorInfo describes it."""
    key: str
    name: str           # graph tensor name, e.g. "dense/BiasAdd:0" ("" for composite tensors)
    dtype: str          # TensorFlow enum name, e.g. "DT_FLOAT"
    shape: tuple | None  # None for unknown rank; None entries for unknown dims
    encoding: str = "name"  # "name", "coo_sparse" or "composite_tensor"
    components: tuple = ()  # composite tensors: the graph tensors of their components
    ragged: str = ""        # a ragged output's spec, or which part of a ragged input this is

    @property
    def dtype_short(self) -> str:
        """``float32``-style name."""
        from ._proto.tensor_pb2 import DataType
        from .format.tensors import short_dtype_name
        if self.dtype == "DT_INVALID":  # e.g. the NoOp "output" of __saved_model_init_op
            return "invalid"
        return short_dtype_name(DataType.Value(self.dtype))

    def __str__(self):
        shape = "unknown rank" if self.shape is None else "(" + ", ".join(
            "None" if d is None else str(d) for d in self.shape) + ("," if len(self.shape) == 1 else "") + ")"
        return f"{self.key}: {self.dtype} {shape} <- {self.source}"

    @property
    def source(self) -> str:
        """Where the value comes from: the tensor name, or a composite's components."""
        if self.components:
            return f"{self.encoding}({', '.join(self.components)})"
        return self.name or self.encoding


@dataclass
class SignatureInfo:
    """A SignatureDef: its key, method name and named inputs/outputs."""
    key: str
    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def __repr__(self):
        return (f"SignatureInfo({self.key!r}, inputs={list(self.inputs)}, "
                f"outputs={list(self.outputs)}, method_name={self.method_name!r})")

    def _repr_html_(self):
        from .render import signature_html
        return signature_html(self)


@dataclass(frozen=True)
class VariableInfo:
    """A variable of the graph and where its value lives in the bundle."""
    name: str
    dtype: str
    shape: tuple | None
    checkpoint_key: str
    object_path: str = ""   # TF2: path through the object graph, e.g. "layer_with_weights-0/kernel"
    trainable: bool | None = None


@dataclass(frozen=True)
class AssetInfo:
    """An asset file the graph refers to (AssetFileDef)."""
    filename: str
    tensor_name: str
    path: Path
    exists: bool


@dataclass
class MetaGraphInfo:
    """One MetaGraphDef: tags, signatures, ops census, variables, assets, TF2 functions."""
    index: int
    tags: frozenset
    signatures: dict[str, SignatureInfo]
    op_counts: dict[str, int]
    variables: list[VariableInfo]
    assets: list[AssetInfo]
    concrete_functions: list  # format.structured.FunctionDescription (name, kind, options)
    tensorflow_version: str
    proto: object = field(repr=False)

    @property
    def is_tf2(self) -> bool:
        """True when the metagraph carries a TF2 SavedObjectGraph."""
        return len(self.proto.object_graph_def.nodes) > 0

    def __repr__(self):
        return (f"MetaGraphInfo(#{self.index}, tags={format_tag_set(self.tags)}, "
                f"signatures={list(self.signatures)}, ops={len(self.op_counts)}, "
                f"variables={len(self.variables)}, assets={len(self.assets)})")

    def _repr_html_(self):
        from .render import meta_graph_html
        return meta_graph_html(self)


class SavedModelInfo:
    """Everything `inspect` learned about an export directory."""

    def __init__(self, export_dir, proto, meta_graphs, fingerprint, bundle, bundle_error):
        self.export_dir = Path(export_dir)
        self.extra_checks: list = []  # check(info) -> Problems, added by the package root
        self.proto = proto
        self.meta_graphs: list[MetaGraphInfo] = meta_graphs
        self.fingerprint = fingerprint
        self.bundle = bundle                # BundleReader or None
        self.bundle_error = bundle_error    # SavedModelError met opening the bundle, or None
        self.asset_files = files.list_asset_files(export_dir)
        self.extra_asset_files = files.list_asset_files(export_dir, files.ASSETS_EXTRA_DIR)

    @property
    def tag_sets(self) -> list[frozenset]:
        """Every metagraph's tag-set, in file order."""
        return [mg.tags for mg in self.meta_graphs]

    @property
    def schema_version(self) -> int:
        return self.proto.saved_model_schema_version

    def meta_graph(self, tags=None) -> MetaGraphInfo:
        """The metagraph TensorFlow would load for ``tags`` (same rules as `load`)."""
        index, _ = select_meta_graph(self.proto, tags, self.export_dir)
        return self.meta_graphs[index]

    def signature(self, key: str, tags=None) -> SignatureInfo:
        """One signature of the selected metagraph; a clear error lists the keys otherwise."""
        mg = self.meta_graph(tags)
        if key not in mg.signatures:
            raise SavedModelError(
                f"No signature {key!r} in the MetaGraphDef with tags {format_tag_set(mg.tags)}; "
                f"its signatures are: {', '.join(sorted(mg.signatures)) or 'none'}.")
        return mg.signatures[key]

    def graph(self, signature: str = "serving_default", tags=None):
        """The graph ``signature`` runs, as a view: an interactive widget in JupyterLab,
        ``to_svg()`` for a static picture (see sm_notebook.notebook.graph_view)."""
        from . import _graph_view  # built above this layer; the package root wires it in
        return _graph_view(self, signature, tags)

    def diagnose(self):
        """The whole-model consistency report (see sm_notebook.diagnose), with the checks
        of higher layers the package root adds (``extra_checks``: the engine's verdict)."""
        from .diagnose import diagnose
        return diagnose(self, self.extra_checks)

    def __repr__(self):
        sets = ", ".join(format_tag_set(t) for t in self.tag_sets)
        return f"<SavedModelInfo {str(self.export_dir)!r}: {len(self.meta_graphs)} metagraph(s) [{sets}]>"

    def _repr_html_(self):
        from .render import saved_model_html
        return saved_model_html(self)


def inspect(export_dir) -> SavedModelInfo:
    """Describe the SavedModel in ``export_dir`` without running or importing TensorFlow."""
    proto = files.read_saved_model(export_dir)
    bundle, bundle_error = _open_bundle(export_dir)
    fingerprint = files.read_fingerprint(export_dir)
    meta_graphs = [_describe_meta_graph(i, mg, export_dir, bundle)
                   for i, mg in enumerate(proto.meta_graphs)]
    return SavedModelInfo(export_dir, proto, meta_graphs, fingerprint, bundle, bundle_error)


def _open_bundle(export_dir):
    from .format.bundle import BundleReader
    from .format.diskfiles import present
    prefix = Path(export_dir) / files.VARIABLES_PREFIX
    try:
        if not present(str(prefix) + ".index", root=export_dir):
            return None, None
        return BundleReader(prefix, root=export_dir), None
    except SavedModelError as exc:
        return None, exc


def tensor_spec(key, info, ragged_part: str = "") -> TensorSpec:
    """A TensorSpec from a TensorInfo proto; a ragged composite takes its values' dtype and
    its RaggedTensorSpec's shape. ``ragged_part`` says which component of a ragged input
    (flattened into dense signature inputs) this one is."""
    from .format.ragged import ragged_spec
    from .format.tensors import dtype_name, numpy_to_dtype, shape_from_proto
    encoding = info.WhichOneof("encoding") or "name"
    name = info.name if encoding == "name" else (
        info.coo_sparse.values_tensor_name if encoding == "coo_sparse" else "")
    shape = shape_from_proto(info.tensor_shape) if info.HasField("tensor_shape") else None
    spec = ragged_spec(info.composite_tensor.type_spec) if encoding == "composite_tensor" else None
    if spec is None:
        return TensorSpec(key, name, dtype_name(info.dtype), shape, encoding, ragged=ragged_part)
    return TensorSpec(key, name, dtype_name(numpy_to_dtype(spec.dtype)), spec.shape, encoding,
                      tuple(c.name for c in info.composite_tensor.components), str(spec))


def _ragged_parts(meta_graph, key) -> dict[str, str]:
    """Signature input key -> which component of which ragged argument it is."""
    from .format.ragged import ragged_signature_inputs
    parts = {}
    for name, arg in ragged_signature_inputs(meta_graph, key).items():
        for i, component in enumerate(arg.keys):
            role = "flat_values" if i == 0 else f"row_splits[{i - 1}]"
            parts[component] = f"{role} of ragged input {name!r}: {arg.spec}"
    return parts


def _signatures(meta_graph) -> dict[str, SignatureInfo]:
    result = {}
    for key in sorted(meta_graph.signature_def):
        sig = meta_graph.signature_def[key]
        parts = _ragged_parts(meta_graph, key)
        result[key] = SignatureInfo(
            key, sig.method_name,
            {k: tensor_spec(k, sig.inputs[k], parts.get(k, "")) for k in sorted(sig.inputs)},
            {k: tensor_spec(k, sig.outputs[k]) for k in sorted(sig.outputs)})
    return result


def op_census(meta_graph) -> dict[str, int]:
    """Op type -> node count, over the graph and every library function."""
    counts = Counter(node.op for node in meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
        counts.update(node.op for node in function.node_def)
    return dict(sorted(counts.items()))


def _describe_meta_graph(index, meta_graph, export_dir, bundle) -> MetaGraphInfo:
    return MetaGraphInfo(
        index=index,
        tags=frozenset(meta_graph.meta_info_def.tags),
        signatures=_signatures(meta_graph),
        op_counts=op_census(meta_graph),
        variables=_variables(meta_graph, bundle),
        assets=_assets(meta_graph, export_dir),
        concrete_functions=_concrete_functions(meta_graph),
        tensorflow_version=meta_graph.meta_info_def.tensorflow_version,
        proto=meta_graph,
    )


def _variables(meta_graph, bundle) -> list[VariableInfo]:
    from .format.tensors import dtype_name, shape_from_proto
    if meta_graph.object_graph_def.nodes:
        return _tf2_variables(meta_graph, bundle)
    result = []
    variable_ops = opdefs.ops_with("variable")
    for node in meta_graph.graph_def.node:
        if node.op not in variable_ops:
            continue
        dtype_attr = node.attr["dtype"].type
        shape = shape_from_proto(node.attr["shape"].shape) if "shape" in node.attr else None
        result.append(VariableInfo(node.name, dtype_name(dtype_attr), shape, node.name))
    return result


def _tf2_variables(meta_graph, bundle) -> list[VariableInfo]:
    from .format.tensors import dtype_name, shape_from_proto
    nodes = meta_graph.object_graph_def.nodes
    from .format.bundle import object_graph_paths
    paths = object_graph_paths(nodes)
    checkpoint_graph = None
    if bundle is not None:
        try:
            checkpoint_graph = bundle.object_graph()
        except SavedModelError:
            checkpoint_graph = None
    result = []
    for node_id, node in enumerate(nodes):
        if node.WhichOneof("kind") != "variable":
            continue
        var = node.variable
        key = ""
        if checkpoint_graph is not None and node_id < len(checkpoint_graph.nodes):
            for attribute in checkpoint_graph.nodes[node_id].attributes:
                if attribute.name == "VARIABLE_VALUE":
                    key = attribute.checkpoint_key
        result.append(VariableInfo(var.name or paths.get(node_id, ""), dtype_name(var.dtype),
                                   shape_from_proto(var.shape), key, paths.get(node_id, ""), var.trainable))
    return result


def distinct_variables(variables, bundle) -> list[VariableInfo]:
    """``variables`` without repeats of one value: Keras 3 exports save each variable under
    two object-graph paths (``variables/0`` and ``_all_variables/0``); entries with the same
    name, dtype, shape and stored checksum count once."""
    seen, result = set(), []
    for var in variables:
        checksum = None
        if bundle is not None and var.checkpoint_key in bundle:
            try:
                checksum = bundle.entry(var.checkpoint_key).crc32c
            except SavedModelError:
                checksum = None
        identity = (var.name, var.dtype, var.shape, checksum)
        if checksum is not None and identity in seen:
            continue
        seen.add(identity)
        result.append(var)
    return result


def _assets(meta_graph, export_dir) -> list[AssetInfo]:
    defs = list(meta_graph.asset_file_def)
    collection = meta_graph.collection_def.get("saved_model_assets")
    if not defs and collection is not None and collection.HasField("any_list"):
        defs = [files.unpack_any(value) for value in collection.any_list.value]
    result, seen = [], set()
    for asset in defs:
        if (asset.filename, asset.tensor_info.name) in seen:
            continue  # TF1 builders re-record the graph's assets for every add_meta_graph
        seen.add((asset.filename, asset.tensor_info.name))
        from .format.diskfiles import present
        try:
            path = files.resolve_inside(Path(export_dir) / files.ASSETS_DIR, asset.filename)
            exists = present(path, root=export_dir)
        except SavedModelError:
            path, exists = Path(export_dir) / files.ASSETS_DIR / asset.filename, False
        result.append(AssetInfo(asset.filename, asset.tensor_info.name, path, exists))
    return result


def _concrete_functions(meta_graph) -> list:
    """TF2 functions of the root object with their argument specs (empty for TF1)."""
    if not meta_graph.object_graph_def.nodes:
        return []
    from .format.structured import describe_concrete_functions
    try:
        return describe_concrete_functions(meta_graph.object_graph_def, meta_graph.graph_def.library,
                                           meta_graph.meta_info_def.stripped_op_list)
    except SavedModelError:
        return []  # undecodable specs: diagnose() and show report them
