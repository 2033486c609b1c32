"""Rules R1, R2, R3 and E1 on a crafted warehouse: each raises its exact item and amount, and nothing else.

The warehouse is a real DuckDB file: the audit tables from the product's own DDL
(warehouse.schema.bootstrap) and staging tables with the columns the rules read.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from warehouse.schema import bootstrap
from workitems.rules import claims_without_error, open_read_only, propose_items

REPO = Path(__file__).resolve().parents[2]
MONTH = dt.date(2026, 9, 1)
DUE = dt.date(2026, 10, 15)
ISSUED_AT = dt.datetime(2026, 10, 1, 0, 5)
OLD = dt.datetime(2026, 1, 1)

STAGING_DDL = """
CREATE SCHEMA IF NOT EXISTS staging;
CREATE TABLE staging.stg_payments__charges (charge_id VARCHAR, customer_id VARCHAR, invoice_number VARCHAR,
    amount DECIMAL(18,2), status VARCHAR, failure_code VARCHAR, created_at TIMESTAMP, loaded_at TIMESTAMP);
CREATE TABLE staging.stg_payments__refunds (refund_id VARCHAR, charge_id VARCHAR, amount DECIMAL(18,2),
    status VARCHAR, work_item_id VARCHAR, created_at TIMESTAMP, loaded_at TIMESTAMP);
CREATE TABLE staging.stg_payments__disputes (dispute_id VARCHAR, charge_id VARCHAR, amount DECIMAL(18,2),
    status VARCHAR, created_at TIMESTAMP, loaded_at TIMESTAMP);
CREATE TABLE staging.stg_support__tickets (ticket_id BIGINT, customer_id VARCHAR, tags VARCHAR[],
    invoice_number VARCHAR, status VARCHAR, created_at TIMESTAMP, loaded_at TIMESTAMP);
CREATE TABLE staging.stg_reference__customers (customer_id VARCHAR, created_at TIMESTAMP);
"""


class CraftedWarehouse:
    """A tiny warehouse file the tests fill row by row (every write opens and closes the file)."""

    def __init__(self, path: Path, create: bool = True):
        self.path = path
        self.con: duckdb.DuckDBPyConnection | None = None  # held open while a scenario is built in bulk
        if create:
            with duckdb.connect(str(path)) as con:
                bootstrap(con)
                con.execute(STAGING_DDL)
                con.execute("INSERT INTO audit.issued_months (billing_month, invoices, lines, total, content_sha256, issued_at, run_id) VALUES (?, 0, 0, 0, 'sha', ?, 'run-sep')",
                            [MONTH, ISSUED_AT])

    def sql(self, statement: str, params: list | None = None) -> None:
        if self.con is not None:
            self.con.execute(statement, params or [])
            return
        with duckdb.connect(str(self.path)) as con:
            con.execute(statement, params or [])

    def customer(self, customer_id: str, created_at: dt.datetime | None = OLD) -> None:
        self.sql("INSERT INTO staging.stg_reference__customers VALUES (?, ?)", [customer_id, created_at])

    def invoice(self, number: str, customer_id: str, total: str) -> None:
        self.sql("""INSERT INTO audit.issued_invoices (invoice_number, customer_id, billing_month, issue_date, due_date,
                    currency, subtotal, credits_applied, taxable_amount, tax_rate, tax_amount, total, reverse_charge,
                    issued_at, run_id) VALUES (?, ?, ?, ?, ?, 'USD', ?, 0, ?, 0, 0, ?, false, ?, 'run-sep')""",
                 [number, customer_id, MONTH, ISSUED_AT.date(), DUE, total, total, total, ISSUED_AT])

    def charge(self, charge_id: str, number: str, customer_id: str, amount: str, status: str, day: int,
               minute: int = 0) -> None:
        self.sql("INSERT INTO staging.stg_payments__charges VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                 [charge_id, customer_id, number, amount, status, None if status == "succeeded" else "card_declined",
                  dt.datetime(2026, 10, day, 9, minute)])

    def restatement(self, number: str, customer_id: str, issued: str, recomputed: str, day: int = 2,
                    cause: str = "price_correction") -> None:
        self.sql("INSERT INTO audit.restatements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [MONTH, customer_id, number, issued, recomputed, Decimal(recomputed) - Decimal(issued), cause,
                  dt.datetime(2026, 11, day, 1), f"run-{day}"])

    def ticket(self, ticket_id: int, customer_id: str, tags: list[str], number: str | None, day: int = 5) -> None:
        self.sql("INSERT INTO staging.stg_support__tickets VALUES (?, ?, ?, ?, 'open', ?, now())",
                 [ticket_id, customer_id, tags, number, dt.datetime(2026, 10, day, 12)])

    def refund(self, refund_id: str, charge_id: str, amount: str, work_item_id: str | None = None) -> None:
        self.sql("INSERT INTO staging.stg_payments__refunds VALUES (?, ?, ?, 'succeeded', ?, ?, now())",
                 [refund_id, charge_id, amount, work_item_id, dt.datetime(2026, 11, 3, 10)])

    def file_load(self, source: str = "charges") -> None:
        """What a close records when it loads files: the sensor's watermark moves."""
        self.sql("INSERT INTO audit.file_loads VALUES (?, ?, ?, 1, 1, 0, 0, now())",
                 [MONTH, source, f"payments/{source}/{source}-{dt.datetime.now().timestamp()}.jsonl"])

    def propose(self, queue: list[dict] = ()) -> dict[str, dict]:
        con = open_read_only(self.path)
        try:
            return {item["dedup_key"]: item for item in propose_items(con, queue)}
        finally:
            con.close()


