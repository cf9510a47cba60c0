"""Compose and edit SavedModels: signatures, tag-sets, assets; write exports TensorFlow loads.

``Builder`` holds the model, ``Graph`` composes or extends its graph, ``signature``
builds a SignatureDef. Nothing here imports TensorFlow.
"""
from .builder import Builder
from .graph import Graph, Operation, Tensor, Variable
from .signatures import signature

__all__ = ["Builder", "Graph", "signature", "Tensor", "Variable", "Operation"]
