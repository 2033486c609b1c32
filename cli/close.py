"""`billops close`: materialize one billing month through Dagster and summarize it."""

from __future__ import annotations

import re
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from orchestration.settings import Settings

MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

DAGSTER_YAML = """# Written by billops on first use. Local instance: runs, events and schedules in this folder.
telemetry:
  enabled: false
"""


@dataclass
class CloseOutcome:
    success: bool
    run_id: str
    log_file: Path
    failures: list[str] = field(default_factory=list)


def prepare_instance(settings: Settings) -> None:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)


def run_close(settings: Settings, month: str) -> CloseOutcome:
    """Execute close_month_job for the month's partition in the real instance (DAGSTER_HOME)."""
    import dagster as dg

    from orchestration.definitions import defs

    prepare_instance(settings)
    job = defs.resolve_job_def("close_month_job")
    # dbt's own output (written to stdout by dagster-dbt) goes to a log file; the
    # same lines are kept per step in the instance for the UI.
    log_file = settings.dagster_home / "logs" / f"close-{month}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.get() as instance, log_file.open("w") as log, redirect_stdout(log):
        result = job.execute_in_process(
            partition_key=f"{month}-01",
            instance=instance,
            raise_on_error=False,
            # The full event log is in the instance (dagster dev); the terminal gets warnings and errors.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        failures = []
        for event in result.all_events:
            if event.event_type_value == "STEP_FAILURE":
                error = event.event_specific_data.error
                message = error.message.strip() if error else "failed"
                cause = error.cause.message.strip() if error and error.cause else ""
                failures.append(f"{event.step_key}: {message}" + (f" ({cause})" if cause and cause not in message else ""))
            elif event.event_type_value == "ASSET_CHECK_EVALUATION":
                evaluation = event.event_specific_data
                if not evaluation.passed and str(evaluation.severity.value) == "ERROR":
                    failures.append(f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed")
        return CloseOutcome(success=result.success, run_id=result.run_id, log_file=log_file, failures=failures)


@dataclass
class CloseSummary:
    files: int
    rows_read: int
    accepted: int
    redelivered: int
    quarantined: int
    quarantined_by_reason: dict[str, int]
    other_sources: list[tuple]
    invoices: int
    total_invoiced: Decimal


def read_summary(settings: Settings, month: str) -> CloseSummary | None:
    """What the close left in the warehouse for the month (read-only)."""
    if not settings.warehouse.exists():
        return None
    billing_month = date.fromisoformat(f"{month}-01")
    try:
        con = duckdb.connect(str(settings.warehouse), read_only=True)
    except duckdb.IOException:
        return None  # another process holds the warehouse; the run's outcome is still reported
    try:
        loads = con.execute(
            """SELECT count(*), coalesce(sum(rows_read), 0), coalesce(sum(accepted), 0),
                      coalesce(sum(redelivered), 0), coalesce(sum(quarantined), 0)
               FROM audit.file_loads WHERE billing_month = ? AND source = 'usage'""",
            [billing_month],
        ).fetchone()
        reasons = dict(
            con.execute(
                "SELECT reason, count(*) FROM audit.quarantine WHERE source = 'usage' AND file LIKE ? GROUP BY 1 ORDER BY 1",
                [f"usage/dt={month}-%"],
            ).fetchall()
        )
        others = con.execute(
            """SELECT source, count(*), sum(rows_read), sum(accepted), sum(redelivered), sum(quarantined)
               FROM audit.file_loads WHERE billing_month = ? AND source <> 'usage' GROUP BY 1 ORDER BY 1""",
            [billing_month],
        ).fetchall()
        try:
            invoices, total = con.execute(
                "SELECT count(*), coalesce(sum(total), 0) FROM marts.invoices WHERE billing_month = ?", [billing_month]
            ).fetchone()
        except duckdb.CatalogException:
            invoices, total = 0, Decimal("0.00")
    except duckdb.CatalogException:
        return None
    finally:
        con.close()
    return CloseSummary(*loads, quarantined_by_reason=reasons, other_sources=others, invoices=invoices, total_invoiced=Decimal(total))
