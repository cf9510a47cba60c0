"""The hand-curated op flags: the one place facts TensorFlow's OpDefs do not state live.

Each flag names the ops it covers; ``stateful`` is not here (it is OpDef.is_stateful).
Names starting with ``_Smnb`` are the engine's internal ops (registered at run time with
``opdefs.register_extra``); every other name is an op of TensorFlow's registry
(tests/unit/test_opdefs.py checks this).
"""
from __future__ import annotations

#: Touches files, processes or the network; the engine refuses these unless
#: ``allow_io=True``. RestoreV2 and InitializeTableFromTextFile(V2) are not here: the
#: engine's kernels confine them to the model's own variables/ and assets/ files.
IO = frozenset({
    # files
    "ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst", "FileSystemSetConfiguration",
    "LoadAndRemapMatrix", "CalibrationStatisticsSaver", "DumpTensor",
    # checkpoints written or read outside the model's own variables
    "Save", "SaveSlices", "SaveV2", "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec",
    "Restore", "RestoreSlice", "DTensorRestoreV2",
    # Python callbacks (run arbitrary code in the exporting process)
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
    # printing and debugging (stderr, debug_urls, dump directories)
    "Print", "PrintV2", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
    "DebugNumericSummary",
    # TF1 readers
    "WholeFileReader", "WholeFileReaderV2", "TFRecordReader", "TFRecordReaderV2",
    "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "TextLineReader", "TextLineReaderV2",
    "LMDBReader", "ReaderRead", "ReaderReadV2", "ReaderReadUpTo", "ReaderReadUpToV2",
    # datasets that read or write files
    "TFRecordDataset", "TFRecordDatasetV2", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "TextLineDataset", "CSVDataset", "CSVDatasetV2",
    "ExperimentalCSVDataset", "LMDBDataset", "ExperimentalLMDBDataset", "SqlDataset",
    "ExperimentalSqlDataset", "MatchingFilesDataset", "ExperimentalMatchingFilesDataset",
    "LoadDataset", "SaveDataset", "SaveDatasetV2", "DistributedSave", "SnapshotDataset",
    "SnapshotDatasetV2", "SnapshotDatasetReader", "SnapshotNestedDatasetReader",
    "SnapshotChunkDataset", "ListSnapshotChunksDataset", "CacheDataset", "CacheDatasetV2",
    "DatasetToTFRecord", "ExperimentalDatasetToTFRecord",
    # summary writers
    "SummaryWriter", "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary",
    "WriteScalarSummary", "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary",
    "WriteGraphSummary", "WriteRawProtoSummary", "FlushSummaryWriter", "CloseSummaryWriter",
    "ImportEvent", "StatsAggregatorSetSummaryWriter",
    # other processes and machines
    "RpcClient", "RpcServer", "RpcServerStart", "RpcServerRegister", "RpcCall", "RemoteCall",
    "Send", "Recv", "_Send", "_Recv", "_HostSend", "_HostRecv",
})

#: Always run on the host with numpy: strings, lookup tables, tf.Example parsing.
HOST = frozenset({
    "AsString", "DecodeBase64", "EncodeBase64", "ReduceJoin", "RegexFullMatch", "RegexReplace",
    "StaticRegexFullMatch", "StaticRegexReplace", "StringJoin", "StringLength", "StringLower",
    "StringUpper", "StringSplitV2", "StringStrip", "StringToHashBucketFast",
    "StringToHashBucketStrong", "StringToNumber", "Substr", "StringNGrams", "Fingerprint",
    "ParseExample", "ParseExampleV2", "ParseSingleExample",
    "RestoreV2",
    "AnonymousHashTable", "AnonymousMutableHashTable", "AnonymousMutableHashTableOfTensors",
    "AnonymousMutableDenseHashTable",
    "HashTable", "HashTableV2", "MutableHashTable", "MutableHashTableV2",
    "MutableHashTableOfTensors", "MutableHashTableOfTensorsV2",
    "MutableDenseHashTable", "MutableDenseHashTableV2",
    "InitializeTable", "InitializeTableV2", "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2",
    "LookupTableExport", "LookupTableExportV2", "LookupTableFind", "LookupTableFindV2",
    "LookupTableImport", "LookupTableImportV2", "LookupTableInsert", "LookupTableInsertV2",
    "LookupTableRemoveV2", "LookupTableSize", "LookupTableSizeV2",
})

