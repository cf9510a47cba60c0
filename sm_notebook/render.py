"""HTML and plain-text views of inspected SavedModels, diagnostics and run results.

The HTML uses JupyterLab's CSS variables (with fallbacks for other front-ends)
and only transparent or translucent backgrounds, so it reads in light and dark
themes. Everything is escaped; tables stay compact; problems are highlighted.
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

FONT = "var(--jp-ui-font-color1, inherit)"
MUTED = "var(--jp-ui-font-color2, #888)"
BORDER = "var(--jp-border-color2, rgba(128, 128, 128, 0.35))"
CODE = "var(--jp-code-font-family, monospace)"
SIZE = "var(--jp-ui-font-size1, 13px)"
SEVERITY_COLORS = {  # (text/border colour, translucent row background)
    "error": ("var(--jp-error-color1, #d32f2f)", "rgba(211, 47, 47, 0.13)"),
    "warning": ("var(--jp-warn-color1, #f57c00)", "rgba(245, 124, 0, 0.13)"),
    "note": ("var(--jp-info-color1, #0288d1)", "rgba(2, 136, 209, 0.10)"),
}
OK_COLOR = "var(--jp-success-color1, #388e3c)"
MAX_ROWS = 50          # longer tables are cut, with a line saying how many rows were left out


def esc(value) -> str:
    """HTML-escaped ``str(value)``."""
    return html.escape(str(value), quote=True)


def shape_text(shape) -> str:
    """``(?, 3)``; ``<unknown rank>`` for None."""
    from .format.tensors import shape_label
    return shape_label(shape)


def dtype_text(dtype: str) -> str:
    """``float32`` for ``DT_FLOAT``; the enum name itself when it is unknown."""
    from ._proto.tensor_pb2 import DataType
    from .format.tensors import short_dtype_name
    try:
        return short_dtype_name(DataType.Value(dtype))
    except Exception:  # unknown or invalid enum: show what the file says
        return str(dtype)


def tags_text(tags) -> str:
    """``{'gpu', 'serve'}``-style text (sorted); ``{}`` for the empty set."""
    from .tags import format_tag_set
    return format_tag_set(tags)


# --------------------------------------------------------------------------- HTML pieces

def box_html(inner: str, title: str = "") -> str:
    head = f'<div style="font-weight:600;margin-bottom:4px">{title}</div>' if title else ""
    return (f'<div class="sm-notebook" style="color:{FONT};font-size:{SIZE};line-height:1.4;'
            f'background:transparent">{head}{inner}</div>')


def table_html(headers, rows, row_styles=None) -> str:
    """A compact table; ``rows`` hold already-escaped HTML cells."""
    cell = f"padding:2px 8px;border-bottom:1px solid {BORDER};text-align:left;vertical-align:top"
    out = [f'<table style="border-collapse:collapse;margin:2px 0 6px 0;color:{FONT};'
           f'background:transparent;font-size:{SIZE}">']
    if headers:
        out.append("<tr>" + "".join(
            f'<th style="{cell};color:{MUTED};font-weight:600">{esc(h)}</th>' for h in headers) + "</tr>")
    shown = rows[:MAX_ROWS]
    for i, row in enumerate(shown):
        style = (row_styles[i] if row_styles else "") or ""
        out.append(f'<tr style="{style}">' + "".join(f'<td style="{cell}">{c}</td>' for c in row) + "</tr>")
    if len(rows) > len(shown):
        out.append(f'<tr><td colspan="{len(rows[0])}" style="{cell};color:{MUTED}">'
                   f'… {len(rows) - len(shown)} more row(s)</td></tr>')
    out.append("</table>")
    return "".join(out)


def code_html(text) -> str:
    return f'<code style="font-family:{CODE};background:transparent;color:inherit">{esc(text)}</code>'


def muted_html(text) -> str:
    return f'<span style="color:{MUTED}">{esc(text)}</span>'


def badge_html(severity: str, text: str | None = None) -> str:
    color = SEVERITY_COLORS.get(severity, (MUTED, ""))[0]
    return (f'<span style="color:{color};border:1px solid {color};border-radius:3px;'
            f'padding:0 4px;font-size:0.85em;font-weight:600;white-space:nowrap">{esc(text or severity)}</span>')


def details_html(summary: str, inner: str, open_: bool = False) -> str:
    return (f'<details{" open" if open_ else ""} style="margin:2px 0">'
            f'<summary style="cursor:pointer">{summary}</summary>'
            f'<div style="margin-left:14px">{inner}</div></details>')


def tensor_table_html(specs: dict) -> str:
    if not specs:
        return muted_html("none")
    rows = [[code_html(s.key), esc(dtype_text(s.dtype)), esc(shape_text(s.shape)),
             code_html(s.source) + (f'<div style="color:{MUTED}">{esc(s.ragged)}</div>'
                                    if s.ragged else "")] for s in specs.values()]
    return table_html(["key", "dtype", "shape", "tensor"], rows)


def problems_table_html(problems) -> str:
    rows, styles = [], []
    for p in problems:
        color, background = SEVERITY_COLORS.get(p.severity, (MUTED, "transparent"))
        where = "" if p.meta_graph is None else f"#{p.meta_graph}"
        fix = esc(p.fix) if p.fix else muted_html("—")
        rows.append([badge_html(p.severity), code_html(p.code), esc(where), esc(p.message), fix])
        styles.append(f"background:{background};border-left:3px solid {color}")
    return table_html(["", "code", "metagraph", "problem", "fix"], rows, styles)


# --------------------------------------------------------------------------- signatures

def signature_html(sig) -> str:
    """One SignatureInfo: method name, inputs and outputs as tables."""
    inner = (f'<div>method {code_html(sig.method_name or "(none)")}</div>'
             f'<div style="color:{MUTED};margin-top:4px">inputs</div>{tensor_table_html(sig.inputs)}'
             f'<div style="color:{MUTED}">outputs</div>{tensor_table_html(sig.outputs)}')
    return box_html(inner, f"signature {code_html(sig.key)}")


def signature_text(sig) -> str:
    """One SignatureInfo as plain text."""
    lines = [f"signature {sig.key!r} (method {sig.method_name or '(none)'})"]
    for side, specs in (("inputs", sig.inputs), ("outputs", sig.outputs)):
        lines.append(f"  {side}:")
        lines += [f"    {s.key}: {dtype_text(s.dtype)} {shape_text(s.shape)} <- {s.source}"
                  + (f"  ({s.ragged})" if s.ragged else "") for s in specs.values()] or ["    (none)"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- metagraphs

def op_census_html(op_counts: dict) -> str:
    if not op_counts:
        return muted_html("no ops")
    items = sorted(op_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return f'<div style="font-family:{CODE}">' + ", ".join(
        f"{esc(op)}&nbsp;×{n}" for op, n in items) + "</div>"


def function_rows(mg) -> list[tuple[str, str, str]]:
    """(name, kind, argument text) per concrete function of a TF2 metagraph's root object.

    ``mg.concrete_functions`` holds format.structured.FunctionDescription items;
    the argument text is the repr of each traced signature, as TensorFlow prints it.
    """
    rows = []
    for function in mg.concrete_functions:
        for option in function.options:
            args, kwargs = option.callable_with()
            call = "(" + ", ".join([repr(a) for a in (args or ())]
                                   + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]) + ")"
            rows.append((function.name, function.kind, call))
    return rows


def shadowed_note(shadowed_by: int | None) -> str:
    """The heading remark for a metagraph hidden by an earlier one with the same tag-set."""
    if shadowed_by is None:
        return ""
    return f"SHADOWED by #{shadowed_by} (same tag-set; loading by tags never reaches it)"


def shadowing_index(info) -> dict[int, int]:
    """Metagraph index -> the index of the earlier metagraph with the same tag-set."""
    from .tags import duplicate_groups
    return {index: group[0] for group in duplicate_groups(info.proto) for index in group[1:]}


def meta_graph_html(mg, signature: str | None = None, open_: bool = True,
                    shadowed_by: int | None = None) -> str:
    """One MetaGraphInfo: signatures, variables, assets, ops census, TF2 functions."""
    sigs = {k: v for k, v in mg.signatures.items() if signature is None or k == signature}
    parts = [f'<div style="color:{MUTED}">TensorFlow {esc(mg.tensorflow_version or "?")}'
             f'{" · TF2 object graph" if mg.is_tf2 else ""}</div>']
    if sigs:
        parts += [signature_html(s) for s in sigs.values()]
    else:
        parts.append(muted_html("no signatures"))
    if signature is None:
        var_rows = [[code_html(v.name), esc(dtype_text(v.dtype)), esc(shape_text(v.shape)),
                     code_html(v.checkpoint_key)] for v in mg.variables]
        parts.append(details_html(f"variables ({len(mg.variables)})",
                              table_html(["name", "dtype", "shape", "checkpoint key"], var_rows)
                              if var_rows else muted_html("none")))
        asset_rows, styles = [], []
        for a in mg.assets:
            asset_rows.append([code_html(a.filename), code_html(a.tensor_name),
                               esc("present") if a.exists else badge_html("error", "missing")])
            styles.append("" if a.exists else f"background:{SEVERITY_COLORS['error'][1]}")
        parts.append(details_html(f"assets ({len(mg.assets)})",
                              table_html(["file", "tensor", ""], asset_rows, styles) if asset_rows
                              else muted_html("none"), open_=any(not a.exists for a in mg.assets)))
        parts.append(details_html(f"ops ({sum(mg.op_counts.values())} nodes, {len(mg.op_counts)} types)",
                              op_census_html(mg.op_counts)))
        if mg.concrete_functions:
            rows = [[code_html(name), esc(kind), code_html(call)] for name, kind, call in function_rows(mg)]
            parts.append(details_html(f"functions ({len(mg.concrete_functions)})",
                                      table_html(["function", "kind", "callable with"], rows)))
    title = f"MetaGraphDef #{mg.index} {code_html(tags_text(mg.tags))}"
    if shadowed_by is not None:
        title += " " + badge_html("error", shadowed_note(shadowed_by))
    return details_html(f'<b>{title}</b>', "".join(parts), open_=open_)


def meta_graph_text(mg, signature: str | None = None, shadowed_by: int | None = None) -> str:
    """One MetaGraphInfo as plain text."""
    note = f" {shadowed_note(shadowed_by)}" if shadowed_by is not None else ""
    lines = [f"MetaGraphDef #{mg.index} with tag-set {tags_text(mg.tags)}"
             f" (TensorFlow {mg.tensorflow_version or '?'}){note}"]
    sigs = [s for k, s in mg.signatures.items() if signature is None or k == signature]
    for sig in sigs:
        lines += ["  " + line for line in signature_text(sig).splitlines()]
    if not sigs:
        lines.append("  no signatures")
    if signature is None:
        lines.append(f"  variables ({len(mg.variables)}):")
        lines += [f"    {v.name}: {dtype_text(v.dtype)} {shape_text(v.shape)}" for v in mg.variables[:MAX_ROWS]]
        if len(mg.variables) > MAX_ROWS:
            lines.append(f"    ... {len(mg.variables) - MAX_ROWS} more")
        lines.append(f"  assets ({len(mg.assets)}):")
        lines += [f"    {a.filename} <- {a.tensor_name}{'' if a.exists else '  (MISSING)'}" for a in mg.assets]
        census = ", ".join(f"{op} x{n}" for op, n in sorted(mg.op_counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"  ops ({sum(mg.op_counts.values())} nodes): {census or 'none'}")
        for name, kind, call in function_rows(mg):
            lines.append(f"  {kind} {name}{call}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- whole model

def _selected(info, tags=None):
    return info.meta_graphs if tags is None else [info.meta_graph(tags)]


def saved_model_html(info, tags=None, signature: str | None = None, report=None) -> str:
    """A SavedModelInfo: tag-sets, each (or the chosen) metagraph; ``report``'s problems first."""
    from .tags import format_tag_set
    sets = ", ".join(code_html(format_tag_set(t)) for t in info.tag_sets) or muted_html("none")
    parts = [f'<div style="color:{MUTED}">{esc(info.export_dir)} · schema {info.schema_version} '
             f'· {len(info.meta_graphs)} metagraph(s): {sets}</div>']
    if report is not None:
        worth = [p for p in report.problems if p.severity in ("error", "warning")]
        if worth:
            parts.append(problems_table_html(worth))
    meta_graphs = _selected(info, tags)
    shadowed = shadowing_index(info)
    parts += [meta_graph_html(mg, signature, open_=len(meta_graphs) <= 3, shadowed_by=shadowed.get(mg.index))
              for mg in meta_graphs]
    return box_html("".join(parts), f"SavedModel {code_html(info.export_dir.name)}")