def september(path: Path) -> CraftedWarehouse:
    """One case per rule and per way a rule must stay silent."""
    w = CraftedWarehouse(path)
    w.con = duckdb.connect(str(path))
    for customer in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C9", "C10", "C11", "C12", "C13"):
        w.customer(customer)
    w.customer("C8", dt.datetime(2026, 9, 1))  # 30-odd days old when its charge fails
    # R1 paid: restated twice, the latest restatement counts (−50.00, not −80.00)
    w.invoice("INV-1", "C1", "250.00")
    w.charge("ch_1", "INV-1", "C1", "250.00", "succeeded", 1)
    w.restatement("INV-1", "C1", "250.00", "170.00", day=2)
    w.restatement("INV-1", "C1", "250.00", "200.00", day=3)
    # R1 unpaid: a credit note
    w.invoice("INV-2", "C2", "300.00")
    w.restatement("INV-2", "C2", "300.00", "150.00")
    # R2: the second succeeded charge, in full
    w.invoice("INV-3", "C3", "120.00")
    w.charge("ch_3a", "INV-3", "C3", "120.00", "succeeded", 1, 0)
    w.charge("ch_3b", "INV-3", "C3", "120.00", "succeeded", 1, 7)
    # R3 over R1: a claim on an over-billed invoice, two tickets, one item
    w.invoice("INV-4", "C4", "80.00")
    w.charge("ch_4", "INV-4", "C4", "80.00", "succeeded", 1)
    w.restatement("INV-4", "C4", "80.00", "67.66")
    w.ticket(4001, "C4", ["billing", "incorrect_invoice"], "INV-4", day=5)
    w.ticket(4002, "C4", ["refund_request"], "INV-4", day=6)
    # false claims: never restated, restated higher, an invoice never issued
    w.invoice("INV-5", "C5", "60.00")
    w.charge("ch_5", "INV-5", "C5", "60.00", "succeeded", 1)
    w.ticket(5001, "C5", ["refund_request"], "INV-5")
    w.invoice("INV-6", "C6", "90.00")
    w.charge("ch_6", "INV-6", "C6", "90.00", "succeeded", 1)
    w.restatement("INV-6", "C6", "90.00", "95.00", cause="late_usage")
    w.ticket(6001, "C6", ["incorrect_invoice"], "INV-6")
    w.ticket(6002, "C6", ["incorrect_invoice"], "INV-NOPE")
    w.ticket(6003, "C6", ["other"], "INV-6")  # not a claim: not listed
    # E1: eligible, then one invoice per failed criterion
    for number, customer, total in (("INV-7", "C7", "100.00"), ("INV-8", "C8", "40.00"), ("INV-9", "C9", "40.00"),
                                    ("INV-10", "C10", "40.00"), ("INV-11", "C11", "5000.01"),
                                    ("INV-12", "C12", "5000.00"), ("INV-13", "C13", "40.00")):
        w.invoice(number, customer, total)
        w.charge(f"ch_{number[4:]}", number, customer, total, "failed", 1)
    w.charge("ch_7r", "INV-7", "C7", "100.00", "failed", 6)  # a failed retry: still one item, assessed at the retry
    w.charge("ch_13r", "INV-13", "C13", "40.00", "succeeded", 6)  # paid after failing: no extension
    w.invoice("INV-10b", "C10", "20.00")
    w.charge("ch_10b", "INV-10b", "C10", "20.00", "succeeded", 1)
    w.sql("INSERT INTO staging.stg_payments__disputes VALUES ('dp_1', 'ch_10b', 20.00, 'lost', ?, now())",
          [dt.datetime(2026, 10, 4)])
    w.con.close()
    w.con = None
    return w