#: Creates a shared resource once (keyed by container and shared_name, the node name
#: when empty) or looks it up; may run at plan time although stateful.
HANDLE = frozenset({
    "VarHandleOp", "VariableV2", "Variable", "HashTable", "HashTableV2", "MutableHashTable",
    "MutableHashTableV2", "MutableHashTableOfTensors", "MutableHashTableOfTensorsV2",
    "MutableDenseHashTable", "MutableDenseHashTableV2",
})

#: Creates a resource private to one execution; a node of a TF2 export's main graph is
#: run once by TensorFlow's loader (a restored resource), so there it acts as a `HANDLE`.
ANONYMOUS_HANDLE = frozenset({
    "AnonymousHashTable", "AnonymousMutableHashTable", "AnonymousMutableHashTableOfTensors",
    "AnonymousMutableDenseHashTable",
})

#: Stateful, but the state lives and dies within one call: each run of TensorArrayV3 makes
#: a new TF1 TensorArray that only this call's ops see. Never folded or hoisted out of a
#: loop, yet no side effect outside the call, so a plan holding only these runs
#: concurrently with other calls (no model lock).
CALL_PRIVATE = frozenset(f"TensorArray{op}{version}" for version in ("V2", "V3") for op in (
    "", "Write", "Read", "Gather", "Scatter", "Size", "Concat", "Split", "Close"))

#: Holds a variable's value (TF1 ref variables and TF2 resource handles).
VARIABLE = frozenset({"VariableV2", "Variable", "VarHandleOp"})

#: TF1 ref variables: the output is the variable itself (a ``*_REF`` dtype).
REF_VARIABLE = frozenset({"VariableV2", "Variable"})

#: Reads a variable's value.
VARIABLE_READ = frozenset({"ReadVariableOp", "_SmnbReadRef"})

#: Changes a variable's value (resource or ref variables); nothing reading the variable
#: may be folded into a constant when a model holds one of these.
VARIABLE_WRITE = frozenset({
    "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
    "ResourceScatterUpdate", "ResourceScatterAdd", "ResourceScatterSub", "ResourceScatterMul",
    "ResourceScatterDiv", "ResourceScatterMin", "ResourceScatterMax",
    "ResourceScatterNdUpdate", "ResourceScatterNdAdd", "ResourceScatterNdSub",
    "ResourceScatterNdMin", "ResourceScatterNdMax", "ResourceStridedSliceAssign",
    "Assign", "AssignAdd", "AssignSub", "ScatterUpdate", "ScatterAdd", "ScatterSub",
    "ScatterMul", "ScatterDiv", "ScatterMin", "ScatterMax", "ScatterNdUpdate", "ScatterNdAdd",
    "ScatterNdSub", "ScatterNdMin", "ScatterNdMax", "StridedSliceAssign", "CountUpTo",
    "ResourceCountUpTo", "DestroyResourceOp", "AssignVariableXlaConcatND",
    # optimizer updates (tf.compat.v1.train.*Optimizer), on refs and on resources
    *"""ApplyAdaMax ApplyAdadelta ApplyAdagrad ApplyAdagradDA ApplyAdagradV2 ApplyAdam
    ApplyAddSign ApplyCenteredRMSProp ApplyFtrl ApplyFtrlV2 ApplyGradientDescent ApplyMomentum
    ApplyPowerSign ApplyProximalAdagrad ApplyProximalGradientDescent ApplyRMSProp
    SparseApplyAdadelta SparseApplyAdagrad SparseApplyAdagradDA SparseApplyAdagradV2
    SparseApplyCenteredRMSProp SparseApplyFtrl SparseApplyFtrlV2 SparseApplyMomentum
    SparseApplyProximalAdagrad SparseApplyProximalGradientDescent SparseApplyRMSProp
    ResourceApplyAdaMax ResourceApplyAdadelta ResourceApplyAdagrad ResourceApplyAdagradDA
    ResourceApplyAdagradV2 ResourceApplyAdam ResourceApplyAdamWithAmsgrad ResourceApplyAddSign
    ResourceApplyCenteredRMSProp ResourceApplyFtrl ResourceApplyFtrlV2
    ResourceApplyGradientDescent ResourceApplyKerasMomentum ResourceApplyMomentum
    ResourceApplyPowerSign ResourceApplyProximalAdagrad ResourceApplyProximalGradientDescent
    ResourceApplyRMSProp ResourceSparseApplyAdadelta ResourceSparseApplyAdagrad
    ResourceSparseApplyAdagradDA ResourceSparseApplyAdagradV2 ResourceSparseApplyCenteredRMSProp
    ResourceSparseApplyFtrl ResourceSparseApplyFtrlV2 ResourceSparseApplyKerasMomentum
    ResourceSparseApplyMomentum ResourceSparseApplyProximalAdagrad
    ResourceSparseApplyProximalGradientDescent ResourceSparseApplyRMSProp""".split(),
})