def saved_model_text(info, tags=None, signature: str | None = None, report=None) -> str:
    """A SavedModelInfo as plain text (the terminal view of ``%savedmodel show``)."""
    sets = ", ".join(tags_text(t) for t in info.tag_sets) or "none"
    lines = [f"SavedModel {info.export_dir}: {len(info.meta_graphs)} metagraph(s): {sets}"]
    if report is not None:
        lines += [str(p) for p in report.problems if p.severity in ("error", "warning")]
    shadowed = shadowing_index(info)
    for mg in _selected(info, tags):
        lines.append(meta_graph_text(mg, signature, shadowed.get(mg.index)))
    return "\n".join(lines)


def report_html(report) -> str:
    """A DiagnosticReport: counts, problems (each with its fix) first, then the summary."""
    counts = {s: sum(p.severity == s for p in report.problems) for s in SEVERITY_COLORS}
    badges = " ".join(badge_html(s, f"{n} {s}(s)") for s, n in counts.items() if n)
    if not report.problems:
        badges = f'<span style="color:{OK_COLOR};font-weight:600">no problems found</span>'
    summary = "".join(f"<li>{esc(line)}</li>" for line in report.summary)
    inner = (f'<div style="margin-bottom:4px">{badges}</div>'
             + (problems_table_html(report.problems) if report.problems else "")
             + (f'<ul style="margin:2px 0;padding-left:18px;color:{MUTED}">{summary}</ul>' if summary else ""))
    return box_html(inner, f"Diagnostics for {code_html(report.export_dir)}")


