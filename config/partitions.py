"""The billing month as Dagster partitions it: one partition per month, keyed by its first day.

The months run from the first month with data to the later of the current month and the last month
landed, so the Dagster UI's partition bars and the KPI plots (assets/kpi_metadata.py, plotted per
partition) start where the business starts instead of at an arbitrary 2020 (decision #97):

- **First month**: `BILLOPS_FIRST_MONTH` when set; else the month of the earliest `usage/dt=D/`
  folder landed when the code location loads; else, with nothing landed, the previous calendar month
  (the month the monthly schedule closes next).
- **Last month**: the current month (the open one, for the daily ingestion and the preview) or the
  last month landed when that is later (synthetic months ahead of the calendar). Both ends count
  from the clock (`end_offset`), so a daemon running for months keeps gaining the new months.

A code location reads the landing zone once, when it loads: history landed later than the first
month it saw needs a reload (Dagster UI, Deployment → Reload) before those months can be closed.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg

from config.billing_month import BillingMonth
from config.settings import is_set, load_settings, setting

_DAY_FOLDER = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")


def landed_months(landing: Path) -> list[BillingMonth]:
    """The months of the `usage/dt=YYYY-MM-DD/` folders in the landing zone, sorted (a name that is not
    a date is left to ingestion to report)."""
    months = set()
    usage = landing / "usage"
    for folder in usage.iterdir() if usage.is_dir() else ():
        match = _DAY_FOLDER.match(folder.name)
        if match:
            try:
                months.add(BillingMonth.of(date.fromisoformat(match[1])))
            except ValueError:
                continue
    return sorted(months)


def month_span(landing: Path, today: date) -> tuple[BillingMonth, BillingMonth]:
    """The first and last month of the partitions (see the module's docstring)."""
    landed = landed_months(landing)
    current = BillingMonth.of(today)
    if is_set("BILLOPS_FIRST_MONTH"):
        first = BillingMonth.parse(setting("BILLOPS_FIRST_MONTH"))
    else:
        first = landed[0] if landed else current.previous()
    last = max([current, *landed[-1:]])
    return min(first, current), last


def _months_between(earlier: BillingMonth, later: BillingMonth) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def _partitions() -> tuple[dg.MonthlyPartitionsDefinition, dg.DailyPartitionsDefinition]:
    today = datetime.now(timezone.utc).date()
    first, last = month_span(load_settings().landing, today)
    # end_offset 1 keeps the current (open) month; each month landed beyond it adds one.
    months = dg.MonthlyPartitionsDefinition(
        start_date=first.partition_key, end_offset=1 + _months_between(BillingMonth.of(today), last))
    # One partition per UTC day, for the daily usage ingestion (assets/usage_day.py): a day's key is
    # its `usage/dt=D/` folder. The same span as the months, to the last day of the last month.
    days = dg.DailyPartitionsDefinition(start_date=first.partition_key, end_offset=(last.end - today).days)
    return months, days


monthly_partitions, daily_partitions = _partitions()


def run_month(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> BillingMonth:
    """The month a step of a close runs for (its partition)."""
    return BillingMonth.from_partition_key(context.partition_key)
