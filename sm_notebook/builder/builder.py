"""Builder: compose or edit a SavedModel's metagraphs, signatures and assets, then save it.

The model is held as protos (one MetaGraphDef per tag-set, each with a Graph);
variable values are never read: on save the source checkpoint is hard-linked (or
streamed), and only variables created with ``Graph.variable`` are written. Every
request is checked when made (``rules.py``) and the whole model again on save.
"""
from __future__ import annotations

import difflib
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SavedModelError, SavedModelWarning
from ..format import savedmodel as files
from ..format.diskfiles import present, read_regular
from ..format.savedmodel import pack_any, unpack_any
from ..format.tensors import DataType, shape_to_proto
from ..tags import format_tag_set, normalize_tags, tag_set_not_found
from .._proto import meta_graph_pb2, saved_model_pb2
from . import objectgraph, rules
from .graph import Graph, Tensor, split_tensor_name
from .saver import add_saver, variable_defs
from .signatures import (
    PREDICT_METHOD, RESERVED_KEYS, rename_key, resolve_signature, signature,
)
from .sources import checked_source, export_files
from .writer import ExportPlan, write_export

ASSETS_COLLECTION = "saved_model_assets"       # TF1 loaders read AssetFileDefs from here
ASSET_FILEPATHS_COLLECTION = "asset_filepaths"  # tf.GraphKeys.ASSET_FILEPATHS
DT_STRING = DataType.Value("DT_STRING")


@dataclass
class _MetaGraph:
    """One metagraph being edited; ``proto.graph_def`` is unused (``graph`` holds it)."""
    proto: meta_graph_pb2.MetaGraphDef
    graph: Graph
    allow_empty_tags: bool = False
    edited: set = field(default_factory=set)   # signature keys added or changed

    @property
    def tag_set(self) -> frozenset:
        return frozenset(self.proto.meta_info_def.tags)

    @property
    def tf2(self) -> bool:
        return objectgraph.is_tf2(self.proto)


def _tag_list(tags, what="tags") -> list[str]:
    """Tags in the order given, without repeats; a bare string is ONE tag."""
    if tags is None:
        raise SavedModelError(f"{what} must be given: a tag such as 'serve', or a list such as "
                              "['serve', 'gpu'].")
    normalize_tags(tags)  # validates (and rejects non-strings)
    if isinstance(tags, (str, bytes)):
        items = [tags]
    else:
        items = sorted(tags) if isinstance(tags, (set, frozenset)) else list(tags)
    items = [t.decode() if isinstance(t, bytes) else t for t in items]
    return list(dict.fromkeys(items))


