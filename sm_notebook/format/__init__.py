"""Bytes <-> objects: the SavedModel directory, TensorProtos and the variables bundle."""
