"""The queue's store: idempotent raise, four eyes, refused changes, audit trail, webhook, mirror.

Real SQLite files, a real DuckDB warehouse, a real local HTTP server, real processes racing.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from workitems.mirror import mirror_work_items
from workitems.store import (
    Refused, approve, decline, get_item, list_items, mark_done, queue_engine, raise_item, raise_items,
)

REPO = Path(__file__).resolve().parents[2]
ME = pwd.getpwuid(os.geteuid()).pw_name  # the OS user of this process, recorded on every event it writes

DUPLICATE_CHARGE = {
    "kind": "refund", "rule": "R2", "customer_id": "CUST-0001", "invoice_number": "INV-2026-10-000001",
    "charge_id": "ch_dup", "amount": Decimal("150.10"), "reason": "second succeeded charge for the invoice",
    "evidence": {"charges": ["ch_first", "ch_dup"], "amount": Decimal("150.10")},
}
SMALL_CREDIT_NOTE = {
    "kind": "credit_note", "rule": "R1", "customer_id": "CUST-0002", "invoice_number": "INV-2026-10-000002",
    "amount": "40.00", "reason": "restated lower, unpaid", "evidence": {"difference": "-40.00"},
}
EXTENSION = {
    "kind": "payment_extension", "rule": "E1", "customer_id": "CUST-0003", "invoice_number": "INV-2026-10-000003",
    "charge_id": "ch_failed", "proposed_due_date": "2026-11-29", "reason": "eligible",
}


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLOPS_ACTOR", "svc-billing")  # no longer an identity: never recorded
    monkeypatch.delenv("BILLOPS_WORKITEM_WEBHOOK_URL", raising=False)
    return queue_engine(f"sqlite:///{tmp_path / 'q.sqlite'}")


def test_raise_is_idempotent_by_dedup_key_and_numbers_items(engine):
    assert raise_item(engine, DUPLICATE_CHARGE) == ("WI-000001", True)
    assert raise_item(engine, DUPLICATE_CHARGE) == ("WI-000001", False)
    assert raise_items(engine, [SMALL_CREDIT_NOTE, DUPLICATE_CHARGE, EXTENSION]) == [
        ("WI-000002", True), ("WI-000001", False), ("WI-000003", True)]
    item = get_item(engine, "WI-000001")
    assert item["dedup_key"] == "refund:R2:INV-2026-10-000001:ch_dup"
    assert item["amount"] == Decimal("150.10") and item["requires_approval"] is True
    assert get_item(engine, "WI-000002")["requires_approval"] is False  # $40.00 is under the $100 threshold
    assert [e["action"] for e in item["events"]] == ["created"]
    assert len(list_items(engine)) == 3


def test_requires_approval_follows_the_100_dollar_rule_and_cannot_be_waived(engine):
    at_threshold = raise_item(engine, {**DUPLICATE_CHARGE, "charge_id": "ch_a", "amount": "100.00"})[0]
    above = raise_item(engine, {**DUPLICATE_CHARGE, "charge_id": "ch_b", "amount": "100.01", "requires_approval": False})[0]
    asked = raise_item(engine, {**SMALL_CREDIT_NOTE, "requires_approval": True})[0]
    assert [get_item(engine, i)["requires_approval"] for i in (at_threshold, above, asked)] == [False, True, True]


def test_money_is_stored_as_exact_decimal_text_not_a_float(engine):
    raise_item(engine, DUPLICATE_CHARGE)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT amount, typeof(amount) FROM work_items")).one()
    assert tuple(stored) == ("150.10", "text")


@pytest.mark.parametrize("bad, message", [
    ({**DUPLICATE_CHARGE, "amount": 150.1}, "never a float"),
    ({**DUPLICATE_CHARGE, "amount": Decimal("150.105")}, "two decimals"),
    ({**EXTENSION, "rule": "R1"}, "does not raise a payment_extension"),
    ({**SMALL_CREDIT_NOTE, "amount": None}, "needs an amount"),
])
def test_a_malformed_item_is_refused_before_anything_is_written(engine, bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        raise_item(engine, bad)
    assert list_items(engine) == []


def test_four_eyes_needs_two_different_people(engine):
    work_item_id, _ = raise_item(engine, DUPLICATE_CHARGE)
    first = approve(engine, work_item_id, "alice", "matches the charge log")
    assert (first.status, first.approvals) == ("open", ("alice",))
    for same in (" Alice ", "ALICE", "ali\u200bce", "\uff41\uff4c\uff49\uff43\uff45", "Ali\u00adce"):
        with pytest.raises(Refused, match="four eyes\\): alice already approved it; a second person must approve"):
            approve(engine, work_item_id, same)
    assert get_item(engine, work_item_id)["status"] == "open"
    second = approve(engine, work_item_id, "bob")
    assert (second.status, second.approvals) == ("approved", ("alice", "bob"))
    item = get_item(engine, work_item_id)
    assert (item["status"], item["decided_by"]) == ("approved", "bob")
    assert [(e["action"], e["by"], e["os_user"], e["note"], e["from_status"], e["to_status"]) for e in item["events"]] == [
        ("created", "sensor", ME, "second succeeded charge for the invoice", None, "open"),
        ("approval_recorded", "alice", ME, "matches the charge log", "open", "open"),
        ("approved", "bob", ME, None, "open", "approved"),
    ]
    assert [e["channel"] for e in item["events"]] == ["sensor", "command", "command"]


def test_a_small_item_is_approved_by_one_person(engine):
    work_item_id, _ = raise_item(engine, SMALL_CREDIT_NOTE)
    assert approve(engine, work_item_id, "alice").status == "approved"


def test_the_requester_cannot_approve(engine):
    work_item_id, _ = raise_item(engine, SMALL_CREDIT_NOTE, raised_by="carol")
    with pytest.raises(Refused, match="requester cannot approve"):
        approve(engine, work_item_id, "carol")


def test_a_decided_item_cannot_change_and_is_never_reopened(engine):
    work_item_id, _ = raise_item(engine, EXTENSION)
    with pytest.raises(Refused, match="needs a --reason"):
        decline(engine, work_item_id, "alice", "  ")
    decline(engine, work_item_id, "alice", "third extension this year")
    with pytest.raises(Refused, match="already declined \\(by alice"):
        approve(engine, work_item_id, "bob")
    with pytest.raises(Refused, match="already declined"):
        decline(engine, work_item_id, "bob", "again")
    with pytest.raises(Refused, match="only an approved item can be done"):
        mark_done(engine, work_item_id, {"refund_id": "re_1"})
    assert raise_item(engine, EXTENSION) == (work_item_id, False)
    item = get_item(engine, work_item_id)
    assert (item["status"], item["decided_by"]) == ("declined", "alice")
    assert [e["action"] for e in item["events"]] == ["created", "declined"]


def test_an_unknown_item_is_refused_by_name(engine):
    with pytest.raises(Refused, match="no work item WI-999999"):
        approve(engine, "WI-999999", "alice")


def test_mark_done_closes_an_approved_item_once_keeping_the_evidence(engine):
    work_item_id, _ = raise_item(engine, SMALL_CREDIT_NOTE)
    approve(engine, work_item_id, "alice")
    assert mark_done(engine, work_item_id, {"refund_id": "re_42", "amount": Decimal("40.00")}) is True
    assert mark_done(engine, work_item_id, {"refund_id": "re_42"}) is False
    item = get_item(engine, work_item_id)
    assert item["status"] == "done" and item["decided_by"] == "alice"
    assert json.loads(item["evidence"]) == {"difference": "-40.00", "done": {"amount": "40.00", "refund_id": "re_42"}}


RACER = """
import sys, time
from workitems.store import approve, queue_engine
url, who, start, ids = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
engine = queue_engine(url)
time.sleep(max(0.0, start - time.time()))
for work_item_id in ids:
    approve(engine, work_item_id, who)
