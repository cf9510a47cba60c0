"""A Keras-style parameter table of a SavedModel: variables grouped by layer, with totals.

Layers are the variables' name scopes (``dense_1/kernel`` belongs to ``dense_1``); only
the index of the variables bundle is read, never the values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .inspection import distinct_variables, inspect


@dataclass(frozen=True)
class LayerRow:
    """One layer (name scope): its variables, parameter count and bytes."""
    layer: str
    variables: tuple  # (name, dtype text, shape text)
    params: int
    trainable: int
    bytes: int


class ParameterSummary:
    """Parameters per layer of one metagraph, in graph order, with totals."""

    def __init__(self, export_dir, tags, rows: list[LayerRow], unknown: list[str]):
        self.export_dir, self.tags, self.rows, self.unknown = str(export_dir), tags, rows, unknown

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    def _totals(self) -> list[str]:
        lines = [f"Total params: {self.total_params:,} ({_size(self.total_bytes)})",
                 f"Trainable params: {self.trainable_params:,}",
                 f"Non-trainable params: {self.total_params - self.trainable_params:,}"]
        if self.unknown:
            lines.append(f"Not counted (shape unknown): {', '.join(self.unknown)}")
        return lines

    def __str__(self):
        from .tags import format_tag_set
        table = [("Layer", "Variables", "Params", "Bytes")]
        for row in self.rows:
            for i, (name, _, shape) in enumerate(row.variables):
                first = i == 0
                table.append((row.layer if first else "", f"{name.rsplit('/', 1)[-1]} {shape}",
                              f"{row.params:,}" if first else "", _size(row.bytes) if first else ""))
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        rule = "-" * (sum(widths) + 6)
        lines = [f"Model: {self.export_dir} {format_tag_set(self.tags)}", rule]
        for i, row in enumerate(table):
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                     row[3].rjust(widths[3])]
            lines.append("  ".join(cells).rstrip())
            if i == 0:
                lines.append(rule)
        lines += [rule, *self._totals()]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))

    def __repr__(self):
        return f"<ParameterSummary {self.export_dir!r}: {self.total_params:,} params in {len(self.rows)} layer(s)>"

    def _repr_html_(self):
        from .render import box_html, code_html, esc, muted_html, table_html
        rows = [[code_html(r.layer),
                 "<br>".join(f"{esc(n.rsplit('/', 1)[-1])} {esc(dtype)} {esc(shape)}"
                             for n, dtype, shape in r.variables),
                 esc(f"{r.params:,}"), esc(_size(r.bytes))] for r in self.rows]
        totals = "".join(f"<div>{esc(line)}</div>" for line in self._totals())
        return box_html(table_html(["layer", "variables", "params", "bytes"], rows) + totals,
                        f"summary of {code_html(self.export_dir)} {muted_html(sorted(self.tags))}")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _layer_of(name: str) -> str:
    name = name.split(":")[0]
    return name.rsplit("/", 1)[0] if "/" in name else name


def summary(export_dir, tags=None) -> ParameterSummary:
    """The parameter table of the metagraph ``tags`` selects (the only one when None)."""
    from .render import dtype_text, shape_text

    info = inspect(export_dir)
    mg = info.meta_graph(tags)
    layers: dict[str, list] = {}
    unknown = []
    for var in distinct_variables(mg.variables, info.bundle):
        if var.shape is None or any(d is None or d < 0 for d in var.shape):
            unknown.append(var.name)
            continue
        layers.setdefault(_layer_of(var.name), []).append(var)
    rows = []
    for layer, variables in layers.items():
        params = [int(np.prod(v.shape, dtype=np.int64)) for v in variables]
        nbytes = sum(p * _itemsize(v.dtype) for p, v in zip(params, variables))
        trainable = sum(p for p, v in zip(params, variables) if v.trainable is not False)
        rows.append(LayerRow(layer, tuple((v.name, dtype_text(v.dtype), shape_text(v.shape)) for v in variables),
                             sum(params), trainable, nbytes))
    return ParameterSummary(export_dir, mg.tags, rows, unknown)


def _itemsize(dtype_name: str) -> int:
    """Bytes per element of a DataType name; 0 for strings and resources (no fixed size)."""
    from ._proto.tensor_pb2 import DataType
    from .errors import SavedModelError
    from .format.tensors import dtype_to_numpy
    try:
        dtype = dtype_to_numpy(DataType.Value(dtype_name))
    except (ValueError, SavedModelError):
        return 0
    return 0 if dtype == object else dtype.itemsize
