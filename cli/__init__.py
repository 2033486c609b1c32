"""The `billops` command: a thin shell over Dagster and the warehouse."""
