"""Input values typed as text, parsed and never evaluated.

Used by ``sm-notebook run --input_exprs/--input_examples``, ``%savedmodel run
NAME=VALUE`` and the run panel's typed values. The text is parsed with `ast.parse`
and walked here; nothing is passed to `eval` and no attribute is looked up on a
module, so only what this module lists can happen:

- Python literals: numbers (also ``-1``, ``1+2j``), strings, bytes, True, False,
  None, lists, tuples and dicts of them (as `ast.literal_eval`; sets are refused);
- ``np.``/``numpy.`` constructors with literal arguments: `CONSTRUCTORS`;
- ``np.float32(...)``-style scalar types and dtypes (`DTYPES`), ``np.nan``,
  ``np.inf``, ``np.pi``, ``np.e``;
- ``.reshape(...)`` and ``.astype(dtype)`` on an array built so;
- in a notebook, a bare variable name, looked up (not evaluated) in ``names``.

An expression may allocate at most ``max_bytes`` (default `MAX_INPUT_BYTES`) in
all; sizes are checked before numpy allocates. Anything else raises
`SavedModelError` naming the expression and what is allowed.
"""
from __future__ import annotations

import ast
import math
from collections.abc import Mapping

import numpy as np

from .errors import SavedModelError

MAX_INPUT_BYTES = 2**30  # 1 GiB: larger inputs belong in .npy files (--inputs)

NUMPY_PREFIXES = ("np", "numpy")

