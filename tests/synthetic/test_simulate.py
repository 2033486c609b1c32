"""Tests of the payment/help-desk simulator (synthetic/simulate.py) on a small hand-built published copy.

The copy (`billops.duckdb`, as BILLOPS_PUBLISHED holds it) has only what simulate reads: `marts.invoices` and `marts.invoice_lines`
for September 2026 (contract columns, DECIMAL(18,2) money), derived from the customers
that `generate("2026-09", 30, ...)` wrote. No other part of the pipeline runs.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from assets.jsonl import typed_view_sql
from assets.payments import CHARGES, DISPUTES, REFUNDS
from assets.tickets import TICKETS
from synthetic.generate import generate
from synthetic.price_book import PRICE_COLUMNS
from synthetic.simulate import simulate
from workitems.eligibility import CRITERIA as E1_CRITERIA

PREV, MONTH, SEED = "2026-09", "2026-10", 5
MONTH_START = int(datetime(2026, 10, 1, tzinfo=timezone.utc).timestamp())
MONTH_END = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp())
FILES = {
    "charges": "payments/charges/charges-2026-10.jsonl",
    "refunds": "payments/refunds/refunds-2026-10.jsonl",
    "disputes": "payments/disputes/disputes-2026-10.jsonl",
    "tickets": "tickets/tickets-2026-10.jsonl",
}
# Lines per customer k: one hourly SKU (two correctable, one with a price change on 2026-09-16,
# which must never be corrected) and transfer; k == 0 is covered by credits (total 0), k == 1 owes > $5,000.
HOURLY = [("droplet-s-1vcpu-1gb", "6.00"), ("db-pg-1vcpu-1gb", "15.00"), ("droplet-s-2vcpu-2gb", "18.00")]
INVOICE_DDL = """CREATE TABLE marts.invoices (invoice_number VARCHAR, customer_id VARCHAR, billing_month DATE,
  issue_date DATE, due_date DATE, currency VARCHAR, subtotal DECIMAL(18,2), credits_applied DECIMAL(18,2),
  taxable_amount DECIMAL(18,2), tax_name VARCHAR, tax_rate DECIMAL(9,6), tax_amount DECIMAL(18,2),
  total DECIMAL(18,2), reverse_charge BOOLEAN, status VARCHAR)"""
LINES_DDL = """CREATE TABLE marts.invoice_lines (invoice_number VARCHAR, line_number INTEGER, customer_id VARCHAR,
  billing_month DATE, sku VARCHAR, product VARCHAR, resource_id VARCHAR, description VARCHAR,
  quantity DECIMAL(18,6), unit VARCHAR, unit_price DECIMAL(18,6), amount DECIMAL(18,2))"""


def _build(root: Path) -> tuple[Path, Path, dict]:
    landing, warehouse = root / "landing", root / "billops.duckdb"
    generate(PREV, 30, SEED, landing, anomalies="none", progress=False)
    with open(landing / "reference" / "customers.csv", newline="") as f:
        customers = list(csv.DictReader(f))
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA marts")
    con.execute(INVOICE_DDL)
    con.execute(LINES_DDL)
    invoices = {}
    for k, c in enumerate(customers):
        number = f"BO-202609-{k + 1:06d}"
        sku, amount = HOURLY[k % 3]
        lines = [(sku, Decimal(amount)), ("transfer-out-gib", Decimal(k) * Decimal("0.37"))]
        if k == 1:
            lines.append(("droplet-g-8vcpu-32gb", Decimal("6000.00")))
        subtotal = sum(a for _, a in lines)
        credits = subtotal if k == 0 else Decimal("0")
        total = subtotal - credits
        invoices[number] = (c["customer_id"], total, {s for s, _ in lines})
        con.execute("INSERT INTO marts.invoices VALUES (?, ?, DATE '2026-09-01', DATE '2026-10-01', DATE '2026-10-15', "
                    "'USD', ?, ?, ?, NULL, 0, 0, ?, false, 'issued')", [number, c["customer_id"], subtotal, credits, total, total])
        for n, (s, a) in enumerate(lines, 1):
            con.execute("INSERT INTO marts.invoice_lines VALUES (?, ?, ?, DATE '2026-09-01', ?, 'p', NULL, 'd', 1, 'hour', 1, ?)",
                        [number, n, c["customer_id"], s, a])
    con.close()
    return landing, warehouse, invoices


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two copies of the same landing zone and published copy, simulated once each; the original kept for comparison."""
    base = tmp_path_factory.mktemp("sim_base")
    landing, warehouse, invoices = _build(base)
    runs = []
    for name in ("a", "b"):
        root = tmp_path_factory.mktemp(f"sim_{name}")
        shutil.copytree(landing, root / "landing")
        shutil.copy(warehouse, root / "billops.duckdb")
        summary = simulate(MONTH, SEED, root / "landing", root / "billops.duckdb", progress=False)
        runs.append((root / "landing", root / "billops.duckdb", summary))
    return {"base": landing, "invoices": invoices, "runs": runs}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _simulated(landing: Path) -> dict[str, list[dict]]:
    return {k: _jsonl(landing / rel) for k, rel in FILES.items()}


