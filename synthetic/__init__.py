"""Synthetic landing data for billops (see shared spec synthetic-data.md)."""
from synthetic.generate import generate

__all__ = ["generate"]
