"""The registry of op kernels.

Each TensorFlow op the engine can run has one `OpKernel`: the function that
computes it and the op's OpDef output arguments, which the engine needs to
turn a FunctionDef reference such as ``node:output:0`` into a flat output
index (list outputs are sized by ``number_attr`` or ``type_list_attr``).

Kernel contract
---------------
``fn(ctx, inputs, attrs) -> sequence of outputs`` (always a list/tuple, even
for one output; a list output contributes its elements flat, in order).

* ``inputs``: the node's data inputs in order, already arrays of the active
  backend (``ctx.xp``), or numpy arrays for host-only dtypes (strings, and
  dtypes the backend lacks), or engine objects (resource handles, TensorLists).
* ``attrs``: the node's attributes decoded to Python: ``int``, ``float``,
  ``bool``, ``str`` (for ``s`` attrs that are valid UTF-8, else ``bytes``),
  numpy dtypes for ``type`` (ml_dtypes.bfloat16 for DT_BFLOAT16), tuples with
  ``None`` for unknown dims (``None`` for unknown rank) for ``shape``, numpy
  arrays for ``tensor``, Python lists for ``list`` values, and
  ``FuncAttr(name, attrs)`` for ``func``. Attributes missing from the node take
  their OpDef default as TensorFlow does; kernels use ``attrs.get(k, default)``.
* ``ctx``: the `KernelContext` of the running call (see its docstring).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ...errors import SavedModelError


@dataclass(frozen=True)
class OutputArg:
    """One OpDef output argument; a list output is sized by one of the attrs."""
    name: str
    number_attr: str = ""
    type_list_attr: str = ""

    def size(self, attrs: dict) -> int:
        if self.number_attr:
            return int(attrs[self.number_attr])
        if self.type_list_attr:
            return len(attrs[self.type_list_attr])
        return 1


@dataclass(frozen=True)
class FuncAttr:
    """A decoded ``func`` attribute: the function's name and its attrs."""
    name: str
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OpKernel:
    """A registered kernel: how to compute ``op`` and the shape of its outputs."""
    op: str
    fn: Callable[..., Sequence[Any]]
    outputs: tuple[OutputArg, ...]
    host: bool = False       # always runs on numpy on the host (strings, tables, parsing)
    io: bool = False         # touches files, processes or the network: needs allow_io=True
    stateful: bool = False   # has side effects or reads resources; never constant-folded

    def output_sizes(self, attrs: dict) -> list[int]:
        return [arg.size(attrs) for arg in self.outputs]

    def flat_output_index(self, attrs: dict, arg_name: str, index: int) -> int:
        """Map FunctionDef ``node:arg_name:index`` to the flat output position."""
        offset = 0
        for arg in self.outputs:
            if arg.name == arg_name:
                return offset + index
            offset += arg.size(attrs)
        names = ", ".join(a.name for a in self.outputs)
        raise SavedModelError(
            f"Op {self.op} has no output argument {arg_name!r} (its outputs are: {names}).")


KERNELS: dict[str, OpKernel] = {}

#: Ops that are refused outright unless allow_io=True, even without a kernel.
IO_OPS = frozenset({
    "ReadFile", "WriteFile", "MatchingFiles", "DeleteFile", "PyFunc", "PyFuncStateless",
    "EagerPyFunc", "SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints", "ShardedFilename",
    "ShardedFilespec", "WholeFileReader", "WholeFileReaderV2", "TFRecordReaderV2",
    "FixedLengthRecordReaderV2", "TextLineReaderV2", "ImmutableConst", "Print",
    "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "WriteScalarSummary",
    "WriteSummary", "CreateSummaryFileWriter", "SummaryWriter",
})


def kernel(*ops: str, outputs: Sequence[str | OutputArg] = ("output",), host: bool = False,
           io: bool = False, stateful: bool = False):
    """Register the decorated function as the kernel of every op named."""
    out_args = tuple(a if isinstance(a, OutputArg) else OutputArg(a) for a in outputs)

    def register(fn):
        for op in ops:
            if op in KERNELS:
                raise RuntimeError(f"kernel for {op} registered twice")
            KERNELS[op] = OpKernel(op, fn, out_args, host=host, io=io, stateful=stateful)
        return fn

    return register


def get_kernel(op: str, node: str = "?", function: str | None = None) -> OpKernel:
    """The kernel of ``op``; a SavedModelError naming op, node and function otherwise."""
    try:
        return KERNELS[op]
    except KeyError:
        where = f" in function {function!r}" if function else " in the main graph"
        raise SavedModelError(
            f"Op {op!r} (node {node!r}{where}) is not supported by sm_notebook's engine. "
            f"{len(KERNELS)} ops are supported (see sm_notebook.ops.supported_ops()); "
            "run `sm-notebook scan --dir DIR` to list every unsupported op of a model.") from None
