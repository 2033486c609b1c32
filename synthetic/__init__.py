"""Synthetic landing data for billops (see docs/contract/synthetic-data.md)."""
from synthetic.generate import generate

__all__ = ["generate"]
