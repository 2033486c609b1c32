"""Only a close run opens the warehouse (decisions #60): every other process works from the operational store
and the published copy, so none of them can take DuckDB's lock while a close holds the file (or the reverse).

Another process holds a WRITE connection on a real warehouse file while `billops workitems approve` runs
through the installed command and every sensor of the code location ticks on the workspace's instance (as
the daemon or `dagster dev`'s code server ticks them). Linux inotify on the warehouse's folder records every
open of a file there, by any process: none of them opens it, none fails, and the published copy shows the
decision and the alert.
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.alerts.receivers import failing_close
from tests.conftest import BILLOPS
from tests.workitems.test_cli import ME, SEED
from warehouse.published import publish_now
from warehouse.schema import bootstrap
from workitems.store import queue_engine, raise_items

IN_OPEN = 0x00000020
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)

HOLD_FOR_WRITING = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN TRANSACTION")
con.execute("CREATE TABLE IF NOT EXISTS closing (x INTEGER)")
print("held", flush=True)
sys.stdin.read()
"""


class Opens:
    """The names of the files opened in one folder, by any process, since the watch began (inotify)."""

    def __init__(self, folder: Path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, bytes(folder), IN_OPEN) < 0:
            pytest.skip(f"inotify unavailable: {os.strerror(ctypes.get_errno())}")

    def names(self) -> list[str]:
        names = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            offset = 0
            while offset < len(data):
                _, mask, _, length = EVENT.unpack_from(data, offset)
                name = data[offset + EVENT.size: offset + EVENT.size + length].rstrip(b"\0").decode()
                if mask & IN_OPEN:
                    names.append(name)
                offset += EVENT.size + length

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A warehouse a close left (in a folder of its own), its published copy, a queue and a Dagster home
    holding one failed close; the environment points every process at them."""
    folder = tmp_path / "warehouse"
    folder.mkdir()
    warehouse = folder / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        bootstrap(con)
        con.execute("CREATE TABLE marts.invoices AS SELECT 'INV-1' AS invoice_number, 12.34::DECIMAL(18,2) AS total")
    published = tmp_path / "published"
    publish_now(warehouse, published)
    settings = {"BILLOPS_WAREHOUSE": str(warehouse), "BILLOPS_PUBLISHED": str(published),
                "BILLOPS_LANDING": str(tmp_path / "landing"), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
                "BILLOPS_QUEUE_URL": f"sqlite:///{tmp_path / 'ops.sqlite'}"}
    (tmp_path / "landing").mkdir()
    (tmp_path / "dagster_home").mkdir()
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("BILLOPS_WORKITEM_WEBHOOK_URL", "BILLOPS_ALERT_WEBHOOK_URL", "BILLOPS_ALERT_EMAIL_TO"):
        monkeypatch.delenv(name, raising=False)
    engine = queue_engine(settings["BILLOPS_QUEUE_URL"])
    raise_items(engine, SEED)
    engine.dispose()
    with dg.DagsterInstance.get() as instance:
        failing_close.execute_in_process(instance=instance, raise_on_error=False,
                                        tags={"dagster/partition": "2026-10-01"})
    return warehouse, published, settings


def _published(published: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(published / "billops.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_queue_command_and_every_sensor_work_while_a_writer_holds_the_warehouse_and_never_open_it(workspace):
    from orchestration.definitions import defs

    warehouse, published, settings = workspace
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FOR_WRITING, str(warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    opens = None
    try:
        assert holder.stdout.readline().strip() == "held"
        opens = Opens(warehouse.parent)  # from now on: the holder has its file open already
        approved = subprocess.run([str(BILLOPS), "workitems", "approve", "WI-000002"], cwd=warehouse.parent.parent,
                                  env={**os.environ, **settings}, capture_output=True, text=True, timeout=120)
        ticks: dict[str, list[str]] = {}  # each sensor's skip messages, tick by tick (its cursor carried)
        with dg.DagsterInstance.get() as instance:
            for sensor in defs.sensors:
                cursor = None
                for _ in range(2):
                    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
                    result = sensor.evaluate_tick(context)
                    cursor = result.cursor
                    ticks.setdefault(sensor.name, []).append(result.skip_message)
        opened = opens.names()
        # the positive control: opening the held file (here, read-only) is seen, and refused by its lock
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(warehouse), read_only=True)
        control = opens.names()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        if opens:
            opens.close()

    assert [name for name in opened if name.startswith("warehouse.duckdb")] == []
    assert "warehouse.duckdb" in control
    assert (approved.returncode, approved.stdout, approved.stderr) == (0, f"WI-000002 approved by {ME}\n", "")
    assert {name for name in ticks} >= {"alert_on_failed_close_sensor", "alert_on_failed_warning_check_sensor"}
    assert ticks["alert_on_failed_close_sensor"] == ["1 alerts sent, 0 retried; alerts published",
                                                     "0 alerts sent, 0 retried; published alerts up to date"]
    assert ticks["alert_on_failed_warning_check_sensor"] == ["0 runs read, 0 alerts sent, 0 retried; "
                                                             "published alerts up to date"] * 2

    # the published copy: the decision and the alert; the marts a close published are as it left them
    assert _published(published, "SELECT work_item_id, status, decided_by, amount FROM marts.work_items "
                                  "WHERE work_item_id = 'WI-000002'") == [("WI-000002", "approved", ME, Decimal("40.00"))]
    assert _published(published, "SELECT count(*) FROM marts.work_items") == [(4,)]
    assert _published(published, "SELECT kind, billing_month::VARCHAR FROM marts.alerts") == [("run_failed", "2026-10-01")]
    assert _published(published, "SELECT invoice_number, total FROM marts.invoices") == [("INV-1", Decimal("12.34"))]
    # and the warehouse was written by nobody: its marts.work_items is still the empty one the close left
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.work_items").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'closing'").fetchone() == (0,)
