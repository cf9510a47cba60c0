"""The collapsed top level of a signature's graph as a static SVG (no browser, no node).

Name scopes fold into one box each (a scope holding every op is opened, as the widget
does), calls stay single boxes, edges between boxes are merged and labelled with the
dtype and shape of the tensor they carry (``xN`` when several tensors run between the
same two boxes); control-only edges are left out. Ops the engine cannot run are
outlined red; boxes holding some are dashed red.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from .layout import layered_layout
from .model import CAPTURED_SCOPE, GraphBody, GraphModel

CHAR_WIDTH = 7.0
BOX_HEIGHT = 38.0
MAX_LABEL = 34
FILL = {"op": "#e8eef8", "call": "#fff1d6", "group": "#eef3e6", "input": "#e3f2fd",
        "output": "#e3f2fd", "variable": "#f3e8f7", "const": "#f2f2f2"}
STROKE = "#5f6b7a"
ALERT = "#d32f2f"


@dataclass
class Unit:
    """One box of the collapsed view: a node, or a name scope folded into one box."""
    id: str
    kind: str
    title: str            # op type, or the scope's last component
    subtitle: str         # node name, or "N ops"
    members: list = field(default_factory=list)
    problems: int = 0     # members the engine cannot run


def open_scope(body: GraphBody) -> list:
    """The scope components opened by default: while the ops below the opened scope sit in
    one single scope (unscoped ops beside it allowed), that scope is opened too; the
    (captured) variables stay folded."""
    scopes = [n.scope.split("/") if n.scope else [] for n in body.nodes.values()
              if n.kind not in ("input", "output")]
    opened = []
    while True:
        below = {s[len(opened)] for s in scopes if len(s) > len(opened) and s[:len(opened)] == opened}
        if len(below) != 1 or below == {CAPTURED_SCOPE}:
            return opened
        opened.append(below.pop())


def collapsed_units(model: GraphModel, body: GraphBody):
    """``(units by id, edges)`` of the body with its scopes folded; edges are
    ``(source unit, target unit, label, count, control)``."""
    depth = len(open_scope(body))
    groups = {}
    for node in body.nodes.values():
        parts = node.scope.split("/") if node.scope else []
        key = "/".join(parts[:depth + 1]) if len(parts) > depth else None
        groups.setdefault(key, []).append(node)
    units, owner = {}, {}
    for key, members in groups.items():
        if key is None or len(members) == 1:
            for node in members:
                units[node.name] = Unit(node.name, node.kind, node.op if node.kind != "output" else "output",
                                        node.name.removeprefix("output:"), [node.name],
                                        model.problems_inside(node))
                owner[node.name] = node.name
            continue
        unit_id = f"scope:{key}"
        noun = "variables" if key == CAPTURED_SCOPE else "ops"
        units[unit_id] = Unit(unit_id, "group", key.rsplit("/", 1)[-1], f"{len(members)} {noun}",
                              [n.name for n in members], sum(model.problems_inside(n) for n in members))
        for node in members:
            owner[node.name] = unit_id
    merged = {}
    for edge in body.edges:
        key = (owner[edge.source], owner[edge.target])
        if key[0] == key[1]:
            continue
        if key in merged:
            label, count, control = merged[key]
            merged[key] = (label or edge.label, count + (not edge.control), control and edge.control)
        else:
            merged[key] = (edge.label, int(not edge.control), edge.control)
    edges = [(s, t, label, count, control) for (s, t), (label, count, control) in merged.items()]
    return units, edges


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LABEL else "\u2026" + text[-(MAX_LABEL - 1):]


def render_svg(model: GraphModel) -> str:
    """The static picture of the model's collapsed top level (a complete SVG document)."""
    units, edges = collapsed_units(model, model.main)
    edges = [e for e in edges if not e[4]]  # control-only edges left out, as the widget does by default
    sizes = {u.id: (max(len(u.title), len(_clip(u.subtitle)), 6) * CHAR_WIDTH + 22, BOX_HEIGHT)
             for u in units.values()}
    layout = layered_layout(sizes, [(s, t) for s, t, *_ in edges])
    header = 30.0
    functions = len(model.bodies) - 1
    title = (f"{model.signature} \u2014 {len(model.main.nodes)} nodes in the signature's graph, "
             f"{functions} function bod{'y' if functions == 1 else 'ies'} behind its calls")
    width, height = max(layout.width, len(title) * CHAR_WIDTH * 12 / 11 + 24), layout.height + header
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" font-size="11" '
           f'class="sm-notebook-graph">',
           '<defs><marker id="smnb-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           f'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="{STROKE}"/></marker></defs>',
           '<rect width="100%" height="100%" fill="#ffffff"/>',
           f'<text x="12" y="19" font-size="12" fill="#222">{escape(title)}</text>',
           f'<g transform="translate(0,{header:.0f})">']
    by_pair = {(s, t): (label, count, control) for s, t, label, count, control in edges}
    for source, target, points in layout.edges:
        label, count, _ = by_pair[(source, target)]
        path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<path d="{path}" fill="none" stroke="{STROKE}" stroke-width="1.2" '
                   f'marker-end="url(#smnb-arrow)"/>')
        text = label + (f" \u00d7{count}" if count > 1 else "")
        if text:
            (x1, y1), (x2, y2) = points[len(points) // 2 - 1], points[len(points) // 2]
            out.append(f'<text x="{(x1 + x2) / 2 + 4:.1f}" y="{(y1 + y2) / 2 + 3:.1f}" font-size="9" '
                       f'fill="#555">{escape(text)}</text>')
    for unit in units.values():
        box = layout.boxes[unit.id]
        left, top = box.x - box.width / 2, box.y - box.height / 2
        stroke, extra = STROKE, ""
        if unit.problems:
            stroke = ALERT
            extra = ' stroke-width="2.5"' + (' stroke-dasharray="6 3"' if unit.kind in ("group", "call") else "")
            extra += ' class="unsupported"'
        out.append(f'<g class="node" data-name="{escape(unit.id)}" data-kind="{unit.kind}">'
                   f'<title>{escape(unit.subtitle if unit.kind != "group" else unit.id)}</title>'
                   f'<rect x="{left:.1f}" y="{top:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" '
                   f'rx="{8 if unit.kind == "group" else 4}" fill="{FILL.get(unit.kind, FILL["op"])}" '
                   f'stroke="{stroke}"{extra}/>'
                   f'<text x="{box.x:.1f}" y="{box.y - 3:.1f}" text-anchor="middle" font-weight="bold" '
                   f'fill="#1a1a1a">{escape(unit.title)}</text>'
                   f'<text x="{box.x:.1f}" y="{box.y + 11:.1f}" text-anchor="middle" '
                   f'fill="#444">{escape(_clip(unit.subtitle))}</text></g>')
    out.append("</g></svg>")
    return "\n".join(out)
