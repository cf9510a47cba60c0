"""Exact tag-set matching, as TensorFlow does it, and every diagnostic about tags.

TensorFlow picks the MetaGraphDef whose tag-set EQUALS the requested set (not
contains it), takes the first when several are equal, and answers a mismatch
with one line. Here the choice is the same, but the answer explains.
"""
from __future__ import annotations

import difflib
import os
import warnings
from dataclasses import dataclass
from typing import Iterable

from .errors import SavedModelError, SavedModelWarning, TagSetNotFoundError

STANDARD_TAGS = ("serve", "train", "eval", "gpu", "tpu")


def normalize_tags(tags) -> frozenset | None:
    """A request as a frozenset of tags; a bare string is ONE tag, never its characters."""
    if tags is None:
        return None
    if isinstance(tags, (str, bytes)):
        tags = [tags]
    try:
        items = list(tags)
    except TypeError:
        raise SavedModelError(
            f"tags={tags!r} is neither a string nor an iterable of strings. "
            "Pass e.g. tags='serve' or tags=['serve', 'gpu'].") from None
    result = []
    for tag in items:
        if isinstance(tag, bytes):
            tag = tag.decode("utf-8", "replace")
        if not isinstance(tag, str):
            raise SavedModelError(
                f"tags={tags!r} contains {tag!r}, which is not a string. "
                "Pass e.g. tags='serve' or tags=['serve', 'gpu'].")
        result.append(tag)
    return frozenset(result)


def format_tag_set(tag_set) -> str:
    """``{serve, gpu}``-style text in sorted order; the empty set is ``{}``."""
    return "{" + ", ".join(repr(t) for t in sorted(tag_set)) + "}"


def tag_sets_of(saved_model) -> list[frozenset]:
    """Every metagraph's tag-set, in file order."""
    return [frozenset(mg.meta_info_def.tags) for mg in saved_model.meta_graphs]


@dataclass(frozen=True)
class TagSuggestion:
    """A tag-set that may be what was meant, and why."""
    tag_set: frozenset
    reason: str
    score: float


def _looks_split(tag_set: frozenset, word: str) -> bool:
    """True when tag_set is the characters of ``word`` (a string iterated as a list)."""
    return len(word) > 1 and all(len(t) == 1 for t in tag_set) and tag_set == frozenset(word)


KNOWN_TAGS = frozenset(STANDARD_TAGS) | {"cpu"}


def _closest(tag: str, candidate: frozenset):
    """The candidate tag ``tag`` is probably a misspelling of, or None."""
    if tag in candidate:
        return tag
    low = tag.strip().lower()
    if len(low.split()) > 1:
        return None  # several words in one string: explained as such, not as a misspelling
    best, best_ratio = None, 0.0
    for other in candidate:
        if low == other.strip().lower():
            return other
        if low in KNOWN_TAGS and other in KNOWN_TAGS:
            continue  # 'gpu' is not a misspelling of 'cpu'
        ratio = difflib.SequenceMatcher(None, low, other.lower()).ratio()
        prefix = len(os.path.commonprefix([low, other.lower()]))
        if prefix >= 4 or prefix >= 0.6 * min(len(low), len(other)) > 1:
            ratio = max(ratio, 0.75)
        if ratio > best_ratio:
            best, best_ratio = other, ratio
    return best if best_ratio >= 0.7 else None


