"""The ``%%savedmodel`` cell format: a short list of edits applied through the Builder.

One edit per line, ``directive: arguments``; ``#`` starts a comment::

    meta_graph: serve                  # later signature edits apply to this tag-set
    rename: predict -> serving_default
    rename_input: serving_default x -> features
    rename_output: serving_default output_0 -> probabilities
    method: serving_default classify   # predict/classify/regress, or a full method name
    remove: old_signature
    add: scores                        # indented lines below belong to the add
      inputs: x=x:0
      outputs: probabilities=probabilities:0, ids=token_ids:0
      method: predict
    add_asset: data/vocab.txt as vocab.txt
    tags: serve -> serve,gpu           # a tag-set: comma-separated tags; {} is the empty set
    tags: @1 -> serve,tpu              # @N: metagraph number N (for tag-sets shared by several)
    add_meta_graph: serve,tpu from serve
    remove_meta_graph: train           # or @N

Signature edits and add_asset apply to the tag-set named by the last ``meta_graph:``
line (or the cell's ``--tags``; with neither, the model's only metagraph). Every
edit maps to one Builder call (see `Edit.apply`), so the Builder's rules are the
rules here.
`format_edits` writes edits back in this format; widgets use it for their preview.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from ..errors import SavedModelError

METHOD_NAMES = {
    "predict": "tensorflow/serving/predict",
    "classify": "tensorflow/serving/classify",
    "regress": "tensorflow/serving/regress",
}
TARGETED_EDITS = ("rename", "remove", "method", "rename_input", "rename_output", "add", "add_asset")
META_GRAPH_EDITS = ("tags", "add_meta_graph", "remove_meta_graph")
DIRECTIVES = ("meta_graph",) + TARGETED_EDITS + META_GRAPH_EDITS


class EditSyntaxError(SavedModelError):
    """A line of a %%savedmodel cell does not follow the format; names the line."""

    def __init__(self, line_number: int, line: str, problem: str):
        super().__init__(f"line {line_number}: {problem} (in {line.strip()!r})")
        self.line_number = line_number


@dataclass
class Edit:
    """One edit: a directive, its arguments, and the tag-set it targets (None: the only one)."""
    kind: str
    args: tuple
    tags: frozenset | None = None
    options: dict = field(default_factory=dict)
    line: int = 0

    def apply(self, builder):
        """Make the Builder call this edit stands for (it raises SavedModelError on a rule)."""
        a, tags = self.args, self.tags
        if self.kind == "rename":
            return builder.rename_signature(a[0], a[1], tags=tags)
        if self.kind == "remove":
            return builder.remove_signature(a[0], tags=tags)
        if self.kind == "method":
            return builder.set_method_name(a[0], a[1], tags=tags)
        if self.kind == "rename_input":
            return builder.rename_input(a[0], a[1], a[2], tags=tags)
        if self.kind == "rename_output":
            return builder.rename_output(a[0], a[1], a[2], tags=tags)
        if self.kind == "add":
            return builder.add_signature(a[0], inputs=dict(self.options.get("inputs", {})),
                                         outputs=dict(self.options.get("outputs", {})),
                                         method_name=self.options.get("method", METHOD_NAMES["predict"]),
                                         tags=tags)
        index = self.options.get("index")
        if self.kind == "tags":
            old = None if a[0] is None else sorted(a[0])
            return builder.set_tags(old, sorted(a[1]), allow_empty=not a[1], index=index)
        if self.kind == "add_meta_graph":
            copy_from = None if a[1] is None else sorted(a[1])
            return builder.add_meta_graph(sorted(a[0]), copy_from=copy_from, allow_empty=not a[0])
        if self.kind == "remove_meta_graph":
            return builder.remove_meta_graph(None if a[0] is None else sorted(a[0]), index=index)
        if self.kind == "add_asset":
            return builder.add_asset(a[0], name=a[1], tags=tags)
        raise SavedModelError(f"Unknown edit {self.kind!r}; known: {', '.join(DIRECTIVES)}.")

    def __str__(self):
        """The edit as one line (or block) of the cell format."""
        a = self.args
        if self.kind == "rename":
            return f"rename: {a[0]} -> {a[1]}"
        if self.kind == "remove":
            return f"remove: {a[0]}"
        if self.kind == "method":
            short = {v: k for k, v in METHOD_NAMES.items()}.get(a[1], a[1])
            return f"method: {a[0]} {short}"
        if self.kind in ("rename_input", "rename_output"):
            return f"{self.kind}: {a[0]} {a[1]} -> {a[2]}"
        if self.kind == "add":
            lines = [f"add: {a[0]}"]
            for side in ("inputs", "outputs"):
                pairs = ", ".join(f"{k}={v}" for k, v in self.options.get(side, {}).items())
                lines.append(f"  {side}: {pairs}")
            method = self.options.get("method", METHOD_NAMES["predict"])
            lines.append(f"  method: {({v: k for k, v in METHOD_NAMES.items()}).get(method, method)}")
            return "\n".join(lines)
        if self.kind == "tags":
            return f"tags: {self._old_text()} -> {tag_set_text(a[1])}"
        if self.kind == "add_meta_graph":
            return f"add_meta_graph: {tag_set_text(a[0])}" + (f" from {tag_set_text(a[1])}" if a[1] is not None else "")
        if self.kind == "remove_meta_graph":
            return f"remove_meta_graph: {self._old_text()}"
        if self.kind == "add_asset":
            return f"add_asset: {a[0]}" + (f" as {a[1]}" if a[1] else "")
        return f"{self.kind}: {' '.join(map(str, a))}"

    def _old_text(self) -> str:
        """The metagraph an edit of tags names: ``@N``, ``@N tags`` or ``tags``."""
        index, old = self.options.get("index"), self.args[0]
        if index is None:
            return tag_set_text(old)
        return f"@{index}" + ("" if old is None else f" {tag_set_text(old)}")


def tag_set_text(tags) -> str:
    """``gpu,serve`` (sorted); ``{}`` for the empty set."""
    return ",".join(sorted(tags)) if tags else "{}"


def parse_tag_set(text: str) -> frozenset:
    """``serve,gpu``, ``{'gpu', 'serve'}`` or ``{}`` -> frozenset; commas or spaces separate."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    parts = [p.strip().strip("'\"").strip() for p in re.split(r"[,\s]+", text)]
    return frozenset(p for p in parts if p)