class Builder:
    """Compose a SavedModel, or edit one read with ``Builder.from_saved_model``.

    ``Builder()`` starts empty (compose into ``builder.graph``, then ``add_meta_graph``);
    ``Builder(graph=g, tags='serve')`` starts with one metagraph over the Graph ``g``.
    """

    def __init__(self, graph: Graph | None = None, tags="serve"):
        self._metagraphs: list[_MetaGraph] = []
        self._graph = graph if graph is not None else Graph()
        self._source_dir: Path | None = None
        self._source_pb: bytes | None = None
        self._source_fingerprint: bytes | None = None
        self._extra_files: dict[str, Path] = {}       # source files carried over as they are
        self._source_problems: list[str] = []         # links out of the source, special files
        self._source_versions: list = []
        self._changed = True
        self._assets: dict[str, Path] = {}
        self._schema_version = 1
        if graph is not None:
            if not isinstance(graph, Graph):
                raise SavedModelError(f"graph must be an sm_notebook.Graph; got {type(graph).__name__}.")
            self.add_meta_graph(tags)

    # --- reading ----------------------------------------------------------------
    @classmethod
    def from_saved_model(cls, export_dir) -> "Builder":
        """Read every metagraph of an export; variables, assets and object graphs carry over."""
        export_dir = Path(export_dir).absolute()
        pb_path = files.saved_model_path(export_dir)
        model = files.read_saved_model(export_dir)
        builder = cls()
        builder._source_dir = export_dir
        if pb_path.name == files.SAVED_MODEL_PB:
            builder._source_pb = read_regular(pb_path, root=export_dir)
            fingerprint = export_dir / files.FINGERPRINT_PB
            builder._source_fingerprint = (read_regular(fingerprint, root=export_dir)
                                           if present(fingerprint, root=export_dir) else None)
        builder._schema_version = model.saved_model_schema_version
        for meta_graph in model.meta_graphs:
            graph = Graph(meta_graph.graph_def)
            meta_graph.ClearField("graph_def")
            builder._metagraphs.append(_MetaGraph(meta_graph, graph, allow_empty_tags=True))
        if len(builder._metagraphs) == 1:
            builder._graph = builder._metagraphs[0].graph
        assets, problems = export_files(export_dir, files.ASSETS_DIR)
        builder._assets.update(assets)
        extra, extra_problems = export_files(export_dir, skip_top=_MANAGED)
        builder._extra_files = extra
        builder._source_problems = problems + extra_problems
        builder._source_versions = [m.graph.version for m in builder._metagraphs]
        builder._changed = False
        return builder

    @property
    def tag_sets(self) -> list[frozenset]:
        """Every metagraph's tag-set, in order."""
        return [m.tag_set for m in self._metagraphs]

    def signatures(self, tags=None) -> dict[str, meta_graph_pb2.SignatureDef]:
        """The SignatureDefs of one metagraph (a copy), by key."""
        result = {}
        for key, value in self._select(tags).proto.signature_def.items():
            result[key] = meta_graph_pb2.SignatureDef()
            result[key].CopyFrom(value)
        return result

    @property
    def graph(self) -> Graph:
        """The Graph of the only metagraph (or, before any, the one being composed)."""
        if not self._metagraphs:
            return self._graph
        return self._select(None).graph

    def get_graph(self, tags=None) -> Graph:
        """The Graph of the metagraph with ``tags``; new nodes are saved with it."""
        return self._select(tags).graph

    def __repr__(self):
        sets = ", ".join(format_tag_set(t) for t in self.tag_sets) or "no metagraphs"
        return f"<Builder {sets}>"

    # --- selection ----------------------------------------------------------------
    def _select(self, tags, index: int | None = None) -> _MetaGraph:
        if index is not None:
            if not isinstance(index, int) or not 0 <= index < len(self._metagraphs):
                raise SavedModelError(f"index={index!r}: the model has {len(self._metagraphs)} "
                                      "metagraph(s), numbered from 0.")
            chosen = self._metagraphs[index]
            if tags is not None and chosen.tag_set != normalize_tags(tags):
                raise SavedModelError(f"Metagraph #{index} has the tag-set "
                                      f"{format_tag_set(chosen.tag_set)}, not "
                                      f"{format_tag_set(normalize_tags(tags))}.")
            return chosen
        if tags is None:
            if len(self._metagraphs) == 1:
                return self._metagraphs[0]
            if not self._metagraphs:
                raise SavedModelError("The model has no metagraph yet; add one with "
                                      "builder.add_meta_graph('serve').")
            listed = "; ".join(format_tag_set(t) for t in self.tag_sets)
            raise SavedModelError(
                f"The model has {len(self._metagraphs)} metagraphs ({listed}); pass tags= to "
                f"say which, e.g. tags={sorted(self.tag_sets[0])!r}.")
        requested = normalize_tags(tags)
        matches = [m for m in self._metagraphs if m.tag_set == requested]
        if not matches:
            raise tag_set_not_found(self._summary(), requested, "the model being built")
        if len(matches) > 1:
            indices = [i for i, m in enumerate(self._metagraphs) if m.tag_set == requested]
            raise SavedModelError(
                f"{len(matches)} metagraphs share the tag-set {format_tag_set(requested)} "
                f"(indices {indices}); pass index= to pick one, then give it distinct tags.")
        return matches[0]

    def _summary(self) -> saved_model_pb2.SavedModel:
        """A SavedModel with tags and signatures only, for error messages."""
        summary = saved_model_pb2.SavedModel()
        for meta_graph in self._metagraphs:
            entry = summary.meta_graphs.add()
            entry.meta_info_def.tags.extend(meta_graph.proto.meta_info_def.tags)
            for key, value in meta_graph.proto.signature_def.items():
                entry.signature_def[key].CopyFrom(value)
        return summary

    def _signature_def(self, meta_graph: _MetaGraph, key: str):
        if not isinstance(key, str):
            raise SavedModelError(f"A signature key is a string; got {key!r} "
                                  f"({type(key).__name__}).")
        if key not in meta_graph.proto.signature_def:
            keys = sorted(k for k in meta_graph.proto.signature_def if k not in RESERVED_KEYS)
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SavedModelError(
                f"The metagraph {format_tag_set(meta_graph.tag_set)} has no signature {key!r};"
                f" its signatures are: {', '.join(keys) or 'none'}.{hint}")
        return meta_graph.proto.signature_def[key]

    def _where(self, meta_graph: _MetaGraph, key: str) -> str:
        return f"Signature {key!r} of {format_tag_set(meta_graph.tag_set)}"

    # --- signatures -------------------------------------------------------------
    def add_signature(self, key: str, inputs: dict, outputs: dict,
                      method_name: str = PREDICT_METHOD, tags=None):
        """Add a signature over graph tensors (dtype and shape read from the graph)."""
        rules.check_user_signature_key(key, "add")
        meta_graph = self._select(tags)
        if key in meta_graph.proto.signature_def:
            raise SavedModelError(
                f"{self._where(meta_graph, key)} already exists; a key names one signature per "
                "metagraph. Choose another key, or remove_signature / rename_signature first.")
        proto = signature(inputs, outputs, method_name)
        self._install_signature(meta_graph, key, proto)

    def _install_signature(self, meta_graph: _MetaGraph, key: str, proto):
        where = self._where(meta_graph, key)
        resolved = resolve_signature(meta_graph.graph, proto, where)
        rules.check_outputs_present(resolved, where)
        rules.check_reachability(meta_graph.graph, resolved, where)
        rules.check_method(resolved, where)
        if meta_graph.tf2:
            self._add_tf2_signature_function(meta_graph, key, resolved)
        meta_graph.proto.signature_def[key].CopyFrom(resolved)
        meta_graph.edited.add(key)
        self._changed = True

    def _add_tf2_signature_function(self, meta_graph: _MetaGraph, key: str, resolved):
        """Derive the new signature's concrete function from an existing signature's."""
        call_nodes = {split_tensor_name(i.name)[0] for i in resolved.outputs.values()}
        source = None
        for other in sorted(objectgraph.signature_children(meta_graph.proto.object_graph_def)):
            if other not in meta_graph.proto.signature_def:
                continue
            try:
                candidate = objectgraph.SignatureFunction(meta_graph.proto, meta_graph.graph, other)
            except SavedModelError:
                continue
            if call_nodes == {candidate.call_node.name}:
                source = candidate
                break
        limit = (
            "In a TF2 SavedModel, tf.saved_model.load serves each signature through a concrete "
            "function listed under root.signatures, not through the SignatureDef's tensors. "
            "sm_notebook can derive a new signature function only from an existing signature's "
            "function: the inputs must be exactly that signature's input tensors (under any "
            "keys) and the outputs some of its output tensors (under any keys). Writing a new "
            "function over other graph tensors faithfully needs TensorFlow's tracing: re-export "
            "with tf.saved_model.save(..., signatures={...}).")
        if source is None:
            raise SavedModelError(
                f"{self._where(meta_graph, key)}: cannot add it to this TF2 SavedModel: the "
                f"outputs are not all results of one existing signature function. {limit}")
        input_map = {}
        for input_key, info in resolved.inputs.items():
            position = source.input_position(info.name)
            if position is None:
                raise SavedModelError(
                    f"{self._where(meta_graph, key)}: input {input_key!r} ({info.name!r}) is not "
                    f"an input of signature {source.key!r}'s function. {limit}")
            input_map[input_key] = position
        output_map = {k: source.output_position(i.name) for k, i in resolved.outputs.items()}
        new_names = objectgraph.rewrite_signature_function(
            meta_graph.proto, meta_graph.graph, source, input_map, output_map, key, in_place=False)
        for output_key, name in new_names.items():
            resolved.outputs[output_key].name = name

    def rename_signature(self, old: str, new: str, tags=None):
        """Rename a signature (the SignatureDef, and for TF2 its root.signatures entry)."""
        meta_graph = self._select(tags)
        if old in RESERVED_KEYS:
            rules.check_user_signature_key(old, "rename")
        rules.check_user_signature_key(new, "rename a signature to")
        proto = self._signature_def(meta_graph, old)
        if new == old:
            return
        if new in meta_graph.proto.signature_def:
            raise SavedModelError(
                f"{self._where(meta_graph, new)} already exists; remove it first or choose "
                "another name.")
        copy = meta_graph_pb2.SignatureDef()
        copy.CopyFrom(proto)
        del meta_graph.proto.signature_def[old]
        meta_graph.proto.signature_def[new].CopyFrom(copy)
        if meta_graph.tf2:
            objectgraph.rename_signature(meta_graph.proto.object_graph_def, old, new)
        meta_graph.edited.discard(old)
        meta_graph.edited.add(new)
        self._changed = True

    def remove_signature(self, key: str, tags=None):
        """Remove a signature (its graph nodes stay: other signatures may share them)."""
        meta_graph = self._select(tags)
        if key in RESERVED_KEYS:
            rules.check_user_signature_key(key, "remove")
        self._signature_def(meta_graph, key)
        del meta_graph.proto.signature_def[key]
        if meta_graph.tf2:
            objectgraph.remove_signature(meta_graph.proto.object_graph_def, key)
        meta_graph.edited.discard(key)
        self._changed = True

    def rename_input(self, signature_key: str, old: str, new: str, tags=None):
        """Rename an input key of a signature (TF2: its function's keyword argument too)."""
        self._rename_tensor_key(signature_key, old, new, tags, "input")

    def rename_output(self, signature_key: str, old: str, new: str, tags=None):
        """Rename an output key of a signature (TF2: the key its function returns too)."""
        self._rename_tensor_key(signature_key, old, new, tags, "output")

    def _rename_tensor_key(self, signature_key, old, new, tags, what):
        meta_graph = self._select(tags)
        if signature_key in RESERVED_KEYS:
            rules.check_user_signature_key(signature_key, f"rename {what}s of")
        proto = self._signature_def(meta_graph, signature_key)
        trial = meta_graph_pb2.SignatureDef()
        trial.CopyFrom(proto)
        rename_key(trial.inputs if what == "input" else trial.outputs, old, new, what,
                   signature_key)
        if old == new:
            return
        if meta_graph.tf2 and signature_key in objectgraph.signature_children(
                meta_graph.proto.object_graph_def):
            function = objectgraph.SignatureFunction(meta_graph.proto, meta_graph.graph,
                                                     signature_key)
            if (sorted(function.input_keys) != sorted(proto.inputs)
                    or sorted(function.output_keys) != sorted(proto.outputs)):
                raise SavedModelError(
                    f"{self._where(meta_graph, signature_key)}: its SignatureDef keys differ "
                    "from its function's keyword arguments/outputs, so a rename cannot keep "
                    "tf.saved_model.load and TF1 loaders in agreement.")
            rename = (lambda k: new if k == old else k)
            input_map = {(rename(k) if what == "input" else k): i
                         for i, k in enumerate(function.input_keys)}
            output_map = {(rename(k) if what == "output" else k): i
                          for i, k in enumerate(function.output_keys)}
            names = objectgraph.rewrite_signature_function(
                meta_graph.proto, meta_graph.graph, function, input_map, output_map,
                signature_key, in_place=True)
            for key, name in names.items():
                trial.outputs[key].name = name
        proto.CopyFrom(trial)
        meta_graph.edited.add(signature_key)
        self._changed = True

    def set_method_name(self, key: str, method_name: str, tags=None):
        """Set a signature's method_name (predict, classify, regress, or a custom one)."""
        meta_graph = self._select(tags)
        proto = self._signature_def(meta_graph, key)
        if not isinstance(method_name, str) or not method_name:
            raise SavedModelError(f"method_name must be a non-empty string such as "
                                  f"{PREDICT_METHOD!r}; got {method_name!r}.")
        proto.method_name = method_name
        rules.check_method(proto, self._where(meta_graph, key))
        self._changed = True

    # --- metagraphs -------------------------------------------------------------
    def add_meta_graph(self, tags, signatures: dict | None = None, copy_from=None,
                       allow_empty: bool = False):
        """Add a metagraph sharing a graph and the variables, as TF's add_meta_graph does.

        The graph, saver, collections and assets come from the metagraph ``copy_from``
        (tags), the only metagraph, or (in a new model) the Graph being composed.
        ``signatures``: ``{key: signature(...)}``; those of the source are not copied.
        """
        tag_list = _tag_list(tags)
        tag_set = frozenset(tag_list)
        rules.check_tag_set(tag_set, allow_empty)
        if tag_set in self.tag_sets:
            raise SavedModelError(
                f"A metagraph with the tag-set {format_tag_set(tag_set)} already exists; "
                "TensorFlow would load only the first of two. Choose other tags, or change the "
                "existing ones with set_tags(old, new).")
        if copy_from is None and not self._metagraphs:
            proto = meta_graph_pb2.MetaGraphDef()
            graph = self._graph
        else:
            source = self._select(copy_from)
            proto = meta_graph_pb2.MetaGraphDef()
            proto.CopyFrom(source.proto)
            proto.ClearField("object_graph_def")
            for key in list(proto.signature_def):
                if key not in RESERVED_KEYS:
                    del proto.signature_def[key]
            graph = source.graph
        del proto.meta_info_def.tags[:]
        proto.meta_info_def.tags.extend(tag_list)
        if any(m.tf2 for m in self._metagraphs):
            warnings.warn(
                f"Adding the metagraph {format_tag_set(tag_set)} to a TF2 SavedModel changes how "
                "TensorFlow loads it: tf.saved_model.load uses its TF2 object graph only when the "
                "SavedModel has exactly one metagraph; with several it falls back to the TF1 path "
                "(load_v1_in_v2): tags= becomes required, signatures are pruned from the graph "
                "by their SignatureDefs, and the restored object has no tf.functions, Keras "
                "layers or other attributes of the original.", SavedModelWarning, stacklevel=2)
        meta_graph = _MetaGraph(proto, graph, allow_empty_tags=allow_empty)
        self._metagraphs.append(meta_graph)
        self._changed = True
        for key, value in (signatures or {}).items():
            rules.check_user_signature_key(key, "add")
            if isinstance(value, dict):
                value = signature(**value)
            if not isinstance(value, meta_graph_pb2.SignatureDef):
                raise SavedModelError(f"signatures[{key!r}] must come from sm_notebook.signature("
                                      f"...) or be a dict of its arguments; got {value!r}.")
            self._install_signature(meta_graph, key, value)
        return meta_graph.tag_set

    def set_tags(self, old, new, allow_empty: bool = False, index: int | None = None):
        """Give the metagraph with tag-set ``old`` the tag-set ``new``."""
        meta_graph = self._select(old, index)
        tag_list = _tag_list(new, "new")
        tag_set = frozenset(tag_list)
        rules.check_tag_set(tag_set, allow_empty)
        for other in self._metagraphs:
            if other is not meta_graph and other.tag_set == tag_set:
                raise SavedModelError(
                    f"Another metagraph already has the tag-set {format_tag_set(tag_set)}; "
                    "two equal tag-sets make TensorFlow load only the first. Choose other tags.")
        if meta_graph.tf2:
            warnings.warn(
                f"Retagging a TF2 SavedModel: tf.saved_model.load(path, tags=...) must now name "
                f"{format_tag_set(tag_set)} (or omit tags).", SavedModelWarning, stacklevel=2)
        del meta_graph.proto.meta_info_def.tags[:]
        meta_graph.proto.meta_info_def.tags.extend(tag_list)
        meta_graph.allow_empty_tags = allow_empty
        self._changed = True

    def remove_meta_graph(self, tags, index: int | None = None):
        """Remove the metagraph with tag-set ``tags`` (variables and assets stay)."""
        meta_graph = self._select(tags, index)
        self._metagraphs.remove(meta_graph)
        self._changed = True

    # --- assets ---------------------------------------------------------------------
    def add_asset(self, path, name: str | None = None, tags=None) -> Tensor:
        """Copy a file into assets/ on save and record it in the metagraph.

        Adds a string Const holding the asset's name (loaders feed the asset's real
        path to it), an AssetFileDef, the ``saved_model_assets`` collection entry TF1
        loaders read, and for a TF2 model a SavedAsset node under the root object.
        Returns the path tensor, for ops that read the file (e.g. table initializers).
        """
        source = _user_path(path, "add_asset(path)")
        if not source.is_file():
            raise SavedModelError(f"Asset {str(path)!r} is not a file; pass the path of the file "
                                  "to copy into assets/.")
        name = source.name if name is None else name
        if (not isinstance(name, str) or not name or os.path.isabs(name)
                or ".." in Path(name).parts or name.startswith(("/", "\\"))):
            raise SavedModelError(f"Asset name {name!r} must be a relative path inside assets/, "
                                  "e.g. 'vocab.txt'.")
        name = Path(name).as_posix()
        if name in self._assets and Path(self._assets[name]).resolve() != source.resolve():
            raise SavedModelError(
                f"assets/{name} already exists in this model; pass name= to store the file "
                "under another name.")
        meta_graph = self._select(tags)
        graph = meta_graph.graph
        node_name = graph.unique_name("asset_path/" + _node_safe(name))
        tensor = graph.constant(name.encode(), name=node_name)
        asset = meta_graph_pb2.AssetFileDef(filename=name)
        asset.tensor_info.name = tensor.name
        asset.tensor_info.dtype = DT_STRING
        asset.tensor_info.tensor_shape.CopyFrom(shape_to_proto(()))
        if meta_graph.tf2:
            meta_graph.proto.asset_file_def.append(asset)
            objectgraph.add_asset_node(meta_graph.proto.object_graph_def,
                                       len(meta_graph.proto.asset_file_def) - 1,
                                       _attribute_safe(name))
        else:
            _merge_asset_collection(meta_graph.proto)
            meta_graph.proto.asset_file_def.append(asset)
            meta_graph.proto.collection_def[ASSETS_COLLECTION].any_list.value.append(pack_any(asset))
            meta_graph.proto.collection_def[ASSET_FILEPATHS_COLLECTION].node_list.value.append(
                tensor.name)
        self._assets[name] = source.absolute()
        self._changed = True
        return tensor

    # --- saving ---------------------------------------------------------------------
    def _unchanged(self) -> bool:
        return (not self._changed and self._source_pb is not None
                and [m.graph.version for m in self._metagraphs] == self._source_versions)

    def validate(self):
        """Check every rule a save checks; raises SavedModelError on the first breach."""
        if not self._metagraphs:
            raise SavedModelError("The model has no metagraph; add one with "
                                  "builder.add_meta_graph('serve') before saving.")
        rules.check_unique_tag_sets(self.tag_sets)
        for meta_graph in self._metagraphs:
            rules.check_tag_set(meta_graph.tag_set, meta_graph.allow_empty_tags)
            for key in sorted(meta_graph.edited):
                if key in meta_graph.proto.signature_def:
                    resolve_signature(meta_graph.graph, meta_graph.proto.signature_def[key],
                                      self._where(meta_graph, key))
        if self._source_problems:
            shown = "; ".join(self._source_problems[:5])
            more = len(self._source_problems) - 5
            raise SavedModelError(
                f"The source export {str(self._source_dir)!r} has entries a save will not copy: "
                f"{shown}{f' and {more} more' if more > 0 else ''}. Links must stay inside the "
                "export and files must be regular files (models are untrusted input); replace "
                "them with the files themselves.")
        for name, source in self._assets.items():
            if not os.path.lexists(source):
                raise SavedModelError(f"Asset {name!r}: its source file {str(source)!r} no "
                                      "longer exists.")
            checked_source(source, self._source_dir)

    def save(self, export_dir, overwrite: bool = False, as_text: bool = False) -> Path:
        """Write the SavedModel atomically; returns the export directory.

        An existing ``export_dir`` is refused unless ``overwrite=True``; saving over the
        model this Builder was read from is safe (its files stay until the final rename).
        fingerprint.pb is copied when nothing changed; after edits a fresh one is computed
        (as TensorFlow's CreateFingerprintDef would) when the source had one or the model
        is TF2, so it is never stale.
        """
        export_dir = _user_path(export_dir, "save(export_dir)")
        self.validate()
        plan = self._plan(as_text)
        return write_export(export_dir, plan, overwrite=overwrite)

    def _plan(self, as_text: bool) -> ExportPlan:
        model = saved_model_pb2.SavedModel(saved_model_schema_version=self._schema_version or 1)
        built: dict[int, tuple] = {}
        new_variables: dict[str, tuple] = {}
        for meta_graph in self._metagraphs:
            out = model.meta_graphs.add()
            out.CopyFrom(meta_graph.proto)
            key = id(meta_graph.graph)
            if key not in built:
                built[key] = self._graph_with_saver(meta_graph, new_variables)
            graph_def, saver_def, collections = built[key]
            out.graph_def.CopyFrom(graph_def)
            if saver_def is not None:
                out.saver_def.CopyFrom(saver_def)
                for name, values in collections.items():
                    out.collection_def[name].bytes_list.ClearField("value")
                    out.collection_def[name].bytes_list.value.extend(values)
        plan = ExportPlan(saved_model=model, as_text=as_text, assets=dict(self._assets),
                          new_variables=list(new_variables.values()))
        if self._source_dir is not None:
            plan.source_dir = self._source_dir
            plan.variables_prefix = self._source_dir / files.VARIABLES_PREFIX
            plan.extra_files = dict(self._extra_files)
        if self._unchanged() and not as_text:
            plan.verbatim_pb = self._source_pb
            plan.fingerprint = self._source_fingerprint
        else:
            plan.fresh_fingerprint = (self._source_fingerprint is not None
                                      or any(len(mg.object_graph_def.nodes) for mg in model.meta_graphs))
        return plan

    def _graph_with_saver(self, meta_graph: _MetaGraph, new_variables: dict):
        graph = meta_graph.graph
        records = list(graph.variables.values())
        if not records:
            return graph.graph_def, None, {}
        if meta_graph.proto.saver_def.restore_op_name:
            raise SavedModelError(
                f"The graph of {format_tag_set(meta_graph.tag_set)} already has a saver (its "
                f"variables are restored by {meta_graph.proto.saver_def.restore_op_name!r}); "
                f"adding variables ({', '.join(sorted(graph.variables))}) to it is not "
                "supported. Use constants (graph.constant) for new values instead.")
        if self._source_dir is not None and (
                self._source_dir / (files.VARIABLES_PREFIX + ".index")).is_file():
            raise SavedModelError(
                "The source SavedModel already has a checkpoint; adding variables to it is not "
                "supported. Use constants (graph.constant) for new values instead.")
        for record in records:
            if record.name in new_variables and new_variables[record.name][1] is not record.value:
                raise SavedModelError(
                    f"Two graphs define a variable {record.name!r}; the checkpoint holds one "
                    "value per name. Rename one of them.")
            new_variables[record.name] = (record.name, record.value, record.dtype)
        work = Graph(graph.graph_def)
        for record in records:
            work.variables[record.name] = record
        saver_def = add_saver(work, records)
        all_defs, trainable = variable_defs(records)
        collections = {"variables": all_defs}
        if trainable:
            collections["trainable_variables"] = trainable
        return work.graph_def, saver_def, collections


