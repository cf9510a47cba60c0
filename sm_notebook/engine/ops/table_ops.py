"""Hash-table kernels: HashTableV2 / MutableHashTable* / MutableDenseHashTable and the
LookupTable* ops.

A table op returns a `TableHandle`; the table itself (`HashTable`) lives in
``ctx.resources[handle.key]``. Handles with the same container and shared_name
name the same table, as in TensorFlow. Vocabulary files must lie inside the
model's export directory.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ...errors import SavedModelError
from ...format.savedmodel import resolve_inside
from .registry import kernel

_ANONYMOUS = itertools.count()
_WHOLE_LINE, _LINE_NUMBER = -2, -1


@dataclass(frozen=True)
class TableHandle:
    """A DT_RESOURCE handle to a table: ``key`` indexes ``ctx.resources``."""
    key: tuple

    def __repr__(self):
        return f"TableHandle({self.key[1]!r}/{self.key[2]!r})"


@dataclass(eq=False)
class HashTable:
    """A lookup table. ``mutable`` tables take inserts; the others are initialized once."""
    key_dtype: np.dtype
    value_dtype: np.dtype
    value_shape: tuple = ()
    mutable: bool = False
    initialized: bool = False
    data: dict = field(default_factory=dict)

    def describe(self):
        return f"{self.key_dtype.name}->{self.value_dtype.name}"

    def check_keys(self, array, keys: list, op: str) -> None:
        """Refuse keys this kind of table cannot hold (dense tables: its marker keys, and
        key arrays that are not vectors); ``keys``: the elements of ``array``."""


@dataclass(eq=False)
class DenseHashTable(HashTable):
    """A MutableDenseHashTable: TensorFlow keeps it in open-addressed buckets where
    ``empty_key`` and ``deleted_key`` mark free slots, so neither can be a key. Here the
    entries are a dict: lookups, size and inserts agree with TensorFlow; LookupTableExport
    gives the live entries in insertion order, not TensorFlow's bucket array (which also
    lists the free slots)."""
    empty_key: object = None
    deleted_key: object = None

    def check_keys(self, array, keys: list, op: str) -> None:
        shape = np.shape(array)
        if len(shape) > 1:
            raise SavedModelError(f"{op}: a dense table takes a scalar key or a vector of them; "
                                  f"expected key shape [n], got {list(shape)}.")
        for marker, what in ((self.empty_key, "empty_key"), (self.deleted_key, "deleted_key")):
            if marker in keys:
                raise SavedModelError(f"{op}: using the {what} ({marker!r}) as a table key is "
                                      "not allowed (TensorFlow refuses it too).")


def _key_of(value):
    """A hashable Python key for one table key element (strings as bytes)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value)
    return value.item() if isinstance(value, np.generic) else value


def _keys(array) -> list:
    return [_key_of(v) for v in np.asarray(array).reshape(-1)]


def _create(ctx, attrs, op, mutable, value_shape=(), anonymous=False, make=HashTable, **extra):
    """The handle of the table ``container/shared_name``, created on first use.

    Without a shared_name, a table is private to its node when the engine passes the
    node's name as the ``_node_name`` attr (TensorFlow's per-kernel table), else to this
    one execution. Anonymous* ops have no shared_name attr: one the engine sets (a
    main-graph node of a TF2 export, which TensorFlow's loader runs once as a restored
    resource) names the table; without it the table belongs to this one execution.
    """
    key_dtype, value_dtype = np.dtype(attrs["key_dtype"]), np.dtype(attrs["value_dtype"])
    container = attrs.get("container", "") or ""
    shared_name = attrs.get("shared_name", "") or ""
    if not shared_name and not anonymous:
        shared_name = attrs.get("_node_name", "")
    if not shared_name:
        shared_name = f"_anonymous_table_{next(_ANONYMOUS)}"
    key = ("table", container, shared_name)
    table = ctx.resources.get(key)
    if table is None:
        table = make(key_dtype, value_dtype, tuple(value_shape), mutable, initialized=mutable,
                     **extra)
        ctx.resources[key] = table
    elif not isinstance(table, make) or \
            (table.key_dtype, table.value_dtype) != (key_dtype, value_dtype):
        have = table.describe() if isinstance(table, HashTable) else type(table).__name__
        raise SavedModelError(f"{op}: conflicting key/value dtypes "
                              f"{key_dtype.name}->{value_dtype.name} "
                              f"with {have} for table {shared_name!r}.")
    return [TableHandle(key)]


