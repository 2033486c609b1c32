"""Dagster wiring: one Definitions, its jobs, partitions and resources."""

import warnings

import dagster as dg

# Every partitioned asset pins BackfillPolicy.multi_run(1) (one month per run, months in
# order); the parameter is marked beta in dagster 1.13, which is noise in the CLI output.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
