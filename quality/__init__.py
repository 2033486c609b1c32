"""Data-quality checks and financial controls (docs/contract/controls.md), one module per domain."""
