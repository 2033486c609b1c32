"""The checks of a day's tickets and payments ingestion (assets/feeds_day.py), judged the day files land.

Not blocking: a failed one alerts that day (orchestration/sensors.py) and blocks nothing; the close reads
every ticket and payment file again and judges the month with its own checks. The severity follows what
the close would do with the same finding (decisions #104):

- feeds_day_files_readable (ERROR): a file that cannot be read, changed since the ledger recorded it, or
  gone fails the close (assets/ingestion.py, BadFiles), so it is an error the day it is seen.
- feeds_day_rows_reconcile (ERROR): the close's blocking reconciliation, per file of the four sources.
- feeds_day_new_lines_accepted (WARN): lines of the files first ledgered by this run that were quarantined,
  named by file, line and reason. The close does not fail on a quarantined line (the contract's rules
  put it aside), but the on-call person should hear of a bad delivery the day it lands.
- <source>_day_landing_suite (WARN): the close's Great Expectations landing suites
  (quality/landing_suites.py), on the accepted rows as they stand that day; ~3 s of GX import per run.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb

from quality.ingestion_checks import files_loaded, reconciled_files

FEEDS_DAY_KEY = dg.AssetKey(["raw", "feeds_day"])
FEED_SOURCES = ("tickets", "charges", "refunds", "disputes")  # the audit sources, in the order they are settled
FEEDS_READABLE = "feeds_day_files_readable"
FEEDS_RECONCILE = "feeds_day_rows_reconcile"
FEEDS_NEW_LINES = "feeds_day_new_lines_accepted"
SHOWN = 10  # quarantined lines named in a description


def day_suite_name(source: str) -> str:
    return f"{source}_day_landing_suite"


feeds_day_check_specs = [
    dg.AssetCheckSpec(FEEDS_READABLE, asset=FEEDS_DAY_KEY,
                      description="Every ticket and payment file could be read, is unchanged since the ledger "
                                  "recorded it and is still landed."),
    dg.AssetCheckSpec(FEEDS_RECONCILE, asset=FEEDS_DAY_KEY,
                      description="Per ticket and payment file: rows read = accepted + re-delivered/superseded + "
                                  "quarantined, and accepted = the rows raw.<source> shows."),
    dg.AssetCheckSpec(FEEDS_NEW_LINES, asset=FEEDS_DAY_KEY,
                      description="Warn: no line of the files first ingested this day was quarantined (each one "
                                  "named by file, line and reason)."),
    *[dg.AssetCheckSpec(day_suite_name(source), asset=FEEDS_DAY_KEY,
                        description=f"Warn: the accepted rows of raw.{source} meet the close's landing suite "
                                    "(quality/landing_suites.py), judged the day files land.")
      for source in FEED_SOURCES],
]


def feeds_day_readable(problems: dict[str, str]) -> dg.AssetCheckResult:
    """Failed, naming each ticket or payment file that could not be loaded and why."""
    return files_loaded(FEEDS_DAY_KEY, FEEDS_READABLE, problems, "every ticket and payment file loaded")


def feeds_day_rows_reconcile(con: duckdb.DuckDBPyConnection, month: date) -> dg.AssetCheckResult:
    """The close's reconciliation (quality/ingestion_checks.py) over the four sources' files at once."""
    rows, bad = [], []
    for source in FEED_SOURCES:
        source_rows, source_bad = reconciled_files(con, source, f"raw.{source}", month)
        rows += source_rows
        bad += source_bad
    return dg.AssetCheckResult(
        asset_key=FEEDS_DAY_KEY, check_name=FEEDS_RECONCILE, passed=not bad, severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(bad)} of {len(rows)} files do not reconcile: {', '.join(bad[:SHOWN])}" if bad
        else f"all {len(rows)} ticket and payment files reconcile",
        metadata={"files_checked": len(rows), "rows_read": sum(r[1] for r in rows),
                  "rows_accepted": sum(r[2] for r in rows), "rows_quarantined": sum(r[4] for r in rows)},
    )


def feeds_day_new_lines(con: duckdb.DuckDBPyConnection, new_files: list[str]) -> dg.AssetCheckResult:
    """The quarantined lines of `new_files` (first ledgered by this run), by file and line."""
    lines = con.execute(
        """
        SELECT file, row_number, reason, detail FROM audit.quarantine
        WHERE source IN (SELECT unnest(?::VARCHAR[])) AND file IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY file, row_number
        """, [list(FEED_SOURCES), new_files]).fetchall()
    named = "; ".join(f"{file} line {row}: {reason} ({detail})" for file, row, reason, detail in lines[:SHOWN])
    return dg.AssetCheckResult(
        asset_key=FEEDS_DAY_KEY, check_name=FEEDS_NEW_LINES, passed=not lines, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(lines)} line(s) of the {len(new_files)} file(s) landed since the last ingestion quarantined: "
                     f"{named}") if lines
        else f"every line of the {len(new_files)} file(s) landed since the last ingestion was accepted",
        metadata={"new_files": len(new_files), "lines_quarantined": len(lines),
                  "by_reason": dg.MetadataValue.json({r: sum(1 for x in lines if x[2] == r) for r in {x[2] for x in lines}})},
    )


def feeds_day_suites(con: duckdb.DuckDBPyConnection) -> list[dg.AssetCheckResult]:
    """The close's landing suites on the accepted rows as they stand, reported on the day's asset."""
    from quality.gx_runner import frame, run_suite
    from quality.landing_suites import INDEX, SUITES, judge

    frames = {source: frame(con.sql(SUITES[source][0]).to_arrow_table()) for source in FEED_SOURCES}
    return [judge(source, run_suite(f"day_{source}", frames[source], SUITES[source][1], INDEX),
                  asset_key=FEEDS_DAY_KEY, check_name=day_suite_name(source))
            for source in FEED_SOURCES]