"""


def test_two_processes_approving_the_same_items_at_once_lose_no_approval(engine, tmp_path):
    ids = [raise_item(engine, {**DUPLICATE_CHARGE, "charge_id": f"ch_{n}"})[0] for n in range(25)]
    url = str(engine.url)
    start = time.time() + 2.0  # both processes have imported by then and start together
    racers = [subprocess.Popen([sys.executable, "-c", RACER, url, who, str(start), *ids], cwd=REPO,
                               stderr=subprocess.PIPE, text=True) for who in ("alice", "bob")]
    for racer in racers:
        assert racer.wait(timeout=60) == 0, racer.stderr.read()
    for work_item_id in ids:
        item = get_item(engine, work_item_id)
        assert item["status"] == "approved"
        assert sorted(item["approvals"]) == ["alice", "bob"]
        assert [e["action"] for e in item["events"]].count("approved") == 1


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep pytest output clean
        pass


def test_webhook_posts_each_new_item_once_and_a_dead_one_loses_nothing(engine, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("BILLOPS_WORKITEM_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
        raise_items(engine, [DUPLICATE_CHARGE, EXTENSION])
        raise_items(engine, [DUPLICATE_CHARGE, EXTENSION])  # same data on the next tick: no new post
    finally:
        server.shutdown()
        server.server_close()
    assert [(r["work_item_id"], r["amount"], r["proposed_due_date"]) for r in _Recorder.received] == [
        ("WI-000001", "150.10", None), ("WI-000002", None, "2026-11-29")]
    assert _Recorder.received[0]["evidence"] == {"amount": "150.10", "charges": ["ch_first", "ch_dup"]}
    assert [e["action"] for e in get_item(engine, "WI-000001")["events"]] == ["created", "webhook_sent"]

    monkeypatch.setenv("BILLOPS_WORKITEM_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")  # now closed
    work_item_id, created = raise_item(engine, SMALL_CREDIT_NOTE)
    item = get_item(engine, work_item_id)
    assert created and item["status"] == "open"
    assert [e["action"] for e in item["events"]] == ["created", "webhook_failed"]
    assert "ConnectError" in item["events"][1]["note"]


def test_mirror_replaces_marts_work_items_with_contract_types(engine, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    raise_items(engine, [DUPLICATE_CHARGE, EXTENSION])
    assert mirror_work_items(warehouse, engine) is True
    approve(engine, "WI-000002", "alice")
    assert mirror_work_items(warehouse, engine) is True
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_schema = 'marts' AND table_name = 'work_items'").fetchall())
        rows = con.execute("SELECT work_item_id, amount, status, proposed_due_date::VARCHAR, requires_approval, "
                           "evidence->>'$.amount' FROM marts.work_items ORDER BY 1").fetchall()
    finally:
        con.close()
    assert types["amount"] == "DECIMAL(18,2)" and types["evidence"] == "JSON"
    assert types["requires_approval"] == "BOOLEAN" and types["created_at"] == "TIMESTAMP"
    assert rows == [("WI-000001", Decimal("150.10"), "open", None, True, "150.10"),
                    ("WI-000002", None, "approved", "2026-11-29", False, None)]


def test_mirror_gives_up_at_once_while_another_process_holds_the_warehouse(engine, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    raise_item(engine, DUPLICATE_CHARGE)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
                               "sys.stdin.read()", str(warehouse)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        assert mirror_work_items(warehouse, engine) is False
        assert time.monotonic() - started < 2.0
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert mirror_work_items(warehouse, engine) is True
