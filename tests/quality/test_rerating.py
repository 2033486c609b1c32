"""Control C2 (quality/rerating.py): the Python re-rating reproduces the golden month, follows each
rule of docs/contract/billing-rules.md on crafted cases computed by hand, and the check fails on a one-cent draft."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from assets.reference import reference_snapshots
from assets.usage import usage
from quality.rerating import C2_CHECK_NAME, apply_credits, independent_rerating, load_openings, rerate_month
from tests.conftest import GOLDEN, as_value, read_expected
from warehouse.resource import WarehouseResource
from warehouse.schema import bootstrap

OCTOBER = date(2026, 10, 1)


# --- the golden month -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def golden_warehouse(tmp_path_factory) -> str:
    """The golden landing ingested by the real assets: raw.* snapshots and raw.usage_month (re-delivery dropped)."""
    path = str(tmp_path_factory.mktemp("c2") / "warehouse.duckdb")
    warehouse = WarehouseResource(path=path, landing=str(GOLDEN / "landing"))
    result = dg.materialize([reference_snapshots, usage], partition_key="2026-10-01", resources={"warehouse": warehouse})
    assert result.success
    return path


def assert_rows_equal(table: pa.Table, expected_file: str) -> None:
    expected = read_expected(expected_file)
    rows = table.to_pylist()
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        for column, text in want.items():
            value = got[column]
            value = value.isoformat() if hasattr(value, "isoformat") else value
            assert as_value(value) == as_value(text), f"{want.get('invoice_number')} {column}: {value!r} != {text!r}"


def test_rerates_the_golden_month_exactly(golden_warehouse):
    from quality.rerating import rerate_from_warehouse

    with duckdb.connect(golden_warehouse) as con:
        invoices, lines = rerate_from_warehouse(con, OCTOBER)
    assert_rows_equal(invoices, "invoices.csv")
    assert_rows_equal(lines, "invoice_lines.csv")
    assert set(invoices["status"].to_pylist()) == {"draft"}
    assert lines["description"][1].as_py() == "Basic Droplet 1 vCPU 1 GiB"


def drafts_from_golden(con: duckdb.DuckDBPyConnection) -> None:
    """intermediate.int_invoices_drafted / int_invoice_lines_drafted as the dbt models would leave them."""
    con.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
    con.execute(f"""
        CREATE OR REPLACE TABLE intermediate.int_invoices_drafted AS
        SELECT invoice_number, customer_id, billing_month::DATE AS billing_month, issue_date::DATE AS issue_date,
               due_date::DATE AS due_date, currency, subtotal::DECIMAL(18,2) AS subtotal,
               credits_applied::DECIMAL(18,2) AS credits_applied, taxable_amount::DECIMAL(18,2) AS taxable_amount,
               tax_name, tax_rate::DECIMAL(9,6) AS tax_rate, tax_amount::DECIMAL(18,2) AS tax_amount,
               total::DECIMAL(18,2) AS total, reverse_charge::BOOLEAN AS reverse_charge, 'draft' AS status
        FROM read_csv('{GOLDEN / 'expected' / 'invoices.csv'}', all_varchar = true)""")
    con.execute(f"""
        CREATE OR REPLACE TABLE intermediate.int_invoice_lines_drafted AS
        SELECT invoice_number, line_number::INTEGER AS line_number, customer_id, DATE '2026-10-01' AS billing_month,
               sku, product, nullif(resource_id, '') AS resource_id, NULL::VARCHAR AS description,
               quantity::DECIMAL(18,6) AS quantity, unit, nullif(unit_price, '')::DECIMAL(18,8) AS unit_price,
               amount::DECIMAL(18,2) AS amount
        FROM read_csv('{GOLDEN / 'expected' / 'invoice_lines.csv'}', all_varchar = true)""")


def test_check_passes_on_golden_drafts_and_fails_on_one_cent(golden_warehouse):
    with duckdb.connect(golden_warehouse) as con:
        drafts_from_golden(con)
        passed = independent_rerating(con, OCTOBER)
        con.execute("UPDATE intermediate.int_invoice_lines_drafted SET amount = amount + 0.01 "
                    "WHERE invoice_number = 'BO-202610-000003' AND line_number = 3")
        con.execute("UPDATE intermediate.int_invoices_drafted SET subtotal = subtotal + 0.01, "
                    "taxable_amount = taxable_amount + 0.01, total = total + 0.01 WHERE customer_id = 'c003'")
        failed = independent_rerating(con, OCTOBER)
    assert passed.check_name == failed.check_name == C2_CHECK_NAME
    assert passed.passed and not failed.passed
    assert passed.severity == failed.severity == dg.AssetCheckSeverity.ERROR
    assert passed.metadata.keys() == failed.metadata.keys()
    meta = {k: v.value for k, v in passed.metadata.items()}
    assert (meta["invoices_checked"], meta["lines_checked"], meta["invoices_differing"], meta["lines_differing"],
            meta["amount_difference"], meta["offending_rows"]) == (7, 17, 0, 0, 0.0, [])
    meta = {k: v.value for k, v in failed.metadata.items()}
    assert (meta["invoices_differing"], meta["lines_differing"], meta["amount_difference"]) == (1, 1, 0.01)
    assert {"invoice_number": "BO-202610-000003", "column": "total", "expected": "301.55", "got": "301.56"} \
        in meta["offending_rows"]
    assert {"invoice_number": "BO-202610-000003", "column": "amount", "expected": "2.96", "got": "2.97"} \
        in meta["offending_rows"]


def test_check_fails_when_a_draft_invoice_is_missing(golden_warehouse):
    with duckdb.connect(golden_warehouse) as con:
        drafts_from_golden(con)
        con.execute("DELETE FROM intermediate.int_invoices_drafted WHERE customer_id = 'c006'")
        result = independent_rerating(con, OCTOBER)
    meta = {k: v.value for k, v in result.metadata.items()}
    assert not result.passed
    assert (meta["invoices_differing"], meta["lines_differing"], meta["amount_difference"]) == (1, 0, 11.15)
    assert meta["offending_rows"][0] == {"invoice_number": "BO-202610-000006", "column": "invoice_number",
                                         "expected": "BO-202610-000006", "got": None}


# --- crafted cases ------------------------------------------------------------------------------------

def price(sku, model, unit_price="", product=None, cap="", cap_hours="", included="", tiers="",
          effective_from="2025-01-01", effective_to=""):
    return {"sku": sku, "product": product or sku.split("-")[0], "description": sku, "model": model, "unit": "u",
            "unit_price": unit_price, "monthly_cap": cap, "cap_hours": cap_hours, "included_transfer_gib": included,
            "tiers": tiers, "effective_from": effective_from, "effective_to": effective_to}


PRICES = [
    price("droplet-small", "hourly_capped", "0.00893", "Droplets", "6.00", "672", "1000"),
    price("droplet-big", "hourly_capped", "0.03571", "Droplets", "24.00", "672", "4000"),
    price("droplet-cheap", "hourly_capped", "0.01", "Droplets", "6.00", "672", ""),
    price("transfer-a", "transfer", "0.01", "Bandwidth"),
    price("transfer-b", "transfer", "0.02", "Bandwidth"),
    price("volume", "unit", "0.0001", "Volumes"),
    price("functions", "graduated", "", "Functions",
          tiers='[{"up_to": 1000, "unit_price": 0}, {"up_to": 5000, "unit_price": 0.001}, '
                '{"up_to": null, "unit_price": 5e-4}]'),
    price("support", "flat_monthly", "24.00", "Support"),
]


def customer(customer_id, country="XX", region="", tax_id=""):
    return {"customer_id": customer_id, "name": customer_id, "email": "", "country": country, "region": region,
            "tax_id": tax_id, "created_at": "2020-01-01T00:00:00Z", "closed_at": "", "payment_method": "card"}


def daily(rows) -> pa.Table:
    """usage_daily from (customer, resource, sku, first day, days, quantity per day): one row per day,
    each day's last record at 23:00."""
    out = []
    for customer_id, resource_id, sku, first, days, per_day in rows:
        for d in range(days):
            when = OCTOBER + timedelta(days=first - 1 + d)
            out.append({"customer_id": customer_id, "resource_id": resource_id, "sku": sku, "usage_date": when,
                        "quantity": Decimal(per_day), "last_start_time": datetime.combine(when, datetime.min.time())
                        + timedelta(hours=23)})
    return pa.Table.from_pylist(out, schema=pa.schema([
        ("customer_id", pa.string()), ("resource_id", pa.string()), ("sku", pa.string()), ("usage_date", pa.date32()),
        ("quantity", pa.decimal128(38, 6)), ("last_start_time", pa.timestamp("us"))]))


