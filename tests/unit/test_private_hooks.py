"""orchestration/private_hooks.py: what each hook overrides is still there, shaped as it expects, and each
hook still takes effect. A failure here after an upgrade means: re-check the hook and re-measure it
(docs/decisions.md #62-#64), or drop it for the public way."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import stat
import sys
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster_dbt import DbtCliResource
from packaging.version import Version

from assets.dbt_project import dbt_project
from orchestration import private_hooks
from orchestration.instance_config import prepare_instance

DBT = str(Path(sys.executable).parent / "dbt")


# --- PooledSqliteEventLogStorage --------------------------------------------------------------


def test_dagster_s_sqlite_event_log_still_has_what_the_pool_overrides(tmp_path):
    assert list(inspect.signature(SqliteEventLogStorage._connect).parameters) == ["self", "shard"]
    assert list(inspect.signature(SqliteEventLogStorage._initdb).parameters) == ["self", "engine", "for_index_shard"]
    # every read and write goes through _connect: overriding it is enough
    assert "self._connect(" in inspect.getsource(SqliteEventLogStorage.run_connection)
    assert "self._connect(" in inspect.getsource(SqliteEventLogStorage.index_connection)
    storage = SqliteEventLogStorage(str(tmp_path))
    try:
        assert hasattr(storage._db_lock, "acquire") and isinstance(storage._initialized_dbs, set)
        assert storage.conn_string_for_shard("index").startswith("sqlite:///")
    finally:
        storage.dispose()


def _materialize_twelve_assets(dagster_home: Path, monkeypatch) -> tuple[str, int, type]:
    """Run a job of 12 assets in the instance of `dagster_home`; the run id, how many SQLite connections
    were opened to the event log's files (history/runs/*.db) meanwhile, and the storage's class."""
    opened: list[str] = []

    def on_connect(dbapi_connection, _record):
        path = dbapi_connection.execute("PRAGMA database_list").fetchone()[2]
        if f"{os.sep}runs{os.sep}" in path:
            opened.append(path)

    @dg.asset
    def first() -> int:
        return 1

    assets = [first]
    for i in range(11):
        previous = assets[-1].key.to_user_string()

        @dg.asset(name=f"a{i}", ins={"upstream": dg.AssetIn(previous)})
        def step(upstream: int) -> int:
            return upstream + 1

        assets.append(step)

    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", on_connect)
    try:
        with dg.DagsterInstance.get() as instance:
            result = dg.materialize(assets, instance=instance)
            kind = type(instance.event_log_storage)
    finally:
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "connect", on_connect)
    assert result.success
    return result.run_id, len(opened), kind


def test_the_pool_opens_each_event_database_once_and_dagster_reads_what_it_wrote(tmp_path, monkeypatch):
    pooled_home = tmp_path / "billops"
    prepare_instance(pooled_home)  # the dagster.yaml billops writes names the pooled storage
    run_id, pooled, kind = _materialize_twelve_assets(pooled_home, monkeypatch)
    default_home = tmp_path / "default"
    default_home.mkdir()
    (default_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    _, default, default_kind = _materialize_twelve_assets(default_home, monkeypatch)

    assert kind is private_hooks.PooledSqliteEventLogStorage and default_kind is SqliteEventLogStorage
    # Pooled: the index's creation, each database's schema check, and Dagster's own `has_table` per
    # materialization (it opens an engine of its own); measured 18 against Dagster's 254.
    assert pooled <= 6 + 12
    assert default >= 10 * pooled  # a connection per read and write: what the hook spares
    # Dagster's default storage, opened on the same files, reads the run's events.
    storage = SqliteEventLogStorage(str(pooled_home / "history" / "runs"))
    try:
        materialized = storage.get_logs_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    finally:
        storage.dispose()
    assert len(materialized) == 12


# --- FastStartDbtCliResource ------------------------------------------------------------------


def test_dagster_dbt_still_asks_for_what_the_resource_answers():
    assert isinstance(inspect.getattr_static(DbtCliResource, "_cli_version"), cached_property)
    assert list(inspect.signature(DbtCliResource._initialize_dbt_core_adapter).parameters) == ["self", "args"]
    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli and "self._initialize_dbt_core_adapter(" in cli


def _recording_dbt(tmp_path: Path) -> tuple[str, Path]:
    """An executable that records its arguments, one line per call, then runs the venv's dbt."""
    calls = tmp_path / "calls.txt"
    script = tmp_path / "recording-dbt"
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {DBT} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), calls


