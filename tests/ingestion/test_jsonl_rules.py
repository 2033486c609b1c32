"""Tickets and payments ingestion (assets/tickets.py, assets/payments.py, assets/jsonl.py) on crafted JSON lines.

Every test materializes the ingestion assets in-process (`dg.materialize` on a
tmp DuckDB file, tests/ingestion/conftest.py); only the staging test runs dbt,
on the two staging folders. Changed and vanished files are in test_ledger.py.
"""

import json
from datetime import datetime, timezone
from decimal import Decimal

import duckdb

from assets.payments import KEYS as PAYMENT_KEYS
from assets.tickets import TICKETS_KEY
from tests.conftest import dbt
from tests.ingestion.conftest import issue_invoice, metadata, quarantined
from tests.ingestion.conftest import materialize_jsonl as ingest

UNIX = 1_790_000_000  # 2026-09-21 14:13:20 UTC


def write_jsonl(ws, relative: str, lines: list) -> None:
    """Dicts become JSON lines; strings are written as they are (a broken line)."""
    path = ws.landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


def ticket(id, updated="2026-10-02T10:00:00Z", **fields):
    return {"id": id, "created_at": "2026-10-01T09:00:00Z", "updated_at": updated, "status": "open",
            "via": {"channel": "chat"}, "requester_id": 501, "organization_id": "c002", "subject": "Invoice question",
            "tags": ["incorrect_invoice"], "custom_fields": [{"id": "invoice_number", "value": "BO-202609-000002"}],
            "satisfaction_rating": {"score": "offered"},
            "metrics": {"reply_time_in_minutes": {"calendar": 12, "business": 7}, "reopens": 0}, **fields}


def charge(id, amount=1234, invoice="BO-202609-000002", customer="c002", **fields):
    return {"id": id, "object": "charge", "amount": amount, "amount_refunded": 0, "currency": "usd", "customer": customer,
            "created": UNIX, "status": "succeeded", "paid": True, "refunded": False, "failure_code": None,
            "failure_message": None, "metadata": {"invoice_number": invoice}, **fields}


def refund(id, charge_id, amount=500):
    return {"id": id, "object": "refund", "amount": amount, "charge": charge_id, "created": UNIX + 60, "currency": "usd",
            "reason": "requested_by_customer", "status": "succeeded", "metadata": {"work_item_id": "wi-1"}}


def dispute(id, charge_id):
    return {"id": id, "object": "dispute", "amount": 1234, "charge": charge_id, "created": UNIX + 120,
            "currency": "usd", "reason": "fraudulent", "status": "needs_response"}


def issued(ws, *numbers) -> None:
    """Invoices an earlier close issued: the ones payments may answer."""
    for number in numbers:
        issue_invoice(ws, number)


def loads(ws, source: str) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in ws.query(
        "SELECT file, rows_read, accepted, redelivered, quarantined FROM audit.file_loads "
        "WHERE source = ? AND billing_month = DATE '2026-10-01'", [source])}


def test_no_files_gives_empty_views(golden):
    result = ingest(golden)
    assert result.success
    for name in ("tickets", "charges", "refunds", "disputes"):
        assert golden.query(f"SELECT count(*) FROM raw.{name}") == [(0,)]
    assert golden.query("SELECT count(*) FROM audit.quarantine") == [(0,)]


def test_bad_json_line_is_quarantined_and_the_rest_of_the_file_loads(golden):
    write_jsonl(golden, "tickets/2026-10-02.jsonl", [ticket(1), '{"id": 2, "status": "open"', ticket(3)])
    result = ingest(golden)
    assert result.success
    ((file, line, record_id, reason, _, raw),) = quarantined(golden, "tickets")
    assert (file, line, record_id, reason, raw) == ("tickets/2026-10-02.jsonl", 2, None, "bad_json", '{"id": 2, "status": "open"')
    assert golden.query("SELECT id, row_number FROM raw.tickets ORDER BY id") == [(1, 1), (3, 3)]
    assert loads(golden, "tickets") == {"tickets/2026-10-02.jsonl": (3, 2, 0, 1)}
    assert metadata(result, TICKETS_KEY)["quarantined_by_reason"] == {"bad_json": 1}


