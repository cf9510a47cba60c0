"""CTC decoders: CTCGreedyDecoder and CTCBeamSearchDecoder, as TensorFlow's CPU kernels.

Both run on the host (TensorFlow's are sequential loops too) and return the decoded
paths as sparse tensors: per path, ``indices`` [n, 2] int64 (batch, time), ``values``
[n] int64 and ``dense_shape`` [2] int64 = (batch, longest), then ``log_probability``.

The beam search follows ``ctc_beam_search.h`` step by step with the default scorer: a
prefix tree of entries, each with (total, blank, label) log probabilities for the last
and the current step; a leaf set of at most ``beam_width`` entries where a new candidate
evicts the lowest entry (whose probabilities are reset, so it can come back as a new
child); entries visited in decreasing total order. Arithmetic is in the input dtype,
with ``LogSumExp`` in float32 (TensorFlow calls ``log1pf(expf(...))`` for every dtype).
Entries with exactly equal totals may be ordered differently from TensorFlow's heap.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import SavedModelError
from .registry import kernel

_LOG_ZERO = -math.inf


def _fail(op, message):
    raise SavedModelError(f"{op}: {message}")


def _checked_inputs(ctx, op, inputs):
    """(logits [time, batch, classes], sequence lengths) on the host, checked as TensorFlow does."""
    logits = np.asarray(ctx.to_numpy(inputs[0]))
    lengths = np.asarray(ctx.to_numpy(inputs[1]))
    if logits.ndim != 3:
        _fail(op, f"inputs is not a 3-Tensor (shape {list(logits.shape)}).")
    if lengths.ndim != 1:
        _fail(op, f"sequence_length is not a vector (shape {list(lengths.shape)}).")
    max_time, batch, classes = logits.shape
    if lengths.shape[0] != batch:
        _fail(op, f"len(sequence_length) != batch_size. len(sequence_length): {lengths.shape[0]} "
                  f"batch_size: {batch}")
    for b, length in enumerate(lengths.tolist()):
        if not length <= max_time:
            _fail(op, f"sequence_length({b}) <= {max_time}")
    if classes == 0 and (lengths > 0).any():
        _fail(op, "Invalid input dimensions: no classes.")
    return logits, lengths.astype(np.int64)


def _sparse_outputs(ctx, sequences_per_path, batch):
    """``StoreAllDecodedSequences``: per path, indices, values and dense shape."""
    indices, values, shapes = [], [], []
    for sequences in sequences_per_path:
        rows = [(b, t) for b, seq in enumerate(sequences) for t in range(len(seq))]
        indices.append(np.asarray(rows, np.int64).reshape(-1, 2))
        values.append(np.asarray([v for seq in sequences for v in seq], np.int64))
        longest = max((len(seq) for seq in sequences), default=0)
        shapes.append(np.asarray([batch, longest], np.int64))
    return [ctx.asarray(a) for a in indices + values + shapes]


@kernel("CTCGreedyDecoder")
def ctc_greedy_decoder(ctx, inputs, attrs):
    op = "CTCGreedyDecoder"
    logits, lengths = _checked_inputs(ctx, op, inputs)
    max_time, batch, classes = logits.shape
    merge_repeated = bool(attrs.get("merge_repeated", False))
    blank_attr = int(attrs.get("blank_index", -1))
    blank = classes + blank_attr if blank_attr < 0 else blank_attr
    if not 0 <= blank < classes:
        _fail(op, f"blank_index expected to be between {-classes} and {classes - 1} but was "
                  f"{blank_attr}")
    masked = np.where(np.isnan(logits), -np.inf, logits)
    best_index = np.argmax(masked, axis=2)  # the first maximum, as RowMax
    first_nan = np.isnan(logits[:, :, 0]) if classes else np.zeros(logits.shape[:2], bool)
    best_index = np.where(first_nan, 0, best_index)
    best = np.take_along_axis(logits, best_index[..., None], axis=2)[..., 0] if classes else \
        np.zeros(logits.shape[:2], logits.dtype)
    log_probability = np.zeros((batch, 1), logits.dtype)
    for t in range(max_time):  # summed in time order in the input dtype
        running = lengths > t
        log_probability[running, 0] = (log_probability[running, 0] - best[t, running]).astype(logits.dtype)
    sequences = []
    for b in range(batch):
        decoded, previous = [], -1
        for t in range(int(lengths[b])):
            index = int(best_index[t, b])
            if index != blank and not (merge_repeated and index == previous):
                decoded.append(index)
            previous = index
        sequences.append(decoded)
    return _sparse_outputs(ctx, [sequences], batch) + [ctx.asarray(log_probability)]


class _Entry:
    """A beam entry: a prefix of labels, with last-step (old) and this-step (new)
    (total, blank, label) log probabilities."""
    __slots__ = ("parent", "label", "children", "old", "new")

    def __init__(self, parent, label):
        self.parent = parent
        self.label = label
        self.children = {}
        self.old = [_LOG_ZERO, _LOG_ZERO, _LOG_ZERO]
        self.new = [_LOG_ZERO, _LOG_ZERO, _LOG_ZERO]

    def active(self):
        return self.new[0] != _LOG_ZERO

    def child(self, label):
        entry = self.children.get(label)
        if entry is None:
            entry = self.children[label] = _Entry(self, label)
        return entry

    def labels(self, merge_repeated):
        out, previous, entry = [], -1, self
        while entry.parent is not None:
            if not merge_repeated or entry.label != previous:
                out.append(entry.label)
            previous = entry.label
            entry = entry.parent
        return out[::-1]


def _log_sum_exp(a, b, real):
    """``LogSumExp`` of ctc_loss_util.h: the larger plus ``log1pf(expf(smaller - larger))``."""
    if a == _LOG_ZERO:
        return b
    if b == _LOG_ZERO:
        return a
    high, low = (a, b) if a > b else (b, a)
    with np.errstate(all="ignore"):
        step = np.log1p(np.exp(np.float32(low - high)))
    return real(high + real(step))


class _Leaves:
    """``gtl::TopN`` of entries by new total, at most ``limit``: a push into a full set
    drops the lowest unless the pushed entry is not strictly higher. The lowest entry is
    remembered until the set changes."""

    def __init__(self, limit):
        self.limit = limit
        self.items = []
        self._bottom = None
        #: a leaf with total -inf (a row of -inf logits): entries changed in place may be leaves
        self.holds_dead = False

    def full(self):
        return len(self.items) == self.limit

    def bottom(self):
        if self._bottom is None:
            self._bottom = min(self.items, key=lambda e: e.new[0])
        return self._bottom

    def push(self, entry):
        if len(self.items) < self.limit:
            self.items.append(entry)
        else:
            low = self.bottom()
            if not entry.new[0] > low.new[0]:
                return
            self.items[self.items.index(low)] = entry
        self._bottom = None
        self.holds_dead = self.holds_dead or entry.new[0] == _LOG_ZERO

    def changed(self):
        """An entry's probabilities were set in place: forget the lowest leaf if it may be
        among them."""
        if self.holds_dead:
            self._bottom = None

    def is_candidate(self, total):
        return total > _LOG_ZERO and (not self.full() or total > self.bottom().new[0])

    def extract(self):
        items = sorted(self.items, key=lambda e: -e.new[0])
        self.items = []
        self._bottom = None
        self.holds_dead = False
        return items


def _beam_search(logits, beam_width, real):
    """The leaves after running ``Step`` over the rows of ``logits`` [time, classes]."""
    classes = logits.shape[1]
    blank = classes - 1
    root = _Entry(None, -1)
    root.new = [real(0.0), real(0.0), _LOG_ZERO]
    leaves = _Leaves(beam_width)
    leaves.push(root)
    for row in logits:
        max_coeff = real(row.max()) if classes else real(0)
        with np.errstate(all="ignore"):
            total = real(0.0)
            for value in np.exp((row - max_coeff).astype(row.dtype)):
                total = real(total + value)
            norm_offset = real(max_coeff + real(np.log(total)))
            step = (row[:blank] - norm_offset).astype(row.dtype)  # logit - norm_offset per label
        branches = leaves.extract()
        for b in branches:
            b.old = list(b.new)
        for b in branches:
            total_, blank_, label_ = b.new
            if b.parent is not None:
                if b.parent.active():
                    previous = b.parent.old[1] if b.label == b.parent.label else b.parent.old[0]
                    label_ = _log_sum_exp(label_, previous, real)
                label_ = real(label_ + real(row[b.label] - norm_offset))
            blank_ = real(real(b.old[0] + row[blank]) - norm_offset)
            b.new = [_log_sum_exp(blank_, label_, real), blank_, label_]
            leaves.push(b)
        for b in branches:
            if not leaves.is_candidate(b.old[0]):
                continue
            with np.errstate(all="ignore"):
                values = (step + b.old[0]).astype(row.dtype)  # previous = old total ...
                if 0 <= b.label < blank:  # ... or old blank for a repeat of the entry's label
                    values[b.label] = real(step[b.label] + b.old[1])
            floor = leaves.bottom().new[0] if leaves.full() else _LOG_ZERO
            # A label that cannot beat the lowest leaf now never will in this step (it only
            # rises): TensorFlow creates its entry and resets it, which matters only for an
            # entry that already exists (an evicted branch visited later loses its old
            # probabilities), so only those are visited.
            passing = np.flatnonzero(values > floor).tolist()
            for label in sorted(set(passing).union(b.children)) if b.children else passing:
                c = b.child(label)
                if c.active():
                    continue
                label_ = real(values[label])
                c.new = [label_, _LOG_ZERO, label_]
                leaves.changed()
                if leaves.is_candidate(label_):
                    if leaves.full():
                        leaves.bottom().new = [_LOG_ZERO, _LOG_ZERO, _LOG_ZERO]
                    leaves.push(c)
                else:
                    c.old = [_LOG_ZERO, _LOG_ZERO, _LOG_ZERO]
                    c.new = [_LOG_ZERO, _LOG_ZERO, _LOG_ZERO]
                    leaves.changed()
    return leaves


@kernel("CTCBeamSearchDecoder")
def ctc_beam_search_decoder(ctx, inputs, attrs):
    op = "CTCBeamSearchDecoder"
    logits, lengths = _checked_inputs(ctx, op, inputs)
    max_time, batch, classes = logits.shape
    beam_width = int(attrs["beam_width"])
    top_paths = int(attrs["top_paths"])
    merge_repeated = bool(attrs.get("merge_repeated", True))
    if beam_width < 1 or top_paths < 1:
        _fail(op, f"beam_width ({beam_width}) and top_paths ({top_paths}) must be at least 1.")
    if top_paths > beam_width:
        _fail(op, "requested more paths than the beam width.")
    real = logits.dtype.type
    paths = [[None] * batch for _ in range(top_paths)]
    log_probability = np.zeros((batch, top_paths), logits.dtype)
    for b in range(batch):
        leaves = _beam_search(logits[:int(lengths[b]), b, :], beam_width, real)
        if top_paths > len(leaves.items):
            _fail(op, "Less leaves in the beam search than requested.")
        best = sorted(leaves.items, key=lambda e: -e.new[0])[:top_paths]
        for p, entry in enumerate(best):
            paths[p][b] = entry.labels(merge_repeated)
            log_probability[b, p] = entry.new[0]
    return _sparse_outputs(ctx, paths, batch) + [ctx.asarray(log_probability)]
