"""Signature editor: add, rename and remove signatures; pick tensors; validate; preview; save.

Every control has a Python twin (`select`, `new_signature`, `set_key`, `add_output`,
`save`, ...), and the edits the controls make are `Edit` objects of the
``%%savedmodel`` cell format, shown as cell text in the preview.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import ipywidgets as W

from ...errors import SavedModelError
from ... import render as display
from ..edits import METHOD_NAMES, Edit, format_edits
from ._common import (SaveBar, TrialBuilders, builder_with_edits, default_save_target,
                      initial_meta_graph, load_info, message_html, save_edited)

NEW = "\u2795 new signature"
MAX_PICKER_ROWS = 200


@dataclass(frozen=True)
class GraphTensor:
    """A tensor of the graph a signature can name: ``node:index``, its dtype and shape if known."""
    name: str
    dtype: str          # DT_* name, or "" when the graph does not say
    shape: tuple | None
    op: str

    @property
    def label(self) -> str:
        dtype = display.dtype_text(self.dtype) if self.dtype else "?"
        return f"{self.name}  {dtype} {display.shape_text(self.shape)}  [{self.op}]"


def graph_tensors(mg) -> list[GraphTensor]:
    """Every output of every node of a metagraph's graph, typed as the Builder types them."""
    from ...builder.graph import Graph
    from ...format.tensors import dtype_name
    known = {s.name: s for sig in mg.signatures.values() for s in (*sig.inputs.values(), *sig.outputs.values())}
    graph = Graph(mg.proto.graph_def)
    result = []
    for node in graph.nodes():
        for index, tensor_type in enumerate(graph.output_types(node.name)):
            name = f"{node.name}:{index}"
            spec = known.get(name)
            if spec is not None:  # the signature's TensorInfo is what the file says
                result.append(GraphTensor(name, spec.dtype, spec.shape, node.op))
                continue
            try:
                dtype = dtype_name(tensor_type.dtype) if tensor_type.dtype else ""
            except SavedModelError:  # an enum this build does not know
                dtype = ""
            result.append(GraphTensor(name, dtype, tensor_type.shape, node.op))
    return result


def default_key(tensor_name: str) -> str:
    """A signature key from a tensor name: ``dense/BiasAdd:0`` -> ``dense_BiasAdd``."""
    node, _, index = tensor_name.partition(":")
    key = re.sub(r"[^A-Za-z0-9_]+", "_", node).strip("_") or "tensor"
    return key if index in ("", "0") else f"{key}_{index}"


@dataclass
class TensorRow:
    """One input or output of a draft: its key, tensor name, and the key it had (None: new)."""
    key: str
    tensor: str
    original_key: str | None = None


@dataclass
class SignatureDraft:
    """A signature being edited, and the SignatureInfo it started from (None: a new one)."""
    tags: frozenset
    key: str
    method_name: str
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    original: object = None
    removed: bool = False
    index: int = 0      # the metagraph's position in the file

    @classmethod
    def from_signature(cls, mg, sig):
        return cls(mg.tags, sig.key, sig.method_name,
                   [TensorRow(s.key, s.name, s.key) for s in sig.inputs.values()],
                   [TensorRow(s.key, s.name, s.key) for s in sig.outputs.values()], sig, index=mg.index)

    @property
    def changed(self) -> bool:
        return bool(self.edits())

    def _rows_renamed_only(self, rows, specs) -> bool:
        """True when every row is an original tensor under its original or a new key."""
        originals = [r.original_key for r in rows]
        return (None not in originals and sorted(originals) == sorted(specs)
                and all(specs[r.original_key].name == r.tensor for r in rows))

    def edits(self) -> list[Edit]:
        """The cell-format edits that turn the original signature into this draft."""
        o = self.original
        if o is None:
            if self.removed:
                return []
            return [Edit("add", (self.key,), self.tags, {
                "inputs": {r.key: r.tensor for r in self.inputs},
                "outputs": {r.key: r.tensor for r in self.outputs}, "method": self.method_name})]
        if self.removed:
            return [Edit("remove", (o.key,), self.tags)]
        if not (self._rows_renamed_only(self.inputs, o.inputs) and self._rows_renamed_only(self.outputs, o.outputs)):
            return [Edit("remove", (o.key,), self.tags), Edit("add", (self.key,), self.tags, {
                "inputs": {r.key: r.tensor for r in self.inputs},
                "outputs": {r.key: r.tensor for r in self.outputs}, "method": self.method_name})]
        result = [Edit(f"rename_{side}", (o.key, r.original_key, r.key), self.tags)
                  for side, rows in (("input", self.inputs), ("output", self.outputs))
                  for r in rows if r.key != r.original_key]
        if self.method_name != o.method_name:
            result.append(Edit("method", (o.key, self.method_name), self.tags))
        if self.key != o.key:
            result.append(Edit("rename", (o.key, self.key), self.tags))
        return result