def _manifest(landing: Path) -> list[dict]:
    return _jsonl(landing / "_truth" / "anomalies.jsonl")


def _prices(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames), list(r)


def _cents(total: Decimal) -> int:
    c = total * 100
    assert c == c.to_integral_value()
    return int(c)


def _outputs(landing: Path) -> dict[str, bytes]:
    rels = [*FILES.values(), "reference/price_book.csv", "_truth/anomalies.jsonl"]
    return {rel: (landing / rel).read_bytes() for rel in rels}


def test_deterministic_byte_identical(world):
    (a, _, sa), (b, _, sb) = world["runs"]
    assert _outputs(a) == _outputs(b)
    assert {k: v for k, v in sa.items() if k != "seconds"} == {k: v for k, v in sb.items() if k != "seconds"}
    assert sa["files"] == {rel: len(_jsonl(a / rel)) for rel in FILES.values()}


def test_charges_answer_invoices_to_the_cent(world):
    landing, _, summary = world["runs"][0]
    invoices = world["invoices"]
    with open(landing / "reference" / "customers.csv", newline="") as f:
        method = {r["customer_id"]: r["payment_method"] for r in csv.DictReader(f)}
    charges = _simulated(landing)["charges"]
    assert len({c["id"] for c in charges}) == len(charges)
    by_invoice = defaultdict(list)
    for c in charges:
        by_invoice[c["metadata"]["invoice_number"]].append(c)
        customer, total, _ = invoices[c["metadata"]["invoice_number"]]
        assert c["customer"] == customer
        assert c["amount"] == _cents(total) > 0  # every charge, succeeded or failed, is the invoice total in cents
        assert c["currency"] == "usd" and c["object"] == "charge"
        assert MONTH_START < c["created"] < MONTH_END  # issued 2026-10-01 00:00, charged after
        assert (c["status"], c["paid"]) in (("succeeded", True), ("failed", False))
        if c["status"] == "failed":
            assert c["failure_code"] in ("card_declined", "insufficient_funds", "expired_card", "processing_error")
            assert c["failure_message"]
        else:
            assert c["failure_code"] is None and c["failure_message"] is None
    for number, (customer, total, _) in invoices.items():
        payable = total > 0 and method[customer] != "none"
        assert (number in by_invoice) == payable, number  # zero totals and payment_method none: no charge
    assert summary["zero_total_invoices"] == 1
    assert summary["unpaid_no_payment_method"] == sum(1 for c, t, _ in invoices.values() if t > 0 and method[c] == "none")
    # an invoice gets at most two charges: a retry after a failure, a second failure, or a duplicate
    assert max(len(v) for v in by_invoice.values()) == 2
    assert summary["retried_and_paid"] >= 1 and summary["failed_charges"] >= 2