def report_text(report) -> str:
    return str(report)


# --------------------------------------------------------------------------- run results

@dataclass
class RunResult:
    """What one signature call returned, with where and how long it ran."""
    outputs: dict
    signature: str = ""
    tags: frozenset | None = None
    backend: str = "numpy"
    seconds: float = 0.0
    inputs: dict = field(default_factory=dict)
    labels: list | None = None  # class names for score-like outputs (from a vocabulary asset)

    def __repr__(self):
        keys = ", ".join(self.outputs)
        return f"<RunResult {self.signature!r}: {len(self.outputs)} output(s) [{keys}] in {self.seconds * 1e3:.1f} ms>"

    def _repr_html_(self):
        return run_result_html(self)

    def _repr_pretty_(self, p, cycle):
        p.text(run_result_text(self))


def _array_summary(value):
    """(dtype, shape, preview) for one output; the preview is short."""
    import numpy as np
    from .format.ragged import Ragged
    if isinstance(value, Ragged):  # its rows as lists: numpy would make an object array
        preview = repr(value.map_arrays(np.asarray).to_list())
        preview = preview if len(preview) <= 400 else preview[:400] + " …"
        dtype = "string" if value.dtype.kind in "OSU" else value.dtype.name
        return f"ragged {dtype}", shape_text(value.shape), preview
    array = _host_array(value)
    if array is None:
        return str(getattr(value, "dtype", "?")), str(tuple(getattr(value, "shape", ()))), type(value).__name__
    preview = np.array2string(array, threshold=12, edgeitems=3, precision=4, max_line_width=80)
    if len(preview) > 400:
        preview = preview[:400] + " …"
    return str(array.dtype), shape_text(array.shape), preview


