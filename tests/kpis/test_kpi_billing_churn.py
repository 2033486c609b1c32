"""kpi_billing_monthly and kpi_churn_monthly on two crafted months, closed with the real command.

October is the golden month (7 invoices issued on 1 November, due on the 15th). November
(tests/golden_november.py, shared with the publication and UI tests) lands
one usage file per day for c001, c002 and c004 only (c003, c006, c007 churn) and payments
answering October's invoices: c001 paid before its due date, c002 failed then paid late, c003
failed and never paid (involuntary churn), c004 paid then partly refunded after a
refund_request ticket. Every expected figure is worked out here from those inputs, in Decimal
rounded half up; only November's invoiced amount (rating is tested elsewhere) is read back.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.conftest import Workspace
from tests.golden_november import NOVEMBER_CUSTOMERS, october_totals

OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)


@pytest.fixture(scope="module")
def two_months(closed_november) -> Workspace:
    """October: the session's closed golden month. November: tests/golden_november.py, closed once per run."""
    assert closed_november.result.returncode == 0, closed_november.result.stderr[-3000:]
    return closed_november.ws


def half_up(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


BILLING = ("invoices_issued, invoiced_amount, invoice_accuracy_rate, pre_issue_control_pass_rate, refunds_count, "
           "refunds_amount, refund_turnaround_hours_median, refund_turnaround_hours_p90, payment_success_rate, "
           "failed_payment_recovery_rate, extensions_granted, ar_current, ar_1_30, ar_31_60, ar_61_90, ar_90_plus, "
           "dso_days")


def test_kpi_billing_monthly_two_months(two_months):
    actual = {r[0]: tuple(r[1:]) for r in two_months.query(f"SELECT month, {BILLING} FROM marts.kpi_billing_monthly")}
    totals = october_totals()
    october_amount = sum(t for _, t in totals.values())
    zero = Decimal("0.00")
    assert actual[OCT] == (len(totals), october_amount, Decimal("1.000000"), Decimal("1.000000"), 0, zero, None, None,
                           None, None, 0, zero, zero, zero, zero, zero, None)

    november_amount = two_months.query(
        "SELECT sum(total) FROM audit.issued_invoices WHERE billing_month = DATE '2026-11-01'")[0][0]
    due = [c for c, (_, total) in totals.items() if total > 0]  # every October invoice is due on 15 November
    paid_on_time = ["c001", "c004"]  # c004's refund came after its due date
    # at 1 December every October invoice is 16 days past due; what is still owed:
    owed = {"c003": totals["c003"][1], "c004": Decimal("0.50"), "c006": totals["c006"][1], "c007": totals["c007"][1]}
    ar = sum(owed.values())
    assert actual[NOV] == (
        len(NOVEMBER_CUSTOMERS), november_amount, Decimal("1.000000"), Decimal("1.000000"),
        1, Decimal("0.50"),
        Decimal("26.00"), Decimal("26.00"),  # ticket 24 Nov 10:00 → refund 25 Nov 12:00
        half_up(Decimal(len(paid_on_time)) / len(due), "0.000001"),
        Decimal("0.500000"),  # c002 recovered, c003 not
        0, zero, ar, zero, zero, zero,
        half_up(ar * 30 / october_amount, "0.01"),  # October's invoices were issued in November
    )
    assert actual[NOV][12] == Decimal("313.39")  # worked by hand: 301.55 + 0.50 + 11.15 + 0.19


def test_kpi_churn_monthly_two_months(two_months):
    actual = {r[0]: tuple(r[1:]) for r in two_months.query(
        "SELECT month, active_customers_start, churned_customers, logo_churn_rate, revenue_churn_rate, "
        "involuntary_churned FROM marts.kpi_churn_monthly")}
    totals = october_totals()
    active = {c for c, (_, total) in totals.items() if total > 0}  # c005's October total is 0
    churned = active - set(NOVEMBER_CUSTOMERS)
    assert churned == {"c003", "c006", "c007"}
    assert actual[OCT] == (0, 0, None, None, 0)
    assert actual[NOV] == (
        len(active), len(churned),
        half_up(Decimal(len(churned)) / len(active), "0.000001"),
        half_up(sum(totals[c][1] for c in churned) / sum(t for _, t in totals.values()), "0.000001"),
        1,  # c003: a failed charge, still unpaid
    )


def test_kpi_headlines_reach_the_dagster_instance(two_months):
    """The close's KPI materializations carry the month's numbers as metadata (plotted by the UI)."""
    import dagster as dg

    with two_months.instance() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["marts", "kpi_churn_monthly"]))
        metadata = event.asset_materialization.metadata
        assert event.asset_materialization.partition == "2026-11-01"
        assert metadata["logo_churn_rate"].value == 0.5
        assert metadata["involuntary_churned"].value == 1
        billing = instance.get_latest_materialization_event(dg.AssetKey(["marts", "kpi_billing_monthly"]))
        assert billing.asset_materialization.metadata["refunds_count"].value == 1
