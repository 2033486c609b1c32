"""Issue 14 item 2, foreign money: a charge, refund or dispute in another currency never pays an invoice.

Found in review: a charge of 30155 JPY for USD invoice BO-202610-000003 (301.55) marked it paid, and
the real USD charges for it became R2 duplicate-refund items. The contract (docs/contract/inputs.md,
Payments): a currency that, case-folded, is not `usd` (or a charge or refund without one) is
`bad_schema`, never matched to an invoice; a refund or dispute of such a charge follows it into
quarantine (decisions #43). First on crafted JSON lines through the real ingestion asset, then on
the closed golden October: November's payments land, are ingested, and the payments marts and the
work-item rules read them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import dagster as dg
import pytest

from tests.conftest import Workspace, dbt
from tests.ingestion.conftest import issue_invoice, quarantined
from tests.ingestion.conftest import materialize_jsonl as ingest

NOT_USD = "currency {} is not usd: only USD is matched to an invoice"
FOLLOWS = "charge {} is in {}, not usd: this follows its charge into quarantine"


def unix(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())


def charge(charge_id: str, customer: str, invoice: str, cents: int, day: str, currency: str | None = "usd") -> dict:
    doc = {"id": charge_id, "object": "charge", "amount": cents, "amount_refunded": 0, "currency": currency,
           "customer": customer, "created": unix(day), "status": "succeeded", "paid": True, "refunded": False,
           "failure_code": None, "failure_message": None, "metadata": {"invoice_number": invoice}}
    if currency is None:
        del doc["currency"]
    return doc


def refund(refund_id: str, charge_id: str, cents: int, day: str, currency: str = "usd") -> dict:
    return {"id": refund_id, "object": "refund", "amount": cents, "charge": charge_id, "created": unix(day),
            "currency": currency, "reason": "requested_by_customer", "status": "succeeded", "metadata": {}}


def dispute(dispute_id: str, charge_id: str, cents: int, day: str, currency: str | None = None) -> dict:
    doc = {"id": dispute_id, "object": "dispute", "amount": cents, "charge": charge_id, "created": unix(day),
           "reason": "general", "status": "needs_response"}
    return doc if currency is None else {**doc, "currency": currency}


def land(ws: Workspace, folder: str, docs: list[dict]) -> None:
    path = ws.landing / "payments" / folder / "2026-11.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))


def test_foreign_payments_are_quarantined_bad_schema_and_their_refunds_and_disputes_follow(golden):
    issue_invoice(golden, "BO-202609-000002")
    invoice = "BO-202609-000002"
    land(golden, "charges", [
        charge("ch_usd", "c002", invoice, 1234, "2026-10-03"),
        charge("ch_upper", "c002", invoice, 1234, "2026-10-04", currency="USD"),  # upper case is USD
        charge("ch_jpy", "c002", invoice, 1234, "2026-10-02", currency="jpy"),
        charge("ch_eur", "c002", "BO-209901-000001", 1234, "2026-10-02", currency="EUR"),  # currency before invoice
        charge("ch_none", "c002", invoice, 1234, "2026-10-02", currency=None),
        charge("ch_empty", "c002", invoice, 1234, "2026-10-02", currency=""),
    ])
    land(golden, "refunds", [
        refund("re_usd", "ch_usd", 100, "2026-10-05"),
        refund("re_eur", "ch_usd", 100, "2026-10-05", currency="eur"),
        refund("re_of_jpy", "ch_jpy", 100, "2026-10-05"),
    ])
    land(golden, "disputes", [
        dispute("dp_usd", "ch_upper", 1234, "2026-10-06"),                # no currency: follows its USD charge
        dispute("dp_gbp", "ch_usd", 1234, "2026-10-06", currency="gbp"),
        dispute("dp_of_jpy", "ch_jpy", 1234, "2026-10-06"),
        dispute("dp_of_eur", "ch_eur", 1234, "2026-10-06", currency="Usd"),
    ])
    result = ingest(golden)
    assert result.success
    assert [(r[1], r[2], r[3], r[4]) for r in quarantined(golden, "charges")] == [
        (3, "ch_jpy", "bad_schema", NOT_USD.format("jpy")),
        (4, "ch_eur", "bad_schema", NOT_USD.format("EUR")),
        (5, "ch_none", "bad_schema", "currency is missing or null"),
        (6, "ch_empty", "bad_schema", "currency is missing or null"),
    ]
    assert [(r[2], r[3], r[4]) for r in quarantined(golden, "refunds")] == [
        ("re_eur", "bad_schema", NOT_USD.format("eur")),
        ("re_of_jpy", "bad_schema", FOLLOWS.format("ch_jpy", "jpy")),
    ]
    assert [(r[2], r[3], r[4]) for r in quarantined(golden, "disputes")] == [
        ("dp_gbp", "bad_schema", NOT_USD.format("gbp")),
        ("dp_of_jpy", "bad_schema", FOLLOWS.format("ch_jpy", "jpy")),
        ("dp_of_eur", "bad_schema", FOLLOWS.format("ch_eur", "EUR")),
    ]
    assert golden.query("SELECT id, currency FROM raw.charges ORDER BY id") == [("ch_upper", "USD"), ("ch_usd", "usd")]
    assert golden.query("SELECT id FROM raw.refunds") == [("re_usd",)]
    assert golden.query("SELECT id, currency FROM raw.disputes") == [("dp_usd", None)]
    assert all(e.passed for e in result.get_asset_check_evaluations())  # read = accepted + quarantined, per file


# --- on the closed golden October ---------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign_november(closed_golden, tmp_path_factory) -> Workspace:
    """October closed; November's payments: c003's 301.55 invoice charged 30155 JPY first, then paid once in
    USD; c006's 11.15 invoice charged only in EUR. Ingested, then the payments marts built for November."""
    from assets.payments import payments
    from warehouse.resource import WarehouseResource
    from tests.conftest import copy_workspace

    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    ws = copy_workspace(closed_golden.ws, tmp_path_factory.mktemp("foreign") / "ws")
    land(ws, "charges", [
        charge("ch_jpy", "c003", "BO-202610-000003", 30155, "2026-11-03", currency="jpy"),
        charge("ch_usd", "c003", "BO-202610-000003", 30155, "2026-11-05", currency="USD"),
        charge("ch_eur", "c006", "BO-202610-000006", 1115, "2026-11-04", currency="eur"),
    ])
    land(ws, "refunds", [refund("re_jpy", "ch_jpy", 30155, "2026-11-06")])
    land(ws, "disputes", [dispute("dp_jpy", "ch_jpy", 30155, "2026-11-07")])
    resource = WarehouseResource(path=str(ws.warehouse), landing=str(ws.landing))
    assert dg.materialize([payments], partition_key="2026-11-01", resources={"warehouse": resource}).success
    build = dbt(ws, "build", "--select", "staging.payments", "marts.payments", "invoices",
                period=("2026-11-01", "2026-12-01"))
    assert build.returncode == 0, build.stdout[-4000:]
    return ws