def _host_array(value):
    """``value`` as a numpy array, or None for a backend array numpy refuses (cupy) and for
    ragged values."""
    import numpy as np
    from .format.ragged import Ragged
    if isinstance(value, Ragged):
        return None
    try:
        return np.asarray(value)
    except Exception:
        return None


def value_statistics(array) -> dict | None:
    """min, max, mean and NaN/Inf counts of a numeric array (None for strings, empty arrays)."""
    import numpy as np
    if array is None or array.dtype.kind not in "biuf" or array.size == 0:
        return None
    values = array.astype(np.float64, copy=False)
    finite = values[np.isfinite(values)]
    stats = {"nan": int(np.isnan(values).sum()), "inf": int(np.isinf(values).sum())}
    if finite.size:
        stats.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()))
    return stats


def looks_like_class_scores(array) -> bool:
    """A float array of shape (batch, classes) with at least 2 classes."""
    return (array is not None and array.dtype.kind == "f" and array.ndim == 2
            and array.shape[-1] >= 2 and array.size > 0)


def top_k(array, k: int = 5, labels=None, rows: int = 3) -> list[list[tuple]]:
    """Per row (at most ``rows``): the ``k`` best (class index, label or None, score)."""
    import numpy as np
    table = np.atleast_2d(array)[:rows]
    result = []
    for row in table:
        order = np.argsort(-np.nan_to_num(row.astype(np.float64), nan=-np.inf), kind="stable")[:k]
        result.append([(int(i), labels[i] if labels is not None and i < len(labels) else None, float(row[i]))
                       for i in order])
    return result


