"""The only place billops leans on private internals of Dagster, dagster-dbt and dbt, kept because each pays.

Everything else is wired through public, documented API. No public setting of the pinned versions
(dagster 1.13.27, dagster-dbt 0.29.27, dbt-core 1.11.16) does what these three do, and removing any
one costs the test suite about a minute or more (docs/decisions.md #62-#64). Measured 2026-12-03
on the golden close (`billops close --month 2026-10`, the command's process alone; 4 runs each,
in turn with the hook removed; medians of CPU seconds, the figure the shared machine keeps steady):

| hook | with | without | saved |
| --- | --- | --- | --- |
| `PooledSqliteEventLogStorage` | 34.5 s | 42.8 s | 8.3 s (19 %) |
| `FastStartDbtCliResource` | 34.7 s | 39.3 s | 4.7 s (12 %) |
| `billops-dbt` (`dbt_with_saved_manifest`) | 30.2 s | 34.0 s | 3.9 s (11 %) |

tests/unit/test_private_hooks.py fails when an upgrade renames or reshapes what these override,
or when a hook stops taking effect: re-measure before keeping one past such an upgrade.

`billops-dbt` runs as a process of its own per dbt invocation, so this module imports no Dagster
at the top: the two Dagster classes are built on first use (`__getattr__`), which saves that
process ~1.3 s of imports.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from config.project_files import DBT_PROJECT_DIR, project_changed_since
from config.settings import is_set, setting

# --- dbt handed its saved manifest: the `billops-dbt` executable ------------------------------

SAVED_MANIFEST = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
ACCELERATED = ("build", "run", "test")


def _warehouse(args: list[str]) -> str | None:
    """The warehouse the profile will open: the `warehouse` var, else BILLOPS_WAREHOUSE."""
    if "--vars" in args:
        value = args[args.index("--vars") + 1]
        try:
            variables = json.loads(value)
        except json.JSONDecodeError:
            return None  # YAML vars: leave them to dbt
        if "warehouse" in variables:
            return variables["warehouse"]
    return setting("BILLOPS_WAREHOUSE") if is_set("BILLOPS_WAREHOUSE") else None


def saved_manifest(args: list[str]):
    """The manifest dbt saved at its last parse of the project, or None where dbt must parse.

    dbt re-parses the whole project whenever its vars differ from its last parse in the target
    folder, and they carry the month and the warehouse's path: every new warehouse (each test
    workspace) and each new month paid a full parse. Nothing the parse produces depends on them:
    the period vars are read only by macros at compile time (macros/billing_period.sql) and the
    path only names the database (its file stem). So `build`, `run` and `test` get the manifest
    saved in `dbt_project/target` by `make install`, when it is newer than every project file and
    names the same database. Private: decodes dbt's `partial_parse.msgpack` with dbt's own
    decoder (`Manifest.from_msgpack`, `extended_mashumuro_decoder`); dbt documents only the
    handing over (`dbtRunner(manifest=...)`).
    """
    if not args or args[0] not in ACCELERATED or not SAVED_MANIFEST.exists():
        return None
    if project_changed_since(SAVED_MANIFEST.stat().st_mtime):
        return None
    warehouse = _warehouse(args)
    if not warehouse:
        return None
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    try:
        manifest = Manifest.from_msgpack(SAVED_MANIFEST.read_bytes(), decoder=extended_mashumuro_decoder)
    except Exception:  # written by another dbt version, or mid-write: parse instead
        return None
    databases = {node.database for node in manifest.nodes.values() if node.resource_type == "model"}
    if databases != {Path(warehouse).stem}:
        return None
    manifest.build_parent_and_child_maps()  # as dbt does with a saved manifest it reuses
    return manifest


def dbt_with_saved_manifest() -> None:
    """`billops-dbt`: dbt itself, with the saved manifest where `saved_manifest` allows, else plain `dbt`."""
    args = sys.argv[1:]
    manifest = saved_manifest(args)
    if manifest is None:
        from dbt.cli.main import cli

        cli()  # plain dbt, exits with dbt's own code
        return
    from dbt.cli.main import dbtRunner

    result = dbtRunner(manifest=manifest).invoke(args)
    # dbt's exit codes: 0 success, 1 a node failed, 2 dbt itself failed.
    sys.exit(0 if result.success else (2 if result.exception is not None else 1))


# --- Dagster: the event log and dagster-dbt's resource, built on first use ---------------------

OPEN_DATABASES = 8  # the index and the runs being written or read now; older ones are closed


def _pooled_sqlite_event_log_storage() -> type:
    from contextlib import contextmanager
    from collections import OrderedDict

    from dagster import StringSource
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
        SQLITE_BUSY_TIMEOUT_SECONDS,
        SqliteEventLogStorage,
    )
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    class PooledSqliteEventLogStorage(SqliteEventLogStorage):
        """Dagster's SQLite event log on Dagster's files (`<base_dir>/history/runs`), one engine kept open per database.

        Dagster's `SqliteEventLogStorage._connect` creates and disposes of a SQLAlchemy engine for
        every read and write, about six per event; a close writes ~800 events (dbt's data tests
        are asset checks, planned then evaluated). Same files and schema, so `dagster dev`, the
        daemon and a run read and write exactly what Dagster's default would; an instance's
        dagster.yaml names it (orchestration/instance_config.py) with `base_dir: {env: DAGSTER_HOME}`.
        Writes still go through Dagster's lock (`_db_lock`), one connection at a time per process.

        Private: subclasses `dagster._core...SqliteEventLogStorage` and overrides `_connect`,
        reusing `_db_lock`, `_initialized_dbs` and `_initdb`.
        """

        def __init__(self, base_dir: str, inst_data=None):
            self._engines = OrderedDict()
            super().__init__(os.path.join(base_dir, "history", "runs"), inst_data=inst_data)

        @classmethod
        def config_type(cls):
            return {"base_dir": StringSource}

        @classmethod
        def from_config_value(cls, inst_data, config_value):
            return cls(inst_data=inst_data, **config_value)

        def _engine(self, shard: str):
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=StaticPool,  # one connection, reused; Dagster's lock serialises its use
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                )
                self._engines[shard] = engine
                while len(self._engines) > OPEN_DATABASES:
                    self._engines.popitem(last=False)[1].dispose()
            self._engines.move_to_end(shard)
            return engine

        @contextmanager
        def _connect(self, shard: str):
            with self._db_lock:
                engine = self._engine(shard)
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                with engine.connect() as conn:
                    with conn.begin():
                        yield conn

        def _close_engines(self) -> None:
            with self._db_lock:
                for engine in self._engines.values():
                    engine.dispose()
                self._engines.clear()

        def wipe(self) -> None:
            self._close_engines()  # before Dagster deletes the run databases
            super().wipe()

        def dispose(self) -> None:
            super().dispose()
            self._close_engines()

    return PooledSqliteEventLogStorage


def _fast_start_dbt_cli_resource() -> type:
    from functools import cached_property
    from importlib.metadata import version as installed_version

    from dagster_dbt import DbtCliResource
    from packaging import version

    class FastStartDbtCliResource(DbtCliResource):
        """dagster-dbt's `DbtCliResource` without two start-up costs that billops never uses.

        Before each invocation, `DbtCliResource.cli` opens a dbt adapter in the Dagster process
        (the profile, the project and dbt's macros: 2.1 s the first time in a process, 0.7 s after)
        only to serve `fetch_row_counts` and `fetch_column_metadata`, and asks the executable for
        its version (`dbt --version`, a 2.6 s subprocess, once per resource). billops fetches
        neither, and dbt-core is pinned in the same environment, so the version is read from the
        installed package. Private: overrides `_cli_version` and `_initialize_dbt_core_adapter`.
        """

        @cached_property
        def _cli_version(self) -> version.Version:
            return version.parse(installed_version("dbt-core"))

        def _initialize_dbt_core_adapter(self, args):
            return None

    return FastStartDbtCliResource


_BUILDERS = {
    "PooledSqliteEventLogStorage": _pooled_sqlite_event_log_storage,
    "FastStartDbtCliResource": _fast_start_dbt_cli_resource,
}
_building = threading.Lock()


def __getattr__(name: str) -> type:
    """`PooledSqliteEventLogStorage` and `FastStartDbtCliResource`, each built once, on first use."""
    if name not in _BUILDERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _building:
        if name not in globals():
            cls = _BUILDERS[name]()
            cls.__qualname__ = name
            globals()[name] = cls
    return globals()[name]