EXTENSION_FOR_C9 = {"work_item_id": "WI-000099", "kind": "payment_extension", "rule": "E1", "customer_id": "C9",
                    "invoice_number": "INV-OLD", "amount": None, "status": "approved",
                    "created_at": dt.datetime(2026, 7, 30), "decided_at": dt.datetime(2026, 8, 1)}


@pytest.fixture(scope="module")
def september_file(tmp_path_factory) -> Path:
    return september(tmp_path_factory.mktemp("september") / "warehouse.duckdb").path


def copy_of(template: Path, path: Path) -> CraftedWarehouse:
    shutil.copyfile(template, path)
    return CraftedWarehouse(path, create=False)


@pytest.fixture
def warehouse(september_file: Path, tmp_path: Path) -> CraftedWarehouse:
    return copy_of(september_file, tmp_path / "warehouse.duckdb")


def test_each_rule_raises_its_exact_item_and_nothing_else(warehouse):
    items = warehouse.propose([EXTENSION_FOR_C9])
    assert sorted(items) == sorted([
        "refund:R1:INV-1:-", "credit_note:R1:INV-2:-", "refund:R2:INV-3:ch_3b", "refund:R3:INV-4:4001",
        "payment_extension:E1:INV-7:ch_7", "payment_extension:E1:INV-8:ch_8", "payment_extension:E1:INV-9:ch_9",
        "payment_extension:E1:INV-10:ch_10", "payment_extension:E1:INV-11:ch_11",
        "payment_extension:E1:INV-12:ch_12",
    ])
    r1 = items["refund:R1:INV-1:-"]
    assert (r1["kind"], r1["rule"], r1["customer_id"], r1["amount"], r1["requires_approval"]) == (
        "refund", "R1", "C1", Decimal("50.00"), False)
    assert r1["evidence"]["restatement"]["difference"] == Decimal("-50.00")
    assert r1["evidence"]["net_paid"] == Decimal("250.00") and r1["evidence"]["paid"] is True
    note = items["credit_note:R1:INV-2:-"]
    assert (note["amount"], note["requires_approval"], note["evidence"]["paid"]) == (Decimal("150.00"), True, False)
    r2 = items["refund:R2:INV-3:ch_3b"]
    assert (r2["charge_id"], r2["amount"], r2["requires_approval"]) == ("ch_3b", Decimal("120.00"), True)
    assert r2["evidence"]["charges"] == ["ch_3a", "ch_3b"]


