"""Issued months are never rewritten; later changes are restated; months go in order; credits carry (issue 7 F1, F2, F5).

One chain on a copy of the closed golden October (module fixture, four Dagster runs):

1. `close 2026-12` is refused naming 2026-11 (nothing issued).
2. Late October usage lands for c002 (10 more droplet hours) and for a NEW customer
   c009 (10 droplet hours); snapshot-gib, used in October by c004 only, is corrected;
   a second transfer SKU is added to the price book; November lands one file a day.
3. `close 2026-11` restates October first (one run), then issues November (one run).
4. December lands one file a day; `close 2026-12` issues it (credits carried).
5. `close 2026-10` again: nothing new is restated.

Every expected figure below is computed by hand from the golden price book.
"""

from __future__ import annotations

import csv
import os
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from unittest import mock

import pytest

from tests.conftest import Workspace, copy_workspace

UTC = timezone.utc
OCTOBER = "DATE '2026-10-01'"
NEW_CUSTOMER = "c009,Late Co,late@late.example,FR,,,2026-10-01T00:00:00Z,,card\n"
# Sorted after transfer-out-gib, so it draws on the pool second (docs/contract/billing-rules.md §3, transfer).
SECOND_TRANSFER_SKU = "transfer-premium-gib,Bandwidth,Premium outbound transfer,transfer,GiB,0.02,,,,,2025-01-01,\n"
TOKENS_A_MONTH = Decimal("600000000")


def plain(text: str) -> str:
    """Terminal output without rich's table borders and line wrapping."""
    return " ".join(re.sub(r"[│┃┌┐└┘─┬┴├┤┼]", " ", text).split())


def row(event_id: str, customer: str, resource: str, sku: str, start: datetime, quantity: str | Decimal,
        hours: float = 1) -> dict:
    return {"event_id": event_id, "customer_id": customer, "resource_id": resource, "sku": sku, "region": "fra1",
            "start_time": start, "end_time": start + timedelta(hours=hours), "quantity": Decimal(quantity)}


def droplet_hours(prefix: str, customer: str, resource: str, sku: str, first: datetime, hours: int) -> list[dict]:
    return [row(f"{prefix}-{h}", customer, resource, sku, first + timedelta(hours=h), "1") for h in range(hours)]


def land_month(ws: Workspace, year: int, month: int, days: int, extra: dict[int, list[dict]]) -> None:
    """One file per UTC day (C12): c005's month of tokens on day 1, a zero-token record on the others."""
    for day in range(1, days + 1):
        start = datetime(year, month, day, tzinfo=UTC)
        tokens = TOKENS_A_MONTH if day == 1 else Decimal("0")
        rows = [row(f"{year}{month:02d}{day:02d}-tokens", "c005", "c005", "inference-tokens", start, tokens)]
        ws.write_usage(f"usage/dt={start:%Y-%m-%d}/part-0.parquet", rows + extra.get(day, []))


def set_price(ws: Workspace, sku: str, unit_price: str) -> None:
    path = ws.landing / "reference" / "price_book.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    (target,) = [r for r in rows if r["sku"] == sku]
    target["unit_price"] = unit_price
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)


def issued_october(ws: Workspace) -> tuple:
    return (ws.query(f"SELECT * FROM audit.issued_invoices WHERE billing_month = {OCTOBER} ORDER BY invoice_number"),
            ws.query(f"SELECT * FROM audit.issued_invoice_lines WHERE billing_month = {OCTOBER} ORDER BY ALL"),
            ws.query(f"SELECT * FROM audit.issued_credit_ledger WHERE billing_month = {OCTOBER} ORDER BY ALL"))


def restatement_sensor_tick(ws: Workspace):
    """One tick of restate_changed_months_sensor on the workspace (its landing zone and operational store)."""
    import dagster as dg

    from orchestration.restatement_sensor import restate_changed_months_sensor

    with mock.patch.dict(os.environ, ws.settings), ws.instance() as instance:
        return restate_changed_months_sensor(dg.build_sensor_context(instance=instance))