def histogram_svg(array, bins: int = 24, width: int = 240, height: int = 48) -> str:
    """An inline SVG histogram of the finite values (empty string when there is nothing to draw)."""
    import numpy as np
    stats = value_statistics(array)
    if stats is None or "min" not in stats or array.size < 2:
        return ""
    values = array.astype(np.float64, copy=False).ravel()
    values = values[np.isfinite(values)]
    counts, edges = np.histogram(values, bins=bins)
    top = counts.max() or 1
    bar = width / bins
    rects = "".join(f'<rect x="{i * bar:.1f}" y="{height - c / top * height:.1f}" width="{bar - 1:.1f}" '
                    f'height="{c / top * height:.1f}"><title>{edges[i]:.4g} to {edges[i + 1]:.4g}: {c}</title></rect>'
                    for i, c in enumerate(counts) if c)
    return (f'<svg class="sm-notebook-histogram" width="{width}" height="{height + 12}" '
            f'style="fill:var(--jp-brand-color1, #1976d2);color:{MUTED}" role="img" '
            f'aria-label="histogram of {values.size} values">{rects}'
            f'<text x="0" y="{height + 11}" font-size="9" fill="currentColor">{edges[0]:.3g}</text>'
            f'<text x="{width}" y="{height + 11}" font-size="9" text-anchor="end" fill="currentColor">'
            f'{edges[-1]:.3g}</text></svg>')


def _statistics_text(stats) -> str:
    if stats is None:
        return ""
    text = (f"min {stats['min']:.4g} · max {stats['max']:.4g} · mean {stats['mean']:.4g}"
            if "min" in stats else "no finite values")
    bad = [f"{stats[k]} {name}" for k, name in (("nan", "NaN"), ("inf", "Inf")) if stats[k]]
    return text + (" · " + ", ".join(bad) if bad else " · no NaN/Inf")


def _top_k_text(array, labels) -> list[str]:
    lines = []
    for number, row in enumerate(top_k(array, labels=labels)):
        best = ", ".join(f"{label if label is not None else '#' + str(i)} {score:.4g}" for i, label, score in row)
        lines.append(f"top-{len(row)} (row {number}): {best}")
    return lines


def run_result_html(result: RunResult) -> str:
    rows = []
    for key, value in result.outputs.items():
        dtype, shape, preview = _array_summary(value)
        array = _host_array(value)
        stats = value_statistics(array)
        details = ""
        if stats is not None:
            color = SEVERITY_COLORS["error"][0] if stats["nan"] or stats["inf"] else MUTED
            details += f'<div style="color:{color}">{esc(_statistics_text(stats))}</div>'
        if looks_like_class_scores(array):
            details += "".join(f"<div>{esc(line)}</div>" for line in _top_k_text(array, result.labels))
        details += histogram_svg(array) if array is not None else ""
        rows.append([code_html(key), esc(dtype), esc(shape),
                     f'<pre style="margin:0;font-family:{CODE};background:transparent;color:inherit">'
                     f'{esc(preview)}</pre>{details}'])
    where = f" on {result.backend}" if result.backend else ""
    head = (f'<div style="color:{MUTED}">{len(result.outputs)} output(s) in '
            f'{result.seconds * 1e3:.1f} ms{esc(where)}'
            f'{" · tags " + esc(tags_text(result.tags)) if result.tags is not None else ""}</div>')
    table = table_html(["output", "dtype", "shape", "value"], rows)
    return box_html(head + table, f"run {code_html(result.signature)}")