def method_name(text: str) -> str:
    """Full method name for ``predict``/``classify``/``regress``; anything else unchanged."""
    return METHOD_NAMES.get(text.strip(), text.strip())


def _arrow(number, line, rest, before_count):
    """Split ``A B -> C`` into ([A, B], C), checking the count before the arrow."""
    if "->" not in rest:
        raise EditSyntaxError(number, line, "expected 'OLD -> NEW'")
    left, right = (s.strip() for s in rest.split("->", 1))
    words = left.split() if before_count > 1 else [left]
    if len(words) != before_count or not all(words) or not right:
        want = {1: "OLD -> NEW", 2: "SIGNATURE OLD -> NEW"}[before_count]
        raise EditSyntaxError(number, line, f"expected '{want}'")
    return words, right


def _pairs(number, line, text) -> dict:
    """``a=x:0, b=y:0`` -> {'a': 'x:0', 'b': 'y:0'}."""
    result = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, tensor = (s.strip() for s in item.partition("="))
        if not sep or not key or not tensor:
            raise EditSyntaxError(number, line, f"expected KEY=TENSOR, got {item!r}")
        if key in result:
            raise EditSyntaxError(number, line, f"key {key!r} appears twice")
        result[key] = tensor
    return result


def parse_edits(text: str, tags=None) -> list[Edit]:
    """Parse a %%savedmodel cell into edits; ``tags`` is the default tag-set for signature edits."""
    from ..tags import normalize_tags
    current = normalize_tags(tags)
    edits: list[Edit] = []
    block: Edit | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        indented = line[0].isspace()
        directive, sep, rest = (s.strip() for s in line.partition(":"))
        if not sep:
            raise EditSyntaxError(number, raw, "expected 'directive: arguments'")
        if indented:
            if block is None:
                raise EditSyntaxError(number, raw, "an indented line belongs under 'add: KEY'")
            if directive in ("inputs", "outputs"):
                block.options[directive] = {**block.options.get(directive, {}), **_pairs(number, raw, rest)}
            elif directive == "method":
                block.options["method"] = method_name(rest)
            else:
                raise EditSyntaxError(number, raw, "under 'add:' only inputs, outputs and method may follow")
            continue
        block = None
        if directive not in DIRECTIVES:
            close = difflib.get_close_matches(directive, DIRECTIVES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(DIRECTIVES)}"
            raise EditSyntaxError(number, raw, f"unknown directive {directive!r}{hint}")
        if not rest and directive not in ("meta_graph",):
            raise EditSyntaxError(number, raw, f"{directive!r} needs arguments")
        if directive == "meta_graph":
            current = parse_tag_set(rest)
            continue
        edit = _parse_one(number, raw, directive, rest)
        if directive in TARGETED_EDITS:
            edit.tags = current
        edit.line = number
        edits.append(edit)
        if directive == "add":
            block = edit
    for edit in edits:
        if edit.kind == "add" and not edit.options.get("outputs"):
            raise EditSyntaxError(edit.line, str(edit).splitlines()[0],
                                  "'add' needs an indented 'outputs: KEY=TENSOR' line")
    return edits


