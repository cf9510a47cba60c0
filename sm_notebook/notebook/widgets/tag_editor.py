"""Tag-set editor: edit each metagraph's tags, with live diagnostics before anything is written."""
from __future__ import annotations

from types import SimpleNamespace

import ipywidgets as W

from ... import render as display
from ..edits import Edit, format_edits, parse_tag_set
from ._common import (SaveBar, TrialBuilders, builder_with_edits, default_save_target, load_info,
                      message_html, save_edited)

TAG_PROBLEM_CODES = ("duplicate-tag-set", "empty-tag-set", "split-string-tag", "misspelled-tag",
                     "ambiguous-serve", "no-plain-serve")


def tag_set_problems(info, tag_sets) -> list:
    """The diagnostics (sm_notebook.diagnose's tag checks) the model would have with these tag-sets."""
    from ..._proto import saved_model_pb2
    from ...diagnose import SEVERITY_ORDER, check_tag_sets
    proto = saved_model_pb2.SavedModel()
    for mg, tags in zip(info.meta_graphs, tag_sets):
        new = proto.meta_graphs.add()
        new.meta_info_def.tags.extend(sorted(tags))
        for key, sig in mg.proto.signature_def.items():
            new.signature_def[key].CopyFrom(sig)
    light = SimpleNamespace(proto=proto, meta_graphs=[SimpleNamespace(index=mg.index, tags=frozenset(tags))
                                                      for mg, tags in zip(info.meta_graphs, tag_sets)])
    return sorted(check_tag_sets(light), key=lambda p: SEVERITY_ORDER[p.severity])


class TagSetEditor(W.VBox):
    """Edit tag-sets per metagraph; ``set_tags(index, tags)``, ``problems``, ``edits``, ``save()``."""

    def __init__(self, path_or_info, save_to=None, save_bar=True):
        self.on_change = None  # called after every edit (the ModelEditor listens)
        self.info = load_info(path_or_info)
        self.path = self.info.export_dir
        self._trials = TrialBuilders(self.path)
        self.fields = []
        self.rows = W.VBox()
        self.diagnostics = W.HTML()
        self.preview = W.HTML()
        self.save_bar = SaveBar(save_to or default_save_target(self.path), self._save_from_bar)
        self.save_bar.layout.display = None if save_bar else "none"
        super().__init__([W.HTML("<b>Tag-sets</b> (comma-separated tags per metagraph)"), self.rows,
                          self.diagnostics, self.preview, self.save_bar])
        self._build_rows()

    def _build_rows(self):
        self.fields, rows = [], []
        for mg in self.info.meta_graphs:
            field = W.Text(value=", ".join(sorted(mg.tags)), placeholder="no tags (empty tag-set)",
                           continuous_update=True, layout=W.Layout(width="260px"))
            field.observe(lambda _: self._refresh(), names="value")
            self.fields.append(field)
            sigs = ", ".join(k for k in mg.signatures if not k.startswith("__saved_model")) or "no signatures"
            rows.append(W.HBox([W.HTML(f"<b>#{mg.index}</b>", layout=W.Layout(width="36px")), field,
                                W.HTML(display.muted_html(f"was {display.tags_text(mg.tags)} · {sigs}"))]))
        self.rows.children = rows
        self._refresh()

    def __repr__(self):
        sets = ", ".join(display.tags_text(t) for t in self.tag_sets)
        return f"<TagSetEditor {str(self.path)!r}: [{sets}], {len(self.edits)} edit(s)>"

    @property
    def tag_sets(self) -> list[frozenset]:
        """The tag-sets as currently edited, in metagraph order."""
        return [parse_tag_set(f.value) for f in self.fields]

    def set_tags(self, index: int, tags):
        """Set metagraph ``index``'s tags (an iterable, or 'serve,gpu' text)."""
        self.fields[index].value = tags if isinstance(tags, str) else ", ".join(sorted(tags))
        return self

    @property
    def problems(self) -> list:
        """Tag diagnostics for the edited tag-sets, worst first."""
        return tag_set_problems(self.info, self.tag_sets)

    @property
    def edits(self) -> list[Edit]:
        """One ``tags`` edit per changed metagraph."""
        result = []
        old_sets = self.info.tag_sets
        for mg, new in zip(self.info.meta_graphs, self.tag_sets):
            if new != mg.tags:  # a tag-set shared by several metagraphs is named by index too
                options = {"index": mg.index} if old_sets.count(mg.tags) > 1 else {}
                result.append(Edit("tags", (mg.tags, new), options=options))
        return result

    def check(self) -> tuple[list[str], list[str]]:
        """(errors, warnings) from the Builder's rules for these edits (diagnostics aside)."""
        return self._trials.check(self.edits)

    @property
    def cell_text(self) -> str:
        """The same edits as a %%savedmodel cell."""
        return format_edits(self.edits)

    @property
    def builder(self):
        """A Builder for the model with these edits applied (nothing written)."""
        return builder_with_edits(self.path, self.edits)

    def save(self, export_dir=None, overwrite=False):
        """Write the edited model (default: back to its own directory, which needs overwrite=True)."""
        return save_edited(self, export_dir, overwrite)

    def reload(self):
        """Read the model again (after saving over it) and forget the edits."""
        self.info = load_info(self.path)
        self._trials = TrialBuilders(self.path)
        self._build_rows()
        return self

    def _save_from_bar(self, target, overwrite):
        if not self.edits:
            return "Nothing to save: no tag-set changed."
        count = len(self.edits)
        self.save(target, overwrite)
        return f"Saved {count} tag-set change(s) to {target}."

    def _refresh(self):
        problems = self.problems
        errors, notes = self.check()
        self.save_bar.clear()
        self.save_bar.allow(bool(self.edits) and not errors, "; ".join(errors) or "no changes yet")
        if self.on_change is not None:
            self.on_change()
        lines = "".join(f"<div>{message_html(e, 'error')}</div>" for e in errors) + \
            "".join(f"<div>{message_html(n, 'warning')}</div>" for n in notes)
        if problems:
            self.diagnostics.value = display.box_html(lines + display.problems_table_html(problems))
        else:
            self.diagnostics.value = lines + message_html("No tag-set problems.", "ok")
        text = self.cell_text
        self.preview.value = (display.box_html(display.muted_html("as a %%savedmodel cell:")
                                               + display.pre_html(text)) if text
                              else display.muted_html("No changes yet."))
