"""Shared fixtures: scratch workspaces (landing zone, warehouse, Dagster instance) and the real `billops` command.

Speed (issue 6): a full close costs about a core-minute, so the golden month is
closed ONCE per test run (`closed_golden`, session scope, shared by both xdist
workers through a file lock) and read by many assertions; a test that needs
"October closed" and then changes something works on a copy of it
(`copy_closed_golden`), never on a new close. Every Workspace has its own
DAGSTER_HOME and warehouse, so workers never share a DuckDB file.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from unittest import mock

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("BILLOPS_ENV", "ci")  # the dbt target of tests (profiles.yml), in-process runs included
# A test worker loads the definitions once and then closes cases of many months, landed later: the
# partitions start at 2020-01 here, not at the first month landed (tests/unit/test_partitions.py
# tests that rule in processes of their own).
os.environ.setdefault("BILLOPS_FIRST_MONTH", "2020-01")
# dbt beside this Python, for an in-process re-parse of a stale manifest (assets/dbt_project.py).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "fixtures" / "case-basic-2026-10"
BILLOPS = Path(sys.executable).parent / "billops"

# The contract's usage schema (docs/contract/inputs.md), written independently of the generator.
USAGE_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("customer_id", pa.string()),
        ("resource_id", pa.string()),
        ("sku", pa.string()),
        ("region", pa.string()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")),
        ("quantity", pa.decimal128(18, 6)),
    ]
)


# The files that build the shared closes go out first, one per worker (xdist hands files out in
# collection order, two per worker to begin with: pyproject.toml runs four), then the longest chains
# that follow them: the golden close, the generated chain, the restatement chain and the work-item
# tests that read the generated chain, then the three ways of closing November (each waits for the
# golden close, then runs beside the others) and the cross-month chain, so no worker waits idle
# for a shared close near the end.
FIRST_FILES = ("tests/test_close_golden.py", "tests/test_demo_chain.py",
               "tests/test_restatements.py", "tests/workitems/test_raising.py",
               "tests/test_close_way_command.py", "tests/test_close_way_ui.py",
               "tests/test_close_way_schedule.py", "tests/test_cross_month_duplicates.py")


def pytest_collection_modifyitems(items: list) -> None:
    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return FIRST_FILES.index(path) if path in FIRST_FILES else len(FIRST_FILES)

    items.sort(key=rank)  # stable: the rest keep pytest's order


@dataclass
class Workspace:
    root: Path
    landing: Path
    warehouse: Path
    dagster_home: Path

    @classmethod
    def at(cls, root: Path) -> "Workspace":
        return cls(root, root / "landing", root / "warehouse.duckdb", root / "dagster_home")

    @property
    def settings(self) -> dict[str, str]:
        """The variables that point billops at this workspace (and the ci dbt target)."""
        return {"BILLOPS_ENV": "ci", "BILLOPS_LANDING": str(self.landing), "BILLOPS_WAREHOUSE": str(self.warehouse),
                "DAGSTER_HOME": str(self.dagster_home)}

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.settings}

    def billops(self, *args: str, env: dict[str, str] | None = None, real: bool = False) -> subprocess.CompletedProcess:
        """Run the `billops` command in this workspace.

        By default in this process, through the same Typer app (typer.testing.CliRunner) with the
        workspace's environment and working directory: exit code, stdout and stderr as the command
        gives them, without paying ~8 s of interpreter and Dagster start-up per call. `real=True` runs
        the installed executable in a subprocess (the end-to-end tests: golden close, generated chain).
        """
        overrides = {**self.settings, **(env or {})}
        if real:
            return subprocess.run([str(BILLOPS), *args], cwd=self.root, env={**os.environ, **overrides},
                                  capture_output=True, text=True, timeout=900)
        from typer.testing import CliRunner

        from cli.main import app

        here = os.getcwd()
        os.chdir(self.root)
        try:
            result = CliRunner().invoke(app, list(args), env=overrides)
        finally:
            os.chdir(here)
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(result.exception))
        return subprocess.CompletedProcess(["billops", *args], result.exit_code, result.stdout, stderr)

    def close(self, month: str, *options: str, env: dict[str, str] | None = None,
              real: bool = False, through_instance: bool = False) -> subprocess.CompletedProcess:
        """`billops close`. The real command (`real`) and `through_instance` submit the runs to the instance's
        queue (a daemon started for them: ~15 s more per close); otherwise `--in-process`, for the many tests
        about what a close computes rather than how it is run (decisions #68)."""
        if not (real or through_instance) and "--in-process" not in options:
            options = (*options, "--in-process")
        return self.billops("close", "--month", month, *options, env=env, real=real)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def write_usage(self, relative: str, rows: list[dict], schema: pa.Schema = USAGE_SCHEMA) -> Path:
        path = self.landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        return path

    @contextmanager
    def instance(self):
        """The workspace's Dagster instance, opened as every Dagster process opens it: from DAGSTER_HOME
        (its dagster.yaml names the event log's folder by that variable, cli/close.py)."""
        import dagster as dg

        with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(self.dagster_home)}), \
                dg.DagsterInstance.get() as instance:
            yield instance

    def runs(self) -> list[tuple[str, str]]:
        """(run_id, status) of every run in the workspace's instance, oldest first (read from its SQLite)."""
        db = self.dagster_home / "history" / "runs.db"
        if not db.exists():
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute("SELECT run_id, status FROM runs ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # the instance is still creating its tables
            return []
        finally:
            con.close()


@pytest.fixture
def golden(tmp_path: Path) -> Workspace:
    """A copy of the golden October 2026 landing zone with an empty warehouse (no close run)."""
    ws = Workspace.at(tmp_path)
    shutil.copytree(GOLDEN / "landing", ws.landing)
    return ws


# --- the golden month, closed once per test run -------------------------------------------------


@dataclass
class ClosedGolden:
    """The golden landing closed by `billops close --month 2026-10` after a first close was killed (-9)."""

    ws: Workspace
    result: subprocess.CompletedProcess
    killed_run_id: str | None
    close_run_id: str
    killed: dict  # the killed close: its command's exit code and output, the worker's pid, alerts after it


def _shared_dir(tmp_path_factory) -> Path:
    """A directory both xdist workers of this test run see (the per-run parent of their base temps)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def run_worker_pid(ws: Workspace, run_id: str) -> int | None:
    """The pid of the run's worker, as Dagster's run launcher recorded it ("Started process for run (pid: N)")."""
    import re

    with ws.instance() as instance:
        for entry in instance.all_logs(run_id):
            found = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
            if found:
                return int(found.group(1))
    return None


def _kill_a_run_worker_mid_run(ws: Workspace) -> dict:
    """Start `billops close` (through the instance), wait until its run is STARTED and ~4 s into it, then
    kill -9 the run's worker process alone; the command follows the run to its end. What it printed, the
    run id and the alerts then in the store are kept."""
    process = subprocess.Popen([str(BILLOPS), "close", "--month", "2026-10"], cwd=ws.root, env=ws.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    started = pid = None
    while time.time() < deadline and process.poll() is None and pid is None:
        started = next((run_id for run_id, status in ws.runs() if status == "STARTED"), None)
        pid = run_worker_pid(ws, started) if started else None
        time.sleep(0.2)
    if pid is not None:
        time.sleep(4)
        os.kill(pid, signal.SIGKILL)
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    return {"killed_run_id": started, "killed_pid": pid, "killed_returncode": process.returncode,
            "killed_stdout": stdout, "killed_stderr": stderr, "alerts_after_kill": stored_alerts(ws)}


def stored_alerts(ws: Workspace) -> list[list[str]]:
    """(dedup_key, kind, text) of every alert in the workspace's store (ops.sqlite beside the warehouse)."""
    store = ws.root / "ops.sqlite"
    if not store.exists():
        return []
    con = sqlite3.connect(store)
    try:
        return [list(row) for row in con.execute("SELECT dedup_key, kind, text FROM alerts ORDER BY created_at")]
    except sqlite3.OperationalError:  # no alert table: nothing was ever raised
        return []
    finally:
        con.close()


def _close_golden_once(root: Path) -> dict:
    ws = Workspace.at(root)
    shutil.copytree(GOLDEN / "landing", ws.landing)
    killed = _kill_a_run_worker_mid_run(ws)
    result = ws.close("2026-10", real=True)
    runs = ws.runs()
    return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr,
            "close_run_id": runs[-1][0] if runs else "", **killed}


