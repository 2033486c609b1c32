"""kpi_support_monthly and kpi_team_daily on a help desk written by hand, on the closed golden October.

Tickets with several versions (the newest by updated_at wins, whatever the file order), every
channel, reopens, every rating score, tickets solved or rated in the month after they were
created. The expected figures are computed here in Python, independently of the SQL:
statistics.median / statistics.quantiles(method="inclusive") for the continuous median and
p90, Decimal with ROUND_HALF_UP for every ratio. The tickets are ingested by the real asset and the
support marts built by dbt, once for the module, on a copy of the session's closed golden month.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.conftest import GOLDEN, Workspace, copy_workspace, dbt

BILLING_TAGS = {"incorrect_invoice", "refund_request", "payment_extension", "payment_failed", "tax_question",
                "other_billing"}

# id, created_at, updated_at, status, channel, assignee, group, score, frt, frt_business, resolution, work,
# solved_at, reopens, tags — one version each; VERSIONS below adds older versions that must lose.
DESK = [
    (1, "2026-10-01T08:00:00Z", "2026-10-01T12:00:00Z", "solved", "email", 501, 11, "good", 12, 10, 240, 30, "2026-10-01T12:00:00Z", 0, ["refund_request"]),
    (2, "2026-10-02T09:30:00Z", "2026-10-03T10:00:00Z", "closed", "chat", 501, 11, "bad", 1, 1, 1470, 45, "2026-10-03T10:00:00Z", 1, ["incorrect_invoice"]),
    (3, "2026-10-03T22:00:00Z", "2026-10-05T07:00:00Z", "solved", "web", 502, 11, "offered", 95, 0, 2000, 19, "2026-10-05T07:00:00Z", 2, []),
    (4, "2026-10-04T10:00:00Z", "2026-10-04T10:05:00Z", "open", "api", None, 12, "unoffered", None, None, None, None, None, 0, ["other_billing"]),
    (5, "2026-10-10T13:00:00Z", "2026-10-12T13:00:00Z", "solved", "email", 502, 12, "good", 33, 20, 2880, 61, "2026-10-12T13:00:00Z", 0, ["tax_question", "vip"]),
    (6, "2026-10-15T00:00:00Z", "2026-10-15T02:00:00Z", "pending", "chat", 503, None, None, 7, 7, None, 5, None, 0, []),
    (7, "2026-10-20T11:00:00Z", "2026-11-02T09:00:00Z", "solved", "web", 503, 12, "good", 240, 120, 18000, 80, "2026-11-01T16:00:00Z", 1, ["payment_failed"]),
    (8, "2026-10-31T23:50:00Z", "2026-11-01T00:30:00Z", "solved", "email", 501, 11, "bad", 8, 0, 40, 12, "2026-11-01T00:30:00Z", 0, ["payment_extension"]),
    (9, "2026-10-25T06:00:00Z", "2026-10-26T06:00:00Z", "solved", None, 502, 13, "good", 61, 61, 1440, 25, "2026-10-26T06:00:00Z", 3, []),
    (10, "2026-10-28T15:00:00Z", "2026-11-03T15:00:00Z", "closed", "api", 501, 13, "good", 3, 3, 100, 7, "2026-10-28T16:40:00Z", 0, ["refund_request"]),
    (11, "2026-11-02T08:00:00Z", "2026-11-02T09:00:00Z", "solved", "chat", 503, 11, "bad", 2, 2, 60, 9, "2026-11-02T09:00:00Z", 0, ["incorrect_invoice"]),
    (12, "2026-11-05T08:00:00Z", "2026-11-05T08:10:00Z", "new", "web", None, None, None, None, None, None, None, None, 0, ["question"]),
    (13, "2026-10-06T08:00:00Z", "2026-10-06T09:00:00Z", "solved", "email", 502, 11, "good", 0, 0, 60, 0, "2026-10-06T09:00:00Z", 0, []),
]

# Older versions (same id, earlier updated_at) that must not count: another channel, another score,
# unsolved. Ticket 7's old version sits in the LAST file, so file order cannot be what decides.
VERSIONS = [
    (1, "2026-10-01T08:00:00Z", "2026-10-01T08:30:00Z", "open", "chat", 502, 12, "offered", 12, 10, None, 5, None, 0, []),
    (2, "2026-10-02T09:30:00Z", "2026-10-02T10:00:00Z", "solved", "chat", 501, 11, "good", 1, 1, 30, 20, "2026-10-02T10:00:00Z", 0, ["incorrect_invoice"]),
    (7, "2026-10-20T11:00:00Z", "2026-10-30T11:00:00Z", "solved", "web", 503, 12, "bad", 240, 120, 14400, 60, "2026-10-30T11:00:00Z", 0, ["payment_failed"]),
]

FIELDS = ("id", "created_at", "updated_at", "status", "channel", "assignee_id", "group_id", "score", "frt", "frt_business",
          "resolution", "work", "solved_at", "reopens", "tags")


def zendesk(row: tuple, customer: str) -> dict:
    """One Zendesk-shaped ticket line (docs/contract/inputs.md, Tickets)."""
    t = dict(zip(FIELDS, row))
    doc = {"id": t["id"], "created_at": t["created_at"], "updated_at": t["updated_at"], "status": t["status"],
           "via": {"channel": t["channel"]} if t["channel"] else {}, "requester_id": 9000 + t["id"],
           "organization_id": customer, "assignee_id": t["assignee_id"], "group_id": t["group_id"],
           "subject": f"ticket {t['id']}", "tags": t["tags"], "custom_fields": [],
           "metrics": {"reply_time_in_minutes": {"calendar": t["frt"], "business": t["frt_business"]},
                       "full_resolution_time_in_minutes": {"calendar": t["resolution"]},
                       "agent_work_time_in_minutes": {"calendar": t["work"]},
                       "solved_at": t["solved_at"], "reopens": t["reopens"]}}
    if t["score"]:
        doc["satisfaction_rating"] = {"score": t["score"]}
    return doc


@pytest.fixture(scope="module")
def closed_desk(closed_golden, tmp_path_factory) -> Workspace:
    """The closed golden October (copied) with the desk landed: tickets ingested, the support marts built."""
    import dagster as dg

    from assets.tickets import tickets as tickets_asset
    from warehouse.resource import WarehouseResource

    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    ws = copy_workspace(closed_golden.ws, tmp_path_factory.mktemp("kpi-support") / "ws")
    tickets = ws.landing / "tickets"
    tickets.mkdir(exist_ok=True)
    customers = [f"c00{n}" for n in range(1, 9)]
    first = [r for r in DESK if r[0] != 7] + [VERSIONS[0], VERSIONS[1]]
    last = [r for r in DESK if r[0] == 7]
    (tickets / "2026-10-a.jsonl").write_text("".join(json.dumps(zendesk(r, customers[r[0] % 8])) + "\n" for r in first + last))
    (tickets / "2026-11-b.jsonl").write_text(json.dumps(zendesk(VERSIONS[2], customers[7 % 8])) + "\n")
    resource = WarehouseResource(path=str(ws.warehouse), landing=str(ws.landing))
    assert dg.materialize([tickets_asset], partition_key="2026-10-01", resources={"warehouse": resource}).success
    build = dbt(ws, "build", "--select", "stg_support__tickets", "kpi_support_monthly", "kpi_team_daily")
    assert build.returncode == 0, build.stdout[-4000:]
    return ws


def month_of(text: str | None) -> date | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).date().replace(day=1)


def half_up(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def median(values: list[int]) -> Decimal | None:
    return half_up(Decimal(statistics.median([Decimal(v) for v in values])), "0.01") if values else None


def p90(values: list[int]) -> Decimal | None:
    if not values:
        return None
    if len(values) == 1:
        return half_up(Decimal(values[0]), "0.01")
    return half_up(statistics.quantiles([Decimal(v) for v in values], n=10, method="inclusive")[8], "0.01")


def ratio(numerator: int, denominator: int, places: str) -> Decimal | None:
    return None if denominator == 0 else half_up(Decimal(numerator) / Decimal(denominator), places)


def invoices_issued_by_month() -> dict[date, int]:
    with (GOLDEN / "expected" / "invoices.csv").open() as f:
        counts: dict[date, int] = defaultdict(int)
        for row in csv.DictReader(f):
            counts[date.fromisoformat(row["issue_date"]).replace(day=1)] += 1
    return counts


def expected_support() -> dict[tuple, tuple]:
    tickets = [dict(zip(FIELDS, r)) for r in DESK]
    issued = invoices_issued_by_month()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for t in tickets:
        groups[("all", None)].append(t)
        for dimension, field in (("channel", "channel"), ("group", "group_id"), ("agent", "assignee_id")):
            if t[field] is not None:
                groups[(dimension, str(t[field]))].append(t)
    rows = {}
    for (dimension, value), members in groups.items():
        months = {month_of(t["created_at"]) for t in members} | {month_of(t["solved_at"]) for t in members if t["solved_at"]}
        months |= {month_of(t["updated_at"]) for t in members if t["score"] in ("good", "bad")}
        for month in months:
            created = [t for t in members if month_of(t["created_at"]) == month]
            solved = [t for t in members if month_of(t["solved_at"]) == month]
            rated = [t for t in members if t["score"] in ("good", "bad") and month_of(t["updated_at"]) == month]
            good = sum(t["score"] == "good" for t in rated)
            billing = sum(bool(BILLING_TAGS & set(t["tags"])) for t in created)
            rows[(month, dimension, value)] = (
                len(created), len(solved),
                median([t["frt"] for t in created if t["frt"] is not None]),
                p90([t["frt"] for t in created if t["frt"] is not None]),
                median([t["frt_business"] for t in created if t["frt_business"] is not None]),
                ratio(sum(t["work"] or 0 for t in solved), len(solved), "0.01"),
                median([t["resolution"] for t in solved if t["resolution"] is not None]),
                ratio(good, len(rated), "0.000001"),
                ratio(sum(t["reopens"] > 0 for t in solved), len(solved), "0.000001"),
                ratio(billing * 1000, issued.get(month, 0), "0.01"),
            )
    return rows


COLUMNS = ("tickets_created, tickets_solved, frt_minutes_median, frt_minutes_p90, frt_business_minutes_median, "
           "aht_minutes, resolution_minutes_median, csat, reopen_rate, billing_tickets_per_1k_invoices")


def test_every_column_of_kpi_support_monthly_matches_the_desk(closed_desk):
    actual = {(r[0], r[1], r[2]): tuple(r[3:]) for r in closed_desk.query(
        f"SELECT month, dimension, dimension_value, {COLUMNS} FROM marts.kpi_support_monthly")}
    expected = expected_support()
    assert set(actual) == set(expected)
    for key in sorted(expected, key=str):
        assert actual[key] == expected[key], key
    # spot values worked by hand, so the Python above is checked too
    october = actual[(date(2026, 10, 1), "all", None)]
    assert october[:2] == (11, 7)  # created: 1–10 and 13; solved in October: 1, 2, 3, 5, 9, 10, 13
    assert actual[(date(2026, 11, 1), "all", None)][9] == Decimal("142.86")  # 1 billing ticket × 1000 / 7 invoices


def test_types_are_decimal_never_floating(closed_desk):
    types = dict(closed_desk.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'marts' AND table_name = 'kpi_support_monthly'"))
    assert types["frt_minutes_p90"] == "DECIMAL(18,2)"
    assert types["csat"] == "DECIMAL(9,6)"
    assert types["billing_tickets_per_1k_invoices"] == "DECIMAL(18,2)"
    assert not any(t in ("DOUBLE", "FLOAT", "REAL") for t in types.values())


def test_kpi_team_daily_per_agent_and_day(closed_desk):
    rows = {(r[0], r[1]): r[2:] for r in closed_desk.query(
        "SELECT day, agent_id, tickets_solved, aht_minutes, csat FROM marts.kpi_team_daily")}
    # agent 501 on 1 Nov: ticket 8 solved at 00:30 (work 12) and rated bad that day
    assert rows[(date(2026, 11, 1), "501")] == (1, Decimal("12.00"), Decimal("0.000000"))
    # agent 503 on 1 Nov: ticket 7 solved (work 80), its good rating lands on 2 Nov (updated_at)
    assert rows[(date(2026, 11, 1), "503")] == (1, Decimal("80.00"), None)
    assert rows[(date(2026, 11, 2), "503")][2] == Decimal("0.500000")  # 7 good, 11 bad
