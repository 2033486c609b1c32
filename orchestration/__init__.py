"""Dagster wiring: one Definitions, its jobs, partitions and resources."""
