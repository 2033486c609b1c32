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

from orchestration.settings import Settings
from warehouse.close_options import CloseOptions
from warehouse.close_plan import CloseRefused, PlannedClose, plan_close
from warehouse.close_state import CloseState, close_state_in_store, close_state_in_warehouse
from warehouse.schema import table_exists

MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


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
    """DAGSTER_HOME with billops's dagster.yaml (orchestration/instance_config.py)."""
    from orchestration.instance_config import prepare_instance as prepare

    prepare(settings.dagster_home)


def partition_problem(month: str) -> str | None:
    """Why the month is not a partition of the close, in words (not DagsterUnknownPartitionError)."""
    from orchestration.partitions import monthly_partitions

    keys = monthly_partitions.get_partition_keys()
    if f"{month}-01" in keys:
        return None
    return f"{month} is outside the months billops closes ({keys[0][:7]} to {keys[-1][:7]})"


def plan_months(settings: Settings, month: str, options: CloseOptions = CloseOptions()) -> list[PlannedClose]:
    """The runs of this close, in order (warehouse/close_plan.py), planned from the close state in the
    operational store; a warehouse issued before that state existed is read for it instead.

    The command runs the close in its own process, so it first makes sure that it can open the
    warehouse at all: one held by another process refuses the close before any run.
    Raises CloseRefused when the month would be issued out of order or the warehouse is busy.
    """
    state = close_state_in_store()
    if settings.warehouse.exists():
        try:
            con = duckdb.connect(str(settings.warehouse), read_only=True)
        except duckdb.IOException as exc:
            raise CloseRefused(f"the warehouse {settings.warehouse} is in use by another process (a close running?): {exc}")
        try:
            if state is None and table_exists(con, "audit", "issued_months"):
                state = close_state_in_warehouse(con)
        finally:
            con.close()
    return plan_close(settings.landing, state or CloseState(), month, options)


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
