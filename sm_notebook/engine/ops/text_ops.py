"""StringNGrams, the n-grams of each row of a ragged string tensor (tf.strings.ngrams,
Keras TextVectorization's ``ngrams``), and Fingerprint (tf.fingerprint), on the host."""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ...format.farmhash import fingerprint64
from .registry import kernel


def _attr_bytes(value) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value or b"")


def _check_splits(splits, size, op):
    if splits[0] != 0:
        raise SavedModelError(f"{op}: first split value must be 0, got {splits[0]}.")
    if np.any(np.diff(splits) < 0):
        raise SavedModelError(f"{op}: split values must never decrease, got {splits.tolist()}.")
    if splits[-1] != size:
        raise SavedModelError(f"{op}: last split value must be the data size {size}, got "
                              f"{splits[-1]}.")


class _NGrams:
    """TensorFlow's StringNGramsOp for one set of attributes."""

    def __init__(self, attrs):
        self.separator = _attr_bytes(attrs.get("separator", b" "))
        self.widths = [int(w) for w in attrs.get("ngram_widths", [])]
        self.left_pad = _attr_bytes(attrs.get("left_pad", b""))
        self.right_pad = _attr_bytes(attrs.get("right_pad", b""))
        self.pad_width = int(attrs.get("pad_width", 0))
        self.preserve_short = bool(attrs.get("preserve_short_sequences", False))
        if any(w <= 0 for w in self.widths):
            raise SavedModelError(f"StringNGrams: ngram_widths must be positive, got "
                                  f"{self.widths}.")

    def pad(self, width):
        return min(width - 1 if self.pad_width < 0 else self.pad_width, width - 1)

    def count(self, length, width):
        return max(0, length + 2 * self.pad(width) - width + 1)

    def row(self, tokens):
        """The n-grams of one row, every width in order."""
        out = []
        for width in self.widths:
            out += self.grams(tokens, width, self.count(len(tokens), width), self.pad(width))
        if not out and self.preserve_short and tokens:
            if self.pad_width < 0:
                raise SavedModelError(
                    f"StringNGrams: pad width should be >= 0 when preserve_short_sequences is "
                    f"True and ngram_widths are not provided, got {self.pad_width}.")
            width = len(tokens) + 2 * self.pad_width
            out = self.grams(tokens, width, 1, self.pad(width))
        return out

    def grams(self, tokens, width, count, pad):
        out = []
        for i in range(count):
            left = max(0, pad - i)
            right = max(0, pad - (count - (i + 1)))
            taken = width - left - right
            start = 0 if left > 0 else i - pad
            parts = [self.left_pad] * left + list(tokens[start:start + taken]) + \
                [self.right_pad] * right
            out.append(self.separator.join(parts))
        return out


@kernel("StringNGrams")
def string_ngrams(ctx, inputs, attrs):
    op = "StringNGrams"
    data, splits_t = np.asarray(inputs[0]), ctx.to_numpy(inputs[1])
    ngrams = _NGrams(attrs)
    if data.size == 0 or splits_t.size == 0:
        # TensorFlow then returns empty strings in the data's shape and the splits unchanged
        return [np.full(data.shape, b"", object), np.array(splits_t, copy=True)]
    splits = splits_t.reshape(-1).astype(np.int64)  # TensorFlow reads both flat
    _check_splits(splits, data.size, op)
    tokens = [v.encode() if isinstance(v, str) else bytes(v) for v in data.reshape(-1).tolist()]
    grams, out_splits = [], [0]
    for start, end in zip(splits[:-1], splits[1:]):
        grams += ngrams.row(tokens[start:end])
        out_splits.append(len(grams))
    result = np.empty(len(grams), object)
    result[:] = grams
    return [result, np.asarray(out_splits, splits_t.dtype).reshape(splits_t.shape)]


def _fingerprint_bytes(value: int) -> bytes:
    return value.to_bytes(8, "little")


@kernel("Fingerprint")
def fingerprint(ctx, inputs, attrs):
    """FarmHash Fingerprint64 of each row's bytes (little-endian values) as 8 uint8s; a row
    of several strings is the fingerprint of its strings' fingerprints laid end to end."""
    op = "Fingerprint"
    data, method = np.asarray(inputs[0]), np.asarray(inputs[1])
    if method.ndim != 0:
        raise SavedModelError(f"{op}: `method` should be a scalar string, got shape "
                              f"{method.shape}.")
    name = method.reshape(-1)[0]
    if (name.encode() if isinstance(name, str) else bytes(name)) != b"farmhash64":
        raise SavedModelError(f"{op}: unsupported fingerprint method {name!r}; TensorFlow has "
                              "only farmhash64.")
    if data.ndim < 1:
        raise SavedModelError(f"{op}: `data` should have at least one dimension, got a scalar.")
    rows = data.shape[0]
    flat = data.reshape(rows, -1) if rows else data.reshape(0, 0)
    if data.dtype == object:
        texts = [[v.encode() if isinstance(v, str) else bytes(v) for v in row] for row in flat]
        blobs = [row[0] if len(row) == 1 else
                 b"".join(_fingerprint_bytes(fingerprint64(v)) for v in row) for row in texts]
    else:
        little = np.ascontiguousarray(flat, dtype=flat.dtype.newbyteorder("<"))
        blobs = [row.tobytes() for row in little]
    out = np.frombuffer(b"".join(_fingerprint_bytes(fingerprint64(b)) for b in blobs),
                        np.uint8).reshape(rows, 8)
    return [out.copy()]
