"""Ops that are not TensorFlow's own: the extension libraries that register them.

A SavedModel names an op by its registered name only; an op outside TensorFlow's
registry (`opdefs.get` returns None) comes from a library loaded into TensorFlow
(``tf.load_op_library``) when the model was made. `library_of` names that library for
the ops of the common ones; any other op outside TensorFlow "comes from an unknown
library". The names were read from each library's ``REGISTER_OP`` calls (and op-name
constants) in its source, at these snapshots: tensorflow/text (2026-07),
tensorflow/decision-forests (2026-01; ydf exports to TensorFlow through these ops),
google/sentencepiece's former tf_sentencepiece module (its last version, TF 2.2),
tensorflow/addons (2024-04), tensorflow/io (2025-04), tensorflow/recommenders-addons
(2025-01), google/struct2tensor (2026-03). Libraries that prefix every op they register
(``Addons>``, ``IO>``, ``TFRA>``, ``TFText>``) are matched by the prefix.
"""
from __future__ import annotations

UNKNOWN_LIBRARY = "an unknown library (not core TensorFlow)"

TENSORFLOW_TEXT = "tensorflow-text"
DECISION_FORESTS = "tensorflow-decision-forests (TF-DF / ydf)"

#: op-name prefix -> library (the library's own naming macro adds it to every op)
PREFIXES: dict[str, str] = {
    "TFText>": TENSORFLOW_TEXT,
    "Addons>": "tensorflow-addons",
    "IO>": "tensorflow-io",
    "TFRA>": "tensorflow-recommenders-addons",
}

#: library -> the ops it registers without a prefix
LIBRARIES: dict[str, frozenset] = {
    TENSORFLOW_TEXT: frozenset({
        "CaseFoldUTF8", "ConstrainedSequence", "FastBertNormalize",
        "FastWordpieceTokenizeWithOffsets", "FindSourceOffsets", "MaxSpanningTree",
        "NormalizeUTF8", "NormalizeUTF8WithOffsetsMap", "PhraseTokenize", "RegexSplitWithOffsets",
        "RougeL", "SentenceFragments", "SentenceFragmentsV2", "SentencepieceDetokenizeOp",
        "SentencepieceIdToStringOp", "SentencepieceOp", "SentencepieceStringToIdOp",
        "SentencepieceTokenizeOp", "SentencepieceTokenizeWithOffsetsOp",
        "SentencepieceVocabSizeOp", "SplitMergeTokenizeWithOffsets", "TokenizerFromLogits",
        "UnicodeScriptTokenizeWithOffsets", "WhitespaceTokenizeWithOffsets",
        "WordpieceTokenizeWithOffsets",
    }),
    DECISION_FORESTS: frozenset({
        "SimpleMLCategoricalIntFeature", "SimpleMLCategoricalIntFeatureOnFile",
        "SimpleMLCategoricalSetIntFeature", "SimpleMLCategoricalSetStringFeature",
        "SimpleMLCategoricalStringFeature", "SimpleMLCategoricalStringFeatureOnFile",
        "SimpleMLCheckStatus", "SimpleMLCheckTrainingConfiguration",
        "SimpleMLChiefFinalizeFeatureOnFile", "SimpleMLCreateModelResource",
        "SimpleMLCreateYDFGRPCWorker", "SimpleMLFileModelLoader", "SimpleMLHashFeature",
        "SimpleMLInferenceLeafIndexOpWithHandle", "SimpleMLInferenceOp",
        "SimpleMLInferenceOpWithHandle", "SimpleMLLoadModelFromPath",
        "SimpleMLLoadModelFromPathWithHandle", "SimpleMLModelTrainer",
        "SimpleMLModelTrainerOnFile", "SimpleMLNumericalFeature",
        "SimpleMLNumericalFeatureOnFile", "SimpleMLShowModel", "SimpleMLStopYDFGRPCWorker",
        "SimpleMLUnloadModel", "SimpleMLUpdateGRPCWorkerAddress",
        "SimpleMLWorkerFinalizeFeatureOnFile", "YggdrasilDecisionForestsSetLoggingLevel",
    }),
    "tf_sentencepiece (sentencepiece's TensorFlow module)": frozenset({
        "SentencepieceGetPieceSize", "SentencepiecePieceToId", "SentencepieceIdToPiece",
        "SentencepieceGetPieceType", "SentencepieceEncodeDense", "SentencepieceEncodeSparse",
        "SentencepieceDecode",
    }),
    "tensorflow-io": frozenset({
        "BigtableClient", "BigtableDataset", "BigtableEmptyRowRange", "BigtableEmptyRowSet",
        "BigtableLatestFilter", "BigtablePrefixRowRange", "BigtablePrintFilter",
        "BigtablePrintRowRange", "BigtablePrintRowSet", "BigtableRowRange",
        "BigtableRowSetAppendRow", "BigtableRowSetAppendRowRange", "BigtableRowSetIntersect",
        "BigtableSplitRowSetEvenly", "BigtableTimestampRangeFilter",
    }),
    "tensorflow-recommenders-addons": frozenset({"TfraSparseFillEmptyRows"}),
    "struct2tensor": frozenset({
        "DecodeProtoMap", "DecodeProtoMapV2", "DecodeProtoSparseV2", "DecodeProtoSparseV3",
        "DecodeProtoSparseV4", "EquiJoinAnyIndices", "EquiJoinIndices", "ParquetDataset",
        "RunLengthBefore",
    }),
}


def library_of(op: str) -> str | None:
    """The library ``op`` comes from; None for TensorFlow's own ops (and the engine's)."""
    from . import get

    for prefix, library in PREFIXES.items():
        if op.startswith(prefix):
            return library
    for library, ops in LIBRARIES.items():
        if op in ops:
            return library
    return None if get(op) is not None else UNKNOWN_LIBRARY