@kernel("HashTableV2", "HashTable")
def hash_table(ctx, inputs, attrs):
    return _create(ctx, attrs, "HashTableV2", mutable=False)


@kernel("AnonymousHashTable")
def anonymous_hash_table(ctx, inputs, attrs):
    return _create(ctx, attrs, "AnonymousHashTable", mutable=False, anonymous=True)


@kernel("MutableHashTableV2", "MutableHashTable")
def mutable_hash_table(ctx, inputs, attrs):
    return _create(ctx, attrs, "MutableHashTableV2", mutable=True)


@kernel("AnonymousMutableHashTable")
def anonymous_mutable_hash_table(ctx, inputs, attrs):
    return _create(ctx, attrs, "AnonymousMutableHashTable", mutable=True, anonymous=True)


def _tensors_table(ctx, attrs, op, anonymous=False):
    shape = attrs.get("value_shape", ())
    if shape is None or None in shape:
        raise SavedModelError(f"{op}: value_shape must be fully defined, got {shape}.")
    return _create(ctx, attrs, op, mutable=True, value_shape=shape, anonymous=anonymous)


@kernel("MutableHashTableOfTensorsV2", "MutableHashTableOfTensors")
def mutable_hash_table_of_tensors(ctx, inputs, attrs):
    return _tensors_table(ctx, attrs, "MutableHashTableOfTensorsV2")


@kernel("AnonymousMutableHashTableOfTensors")
def anonymous_mutable_hash_table_of_tensors(ctx, inputs, attrs):
    return _tensors_table(ctx, attrs, "AnonymousMutableHashTableOfTensors", anonymous=True)


def _dense_table(ctx, inputs, attrs, op, anonymous=False):
    shape = attrs.get("value_shape", ())
    if shape is None or None in shape:
        raise SavedModelError(f"{op}: value_shape must be fully defined, got {shape}.")
    markers = []
    for value, what in ((inputs[0], "empty_key"), (inputs[1], "deleted_key")):
        array = np.asarray(value)
        if array.ndim != 0:
            raise SavedModelError(f"{op}: {what} of shape {array.shape}: sm_notebook's engine "
                                  "runs dense tables with scalar keys only.")
        markers.append(_keys(array)[0])
    if markers[0] == markers[1]:
        raise SavedModelError(f"{op}: empty_key and deleted_key must differ, both are "
                              f"{markers[0]!r}.")
    if "key_dtype" not in attrs:  # the OpDef's key_dtype is the empty_key's type
        attrs = {**attrs, "key_dtype": np.asarray(inputs[0]).dtype}
    return _create(ctx, attrs, op, mutable=True, value_shape=shape, anonymous=anonymous,
                   make=DenseHashTable, empty_key=markers[0], deleted_key=markers[1])


@kernel("MutableDenseHashTableV2", "MutableDenseHashTable")
def mutable_dense_hash_table(ctx, inputs, attrs):
    return _dense_table(ctx, inputs, attrs, "MutableDenseHashTableV2")


@kernel("AnonymousMutableDenseHashTable")
def anonymous_mutable_dense_hash_table(ctx, inputs, attrs):
    return _dense_table(ctx, inputs, attrs, "AnonymousMutableDenseHashTable", anonymous=True)


def _table(ctx, handle, op) -> HashTable:
    table = ctx.resources.get(handle.key) if isinstance(handle, TableHandle) else None
    if table is None:
        raise SavedModelError(f"{op}: {handle!r} is not a table created by this model (run its "
                              "table-creating op first).")
    return table


