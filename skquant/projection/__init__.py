"""Projection families: column (linear), tree and graph."""

from ._base import BaseProjection
from ._column import ColumnProjection
from ._graph import GraphProjection
from ._tree import TreeProjection

__all__ = ["BaseProjection", "ColumnProjection", "GraphProjection", "TreeProjection"]