#: Takes a TF1 ref variable itself rather than its value.
REF_CONSUMER = frozenset({
    "Assign", "AssignAdd", "AssignSub", "IsVariableInitialized", "ScatterUpdate", "ScatterAdd",
    "ScatterSub", "ScatterMul", "ScatterDiv", "ScatterMin", "ScatterMax", "ScatterNdUpdate",
    "ScatterNdAdd", "ScatterNdSub", "CountUpTo", "RefIdentity", "_SmnbReadRef",
})

#: TF1 control flow that produces or forwards dead tensors: never folded, never elided.
V1_CONTROL_FLOW = frozenset({
    "Switch", "RefSwitch", "Merge", "RefMerge", "Enter", "RefEnter", "Exit", "RefExit",
    "NextIteration", "RefNextIteration", "LoopCond", "ControlTrigger",
})

#: Runs even when some inputs are dead (its output is dead only when all are).
TAKES_DEAD = frozenset({"Merge", "RefMerge"})

#: Runs functions named by its func attrs: calls, functional conditionals and loops.
CALL = frozenset({
    "PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf", "While",
    "StatelessWhile", "Case", "StatelessCase", "For", "RemoteCall",
})

#: Calls the function its ``f`` attr names with its inputs: exactly the ops TensorFlow's
#: loader and fingerprinting treat as function calls.
FUNCTION_CALL = frozenset({"PartitionedCall", "StatefulPartitionedCall"})

#: Forwards its input(s) unchanged.
IDENTITY = frozenset({"Identity", "Snapshot", "StopGradient", "PreventGradient", "IdentityN"})

#: A value that must be fed (PlaceholderWithDefault has a default, so it is not here).
PLACEHOLDER = frozenset({"Placeholder", "PlaceholderV2"})

#: Not stateful in its OpDef, yet evaluating it ahead of a call is wrong: ref-variable
#: writes and V1 table ops (their handles are refs), uninitialised memory, checks that
#: must raise when called rather than at load time.
NO_FOLD = frozenset({
    "Assign", "AssignAdd", "AssignSub", "IsVariableInitialized", "CheckNumerics",
    "CheckNumericsV2", "Empty", "InitializeTable", "InitializeTableFromTextFile",
    "LookupTableExport", "LookupTableFind", "LookupTableImport", "LookupTableInsert",
    "LookupTableSize",
})

#: Flag name -> the ops carrying it (``stateful`` comes from the OpDefs instead).
CURATED: dict[str, frozenset] = {
    "io": IO, "host": HOST, "handle": HANDLE, "anonymous_handle": ANONYMOUS_HANDLE,
    "call_private": CALL_PRIVATE, "variable": VARIABLE,
    "ref_variable": REF_VARIABLE, "variable_read": VARIABLE_READ,
    "variable_write": VARIABLE_WRITE, "ref_consumer": REF_CONSUMER,
    "v1_control_flow": V1_CONTROL_FLOW, "takes_dead": TAKES_DEAD, "call": CALL,
    "function_call": FUNCTION_CALL, "identity": IDENTITY, "placeholder": PLACEHOLDER,
    "no_fold": NO_FOLD,
}

#: Every flag an op can carry.
ALL_FLAGS = frozenset(CURATED) | {"stateful"}


def curated_flags(op: str) -> frozenset:
    """The curated flags of ``op`` (``stateful`` excluded)."""
    return frozenset(flag for flag, ops in CURATED.items() if op in ops)
