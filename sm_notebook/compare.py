"""What differs between two SavedModels: tag-sets, signatures, variables, assets and op counts.

`diff(a, b)` reads both exports (variable values one at a time, never both bundles whole)
and returns a `ModelDiff` that prints as text and displays as HTML in a notebook.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .errors import SavedModelError
from .inspection import distinct_variables, inspect
from .tags import format_tag_set


@dataclass
class Section:
    """One part of the diff (e.g. the signatures of metagraph {serve}): its changed lines."""
    title: str
    lines: list[str] = field(default_factory=list)


class ModelDiff:
    """The differences between export ``a`` and export ``b``, section by section."""

    def __init__(self, a, b, sections: list[Section]):
        self.a, self.b = str(a), str(b)
        self.sections = [s for s in sections if s.lines]

    @property
    def identical(self) -> bool:
        """True when nothing compared differs."""
        return not self.sections

    def __str__(self):
        head = f"--- {self.a}\n+++ {self.b}"
        if self.identical:
            return f"{head}\nNo differences in tag-sets, signatures, variables, assets or op counts."
        body = []
        for section in self.sections:
            body.append(f"== {section.title}")
            body += [f"  {line}" for line in section.lines]
        return "\n".join([head, *body])

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))

    def __repr__(self):
        return f"<ModelDiff {self.a!r} -> {self.b!r}: {len(self.sections)} section(s) differ>"

    def _repr_html_(self):
        from .render import box_html, code_html, esc, muted_html, table_html
        title = f"diff {code_html(self.a)} → {code_html(self.b)}"
        if self.identical:
            return box_html(muted_html("No differences in tag-sets, signatures, variables, assets "
                                       "or op counts."), title)
        parts = []
        for section in self.sections:
            rows = [[_change_badge(line), esc(line[2:])] for line in section.lines]
            parts.append(f'<div style="font-weight:600;margin-top:6px">{esc(section.title)}</div>'
                         + table_html([], rows))
        return box_html("".join(parts), title)


def _change_badge(line: str) -> str:
    from .render import badge_html
    kind = {"+": ("note", "added"), "-": ("error", "removed"), "~": ("warning", "changed")}
    severity, text = kind.get(line[:1], ("note", ""))
    return badge_html(severity, text)


def diff(a, b, values: bool = True) -> ModelDiff:
    """Compare the exports in directories ``a`` and ``b``.

    Metagraphs are paired by tag-set. ``values=False`` skips reading variable values
    (shape and dtype changes are still reported).
    """
    info_a, info_b = inspect(a), inspect(b)
    sets_a = {mg.tags: mg for mg in info_a.meta_graphs}
    sets_b = {mg.tags: mg for mg in info_b.meta_graphs}
    tag_section = Section("tag-sets")
    tag_section.lines += [f"- metagraph {format_tag_set(t)}" for t in sets_a if t not in sets_b]
    tag_section.lines += [f"+ metagraph {format_tag_set(t)}" for t in sets_b if t not in sets_a]
    sections = [tag_section]
    for tags, mg_a in sets_a.items():
        mg_b = sets_b.get(tags)
        if mg_b is None:
            continue
        where = format_tag_set(tags)
        sections.append(Section(f"signatures of {where}", _signature_lines(mg_a.signatures, mg_b.signatures)))
        sections.append(Section(f"variables of {where}",
                                _variable_lines(distinct_variables(mg_a.variables, info_a.bundle), info_a,
                                                distinct_variables(mg_b.variables, info_b.bundle), info_b,
                                                values)))
        sections.append(Section(f"assets of {where}", _asset_lines(mg_a.assets, mg_b.assets)))
        sections.append(Section(f"op counts of {where}", _count_lines(mg_a.op_counts, mg_b.op_counts)))
    return ModelDiff(a, b, sections)


def _added_removed(a: dict, b: dict, what: str) -> list[str]:
    lines = [f"- {what} {key}" for key in a if key not in b]
    return lines + [f"+ {what} {key}" for key in b if key not in a]


def _signature_lines(a: dict, b: dict) -> list[str]:
    lines = _added_removed(a, b, "signature")
    for key in a.keys() & b.keys():
        sig_a, sig_b = a[key], b[key]
        if sig_a.method_name != sig_b.method_name:
            lines.append(f"~ signature {key}: method {sig_a.method_name} -> {sig_b.method_name}")
        for side in ("inputs", "outputs"):
            specs_a, specs_b = getattr(sig_a, side), getattr(sig_b, side)
            lines += _added_removed(specs_a, specs_b, f"signature {key} {side[:-1]}")
            for name in specs_a.keys() & specs_b.keys():
                before, after = _spec_text(specs_a[name]), _spec_text(specs_b[name])
                if before != after:
                    lines.append(f"~ signature {key} {side[:-1]} {name}: {before} -> {after}")
    return sorted(lines, key=lambda line: line[2:])


def _spec_text(spec) -> str:
    from .render import dtype_text, shape_text
    return f"{dtype_text(spec.dtype)} {shape_text(spec.shape)} ({spec.name or spec.encoding})"


def _by_name(variables) -> dict:
    """Variables keyed by name; repeated names get ``#2``, ``#3`` suffixes in order."""
    result = {}
    for var in variables:
        name, n = var.name, 1
        while name in result:
            n += 1
            name = f"{var.name}#{n}"
        result[name] = var
    return result


