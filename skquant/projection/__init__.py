"""Projection families: column (linear), tree and graph."""

from ._base import BaseProjection
from ._column import ColumnProjection

__all__ = ["BaseProjection", "ColumnProjection"]
