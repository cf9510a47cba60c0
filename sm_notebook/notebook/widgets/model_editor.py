"""One editor for a model: signatures, tag-sets and assets as tabs, one Save, a full diff preview.

The tabs are the SignatureEditor and TagSetEditor (their own Save bars hidden) and an
AssetEditor; their edits are applied together in one Builder: signature and asset edits
first (they name metagraphs by their current tag-sets), tag-set changes last.
"""
from __future__ import annotations

from pathlib import Path

import ipywidgets as W

from ... import render as display
from ...errors import SavedModelError
from ..edits import Edit, format_edits
from ._common import (SaveBar, TrialBuilders, builder_with_edits, default_save_target,
                      initial_meta_graph, load_info, message_html, save_edited)
from .signature_editor import SignatureEditor
from .tag_editor import TagSetEditor


class AssetEditor(W.VBox):
    """The assets of every metagraph, and files to add as new assets (``add_asset``)."""

    def __init__(self, path_or_info, tags=None):
        self.on_change = None
        self.info = load_info(path_or_info)
        self.path = self.info.export_dir
        self.pending: list[Edit] = []
        self.listing = W.HTML()
        self.file_field = W.Text(description="file", placeholder="path of a file to add",
                                 layout=W.Layout(width="420px"))
        self.name_field = W.Text(description="as", placeholder="name in assets/ (default: file name)")
        self.meta_graph_picker = W.Dropdown(
            options=[(f"#{mg.index} {display.tags_text(mg.tags)}", mg.index) for mg in self.info.meta_graphs],
            value=initial_meta_graph(self.info, tags).index, description="tag-set")
        self.add_button = W.Button(description="+ asset", icon="plus")
        self.pending_box = W.VBox()
        self.status = W.HTML()
        super().__init__([self.listing, W.HBox([self.file_field, self.name_field]),
                          W.HBox([self.meta_graph_picker, self.add_button]), self.pending_box, self.status])
        self.add_button.on_click(lambda _: self._add_from_fields())
        self._render()

    def __repr__(self):
        return f"<AssetEditor {str(self.path)!r}: {len(self.pending)} asset(s) to add>"

    @property
    def edits(self) -> list[Edit]:
        return list(self.pending)

    def add_asset(self, path, name: str | None = None, tags=None):
        """Add the file at ``path`` as an asset of the metagraph ``tags`` (default: the picked one)."""
        source = Path(path).expanduser()
        if not source.is_file():
            raise SavedModelError(f"Cannot add asset {str(path)!r}: no such file. Give the path of "
                                  "an existing file (it is copied into assets/ when saving).")
        mg = self.info.meta_graph(tags) if tags is not None else self.info.meta_graphs[self.meta_graph_picker.value]
        self.pending.append(Edit("add_asset", (str(source), name or None), mg.tags))
        self._render()
        return self

    def remove_pending(self, index: int):
        del self.pending[index]
        self._render()
        return self

    def reload(self):
        self.info = load_info(self.path)
        self.pending.clear()
        self._render()
        return self

    def _add_from_fields(self):
        try:
            self.add_asset(self.file_field.value.strip(), self.name_field.value.strip() or None)
        except SavedModelError as exc:
            self.status.value = message_html(str(exc), "error")
            return
        self.file_field.value = self.name_field.value = ""

    def _render(self):
        rows = []
        for mg in self.info.meta_graphs:
            for asset in mg.assets:
                state = "present" if asset.exists else "MISSING"
                rows.append([display.esc(f"#{mg.index} {display.tags_text(mg.tags)}"),
                             display.code_html(asset.filename), display.code_html(asset.tensor_name),
                             display.esc(state) if asset.exists else display.badge_html("error", state)])
        self.listing.value = (display.table_html(["metagraph", "file", "tensor", ""], rows) if rows
                              else display.muted_html("This model has no assets."))
        items = []
        for index, edit in enumerate(self.pending):
            drop = W.Button(description="\u2715", tooltip="do not add", layout=W.Layout(width="36px"))
            drop.on_click(lambda _, i=index: self.remove_pending(i))
            items.append(W.HBox([W.HTML(display.code_html(str(edit))), drop]))
        self.pending_box.children = items
        self.status.value = ""
        if self.on_change is not None:
            self.on_change()