def run_result_text(result: RunResult) -> str:
    lines = [f"run {result.signature!r}: {len(result.outputs)} output(s) in "
             f"{result.seconds * 1e3:.1f} ms on {result.backend}"]
    for key, value in result.outputs.items():
        dtype, shape, preview = _array_summary(value)
        array = _host_array(value)
        lines.append(f"  {key}: {dtype} {shape}")
        lines += ["    " + line for line in preview.splitlines()]
        stats = value_statistics(array)
        if stats is not None:
            lines.append(f"    {_statistics_text(stats)}")
        if looks_like_class_scores(array):
            lines += ["    " + line for line in _top_k_text(array, result.labels)]
    return "\n".join(lines)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


# --------------------------------------------------------------------------- scan results

def _scan_rows(report):
    """(severity, status, op, uses, first use) per op; reachable problems first."""
    groups: dict = {}
    for p in report.problems:
        groups.setdefault((not p.reachable, p.status, p.op), []).append(p)
    rows = []
    for (unreachable, status, op), uses in sorted(groups.items()):
        severity = "note" if unreachable else "error" if status == "unsupported" else "warning"
        first = uses[0]
        rows.append((severity, status, op, len(uses), f"node {first.node!r} in {first.where()}"))
    return rows


def scan_html(report) -> str:
    """A ScanReport (engine.scan): ops that would stop `load` highlighted, unreachable ones as notes."""
    title = f"scan {code_html(tags_text(report.tags))}"
    head = (f'<div style="color:{MUTED}">{len(report.ops)} op types used · '
            + (f'<span style="color:{OK_COLOR};font-weight:600">every reachable op can run</span>'
               if report.ok else "some reachable ops cannot run") + "</div>")
    rows, styles = [], []
    for severity, status, op, count, first in _scan_rows(report):
        color, background = SEVERITY_COLORS[severity]
        label = status if severity != "note" else f"{status}, unreachable"
        rows.append([badge_html(severity, label), code_html(op), esc(count), esc(first)])
        styles.append(f"background:{background};border-left:3px solid {color}")
    table = table_html(["", "op", "nodes", "first use"], rows, styles) if rows else ""
    note = (muted_html("denied ops touch files or the network; load(..., allow_io=True) allows them")
            if any(p.status == "denied" and p.reachable for p in report.problems) else "")
    return box_html(head + table + note, title)


def scan_text(report) -> str:
    return str(report)


# --------------------------------------------------------------------------- edits

def pre_html(text: str) -> str:
    """Preformatted text in the code font, theme colours."""
    return (f'<pre style="font-family:{CODE};font-size:{SIZE};color:{FONT};background:transparent;'
            f'margin:4px 0;white-space:pre-wrap">{esc(text)}</pre>')


def diff_html(header: str, diff: str, warnings=()) -> str:
    """A unified diff with added lines green and removed lines red (translucent); warnings above."""
    lines = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---", "@@")):
            lines.append(f'<span style="color:{MUTED}">{esc(line)}</span>')
        elif line.startswith("+"):
            lines.append(f'<span style="background:rgba(56, 142, 60, 0.18)">{esc(line)}</span>')
        elif line.startswith("-"):
            lines.append(f'<span style="background:rgba(211, 47, 47, 0.18)">{esc(line)}</span>')
        else:
            lines.append(esc(line))
    body = (f'<pre style="font-family:{CODE};font-size:{SIZE};color:{FONT};background:transparent;'
            f'margin:4px 0">' + "\n".join(lines) + "</pre>") if lines else muted_html("(no visible change)")
    color = SEVERITY_COLORS["warning"][0]
    notes = "".join(f'<div style="color:{color}">{esc(w)}</div>' for w in warnings)
    return box_html(f"<div>{esc(header)}</div>{notes}{body}")
