"""Months are issued in calendar order (docs/contract/billing-rules.md §4): credits carry from one month to the next.

After the first issued month, closing M while M-1 is not issued is refused, naming
M-1; a month before the first issued month cannot be closed at all. Re-closing an
issued month is always allowed (it restates). So that no landed month is
stranded, the first close of a warehouse is refused when an earlier month has
landed usage, unless the close says `--first-month` (tagged on its run and
recorded in `audit.issued_months`). The CLI asks before it starts a run
and the issuing asset asks again inside its transaction, so a run launched from
the UI obeys the same rule.
"""

from __future__ import annotations

from datetime import date

import duckdb


class OutOfOrderMonth(Exception):
    """Closing this month now would issue months out of order."""


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), 12 if month.month == 1 else month.month - 1, 1)


def issued_months(con: duckdb.DuckDBPyConnection) -> list[date]:
    return [r[0] for r in con.execute("SELECT billing_month FROM audit.issued_months ORDER BY 1").fetchall()]


def order_problem(issued: list[date], month: date) -> str | None:
    """Why `month` cannot be closed given the issued months, or None when it can."""
    if not issued or month in issued:
        return None
    if month < issued[0]:
        return (f"{month:%Y-%m} is before the first issued month {issued[0]:%Y-%m}: credit balances start there, "
                "so an earlier month cannot be closed")
    before = previous_month(month)
    if before not in issued:
        return f"{before:%Y-%m} is not issued: months are issued in order, close {before:%Y-%m} first"
    return None


def first_month_problem(issued: list[date], month: date, landed: list[date], first_month: bool) -> str | None:
    """Why `month` cannot be the warehouse's first issued month, or None (docs/contract/billing-rules.md §4).

    `landed` are the months with landed usage. Once a month is issued, or when the close
    says `--first-month`, there is nothing to refuse: the order rule above takes over.
    """
    if issued or first_month:
        return None
    earlier = [m for m in landed if m < month]
    if not earlier:
        return None
    names = ", ".join(f"{m:%Y-%m}" for m in earlier)
    return (f"this is the warehouse's first close and earlier usage has landed ({names}): "
            f"close {earlier[0]:%Y-%m} first, or start billing at {month:%Y-%m} with --first-month "
            f"(then {names} can never be closed)")


def check_month_order(con: duckdb.DuckDBPyConnection, month: date) -> None:
    problem = order_problem(issued_months(con), month)
    if problem:
        raise OutOfOrderMonth(problem)