def _compare(requested: frozenset, candidate: frozenset):
    """(reason, score) relating a request to one available tag-set, or None."""
    norm_req = frozenset(t.strip().lower() for t in requested)
    if frozenset(t.strip().lower() for t in candidate) == norm_req:
        return "differs only in case or whitespace", 1.0
    for word in requested:
        if _looks_split(candidate, word):
            return (f"the model was saved with the string {word!r} where a list of tags was "
                    "meant, so TensorFlow stored its characters as separate tags"), 0.95
    for word in candidate:
        if _looks_split(requested, word):
            return (f"your request is the characters of {word!r} (a string was iterated where "
                    f"one tag was meant); this tag-set holds {word!r} itself"), 0.95
    for separator, what in ((",", "commas"), (None, "spaces")):
        if any(len(t.split(separator)) > 1 for t in requested):
            parts = frozenset(p.strip() for t in requested for p in t.split(separator) if p.strip())
            if parts == candidate:
                return f"your tag contains {what}: give each tag separately, not one string", 0.93
    if requested and requested < candidate:
        extra = ", ".join(sorted(candidate - requested))
        return f"contains every tag you asked for, plus {extra}", 0.8 - 0.01 * len(candidate - requested)
    corrected = {t: _closest(t, candidate) for t in requested}
    fixed = [f"{t!r} -> {c!r}" for t, c in sorted(corrected.items()) if c and c != t]
    if requested and fixed and all(corrected.values()):
        corrected_set = frozenset(corrected.values())
        if corrected_set == candidate:
            return f"near-miss spelling ({', '.join(fixed)})", 0.75
        if corrected_set < candidate:
            extra = ", ".join(sorted(candidate - corrected_set))
            return f"near-miss spelling ({', '.join(fixed)}), plus {extra}", 0.65
    if candidate and candidate < requested:
        missing = ", ".join(sorted(requested - candidate))
        return f"has some of your tags but not {missing}", 0.6
    if not candidate:
        return "the empty tag-set (the model was saved with tags=[])", 0.1
    return None


def suggest_tag_sets(requested: frozenset, available: Iterable[frozenset]) -> list[TagSuggestion]:
    """Rank the available tag-sets by how likely each is what ``requested`` meant."""
    suggestions = []
    for candidate in dict.fromkeys(available):
        if candidate != requested:
            found = _compare(requested, candidate)
            if found:
                suggestions.append(TagSuggestion(candidate, *found))
    suggestions.sort(key=lambda s: -s.score)
    if len(suggestions) > 1:  # the empty tag-set is only worth naming when nothing else fits
        suggestions = [s for s in suggestions if s.tag_set or s.score > 0.1]
    return suggestions


def tags_advice(tag_set, command_line: bool = False) -> str:
    """How to ask for ``tag_set``: ``tags=['gpu', 'serve']`` in Python, ``--tag_set gpu,serve``
    on the command line."""
    tags = sorted(tag_set)
    if command_line:
        return f"--tag_set {','.join(tags)}" if tags else "--tag_set ''"
    return f"tags={tags!r}"


def describe_tag_set(saved_model, tag_set) -> str:
    """``{'serve', 'gpu'} (signatures: a, b)`` for messages."""
    for mg in saved_model.meta_graphs:
        if frozenset(mg.meta_info_def.tags) == tag_set:
            keys = sorted(k for k in mg.signature_def if not k.startswith("__saved_model"))
            return f"{format_tag_set(tag_set)} (signatures: {', '.join(keys) or 'none'})"
    return format_tag_set(tag_set)


def tag_set_not_found(saved_model, requested, where="the SavedModel") -> TagSetNotFoundError:
    """The explanatory error for a request no tag-set equals."""
    available = tag_sets_of(saved_model)
    unique = list(dict.fromkeys(available))
    lines = [f"No MetaGraphDef in {where} has the tag-set {format_tag_set(requested)}; "
             "tag-sets must match exactly (TensorFlow compares the whole set)."]
    lines.append(f"Available tag-sets ({len(unique)}):")
    lines += [f"  - {describe_tag_set(saved_model, ts)}" for ts in unique]
    containing = [ts for ts in unique if requested and requested < ts]
    if len(containing) > 1:
        lines.append(
            f"Ambiguous: {format_tag_set(requested)} is contained in {len(containing)} tag-sets "
            f"({' and '.join(format_tag_set(ts) for ts in containing)}) and none equals it, "
            "so there is no single metagraph to pick; name the full tag-set you want.")
    suggestions = suggest_tag_sets(requested, available)
    example = (suggestions[0].tag_set if suggestions else unique[0]) if unique else frozenset()

    def render(command_line):
        advice = lines.copy()
        if suggestions:
            advice.append("Did you mean:")
            advice += [f"  - {tags_advice(s.tag_set, command_line)}: {s.reason}" for s in suggestions[:5]]
        advice.append(f"What to do: pass one available tag-set exactly, e.g. "
                      f"{tags_advice(example, command_line)}.")
        return "\n".join(advice)

    return TagSetNotFoundError(render(False), requested, available, [s.tag_set for s in suggestions],
                               render(True))