class ModelEditor(W.VBox):
    """Signatures, tag-sets and assets of one model as tabs, with one Save and a full diff.

    ``save(export_dir=None, overwrite=False)`` writes every tab's edits at once (default
    target: a new sibling ``<name>_edited`` directory, never the model being edited).
    """

    def __init__(self, path_or_info, tags=None, signature=None, save_to=None):
        self.info = load_info(path_or_info)
        self.path = self.info.export_dir
        self._trials = TrialBuilders(self.path)
        self.signatures = SignatureEditor(self.info, tags=tags, signature=signature, save_bar=False)
        self.tags = TagSetEditor(self.info, save_bar=False)
        self.assets = AssetEditor(self.info, tags=tags)
        self.tabs = W.Tab(children=[self.signatures, self.tags, self.assets])
        for index, title in enumerate(("Signatures", "Tag-sets", "Assets")):
            self.tabs.set_title(index, title)
        self.summary = W.HTML()
        self.diff_button = W.Button(description="Preview diff", icon="eye")
        self.diff_view = W.HTML()
        self.save_bar = SaveBar(save_to or default_save_target(self.path), self._save_from_bar)
        super().__init__([self.tabs, self.summary, W.HBox([self.diff_button]), self.diff_view, self.save_bar])
        self.diff_button.on_click(lambda _: self.show_diff())
        for part in (self.signatures, self.tags, self.assets):
            part.on_change = self._on_change
        self._on_change()

    def __repr__(self):
        return f"<ModelEditor {str(self.path)!r}: {len(self.edits)} edit(s)>"

    @property
    def edits(self) -> list[Edit]:
        """Every tab's edits in the order they are applied."""
        return self.signatures.edits + self.assets.edits + self.tags.edits

    @property
    def cell_text(self) -> str:
        """All edits as one %%savedmodel cell."""
        return format_edits(self.edits)

    def check(self) -> tuple[list[str], list[str]]:
        """(errors, warnings) for all edits together; errors block Save."""
        errors = [p for d in self.signatures.drafts.values() if not d.removed and d.changed
                  for p in self.signatures._draft_problems(d)]
        if errors:
            return errors, []
        return self._trials.check(self.edits)

    @property
    def builder(self):
        """A Builder for the model with every edit applied (nothing written)."""
        return builder_with_edits(self.path, self.edits)

    def diff(self) -> str:
        """The outline diff between the model and what saving would write (written to a
        temporary directory and read back, so it shows exactly what Save produces)."""
        from ..edits import preview_edits
        return preview_edits(self.path, self.edits)[1]

    def show_diff(self):
        """Fill the preview with the full diff (or say why it cannot be made)."""
        if not self.edits:
            self.diff_view.value = display.muted_html("No changes yet.")
            return self
        try:
            text = self.diff()
        except SavedModelError as exc:
            self.diff_view.value = message_html(str(exc), "error")
            return self
        self.diff_view.value = display.diff_html("Saving would write:", text or "(no visible change)")
        return self

    def save(self, export_dir=None, overwrite=False) -> Path:
        """Write all edits (atomic); an existing target needs ``overwrite=True``."""
        errors, _ = self.check()
        if errors:
            raise SavedModelError("The edits are not valid: " + "; ".join(errors))
        return save_edited(self, export_dir, overwrite)

    def reload(self):
        """Read the model again (after saving over it) and forget every edit."""
        self.info = load_info(self.path)
        self._trials = TrialBuilders(self.path)
        self.signatures.reload()
        self.tags.reload()
        self.assets.reload()
        return self

    def _save_from_bar(self, target, overwrite):
        count = len(self.edits)
        if not count:
            return "Nothing to save: no changes."
        self.save(target, overwrite)
        return f"Saved {count} edit(s) to {target}."

    def _on_change(self):
        self.save_bar.clear()
        self.diff_view.value = ""
        edits = self.edits
        if not edits:
            self.summary.value = message_html("No changes yet.")
            self.save_bar.allow(False, "no changes yet")
            return
        errors, notes = self.check()
        lines = [message_html(e, "error") for e in errors] + [message_html(n, "warning") for n in notes]
        if not errors:
            lines.insert(0, message_html(f"{len(edits)} edit(s) across the tabs, valid.", "ok"))
        self.summary.value = "<br>".join(lines)
        self.save_bar.allow(not errors, "; ".join(errors))
