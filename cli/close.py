"""`billops close`: run the monthly close through Dagster and report what this run did.

The CLI is a thin shell: it refuses a month that would be issued out of order,
restates earlier issued months whose inputs changed first, then launches
`close_month_job` for the month in the instance in DAGSTER_HOME (so every close
shows in `dagster dev`), and reads its typed results — step failures, check
evaluations, the assets' metadata — never the warehouse, so the summary is
always this run's.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import nullcontext, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from orchestration.close_options import CloseOptions
from orchestration.settings import Settings
from warehouse.landing import REFERENCE_COLUMNS, landed_usage_months, usage_month_files
from warehouse.months import first_month_problem, issued_months, order_problem
from warehouse.schema import table_exists

MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

DAGSTER_YAML = """# Written by billops on first use. Local instance: runs, events and schedules in this folder.
telemetry:
  enabled: false
# Dagster's SQLite event log with its connections kept open (orchestration/instance_storage.py).
event_log_storage:
  module: orchestration.instance_storage
  class: PooledSqliteEventLogStorage
  config:
    base_dir:
      env: DAGSTER_HOME
"""


class CloseRefused(Exception):
    """The month cannot be closed now; nothing was run."""


@dataclass
class CloseOutcome:
    month: str
    success: bool
    run_id: str
    log_file: Path
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, dict] = field(default_factory=dict)  # asset key → its materialization metadata


def prepare_instance(settings: Settings) -> None:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)


def partition_problem(month: str) -> str | None:
    """Why the month is not a partition of the close, in words (not DagsterUnknownPartitionError)."""
    from orchestration.partitions import monthly_partitions

    keys = monthly_partitions.get_partition_keys()
    if f"{month}-01" in keys:
        return None
    return f"{month} is outside the months billops closes ({keys[0][:7]} to {keys[-1][:7]})"


def _file_sha256(path: Path) -> str:
    from assets.ledger import describe_files

    return describe_files(path.parent, [path])[0].sha256


@dataclass(frozen=True)
class PlannedClose:
    """One run of a close: the month, the options it runs with, and why it runs (empty for the month asked)."""

    month: str
    options: CloseOptions
    reasons: tuple[str, ...] = ()

    @property
    def restatement(self) -> bool:
        return bool(self.reasons)


def plan_months(settings: Settings, month: str, options: CloseOptions = CloseOptions()) -> list[PlannedClose]:
    """The runs, in order: each earlier issued month whose inputs changed since it was issued (with the
    options it was issued with, and why), then `month`.

    Raises CloseRefused when the month would be issued out of order, would strand earlier landed
    usage as the warehouse's first month, or the warehouse is busy.
    """
    target = date.fromisoformat(f"{month}-01")
    asked = PlannedClose(month, options)
    issued: list[date] = []
    issued_options: dict[date, CloseOptions] = {}
    ledger: set[str] = set()
    used: dict[tuple[date, str], str] = {}
    if settings.warehouse.exists():
        try:
            con = duckdb.connect(str(settings.warehouse), read_only=True)
        except duckdb.IOException as exc:
            raise CloseRefused(f"the warehouse {settings.warehouse} is in use by another process (a close running?): {exc}")
        try:
            if table_exists(con, "audit", "issued_months"):
                issued = issued_months(con)
                columns = {r[0] for r in con.execute("DESCRIBE audit.issued_months").fetchall()}
                if {"allow_missing_days", "first_month"} <= columns:
                    issued_options = {m: CloseOptions(bool(a), bool(f)) for m, a, f in con.execute(
                        "SELECT billing_month, allow_missing_days, first_month FROM audit.issued_months").fetchall()}
                ledger = {r[0] for r in con.execute(
                    "SELECT path FROM audit.landed_files WHERE source = 'usage'").fetchall()}
                used = {(r[0], r[1]): r[2] for r in con.execute(
                    "SELECT billing_month, file, sha256 FROM audit.reference_snapshots").fetchall()}
        finally:
            con.close()
    problem = order_problem(issued, target) or first_month_problem(
        issued, target, landed_usage_months(settings.landing), options.first_month)
    if problem:
        raise CloseRefused(problem)
    current = {f"reference/{name}.csv": _file_sha256(settings.landing / "reference" / f"{name}.csv")
               for name in REFERENCE_COLUMNS if (settings.landing / "reference" / f"{name}.csv").exists()}
    earlier = []
    for issued_month in (m for m in issued if m < target):
        late = [p.relative_to(settings.landing).as_posix() for p in usage_month_files(settings.landing, issued_month)]
        late = [rel for rel in late if rel not in ledger]
        changed = [rel for rel, sha in current.items() if used.get((issued_month, rel)) != sha]
        reasons = [f"{len(late)} usage file(s) landed since it was issued: {_some(late)}"] if late else []
        reasons += [f"{_some(changed)} changed since it was issued"] if changed else []
        if reasons:
            earlier.append(PlannedClose(f"{issued_month:%Y-%m}", issued_options.get(issued_month, CloseOptions()),
                                        tuple(reasons)))
    return earlier + [asked]


def _some(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def close_job():
    """The close job, for `dg.reconstructable` (execute_job needs a job it can rebuild by name)."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("close_month_job")