def _variable_lines(vars_a, info_a, vars_b, info_b, values: bool) -> list[str]:
    a, b = _by_name(vars_a), _by_name(vars_b)
    lines = [f"- variable {k} ({_type_text(a[k])})" for k in a if k not in b]
    lines += [f"+ variable {k} ({_type_text(b[k])})" for k in b if k not in a]
    for name in [k for k in a if k in b]:
        var_a, var_b = a[name], b[name]
        if (var_a.dtype, var_a.shape) != (var_b.dtype, var_b.shape):
            lines.append(f"~ variable {name}: {_type_text(var_a)} -> {_type_text(var_b)}")
        elif values:
            change = _value_change(_read(info_a, var_a), _read(info_b, var_b))
            if change:
                lines.append(f"~ variable {name}: {change}")
    return lines


def _type_text(var) -> str:
    """``float32 (3, 2)``."""
    from .render import dtype_text, shape_text
    return f"{dtype_text(var.dtype)} {shape_text(var.shape)}"


def _read(info, var):
    """The variable's value from its bundle, or None when it cannot be read."""
    if info.bundle is None or not var.checkpoint_key:
        return None
    try:
        return info.bundle.read(var.checkpoint_key)
    except SavedModelError:
        return None


def _value_change(x, y) -> str:
    """'' when equal; otherwise how the values differ (max abs difference for numbers)."""
    if x is None or y is None:
        return "" if x is None and y is None else "value unreadable on one side"
    if x.shape != y.shape:
        return f"stored shape {x.shape} -> {y.shape}"
    if x.dtype.kind in "fciub" and y.dtype.kind in "fciub":
        xf, yf = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
        same = (xf == yf) | (np.isnan(xf) & np.isnan(yf))
        if same.all():
            return ""
        changed = int((~same).sum())
        with np.errstate(invalid="ignore"):
            max_abs = float(np.nanmax(np.abs(xf - yf)[~same])) if changed else 0.0
        return f"values changed ({changed} of {x.size} elements; max abs difference {max_abs:.6g})"
    if np.array_equal(x, y):
        return ""
    return f"values changed ({int((x != y).sum())} of {x.size} elements)"


def _asset_lines(a, b) -> list[str]:
    by_a = {asset.filename: asset for asset in a}
    by_b = {asset.filename: asset for asset in b}
    lines = _added_removed(by_a, by_b, "asset")
    for name in by_a.keys() & by_b.keys():
        if _file_digest(by_a[name]) != _file_digest(by_b[name]):
            lines.append(f"~ asset {name}: contents differ")
    return sorted(lines, key=lambda line: line[2:])


def _file_digest(asset) -> str | None:
    if not asset.exists:
        return None
    from .format.diskfiles import read_regular
    try:
        return hashlib.sha256(read_regular(asset.path, what="asset")).hexdigest()
    except SavedModelError:
        return None


def _count_lines(a: dict, b: dict) -> list[str]:
    lines = []
    for op in sorted(a.keys() | b.keys()):
        before, after = a.get(op, 0), b.get(op, 0)
        if before != after:
            sign = "+" if not before else "-" if not after else "~"
            lines.append(f"{sign} op {op}: {before} -> {after}")
    return lines
