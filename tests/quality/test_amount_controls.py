"""Issue 14 item 8, overflow is a named failure: C14_amounts_in_range (docs/contract/controls.md).

Found in review: three valid records of 999999999999.999999 units of one resource stopped the close
with dbt's `Casting value "2999999999999.999997" to type DECIMAL(18,6) failed`. Rating now sums
and multiplies wide; the drafts narrow to the published types (NULL where a value does not fit),
and the blocking check C14 names the customer, SKU, resource and records; nothing is issued. The
crafted landings are the golden October plus a few records, closed through the real command.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import dagster as dg

from tests.conftest import GOLDEN, Workspace
from tests.quality.test_rerating import PRICES, TAX_RATES, customer, price, rate

C14 = "C14_amounts_in_range"
DB_ERRORS = ("Casting value", "Conversion Error", "Out of Range Error", "Traceback", "ArrowInvalid")
# A SKU priced so that an in-range quantity has an amount beyond DECIMAL(18,2) (max 9999999999999999.99).
GPU_ROW = "gpu-cluster-hour,GPU,GPU cluster hour,unit,hour,99999.99,,,,,2025-01-01,\n"


def _record(event_id: str, customer: str, resource: str, sku: str, hour: int, quantity: str) -> dict:
    start = datetime(2026, 10, 20, tzinfo=timezone.utc) + timedelta(hours=hour)
    return dict(event_id=event_id, customer_id=customer, resource_id=resource, sku=sku, region="nyc3",
                start_time=start, end_time=start + timedelta(minutes=30), quantity=Decimal(quantity))


def _landing(tmp_path, records: list[dict], extra_price_row: str = "") -> Workspace:
    ws = Workspace.at(tmp_path)
    shutil.copytree(GOLDEN / "landing", ws.landing)
    if extra_price_row:
        with (ws.landing / "reference" / "price_book.csv").open("a") as book:
            book.write(extra_price_row)
    ws.write_usage("usage/dt=2026-10-20/part-9-large.parquet", records)
    return ws


def _said(result) -> str:
    """The command's output with Rich's line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


def _c14(ws: Workspace):
    (run_id, _), = ws.runs()
    with ws.instance() as instance:
        events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        (evaluation,) = [e.dagster_event.event_specific_data for e in events
                         if e.dagster_event.event_specific_data.check_name == C14]
    return evaluation


def _assert_nothing_issued(ws: Workspace, said: str) -> None:
    for table in ("issued_invoices", "issued_invoice_lines", "issued_months"):
        assert ws.query(f"SELECT count(*) FROM audit.{table}") == [(0,)], table
    assert "nothing: the month was not issued" in said
    for error in DB_ERRORS:
        assert error not in said, error


def test_three_records_whose_sum_leaves_decimal_18_6_fail_c14_naming_them(tmp_path):
    ws = _landing(tmp_path, [_record(f"e900000{i}", "c002", "v999", "volume-gib", i, "999999999999.999999")
                             for i in (1, 2, 3)])
    result = ws.close("2026-10")
    said = _said(result)
    assert result.returncode == 1, said[-3000:]
    assert (f"{C14} on intermediate/int_invoice_lines_drafted: {C14}: 1 of 25 failed. out of range: "
            "customer c002, SKU volume-gib, resource v999 (line 4 of BO-202610-000002): "
            "quantity 2999999999999.999997 leaves DECIMAL(18,6); 3 record(s): e9000001, e9000002, e9000003") in said
    _assert_nothing_issued(ws, said)
    # The draft line carries no quantity (it does not fit) but its amount, which does:
    # 2999999999999.999997 GiB-hours × 0.00014881 = 446429999.99999999955357 → 446430000.00.
    assert ws.query("SELECT quantity, amount FROM intermediate.int_invoice_lines_drafted "
                    "WHERE resource_id = 'v999'") == [(None, Decimal("446430000.00"))]
    c14 = _c14(ws)
    assert not c14.passed and c14.severity == dg.AssetCheckSeverity.ERROR
    metadata = {k: v.value for k, v in c14.metadata.items()}
    assert (metadata["rows_checked"], metadata["failures"], metadata["lines_out_of_range"],
            metadata["invoices_out_of_range"], metadata["amount_at_stake"]) == (25, 1, 1, 0, "531251715.21")
    assert metadata["offending_rows"] == [{
        "level": "line", "customer_id": "c002", "invoice_number": "BO-202610-000002", "line_number": 4,
        "sku": "volume-gib", "resource_id": "v999",
        "out_of_range": "quantity 2999999999999.999997 leaves DECIMAL(18,6)",
        "records": 3, "event_ids": ["e9000001", "e9000002", "e9000003"]}]
    # C2 and C3 judge the same month without crashing: the line's quantity is not the ingested one.
    assert "C3_usage_completely_rated on intermediate/int_invoice_lines_drafted: C3_usage_completely_rated: 1 of 18 failed" in said
    assert "C2 failed: 0 invoice(s) and 1 line(s) differ from the Python re-rating (totals off by $0.00)" in said


