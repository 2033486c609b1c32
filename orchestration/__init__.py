"""Dagster wiring: one Definitions (definitions.py), its jobs, partitions, resources and sensors."""
