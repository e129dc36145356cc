"""Cleaning: the row-preserving Cleaner and the row-dropping OutlierFilter."""

from ._cleaner import Cleaner
from ._outlier import OutlierFilter

__all__ = ["Cleaner", "OutlierFilter"]