def rate(rows, customers=None, prices=PRICES, tax_rates=(), grants=(), openings=None):
    customers = customers or [customer(c) for c in sorted({r[0] for r in rows})]
    invoices, lines = rerate_month(daily(rows), customers, prices, list(tax_rates), list(grants), openings or {},
                                   OCTOBER)
    return invoices.to_pylist(), [(r["sku"], r["resource_id"], r["quantity"], r["amount"]) for r in lines.to_pylist()]


def test_two_transfer_skus_draw_one_pool_in_sku_order():
    # droplet-small 24 h × 31 = 744 h ≥ cap 672 → allowance 1000 GiB, the whole pool.
    # transfer-a (first in sku order) uses 600 of it → 0 overage; transfer-b gets the 400 left:
    # 700 - 400 = 300 GiB × 0.02 = 6.00. The droplet caps at 6.00 (744 × 0.00893 = 6.64).
    _, lines = rate([("c1", "r1", "droplet-small", 1, 31, "24"), ("c1", "c1", "transfer-b", 1, 7, "100"),
                     ("c1", "c1", "transfer-a", 1, 6, "100")])
    assert lines == [("transfer-a", None, Decimal("0"), Decimal("0.00")),
                     ("transfer-b", None, Decimal("300"), Decimal("6.00")),
                     ("droplet-small", "r1", Decimal("744"), Decimal("6.00"))]


