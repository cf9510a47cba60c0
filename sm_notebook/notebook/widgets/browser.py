"""Model browser: metagraphs by tag-set, signatures and their tensors, variables, assets, ops,
and the selected signature's graph."""
from __future__ import annotations

import html

import ipywidgets as W

from ... import render as display
from ._common import initial_meta_graph, load_info
from ...render import pre_html


def signature_cli_text(meta_graph, key: str) -> str:
    """saved_model_cli's text for one signature (sm_notebook.showtext), or our own text."""
    try:
        from ...showtext import signature_text
        return signature_text(meta_graph.proto, key)
    except ImportError:
        return display.signature_text(meta_graph.signatures[key])


GRAPH_TAB = 4


class ModelBrowser(W.VBox):
    """Browse a SavedModel; ``select(tags, signature)`` does from Python what the controls do."""

    def __init__(self, path_or_info, tags=None, signature=None):
        self.info = load_info(path_or_info)
        self.meta_graph_picker = W.Dropdown(
            options=[(f"#{mg.index} {display.tags_text(mg.tags)}", mg.index) for mg in self.info.meta_graphs],
            description="tag-set")
        self.signature_picker = W.Select(options=[], rows=6, description="signature")
        self.signature_view = W.HTML()
        self.variables_view = W.HTML()
        self.assets_view = W.HTML()
        self.ops_view = W.HTML()
        self.graph_box = W.VBox()
        self.graph_view = None      # GraphView of the selected signature, made when the tab opens
        tabs = W.Tab(children=[W.VBox([W.HBox([self.signature_picker]), self.signature_view]),
                               self.variables_view, self.assets_view, self.ops_view, self.graph_box])
        for i, title in enumerate(("signatures", "variables", "assets", "ops", "graph")):
            tabs.set_title(i, title)
        self.tabs = tabs
        tabs.observe(lambda _: self._show_graph(), names="selected_index")
        header = W.HTML(f"<b>{html.escape(str(self.info.export_dir))}</b> "
                        f"<span style='color:var(--jp-ui-font-color2, #888)'>"
                        f"{len(self.info.meta_graphs)} metagraph(s)</span>")
        super().__init__([header, self.meta_graph_picker, tabs])
        self.meta_graph_picker.observe(lambda _: self._show_meta_graph(), names="value")
        self.signature_picker.observe(lambda _: self._show_signature(), names="value")
        if self.info.meta_graphs:
            self._show_meta_graph()
        if tags is not None or signature is not None:
            self.select(initial_meta_graph(self.info, tags, signature).tags, signature)

    def __repr__(self):
        sig = self.signature.key if self.signature else None
        return (f"<ModelBrowser {str(self.info.export_dir)!r} metagraph #{self.meta_graph_picker.value} "
                f"signature={sig!r}>")

    @property
    def meta_graph(self):
        """The selected MetaGraphInfo."""
        return self.info.meta_graphs[self.meta_graph_picker.value]

    @property
    def signature(self):
        """The selected SignatureInfo, or None."""
        key = self.signature_picker.value
        return self.meta_graph.signatures.get(key) if key else None

    @property
    def signature_text(self) -> str:
        """saved_model_cli-style text of the selected signature ('' when none)."""
        return signature_cli_text(self.meta_graph, self.signature.key) if self.signature else ""

    def select(self, tags=None, signature=None):
        """Select a metagraph by tag-set (exact, as loaders do) and/or a signature key."""
        if tags is not None:
            self.meta_graph_picker.value = self.info.meta_graph(tags).index
        if signature is not None:
            if signature not in self.meta_graph.signatures:
                self.info.signature(signature, self.meta_graph.tags)  # raises, listing the keys
            self.signature_picker.value = signature
        return self

    def _show_meta_graph(self):
        mg = self.meta_graph
        keys = list(mg.signatures)
        self.signature_picker.options = keys
        self.signature_picker.value = keys[0] if keys else None
        rows = [[display.code_html(v.name), display.esc(display.dtype_text(v.dtype)),
                 display.esc(display.shape_text(v.shape)), display.code_html(v.checkpoint_key)] for v in mg.variables]
        self.variables_view.value = display.box_html(
            display.table_html(["name", "dtype", "shape", "checkpoint key"], rows) if rows
            else display.muted_html("no variables"))
        assets = [[display.code_html(a.filename), display.code_html(a.tensor_name),
                   "present" if a.exists else display.badge_html("error", "missing")] for a in mg.assets]
        self.assets_view.value = display.box_html(
            display.table_html(["file", "tensor", ""], assets) if assets else display.muted_html("no assets"))
        self.ops_view.value = display.box_html(display.op_census_html(mg.op_counts))
        self._show_signature()

    def _show_signature(self):
        sig = self.signature
        self.graph_view = None
        self._show_graph()
        if sig is None:
            self.signature_view.value = display.box_html(display.muted_html("this metagraph has no signatures"))
            return
        self.signature_view.value = display.signature_html(sig) + pre_html(self.signature_text)

    def show_graph(self):
        """Open the graph tab on the selected signature's graph; returns its GraphView (or None)."""
        self.tabs.selected_index = GRAPH_TAB
        self._show_graph()
        return self.graph_view

    def _show_graph(self):
        if self.tabs.selected_index != GRAPH_TAB:
            return
        sig = self.signature
        if sig is None:
            self.graph_box.children = [W.HTML(display.muted_html("no signature selected"))]
            return
        if self.graph_view is not None and self.graph_view.signature == sig.key:
            return
        from ..graph_view import BUNDLE, BUILD_COMMAND
        self.graph_view = self.info.graph(sig.key, tags=self.meta_graph.tags)
        if BUNDLE.exists():
            self.graph_box.children = [self.graph_view.widget]
            return
        note = display.muted_html(f"Static picture; the interactive graph needs {BUILD_COMMAND}.")
        self.graph_box.children = [W.HTML(note + self.graph_view.to_svg())]
