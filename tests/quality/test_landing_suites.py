"""Landing suites (warn) on tickets and payments as loaded: contract-shaped files pass; a charge
refunded above its amount (a charge in another currency is quarantined at ingestion), a refund above its charge, a dispute above its charge and a ticket updated
before it was created each warn, named by file and line. Real JSON-lines files through the real
ingestion assets into a real DuckDB file."""

import json
import shutil
from pathlib import Path

import dagster as dg

from assets.payments import payments
from assets.reference import reference_snapshots
from assets.tickets import tickets
from quality.landing_suites import landing_suites
from tests.conftest import GOLDEN
from warehouse.resource import WarehouseResource

INVOICE = "BO-202610-000002"  # c002's October invoice in the golden case, $15.21
CHARGE = {"id": "ch_1", "object": "charge", "amount": 1521, "amount_refunded": 0, "currency": "usd", "customer": "c002",
          "created": 1793000000, "status": "succeeded", "paid": True, "refunded": False,
          "metadata": {"invoice_number": INVOICE}}
REFUND = {"id": "re_1", "object": "refund", "amount": 500, "charge": "ch_1", "created": 1793100000, "currency": "usd",
          "reason": "requested_by_customer", "status": "succeeded", "metadata": {}}
DISPUTE = {"id": "dp_1", "object": "dispute", "amount": 1521, "charge": "ch_1", "created": 1793200000, "currency": "usd",
           "reason": "fraudulent", "status": "needs_response"}
TICKET = {"id": 101, "created_at": "2026-11-02T10:00:00Z", "updated_at": "2026-11-03T10:00:00Z", "status": "open",
          "via": {"channel": "email"}, "organization_id": "c002", "requester_id": 5, "subject": "My invoice",
          "tags": ["incorrect_invoice"], "custom_fields": [{"id": "invoice_number", "value": INVOICE}]}


def landing_with(tmp_path: Path, files: dict[str, list[dict]]) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(GOLDEN / "landing" / "reference", landing / "reference")
    for relative, records in files.items():
        path = landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return landing


def load_and_check(tmp_path: Path, landing: Path) -> dict[str, dg.AssetCheckEvaluation]:
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"), landing=str(landing))
    with warehouse.connect() as con:  # October issued, so November's payments can name its invoice
        con.execute(
            """INSERT INTO audit.issued_invoices (invoice_number, customer_id, billing_month, issue_date, due_date, currency,
                 subtotal, credits_applied, taxable_amount, tax_name, tax_rate, tax_amount, total, reverse_charge, issued_at, run_id)
               VALUES (?, 'c002', DATE '2026-10-01', DATE '2026-11-01', DATE '2026-12-01', 'USD', 12.78, 0, 12.78,
                       'VAT', 0.19, 2.43, 15.21, false, TIMESTAMP '2026-11-01 00:00:00', 'test')""",
            [INVOICE],
        )
    result = dg.materialize([reference_snapshots, tickets, payments, landing_suites], partition_key="2026-11-01",
                            resources={"warehouse": warehouse}, raise_on_error=False)
    assert result.success
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name.endswith("_landing_suite")}


def test_contract_shaped_tickets_and_payments_meet_their_suites(tmp_path):
    landing = landing_with(tmp_path, {
        "payments/charges/2026-11.jsonl": [CHARGE],
        "payments/refunds/2026-11.jsonl": [REFUND],
        "payments/disputes/2026-11.jsonl": [DISPUTE],
        "tickets/2026-11.jsonl": [TICKET, {**TICKET, "id": 102, "status": "solved"}],
    })

    checks = load_and_check(tmp_path, landing)

    assert {s: (c.passed, c.metadata["rows_checked"].value) for s, c in checks.items()} == {
        "tickets": (True, 2), "charges": (True, 1), "refunds": (True, 1), "disputes": (True, 1),
    }
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in checks.values())
    assert checks["charges"].description == "all 1 rows of raw.charges meet the landing suite"


def test_unexpected_rows_warn_naming_file_and_line(tmp_path):
    landing = landing_with(tmp_path, {
        "payments/charges/2026-11.jsonl": [CHARGE, {**CHARGE, "id": "ch_2", "currency": "USD", "amount_refunded": 2000}],
        "payments/refunds/2026-11.jsonl": [REFUND, {**REFUND, "id": "re_2", "amount": 2000}],
        "payments/disputes/2026-11.jsonl": [{**DISPUTE, "amount": 1600}],
        "tickets/2026-11.jsonl": [TICKET, {**TICKET, "id": 102, "updated_at": "2026-11-01T09:00:00Z"}],
    })

    checks = load_and_check(tmp_path, landing)

    assert {s: c.passed for s, c in checks.items()} == {"tickets": False, "charges": False, "refunds": False, "disputes": False}
    offending = {s: [(o["file"], o["row"], o["rule"]) for o in c.metadata["offending_rows"].value] for s, c in checks.items()}
    assert offending == {
        "tickets": [("tickets/2026-11.jsonl", 2, "updated_at must not be before created_at")],
        "charges": [("payments/charges/2026-11.jsonl", 2, "amount_refunded must not exceed amount")],
        "refunds": [("payments/refunds/2026-11.jsonl", 2, "amount must not exceed charge_amount")],
        "disputes": [("payments/disputes/2026-11.jsonl", 1, "amount must not exceed charge_amount")],
    }
    assert checks["charges"].description == (
        "1 unexpected value(s) in raw.charges: payments/charges/2026-11.jsonl line 2: amount_refunded must not exceed amount [found {'amount': 1521, 'amount_refunded': 2000}]"
    )
