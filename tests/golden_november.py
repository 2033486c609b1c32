"""November after the golden October, closed once per test run while BI readers read the published copy.

The golden October (the session's `closed_golden`) is copied; November lands one usage file
per day for c001, c002 and c004 only (c003, c006, c007 churn) and payments answering
October's invoices: c001 paid before its due date, c002 failed then paid late, c003 failed and
never paid, c004 paid then partly refunded after a refund_request ticket. November is closed
through the installed `billops` executable while two threads read the published copy
(DuckDB and Parquet) in a loop, a member of the billing team approves a queued work item, and a
third thread reads the billing team's console (the real application, in process) page after page.

Three test files read it: the billing and churn KPIs (tests/kpis/), the published copy's
consistency during a close (tests/publication/), and the UI (tests/ui/, on a copy that goes
on to December). Built by whichever worker asks first (file lock); read-only afterwards.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb

from tests.conftest import BILLOPS, GOLDEN, Workspace, build_once, completed, copy_workspace

NOVEMBER_CUSTOMERS = ("c001", "c002", "c004")


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


def october_totals() -> dict[str, tuple[str, Decimal]]:
    with (GOLDEN / "expected" / "invoices.csv").open() as f:
        return {r["customer_id"]: (r["invoice_number"], Decimal(r["total"])) for r in csv.DictReader(f)}


def charge(cid: str, customer: str, cents: int, status: str, created: str) -> dict:
    invoice = october_totals()[customer][0]
    return {"id": cid, "object": "charge", "amount": cents, "amount_refunded": 0, "currency": "usd",
            "customer": customer, "created": unix(created), "status": status, "paid": status == "succeeded",
            "failure_code": "card_declined" if status == "failed" else None,
            "failure_message": "Your card was declined." if status == "failed" else None,
            "refunded": False, "metadata": {"invoice_number": invoice}}


def write_lines(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))


def land_november(ws: Workspace) -> None:
    for offset in range(30):  # one usage file per November day: one droplet hour per customer
        start = datetime(2026, 11, 1, 12, tzinfo=timezone.utc) + timedelta(days=offset)
        ws.write_usage(f"usage/dt={start.date().isoformat()}/part-0.parquet", [
            {"event_id": f"nov-{customer}-{offset:02d}", "customer_id": customer, "resource_id": f"nov-{customer}",
             "sku": "droplet-s-1vcpu-1gb", "region": "nyc3", "start_time": start,
             "end_time": start + timedelta(hours=1), "quantity": Decimal("1.000000")}
            for customer in NOVEMBER_CUSTOMERS])
    totals = october_totals()
    write_lines(ws.landing / "payments" / "charges" / "2026-11.jsonl", [
        charge("ch_1", "c001", 300, "succeeded", "2026-11-10T09:00:00"),
        charge("ch_2", "c002", 1521, "failed", "2026-11-12T09:00:00"),
        charge("ch_3", "c002", 1521, "succeeded", "2026-11-20T09:00:00"),
        charge("ch_4", "c003", 30155, "failed", "2026-11-14T09:00:00"),
        charge("ch_5", "c004", 192, "succeeded", "2026-11-05T09:00:00"),
    ])
    write_lines(ws.landing / "payments" / "refunds" / "2026-11.jsonl", [
        {"id": "re_1", "object": "refund", "amount": 50, "charge": "ch_5", "created": unix("2026-11-25T12:00:00"),
         "currency": "usd", "reason": "requested_by_customer", "status": "succeeded", "metadata": {}},
    ])
    write_lines(ws.landing / "tickets" / "2026-11.jsonl", [
        {"id": 1, "created_at": "2026-11-24T10:00:00Z", "updated_at": "2026-11-25T12:00:00Z", "status": "solved",
         "via": {"channel": "email"}, "organization_id": "c004", "tags": ["refund_request"],
         "custom_fields": [{"id": "invoice_number", "value": totals["c004"][0]}], "metrics": {"reopens": 0}},
    ])


# --- what a BI reader sees ----------------------------------------------------------------------


def _month_state(con: duckdb.DuckDBPyConnection, invoices: str, lines: str) -> tuple:
    """Per month: invoice count, their total (text), and whether every invoice's subtotal equals its lines."""
    return tuple(tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in con.execute(f"""
        WITH l AS (SELECT invoice_number, sum(amount) AS amount FROM {lines} GROUP BY 1)
        SELECT i.billing_month::VARCHAR, count(*), sum(i.total), bool_and(i.subtotal = coalesce(l.amount, 0))
        FROM {invoices} i LEFT JOIN l USING (invoice_number) GROUP BY 1 ORDER BY 1""").fetchall())


def read_published_duckdb(published: Path) -> tuple:
    con = duckdb.connect(str(published / "billops.duckdb"), read_only=True)
    try:
        return _month_state(con, "marts.invoices", "marts.invoice_lines")
    finally:
        con.close()


def read_published_parquet(published: Path) -> tuple:
    version = os.path.realpath(published / "parquet")  # resolve once: one read, one version
    con = duckdb.connect()
    try:
        scan = "read_parquet('{}/{}/*/*.parquet', hive_partitioning = true)"
        return _month_state(con, scan.format(version, "invoices"), scan.format(version, "invoice_lines"))
    finally:
        con.close()


READERS = {"duckdb": read_published_duckdb, "parquet": read_published_parquet}


