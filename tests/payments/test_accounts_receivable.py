"""Payments marts, invoice status (docs/contract/billing-rules.md §7), accounts receivable and P1–P4 on the golden month.

October 2026 is closed once (the session's closed golden month, copied); then November's payments
land for October's seven invoices, the queue (a real SQLite ops store) holds an approved duplicate
refund, a credit note and an extension, the payments asset ingests in-process, and dbt builds the
published marts for November (as_of 2026-12-01, due dates 2026-11-15):

  c001  3.00  paid, then 1.00 refunded                 partially_refunded
  c002 15.21  failed on the 14th, succeeded on the 20th paid (late, but paid)
  c003 301.55 charged twice; the duplicate refunded     paid (R2 item approved by two people)
  c004  1.92  paid, then refunded in full               refunded
  c005  0.00  nothing to pay                            paid
  c006 11.15  unpaid, credit note 5.00 approved         past_due, 16 days, 6.15 outstanding
  c007  0.19  failed, extension to 2026-12-06 approved  extended
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from decimal import Decimal

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from tests.conftest import Workspace, copy_workspace, dbt

PARAMS = {"m": datetime(2026, 11, 1).date(), "end": datetime(2026, 12, 1).date()}


def _unix(day: str, seconds: int = 0) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()) + seconds


def _charge(charge_id, customer, invoice, cents, day, status="succeeded", seconds=0):
    failed = status == "failed"
    return {"id": charge_id, "object": "charge", "amount": cents, "amount_refunded": 0, "currency": "usd",
            "customer": customer, "created": _unix(day, seconds), "status": status, "paid": not failed,
            "failure_code": "card_declined" if failed else None,
            "failure_message": "Your card was declined." if failed else None, "refunded": False,
            "metadata": {"invoice_number": invoice}}


def _refund(refund_id, charge_id, cents, day, reason="requested_by_customer", work_item_id=None):
    return {"id": refund_id, "object": "refund", "amount": cents, "charge": charge_id, "created": _unix(day),
            "currency": "usd", "reason": reason, "status": "succeeded",
            "metadata": {"work_item_id": work_item_id} if work_item_id else {}}


def _land(ws: Workspace, folder: str, records: list[dict]) -> None:
    path = ws.landing / "payments" / folder / "2026-11.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _queue(ws: Workspace):
    """The real queue: an approved R2 refund (two approvers), an approved credit note and extension."""
    from workitems.store import approve, queue_engine, raise_items

    engine = queue_engine(f"sqlite:///{ws.root / 'ops.sqlite'}")
    (dup, _), (credit, _), (extension, _) = raise_items(engine, [
        {"kind": "refund", "rule": "R2", "customer_id": "c003", "invoice_number": "BO-202610-000003",
         "charge_id": "ch_dup_b", "amount": Decimal("301.55"), "reason": "duplicate charge"},
        {"kind": "credit_note", "rule": "R1", "customer_id": "c006", "invoice_number": "BO-202610-000006",
         "amount": Decimal("5.00"), "reason": "restated lower, unpaid"},
        {"kind": "payment_extension", "rule": "E1", "customer_id": "c007", "invoice_number": "BO-202610-000007",
         "charge_id": "ch_c007", "proposed_due_date": "2026-12-06", "reason": "eligible"},
    ], raised_by="payments sensor")
    approve(engine, dup, "alice")
    approve(engine, dup, "bob")
    approve(engine, credit, "alice")
    approve(engine, extension, "carol")
    return engine, dup


@pytest.fixture(scope="module")
def november(closed_golden, tmp_path_factory):
    """October closed and issued; November's payments landed, ingested, and the marts published for November."""
    from assets.payments import payments
    from warehouse.resource import WarehouseResource
    from quality.payment_controls import approval_trail
    from workitems.mirror import mirror_work_items

    ws = copy_workspace(closed_golden.ws, tmp_path_factory.mktemp("ar") / "ws")
    assert ws.query("SELECT count(*) FROM audit.issued_invoices") == [(7,)], closed_golden.result.stderr[-3000:]
    engine, dup_item = _queue(ws)
    _land(ws, "charges", [
        _charge("ch_c001", "c001", "BO-202610-000001", 300, "2026-11-10"),
        _charge("ch_c002_failed", "c002", "BO-202610-000002", 1521, "2026-11-14", status="failed"),
        _charge("ch_c002", "c002", "BO-202610-000002", 1521, "2026-11-20"),
        _charge("ch_dup_a", "c003", "BO-202610-000003", 30155, "2026-11-05"),
        _charge("ch_dup_b", "c003", "BO-202610-000003", 30155, "2026-11-05", seconds=60),
        _charge("ch_c004", "c004", "BO-202610-000004", 192, "2026-11-08"),
        _charge("ch_c007", "c007", "BO-202610-000007", 19, "2026-11-15", status="failed"),
        _charge("ch_december", "c006", "BO-202610-000006", 1115, "2026-12-03"),  # after as_of: not counted
    ])
    _land(ws, "refunds", [
        _refund("re_c001", "ch_c001", 100, "2026-11-12"),
        _refund("re_dup", "ch_dup_b", 30155, "2026-11-09", reason="duplicate", work_item_id=dup_item),
        _refund("re_c004", "ch_c004", 192, "2026-11-18"),
    ])
    _land(ws, "disputes", [{"id": "dp_1", "object": "dispute", "amount": 300, "charge": "ch_c001",
                            "created": _unix("2026-11-20"), "currency": "usd", "reason": "general",
                            "status": "needs_response"}])
    assert mirror_work_items(ws.warehouse, engine)
    resource = WarehouseResource(path=str(ws.warehouse), landing=str(ws.landing))
    assert dg.materialize([payments], partition_key="2026-11-01", resources={"warehouse": resource}).success
    build = dbt(ws, "build", "--select", "marts.payments", "invoices", period=("2026-11-01", "2026-12-01"))
    assert build.returncode == 0, build.stdout[-4000:]
    return ws, approval_trail(engine), dup_item, build.stdout