def build_once(shared: Path, name: str, build) -> tuple[Path, dict]:
    """`build(root)` run once per test run, in `shared/name`, by the first xdist worker to ask (a file
    lock); its JSON-able result is kept beside it for every later caller, on either worker."""
    root, done = shared / name, shared / f"{name}.json"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # what a failed attempt left
            done.write_text(json.dumps(build(root)))
    return root, json.loads(done.read_text())


def completed(args: list[str], result: dict) -> subprocess.CompletedProcess:
    """A command's outcome as `build_once` kept it (returncode, stdout, stderr)."""
    return subprocess.CompletedProcess(args, result["returncode"], result["stdout"], result["stderr"])


@pytest.fixture(scope="session")
def closed_golden(tmp_path_factory) -> ClosedGolden:
    """The golden month closed once for the whole test run (read-only: copy it before changing anything)."""
    root, data = build_once(_shared_dir(tmp_path_factory), "closed-golden", _close_golden_once)
    result = completed(["billops", "close", "--month", "2026-10"], data)
    return ClosedGolden(Workspace.at(root), result, data["killed_run_id"], data["close_run_id"],
                        {k: v for k, v in data.items() if k.startswith("killed") or k == "alerts_after_kill"})


def copy_workspace(source: Workspace, root: Path) -> Workspace:
    """A private copy of a closed workspace (landing, warehouse, instance, and the work-item queue at its
    default place beside the warehouse) to change and close again."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("landing", "warehouse.duckdb", "dagster_home"):
        src = source.root / name
        if src.is_dir():
            shutil.copytree(src, root / name)
        elif src.exists():
            shutil.copy2(src, root / name)
    for queue_file in source.root.glob("ops.sqlite*"):  # with its WAL files, if a writer left any
        shutil.copy2(queue_file, root / queue_file.name)
    return Workspace.at(root)


@pytest.fixture(scope="session")
def generated_chain(tmp_path_factory):
    """Two generated months closed through the real command, built once per test run (tests/generated_chain.py)."""
    from tests.generated_chain import generated_chain as build

    return build(_shared_dir(tmp_path_factory))


@pytest.fixture(scope="session")
def closed_november(closed_golden, tmp_path_factory):
    """November closed after the golden October while BI readers read, once per run (tests/golden_november.py)."""
    from tests.golden_november import closed_november as build

    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    return build(_shared_dir(tmp_path_factory), closed_golden.ws)


@pytest.fixture
def copy_closed_golden(closed_golden, tmp_path) -> Workspace:
    """October 2026 closed and issued, in a private copy."""
    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    return copy_workspace(closed_golden.ws, tmp_path / "ws")


def dbt(ws: Workspace, command: str, *args: str, period: tuple[str, str] = ("2026-10-01", "2026-11-01")):
    """`dbt <command> <args>` (through `billops-dbt`, as a close runs it) on a workspace's warehouse for
    one period, with the close's project and profile, its target and logs under the workspace
    (`dbt-target`, `dbt-logs`): the models or dbt tests a test is about, without the full close around
    them (the close is tested through `closed_golden`)."""
    variables = {"period_start": period[0], "period_end": period[1], "warehouse": str(ws.warehouse)}
    project = REPO / "dbt_project"
    return subprocess.run(
        [str(Path(sys.executable).parent / "billops-dbt"), command, *args, "--vars", json.dumps(variables),
         "--target-path", str(ws.root / "dbt-target"), "--log-path", str(ws.root / "dbt-logs"),
         "--project-dir", str(project), "--profiles-dir", str(project)],
        env=ws.env, capture_output=True, text=True, timeout=600)


# --- reading the golden expectations ------------------------------------------------------------


def read_expected(name: str) -> list[dict]:
    with (GOLDEN / "expected" / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def as_value(text: str | None):
    """Normalise a CSV cell or a warehouse value for exact comparison (Decimal, not float)."""
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        return text
    if isinstance(text, (Decimal, int)):
        return Decimal(text)
    if text in ("true", "false"):
        return text == "true"
    try:
        return Decimal(text)
    except Exception:
        return str(text)


def assert_closes_to_golden(ws: Workspace, table_prefix: str = "marts.") -> None:
    """invoices and invoice_lines (marts by default) equal the golden expectations, every column, to the cent."""
    for table, expected_file, key in (
        (f"{table_prefix}invoices", "invoices.csv", "invoice_number"),
        (f"{table_prefix}invoice_lines", "invoice_lines.csv", "invoice_number, line_number"),
    ):
        expected = read_expected(expected_file)
        columns = list(expected[0].keys())
        actual = ws.query(
            f"SELECT {', '.join(columns)} FROM {table} WHERE billing_month = DATE '2026-10-01' ORDER BY {key}"
        )
        assert len(actual) == len(expected), f"{table}: {len(actual)} rows, expected {len(expected)}"
        for want, got in zip(expected, actual):
            for column, value in zip(columns, got):
                assert as_value(str(value) if hasattr(value, "isoformat") else value) == as_value(want[column]), (
                    f"{table} {want[key.split(',')[0]]} {column}: {value!r} != {want[column]!r}"
                )
