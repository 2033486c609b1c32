"""`billops workitems` through the real command: output, JSON rows, audit trail, four eyes, refusals,
and the queue and its published copy working while another process holds the warehouse's write lock
(the command never opens the warehouse: decisions #60)."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from decimal import Decimal

import duckdb
import pytest

from tests.conftest import BILLOPS
from workitems.store import approve, list_items, queue_engine, raise_item, raise_items

ME = pwd.getpwuid(os.geteuid()).pw_name  # who runs the tests, read here independently of workitems/identity.py

# docs/contract/published-interface.md, marts.work_items, written here independently of the code.
CONTRACT_COLUMNS = [
    "work_item_id", "kind", "rule", "customer_id", "invoice_number", "charge_id", "ticket_id", "amount",
    "proposed_due_date", "reason", "evidence", "status", "requires_approval", "created_at", "decided_at",
    "decided_by", "dedup_key",
]

SEED = [
    {"kind": "refund", "rule": "R2", "customer_id": "CUST-0001", "invoice_number": "INV-2026-10-000001",
     "charge_id": "ch_dup", "amount": Decimal("150.10"), "reason": "second succeeded charge",
     "evidence": {"charges": ["ch_first", "ch_dup"]}},
    {"kind": "credit_note", "rule": "R1", "customer_id": "CUST-0002", "invoice_number": "INV-2026-10-000002",
     "amount": Decimal("40.00"), "reason": "restated lower, unpaid", "evidence": {"difference": "-40.00"}},
    {"kind": "payment_extension", "rule": "E1", "customer_id": "CUST-0003", "invoice_number": "INV-2026-10-000003",
     "charge_id": "ch_failed", "proposed_due_date": "2026-11-29", "reason": "eligible"},
    {"kind": "refund", "rule": "R3", "customer_id": "CUST-0004", "invoice_number": "INV-2026-10-000004",
     "ticket_id": "T-77", "amount": Decimal("12.34"), "reason": "claim confirmed by recomputation"},
]


class Queue:
    def __init__(self, root):
        self.url = f"sqlite:///{root / 'q.sqlite'}"
        self.warehouse = root / "wh.duckdb"
        self.published = root / "published"
        self.engine = queue_engine(self.url)
        self.root = root

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "BILLOPS_WORKITEM_WEBHOOK_URL"}
        env.update(BILLOPS_QUEUE_URL=self.url, BILLOPS_WAREHOUSE=str(self.warehouse),
                   BILLOPS_PUBLISHED=str(self.published), COLUMNS="200")
        return env

    def billops(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BILLOPS), "workitems", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def marts(self, database: str = "published/billops.duckdb") -> list[tuple]:
        """marts.work_items as BI reads it: the published copy (or another file, relative to the root)."""
        con = duckdb.connect(str(self.root / database), read_only=True)
        try:
            return con.execute("SELECT work_item_id, status, decided_by FROM marts.work_items ORDER BY 1").fetchall()
        finally:
            con.close()

    def parquet(self) -> list[tuple]:
        con = duckdb.connect()
        try:
            return con.execute("SELECT work_item_id, status, decided_by FROM read_parquet(?) ORDER BY 1",
                               [str(self.published / "parquet" / "work_items" / "work_items.parquet")]).fetchall()
        finally:
            con.close()


@pytest.fixture
def queue(tmp_path, monkeypatch):
    monkeypatch.delenv("BILLOPS_WORKITEM_WEBHOOK_URL", raising=False)
    q = Queue(tmp_path)
    assert [created for _, created in raise_items(q.engine, SEED)] == [True] * 4
    with duckdb.connect(str(q.warehouse)) as con:  # a warehouse a close left: a decision never writes it
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.work_items AS SELECT 'WI-000001' AS work_item_id, "
                    "'open' AS status, NULL::VARCHAR AS decided_by")
    return q


def test_list_prints_the_queue_and_json_rows_with_the_contract_columns(queue):
    table = queue.billops("list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "KIND", "RULE", "CUSTOMER", "INVOICE", "AMOUNT", "DUE", "STATUS", "APPROVALS", "CREATED"]
    assert lines[1].split()[:8] == ["WI-000001", "refund", "R2", "CUST-0001", "INV-2026-10-000001", "150.10", "open", "0/2"]
    assert lines[3].split()[:7] == ["WI-000003", "payment_extension", "E1", "CUST-0003", "INV-2026-10-000003", "2026-11-29", "open"]
    assert lines[-1] == "4 items"

    refunds = queue.billops("list", "--status", "open", "--kind", "refund", "--format", "json")
    assert refunds.returncode == 0, refunds.stderr
    rows = json.loads(refunds.stdout)
    assert [r["work_item_id"] for r in rows] == ["WI-000001", "WI-000004"]
    assert all(list(r) == CONTRACT_COLUMNS for r in rows)
    assert (rows[0]["amount"], rows[1]["amount"], rows[1]["ticket_id"]) == ("150.10", "12.34", "T-77")
    assert rows[0]["evidence"] == {"charges": ["ch_first", "ch_dup"]} and rows[0]["requires_approval"] is True
    assert rows[0]["created_at"].endswith("Z") and rows[0]["dedup_key"] == "refund:R2:INV-2026-10-000001:ch_dup"


def test_four_eyes_and_the_audit_trail_through_the_command(queue):
    first = queue.billops("approve", "WI-000001", "--by", ME, "--reason", "charge log shows two captures")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"WI-000001: approval 1 of 2 recorded by {ME}; a second person must approve")

    again = queue.billops("approve", "WI-000001")
    assert again.returncode == 1
    assert f"refused: WI-000001 needs two different people (four eyes): {ME} already approved it" in again.stderr

    # another person (tests/workitems/test_identity.py runs this one as a second OS user)
    second = approve(queue.engine, "WI-000001", "bob")
    assert second.message == f"WI-000001 approved by {ME} and bob"

    shown = queue.billops("show", "WI-000001")
    assert shown.returncode == 0, shown.stderr
    assert f"approvals          2 of 2 ({ME}, bob)" in shown.stdout
    trail = [line.split(None, 1)[1] for line in shown.stdout.split("audit trail (UTC):\n")[1].splitlines()]
    assert trail == [
        f"created           by sensor (sensor, os user {ME})  - -> open  second succeeded charge",
        f"approval_recorded by {ME} (command, os user {ME})  open -> open  charge log shows two captures",
        f"approved          by bob (command, os user {ME})  open -> approved",
    ]


def test_a_declined_item_is_never_reopened_nor_changed(queue):
    declined = queue.billops("decline", "WI-000003", "--reason", "second extension this quarter")
    assert declined.returncode == 0, declined.stderr
    assert declined.stdout.startswith(f"WI-000003 declined by {ME}: second extension this quarter")
    assert queue.marts()[2] == ("WI-000003", "declined", ME)  # published at once
    assert queue.marts("wh.duckdb") == [("WI-000001", "open", None)]  # the warehouse: as the last close left it

    assert raise_item(queue.engine, SEED[2]) == ("WI-000003", False)  # the sensor sees the failed charge again
    approved_late = queue.billops("approve", "WI-000003")
    assert approved_late.returncode == 1
    assert f"refused: WI-000003 is already declined (by {ME} at" in approved_late.stderr
    assert "a decided item cannot be approved" in approved_late.stderr

    shown = json.loads(queue.billops("show", "WI-000003", "--format", "json").stdout)
    assert (shown["status"], shown["decided_by"]) == ("declined", ME)
    assert [(e["action"], e["by"], e["os_user"], e["channel"], e["note"]) for e in shown["events"]] == [
        ("created", "sensor", ME, "sensor", "eligible"),
        ("declined", ME, ME, "command", "second extension this quarter"),
    ]


HOLD_WAREHOUSE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN TRANSACTION")
con.execute("CREATE TABLE IF NOT EXISTS closing (x INTEGER)")
print("held", flush=True)
sys.stdin.read()
"""