@pytest.mark.parametrize("resource", [private_hooks.FastStartDbtCliResource, DbtCliResource])
def test_an_invocation_starts_without_dbt_version_or_an_adapter(resource, tmp_path):
    executable, calls = _recording_dbt(tmp_path)
    dbt = resource(project_dir=dbt_project, dbt_executable=executable)
    invocation = dbt.cli(["debug", "--config-dir"], target_path=tmp_path / "target")
    invocation.wait()
    assert invocation.is_successful()
    assert invocation.cli_version == Version(installed_version("dbt-core"))
    recorded = calls.read_text().splitlines()
    if resource is DbtCliResource:  # the positive control: what the hook spares
        assert recorded[0] == "--version" and invocation.adapter is not None
    else:
        assert recorded == [f"debug --config-dir --target {dbt_project.target}"] and invocation.adapter is None


# --- billops-dbt: dbt handed its saved manifest -----------------------------------------------


def build(warehouse: str, command: str = "build") -> list[str]:
    variables = {"period_start": "2026-10-01", "period_end": "2026-11-01", "warehouse": warehouse}
    return [command, "--exclude-resource-type", "unit_test", "--vars", json.dumps(variables)]


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """A copy of the manifest `make install` saved, newer than every project file."""
    if not private_hooks.SAVED_MANIFEST.exists():
        pytest.fail(f"{private_hooks.SAVED_MANIFEST} is missing: `make install` parses the project")
    copy = tmp_path / "partial_parse.msgpack"
    shutil.copy(private_hooks.SAVED_MANIFEST, copy)
    monkeypatch.setattr(private_hooks, "SAVED_MANIFEST", copy)
    return copy


def test_a_build_on_a_warehouse_named_like_the_parse_gets_the_saved_manifest(saved, tmp_path):
    manifest = private_hooks.saved_manifest(build(str(tmp_path / "elsewhere" / "warehouse.duckdb")))
    assert manifest is not None  # dbt's decoder still reads the file its own parse wrote
    models = {n.name for n in manifest.nodes.values() if n.resource_type == "model"}
    assert {"int_invoices_drafted", "invoices", "invoice_lines", "credit_ledger"} <= models
    assert manifest.child_map  # parent and child maps built, as dbt does when it reuses a manifest
    assert "manifest" in inspect.signature(__import__("dbt.cli.main").cli.main.dbtRunner).parameters


def test_dbt_parses_when_the_database_name_differs(saved, tmp_path):
    assert private_hooks.saved_manifest(build(str(tmp_path / "bench.duckdb"))) is None


def test_dbt_parses_when_a_project_file_is_newer_than_the_saved_manifest(saved, tmp_path):
    os.utime(saved, (0, 0))  # saved in 1970: every model is newer
    assert private_hooks.saved_manifest(build(str(tmp_path / "warehouse.duckdb"))) is None


def test_other_commands_and_unreadable_manifests_are_plain_dbt(saved, tmp_path):
    warehouse = str(tmp_path / "warehouse.duckdb")
    assert private_hooks.saved_manifest(build(warehouse, command="parse")) is None
    assert private_hooks.saved_manifest(["--version"]) is None
    saved.write_bytes(b"not msgpack")
    assert private_hooks.saved_manifest(build(warehouse)) is None


def test_billops_dbt_imports_no_dagster():
    """It is a process per dbt invocation: importing Dagster would cost it ~1.3 s each time."""
    import subprocess

    probe = "import sys, orchestration.private_hooks; print(sorted(m for m in sys.modules if m.startswith('dagster')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
