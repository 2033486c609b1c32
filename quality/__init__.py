"""Data-quality checks and financial controls (controls.md), one module per domain."""