def test_newest_ticket_version_wins_whatever_the_file_order(golden):
    newest = ticket(7, updated="2026-10-05T08:00:00Z", status="solved",
                    custom_fields={"invoice_number": "BO-202609-000007"}, metrics={"solved_at": "2026-10-05T08:00:00Z", "reopens": 1})
    write_jsonl(golden, "tickets/a.jsonl", [newest])
    write_jsonl(golden, "tickets/b.jsonl", [ticket(7, updated="2026-10-03T08:00:00Z"), ticket(8)])
    assert ingest(golden).success
    assert golden.query("SELECT id, status, invoice_number, solved_at, reopens, source_file FROM raw.tickets ORDER BY id") == [
        (7, "solved", "BO-202609-000007", datetime(2026, 10, 5, 8), 1, "tickets/a.jsonl"),
        (8, "open", "BO-202609-000002", None, 0, "tickets/b.jsonl"),  # custom_fields as Zendesk's list
    ]
    # The superseded version is set aside, naming the version that stands.
    assert golden.query("SELECT file, row_number, record_id, first_file, first_row_number FROM audit.redeliveries") == [
        ("tickets/b.jsonl", 1, "7", "tickets/a.jsonl", 1)]
    assert loads(golden, "tickets") == {"tickets/a.jsonl": (1, 1, 0, 0), "tickets/b.jsonl": (2, 1, 1, 0)}


def test_ticket_rules_bad_schema_unknown_customer_and_same_version_conflict(golden):
    write_jsonl(golden, "tickets/t.jsonl", [
        ticket(1),
        ticket(1, subject="Same updated_at, other content"),
        ticket(2, status="escalated"),
        ticket(3, organization_id="c999"),
        ticket("four"),
        {k: v for k, v in ticket(5).items() if k != "updated_at"},
    ])
    assert ingest(golden).success
    assert [(r[1], r[3], r[4]) for r in quarantined(golden, "tickets")] == [
        (2, "conflicting_duplicate", "id 1: the newest version in tickets/t.jsonl line 1 stands; this line differs"),
        (3, "bad_schema", "status escalated is not one of new, open, pending, hold, solved, closed"),
        (4, "unknown_customer", "customer c999 is not in reference/customers.csv"),
        (5, "bad_schema", "id is not a BIGINT: four"),
        (6, "bad_schema", "updated_at is missing or null"),
    ]
    assert loads(golden, "tickets") == {"tickets/t.jsonl": (6, 1, 0, 5)}


def test_charge_redelivered_in_another_file_counts_once_and_a_conflict_is_quarantined(golden):
    issued(golden, "BO-202609-000002")
    write_jsonl(golden, "payments/charges/2026-10-01.jsonl", [charge("ch_1"), charge("ch_2", amount=999)])
    write_jsonl(golden, "payments/charges/2026-10-02.jsonl", [charge("ch_1"), charge("ch_2", amount=1000)])
    result = ingest(golden)
    assert result.success
    assert golden.query("SELECT id, amount, source_file FROM raw.charges ORDER BY id") == [
        ("ch_1", 1234, "payments/charges/2026-10-01.jsonl"), ("ch_2", 999, "payments/charges/2026-10-01.jsonl")]
    assert golden.query("SELECT source, file, row_number, record_id, first_file, first_row_number FROM audit.redeliveries") == [
        ("charges", "payments/charges/2026-10-02.jsonl", 1, "ch_1", "payments/charges/2026-10-01.jsonl", 1)]
    assert [(r[0], r[1], r[2], r[3]) for r in quarantined(golden, "charges")] == [
        ("payments/charges/2026-10-02.jsonl", 2, "ch_2", "conflicting_duplicate")]
    per_file = loads(golden, "charges")
    assert per_file == {"payments/charges/2026-10-01.jsonl": (2, 2, 0, 0), "payments/charges/2026-10-02.jsonl": (2, 0, 1, 1)}
    for file, (read, accepted, redelivered, bad) in per_file.items():
        assert read == accepted + redelivered + bad, file
    assert metadata(result, PAYMENT_KEYS["charges"])["redelivered"] == 1


