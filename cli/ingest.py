"""`billops ingest`: every landed usage day not yet ingested, now, in this process (no daemon needed).

For scripts and deployments without a Dagster daemon: the same folder ingestion as the day asset
(assets/usage_day.py), for every folder of every month not yet issued that has not been ingested
or changed since (an issued month's late files are its restatement's, at the next close). It opens
the warehouse itself, so it refuses while a close (or any other writer) holds it, and exits
non-zero naming every file it could not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import duckdb

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
    finally:
        connection.__exit__(None, None, None)
    return outcome
