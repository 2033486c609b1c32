"""`billops ingest`: every landed usage day, ticket and payment file not yet ingested, now, in this process.

For scripts and deployments without a Dagster daemon: the same folder ingestion as the day asset
(assets/usage_day.py), for every folder of every month not yet issued that has not been ingested
or changed since (an issued month's late files are its restatement's, at the next close), then the
tickets and payments as the feeds day asset does (assets/feeds_day.py) when a file of theirs is not in
the ledger as it stands (new, or its size or mtime moved), for the current UTC month. It opens
the warehouse itself, so it refuses while a close (or any other writer) holds it, and exits
non-zero naming every file it could not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import duckdb

from assets.feeds import FEEDS, IssuedMonth, feed_files, ingest_feeds
from assets.reference_tables import RULE_REFERENCES, load_reference_tables
from assets.usage_folder import ingest_folders, refresh_usage_daily
from config.settings import Settings
from warehouse.landing import landed_usage_months
from warehouse.connection import open_warehouse


class IngestRefused(Exception):
    """The warehouse cannot be written now (another process holds it); nothing was ingested."""


@dataclass
class IngestOutcome:
    days: dict[date, list[date]] = field(default_factory=dict)  # month → folders ingested
    problems: dict[str, str] = field(default_factory=dict)  # file → why it was not loaded
    skipped: list[date] = field(default_factory=list)  # issued months (their late files restate at the close)
    feeds: dict[str, int] | None = None  # tickets and payments ingested: files, new files, new lines quarantined
    feeds_skipped: str | None = None  # why tickets and payments were not ingested, when they were not


def stale_feed_files(con: duckdb.DuckDBPyConnection, landing) -> list[str]:
    """Ticket and payment files not in the ledger as they stand (new, or size or mtime moved), and ledgered
    ones no longer landed: a stat each, no hash."""
    landed = {f.relative_to(landing).as_posix(): f.stat() for f in feed_files(landing)}
    recorded = {path: (size, modified) for path, size, modified in con.execute(
        "SELECT path, size_bytes, modified_ns FROM audit.landed_files WHERE source IN (SELECT unnest(?::VARCHAR[]))",
        [list(FEEDS)]).fetchall()}
    stale = [rel for rel, st in landed.items() if recorded.get(rel) != (st.st_size, st.st_mtime_ns)]
    return sorted(stale + [rel for rel in recorded if rel not in landed])


def _ingest_feeds(con: duckdb.DuckDBPyConnection, settings: Settings, outcome: IngestOutcome) -> None:
    """Tickets and payments when a file of theirs is stale, for the current UTC month (decisions #105)."""
    if not stale_feed_files(con, settings.landing):
        return
    month = datetime.now(timezone.utc).date().replace(day=1)
    try:
        ingested, new_files = ingest_feeds(con, settings.landing, month)
    except IssuedMonth as issued:
        outcome.feeds_skipped = str(issued)
        return
    for one in ingested.values():
        outcome.problems |= one.problems
    quarantined = con.execute(
        "SELECT count(*) FROM audit.quarantine WHERE source IN (SELECT unnest(?::VARCHAR[])) "
        "AND file IN (SELECT unnest(?::VARCHAR[]))", [list(FEEDS), new_files]).fetchone()[0]
    outcome.feeds = {"files": sum(len(one.per_file) for one in ingested.values()), "new_files": len(new_files),
                     "new_lines_quarantined": quarantined}


def ingest_landed(settings: Settings) -> IngestOutcome:
    """Ingest every stale usage folder of the months not issued, oldest month first."""
    outcome = IngestOutcome()
    try:
        connection = open_warehouse(settings.warehouse)
        con = connection.__enter__()
    except duckdb.IOException as exc:
        raise IngestRefused(f"the warehouse {settings.warehouse} is in use by another process (a close running?): "
                            f"{exc}") from exc
    try:
        issued = {m for (m,) in con.execute("SELECT billing_month FROM audit.issued_months").fetchall()}
        months = landed_usage_months(settings.landing)
        if months:
            load_reference_tables(con, settings.landing, RULE_REFERENCES, datetime.now(timezone.utc).replace(tzinfo=None))
        for month in months:
            if month in issued:
                outcome.skipped.append(month)
                continue
            batch = ingest_folders(con, settings.landing, month)
            outcome.days[month] = batch.days
            outcome.problems |= batch.problems
        open_months = [m for m in months if m not in issued]
        if open_months:  # the newest open month is what a preview rates next
            refresh_usage_daily(con, open_months[-1])
        _ingest_feeds(con, settings, outcome)
    finally:
        connection.__exit__(None, None, None)
    return outcome