#: dtype names accepted as ``np.<name>``, as strings ('float32') and, for the
#: Python builtins, as bare names (dtype=float).
DTYPES = {name: np.dtype(name) for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128")}
DTYPES.update({"bool_": np.dtype(bool), "half": np.dtype("float16"), "single": np.dtype("float32"),
               "double": np.dtype("float64"), "object": np.dtype(object), "object_": np.dtype(object),
               "bytes_": np.dtype(bytes), "str_": np.dtype(str)})
BUILTIN_DTYPES = {"bool": np.dtype(bool), "int": np.dtype(int), "float": np.dtype(float),
                  "complex": np.dtype(complex), "bytes": np.dtype(bytes), "str": np.dtype(str),
                  "object": np.dtype(object)}
CONSTANTS = {"nan": math.nan, "inf": math.inf, "pi": math.pi, "e": math.e}

ALLOWED = ("Python literals (numbers, strings, bytes, True/False/None, lists, tuples, dicts) and "
           "np.array, asarray, zeros, ones, full, arange, linspace, eye, identity, random.rand, "
           "random.randn with literal arguments, np.<dtype>(value), np.nan/inf/pi/e, "
           ".reshape(...) and .astype(dtype)")


class _Refused(Exception):
    """Why an expression is not accepted (turned into a SavedModelError by `parse_value`)."""


def parse_value(text: str, *, what: str = "input", names: Mapping | None = None,
                max_bytes: int = MAX_INPUT_BYTES):
    """The value ``text`` denotes (see the module docstring); ``what`` names it in errors.

    ``names``: variables a bare name may refer to (a notebook's namespace); None
    refuses bare names.
    """
    allowed = ALLOWED + (", and notebook variable names" if names is not None else "")
    shown = text if len(text) <= 200 else text[:200] + "..."
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise SavedModelError(f"Cannot parse {what} {shown!r}: {reason}. Allowed: {allowed}.") from None
    walker = _Walker(names, max_bytes, tree.body)
    try:
        return walker.value(tree.body)
    except _Refused as exc:
        raise SavedModelError(f"Cannot use {what} {shown!r}: {exc}. Allowed: {allowed}.") from None
    except RecursionError:
        raise SavedModelError(f"Cannot use {what} {shown!r}: nested too deeply. Allowed: {allowed}.") from None
    except (TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise SavedModelError(f"Cannot build {what} {shown!r}: {type(exc).__name__}: {exc}.") from None


def _short(node) -> str:
    """A node as source text, quoted and cut to 80 characters, for messages."""
    text = ast.unparse(node)
    return repr(text if len(text) <= 80 else text[:80] + "...")


def dotted_name(node) -> str | None:
    """``np.random.rand`` -> "np.random.rand" for a chain of plain names, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _numpy_member(node) -> str | None:
    """"random.rand" for ``np.random.rand`` / ``numpy.random.rand``; None for anything else."""
    name = dotted_name(node)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    return rest if head in NUMPY_PREFIXES and rest else None


def as_dtype(value) -> np.dtype:
    """A dtype argument: a `DTYPES` name, a builtin type name, or a dtype already parsed."""
    if isinstance(value, np.dtype):
        return value
    if isinstance(value, type) and issubclass(value, np.generic) and np.dtype(value) in DTYPES.values():
        return np.dtype(value)  # a numpy scalar type from a notebook variable (from numpy import float32)
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    if isinstance(value, str) and value in BUILTIN_DTYPES:
        return BUILTIN_DTYPES[value]
    raise _Refused(f"dtype {value!r} is not one of {', '.join(sorted(DTYPES))}")


class _Walker:
    """Turns one expression's AST into a value, counting the bytes numpy is asked for."""

    def __init__(self, names, max_bytes, root=None):
        self.names, self.max_bytes, self.spent, self.root = names, max_bytes, 0, root

    # -- sizes ---------------------------------------------------------------

    def reserve(self, count, itemsize: int, call: str):
        """Count ``count`` elements of ``itemsize`` bytes against the budget before allocating."""
        if not isinstance(count, int) and not (isinstance(count, float) and math.isfinite(count)):
            raise _Refused(f"{call} asks for {count} elements")
        nbytes = int(count) * max(int(itemsize), 1)
        if nbytes > self.max_bytes - self.spent:
            raise _Refused(f"{call} would allocate {nbytes:,} bytes, over the {self.max_bytes:,}-byte "
                           "limit for typed inputs (save large inputs to a .npy file)")
        self.spent += nbytes

    # -- values --------------------------------------------------------------

    def value(self, node):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float, complex, str, bytes, bool)) or node.value is None:
                return node.value
            raise _Refused(f"{node.value!r} is not a literal")
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise _Refused("** in a dict")
            return {self.key(k): self.value(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.value(node.operand)
            if isinstance(operand, bool) or not isinstance(operand, (int, float, complex)):
                raise _Refused("a sign applies to numbers only")
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return self.complex_literal(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            return self.numpy_constant(node)
        if isinstance(node, ast.Name):
            return self.variable(node.id)
        what = "it" if node is self.root else _short(node)
        raise _Refused(f"{what} is not a literal or an allowed call")

    def key(self, node):
        key = self.value(node)
        if not isinstance(key, (int, float, str, bytes, bool, tuple)):
            raise _Refused(f"dict key {_short(node)} is not a literal")
        return key

    def complex_literal(self, node):
        """``1+2j`` / ``-1-2j``: a real number and an imaginary one, as ast.literal_eval allows."""
        left, right = self.value(node.left), self.value(node.right)
        real_ok = isinstance(left, (int, float)) and not isinstance(left, bool)
        if not (real_ok and isinstance(right, complex) and isinstance(node.right, ast.Constant)):
            raise _Refused(f"arithmetic ({_short(node)}) is not allowed; only complex "
                           "literals like 1+2j")
        return left + right if isinstance(node.op, ast.Add) else left - right

    def numpy_constant(self, node):
        member = _numpy_member(node)
        if member in CONSTANTS:
            return CONSTANTS[member]
        if member in DTYPES:
            return DTYPES[member]
        raise _Refused(f"{_short(node)} is not an allowed name")

    def variable(self, name: str):
        if self.names is not None and name in self.names:
            return self.names[name]
        if name in BUILTIN_DTYPES:  # dtype=float
            return BUILTIN_DTYPES[name]
        if self.names is None:
            raise _Refused(f"names ({name!r}) are not allowed; write the value itself")
        raise _Refused(f"there is no notebook variable {name!r}")

    # -- calls ---------------------------------------------------------------

    def call(self, node):
        member = _numpy_member(node.func)
        text = ast.unparse(node.func)[:80]
        method = isinstance(node.func, ast.Attribute) and node.func.attr in METHODS and member is None
        if member not in CONSTRUCTORS and member not in DTYPES and not method:
            raise _Refused(f"calling {text!r} is not allowed")
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise _Refused("*args and **kwargs are not allowed")
        args = [self.value(a) for a in node.args]
        kwargs = {k.arg: self.value(k.value) for k in node.keywords}
        if member in CONSTRUCTORS:
            return CONSTRUCTORS[member](self, text, *args, **kwargs)
        if member in DTYPES:  # np.float32(1.5)
            dtype = DTYPES[member]
            if len(args) != 1 or kwargs:
                raise _Refused(f"{text}() takes one value")
            return self.array(text, args[0], dtype)[()]
        target = self.value(node.func.value)
        if not isinstance(target, np.ndarray):
            raise _Refused(f".{node.func.attr}() applies to arrays, not {type(target).__name__}")
        return METHODS[node.func.attr](self, text, target, *args, **kwargs)

    # -- the constructors (each checks its size before numpy allocates) ------

    def shape(self, call, shape) -> tuple:
        dims = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
            raise _Refused(f"{call}: a shape is integers, got {shape!r}")
        if any(d < 0 for d in dims):
            raise _Refused(f"{call}: negative dimension in {shape!r}")
        return dims

    def array(self, call, obj, dtype=None, **rest):
        if rest:
            raise _Refused(f"{call}() takes the values and dtype only")
        dtype = None if dtype is None else as_dtype(dtype)
        if isinstance(obj, np.ndarray):
            self.reserve(obj.size, (dtype or obj.dtype).itemsize, call)
        result = np.array(obj, dtype=dtype)
        if not isinstance(obj, np.ndarray):
            self.reserve(result.size, result.dtype.itemsize, call)
        return result

    def filled(self, call, shape, fill, dtype):
        dims = self.shape(call, shape)
        dtype = as_dtype(dtype) if dtype is not None else np.asarray(fill).dtype
        itemsize = max(dtype.itemsize, len(fill) * 4 if isinstance(fill, (str, bytes)) else 0)
        self.reserve(math.prod(dims), itemsize, call)
        return np.full(dims, fill, dtype=dtype)

    def zeros(self, call, shape, dtype="float64"):
        return self.filled(call, shape, 0, dtype)

    def ones(self, call, shape, dtype="float64"):
        return self.filled(call, shape, 1, dtype)

    def full(self, call, shape, fill_value, dtype=None):
        if not isinstance(fill_value, (int, float, complex, str, bytes, bool)):
            raise _Refused(f"{call}: the fill value is a number, string or bytes")
        return self.filled(call, shape, fill_value, dtype)

    def arange(self, call, start, stop=None, step=1, dtype=None):
        if stop is None:
            start, stop = 0, start
        numbers = (start, stop, step)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            raise _Refused(f"{call}: start, stop and step are real numbers")
        if step == 0:
            raise _Refused(f"{call}: step is 0")
        count = (stop - start) / step
        if not math.isfinite(count):
            raise _Refused(f"{call} asks for {count} elements")
        dtype = None if dtype is None else as_dtype(dtype)
        self.reserve(max(0, math.ceil(count)), (dtype or np.dtype(float)).itemsize, call)
        return np.arange(start, stop, step, dtype=dtype)

    def linspace(self, call, start, stop, num=50, endpoint=True, dtype=None):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, stop)):
            raise _Refused(f"{call}: start and stop are real numbers")
        (num,) = self.shape(call, num)
        dtype = None if dtype is None else as_dtype(dtype)
        self.reserve(num, (dtype or np.dtype(float)).itemsize, call)
        return np.linspace(start, stop, num, endpoint=bool(endpoint), dtype=dtype)

    def eye(self, call, N, M=None, k=0, dtype="float64"):
        rows, cols = self.shape(call, (N, N if M is None else M))
        if not isinstance(k, int):
            raise _Refused(f"{call}: k is an integer")
        dtype = as_dtype(dtype)
        self.reserve(rows * cols, dtype.itemsize, call)
        return np.eye(rows, cols, k, dtype=dtype)

    def identity(self, call, n, dtype="float64"):
        return self.eye(call, n, dtype=dtype)

    def random(self, call, *dims, normal=False):
        dims = self.shape(call, dims)
        self.reserve(math.prod(dims), 8, call)
        return np.random.randn(*dims) if normal else np.random.rand(*dims)

    # -- methods on arrays built above ---------------------------------------

    def reshape(self, call, target, *shape):
        dims = shape[0] if len(shape) == 1 and isinstance(shape[0], (list, tuple)) else shape
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
            raise _Refused(f"{call}: a shape is integers, got {dims!r}")
        if not target.flags.c_contiguous:  # reshaping copies
            self.reserve(target.size, target.dtype.itemsize, call)
        return target.reshape(dims)

    def astype(self, call, target, dtype):
        dtype = as_dtype(dtype)
        self.reserve(target.size, dtype.itemsize, call)
        return target.astype(dtype)


CONSTRUCTORS = {
    "array": _Walker.array, "asarray": _Walker.array, "zeros": _Walker.zeros, "ones": _Walker.ones,
    "full": _Walker.full, "arange": _Walker.arange, "linspace": _Walker.linspace, "eye": _Walker.eye,
    "identity": _Walker.identity, "random.rand": _Walker.random,
    "random.randn": lambda walker, call, *dims: walker.random(call, *dims, normal=True),
}
METHODS = {"reshape": _Walker.reshape, "astype": _Walker.astype}


def split_assignments(text: str, flag: str) -> list[tuple[str, str]]:
    """``'a=1;b=[2, 3]'`` -> ``[('a', '1'), ('b', '[2, 3]')]``, as saved_model_cli splits
    --inputs, --input_exprs and --input_examples (at ``;``, then at the first ``=``)."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise SavedModelError(f"Cannot parse {flag} {part!r}: expected <input key>=<value>.")
        pairs.append((key.strip(), value.strip()))
    return pairs


def load_array_file(spec: str, what: str = "input"):
    """The array in ``x.npy``, ``x.npz`` (its only array) or ``x.npz[name]``; never unpickles.
    ``what`` names the input in messages."""
    import numpy as np
    name = None
    if spec.endswith("]") and "[" in spec:
        spec, name = spec[:-1].split("[", 1)
    try:
        loaded = np.load(spec, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SavedModelError(f"Cannot read {what} from {spec!r}: {exc}.") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded
    with loaded:
        names = loaded.files
        if name is None and len(names) != 1:
            base = spec.rsplit("/", 1)[-1]
            raise SavedModelError(f"{spec!r} holds {names}; pick one with {base}[name].")
        name = name or names[0]
        if name not in names:
            raise SavedModelError(f"{spec!r} has no array {name!r}; it has {names}.")
        return loaded[name]