@pytest.fixture(scope="module")
def chain(closed_golden, tmp_path_factory) -> dict:
    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    ws = copy_workspace(closed_golden.ws, tmp_path_factory.mktemp("restatements") / "ws")
    out = {"ws": ws, "issued_before": issued_october(ws)}
    out["december_too_early"] = ws.close("2026-12")
    out["issued_months_after_refusal"] = ws.query("SELECT billing_month::VARCHAR FROM audit.issued_months")

    with (ws.landing / "reference" / "customers.csv").open("a") as handle:
        handle.write(NEW_CUSTOMER)
    with (ws.landing / "reference" / "price_book.csv").open("a") as handle:
        handle.write(SECOND_TRANSFER_SKU)
    set_price(ws, "snapshot-gib", "0.0001")
    late_start = datetime(2026, 10, 25, tzinfo=UTC)
    ws.write_usage("usage/dt=2026-10-25/part-9-late.parquet",
                   droplet_hours("late-c002", "c002", "r002", "droplet-s-2vcpu-4gb", late_start, 10)
                   + droplet_hours("late-c009", "c009", "r009", "droplet-s-1vcpu-1gb", late_start, 10))
    # c001 in November: r001 all month (720 h, pool 1000 GiB) and 700 + 500 GiB over two transfer SKUs.
    c001 = {day: droplet_hours(f"nov-c001-{day}", "c001", "r001", "droplet-s-1vcpu-1gb",
                               datetime(2026, 11, day, tzinfo=UTC), 24) for day in range(1, 31)}
    c001[2] += [row("nov-c001-out", "c001", "c001", "transfer-out-gib", datetime(2026, 11, 2, 5, tzinfo=UTC), "700"),
                row("nov-c001-premium", "c001", "c001", "transfer-premium-gib", datetime(2026, 11, 2, 6, tzinfo=UTC),
                    "500")]
    land_month(ws, 2026, 11, 30, c001)
    out["sensor_before_november"] = restatement_sensor_tick(ws)
    out["november"] = ws.close("2026-11")
    out["sensor_after_november"] = restatement_sensor_tick(ws)
    out["runs_after_november"] = ws.runs()
    out["issued_after_november"] = issued_october(ws)
    out["restatements_after_november"] = ws.query(
        "SELECT customer_id, invoice_number, issued_total, recomputed_total, difference, cause, run_id "
        f"FROM audit.restatements WHERE billing_month = {OCTOBER} ORDER BY customer_id")

    land_month(ws, 2026, 12, 31, {})
    out["december"] = ws.close("2026-12")
    out["ledger_before_reclose"] = ws.query("SELECT * FROM marts.credit_ledger ORDER BY ALL")
    out["october_again"] = ws.close("2026-10")
    return out


def test_december_before_november_is_refused_naming_november(chain):
    result = chain["december_too_early"]
    assert result.returncode == 1
    assert ("close 2026-12 refused: 2026-11 is not issued: months are issued in order, close 2026-11 first; "
            "nothing was issued") in plain(result.stderr)
    assert chain["issued_months_after_refusal"] == [("2026-10-01",)]


def test_closing_november_restates_october_in_its_own_run(chain):
    result = chain["november"]
    assert result.returncode == 0, result.stderr[-3000:]
    # Two runs from one command: October (restated), then November (issued).
    runs = chain["runs_after_november"]
    assert [status for _, status in runs[-2:]] == ["SUCCESS", "SUCCESS"]
    october_run = runs[-2][0]
    assert {r[6] for r in chain["restatements_after_november"]} == {october_run}
    stdout = plain(result.stdout)
    # The command names the month asked for, the month it restates first and why (the late file), in order.
    assert "close 2026-11: 1 earlier issued month(s) to restate first, then 2026-11" in stdout
    assert "restate 2026-10 (no options, as it was issued): 1 usage file(s) landed since it was issued: usage/dt=2026-10-" in stdout
    assert "restating 2026-10 succeeded: restated; now close 2026-11" in stdout
    assert "close 2026-11 succeeded: issued" in stdout
    assert stdout.index("restating 2026-10 succeeded") < stdout.index("close 2026-11 succeeded")


def test_the_restatement_sensor_requests_october_once_then_nothing(chain):
    (request,) = chain["sensor_before_november"]
    assert request.partition_key == "2026-10-01"
    assert request.run_key.startswith("restate-2026-10-") and request.tags == {"billops/trigger": "restatement_sensor"}
    # The same planner as the command: after November's close restated October, nothing is left to do.
    assert "none with changed inputs" in chain["sensor_after_november"].skip_message


def test_issued_october_is_byte_for_byte_unchanged(chain):
    assert chain["issued_after_november"] == chain["issued_before"]
    assert chain["ws"].query("SELECT invoice_number, customer_id FROM marts.invoices "
                             f"WHERE billing_month = {OCTOBER} ORDER BY 1")[:2] == [
        ("BO-202610-000001", "c001"), ("BO-202610-000002", "c002")]
    assert issued_october(chain["ws"]) == chain["issued_before"]


