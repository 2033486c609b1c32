"""Credit balances carry from month to month (billing-rules.md §4), and re-closing a month gives the same answer."""

from datetime import datetime, timezone
from decimal import Decimal


def _tokens(event_id: str, day: datetime, tokens: str) -> dict:
    return {
        "event_id": event_id, "customer_id": "c005", "resource_id": "c005", "sku": "inference-tokens",
        "region": "syd1", "start_time": day, "end_time": day.replace(hour=1), "quantity": Decimal(tokens),
    }


def test_credit_balance_carries_across_months(golden):
    # c005 holds a $100 grant; October uses $0.28 of it (golden case).
    golden.write_usage("usage/dt=2026-11-01/part-0.parquet",
                       [_tokens("n1", datetime(2026, 11, 1, tzinfo=timezone.utc), "600000000")])
    golden.write_usage("usage/dt=2026-12-01/part-0.parquet",
                       [_tokens("d1", datetime(2026, 12, 1, tzinfo=timezone.utc), "600000000")])
    for month in ("2026-10", "2026-11", "2026-12"):
        result = golden.close(month)
        assert result.returncode == 0, result.stderr[-3000:]
    ledger = golden.query(
        "SELECT billing_month::VARCHAR, opening_balance, applied, closing_balance FROM marts.credit_ledger "
        "WHERE grant_id = 'g004' ORDER BY billing_month"
    )
    # 600M tokens: 1M × 2e-7 + 599M × 1.5e-7 = 0.20 + 89.85 = 90.05 a month.
    assert ledger == [
        ("2026-10-01", Decimal("100.00"), Decimal("0.28"), Decimal("99.72")),
        ("2026-11-01", Decimal("99.72"), Decimal("90.05"), Decimal("9.67")),
        ("2026-12-01", Decimal("9.67"), Decimal("9.67"), Decimal("0.00")),
    ]
    december = golden.query(
        "SELECT invoice_number, subtotal, credits_applied, taxable_amount, tax_amount, total FROM marts.invoices "
        "WHERE billing_month = DATE '2026-12-01'"
    )
    assert december == [("BO-202612-000001", Decimal("90.05"), Decimal("9.67"), Decimal("80.38"),
                         Decimal("8.04"), Decimal("88.42"))]
    # Re-closing November after December reads only October's balances: same answer.
    before = golden.query("SELECT * FROM marts.invoices ORDER BY invoice_number")
    assert golden.close("2026-11").returncode == 0
    assert golden.query("SELECT * FROM marts.invoices ORDER BY invoice_number") == before
    assert golden.query(
        "SELECT opening_balance, applied FROM marts.credit_ledger WHERE grant_id = 'g004' AND billing_month = DATE '2026-11-01'"
    ) == [(Decimal("99.72"), Decimal("90.05"))]
    # Expired grants never enter a later month; c007's B expired 2026-10-31, A on 2026-11-30.
    assert golden.query("SELECT grant_id FROM marts.credit_ledger WHERE billing_month = DATE '2026-12-01' ORDER BY 1") == [
        ("g001",), ("g003",), ("g004",), ("g007",)
    ]
