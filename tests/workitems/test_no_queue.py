"""A queue that is not there says so (issue 14 item 13): `billops workitems list|show|approve|decline` with no
queue where billops looks print where they looked and which setting points elsewhere, exit 1, and create
nothing; only the code that raises items (a close) creates the store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BILLOPS
from workitems.store import queue_engine

COMMANDS = [("list",), ("list", "--format", "json"), ("show", "WI-000001"), ("approve", "WI-000001"),
            ("decline", "WI-000001", "--reason", "not needed")]


def _billops(cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLOPS_")}
    return subprocess.run([str(BILLOPS), "workitems", *args], cwd=cwd, env={**env, **settings},
                          capture_output=True, text=True, timeout=120)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_with_no_settings_the_command_says_where_it_looked_and_creates_nothing(tmp_path, args):
    result = _billops(tmp_path, *args)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == (
        f"no work-item queue at {tmp_path.resolve() / 'data' / 'ops.sqlite'}: without BILLOPS_QUEUE_URL the queue "
        f"is ops.sqlite in the folder of BILLOPS_WAREHOUSE (data/warehouse.duckdb, the default); set "
        f"BILLOPS_QUEUE_URL, or BILLOPS_WAREHOUSE, to look elsewhere. A close creates the "
        f"queue when it first raises an item")
    assert _tree(tmp_path) == []  # no data/, no ops.sqlite


def test_beside_a_warehouse_that_is_elsewhere(tmp_path):
    warehouse = tmp_path / "prod" / "warehouse.duckdb"
    result = _billops(tmp_path, "list", BILLOPS_WAREHOUSE=str(warehouse))
    assert result.returncode == 1
    assert result.stderr.startswith(f"no work-item queue at {tmp_path / 'prod' / 'ops.sqlite'}: without "
                                    f"BILLOPS_QUEUE_URL the queue is ops.sqlite in the folder of BILLOPS_WAREHOUSE "
                                    f"({warehouse}); set BILLOPS_QUEUE_URL, or BILLOPS_WAREHOUSE, to look elsewhere.")
    assert _tree(tmp_path) == []


def test_a_queue_url_that_leads_nowhere_is_named_without_its_secrets(tmp_path):
    missing = tmp_path / "queues" / "ops.sqlite"
    result = _billops(tmp_path, "list", BILLOPS_QUEUE_URL=f"sqlite:///{missing}")
    assert (result.returncode, result.stderr.strip()) == (1, f"no work-item queue at sqlite:///{missing} (BILLOPS_QUEUE_URL)")
    assert _tree(tmp_path) == []

    server = _billops(tmp_path, "approve", "WI-000001",
                      BILLOPS_QUEUE_URL="postgresql://billing:s3cr3t-pw@db.internal:5432/ops?sslmode=require")
    assert server.returncode == 1
    assert server.stderr.startswith("no work-item queue at postgresql://db.internal:5432 (BILLOPS_QUEUE_URL): "
                                    "it could not be opened (")
    for secret in ("s3cr3t-pw", "billing", "/ops", "sslmode"):
        assert secret not in server.stderr


def test_a_store_holding_only_alerts_is_not_a_queue_and_is_left_as_it_was(tmp_path):
    store = tmp_path / "data" / "ops.sqlite"
    store.parent.mkdir()
    with sqlite3.connect(store) as con:  # what the alert sensor writes before any work item is raised
        con.execute("CREATE TABLE alerts (alert_id TEXT PRIMARY KEY)")
    result = _billops(tmp_path, "list")
    assert result.returncode == 1
    assert result.stderr.startswith(f"no work-item queue at {store.resolve()}: ")
    with sqlite3.connect(store) as con:
        assert [name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["alerts"]


def test_the_code_that_raises_items_creates_the_queue_and_then_it_is_read(tmp_path, monkeypatch):
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    monkeypatch.setenv("BILLOPS_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("BILLOPS_QUEUE_URL", raising=False)
    queue_engine().dispose()  # what a close does before raising
    assert (tmp_path / "data" / "ops.sqlite").is_file()

    listed = _billops(tmp_path, "list", BILLOPS_WAREHOUSE=str(warehouse))
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "no work items\n", "")
    unknown = _billops(tmp_path, "show", "WI-000001", BILLOPS_WAREHOUSE=str(warehouse))
    assert (unknown.returncode, unknown.stderr) == (1, "no work item WI-000001\n")