def test_the_queue_and_its_published_copy_work_while_another_process_holds_the_warehouse(queue):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WAREHOUSE, str(queue.warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        approvers = [subprocess.Popen([str(BILLOPS), "workitems", "approve", work_item_id],
                                      env=queue.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for work_item_id in ("WI-000002", "WI-000004")]
        outputs = [p.communicate(timeout=120) + (p.returncode,) for p in approvers]
        approved = [r["work_item_id"] for r in list_items(queue.engine, status="approved")]
        # published while the writer still holds the warehouse: DuckDB and Parquet, both approvals in
        expected = [("WI-000001", "open", None), ("WI-000002", "approved", ME),
                    ("WI-000003", "open", None), ("WI-000004", "approved", ME)]
        assert queue.marts() == expected and queue.parquet() == expected
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    for (stdout, stderr, returncode), work_item_id in zip(outputs, ("WI-000002", "WI-000004")):
        assert (returncode, stdout, stderr) == (0, f"{work_item_id} approved by {ME}\n", "")
    assert approved == ["WI-000002", "WI-000004"]
    assert queue.marts("wh.duckdb") == [("WI-000001", "open", None)]  # never written by a decision


def test_an_item_is_approved_through_the_command_while_a_close_runs(closed_november):
    """tests/golden_november.py approves a queued item with `billops workitems approve` while November's
    close runs (its Dagster run STARTED before and after the approval): the queue never waits for a close."""
    approval = closed_november.approval
    assert "error" not in approval, approval
    assert approval["returncode"] == 0, approval["stderr"]
    assert approval["stdout"].startswith(f"{approval['work_item_id']} approved by {ME}")  # the OS user
    assert approval["close_still_running"] is True
    assert closed_november.result.returncode == 0, closed_november.result.stderr[-3000:]
    queue = queue_engine(f"sqlite:///{closed_november.ws.root / 'ops.sqlite'}")
    assert [(r["status"], r["decided_by"]) for r in list_items(queue) if r["work_item_id"] == approval["work_item_id"]] \
        == [("approved", ME)]
    # the close's work-items step mirrored the queue, the approval included, and its publication read the queue
    assert closed_november.ws.query("SELECT status, decided_by FROM marts.work_items WHERE work_item_id = ?",
                                    [approval["work_item_id"]]) == [("approved", ME)]
    with duckdb.connect(str(closed_november.published / "billops.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status, decided_by FROM marts.work_items WHERE work_item_id = ?",
                           [approval["work_item_id"]]).fetchall() == [("approved", ME)]