#: Files and directories of an export that the Builder writes itself; the source's
#: other files (assets.extra/, Keras's keras_metadata.pb, ...) are carried over.
_MANAGED = frozenset({files.SAVED_MODEL_PB, files.SAVED_MODEL_PBTXT, files.FINGERPRINT_PB,
                      files.VARIABLES_DIR, files.ASSETS_DIR})


def _merge_asset_collection(proto):
    """Copy the ``saved_model_assets`` collection into ``asset_file_def``.

    Loaders read asset_file_def when it is non-empty and the collection only otherwise
    (loader_impl.get_asset_tensors, loader.cc GetAssetFileDefs), so once a new asset
    goes to asset_file_def the older ones must be there too.
    """
    if ASSETS_COLLECTION not in proto.collection_def:
        return
    present = {(a.filename, a.tensor_info.name) for a in proto.asset_file_def}
    for value in proto.collection_def[ASSETS_COLLECTION].any_list.value:
        asset = unpack_any(value)
        if (asset.filename, asset.tensor_info.name) not in present:
            proto.asset_file_def.append(asset)
            present.add((asset.filename, asset.tensor_info.name))


def _node_safe(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-/]", "_", text).strip("/")
    return cleaned if cleaned and cleaned[0].isalnum() else "asset" + ("_" + cleaned if cleaned else "")


def _attribute_safe(text: str) -> str:
    cleaned = re.sub(r"\W", "_", Path(text).stem or text)
    return cleaned if cleaned and not cleaned[0].isdigit() else "asset_" + cleaned


def _user_path(value, what: str) -> Path:
    """A path argument as a Path; a SavedModelError for anything else (None, numbers)."""
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise SavedModelError(f"{what} takes a file system path (str or pathlib.Path); got "
                              f"{value!r} ({type(value).__name__}).")
    return Path(value)