def duplicate_groups(saved_model) -> list[list[int]]:
    """Groups (of 2 or more) of metagraph indices sharing one tag-set, in file order."""
    by_set: dict[frozenset, list[int]] = {}
    for index, tag_set in enumerate(tag_sets_of(saved_model)):
        by_set.setdefault(tag_set, []).append(index)
    return [group for group in by_set.values() if len(group) > 1]


def shadowing_message(saved_model, group: list[int], with_fix: bool = True) -> str:
    """Explain that the first metagraph of ``group`` hides the others (and how to fix it,
    unless ``with_fix`` is False because the fix is shown apart)."""
    tag_set = frozenset(saved_model.meta_graphs[group[0]].meta_info_def.tags)
    parts = [f"{len(group)} MetaGraphDefs share the tag-set {format_tag_set(tag_set)} "
             f"(indices {', '.join(map(str, group))}). TensorFlow loads the first (index {group[0]}) "
             "and silently ignores the rest."]
    first_keys = set(saved_model.meta_graphs[group[0]].signature_def)
    for index in group[1:]:
        keys = set(saved_model.meta_graphs[index].signature_def)
        lost = sorted(k for k in keys - first_keys if not k.startswith("__saved_model"))
        parts.append(f"MetaGraphDef #{index} is shadowed; its signatures unreachable by tag: "
                     f"{', '.join(lost) if lost else 'none (all also exist in the first)'}.")
    if with_fix:
        parts.append(f"Fix: {SHADOWING_FIX}")
    return " ".join(parts)


SHADOWING_FIX = ("give each metagraph a distinct tag-set (Builder.set_tags) or remove the "
                 "duplicate (Builder.remove_meta_graph).")


def select_meta_graph(saved_model, tags=None, export_dir=None):
    """Pick the metagraph exactly as TensorFlow does; returns ``(index, MetaGraphDef)``.

    ``tags=None`` takes the only metagraph and is an error when there are several.
    Equal tag-sets: the first wins (TensorFlow's behaviour) with a SavedModelWarning.
    """
    where = f"{str(export_dir)!r}" if export_dir is not None else "the SavedModel"
    if not saved_model.meta_graphs:
        raise SavedModelError(
            f"The SavedModel in {where} contains no MetaGraphDef, so nothing can be loaded. "
            "If saved_model.pb holds a frozen GraphDef, re-export it with tf.saved_model.save "
            "or sm_notebook.Builder.")
    requested = normalize_tags(tags)
    available = tag_sets_of(saved_model)
    if requested is None:
        if len(available) == 1:
            return 0, saved_model.meta_graphs[0]
        unique = list(dict.fromkeys(available))

        def render(command_line):
            flag = "--tag_set" if command_line else "tags="
            lines = [f"The SavedModel in {where} has {len(available)} MetaGraphDefs; "
                     f"pass {flag} to choose one:"]
            lines += [f"  - {describe_tag_set(saved_model, ts)}" for ts in unique]
            lines.append(f"What to do: e.g. {tags_advice(unique[0], command_line)}.")
            return "\n".join(lines)

        raise TagSetNotFoundError(render(False), None, available, unique, render(True))
    matches = [i for i, ts in enumerate(available) if ts == requested]
    if not matches:
        raise tag_set_not_found(saved_model, requested, where)
    if len(matches) > 1:
        warnings.warn(shadowing_message(saved_model, matches), SavedModelWarning, stacklevel=3)
    return matches[0], saved_model.meta_graphs[matches[0]]


def misspelled_standard_tag(tag: str):
    """The standard tag ``tag`` was probably meant to be, or None."""
    if tag in STANDARD_TAGS:
        return None
    low = tag.strip().lower()
    if low in STANDARD_TAGS:
        return low
    best = difflib.get_close_matches(low, STANDARD_TAGS, n=1, cutoff=0.7)
    if best:
        return best[0]
    if low in ("serving", "server", "inference", "predict"):
        return "serve"
    if low in ("training",):
        return "train"
    return None
