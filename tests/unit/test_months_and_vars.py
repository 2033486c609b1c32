"""Pure functions: the month-order rule (docs/contract/billing-rules.md §4) and the dbt vars of a partition window."""

from datetime import date, datetime, timezone

import pytest

from assets.dbt import dbt_vars
from warehouse.months import order_problem, previous_month

OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)


def test_dbt_vars_are_the_window_with_end_exclusive_and_the_warehouse():
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    end = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert dbt_vars(start, end, "/data/w.duckdb") == {
        "period_start": "2026-12-01", "period_end": "2027-01-01", "warehouse": "/data/w.duckdb"}


def test_dbt_vars_never_widen_a_window():
    start = datetime(2026, 2, 1, tzinfo=timezone.utc)
    variables = dbt_vars(start, datetime(2026, 3, 1, tzinfo=timezone.utc), "w.duckdb")
    assert variables["period_end"] != "2026-02-28" and variables["period_end"] == "2026-03-01"


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