def test_a_resized_resource_is_one_resource_per_sku():
    # r2: droplet-small 20 h/day on days 1-5 = 100 h → 0.893 → 0.89; then droplet-big 20 h/day on days 6-15
    # = 200 h → 7.142 → 7.14. Allowances: 1000 × 100/672 = 148.8095238 → 148.809524 and
    # 4000 × 200/672 = 1190.4761905 → 1190.476190; pool 1339.285714. Transfer 1400 → overage 60.714286
    # × 0.01 = 0.60714286 → 0.61.
    invoices, lines = rate([("c2", "r2", "droplet-small", 1, 5, "20"), ("c2", "r2", "droplet-big", 6, 10, "20"),
                            ("c2", "c2", "transfer-a", 1, 14, "100")])
    assert lines == [("transfer-a", None, Decimal("60.714286"), Decimal("0.61")),
                     ("droplet-big", "r2", Decimal("200"), Decimal("7.14")),
                     ("droplet-small", "r2", Decimal("100"), Decimal("0.89"))]
    assert invoices[0]["subtotal"] == Decimal("8.64")


def test_hourly_cap_reached_and_not_reached():
    # r3: 700 h × 0.01 = 7.00 > cap 6.00 → 6.00. r4: 599.5 h × 0.01 = 5.995 → 6.00 (half up, not capped
    # below). r5: 100 h → 1.00. No included transfer on this SKU.
    _, lines = rate([("c3", "r3", "droplet-cheap", 1, 28, "25"), ("c3", "r4", "droplet-cheap", 1, 11, "54.5"),
                     ("c3", "r5", "droplet-cheap", 1, 4, "25")])
    assert [(r, a) for _, r, _, a in lines] == [("r3", Decimal("6.00")), ("r4", Decimal("6.00")),
                                                ("r5", Decimal("1.00"))]


