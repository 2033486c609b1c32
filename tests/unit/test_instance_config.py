"""orchestration/instance_config.py: the dagster.yaml billops writes, keeps current, and never writes over an operator's."""

from __future__ import annotations

import os
from unittest import mock

import dagster as dg

from orchestration.instance_config import DAGSTER_YAML, prepare_instance
from orchestration.private_hooks import PooledSqliteEventLogStorage

EARLIER = """# Written by billops on first use. Local instance: runs, events and schedules in this folder.
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


def test_a_new_instance_gets_dagster_s_layout_the_pooled_event_log_and_run_monitoring(tmp_path):
    home = tmp_path / "dagster_home"
    prepare_instance(home)
    assert (home / "dagster.yaml").read_text() == DAGSTER_YAML
    with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}), dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
    assert (home / "history" / "runs" / "index.db").exists()  # Dagster's own layout
    assert (home / "history" / "runs.db").exists()


def test_a_file_billops_wrote_earlier_is_brought_up_to_date(tmp_path):
    (tmp_path / "dagster.yaml").write_text(EARLIER)  # names a module that no longer exists
    prepare_instance(tmp_path)
    assert (tmp_path / "dagster.yaml").read_text() == DAGSTER_YAML
    assert [p.name for p in tmp_path.iterdir()] == ["dagster.yaml"]  # no temporary file left behind


def test_an_operator_s_own_file_is_never_touched(tmp_path):
    own = "storage:\n  sqlite:\n    base_dir: /srv/dagster\n"
    (tmp_path / "dagster.yaml").write_text(own)
    prepare_instance(tmp_path)
    assert (tmp_path / "dagster.yaml").read_text() == own
