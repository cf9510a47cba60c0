"""Pieces the editors share: loading the description, building and saving their edits, and the
Save bar with overwrite confirmation."""
from __future__ import annotations

import copy
import html
from pathlib import Path

import ipywidgets as W

from ...render import SEVERITY_COLORS, OK_COLOR, MUTED


def load_info(path_or_info):
    """A SavedModelInfo from a path (inspected now) or an existing SavedModelInfo."""
    if hasattr(path_or_info, "meta_graphs") and hasattr(path_or_info, "export_dir"):
        return path_or_info
    import sm_notebook
    return sm_notebook.inspect(path_or_info)


def builder_with_edits(path, edits):
    """A Builder for the model at ``path`` with ``edits`` applied (nothing written)."""
    from ..edits import apply_edits, load_builder
    builder = load_builder(path)
    apply_edits(builder, edits)
    return builder


def save_edited(editor, export_dir=None, overwrite=False) -> Path:
    """Write ``editor.builder`` (atomic) to ``export_dir``, by default the Save bar's target
    (a new sibling directory); saving over the editor's own model reloads it."""
    target = Path(export_dir or editor.save_bar.target.value).expanduser()
    editor.builder.save(target, overwrite=overwrite)
    if target.resolve() == Path(editor.path).resolve():
        editor.reload()
    return target


def default_save_target(path) -> Path:
    """Where an editor saves unless told otherwise: a new sibling ``<name>_edited`` (then
    ``_edited_2``, ...), never the model being edited."""
    source = Path(path).expanduser().resolve()
    candidate = source.with_name(f"{source.name}_edited")
    number = 2
    while candidate.exists():
        candidate = source.with_name(f"{source.name}_edited_{number}")
        number += 1
    return candidate


def initial_meta_graph(info, tags=None, signature=None):
    """The metagraph to open on: by exact tag-set, else the first holding ``signature``, else #0."""
    if tags is not None:
        return info.meta_graph(tags)
    holders = [mg for mg in info.meta_graphs if signature in mg.signatures]
    return holders[0] if holders else info.meta_graphs[0]


def message_html(text: str, severity: str | None = None) -> str:
    """One line in the severity's colour (None: muted, "ok": green)."""
    color = OK_COLOR if severity == "ok" else SEVERITY_COLORS[severity][0] if severity else MUTED
    return f'<span style="color:{color}">{html.escape(text)}</span>'


class TrialBuilders:
    """Fresh Builders for one model, to try edits on as the user types (read once, then copied)."""

    def __init__(self, path):
        self.path = path
        self._pristine = None

    def fresh(self):
        from ..edits import load_builder
        if self._pristine is None:
            self._pristine = load_builder(self.path)
        try:
            return copy.deepcopy(self._pristine)
        except Exception:  # a Builder that cannot be copied: read it again
            return load_builder(self.path)

    def check(self, edits) -> tuple[list[str], list[str]]:
        """(errors, warnings) the Builder gives for ``edits``."""
        from ..edits import check_edits
        return check_edits(self.fresh(), edits) if edits else ([], [])


class SaveBar(W.VBox):
    """Target directory, Save, and a confirmation step before replacing an existing directory.

    ``on_save(target: Path, overwrite: bool) -> str`` does the writing and returns
    a message; a SavedModelError it raises is shown in the bar.
    """

    def __init__(self, default_target, on_save, label="Save"):
        self.on_save = on_save
        self.target = W.Text(value=str(default_target), description="save to",
                             layout=W.Layout(width="520px"))
        self.save_button = W.Button(description=label, button_style="primary", icon="save")
        self.confirm_button = W.Button(description="Overwrite", button_style="danger")
        self.cancel_button = W.Button(description="Cancel")
        self.confirm_box = W.HBox([self.confirm_button, self.cancel_button],
                                  layout=W.Layout(display="none"))
        self.status = W.HTML()
        super().__init__([W.HBox([self.target, self.save_button]), self.confirm_box, self.status])
        self.save_button.on_click(lambda _: self.request())
        self.confirm_button.on_click(lambda _: self._write(overwrite=True))
        self.cancel_button.on_click(lambda _: self._cancel())

    def __repr__(self):
        return f"<SaveBar target={self.target.value!r}>"

    @property
    def awaiting_confirmation(self) -> bool:
        return self.confirm_box.layout.display != "none"

    def request(self):
        """What the Save button does: write, or ask first when the target exists."""
        target = Path(self.target.value).expanduser()
        if target.exists():
            self.confirm_box.layout.display = "flex"
            self.status.value = message_html(f"{target} exists. Overwrite it?", "warning")
            return
        self._write(overwrite=False)

    def _cancel(self):
        self.confirm_box.layout.display = "none"
        self.status.value = message_html("Not saved.")

    def clear(self):
        """Forget the last save's status and any pending confirmation (after a new edit)."""
        self.confirm_box.layout.display = "none"
        self.status.value = ""

    def allow(self, allowed: bool, reason: str = ""):
        """Enable Save, or disable it with ``reason`` as its tooltip."""
        self.save_button.disabled = not allowed
        self.save_button.tooltip = "" if allowed else reason

    def _write(self, overwrite):
        from ...errors import SavedModelError
        self.confirm_box.layout.display = "none"
        try:
            message = self.on_save(Path(self.target.value).expanduser(), overwrite)
        except (SavedModelError, OSError) as exc:  # permission denied, disk full: shown here
            self.status.value = message_html(str(exc), "error")
            return
        self.status.value = message_html(message, "ok")
