"""``sm_notebook.inspect(path).graph()``: a signature's graph, interactive in JupyterLab, SVG elsewhere.

The graph itself (which nodes, scopes, calls, edge types, engine support) comes from
`sm_notebook.graphview.model`; the static picture from `graphview.svg` (pure Python).
In a Jupyter kernel the view is also an anywidget whose front end (built from
``notebook/graph_frontend`` by ``tools/build_frontend.sh`` into
``notebook/static/graph_view.js``, dagre included, nothing fetched at view time) draws
it with calls and scopes that expand in place, search and a details panel. Without
that bundle the view shows the SVG and says how to build it.
"""
from __future__ import annotations

import html
from pathlib import Path

from ..errors import SavedModelError
from ..graphview.model import MAIN, build_graph_model, variable_statistics
from ..graphview.svg import render_svg

BUNDLE = Path(__file__).resolve().parent / "static" / "graph_view.js"
BUILD_COMMAND = "bash tools/build_frontend.sh"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class GraphView:
    """The graph of one signature: ``to_svg()``, ``to_json()``, ``details()``, ``find()``, ``widget``."""

    def __init__(self, info, signature: str = "serving_default", tags=None):
        self.info = info
        self.model = build_graph_model(info, signature, tags)
        self._svg = None
        self._widget = None

    @property
    def signature(self) -> str:
        return self.model.signature

    def __repr__(self):
        unsupported = len({op for _, _, op, _ in self.model.unsupported()})
        return (f"<GraphView {self.signature!r} of {str(self.info.export_dir)!r}: "
                f"{len(self.model.main.nodes)} nodes, {len(self.model.bodies) - 1} function bodies, "
                f"{unsupported} op type(s) the engine cannot run>")

    def to_svg(self) -> str:
        """The collapsed top level as a standalone SVG document (no browser needed)."""
        if self._svg is None:
            self._svg = render_svg(self.model)
        return self._svg

    def to_json(self) -> str:
        """The whole graph model (every body the signature may call) as the widget receives it."""
        return self.model.to_json()

    def details(self, name: str, body: str = MAIN) -> dict:
        """What the details panel shows for node ``name`` of ``body`` (a function name, "" = main
        graph); variables add their checkpoint value's statistics."""
        if body not in self.model.bodies:
            raise SavedModelError(f"The graph of {self.signature!r} has no function body {body!r}; "
                                  f"it has: {', '.join(sorted(b for b in self.model.bodies if b)) or 'none'}.")
        nodes = self.model.bodies[body].nodes
        if name not in nodes:
            import difflib
            close = difflib.get_close_matches(name, list(nodes), n=3)
            raise SavedModelError(f"No node {name!r} in {'the main graph' if body == MAIN else body!r}"
                                  f"{'; did you mean ' + ', '.join(map(repr, close)) + '?' if close else '.'}")
        node = nodes[name]
        found = {"name": node.name, "op": node.op, "kind": node.kind, "device": node.device,
                 "attrs": dict(node.attrs), "inputs": list(node.inputs), "outputs": list(node.outputs),
                 "status": node.status, "calls": [c.function for c in node.calls]}
        if node.variable is not None:
            found["variable"] = dict(node.variable)
            found["variable"].update(variable_statistics(self.info.bundle, node.variable.get("key", "")))
        return found

    def find(self, text: str) -> list:
        """``(body, node name, op)`` of every node whose name or op type contains ``text``
        (case-insensitive), main graph first."""
        wanted = text.lower()
        return [(body.id, node.name, node.op) for body in self.model.bodies.values()
                for node in body.nodes.values() if wanted in node.name.lower() or wanted in node.op.lower()]

    @property
    def widget(self):
        """The interactive anywidget (needs the built front-end bundle, see BUILD_COMMAND)."""
        if self._widget is None:
            if not BUNDLE.exists():
                raise SavedModelError(f"The graph widget's front end is not built ({BUNDLE} is missing); "
                                      f"run `{BUILD_COMMAND}` in the sm_notebook source tree.")
            self._widget = graph_widget_class()(view=self)
        return self._widget

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self), "image/svg+xml": self.to_svg()}
        if not _in_kernel():
            return bundle
        if not BUNDLE.exists():
            bundle["text/html"] = (f'<div style="font-size:12px;color:var(--jp-ui-font-color2,#777)">'
                                   f"Static picture: the interactive graph needs its front end, built by "
                                   f"<code>{html.escape(BUILD_COMMAND)}</code>.</div>" + self.to_svg())
            return bundle
        shown = self.widget._repr_mimebundle_()   # anywidget: (data, metadata); ipywidgets: data
        data = shown[0] if isinstance(shown, tuple) else shown
        if data and WIDGET_MIME in data:
            bundle[WIDGET_MIME] = data[WIDGET_MIME]
        return bundle


def _in_kernel() -> bool:
    """True in a Jupyter kernel (where a widget can render)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    return getattr(get_ipython(), "kernel", None) is not None


_WIDGET_CLASS = None


def graph_widget_class():
    """The anywidget class (defined on first use so that anywidget loads only when needed)."""
    global _WIDGET_CLASS
    if _WIDGET_CLASS is None:
        import anywidget
        import traitlets

        class GraphWidget(anywidget.AnyWidget):
            """Front end: notebook/graph_frontend/src/index.js. Synced: the graph JSON, the
            selected node (``body\\x1fname``), and how long the last layout took."""
            _esm = BUNDLE
            graph = traitlets.Unicode("").tag(sync=True)
            selected = traitlets.Unicode("").tag(sync=True)
            height = traitlets.Int(560).tag(sync=True)
            render_ms = traitlets.Float(0.0).tag(sync=True)

            def __init__(self, view, **kwargs):
                super().__init__(graph=view.to_json(), **kwargs)
                self.view = view
                self.on_msg(self._answer)

            def __repr__(self):
                return f"<GraphWidget {self.view.signature!r}>"

            def _answer(self, _, content, buffers):
                if not isinstance(content, dict) or content.get("type") != "details":
                    return
                try:
                    found = self.view.details(content.get("name", ""), content.get("body", MAIN))
                except SavedModelError as exc:
                    found = {"error": str(exc)}
                self.send({"type": "details", "body": content.get("body", MAIN),
                           "name": content.get("name", ""), "details": found})

        _WIDGET_CLASS = GraphWidget
    return _WIDGET_CLASS
