"""Fail close runs whose process is gone (issue 7, finding 9).

A close killed with `kill -9` never writes its failure: the run stays STARTED
in the instance forever and nobody is told. `billops close` tags its run with
`run_tags()` (its pid, host and the process's start time); the failed-close
sensor calls `reap_dead_runs` on every tick and marks such runs failed, after
which they alert like any failed close.

A pid can be reused by a later process: the `billops/pid_start` tag (the
process start time in clock ticks since boot, from /proc/<pid>/stat) tells the
original process from a newcomer. Without /proc (not Linux) a live pid is
taken as the close's own, so a reused pid delays the reaping until it exits.
Runs launched another way (the UI, a schedule) carry no pid tag: Dagster's run
monitoring is the tool for those.
"""

from __future__ import annotations

import logging
import os
import socket

import dagster as dg

logger = logging.getLogger("billops.alerts")

CLOSE_JOB = "close_month_job"
PID_TAG = "billops/pid"
HOST_TAG = "billops/host"
PID_START_TAG = "billops/pid_start"
RUNNING = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
# A process that started more than this after its run began cannot be the run's own (pid reused).
START_TOLERANCE_SECONDS = 2.0


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (field 3), or None without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            content = stat.read()
    except OSError:
        return None
    return content[content.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses


def process_start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def run_tags() -> dict[str, str]:
    """Tags `billops close` gives its run so that a dead close can be recognised later."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    ticks = process_start_ticks(os.getpid())
    if ticks is not None:
        tags[PID_START_TAG] = str(ticks)
    return tags


def process_is_gone(pid: int, start_ticks: int | None = None, run_started: float | None = None) -> bool:
    """True when no process with this pid runs, it is a zombie, or the pid now belongs to a later process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by another user
    fields = _proc_stat(pid)
    if fields is None:
        return False
    if fields[0] in ("Z", "X"):
        return True
    current_ticks = int(fields[19])
    if start_ticks is not None:
        return current_ticks != start_ticks
    boot = _boot_time()
    if run_started is None or boot is None:
        return False
    return boot + current_ticks / os.sysconf("SC_CLK_TCK") > run_started + START_TOLERANCE_SECONDS


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every running close of this host whose process is gone; the run ids marked."""
    host = socket.gethostname()
    records = instance.get_run_records(dg.RunsFilter(job_name=CLOSE_JOB, statuses=list(RUNNING), tags={HOST_TAG: host}))
    reaped = []
    for record in records:
        run = record.dagster_run
        pid = run.tags.get(PID_TAG, "")
        start = run.tags.get(PID_START_TAG, "")
        if not pid.isdigit():
            continue
        if not process_is_gone(int(pid), int(start) if start.isdigit() else None, record.start_time):
            continue
        # A gone process writes nothing more: if the run is still running now, it never will finish.
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status not in RUNNING:
            continue
        message = (
            f"billops close process {pid} on {host} is gone (killed or crashed) while the run was "
            f"{current.status.value}; marked failed by the dead-run reaper."
        )
        instance.report_run_failed(current, message)
        logger.error("run %s: %s", run.run_id, message)
        reaped.append(run.run_id)
    return reaped
