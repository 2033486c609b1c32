"""The close's runs, submitted to the Dagster instance in DAGSTER_HOME and followed to their end.

`billops close` is a client, as the UI is: each run is created and submitted with Dagster's own
`dagster job launch` (the public command; it queues the run in the instance's run queue), the
daemon dequeues it when the warehouse's concurrency slot is free (the job's `billops/warehouse`
tag, limit 1: orchestration/instance_config.py) and the instance's run launcher executes it in a
run worker. So every close shows in the UI with its trigger, a second close waits in the queue
instead of failing on DuckDB's lock, and a run worker killed with `kill -9` is marked failed by
Dagster's code server, which alerts through the failed-close sensor like any failure.

When no daemon is alive (no heartbeat in the last minute), the command starts one for itself —
`dagster-daemon run` on the project's workspace.yaml, in its own session — and stops it once the
queue is empty, so `make demo` needs nothing else started. Figures (golden month, 2 cores): the
launch costs ~8 s, dequeuing and starting a run worker ~4 s, on top of the run itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from config.project_files import REPO_ROOT
from config.settings import child_environment

WORKSPACE = REPO_ROOT / "workspace.yaml"
JOB = "close_month_job"
BIN = Path(sys.executable).parent
# A live daemon beats every 30 s; a daemon stopped a minute ago must not count (its queue would stall).
HEARTBEAT_FRESH_SECONDS = 45
POLL_SECONDS = 0.5
# Dagster's statuses, by name (importing dagster here would cost every `billops` invocation ~2 s).
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")  # orchestration/jobs.py IN_FLIGHT, by name
ENDED = ("SUCCESS", "FAILURE", "CANCELED")


class LaunchFailed(Exception):
    """`dagster job launch` refused the run (no run was queued)."""


def _default_signals() -> list[str]:
    """`env --default-signal=INT,TERM`: a process started from a background shell job inherits SIGINT
    ignored, and a daemon that ignores it cannot be stopped cleanly (dagster dev does the same)."""
    return ["env", "--default-signal=INT,TERM"]


def submit(settings, tags: dict[str, str], log) -> str:
    """Queue one run of the close job with these tags; its run id. The launch's own output goes to `log`."""
    run_id = str(uuid.uuid4())
    command = [str(BIN / "dagster"), "job", "launch", "-w", str(WORKSPACE), "-j", JOB,
               "--tags", json.dumps(tags), "--run-id", run_id]
    log.write(f"$ dagster job launch -j {JOB} --tags '{json.dumps(tags)}' --run-id {run_id}\n")
    log.flush()
    done = subprocess.run(command, cwd=REPO_ROOT, env=child_environment(settings), stdout=log, stderr=subprocess.STDOUT,
                          timeout=600)
    if done.returncode != 0:
        raise LaunchFailed(f"dagster job launch exited {done.returncode} (see {log.name})")
    return run_id


def daemon_alive(instance) -> bool:
    """A daemon of this instance beat in the last minute (the run queue needs one to dequeue)."""
    now = time.time()
    return any(beat.timestamp > now - HEARTBEAT_FRESH_SECONDS for beat in instance.get_daemon_heartbeats().values())


def start_daemon(settings, log_path: Path) -> subprocess.Popen:
    """`dagster-daemon run` on the project's workspace, in its own session (stopped with `stop_daemon`)."""
    with log_path.open("a") as log:
        return subprocess.Popen(
            [*_default_signals(), str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
            cwd=REPO_ROOT, env=child_environment(settings), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)


def stop_daemon(process: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM to the daemon's process group (its code server with it), SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def status_of(instance, run_id: str) -> str:
    run = instance.get_run_by_id(run_id)
    return run.status.value if run else "UNKNOWN"


def follow(instance, run_id: str, on_wait=None, keep_daemon=None) -> str:
    """Wait for the run to end; its final status. `on_wait(blocking_run_ids)` is called once if it queues
    behind another run of the warehouse's slot; `keep_daemon()` every 10 s while it is queued (a daemon
    seen alive when the run was submitted may have stopped since)."""
    told = False
    checked = time.monotonic()
    while True:
        status = status_of(instance, run_id)
        if status in ENDED:
            return status
        if status == "QUEUED" and keep_daemon is not None and time.monotonic() - checked > 10:
            keep_daemon()
            checked = time.monotonic()
        if status == "QUEUED" and not told and on_wait is not None:
            from orchestration.jobs import close_runs_in_flight

            others = close_runs_in_flight(instance, but=run_id)
            if others:
                on_wait(others)
                told = True
        time.sleep(POLL_SECONDS)


def wait_until_idle(instance, timeout: float = 3600) -> None:
    """Wait until no close run is queued or in progress (a daemon this command started must not stop under one)."""
    from orchestration.jobs import close_runs_in_flight

    deadline = time.time() + timeout
    while close_runs_in_flight(instance) and time.time() < deadline:
        time.sleep(POLL_SECONDS)


def wait_for_alert(run_id: str, timeout: float = 75.0) -> bool:
    """Wait until the failed-close sensor has raised the run's alert (its key in the alert store)."""
    from alerts.store import claimed_keys

    deadline = time.time() + timeout
    while time.time() < deadline:
        if claimed_keys([run_id]):
            return True
        time.sleep(1.0)
    return False


def cancel(instance, run_id: str) -> None:
    """Ask the instance to stop a run (a queued run is dropped from the queue, a started one terminated)."""
    run = instance.get_run_by_id(run_id)
    if run is not None and run.status.value in IN_FLIGHT:
        instance.run_coordinator.cancel_run(run_id)


def write_event_log(instance, run_id: str, log) -> None:
    """The run's events, one line each (a failed step with its error), into the command's log; the UI shows
    the same, and the steps' own output (dbt's) is in Dagster's compute logs, beside each step in the UI."""
    for entry in instance.all_logs(run_id):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.timestamp))
        event = entry.dagster_event
        kind = event.event_type_value if event else "LOG"
        log.write(f"{stamp} {entry.level if isinstance(entry.level, str) else ''}{kind} {entry.step_key or '-'} "
                  f"{entry.message or ''}\n")
        error = getattr(event.event_specific_data, "error", None) if event else None
        if error is not None:
            log.write(error.to_string() + "\n")


def run_events(instance, run_id: str) -> list:
    """The run's Dagster events (step failures, check evaluations, materializations, the run's failure)."""
    return [entry.dagster_event for entry in instance.all_logs(run_id) if entry.dagster_event is not None]