def test_payment_rules_unknown_invoice_and_unknown_customer(golden):
    issued(golden, "BO-202609-000002")
    write_jsonl(golden, "payments/charges/c.jsonl", [
        charge("ch_ok"),
        charge("ch_unknown_invoice", invoice="BO-209901-000001"),
        charge("ch_no_invoice", invoice=None),
        charge("ch_unknown_customer", customer="c999"),
        charge("ch_float", amount=12.5),
    ])
    write_jsonl(golden, "payments/refunds/r.jsonl", [refund("re_ok", "ch_ok"), refund("re_orphan", "ch_unknown_invoice")])
    write_jsonl(golden, "payments/disputes/d.jsonl", [dispute("dp_ok", "ch_ok"), dispute("dp_orphan", "ch_404")])
    result = ingest(golden)
    assert result.success
    assert [(r[2], r[3], r[4]) for r in quarantined(golden, "charges")] == [
        ("ch_unknown_invoice", "unknown_invoice", "invoice BO-209901-000001 has not been issued (not in audit.issued_invoices)"),
        ("ch_no_invoice", "unknown_invoice", "charge names no invoice (metadata.invoice_number is empty)"),
        ("ch_unknown_customer", "unknown_customer", "customer c999 is not in reference/customers.csv"),
        ("ch_float", "bad_schema", "amount is not a BIGINT: 12.5"),
    ]
    assert [(r[2], r[3]) for r in quarantined(golden, "refunds")] == [("re_orphan", "unknown_invoice")]
    assert [(r[2], r[3]) for r in quarantined(golden, "disputes")] == [("dp_orphan", "unknown_invoice")]
    assert golden.query("SELECT id FROM raw.charges") == [("ch_ok",)]
    assert golden.query("SELECT id, charge_id FROM raw.refunds") == [("re_ok", "ch_ok")]
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_charges_are_matched_against_issued_invoices_whatever_the_marts_hold(golden):
    """Finding 6: one rule on every close. A first close (nothing issued) accepts no charge naming an
    invoice; marts.invoices is not consulted; a charge is accepted by the first run after its invoice is issued."""
    write_jsonl(golden, "payments/charges/c.jsonl", [charge("ch_issued", invoice="BO-202609-000002"),
                                                     charge("ch_later", invoice="BO-202609-000003", customer="c003")])
    write_jsonl(golden, "payments/refunds/r.jsonl", [refund("re_later", "ch_later")])
    first = ingest(golden)  # the warehouse's very first close: audit.issued_invoices is empty
    assert first.success
    assert [(r[2], r[3]) for r in quarantined(golden, "charges")] == [
        ("ch_issued", "unknown_invoice"), ("ch_later", "unknown_invoice")]
    assert golden.query("SELECT count(*) FROM raw.charges") == [(0,)]

    issued(golden, "BO-202609-000002")
    con = duckdb.connect(str(golden.warehouse))  # drafts in the marts do not count as issued
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute("CREATE OR REPLACE TABLE marts.invoices AS SELECT 'BO-202609-000003' AS invoice_number")
    con.close()
    assert ingest(golden).success
    assert golden.query("SELECT id, invoice_number FROM raw.charges") == [("ch_issued", "BO-202609-000002")]
    assert [(r[2], r[3], r[4]) for r in quarantined(golden, "charges")] == [
        ("ch_later", "unknown_invoice", "invoice BO-202609-000003 has not been issued (not in audit.issued_invoices)")]
    assert [(r[2], r[3]) for r in quarantined(golden, "refunds")] == [("re_later", "unknown_invoice")]
    assert loads(golden, "charges") == {"payments/charges/c.jsonl": (2, 1, 0, 1)}

    issued(golden, "BO-202609-000003")  # re-examined on the next close: accepted, and so is its refund
    assert ingest(golden).success
    assert golden.query("SELECT id FROM raw.charges ORDER BY id") == [("ch_issued",), ("ch_later",)]
    assert golden.query("SELECT id, charge_id FROM raw.refunds") == [("re_later", "ch_later")]
    assert golden.query("SELECT count(*) FROM audit.quarantine") == [(0,)]
    assert loads(golden, "charges") == {"payments/charges/c.jsonl": (2, 2, 0, 0)}


