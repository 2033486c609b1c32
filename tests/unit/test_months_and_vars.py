"""Pure functions: the billing month, the month-order rule (docs/contract/billing-rules.md §4) and the dbt vars of a month."""

from datetime import date, datetime

import pytest

from assets.dbt import dbt_vars
from config.billing_month import BillingMonth
from config.partitions import monthly_partitions
from warehouse.months import order_problem, previous_month

OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)


def test_dbt_vars_are_the_month_with_end_exclusive_and_the_warehouse():
    assert dbt_vars(BillingMonth.parse("2026-12"), "/data/w.duckdb") == {
        "period_start": "2026-12-01", "period_end": "2027-01-01", "warehouse": "/data/w.duckdb"}


def test_dbt_vars_never_widen_a_month():
    variables = dbt_vars(BillingMonth(2026, 2), "w.duckdb")
    assert variables["period_end"] != "2026-02-28" and variables["period_end"] == "2026-03-01"


def test_a_billing_month_is_each_spelling_of_one_month():
    month = BillingMonth.parse("2026-12")
    assert (month.key, month.partition_key, str(month)) == ("2026-12", "2026-12-01", "2026-12")
    assert (month.start, month.end) == (date(2026, 12, 1), date(2027, 1, 1))
    assert month == BillingMonth.from_partition_key("2026-12-01") == BillingMonth.of(datetime(2026, 12, 31, 23, 59))
    assert (month.next(), month.previous()) == (BillingMonth(2027, 1), BillingMonth(2026, 11))
    assert BillingMonth(2027, 1).previous() == month and BillingMonth(2026, 1) < BillingMonth(2026, 2) < month


def test_a_billing_month_matches_dagster_s_partition_window():
    for key in ("2026-01-01", "2026-02-01", "2026-12-01", "2028-02-01"):
        window = monthly_partitions.time_window_for_partition_key(key)
        month = BillingMonth.from_partition_key(key)
        assert (month.start, month.end) == (window.start.date(), window.end.date())


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", "October", ""])
def test_a_month_that_is_not_yyyy_mm_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="is not a month in the form YYYY-MM"):
        BillingMonth.parse(text)


@pytest.mark.parametrize("issued, month", [
    ([], OCT),             # nothing issued: any month may be the first
    ([], DEC),
    ([OCT], OCT),          # re-closing an issued month restates it
    ([OCT], NOV),          # the next month
    ([OCT, NOV, DEC], OCT),
    ([date(2026, 12, 1)], date(2027, 1, 1)),  # across a year
])
def test_months_that_may_be_closed(issued, month):
    assert order_problem(issued, month) is None


def test_a_gap_is_refused_naming_the_missing_month():
    assert order_problem([OCT], DEC) == "2026-11 is not issued: months are issued in order, close 2026-11 first"
    assert order_problem([date(2026, 11, 1)], date(2027, 1, 1)) == (
        "2026-12 is not issued: months are issued in order, close 2026-12 first")


def test_a_month_before_the_first_issued_is_refused():
    assert order_problem([NOV], OCT) == (
        "2026-10 is before the first issued month 2026-11: credit balances start there, "
        "so an earlier month cannot be closed")


def test_previous_month_wraps_the_year():
    assert previous_month(date(2027, 1, 1)) == DEC and previous_month(NOV) == OCT