def test_a_claim_on_a_restated_invoice_is_one_r3_item_linking_the_ticket_and_the_restatement(warehouse):
    items = warehouse.propose()
    assert [key for key in items if ":INV-4:" in key] == ["refund:R3:INV-4:4001"]
    r3 = items["refund:R3:INV-4:4001"]
    assert (r3["ticket_id"], r3["amount"], r3["requires_approval"]) == ("4001", Decimal("12.34"), False)
    assert r3["evidence"]["claim_tickets"] == ["4001", "4002"]
    assert r3["evidence"]["restatement"]["recomputed_total"] == Decimal("67.66")
    assert r3["evidence"]["restatement"]["cause"] == "price_correction"


def test_false_claims_raise_nothing_and_are_listed_for_review(warehouse):
    items = warehouse.propose()
    assert not [key for key in items if re.search(r":INV-(5|6|NOPE):", key)]
    con = open_read_only(warehouse.path)
    try:
        assert claims_without_error(con) == [("5001", "INV-5"), ("6001", "INV-6"), ("6002", "INV-NOPE")]
    finally:
        con.close()


def test_the_dbt_model_lists_the_same_false_claims_with_why(warehouse):
    """billing_claims_no_error.sql itself, its refs and sources resolved to the crafted tables."""
    sql = (REPO / "dbt_project/models/marts/workitems/billing_claims_no_error.sql").read_text()
    sql = re.sub(r"\{\{\s*ref\('(\w+)'\)\s*\}\}", r"staging.\1", sql)
    sql = re.sub(r"\{\{\s*source\('(\w+)',\s*'(\w+)'\)\s*\}\}", r"\1.\2", sql)
    con = open_read_only(warehouse.path)
    try:
        rows = con.execute(f"SELECT ticket_id, invoice_number, finding FROM ({sql}) ORDER BY 1").fetchall()
    finally:
        con.close()
    assert rows == [("5001", "INV-5", "not_restated"), ("6001", "INV-6", "restated_not_lower"),
                    ("6002", "INV-NOPE", "invoice_not_issued")]


def test_e1_proposes_due_date_plus_14_days_or_names_the_failed_criterion(warehouse):
    items = warehouse.propose([EXTENSION_FOR_C9])
    verdicts = {key.split(":")[2]: (item["proposed_due_date"], item["reason"]) for key, item in items.items()
                if item["kind"] == "payment_extension"}
    assert verdicts == {
        "INV-7": (dt.date(2026, 10, 29), "eligible: due date + 14 days"),
        "INV-8": (None, "customer_younger_than_90_days"),
        "INV-9": (None, "extension_in_last_180_days"),
        "INV-10": (None, "lost_dispute"),
        "INV-11": (None, "amount_over_5000"),
        "INV-12": (dt.date(2026, 10, 29), "eligible: due date + 14 days"),  # $5,000.00 passes
    }
    seven = items["payment_extension:E1:INV-7:ch_7"]
    assert seven["evidence"]["failed_charges"] == ["ch_7", "ch_7r"]
    assert seven["evidence"]["failed_at"] == dt.datetime(2026, 10, 6, 9)
    assert (seven["amount"], seven["requires_approval"]) == (None, False)
    # without the approved extension in the queue, C9 is eligible
    assert warehouse.propose()["payment_extension:E1:INV-9:ch_9"]["proposed_due_date"] == dt.date(2026, 10, 29)


def test_an_invoice_already_in_the_queue_for_over_billing_gets_no_second_item(warehouse):
    """INV-2's credit note was raised while unpaid; now paid, R1 would say refund: the queue already has it."""
    warehouse.charge("ch_2", "INV-2", "C2", "300.00", "succeeded", 9)
    assert "refund:R1:INV-2:-" in warehouse.propose()
    raised = {"work_item_id": "WI-000002", "kind": "credit_note", "rule": "R1", "customer_id": "C2",
              "invoice_number": "INV-2", "amount": Decimal("150.00"), "status": "open",
              "created_at": dt.datetime(2026, 11, 2), "decided_at": None}
    assert not [key for key in warehouse.propose([raised]) if ":INV-2:" in key]


def test_a_refunded_duplicate_charge_is_not_proposed_again(warehouse):
    warehouse.refund("re_1", "ch_3b", "120.00")
    assert not [key for key in warehouse.propose() if ":INV-3:" in key]