def _parse_one(number, raw, directive, rest) -> Edit:
    if directive == "rename":
        (old,), new = _arrow(number, raw, rest, 1)
        return Edit("rename", (old, new))
    if directive in ("rename_input", "rename_output"):
        (sig, old), new = _arrow(number, raw, rest, 2)
        return Edit(directive, (sig, old, new))
    if directive == "remove":
        if len(rest.split()) != 1:
            raise EditSyntaxError(number, raw, "expected one signature key")
        return Edit("remove", (rest,))
    if directive == "method":
        words = rest.split()
        if len(words) != 2:
            raise EditSyntaxError(number, raw, "expected 'SIGNATURE METHOD'")
        return Edit("method", (words[0], method_name(words[1])))
    if directive == "add":
        if len(rest.split()) != 1:
            raise EditSyntaxError(number, raw, "expected 'add: KEY' with inputs/outputs indented below")
        return Edit("add", (rest,), options={"method": METHOD_NAMES["predict"]})
    if directive == "tags":
        if "->" not in rest:
            raise EditSyntaxError(number, raw, "expected 'OLD_TAGS -> NEW_TAGS'")
        old, new = rest.split("->", 1)
        index, old_tags = _meta_graph_ref(number, raw, old)
        return Edit("tags", (old_tags, parse_tag_set(new)), options={} if index is None else {"index": index})
    if directive == "add_meta_graph":
        new, _, source = rest.partition(" from ")
        return Edit("add_meta_graph", (parse_tag_set(new), parse_tag_set(source) if source.strip() else None))
    if directive == "remove_meta_graph":
        index, old_tags = _meta_graph_ref(number, raw, rest)
        return Edit("remove_meta_graph", (old_tags,), options={} if index is None else {"index": index})
    path, _, name = rest.partition(" as ")
    return Edit("add_asset", (path.strip(), name.strip() or None))


def _meta_graph_ref(number, raw, text):
    """``@1``, ``@1 serve`` or ``serve,gpu`` -> (index or None, tag-set or None)."""
    text = text.strip()
    if not text.startswith("@"):
        return None, parse_tag_set(text)
    first, _, rest = text.partition(" ")
    if not first[1:].isdigit():
        raise EditSyntaxError(number, raw, f"{first!r}: @ takes a metagraph number, e.g. @1")
    return int(first[1:]), (parse_tag_set(rest) if rest.strip() else None)


def format_edits(edits) -> str:
    """Edits as %%savedmodel cell text, with ``meta_graph:`` lines where the target changes."""
    lines, current = [], None
    for edit in edits:
        if edit.kind in TARGETED_EDITS and edit.tags is not None and edit.tags != current:
            lines.append(f"meta_graph: {tag_set_text(edit.tags)}")
            current = edit.tags
        lines.append(str(edit))
    return "\n".join(lines)


# --------------------------------------------------------------------------- dry run

def outline(info) -> list[str]:
    """A SavedModelInfo as sorted lines, one fact per line, for diffs."""
    from ..render import dtype_text, shape_text, tags_text
    lines = []
    for mg in info.meta_graphs:
        lines.append(f"metagraph #{mg.index} {tags_text(mg.tags)}")
        for key, sig in mg.signatures.items():
            lines.append(f"  signature {key} ({sig.method_name})")
            for side, specs in (("input", sig.inputs), ("output", sig.outputs)):
                lines += [f"    {side} {s.key}: {dtype_text(s.dtype)} {shape_text(s.shape)} <- {s.name or s.encoding}"
                          for s in specs.values()]
        names = sorted({a.filename for a in mg.assets})
        if names:
            lines.append(f"  assets: {', '.join(names)}")
    return lines


def outline_diff(before, after, before_name="before", after_name="after") -> str:
    """Unified diff of two outlines (empty when they agree)."""
    return "\n".join(difflib.unified_diff(outline(before), outline(after), before_name, after_name,
                                          n=1, lineterm=""))


def load_builder(path):
    """``sm_notebook.Builder.from_saved_model(path)``."""
    from .. import builder as builder_module
    return builder_module.Builder.from_saved_model(path)


def preview_edits(path, edits):
    """Apply ``edits`` to a Builder for ``path``; returns ``(builder, diff, warnings)``, writing nothing to ``path``.

    The diff compares the model as it is with the model the Builder would write,
    written to a temporary directory and inspected (so it shows exactly what
    saving will produce).
    """
    import tempfile
    from pathlib import Path
    import sm_notebook
    builder = load_builder(path)
    notes = apply_edits(builder, edits)
    with tempfile.TemporaryDirectory(prefix="sm_notebook_dry_run_") as tmp:
        target = Path(tmp) / "model"
        builder.save(target)   # variables are hard-linked or streamed, not loaded
        after = sm_notebook.inspect(target)
        diff = outline_diff(sm_notebook.inspect(path), after, str(path), "after edits")
    return builder, diff, notes


def check_edits(builder, edits) -> tuple[list[str], list[str]]:
    """(errors, warnings) from applying ``edits`` to ``builder`` and validating it as save would."""
    try:
        notes = apply_edits(builder, edits)
        builder.validate()
    except SavedModelError as exc:
        return [str(exc)], []
    return [], notes


def apply_edits(builder, edits) -> list[str]:
    """Apply edits in order; returns the Builder's warnings, each naming its edit.

    A failing edit raises SavedModelError naming its line and the edit.
    """
    import warnings
    from ..errors import SavedModelWarning
    notes = []
    for edit in edits:
        where = (f"line {edit.line}: " if edit.line else "") + str(edit).splitlines()[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SavedModelWarning)
            try:
                edit.apply(builder)
            except SavedModelError as exc:
                raise SavedModelError(f"{where}: {exc}") from exc
        for warning in caught:
            if issubclass(warning.category, SavedModelWarning):
                notes.append(f"{where}: {warning.message}")
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return notes