def _receivables(ws: Workspace) -> dict[str, tuple]:
    rows = ws.query("""SELECT customer_id, status, total, credit_notes, amount_due, paid_amount, amount_outstanding,
                              days_past_due, extended_until::VARCHAR, as_of::VARCHAR
                       FROM marts.accounts_receivable ORDER BY customer_id""")
    return {r[0]: r[1:] for r in rows}


def test_every_issued_invoice_gets_its_status_amounts_and_days_past_due_to_the_cent(november):
    ws, *_ = november
    D = Decimal
    assert _receivables(ws) == {
        "c001": ("partially_refunded", D("3.00"), D("0.00"), D("3.00"), D("2.00"), D("0.00"), 0, None, "2026-12-01"),
        "c002": ("paid", D("15.21"), D("0.00"), D("15.21"), D("15.21"), D("0.00"), 0, None, "2026-12-01"),
        "c003": ("paid", D("301.55"), D("0.00"), D("301.55"), D("301.55"), D("0.00"), 0, None, "2026-12-01"),
        "c004": ("refunded", D("1.92"), D("0.00"), D("1.92"), D("0.00"), D("0.00"), 0, None, "2026-12-01"),
        "c005": ("paid", D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"), 0, None, "2026-12-01"),
        "c006": ("past_due", D("11.15"), D("5.00"), D("6.15"), D("0.00"), D("6.15"), 16, None, "2026-12-01"),
        "c007": ("extended", D("0.19"), D("0.00"), D("0.19"), D("0.00"), D("0.19"), 0, "2026-12-06", "2026-12-01"),
    }


def test_published_invoices_take_their_status_from_accounts_receivable(november):
    ws, *_ = november
    assert ws.query("SELECT invoice_number, status FROM marts.invoices ORDER BY 1") == [
        ("BO-202610-000001", "partially_refunded"), ("BO-202610-000002", "paid"), ("BO-202610-000003", "paid"),
        ("BO-202610-000004", "refunded"), ("BO-202610-000005", "paid"), ("BO-202610-000006", "past_due"),
        ("BO-202610-000007", "extended"),
    ]
    types = dict(ws.query("SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = 'marts' AND table_name = 'accounts_receivable'"))
    assert types["amount_due"] == "DECIMAL(18,2)" and types["paid_amount"] == "DECIMAL(18,2)"


def test_payments_marts_match_charges_refunds_and_disputes_to_their_invoices(november):
    ws, _, dup_item, _ = november
    assert ws.query("SELECT charge_id, is_duplicate, refunded_amount FROM marts.charges "
                    "WHERE invoice_number = 'BO-202610-000003' ORDER BY 1") == [
        ("ch_dup_a", False, Decimal("0.00")), ("ch_dup_b", True, Decimal("301.55"))]
    assert ws.query("SELECT count(*) FILTER (WHERE is_duplicate), count(*) FROM marts.charges") == [(1, 8)]
    assert ws.query("SELECT refund_id, invoice_number, work_item_id FROM marts.refunds ORDER BY 1") == [
        ("re_c001", "BO-202610-000001", None), ("re_c004", "BO-202610-000004", None),
        ("re_dup", "BO-202610-000003", dup_item)]
    assert ws.query("SELECT dispute_id, invoice_number, customer_id FROM marts.disputes") == [
        ("dp_1", "BO-202610-000001", "c001")]


def test_the_status_rules_unit_test_ran_in_the_build(november):
    *_, build_log = november
    assert "unit_test" in build_log and "accounts_receivable_status_rules" in build_log


# --- P1–P4 --------------------------------------------------------------------------------------


def _evaluate(con: duckdb.DuckDBPyConnection, trail: pa.Table) -> dict:
    from quality.payment_controls import evaluate_payment_controls

    return {r.check_name: r for r in evaluate_payment_controls(con, PARAMS, trail)}


def _numbers(result: dg.AssetCheckResult) -> tuple:
    md = result.metadata
    return (result.passed, md["rows_checked"].value, md["failures"].value, md["amount_at_stake"].value)


@pytest.fixture
def scratch(november, tmp_path):
    """A private copy of the published warehouse, to break on purpose."""
    ws, trail, dup_item, _ = november
    path = tmp_path / "scratch.duckdb"
    shutil.copy2(ws.warehouse, path)
    con = duckdb.connect(str(path))
    yield con, trail, dup_item
    con.close()


def test_p1_to_p4_pass_on_the_month_as_landed_with_their_numbers(november):
    ws, trail, *_ = november
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        results = _evaluate(con, trail)
    finally:
        con.close()
    assert {name: _numbers(r) for name, r in results.items()} == {
        "P1_no_duplicate_charge": (True, 5, 0, "0.00"),   # five succeeded charges before 2026-12-01
        "P2_refunds_bounded": (True, 3, 0, "0.00"),       # three refunded charges
        "P3_refund_approval": (True, 1, 0, "0.00"),       # re_dup, 301.55, approved by alice and bob
        "P4_payments_reconcile": (True, 1, 0, "0.00"),    # October: 623.23 − 304.47 = 316.76 paid + 2.00 kept
    }
    assert all(r.severity == dg.AssetCheckSeverity.WARN for r in results.values())


def test_p1_fails_on_a_duplicate_not_refunded_and_p4_on_the_money_it_leaves_over(scratch):
    con, trail, _ = scratch
    con.execute("DELETE FROM marts.refunds WHERE refund_id = 're_dup'")
    results = _evaluate(con, trail)
    assert _numbers(results["P1_no_duplicate_charge"]) == (False, 5, 1, "301.55")
    assert results["P1_no_duplicate_charge"].metadata["offending_rows"].value[0]["charge_id"] == "ch_dup_b"
    # accounts_receivable still says c003 is paid for 301.55: 301.55 more came in than the books settled
    assert _numbers(results["P4_payments_reconcile"]) == (False, 1, 1, "301.55")
    assert results["P4_payments_reconcile"].metadata["offending_rows"].value == [{
        "billing_month": "2026-10-01", "charged": "623.23", "refunded": "2.92", "net_received": "620.31",
        "settled": "318.76", "invoices_paid": 3, "difference": "301.55"}]


def test_p4_fails_on_a_partial_payment_of_an_unpaid_invoice(scratch):
    con, trail, _ = scratch
    con.execute("""INSERT INTO marts.charges (charge_id, invoice_number, customer_id, billing_month, amount, currency,
                   status, created_at, is_duplicate, refunded_amount)
                   VALUES ('ch_part', 'BO-202610-000006', 'c006', DATE '2026-10-01', 5.00, 'USD', 'succeeded',
                           TIMESTAMP '2026-11-25 10:00:00', false, 0)""")
    result = _evaluate(con, trail)["P4_payments_reconcile"]
    assert _numbers(result) == (False, 1, 1, "5.00")


def test_p2_fails_on_refunds_above_the_charge_or_of_a_failed_charge(scratch):
    con, trail, _ = scratch
    con.execute("""INSERT INTO marts.refunds (refund_id, charge_id, invoice_number, customer_id, amount, currency,
                   reason, status, work_item_id, created_at) VALUES
                   ('re_more', 'ch_c002', 'BO-202610-000002', 'c002', 20.00, 'USD', NULL, 'succeeded', NULL,
                    TIMESTAMP '2026-11-25 00:00:00'),
                   ('re_failed', 'ch_c007', 'BO-202610-000007', 'c007', 0.19, 'USD', NULL, 'succeeded', NULL,
                    TIMESTAMP '2026-11-25 00:00:00')""")
    result = _evaluate(con, trail)["P2_refunds_bounded"]
    assert _numbers(result) == (False, 5, 2, "4.98")  # 20.00 − 15.21 = 4.79, and 0.19 of a failed charge
    assert [(r["charge_id"], r["excess"]) for r in result.metadata["offending_rows"].value] == [
        ("ch_c002", "4.79"), ("ch_c007", "0.19")]


def test_p3_fails_on_a_refund_without_an_approved_item_or_approved_by_its_requester(scratch):
    con, trail, dup_item = scratch
    con.execute("""INSERT INTO marts.refunds (refund_id, charge_id, invoice_number, customer_id, amount, currency,
                   reason, status, work_item_id, created_at) VALUES
                   ('re_ghost', 'ch_dup_a', 'BO-202610-000003', 'c003', 120.00, 'USD', NULL, 'succeeded',
                    'WI-999999', TIMESTAMP '2026-11-25 00:00:00'),
                   ('re_small', 'ch_c002', 'BO-202610-000002', 'c002', 5.00, 'USD', NULL, 'succeeded',
                    'WI-999999', TIMESTAMP '2026-11-25 00:00:00')""")
    result = _evaluate(con, trail)["P3_refund_approval"]
    assert _numbers(result) == (False, 2, 1, "120.00")  # the $5 refund is under the $100 threshold
    assert result.metadata["offending_rows"].value[0]["problem"] == "no such work item in marts.work_items"

    # The trail as the queue would hold it had the requester approved their own item.
    from workitems.identity import person_key

    def trail_of(requested_by: str, approvers: list[str]) -> pa.Table:
        return pa.Table.from_pylist([{
            "work_item_id": dup_item, "requested_by": requested_by, "approvers": approvers,
            "requested_key": person_key(requested_by), "approver_keys": [person_key(a) for a in approvers]}],
            schema=trail.schema)

    con.execute("DELETE FROM marts.refunds WHERE refund_id IN ('re_ghost', 're_small')")
    # The requester approving under another spelling of their name (a zero-width space, another case).
    result = _evaluate(con, trail_of("alice", ["Ali\u200bce", "bob"]))["P3_refund_approval"]
    assert _numbers(result) == (False, 1, 1, "301.55")
    assert result.metadata["offending_rows"].value[0]["problem"] == "approved by its requester alice"
    # One person approving twice under two spellings is one approval.
    result = _evaluate(con, trail_of("sensor", ["bob", "ＢＯＢ"]))["P3_refund_approval"]
    assert result.metadata["offending_rows"].value[0]["problem"] == "approved by 1 person, not two"


def test_payment_controls_are_non_blocking_partitioned_checks_on_the_payments_marts():
    from quality.payment_controls import payment_controls

    (check,) = payment_controls
    specs = {spec.name: spec for spec in check.check_specs}
    assert set(specs) == {"P1_no_duplicate_charge", "P2_refunds_bounded", "P3_refund_approval",
                          "P4_payments_reconcile"}
    assert not any(spec.blocking for spec in specs.values())
    assert specs["P4_payments_reconcile"].asset_key == dg.AssetKey(["marts", "accounts_receivable"])
    assert specs["P1_no_duplicate_charge"].asset_key == dg.AssetKey(["marts", "charges"])
