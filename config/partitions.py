"""The billing month as Dagster partitions it: one partition per month, keyed by its first day."""

import dagster as dg

from config.billing_month import BillingMonth

# Months from 2020 on; end_offset lets a month be closed up to a year ahead of
# the calendar (synthetic and test months are often in the future).
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date="2020-01-01", end_offset=12)


def run_month(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> BillingMonth:
    """The month a step of a close runs for (its partition)."""
    return BillingMonth.from_partition_key(context.partition_key)


# One partition per UTC day, for the daily usage ingestion (assets/usage_day.py): a day's key is its
# `usage/dt=D/` folder. From 2020 like the months; end_offset a year ahead, as the months allow.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2020-01-01", end_offset=366)
