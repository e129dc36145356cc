"""Projection families: column (linear), tree, graph, and the union of
principal components and a graph embedding."""

from ._base import BaseProjection
from ._column import ColumnProjection
from ._graph import GraphProjection
from ._tree import TreeProjection
from ._union import UnionProjection

__all__ = ["BaseProjection", "ColumnProjection", "GraphProjection", "TreeProjection",
           "UnionProjection"]