def test_price_change_mid_month_rates_each_day_at_its_row_and_caps_at_the_last_row():
    # 0.02/h until the 16th (cap 20.00), 0.01/h from then (cap 5.00): 15 × 24 × 0.02 = 7.20 plus
    # 16 × 24 × 0.01 = 3.84 → 11.04, capped at the last row's 5.00; the line shows the last price 0.01.
    prices = [price("dyn", "hourly_capped", "0.02", "Droplets", "20.00", "672", "", effective_to="2026-10-16"),
              price("dyn", "hourly_capped", "0.01", "Droplets", "5.00", "672", "", effective_from="2026-10-16")]
    invoices, lines = rerate_month(daily([("c9", "r9", "dyn", 1, 31, "24")]), [customer("c9")], prices, [], [], {},
                                   OCTOBER)
    assert (lines["unit_price"][0].as_py(), lines["amount"][0].as_py()) == (Decimal("0.01"), Decimal("5.00"))


def test_graduated_tiers_across_a_boundary():
    # c4: 6000 units: 1000 free + 4000 × 0.001 = 4.00 + 1000 × 0.0005 = 0.50 → 4.50.
    # c5: 1505 units: 1000 free + 505 × 0.001 = 0.505 → 0.51 (half up). The line has no unit price.
    invoices, lines = rate([("c4", "c4", "functions", 1, 3, "2000"), ("c5", "c5", "functions", 1, 1, "1505")])
    assert lines == [("functions", None, Decimal("6000"), Decimal("4.50")),
                     ("functions", None, Decimal("1505"), Decimal("0.51"))]
    assert [i["invoice_number"] for i in invoices] == ["BO-202610-000001", "BO-202610-000002"]


def test_flat_monthly_prorates_by_distinct_active_days():
    # Days 20-26 = 7 distinct dates (two resources on the 20th still count once): 24.00 × 7 / 31 = 5.4193…
    # → 5.42.
    _, lines = rate([("c6", "c6", "support", 20, 7, "1"), ("c6", "other", "support", 20, 1, "1")])
    assert lines == [("support", None, Decimal("7"), Decimal("5.42"))]


def grant(grant_id, customer_id, amount, expires_at, granted_at="2026-01-01T00:00:00Z"):
    return {"grant_id": grant_id, "customer_id": customer_id, "amount": amount, "kind": "promo",
            "granted_at": granted_at, "expires_at": expires_at, "reason": ""}