class SignatureEditor(W.VBox):
    """Edit the signatures of a SavedModel; everything the controls do has a Python method."""

    def __init__(self, path_or_info, tags=None, signature=None, save_to=None, save_bar=True):
        self.on_change = None  # called after every edit (the ModelEditor listens)
        self.info = load_info(path_or_info)
        self.path = self.info.export_dir
        self.drafts: dict = {}          # (metagraph index, original key or "#n" for new) -> SignatureDraft
        self._new_count = 0
        self._syncing = False
        self._trials = TrialBuilders(self.info.export_dir)
        self._tensors: dict = {}
        mg0 = initial_meta_graph(self.info, tags, signature)
        self.meta_graph_picker = W.Dropdown(
            options=[(f"#{mg.index} {display.tags_text(mg.tags)}", mg.index) for mg in self.info.meta_graphs],
            value=mg0.index, description="tag-set")
        self.signature_picker = W.Dropdown(description="signature")
        self.remove_button = W.Button(description="Remove signature", icon="trash",
                                      layout=W.Layout(width="auto"))
        self.key_field = W.Text(description="key", placeholder="signature key", continuous_update=True)
        self.method_field = W.Combobox(description="method", options=list(METHOD_NAMES.values()),
                                       ensure_option=False, continuous_update=True,
                                       layout=W.Layout(width="420px"))
        self.inputs_box = W.VBox()
        self.outputs_box = W.VBox()
        self.search = W.Text(placeholder="filter tensors by name, op or dtype", continuous_update=True,
                             description="tensors")
        self.tensor_list = W.Select(rows=8, layout=W.Layout(width="560px"))
        self.row_key = W.Text(placeholder="key (default: from the tensor)", description="as key")
        self.add_input_button = W.Button(description="+ input")
        self.add_output_button = W.Button(description="+ output")
        self.checks = W.HTML()
        self.preview = W.HTML()
        self.save_bar = SaveBar(save_to or default_save_target(self.path), self._save_from_bar)
        self.save_bar.layout.display = None if save_bar else "none"
        picker = W.VBox([W.HBox([self.search]), self.tensor_list,
                         W.HBox([self.row_key, self.add_input_button, self.add_output_button])])
        super().__init__([
            W.HBox([self.meta_graph_picker, self.signature_picker, self.remove_button]),
            W.HBox([self.key_field, self.method_field]),
            W.HTML("<b>inputs</b>"), self.inputs_box, W.HTML("<b>outputs</b>"), self.outputs_box,
            picker, self.checks, self.preview, self.save_bar])
        self.meta_graph_picker.observe(lambda _: self._on_meta_graph(), names="value")
        self.signature_picker.observe(lambda _: self._on_signature(), names="value")
        self.key_field.observe(lambda c: self._on_field("key", c.new), names="value")
        self.method_field.observe(lambda c: self._on_field("method_name", c.new), names="value")
        self.search.observe(lambda _: self._fill_tensor_list(), names="value")
        self.remove_button.on_click(lambda _: self.remove_signature())
        self.add_input_button.on_click(lambda _: self._add_from_picker("inputs"))
        self.add_output_button.on_click(lambda _: self._add_from_picker("outputs"))
        self._on_meta_graph()
        if signature is not None:
            self.select(signature)

    def __repr__(self):
        d = self.draft
        return (f"<SignatureEditor {str(self.path)!r} metagraph #{self.meta_graph_picker.value} "
                f"signature={d.key if d else None!r}, {len(self.edits)} edit(s)>")

    # ------------------------------------------------------------------ state

    @property
    def meta_graph(self):
        """The selected MetaGraphInfo."""
        return self.info.meta_graphs[self.meta_graph_picker.value]

    @property
    def draft(self) -> SignatureDraft | None:
        """The signature being edited."""
        ref = self.signature_picker.value
        return self.drafts.get((self.meta_graph.index, ref)) if ref is not None else None

    @property
    def tensors(self) -> list[GraphTensor]:
        """Tensors of the selected metagraph's graph, for the picker."""
        return self._tensors_of(self.meta_graph_picker.value)

    def _tensors_of(self, index) -> list[GraphTensor]:
        if index not in self._tensors:
            self._tensors[index] = graph_tensors(self.info.meta_graphs[index])
        return self._tensors[index]

    def find_tensors(self, query: str = "") -> list[GraphTensor]:
        """Tensors whose name, op or dtype contains every word of ``query`` (case-insensitive)."""
        words = query.lower().split()
        return [t for t in self.tensors if all(w in t.label.lower() for w in words)]

    @property
    def edits(self) -> list[Edit]:
        """All edits so far, as %%savedmodel edits (removals and renames before additions)."""
        existing = [e for d in self.drafts.values() if d.original is not None for e in d.edits()]
        added = [e for d in self.drafts.values() if d.original is None for e in d.edits()]
        return existing + added

    @property
    def cell_text(self) -> str:
        """The edits as a %%savedmodel cell."""
        return format_edits(self.edits)

    def problems(self) -> list[str]:
        """What stops the edits from being saved: the editor's checks, then the Builder's rules."""
        return self.check()[0]

    def check(self) -> tuple[list[str], list[str]]:
        """(errors, warnings): errors block saving; warnings are the Builder's SavedModelWarnings."""
        found = []
        for d in self.drafts.values():
            if not d.removed and d.changed:
                found += [f"{d.key or '(no key)'}: {p}" for p in self._draft_problems(d)]
        if found:
            return found, []
        return self._trials.check(self.edits)

    def _draft_problems(self, d) -> list[str]:
        problems = []
        if not d.key.strip():
            problems.append("the signature key is empty")
        others = [x.key for x in self.drafts.values() if x is not d and x.index == d.index and not x.removed]
        untouched = [k for k in self.info.meta_graphs[d.index].signatures if (d.index, k) not in self.drafts]
        if d.key in others + untouched:
            problems.append(f"another signature is already called {d.key!r}")
        if not d.outputs:
            problems.append("a signature needs at least one output")
        names = {t.name for t in self._tensors_of(d.index)}
        for side, rows in (("input", d.inputs), ("output", d.outputs)):
            keys = [r.key for r in rows]
            for r in rows:
                if not r.key.strip():
                    problems.append(f"an {side} has an empty key")
                if r.tensor not in names:
                    problems.append(f"{side} {r.key!r}: the graph has no tensor {r.tensor!r}")
            for k in sorted({k for k in keys if keys.count(k) > 1}):
                problems.append(f"{side} key {k!r} is used twice")
        return problems

    # ------------------------------------------------------------------ actions (Python API)

    def select_meta_graph(self, tags):
        """Edit the metagraph with exactly this tag-set."""
        self.meta_graph_picker.value = self.info.meta_graph(tags).index
        return self

    def select(self, key: str):
        """Edit the existing signature ``key`` (its current key if renamed)."""
        for ref, label in self._signature_options():
            d = self.drafts.get((self.meta_graph.index, ref))
            if ref == key or (d is not None and d.key == key):
                self.signature_picker.value = ref
                return self
        self.info.signature(key, self.meta_graph.tags)  # raises with the list of keys
        return self

    def new_signature(self, key: str = "", method_name: str = METHOD_NAMES["predict"]):
        """Start a new signature in the selected metagraph and edit it."""
        self._new_count += 1
        ref = f"#{self._new_count}"
        mg = self.meta_graph
        self.drafts[(mg.index, ref)] = SignatureDraft(mg.tags, key, method_name, index=mg.index)
        self._update_signature_options(select=ref)
        return self

    def set_key(self, key: str):
        self.key_field.value = key
        return self

    def set_method(self, method_name: str):
        """Set the method name; predict/classify/regress stand for the full names."""
        self.method_field.value = METHOD_NAMES.get(method_name, method_name)
        return self

    def add_input(self, key: str | None, tensor: str):
        return self._add_row("inputs", key, tensor)

    def add_output(self, key: str | None, tensor: str):
        return self._add_row("outputs", key, tensor)

    def remove_input(self, key: str):
        return self._remove_row("inputs", key)

    def remove_output(self, key: str):
        return self._remove_row("outputs", key)

    def rename_input(self, old: str, new: str):
        return self._rename_row("inputs", old, new)

    def rename_output(self, old: str, new: str):
        return self._rename_row("outputs", old, new)

    def remove_signature(self):
        """Mark the selected signature for removal (a new one is simply dropped)."""
        d = self._require_draft()
        d.removed = True
        if d.original is None:
            del self.drafts[(d.index, self.signature_picker.value)]
        self._update_signature_options()
        return self

    def reset(self):
        """Forget every edit."""
        self.drafts.clear()
        self._update_signature_options()
        return self

    @property
    def builder(self):
        """A Builder for the model with the edits applied (nothing written)."""
        return builder_with_edits(self.path, self.edits)

    def save(self, export_dir=None, overwrite=False):
        """Write the edited model through the Builder (atomic); an existing target needs overwrite."""
        problems = self.problems()
        if problems:
            raise SavedModelError("The edits are not valid: " + "; ".join(problems))
        return save_edited(self, export_dir, overwrite)

    def reload(self):
        """Read the model again (after saving over it) and forget the edits."""
        self.info = load_info(self.path)
        self.drafts.clear()
        self._tensors.clear()
        self._trials = TrialBuilders(self.path)
        self._update_signature_options()
        return self

    # ------------------------------------------------------------------ internals

    def _require_draft(self) -> SignatureDraft:
        d = self.draft
        if d is None:
            raise ValueError("No signature is selected; call select(key) or new_signature(key) first.")
        return d

    def _add_row(self, side, key, tensor):
        d = self._require_draft()
        if tensor not in {t.name for t in self.tensors} and ":" not in tensor:
            tensor = f"{tensor}:0"
        getattr(d, side).append(TensorRow(key or default_key(tensor), tensor))
        self._render_rows()
        return self

    def _find_row(self, side, key) -> TensorRow:
        d = self._require_draft()
        for row in getattr(d, side):
            if row.key == key:
                return row
        raise KeyError(f"The draft has no {side[:-1]} {key!r}; it has: {[r.key for r in getattr(d, side)]}")

    def _remove_row(self, side, key):
        d = self._require_draft()
        getattr(d, side).remove(self._find_row(side, key))
        self._render_rows()
        return self

    def _rename_row(self, side, old, new):
        self._find_row(side, old).key = new
        self._render_rows()
        return self

    def _signature_options(self):
        index = self.meta_graph.index
        options = []
        for key in self.meta_graph.signatures:
            if key.startswith("__saved_model"):  # TF2's init op: not a signature to edit
                continue
            d = self.drafts.get((index, key))
            if d is not None and d.removed:
                continue
            label = key if d is None or d.key == key else f"{key} \u2192 {d.key}"
            options.append((key, label))
        for (t, ref), d in self.drafts.items():
            if t == index and d.original is None:
                options.append((ref, f"{d.key or '(new)'} (new)"))
        return options

    def _update_signature_options(self, select=None):
        options = self._signature_options()
        current = select if select is not None else self.signature_picker.value
        refs = [ref for ref, _ in options]
        self._syncing = True
        try:
            self.signature_picker.options = [(label, ref) for ref, label in options] + [(NEW, None)]
            self.signature_picker.value = current if current in refs else (refs[0] if refs else None)
        finally:
            self._syncing = False
        self._on_signature()

    def _on_meta_graph(self):
        self._fill_tensor_list()
        self._update_signature_options()

    def _on_signature(self):
        if self._syncing:
            return
        ref = self.signature_picker.value
        mg = self.meta_graph
        if ref is None:  # the "new signature" entry
            self.new_signature()
            return
        if (mg.index, ref) not in self.drafts:
            self.drafts[(mg.index, ref)] = SignatureDraft.from_signature(mg, mg.signatures[ref])
        d = self.draft
        self._syncing = True
        try:
            self.key_field.value = d.key
            self.method_field.value = d.method_name
        finally:
            self._syncing = False
        self._render_rows()

    def _on_field(self, name, value):
        if self._syncing or self.draft is None:
            return
        setattr(self.draft, name, value.strip() if name == "key" else value)
        self._refresh_labels()
        self._refresh_checks()

    def _refresh_labels(self):
        self._syncing = True
        try:
            value = self.signature_picker.value
            self.signature_picker.options = [(label, ref) for ref, label in self._signature_options()] + [(NEW, None)]
            self.signature_picker.value = value
        finally:
            self._syncing = False

    def _render_rows(self):
        d = self.draft
        for side, box in (("inputs", self.inputs_box), ("outputs", self.outputs_box)):
            rows = []
            for row in (getattr(d, side) if d else []):
                key = W.Text(value=row.key, continuous_update=True, layout=W.Layout(width="200px"))
                key.observe(lambda c, r=row: self._on_row_key(r, c.new), names="value")
                drop = W.Button(description="\u2715", tooltip=f"remove {row.key}", layout=W.Layout(width="36px"))
                drop.on_click(lambda _, s=side, r=row: self._drop_row(s, r))
                tensor = next((t for t in self.tensors if t.name == row.tensor), None)
                label = tensor.label if tensor else f"{row.tensor}  (not in the graph)"
                rows.append(W.HBox([key, W.HTML(display.code_html(label)), drop]))
            box.children = rows or [W.HTML(display.muted_html("none"))]
        self._refresh_labels()
        self._refresh_checks()

    def _on_row_key(self, row, value):
        row.key = value.strip()
        self._refresh_checks()

    def _drop_row(self, side, row):
        getattr(self.draft, side).remove(row)
        self._render_rows()

    def _fill_tensor_list(self):
        found = self.find_tensors(self.search.value)
        shown = found[:MAX_PICKER_ROWS]
        self.tensor_list.options = [(t.label, t.name) for t in shown]
        more = len(found) - len(shown)
        self.tensor_list.description = f"+{more} more" if more else ""

    def _add_from_picker(self, side):
        tensor = self.tensor_list.value
        if tensor is None:
            self.checks.value = message_html("Pick a tensor in the list first.", "warning")
            return
        self._add_row(side, self.row_key.value.strip() or None, tensor)
        self.row_key.value = ""

    def _refresh_checks(self):
        edits = self.edits
        self.save_bar.clear()
        if self.on_change is not None:
            self.on_change()
        if not edits:
            self.checks.value = message_html("No changes yet.")
            self.preview.value = ""
            self.save_bar.allow(False, "no changes yet")
            return
        errors, notes = self.check()
        self.save_bar.allow(not errors, "; ".join(errors))
        lines = [message_html(p, "error") for p in errors] + [message_html(n, "warning") for n in notes]
        if not errors:
            lines.insert(0, message_html(f"{len(edits)} edit(s), valid.", "ok"))
        self.checks.value = "<br>".join(lines)
        self.preview.value = display.box_html(display.muted_html("as a %%savedmodel cell:")
                                              + display.pre_html(format_edits(edits)))

    def _save_from_bar(self, target, overwrite):
        if not self.edits:
            return "Nothing to save: no signature changed."
        count = len(self.edits)
        self.save(target, overwrite)
        return f"Saved {count} edit(s) to {target}."