def test_unreadable_file_fails_naming_it_the_rest_loads_and_the_rerun_is_idempotent(golden):
    write_jsonl(golden, "tickets/good.jsonl", [ticket(1)])
    (golden.landing / "tickets/broken.jsonl").write_bytes(b'{"id": 2}\n\xff\xfe\x00garbage\n')
    result = ingest(golden)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "tickets/broken.jsonl" in failure.event_specific_data.error.to_string()
    assert golden.query("SELECT id FROM raw.tickets") == [(1,)]
    assert golden.query("SELECT path FROM audit.landed_files") == [("tickets/good.jsonl",)]
    (golden.landing / "tickets/broken.jsonl").unlink()
    snapshot = lambda: (golden.query("SELECT * EXCLUDE (loaded_at) FROM audit.file_loads ORDER BY ALL"),  # noqa: E731
                        golden.query("SELECT path, sha256, first_seen_at FROM audit.landed_files ORDER BY ALL"),
                        golden.query("SELECT count(*) FROM audit.quarantine"), golden.query("SELECT * FROM raw.tickets"))
    assert ingest(golden).success
    first = snapshot()
    assert ingest(golden).success
    assert snapshot() == first


def test_staging_converts_cents_to_decimal_dollars_and_unix_seconds_to_utc(golden):
    issued(golden, "BO-202609-000002")
    write_jsonl(golden, "tickets/t.jsonl", [ticket(1)])
    write_jsonl(golden, "payments/charges/c.jsonl", [charge("ch_1", amount=1234)])
    write_jsonl(golden, "payments/refunds/r.jsonl", [refund("re_1", "ch_1", amount=5)])
    write_jsonl(golden, "payments/disputes/d.jsonl", [dispute("dp_1", "ch_1")])
    assert ingest(golden).success
    built = dbt(golden, "build", "--select", "staging.support", "staging.payments")
    assert built.returncode == 0, built.stdout[-3000:]
    assert golden.query("SELECT amount, created_at FROM staging.stg_payments__charges") == [
        (Decimal("12.34"), datetime.fromtimestamp(UNIX, timezone.utc).replace(tzinfo=None))]
    assert golden.query("SELECT amount FROM staging.stg_payments__refunds") == [(Decimal("0.05"),)]
    types = dict(golden.query(
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns WHERE table_schema = 'staging' "
        "AND table_name LIKE 'stg_payments__%' AND column_name IN ('amount', 'amount_refunded', 'created_at')"))
    assert types == {"stg_payments__charges.amount": "DECIMAL(18,2)", "stg_payments__charges.amount_refunded": "DECIMAL(18,2)",
                     "stg_payments__refunds.amount": "DECIMAL(18,2)", "stg_payments__disputes.amount": "DECIMAL(18,2)",
                     **{f"stg_payments__{t}.created_at": "TIMESTAMP" for t in ("charges", "refunds", "disputes")}}
    assert golden.query("SELECT ticket_id, channel, customer_id, tags, reply_time_business_minutes FROM staging.stg_support__tickets") == [
        (1, "chat", "c002", ["incorrect_invoice"], 7)]


def test_a_file_opening_with_a_utf8_byte_order_mark_keeps_its_first_record(golden):
    """Issue 14 item 9: the BOM that Windows tools put before a file's first line is not part of the record;
    it is stripped there only (a U+FEFF opening any other line is still that line's data, and bad JSON)."""
    bom = "\ufeff"
    issued(golden, "BO-202609-000002")
    (golden.landing / "tickets").mkdir(parents=True)
    (golden.landing / "tickets/bom.jsonl").write_text(
        bom + json.dumps(ticket(1)) + "\r\n" + json.dumps(ticket(2)) + "\r\n" + bom + json.dumps(ticket(3)) + "\r\n",
        encoding="utf-8")
    (golden.landing / "payments/charges").mkdir(parents=True)
    (golden.landing / "payments/charges/bom.jsonl").write_bytes(
        b"\xef\xbb\xbf" + json.dumps(charge("ch_1")).encode() + b"\n" + json.dumps(charge("ch_2")).encode() + b"\n")
    result = ingest(golden)
    assert result.success
    assert golden.query("SELECT id, row_number, subject FROM raw.tickets ORDER BY id") == [
        (1, 1, "Invoice question"), (2, 2, "Invoice question")]
    assert [(r[1], r[3], r[4]) for r in quarantined(golden, "tickets")] == [(3, "bad_json", "line 3 is not valid JSON")]
    assert golden.query("SELECT id, row_number, amount FROM raw.charges ORDER BY id") == [("ch_1", 1, 1234), ("ch_2", 2, 1234)]
    assert quarantined(golden, "charges") == []
    assert loads(golden, "tickets") == {"tickets/bom.jsonl": (3, 2, 0, 1)}
    assert loads(golden, "charges") == {"payments/charges/bom.jsonl": (2, 2, 0, 0)}