def test_restatement_rows_with_causes_and_hand_computed_differences(chain):
    rows = [r[:6] for r in chain["restatements_after_november"]]
    assert rows == [
        # c002: droplet 252.5 h → 262.5 h × 0.03571 = 9.373875 → 9.37 (was 9.02); + volume 3.76 = 13.13;
        # VAT 19 % of 13.13 = 2.4947 → 2.49; total 15.62 against 15.21 issued.
        ("c002", "BO-202610-000002", Decimal("15.21"), Decimal("15.62"), Decimal("0.41"), "late_usage"),
        # c004: snapshots 15,000 GiB-h × 0.0001 = 1.50 (was × 0.00008929 = 1.34): subtotal 3.08, the $1 goodwill
        # grant applied, no US-CA tax row → total 2.08 against 1.92.
        ("c004", "BO-202610-000004", Decimal("1.92"), Decimal("2.08"), Decimal("0.16"), "price_correction"),
        # c009 (new, no invoice): 10 h × 0.00893 = 0.0893 → 0.09, FR has no tax row.
        ("c009", None, Decimal("0.00"), Decimal("0.09"), Decimal("0.09"), "late_usage"),
    ]
    stdout = plain(chain["november"].stdout)
    assert "restated 3 customers differ from what was issued, 3 new restatement rows" in stdout
    assert "net difference (USD) 0.66" in stdout


def test_reclosing_with_nothing_new_adds_no_restatement_and_keeps_credits(chain):
    result = chain["october_again"]
    assert result.returncode == 0, result.stderr[-3000:]
    ws = chain["ws"]
    assert ws.query(f"SELECT count(*) FROM audit.restatements WHERE billing_month = {OCTOBER}") == [(3,)]
    assert "3 customers differ from what was issued, 0 new restatement rows" in plain(result.stdout)
    assert issued_october(ws) == chain["issued_before"]
    assert ws.query("SELECT * FROM marts.credit_ledger ORDER BY ALL") == chain["ledger_before_reclose"]


def test_two_transfer_skus_draw_on_one_pool_in_sku_order(chain):
    lines = chain["ws"].query(
        "SELECT sku, resource_id, quantity, unit_price, amount FROM marts.invoice_lines "
        "WHERE billing_month = DATE '2026-11-01' AND customer_id = 'c001' ORDER BY line_number")
    assert lines == [
        # Pool: r001 ran 720 h ≥ cap 672 h → the full 1,000 GiB. transfer-out-gib draws 700 (no overage),
        # transfer-premium-gib draws the remaining 300 of its 500: 200 GiB × 0.02 = 4.00.
        ("transfer-out-gib", None, Decimal("0"), Decimal("0.01"), Decimal("0.00")),
        ("transfer-premium-gib", None, Decimal("200"), Decimal("0.02"), Decimal("4.00")),
        # 720 h × 0.00893 = 6.43, capped at 6.00.
        ("droplet-s-1vcpu-1gb", "r001", Decimal("720"), Decimal("0.00893"), Decimal("6.00")),
    ]


def test_credit_balance_carries_across_months(chain):
    assert chain["december"].returncode == 0, chain["december"].stderr[-3000:]
    ws = chain["ws"]
    ledger = ws.query(
        "SELECT billing_month::VARCHAR, opening_balance, applied, closing_balance FROM marts.credit_ledger "
        "WHERE grant_id = 'g004' ORDER BY billing_month")
    # c005 holds a $100 grant; October uses $0.28 of it (golden case).
    # 600M tokens: 1M × 2e-7 + 599M × 1.5e-7 = 0.20 + 89.85 = 90.05 a month.
    assert ledger == [
        ("2026-10-01", Decimal("100.00"), Decimal("0.28"), Decimal("99.72")),
        ("2026-11-01", Decimal("99.72"), Decimal("90.05"), Decimal("9.67")),
        ("2026-12-01", Decimal("9.67"), Decimal("9.67"), Decimal("0.00")),
    ]
    december = ws.query(
        "SELECT invoice_number, subtotal, credits_applied, taxable_amount, tax_amount, total FROM marts.invoices "
        "WHERE billing_month = DATE '2026-12-01'")
    # 90.05 − 9.67 = 80.38; GST 10 % = 8.038 → 8.04.
    assert december == [("BO-202612-000001", Decimal("90.05"), Decimal("9.67"), Decimal("80.38"),
                         Decimal("8.04"), Decimal("88.42"))]
    # g001 (c001's $5, used up in October) offers nothing in November: c001 pays its 10.00 in full.
    assert ws.query("SELECT credits_applied, total FROM marts.invoices WHERE billing_month = DATE '2026-11-01' "
                    "AND customer_id = 'c001'") == [(Decimal("0.00"), Decimal("10.00"))]
    # Expired grants never enter a later month; c007's B expired 2026-10-31, A on 2026-11-30.
    assert ws.query("SELECT grant_id FROM marts.credit_ledger WHERE billing_month = DATE '2026-12-01' ORDER BY 1") == [
        ("g001",), ("g003",), ("g004",), ("g007",)]
    assert ws.query("SELECT billing_month::VARCHAR, invoices FROM audit.issued_months ORDER BY 1") == [
        ("2026-10-01", 7), ("2026-11-01", 2), ("2026-12-01", 1)]