def test_a_line_amount_and_an_invoice_total_beyond_decimal_18_2_fail_c14(tmp_path):
    records = [_record(f"e910000{i}", "c003", "g003", "gpu-cluster-hour", i, "100000000000") for i in (1, 2, 3)]
    records += [_record("e9200001", "c004", "g004a", "gpu-cluster-hour", 4, "60000000000"),
                _record("e9200002", "c004", "g004b", "gpu-cluster-hour", 5, "60000000000")]
    ws = _landing(tmp_path, records, GPU_ROW)
    result = ws.close("2026-10")
    said = _said(result)
    assert result.returncode == 1, said[-3000:]
    # c003: 300000000000 h × 99999.99 = 29999997000000000.00, beyond DECIMAL(18,2); so is its invoice
    # (+ 276.97 of other lines; tax 8.875% = 2662499733750024.58 fits and is not named).
    assert (f"{C14}: 3 of 27 failed. out of range: "
            "customer c003, SKU gpu-cluster-hour, resource g003 (line 4 of BO-202610-000003): "
            "amount 29999997000000000.00 leaves DECIMAL(18,2); 3 record(s): e9100001, e9100002, e9100003; "
            "customer c003, SKUs gpu-cluster-hour, droplet-g-8vcpu-32gb, support-developer, transfer-out-gib, "
            "functions-gib-s (invoice BO-202610-000003): subtotal 29999997000000276.97 leaves DECIMAL(18,2); "
            "taxable_amount 29999997000000276.97 leaves DECIMAL(18,2); total 32662496733750301.55 leaves "
            "DECIMAL(18,2); 781 record(s): e9100001, e9100002, e9100003, ") in said
    # c004: two lines of 5999999400000000.00 each fit; their invoice (+ 2.92 − 1.00 credit, no tax) does not.
    assert ("customer c004, SKUs gpu-cluster-hour, snapshot-gib, droplet-s-1vcpu-1gb, transfer-out-gib, "
            "backup-weekly-s-1vcpu-1gb (invoice BO-202610-000004): subtotal 11999998800000002.92 leaves DECIMAL(18,2); "
            "taxable_amount 11999998800000001.92 leaves DECIMAL(18,2); total 11999998800000001.92 leaves "
            "DECIMAL(18,2); 503 record(s): e9200001, e9200002, ") in said
    _assert_nothing_issued(ws, said)
    assert ws.query("SELECT customer_id, count(*) FILTER (WHERE amount IS NULL), count(*) FILTER (WHERE quantity IS NULL) "
                    "FROM intermediate.int_invoice_lines_drafted WHERE sku = 'gpu-cluster-hour' GROUP BY 1 ORDER BY 1"
                    ) == [("c003", 1, 0), ("c004", 0, 0)]
    assert ws.query("SELECT customer_id, subtotal, tax_amount, total FROM intermediate.int_invoices_drafted "
                    "WHERE customer_id IN ('c003', 'c004') ORDER BY 1") == [
        ("c003", None, Decimal("2662499733750024.58"), None), ("c004", None, Decimal("0.00"), None)]
    metadata = {k: v.value for k, v in _c14(ws).metadata.items()}
    assert (metadata["rows_checked"], metadata["failures"], metadata["lines_out_of_range"],
            metadata["invoices_out_of_range"]) == (20 + 7, 3, 1, 2)
    assert [(r["level"], r["customer_id"], r["records"], len(r["event_ids"]), r["event_ids"][:3])
            for r in metadata["offending_rows"]] == [
        ("line", "c003", 3, 3, ["e9100001", "e9100002", "e9100003"]),
        ("invoice", "c003", 781, 10, ["e9100001", "e9100002", "e9100003"]),
        ("invoice", "c004", 503, 10, ["e9200001", "e9200002", "e0002542"])]
    # amount at stake: the two invoices' totals, each once.
    assert metadata["amount_at_stake"] == "44662495533750303.47"


def test_c14_passes_on_the_golden_close(closed_golden):
    with closed_golden.ws.instance() as instance:
        events = instance.all_logs(closed_golden.close_run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        (c14,) = [e.dagster_event.event_specific_data for e in events
                  if e.dagster_event.event_specific_data.check_name == C14]
    assert c14.passed
    metadata = {k: v.value for k, v in c14.metadata.items()}
    assert (metadata["rows_checked"], metadata["failures"], metadata["offending_rows"]) == (17 + 7, 0, [])


def test_c2_rerates_values_beyond_the_published_types_exactly():
    """C2's Python side (quality/rerating.py) on the same kind of month: it used to cast a day's quantity to
    DECIMAL(18,6) (ArrowInvalid) and to take tax on int64 cents × rate (which wraps around past 2^63)."""
    # One day of 2999999999999.999997 GiB-h of volume at 0.0001: 299999999.9999999997 → 300000000.00.
    # 300000000000 GPU hours at 99999.99 = 29999997000000000.00; DE 19% VAT: 5699999430000000.00.
    people = [customer("c1"), customer("d2", "DE")]
    invoices, lines = rate([("c1", "v1", "volume", 1, 1, "2999999999999.999997"), ("d2", "g2", "gpu", 1, 1, "300000000000")],
                           customers=people, prices=[*PRICES, price("gpu", "unit", "99999.99", "GPU")],
                           tax_rates=TAX_RATES)
    assert lines == [("volume", "v1", Decimal("2999999999999.999997"), Decimal("300000000.00")),
                     ("gpu", "g2", Decimal("300000000000"), Decimal("29999997000000000.00"))]
    assert [(i["customer_id"], i["subtotal"], i["tax_amount"], i["total"]) for i in invoices] == [
        ("c1", Decimal("300000000.00"), Decimal("0.00"), Decimal("300000000.00")),
        ("d2", Decimal("29999997000000000.00"), Decimal("5699999430000000.00"), Decimal("35699996430000000.00"))]