def test_credits_in_expiry_order_with_an_opening_balance_from_the_issued_ledger(tmp_path):
    # Ledger: gA closed August at 8.00 and September at 4.00 → opens October at 4.00 (the latest earlier
    # month); its October row (1.00) is not earlier and is ignored. gB has no row → full 5.00.
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    bootstrap(con)
    con.executemany("INSERT INTO audit.issued_credit_ledger VALUES (?, ?, 'c7', 20, 0, 0, ?, now(), 'r')",
                    [(date(2026, 8, 1), "gA", Decimal("8.00")), (date(2026, 9, 1), "gA", Decimal("4.00")),
                     (date(2026, 10, 1), "gA", Decimal("1.00"))])
    openings = load_openings(con, OCTOBER)
    assert openings == {"gA": Decimal("4.00")}
    grants = [grant("gC", "c7", "3.00", ""),                                # never expires: last
              grant("gA", "c7", "20.00", "2027-01-01T00:00:00Z"),           # second
              grant("gB", "c7", "5.00", "2026-12-01T00:00:00Z"),            # soonest: first
              grant("gOld", "c7", "9.00", "2026-10-01T00:00:00Z"),          # expired at the month's start
              grant("gLate", "c7", "9.00", "", "2026-11-01T00:00:00Z")]     # granted after the month
    # subtotal: volume 100,000 GiB-h × 0.0001 = 10.00 → gB 5.00, gA 4.00, gC 1.00 of 3.00.
    assert apply_credits({"c7": 1000}, grants, openings, OCTOBER, date(2026, 11, 1)) == (
        {"c7": 1000}, [("gB", 500, 500), ("gA", 400, 400), ("gC", 300, 100)])
    invoices, _ = rate([("c7", "v7", "volume", 1, 10, "10000")], grants=grants, openings=openings)
    assert (invoices[0]["subtotal"], invoices[0]["credits_applied"], invoices[0]["total"]) == (
        Decimal("10.00"), Decimal("10.00"), Decimal("0.00"))
    # 20 days: 20.00 of usage against 12.00 of balances → credits 12.00, total 8.00.
    invoices, _ = rate([("c7", "v7", "volume", 1, 20, "10000")], grants=grants, openings=openings)
    assert (invoices[0]["credits_applied"], invoices[0]["total"]) == (Decimal("12.00"), Decimal("8.00"))


TAX_RATES = [
    {"country": "DE", "region": "", "tax_name": "VAT", "rate": "0.19", "reverse_charge": "true",
     "effective_from": "2020-01-01", "effective_to": ""},
    {"country": "US", "region": "", "tax_name": "Federal", "rate": "0.05", "reverse_charge": "false",
     "effective_from": "2020-01-01", "effective_to": ""},
    {"country": "US", "region": "NY", "tax_name": "Sales tax", "rate": "0.08", "reverse_charge": "false",
     "effective_from": "2020-01-01", "effective_to": "2026-11-01"},
    {"country": "US", "region": "NY", "tax_name": "Sales tax", "rate": "0.08875", "reverse_charge": "false",
     "effective_from": "2026-11-01", "effective_to": ""},
]


def test_tax_reverse_charge_and_region_rows():
    # Every customer: volume 100,000 GiB-h → 10.00.
    # DE with a VAT id: reverse charge, rate 0, VAT kept. DE without: 10.00 × 0.19 = 1.90.
    # US-NY: the region row in effect on the issue date 2026-11-01 (0.08875) → 0.8875 → 0.89.
    # US-CA: no region row → the country row 0.05 → 0.50. FR: no row → rate 0, no tax name.
    people = [customer("d1", "DE", tax_id="DE1"), customer("d2", "DE"), customer("n1", "US", "NY"),
              customer("n2", "US", "CA"), customer("f1", "FR")]
    rows = [(c["customer_id"], "v", "volume", 1, 1, "100000") for c in people]
    invoices, _ = rate(rows, customers=people, tax_rates=TAX_RATES)
    got = {i["customer_id"]: (i["tax_name"], i["tax_rate"], i["tax_amount"], i["total"], i["reverse_charge"])
           for i in invoices}
    assert got == {
        "d1": ("VAT", Decimal("0"), Decimal("0.00"), Decimal("10.00"), True),
        "d2": ("VAT", Decimal("0.19"), Decimal("1.90"), Decimal("11.90"), False),
        "n1": ("Sales tax", Decimal("0.08875"), Decimal("0.89"), Decimal("10.89"), False),
        "n2": ("Federal", Decimal("0.05"), Decimal("0.50"), Decimal("10.50"), False),
        "f1": (None, Decimal("0"), Decimal("0.00"), Decimal("10.00"), False),
    }


def test_unpriced_usage_is_not_billed_and_a_month_without_usage_has_no_invoice():
    invoices, lines = rate([("c8", "x", "no-such-sku", 1, 1, "5")])
    assert (invoices, lines) == ([], [])