def test_a_foreign_charge_pays_no_invoice_and_the_real_one_is_no_duplicate(foreign_november):
    ws = foreign_november
    assert ws.query("SELECT source, record_id, reason FROM audit.quarantine ORDER BY source, record_id") == [
        ("charges", "ch_eur", "bad_schema"), ("charges", "ch_jpy", "bad_schema"),
        ("disputes", "dp_jpy", "bad_schema"), ("refunds", "re_jpy", "bad_schema")]
    assert ws.query("SELECT charge_id, invoice_number, amount, currency, is_duplicate FROM marts.charges") == [
        ("ch_usd", "BO-202610-000003", Decimal("301.55"), "USD", False)]
    assert ws.query("SELECT count(*) FROM marts.refunds") == [(0,)]
    assert ws.query("SELECT count(*) FROM marts.disputes") == [(0,)]
    receivable = {r[0]: r[1:] for r in ws.query(
        "SELECT customer_id, status, paid_amount, amount_outstanding FROM marts.accounts_receivable "
        "WHERE customer_id IN ('c003', 'c006')")}
    assert receivable == {"c003": ("paid", Decimal("301.55"), Decimal("0.00")),
                          "c006": ("past_due", Decimal("0.00"), Decimal("11.15"))}


def test_no_work_item_arises_from_the_real_charge(foreign_november):
    from workitems.rules import open_read_only, propose_items

    con = open_read_only(foreign_november.warehouse)
    try:
        proposals = propose_items(con)
    finally:
        con.close()
    assert [(p["rule"], p["invoice_number"], p["charge_id"]) for p in proposals] == []