def _dtype_matches(array, dtype: np.dtype) -> bool:
    kind = np.asarray(array).dtype.kind
    if dtype.kind == "O":
        return kind in "OS"
    return kind not in "OSU" and np.asarray(array).dtype == dtype


def _check_dtypes(table, keys, values, op):
    if not _dtype_matches(keys, table.key_dtype):
        raise SavedModelError(f"{op}: keys of dtype {np.asarray(keys).dtype.name} do not match the "
                              f"table's {table.describe()}.")
    if values is not None and not _dtype_matches(values, table.value_dtype):
        raise SavedModelError(f"{op}: values of dtype {np.asarray(values).dtype.name} do not match "
                              f"the table's {table.describe()}.")


def _rows(table, keys, values, op):
    """Values reshaped to one row (scalar or value_shape array) per key."""
    keys, values = np.asarray(keys), np.asarray(values)
    expected = keys.shape + table.value_shape
    if values.shape != expected:
        raise SavedModelError(f"{op}: expected values of shape {expected} for keys of shape "
                              f"{keys.shape}, got {values.shape}.")
    flat = values.reshape((keys.size,) + table.value_shape)
    if table.value_shape:
        return list(flat)
    return [v.item() if isinstance(v, np.generic) else v for v in flat]


def _same(a, b) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _initialize(table, keys: list, values: list, op):
    """Fill an initializable table; TensorFlow's checks for re-initialization and duplicates."""
    if table.initialized:
        if len(keys) != len(table.data) or any(k not in table.data or not _same(table.data[k], v)
                                               for k, v in zip(keys, values)):
            raise SavedModelError(f"{op}: table was already initialized with different data.")
        return
    data = {}
    for k, v in zip(keys, values):
        if k in data and not _same(data[k], v):
            raise SavedModelError(f"{op}: HashTable has different value for same key. Key {k!r} "
                                  f"has {data[k]!r} and trying to add value {v!r}.")
        data[k] = v
    table.data = data
    table.initialized = True


@kernel("InitializeTableV2", "InitializeTable")
def initialize_table(ctx, inputs, attrs):
    op = "InitializeTableV2"
    table = _table(ctx, inputs[0], op)
    keys, values = inputs[1], inputs[2]
    _check_dtypes(table, keys, values, op)
    if np.asarray(keys).shape != np.asarray(values).shape:
        raise SavedModelError(f"{op}: keys and values must have the same shape, got "
                              f"{np.asarray(keys).shape} and {np.asarray(values).shape}.")
    _initialize(table, _keys(keys), _rows(table, keys, values, op), op)
    return []


def _vocabulary_path(ctx, filename, op):
    name = np.asarray(filename).reshape(-1)
    if name.size != 1:
        raise SavedModelError(f"{op}: filename must be a scalar string.")
    name = name[0]
    name = name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else str(name)
    if ctx.export_dir is not None:
        return resolve_inside(ctx.export_dir, name)
    if getattr(ctx, "allow_io", False):
        from pathlib import Path
        return Path(name)
    raise SavedModelError(f"{op}: refusing to read vocabulary file {name!r}: the model has no "
                          "export directory to confine it to (pass allow_io=True to read arbitrary "
                          "files).")


def _parse_field(text: bytes, dtype: np.dtype, line_number: int, op):
    from .string_ops import _parse_number
    if dtype.kind == "O":
        return text
    try:
        if dtype.kind == "i":
            return _parse_number(text, dtype)
        return float(np.asarray(_parse_number(text, dtype), dtype))
    except (ValueError, OverflowError):
        raise SavedModelError(f"{op}: field {text!r} in line {line_number} is not a valid "
                              f"{dtype.name}.") from None


def _text_lines(data: bytes, path, op):
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out, position = [], 0
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            raise SavedModelError(f"{op}: invalid content in {path}: empty line found at position "
                                  f"{position}.")
        out.append(line)
        position += len(line) + 1
    return out


