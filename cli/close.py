"""`billops close`: submit the monthly close to Dagster, follow it, and report what its runs did.

The command is a client of the instance in DAGSTER_HOME: it refuses a month that would be
issued out of order, plans the earlier issued months to restate first (warehouse/close_plan.py,
the planner the schedule and the restatement sensor use), submits each run to the instance's
run queue (cli/instance_runs.py), and reads each run's own events — step failures, check
evaluations, the assets' metadata — never the warehouse, so the summary is always this run's.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import ExitStack, nullcontext, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from config.billing_month import BillingMonth
from config.settings import Settings
from warehouse.close_options import TRIGGER_TAG, WAREHOUSE_SLOT_TAG, CloseOptions
from warehouse.close_plan import CloseRefused, PlannedClose, plan_close
from warehouse.close_state import CloseState, close_state_in_store, close_state_in_warehouse
from warehouse.schema import table_exists

# Not `logs`: Dagster's telemetry uploader owns $DAGSTER_HOME/logs and moves it away (seen here
# while a run worker started, with telemetry disabled).
LOG_FOLDER = "billops-logs"
MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass
class CloseOutcome:
    month: BillingMonth
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


def partition_problem(month: BillingMonth) -> str | None:
    """Why the month is not a partition of the close, in words (not DagsterUnknownPartitionError)."""
    from config.partitions import monthly_partitions

    keys = monthly_partitions.get_partition_keys()
    if month.partition_key in keys:
        return None
    first, last = (BillingMonth.from_partition_key(key) for key in (keys[0], keys[-1]))
    return f"{month} is outside the months billops closes ({first} to {last})"


def plan_months(settings: Settings, month: BillingMonth, options: CloseOptions = CloseOptions(),
                in_process: bool = False) -> list[PlannedClose]:
    """The runs of this close, in order (warehouse/close_plan.py), planned from the close state in the
    operational store; a warehouse issued before that state existed is read for it instead.

    Launched through the instance, a busy warehouse is no reason to refuse: the run waits in the
    queue for the warehouse's slot and judges the month itself when it starts. In this process
    (`--in-process`, outside the queue) a warehouse held by another process refuses the close.
    Raises CloseRefused when the month would be issued out of order.
    """
    state = close_state_in_store()
    if (state is None or in_process) and settings.warehouse.exists():
        try:
            con = duckdb.connect(str(settings.warehouse), read_only=True)
        except duckdb.IOException as exc:
            if in_process:
                raise CloseRefused(f"the warehouse {settings.warehouse} is in use by another process "
                                   f"(a close running?): {exc}")
            con = None
        if con is not None:
            try:
                if table_exists(con, "audit", "issued_months"):
                    state = close_state_in_warehouse(con)
            finally:
                con.close()
    return plan_close(settings.landing, state or CloseState(), month, options)


def close_job():
    """The close job, for `dg.reconstructable` (execute_job needs a job it can rebuild by name)."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("close_month_job")


def _log_file(settings: Settings, month: BillingMonth) -> tuple[Path, Path]:
    """(folder, a pending name): the log is named after the run once the run id is known."""
    logs = settings.dagster_home / LOG_FOLDER
    logs.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return logs, logs / f"close-{month}-started-{started}-{os.getpid()}.log"


def run_tags(month: BillingMonth, options: CloseOptions) -> dict[str, str]:
    return {"dagster/partition": month.partition_key, TRIGGER_TAG: "command", **options.tags()}


class CloseSession:
    """The runs of one `billops close`, submitted to the instance one after the other.

    The first run is queued before a daemon is started (one this command starts itself when none
    runs), so the restatement sensor's first tick sees the close under way and requests nothing
    twice. The daemon this command started is stopped when the queue is empty; after a failed run
    it first waits (≤75 s) for the failed-close sensor to raise the run's alert.
    """

    def __init__(self, settings: Settings, on_wait=None):
        self.settings = settings
        self.on_wait = on_wait
        self._stack = ExitStack()
        self._instance = None
        self._own_daemon = None
        self.failed_runs: list[str] = []

    def __enter__(self) -> "CloseSession":
        import dagster as dg

        prepare_instance(self.settings)
        self._instance = self._stack.enter_context(dg.DagsterInstance.get())
        # Its SQLite storage created here, once, before the daemon, its code server and `dagster job
        # launch` open it at the same moment (three processes creating runs.db at once left it with
        # two alembic heads once, and every later open failed).
        self._instance.get_runs(limit=1)
        return self

    def run(self, month: BillingMonth, options: CloseOptions) -> CloseOutcome:
        from cli import instance_runs

        logs, pending = _log_file(self.settings, month)
        with pending.open("w") as log:
            run_id = instance_runs.submit(self.settings, run_tags(month, options), log)
        log_file = logs / f"close-{month}-{run_id}.log"
        pending.rename(log_file)
        self._keep_daemon()
        try:
            status = instance_runs.follow(self._instance, run_id, self.on_wait, self._keep_daemon)
        except KeyboardInterrupt:
            instance_runs.cancel(self._instance, run_id)
            raise
        with log_file.open("a") as log:
            instance_runs.write_event_log(self._instance, run_id, log)
        outcome = outcome_of(month, run_id, status == "SUCCESS", instance_runs.run_events(self._instance, run_id),
                             log_file)
        if not outcome.success:
            self.failed_runs.append(run_id)
        return outcome

    def _keep_daemon(self) -> None:
        """A daemon for the queue: the instance's own when one beats, else one this command starts."""
        from cli import instance_runs

        if self._own_daemon is not None and self._own_daemon.poll() is None:
            return
        if instance_runs.daemon_alive(self._instance):
            return
        logs = self.settings.dagster_home / LOG_FOLDER
        self._own_daemon = instance_runs.start_daemon(self.settings, logs / "daemon.log")

    def __exit__(self, *exc) -> None:
        from cli import instance_runs

        try:
            if self._own_daemon is not None and exc[0] is None:
                instance_runs.wait_until_idle(self._instance)
                for run_id in self.failed_runs:
                    instance_runs.wait_for_alert(run_id)
        finally:
            if self._own_daemon is not None:
                instance_runs.stop_daemon(self._own_daemon)
            self._stack.__exit__(*exc)