def run_close(settings: Settings, month: str, options: CloseOptions = CloseOptions(),
              verbose: bool = False) -> CloseOutcome:
    """Execute close_month_job for the month's partition in the real instance (DAGSTER_HOME).

    One log per run, never overwritten: `logs/close-YYYY-MM-<run id>.log` holds dbt's output and,
    unless `verbose`, Dagster's console lines and Python warnings (the run's event log keeps every
    event either way); `verbose` shows those on the terminal instead.
    """
    import dagster as dg

    from alerts.dead_runs import reap_dead_runs, run_tags

    prepare_instance(settings)
    logs = settings.dagster_home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # The run id is known only once the run exists: the log is named when the run ends.
    started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    pending = logs / f"close-{month}-started-{started}-{os.getpid()}.log"
    tags = {"dagster/partition": f"{month}-01", **run_tags(), **options.tags()}
    console_level = "INFO" if verbose else "WARNING"
    with dg.DagsterInstance.get() as instance, pending.open("w") as log, redirect_stdout(log), \
            (nullcontext() if verbose else redirect_stderr(log)), warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter("default")  # shown once each, into the log, not on the terminal
        reap_dead_runs(instance)
        result = dg.execute_job(
            dg.reconstructable(close_job),
            instance=instance,
            tags=tags,
            run_config={"loggers": {"console": {"config": {"log_level": console_level}}}},
        )
    log_file = logs / f"close-{month}-{result.run_id}.log"
    pending.rename(log_file)
    return _outcome(month, result, log_file)


def _outcome(month: str, result, log_file: Path) -> CloseOutcome:
    import dagster as dg

    outcome = CloseOutcome(month=month, success=result.success, run_id=result.run_id, log_file=log_file)
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        message = error.message.strip() if error else "failed"
        cause = error.cause.message.strip() if error and error.cause else ""
        outcome.failures.append(f"{event.step_key}: {message}" + (f" ({cause})" if cause and cause not in message else ""))
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        text = f"{evaluation.check_name} on {evaluation.asset_key.to_user_string()}: {evaluation.description or 'failed'}"
        if evaluation.severity == dg.AssetCheckSeverity.ERROR:
            outcome.failures.append(text)
            outcome.success = False
        else:
            outcome.warnings.append(text)
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        outcome.metadata[materialization.asset_key.to_user_string()] = {
            k: v.value for k, v in materialization.metadata.items()
        }
    return outcome


def raise_work_items_after_close(settings: Settings) -> str:
    """The close's last duty (docs/contract/published-interface.md): raise the month's work items, mirror and publish them.

    The same tick the work-item sensor runs (idempotent through dedup keys), so a close
    leaves the queue ready even where no Dagster daemon runs (the demo, a cron job).
    """
    from orchestration.workitem_sensors import raise_work_items
    from warehouse.published import publish
    from workitems.mirror import mirror_work_items
    from workitems.store import queue_engine

    engine = queue_engine()
    try:
        outcome = raise_work_items(settings.warehouse, engine, None)
        if mirror_work_items(settings.warehouse, engine):
            publish(settings.warehouse, settings.published)
    finally:
        engine.dispose()
    return f"work items: {len(outcome.raised)} raised, {len(outcome.done)} marked done ({outcome.message})"