@kernel("InitializeTableFromTextFileV2", "InitializeTableFromTextFile")
def initialize_table_from_text_file(ctx, inputs, attrs):
    op = "InitializeTableFromTextFileV2"
    table = _table(ctx, inputs[0], op)
    key_index, value_index = int(attrs["key_index"]), int(attrs["value_index"])
    vocab_size = int(attrs.get("vocab_size", -1))
    offset = int(attrs.get("offset", 0))
    delimiter = attrs.get("delimiter", "\t")
    delimiter = delimiter.encode() if isinstance(delimiter, str) else bytes(delimiter)
    if len(delimiter) != 1:
        raise SavedModelError(f"{op}: delimiter should be only 1 char, got {delimiter!r}.")
    for index, dtype, what in ((key_index, table.key_dtype, "Key"),
                               (value_index, table.value_dtype, "Value")):
        if index == _LINE_NUMBER and dtype != np.int64:
            raise SavedModelError(f"{op}: {what} index for line number requires table "
                                  f"{what.lower()} "
                                  f"dtype of int64, got {dtype.name}.")
        if index == _WHOLE_LINE and dtype.kind != "O" and dtype.kind not in "iuf":
            raise SavedModelError(f"{op}: {what} index for whole line requires string or numeric "
                                  f"dtype, got {dtype.name}.")
        if index < _WHOLE_LINE:
            raise SavedModelError(f"{op}: invalid {what.lower()} index {index}.")
    path = _vocabulary_path(ctx, inputs[1], op)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SavedModelError(f"{op}: cannot read vocabulary file {str(path)!r}: "
                              f"{exc.strerror}.") from None
    lines = _text_lines(data, path.name, op)
    if vocab_size > 0:
        if len(lines) < vocab_size:
            raise SavedModelError(f"{op}: invalid vocab_size in {path.name}: expected {vocab_size} "
                                  f"but got {len(lines)}.")
        lines = lines[:vocab_size]
    keys, values = [], []
    columns_needed = max(key_index, value_index) + 1
    for number, line in enumerate(lines):
        tokens = line.split(delimiter) if columns_needed > 0 else [line]
        if len(tokens) < columns_needed:
            raise SavedModelError(f"{op}: invalid number of columns in {path.name} line {number} "
                                  f"({line!r}): expected at least {columns_needed} got "
                                  f"{len(tokens)}.")

        def pick(index, dtype):
            if index == _LINE_NUMBER:
                return number + offset
            text = line if index == _WHOLE_LINE else tokens[index]
            return _parse_field(text, dtype, number, op)
        keys.append(pick(key_index, table.key_dtype))
        values.append(pick(value_index, table.value_dtype))
    _initialize(table, keys, values, op)
    return []


@kernel("LookupTableFindV2", "LookupTableFind")
def lookup_table_find(ctx, inputs, attrs):
    op = "LookupTableFindV2"
    table = _table(ctx, inputs[0], op)
    keys, default = np.asarray(inputs[1]), np.asarray(inputs[2])
    _check_dtypes(table, keys, default, op)
    if not table.initialized:
        raise SavedModelError(f"{op}: table not initialized (run the model's table initializer "
                              "first).")
    shape = table.value_shape
    per_key = False
    if shape:
        if default.shape == keys.shape + shape:
            per_key = True
        elif default.shape != shape:
            raise SavedModelError(f"{op}: expected shape {list(shape)} or "
                                  f"{list(keys.shape + shape)} "
                                  f"for default value, got {list(default.shape)}.")
    elif table.mutable and default.size == keys.size and default.size != 1:
        per_key = True
    elif default.size < 1:
        raise SavedModelError(f"{op}: default_value must hold a value.")
    if per_key and isinstance(table, DenseHashTable):  # TensorFlow's dense table: the first row
        per_key, default = False, default.reshape((-1,) + shape)[0]
    flat_defaults = default.reshape((keys.size,) + shape) if per_key else None
    fallback = default if shape else default.reshape(-1)[0]
    out = np.empty((keys.size,) + shape, dtype=table.value_dtype)
    listed = _keys(keys)
    table.check_keys(keys, listed, op)
    for i, k in enumerate(listed):
        value = table.data.get(k)
        if value is None:
            value = flat_defaults[i] if per_key else fallback
        out[i] = value
    return [out.reshape(keys.shape + shape)]