def test_manifest_entries_are_found_in_the_files(world):
    landing, warehouse, _ = world["runs"][0]
    invoices = world["invoices"]
    files = _simulated(landing)
    charges = {c["id"]: c for c in files["charges"]}
    tickets = defaultdict(list)
    for t in files["tickets"]:
        tickets[t["id"]].append(t)
    entries = [e for e in _manifest(landing) if e["step"] == "simulate"]
    assert all(e["month"] == MONTH for e in entries)
    kinds = Counter(e["anomaly"] for e in entries)
    assert kinds["duplicate_charge"] >= 1 and kinds["failed_payment"] >= 1
    assert kinds["true_claim"] == kinds["false_claim"] == 2 and kinds["price_correction"] == 1
    con = duckdb.connect(str(warehouse), read_only=True)
    issued = {r[0] for r in con.execute("SELECT invoice_number FROM marts.invoices").fetchall()}
    con.close()
    by_invoice = defaultdict(list)
    for c in files["charges"]:
        by_invoice[c["metadata"]["invoice_number"]].append(c)
    for e in entries:
        if e["anomaly"] == "price_correction":
            continue
        assert e["invoice_number"] in issued
        assert invoices[e["invoice_number"]][0] == e["customer_id"]
        if e["anomaly"] == "duplicate_charge":
            assert e["expect"] == "work_item:refund"
            dup, orig = charges[e["charge_id"]], charges[e["original_charge_id"]]
            assert [c["id"] for c in by_invoice[e["invoice_number"]]] == [orig["id"], dup["id"]]
            assert dup["status"] == orig["status"] == "succeeded" and dup["paid"] and orig["paid"]
            assert dup["amount"] == orig["amount"] == _cents(Decimal(e["amount"]))
            assert dup["created"] > orig["created"]
        elif e["anomaly"] == "failed_payment":
            assert e["expect"] == "work_item:payment_extension"
            assert e["charge_id"] in charges and charges[e["charge_id"]]["metadata"]["invoice_number"] == e["invoice_number"]
            assert all(c["status"] == "failed" for c in by_invoice[e["invoice_number"]])
            assert len(by_invoice[e["invoice_number"]]) == e["attempts"]
            assert e["prior_extensions"] == 0 and isinstance(e["eligible"], bool)
        else:
            assert e["expect"] == ("work_item:refund" if e["anomaly"] == "true_claim" else "no_work_item")
            versions = tickets[e["ticket_id"]]
            assert versions and all(v["organization_id"] == e["customer_id"] for v in versions)
            newest = max(versions, key=lambda v: v["updated_at"])
            assert newest["custom_fields"] == [{"id": "invoice_number", "value": e["invoice_number"]}]
            assert newest["tags"] in (["incorrect_invoice"], ["refund_request"])
    # every duplicate succeeded pair on one invoice is in the manifest, and none is refunded
    doubles = {n for n, cs in by_invoice.items() if sum(c["status"] == "succeeded" for c in cs) == 2}
    assert doubles == {e["invoice_number"] for e in entries if e["anomaly"] == "duplicate_charge"}
    dup_charges = {e["charge_id"] for e in entries if e["anomaly"] == "duplicate_charge"}
    dup_invoices = {charges[c]["metadata"]["invoice_number"] for c in dup_charges}
    for r in files["refunds"]:
        assert charges[r["charge"]]["metadata"]["invoice_number"] not in dup_invoices
    # every invoice whose charges all failed is in the manifest
    all_failed = {n for n, cs in by_invoice.items() if all(c["status"] == "failed" for c in cs)}
    assert all_failed == {e["invoice_number"] for e in entries if e["anomaly"] == "failed_payment"}
    # the only claims naming an invoice are the recorded ones
    claims = {(t["id"], t["custom_fields"][0]["value"]) for t in files["tickets"]
              if {"incorrect_invoice", "refund_request"} & set(t["tags"]) and t["custom_fields"][0]["value"]}
    assert claims == {(e["ticket_id"], e["invoice_number"]) for e in entries if e["anomaly"].endswith("_claim")}


