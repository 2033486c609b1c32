"""Tickets and payments ingested the day they land (daily partitions), and judged that day.

Requested by the feeds landing sensor (orchestration/feeds_sensor.py) or `billops ingest`, run in its own
job (`ingest_feeds_day_job`) that holds the warehouse's writer slot like a close. The partition is the
UTC day the sensor saw the files land; its month is the one whose `audit.file_loads` rows the run
writes (the close of that month writes them again). It runs the close's ingestion of the four sources
(assets/tickets.py, assets/payments.py: ledger, quarantine, de-duplication, per-file counts) over every
file, as the close does: the files are small (a few MB a month) and not month-scoped, and a charge
naming an invoice not yet issued must be examined again at each close. What the day adds is that a bad
file is heard of the day it lands (quality/feeds_checks.py) and that the ledger already holds the
files when the close comes: a file loaded and unchanged is recorded once, and a re-run writes the same
quarantine and re-delivery rows, not more.

An issued month is refused: its file loads are what its close read (a restatement reads them again).
"""


from datetime import date

import dagster as dg
import duckdb

from assets.feeds import ingest_feeds
from config.partitions import daily_partitions
from quality.feeds_checks import (FEEDS_DAY_KEY, feeds_day_check_specs, feeds_day_new_lines,
                                  feeds_day_readable, feeds_day_rows_reconcile, feeds_day_suites)
from warehouse.resource import WarehouseResource


def feeds_day_checks(con: duckdb.DuckDBPyConnection, month: date, problems: dict[str, str],
                     new_files: list[str]) -> list[dg.AssetCheckResult]:
    return [feeds_day_readable(problems), feeds_day_rows_reconcile(con, month), feeds_day_new_lines(con, new_files),
            *feeds_day_suites(con)]


@dg.asset(
    key=FEEDS_DAY_KEY,
    group_name="landing",
    kinds={"duckdb", "json"},
    partitions_def=daily_partitions,
    check_specs=feeds_day_check_specs,
    deps=[dg.AssetKey(["raw", "customers"])],
    description="Every tickets/*.jsonl and payments/*/*.jsonl ingested the day it lands (ledger, quarantine, "
                "de-duplication, as the close does) and judged that day; the close reads them all again.",
)
def feeds_day(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Ingest the tickets and payments landed so far and judge them."""
    day = context.partition_time_window.start.date()
    month = day.replace(day=1)
    with warehouse.connect() as con:
        ingested, new_files = ingest_feeds(con, warehouse.landing_path, month)
        problems = {rel: why for one in ingested.values() for rel, why in one.problems.items()}
        checks = feeds_day_checks(con, month, problems, new_files)
    for one in ingested.values():
        for rel, why in sorted(one.problems.items()):
            context.log.error(f"{one.source} file not loaded: {rel}: {why}")
    yield dg.MaterializeResult(
        metadata={
            "day": day.isoformat(),
            "new_files": dg.MetadataValue.json(new_files),
            **{f"{name}_{k}": dg.MetadataValue.int(v) for name, one in ingested.items() for k, v in one.totals.items()},
            "files_not_loaded": dg.MetadataValue.json(problems),
        },
        check_results=checks,
    )
