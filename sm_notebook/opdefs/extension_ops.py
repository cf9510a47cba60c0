"""Ops that are not TensorFlow's own: the extension libraries that register them.

A SavedModel names an op by its registered name only; an op outside TensorFlow's
registry (`opdefs.get` returns None) comes from a library loaded into TensorFlow
(``tf.load_op_library``) when the model was made. `library_of` names that library for
the ops of the common ones, listed here from their sources (the ``REGISTER_OP`` calls);
any other op outside TensorFlow "comes from an unknown library".
"""
from __future__ import annotations

UNKNOWN_LIBRARY = "an unknown library (not core TensorFlow)"

#: library -> the ops it registers
LIBRARIES: dict[str, frozenset] = {}


def library_of(op: str) -> str | None:
    """The library ``op`` comes from; None for TensorFlow's own ops (and the engine's)."""
    from . import get

    for library, ops in LIBRARIES.items():
        if op in ops:
            return library
    return None if get(op) is not None else UNKNOWN_LIBRARY