@kernel("LookupTableInsertV2", "LookupTableInsert")
def lookup_table_insert(ctx, inputs, attrs):
    op = "LookupTableInsertV2"
    table = _table(ctx, inputs[0], op)
    if not table.mutable:
        raise SavedModelError(f"{op}: insert not supported by initializable (immutable) tables.")
    _check_dtypes(table, inputs[1], inputs[2], op)
    keys = _keys(inputs[1])
    table.check_keys(inputs[1], keys, op)
    table.data.update(zip(keys, _rows(table, inputs[1], inputs[2], op)))
    return []


@kernel("LookupTableRemoveV2")
def lookup_table_remove(ctx, inputs, attrs):
    op = "LookupTableRemoveV2"
    table = _table(ctx, inputs[0], op)
    if not table.mutable:
        raise SavedModelError(f"{op}: remove not supported by initializable (immutable) tables.")
    _check_dtypes(table, inputs[1], None, op)
    keys = _keys(inputs[1])
    table.check_keys(inputs[1], keys, op)
    for k in keys:
        table.data.pop(k, None)
    return []


@kernel("LookupTableImportV2", "LookupTableImport")
def lookup_table_import(ctx, inputs, attrs):
    op = "LookupTableImportV2"
    table = _table(ctx, inputs[0], op)
    _check_dtypes(table, inputs[1], inputs[2], op)
    if isinstance(table, DenseHashTable):
        _import_buckets(table, np.asarray(inputs[1]), np.asarray(inputs[2]), op)
        return []
    rows = _rows(table, inputs[1], inputs[2], op)
    if table.mutable:
        table.data = dict(zip(_keys(inputs[1]), rows))
    else:
        _initialize(table, _keys(inputs[1]), rows, op)
    return []


def _import_buckets(table, keys, values, op):
    """A dense table's import: TensorFlow's layout, keys ``[n, 1]`` and values ``[n, value
    size]``, where rows whose key is empty_key or deleted_key are free slots."""
    width = int(np.prod(table.value_shape, dtype=np.int64))
    if keys.ndim != 2 or keys.shape[1] != 1 or values.shape != (keys.shape[0], width):
        raise SavedModelError(f"{op}: a dense table imports keys of shape [n, 1] and values of "
                              f"shape [n, {width}], got {list(keys.shape)} and {list(values.shape)}.")
    rows = list(values.reshape((keys.shape[0],) + table.value_shape))
    if not table.value_shape:
        rows = [v.item() if isinstance(v, np.generic) else v for v in rows]
    markers = (table.empty_key, table.deleted_key)
    table.data = {k: v for k, v in zip(_keys(keys), rows) if k not in markers}


@kernel("LookupTableSizeV2", "LookupTableSize")
def lookup_table_size(ctx, inputs, attrs):
    return [np.asarray(len(_table(ctx, inputs[0], "LookupTableSizeV2").data), np.int64)]


@kernel("LookupTableExportV2", "LookupTableExport")
def lookup_table_export(ctx, inputs, attrs):
    table = _table(ctx, inputs[0], "LookupTableExportV2")
    if not table.initialized:
        raise SavedModelError("LookupTableExportV2: table is not initialized.")
    keys = np.empty(len(table.data), dtype=table.key_dtype)
    values = np.empty((len(table.data),) + table.value_shape, dtype=table.value_dtype)
    for i, (k, v) in enumerate(table.data.items()):
        keys[i] = k
        values[i] = v
    if isinstance(table, DenseHashTable):  # TensorFlow's layout: one row per entry
        width = int(np.prod(table.value_shape, dtype=np.int64))
        return [keys.reshape(-1, 1), values.reshape(len(keys), width)]
    return [keys, values]