def run_in_process(settings: Settings, month: BillingMonth, options: CloseOptions = CloseOptions(),
                   verbose: bool = False) -> CloseOutcome:
    """Execute close_month_job for the month's partition in this process (`billops close --in-process`).

    As `dagster job execute` is to `dagster job launch`: the run is recorded in the instance but
    bypasses its queue and run launcher, so nothing watches its process (a killed in-process run
    stays STARTED until someone marks it in the UI). For debugging and the test suite, where it
    saves ~12 s of launching per close.

    One log per run, never overwritten: `billops-logs/close-YYYY-MM-<run id>.log` holds dbt's output and,
    unless `verbose`, Dagster's console lines and Python warnings (the run's event log keeps every
    event either way); `verbose` shows those on the terminal instead.
    """
    import dagster as dg

    prepare_instance(settings)
    logs, pending = _log_file(settings, month)
    tags = {**run_tags(month, options), TRIGGER_TAG: "command --in-process", WAREHOUSE_SLOT_TAG: "in-process"}
    console_level = "INFO" if verbose else "WARNING"
    with dg.DagsterInstance.get() as instance, pending.open("w") as log, redirect_stdout(log), \
            (nullcontext() if verbose else redirect_stderr(log)), warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter("default")  # shown once each, into the log, not on the terminal
        result = dg.execute_job(
            dg.reconstructable(close_job),
            instance=instance,
            tags=tags,
            run_config={"loggers": {"console": {"config": {"log_level": console_level}}}},
        )
    log_file = logs / f"close-{month}-{result.run_id}.log"
    pending.rename(log_file)
    return outcome_of(month, result.run_id, result.success, result.all_events, log_file)


def crash_or_run_failure(event) -> bool:
    """The run's own failure, or the launcher's note that its worker died (`kill -9`: "... signal 9 (SIGKILL)")."""
    import dagster as dg

    from alerts.messages import worker_died

    return event.event_type == dg.DagsterEventType.RUN_FAILURE or (
        event.event_type == dg.DagsterEventType.ENGINE_EVENT and worker_died(event.message or ""))


def outcome_of(month: BillingMonth, run_id: str, success: bool, events: list, log_file: Path) -> CloseOutcome:
    """What the run did, read from its own Dagster events only (never the warehouse)."""
    import dagster as dg

    outcome = CloseOutcome(month=month, success=success, run_id=run_id, log_file=log_file)
    failures = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    for event in failures:
        error = event.step_failure_data.error
        message = error.message.strip() if error else "failed"
        cause = error.cause.message.strip() if error and error.cause else ""
        outcome.failures.append(f"{event.step_key}: {message}" + (f" ({cause})" if cause and cause not in message else ""))
    if not success and not failures:  # the run itself failed: its worker died, or it was canceled
        outcome.failures += [event.message.strip() for event in events if crash_or_run_failure(event)]
    evaluations = [e.event_specific_data for e in events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    for evaluation in evaluations:
        if evaluation.passed:
            continue
        text = f"{evaluation.check_name} on {evaluation.asset_key.to_user_string()}: {evaluation.description or 'failed'}"
        if evaluation.severity == dg.AssetCheckSeverity.ERROR:
            outcome.failures.append(text)
            outcome.success = False
        else:
            outcome.warnings.append(text)
    for event in events:
        if event.event_type != dg.DagsterEventType.ASSET_MATERIALIZATION:
            continue
        materialization = event.event_specific_data.materialization
        outcome.metadata[materialization.asset_key.to_user_string()] = {
            k: v.value for k, v in materialization.metadata.items()
        }
    return outcome
