"""The dagster.yaml billops writes for an instance (DAGSTER_HOME), and keeps current while it is billops's.

Dagster's own settings, as its dagster.yaml reference documents them: runs, events and schedules
in SQLite under DAGSTER_HOME (Dagster's layout), with the event log's connections kept open
(orchestration/private_hooks.py, docs/decisions.md #62), Dagster's run monitoring on, and the run
queue holding one warehouse-writing run at a time (a tag concurrency limit).
A file without billops's first line is the operator's own (Postgres, another launcher): billops
never touches it.
"""

from __future__ import annotations

import os
from pathlib import Path

HEADER = "# Written by billops"

DAGSTER_YAML = f"""{HEADER}; rewritten when billops changes it (delete this line to keep your own).
# Local instance: runs, events and schedules in SQLite in this folder (Dagster's layout).
telemetry:
  enabled: false
# Dagster's SQLite event log with its connections kept open (orchestration/private_hooks.py).
event_log_storage:
  module: orchestration.private_hooks
  class: PooledSqliteEventLogStorage
  config:
    base_dir:
      env: DAGSTER_HOME
# The daemon fails a run that never starts or never finishes cancelling (Dagster's run monitoring);
# a run worker that dies (kill -9) is marked failed by the code server that launched it.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  poll_interval_seconds: 30
# Runs go through the run queue; a close writes the warehouse (one DuckDB writer), so one run
# tagged billops/warehouse=writer runs at a time and the next waits (close_month_job's tag).
run_queue:
  dequeue_interval_seconds: 1
concurrency:
  runs:
    tag_concurrency_limits:
      - key: billops/warehouse
        value: writer
        limit: 1
"""


def prepare_instance(dagster_home: Path) -> None:
    """Create DAGSTER_HOME with billops's dagster.yaml, or bring an earlier billops-written one up to date."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if config.exists():
        current = config.read_text()
        if not current.startswith(HEADER) or current == DAGSTER_YAML:
            return
    _write(config)


def _write(config: Path) -> None:
    written = config.with_name(f".dagster.yaml.{os.getpid()}")
    written.write_text(DAGSTER_YAML)
    written.replace(config)  # whole, for a webserver or daemon reading it at that moment