def test_extension_eligibility_follows_the_rules(world):
    landing, _, _ = world["runs"][0]
    with open(landing / "reference" / "customers.csv", newline="") as f:
        created = {r["customer_id"]: datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")) for r in csv.DictReader(f)}
    files = _simulated(landing)
    charge_customer = {c["id"]: c["customer"] for c in files["charges"]}
    lost = {charge_customer[d["charge"]] for d in files["disputes"] if d["status"] == "lost"}
    for e in _manifest(landing):
        if e.get("anomaly") != "failed_payment":
            continue
        failed_at = datetime.fromisoformat(e["failed_at"].replace("Z", "+00:00"))
        old_enough = failed_at - created[e["customer_id"]] >= timedelta(days=90)
        expected = old_enough and e["customer_id"] not in lost and Decimal(e["amount"]) <= 5000
        assert e["eligible"] == expected, e
        assert e["eligible"] == (e["ineligible_reasons"] == [])
        assert set(e["ineligible_reasons"]) <= set(E1_CRITERIA)  # the product's names (workitems.eligibility)


def test_refunds_and_disputes(world):
    landing, _, summary = world["runs"][0]
    files = _simulated(landing)
    charges = {c["id"]: c for c in files["charges"]}
    assert files["refunds"] and files["disputes"]
    for r in files["refunds"]:
        c = charges[r["charge"]]
        assert c["status"] == "succeeded" and 0 < r["amount"] < c["amount"]
        assert (r["reason"], r["status"], r["currency"]) == ("requested_by_customer", "succeeded", "usd")
        assert c["created"] < r["created"] < MONTH_END
    statuses = set()
    for d in files["disputes"]:
        c = charges[d["charge"]]
        assert c["status"] == "succeeded" and d["amount"] == c["amount"] and c["created"] < d["created"] < MONTH_END
        statuses.add(d["status"])
    assert "lost" in statuses
    assert statuses <= {"warning_needs_response", "needs_response", "under_review", "won", "lost"}
    assert summary["refunds"] == len(files["refunds"]) and summary["disputes"] == len(files["disputes"])


WORK_ITEMS_DDL = """CREATE TABLE marts.work_items (work_item_id VARCHAR, kind VARCHAR, rule VARCHAR,
  customer_id VARCHAR, invoice_number VARCHAR, charge_id VARCHAR, ticket_id VARCHAR, amount DECIMAL(18,2),
  proposed_due_date DATE, reason VARCHAR, evidence JSON, status VARCHAR, requires_approval BOOLEAN,
  created_at TIMESTAMP, decided_at TIMESTAMP, decided_by VARCHAR, dedup_key VARCHAR)"""


def test_refunds_approved_in_the_published_work_items_are_executed_once(world, tmp_path):
    """The processor executes what `marts.work_items` of the published copy shows approved, nothing else."""
    landing, _, _ = world["runs"][0]
    paid = next(c for c in _simulated(landing)["charges"] if c["status"] == "succeeded")
    invoice = paid["metadata"]["invoice_number"]
    root = tmp_path / "with_items"
    shutil.copytree(world["base"], root / "landing")
    shutil.copy(world["base"].parent / "billops.duckdb", root / "billops.duckdb")
    con = duckdb.connect(str(root / "billops.duckdb"))
    con.execute(WORK_ITEMS_DDL)
    for item_id, status in (("WI-000001", "approved"), ("WI-000002", "open"), ("WI-000003", "declined")):
        con.execute("INSERT INTO marts.work_items VALUES (?, 'refund', 'R1', ?, ?, NULL, NULL, 1.25, NULL, 'r', '{}', "
                    "?, false, TIMESTAMP '2026-10-01 08:00:00', NULL, NULL, ?)",
                    [item_id, paid["customer"], invoice, status, f"refund:R1:{invoice}:{item_id}"])
    con.close()
    summary = simulate(MONTH, SEED, root / "landing", root / "billops.duckdb", progress=False)
    refunds = _simulated(root / "landing")["refunds"]
    executed = [r for r in refunds if r["metadata"].get("work_item_id")]
    assert summary["work_item_refunds"] == 1 and len(executed) == 1
    assert executed[0]["metadata"] == {"work_item_id": "WI-000001"}
    assert (executed[0]["amount"], executed[0]["charge"], executed[0]["status"]) == (125, paid["id"], "succeeded")
    # the ordinary refunds are those of the run without items, before it
    assert refunds[:-1] == _simulated(landing)["refunds"]
    simulate(MONTH, SEED, root / "landing", root / "billops.duckdb", progress=False)
    assert _simulated(root / "landing")["refunds"] == refunds  # a re-run executes nothing twice


def test_tickets_versions_times_and_metrics(world):
    landing, _, summary = world["runs"][0]
    tickets = _simulated(landing)["tickets"]
    ids = Counter(t["id"] for t in tickets)
    assert summary["tickets"] == len(ids) and summary["ticket_versions"] == len(tickets)
    assert len({(t["id"], t["updated_at"]) for t in tickets}) == len(tickets)  # versions never tie
    multi = [i for i, n in ids.items() if n > 1]
    assert multi
    for i in multi:
        versions = sorted((t for t in tickets if t["id"] == i), key=lambda t: t["updated_at"])
        assert versions[0]["status"] == "new" and versions[-1]["status"] != "new"
    lo, hi = "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"
    for t in tickets:
        assert lo <= t["created_at"] <= t["updated_at"] < hi
        m = t["metrics"]
        if t["status"] in ("solved", "closed"):
            assert t["created_at"] < m["solved_at"] < hi
            assert m["full_resolution_time_in_minutes"]["calendar"] >= m["reply_time_in_minutes"]["calendar"] >= 0
            assert m["agent_work_time_in_minutes"]["calendar"] <= m["full_resolution_time_in_minutes"]["calendar"]
        else:
            assert m["solved_at"] is None
        for key in ("reply_time_in_minutes", "full_resolution_time_in_minutes", "agent_work_time_in_minutes"):
            cal, biz = m[key]["calendar"], m[key]["business"]
            assert (cal is None) == (biz is None) and (cal is None or 0 <= biz <= cal)
    assert {t["via"]["channel"] for t in tickets} <= {"chat", "web", "email", "api"}


def test_price_correction_lowers_the_previous_month_only(world):
    base = world["base"]
    landing, _, summary = world["runs"][0]
    fields, before = _prices(base / "reference" / "price_book.csv")
    fields_after, after = _prices(landing / "reference" / "price_book.csv")
    assert fields == fields_after == PRICE_COLUMNS
    sku = summary["price_correction"]["sku"]
    assert sku in ("droplet-s-1vcpu-1gb", "db-pg-1vcpu-1gb")  # droplet-s-2vcpu-2gb changes mid-September
    assert [r for r in before if r["sku"] != sku] == [r for r in after if r["sku"] != sku]
    for rows in (before, after):
        by_sku = defaultdict(list)
        for r in rows:
            by_sku[r["sku"]].append(r)
        for s, rs in by_sku.items():  # non-overlapping, contiguous, exclusive ends, only the last open
            rs.sort(key=lambda r: r["effective_from"])
            for x, y in zip(rs, rs[1:]):
                assert x["effective_to"] == y["effective_from"], s
            assert rs[-1]["effective_to"] == ""

    def price_on(rows, day):
        (r,) = [r for r in rows if r["sku"] == sku and r["effective_from"] <= day
                and (r["effective_to"] == "" or day < r["effective_to"])]
        return Decimal(r["unit_price"]), Decimal(r["monthly_cap"])

    for day in ("2026-08-31", "2026-10-01", "2026-10-31"):
        assert price_on(after, day) == price_on(before, day)
    for day in ("2026-09-01", "2026-09-16", "2026-09-30"):
        new, old = price_on(after, day), price_on(before, day)
        assert new[0] < old[0] and new[1] < old[1]
        assert -new[0].as_tuple().exponent == -old[0].as_tuple().exponent  # same number formatting
    corrected = [r for r in after if r["sku"] == sku and r["effective_from"] == "2026-09-01"]
    assert len(corrected) == 1 and corrected[0]["effective_to"] == "2026-10-01"
    # true claims name invoices with that SKU; false claims invoices without it
    invoices = world["invoices"]
    for e in _manifest(landing):
        if e.get("anomaly") == "true_claim":
            assert e["sku"] == sku and sku in invoices[e["invoice_number"]][2]
        if e.get("anomaly") == "false_claim":
            assert sku not in invoices[e["invoice_number"]][2]


def test_rerun_overwrites_and_does_not_split_twice(world, tmp_path):
    landing, warehouse, _ = world["runs"][1]
    root = tmp_path / "again"
    shutil.copytree(landing, root / "landing")
    first = _outputs(root / "landing")
    generate_lines = [e for e in _manifest(root / "landing") if e["step"] == "generate"]
    summary = simulate(MONTH, SEED, root / "landing", warehouse, progress=False)
    assert summary["price_correction"]["written"] is False
    assert _outputs(root / "landing") == first  # same files, same price book, manifest not doubled
    assert [e for e in _manifest(root / "landing") if e["step"] == "generate"] == generate_lines
    # another seed replaces this month's simulate lines and keeps the others
    simulate(MONTH, SEED + 1, root / "landing", warehouse, progress=False)
    manifest = _manifest(root / "landing")
    assert [e for e in manifest if e["step"] == "generate"] == generate_lines
    charges = {c["id"] for c in _simulated(root / "landing")["charges"]}
    assert all(e["charge_id"] in charges for e in manifest if e["step"] == "simulate" and "charge_id" in e)


def test_every_line_passes_the_ingestion_schema(world):
    """The ingestion's own typed views (assets/jsonl.py) accept every line: no bad_json, no bad_schema."""
    landing, _, _ = world["runs"][0]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for source, key in ((CHARGES, "charges"), (REFUNDS, "refunds"), (DISPUTES, "disputes"), (TICKETS, "tickets")):
        path = landing / FILES[key]
        con.execute(typed_view_sql(source, landing, [path]))
        rows = con.execute(f"SELECT row_number, bad_json, schema_error FROM raw.{source.name}_typed").fetchall()
        assert len(rows) == len(_jsonl(path)) > 0, key
        assert [r for r in rows if r[1] or r[2]] == [], key
        for f in source.fields:  # every required field is there, with a value
            if f.required:
                assert con.execute(f"SELECT count(*) FROM raw.{source.name}_typed WHERE {f.name} IS NULL").fetchone()[0] == 0
    # the typed values carry through (integers stay integers, nested paths resolve)
    assert con.execute("SELECT count(*) FROM raw.tickets_typed WHERE channel IS NULL OR requester_id IS NULL "
                       "OR group_id IS NULL OR satisfaction_score IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM raw.charges_typed WHERE invoice_number IS NULL OR paid IS NULL").fetchone()[0] == 0
    named = con.execute("SELECT count(*) FROM raw.tickets_typed WHERE invoice_number IS NOT NULL").fetchone()[0]
    assert named >= 4  # at least the claims
    con.close()
    # organizations and charge customers are customers of reference/customers.csv (no unknown_customer)
    with open(landing / "reference" / "customers.csv", newline="") as f:
        known = {r["customer_id"] for r in csv.DictReader(f)}
    files = _simulated(landing)
    assert {t["organization_id"] for t in files["tickets"]} <= known
    assert {c["customer"] for c in files["charges"]} <= known


def test_no_invoices_for_previous_month_is_a_clear_error(world, tmp_path):
    warehouse = tmp_path / "empty.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA marts")
    con.execute(INVOICE_DDL)
    con.close()
    with pytest.raises(ValueError, match="close 2026-09 first"):
        simulate(MONTH, SEED, world["base"], warehouse, progress=False)
    with pytest.raises(ValueError, match="close 2026-09 first"):
        simulate(MONTH, SEED, world["base"], tmp_path / "missing.duckdb", progress=False)
    assert not (world["base"] / FILES["charges"]).exists()