@dataclass
class ClosedNovember:
    ws: Workspace
    published: Path
    result: subprocess.CompletedProcess
    before: tuple  # the published copy's month states before the close
    reads: dict[str, list[tuple]]  # every state each reader saw during the close
    errors: list[str]  # every failed read
    approval: dict  # `billops workitems approve` run while the close ran: its outcome
    console: dict  # the console read while the close ran: (path, status) of every page read, and when


# A work item already in the queue when November is closed; the team approves it while the close runs.
QUEUED_ITEM = {"kind": "refund", "rule": "R2", "customer_id": "c001", "invoice_number": "BO-202610-000001",
               "charge_id": "ch_manual", "amount": Decimal("1.00"), "reason": "customer reported a double charge"}


def _approve_during_the_close(ws: Workspace, work_item_id: str, out: dict) -> None:
    """Once the close's run is STARTED, `billops workitems approve` through the installed command; then
    note whether that run was still going when the approval returned."""
    deadline = time.monotonic() + 300
    known = {run_id for run_id, _ in ws.runs()}
    while time.monotonic() < deadline:
        running = [run_id for run_id, status in ws.runs() if run_id not in known and status == "STARTED"]
        if running:
            break
        time.sleep(0.2)
    else:
        out["error"] = "the close's run never started"
        return
    env = {**ws.env, "BILLOPS_QUEUE_URL": f"sqlite:///{ws.root / 'ops.sqlite'}"}
    done = subprocess.run([str(BILLOPS), "workitems", "approve", work_item_id], cwd=ws.root,  # as the OS user
                          env=env, capture_output=True, text=True, timeout=120)
    out.update(returncode=done.returncode, stdout=done.stdout, stderr=done.stderr, work_item_id=work_item_id,
               close_still_running=dict(ws.runs()).get(running[0]) == "STARTED")


CONSOLE_PAGES = ("/queue", "/kpis", "/invoices/BO-202610-000001", "/customers/c001", "/breaches")


def _read_the_console(ws: Workspace, published: Path, closing: threading.Event, out: dict) -> None:
    """A person on the console while the close runs: log in, then read its pages until the close ends."""
    from starlette.testclient import TestClient

    from config.settings import console_settings
    from console.accounts import accounts_engine, add_user
    from console.app import create_app

    url = f"sqlite:///{ws.root / 'ops.sqlite'}"
    add_user(accounts_engine(url), "reader", "finance", "a long reader password", by="test")
    client = TestClient(create_app(published, url, settings=console_settings()))
    login = client.post("/login", data={"name": "reader", "password": "a long reader password"}, follow_redirects=False)
    out.update(login=login.status_code, reads=[], started=time.time())
    while closing.is_set():
        for path in CONSOLE_PAGES:
            try:
                out["reads"].append((path, client.get(path).status_code))
            except Exception as exc:  # noqa: BLE001 - a failed read is a finding, reported by the test
                out["reads"].append((path, f"{type(exc).__name__}: {exc}"))
        time.sleep(0.3)
    out["ended"] = time.time()


def _close_while_reading(ws: Workspace, published: Path) -> dict:
    from warehouse.published import publish_now
    from workitems.store import queue_engine, raise_items

    engine = queue_engine(f"sqlite:///{ws.root / 'ops.sqlite'}")
    ((work_item_id, _),) = raise_items(engine, [QUEUED_ITEM], raised_by="test")
    engine.dispose()
    approval: dict = {}
    approver = threading.Thread(target=_approve_during_the_close, args=(ws, work_item_id, approval))
    approver.start()
    publish_now(ws.warehouse, published)
    before = read_published_duckdb(published)
    reads: dict[str, list] = {kind: [] for kind in READERS}
    errors: list[str] = []
    closing = threading.Event()
    closing.set()

    def reader(kind: str) -> None:
        while closing.is_set():
            try:
                reads[kind].append(READERS[kind](published))
            except Exception as exc:  # every failed read is a finding, reported by the test
                errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            time.sleep(0.1)  # ~10 reads a second each: plenty, without starving the close of CPU

    console: dict = {}
    threads = [threading.Thread(target=reader, args=(kind,)) for kind in READERS]
    threads.append(threading.Thread(target=_read_the_console, args=(ws, published, closing, console)))
    for thread in threads:
        thread.start()
    try:
        result = ws.close("2026-11", real=True, env={"BILLOPS_PUBLISHED": str(published)})
        final = read_published_duckdb(published)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(final in seen for seen in reads.values()):
            time.sleep(0.1)  # until each reader has read the final state at least once
    finally:
        closing.clear()
        for thread in threads + [approver]:
            thread.join()
    return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr,
            "before": before, "reads": reads, "errors": errors, "approval": approval, "console": console}


def _states(rows) -> tuple:
    return tuple(tuple(row) for row in rows)


def closed_november(shared: Path, golden_ws: Workspace) -> ClosedNovember:
    def build(root: Path) -> dict:
        ws = copy_workspace(golden_ws, root)
        land_november(ws)
        return _close_while_reading(ws, root / "published")

    root, data = build_once(shared, "golden-november", build)
    result = completed(["billops", "close", "--month", "2026-11"], data)
    return ClosedNovember(Workspace.at(root), root / "published", result, _states(data["before"]),
                          {kind: [_states(s) for s in seen] for kind, seen in data["reads"].items()}, data["errors"],
                          data["approval"], data.get("console", {}))
