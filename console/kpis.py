"""The KPI pages: each KPI of the monthly marts as a trend with its definition, the team's days, SLA breaches.

Values are read from the published copy and shown from their DECIMAL (never through a float);
Plotly draws from floats, for the picture only, and each table cell carries the mart's exact
value (`data-value`) so a test can compare what the page shows with the marts. Definitions are
read from the contract itself (docs/contract/kpis.md), so the page and the contract cannot drift.
The months on every axis are the months that exist in the mart, from the first to the last.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from starlette.requests import Request

from config.project_files import REPO_ROOT
from console.charts import trend_html
from console.roles import READ
from console.web import context, render, require
from workitems import store

KPI_CONTRACT = REPO_ROOT / "docs/contract/kpis.md"

# mart -> (its month column, the KPI columns in the contract's order, which of them are money / rates)
MARTS = {
    "kpi_billing_monthly": ("month", (
        "invoices_issued", "invoiced_amount", "invoice_accuracy_rate", "pre_issue_control_pass_rate", "refunds_count",
        "refunds_amount", "refund_turnaround_hours_median", "refund_turnaround_hours_p90", "payment_success_rate",
        "failed_payment_recovery_rate", "extensions_granted", "ar_current", "ar_1_30", "ar_31_60", "ar_61_90",
        "ar_90_plus", "dso_days")),
    "kpi_support_monthly": ("month", (
        "tickets_created", "tickets_solved", "frt_minutes_median", "frt_minutes_p90", "frt_business_minutes_median",
        "aht_minutes", "resolution_minutes_median", "csat", "reopen_rate", "billing_tickets_per_1k_invoices")),
    "kpi_churn_monthly": ("month", (
        "active_customers_start", "churned_customers", "logo_churn_rate", "revenue_churn_rate", "involuntary_churned")),
}
TITLES = {"kpi_billing_monthly": "Billing", "kpi_support_monthly": "Support (all tickets)",
          "kpi_churn_monthly": "Churn"}
MONEY = {"invoiced_amount", "refunds_amount", "ar_current", "ar_1_30", "ar_31_60", "ar_61_90", "ar_90_plus"}
RATES = {"invoice_accuracy_rate", "pre_issue_control_pass_rate", "payment_success_rate", "failed_payment_recovery_rate",
         "csat", "reopen_rate", "logo_churn_rate", "revenue_churn_rate"}


@lru_cache(maxsize=1)
def definitions() -> dict[str, str]:
    """column -> its definition, from the tables of docs/contract/kpis.md (a row may define several columns)."""
    found: dict[str, str] = {}
    for line in KPI_CONTRACT.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and "`" in cells[0]:
            text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", cells[1]).replace("`", "")
            for column in re.findall(r"`(\w+)`", cells[0]):
                found.setdefault(column, text)
    return found


def kind_of(column: str) -> str:
    return "money" if column in MONEY else "rate" if column in RATES else "number"


def monthly(request: Request) -> dict[str, list[dict]]:
    """Each monthly mart's rows, oldest month first (support: the `all` dimension)."""
    ctx = context(request)
    return ctx.published.many({
        "kpi_billing_monthly": ("SELECT * FROM marts.kpi_billing_monthly ORDER BY month", []),
        "kpi_support_monthly": ("SELECT * FROM marts.kpi_support_monthly WHERE dimension = 'all' ORDER BY month", []),
        "kpi_churn_monthly": ("SELECT * FROM marts.kpi_churn_monthly ORDER BY month", []),
    })


def sections(data: dict[str, list[dict]]) -> list[dict]:
    """What the page and the report show: per mart, per KPI, its values by month, definition and chart."""
    out = []
    for mart, (month_column, columns) in MARTS.items():
        rows = data.get(mart, [])
        months = [r[month_column] for r in rows]
        kpis = [{"column": c, "definition": definitions().get(c, ""), "kind": kind_of(c),
                 "series": [r[c] for r in rows],
                 "chart": trend_html(c, months, [r[c] for r in rows], kind_of(c))} for c in columns]
        out.append({"mart": mart, "title": TITLES[mart], "months": months, "kpis": kpis})
    return out


async def kpis_page(request: Request):
    require(request, READ)
    return render(request, "kpis.html", sections=sections(monthly(request)))


async def team_page(request: Request):
    """The shift view: per agent and UTC day (kpi_team_daily), the last `days` days with data."""
    require(request, READ)
    ctx = context(request)
    days = int(request.query_params.get("days", "14")) if request.query_params.get("days", "14").isdigit() else 14
    rows = ctx.published.many({"t": (
        "SELECT * FROM marts.kpi_team_daily WHERE day > (SELECT max(day) FROM marts.kpi_team_daily) - ?::INTEGER "
        "ORDER BY day DESC, agent_id", [days])})["t"]
    return render(request, "team.html", rows=rows, days=days)


def _hours(delta: timedelta) -> Decimal:
    return (Decimal(int(delta.total_seconds())) / 3600).quantize(Decimal("0.01"))


def breaches(request: Request) -> dict[str, list[dict]]:
    """SLA breaches: work items past (or decided after) their kind's target; refunds whose turnaround from
    their work item exceeded the refund target; tickets whose first reply exceeded the first-response target."""
    ctx = context(request)
    sla = ctx.settings.sla_hours
    now = datetime.now(UTC).replace(tzinfo=None)
    items = []
    for item in store.list_items(ctx.queue):
        due = item["created_at"] + timedelta(hours=sla.get(item["kind"], 48))
        end = item["decided_at"] or now
        if end > due:
            items.append({**item, "due_at": due, "over_hours": _hours(end - due)})
    created = {r["work_item_id"]: r["created_at"] for r in store.list_items(ctx.queue)}
    frt_target = sla.get("first_response", 24) * 60
    data = ctx.published.many({
        "refunds": ("SELECT * FROM marts.refunds WHERE status = 'succeeded' AND work_item_id IS NOT NULL "
                    "ORDER BY created_at", []),
        "tickets": ("SELECT ticket_id, customer_id, created_at, first_reply_minutes, status, subject FROM marts.tickets "
                    "WHERE first_reply_minutes > ? ORDER BY created_at DESC LIMIT 200", [frt_target]),
    })
    refunds = []
    for refund in data["refunds"]:
        raised = created.get(refund["work_item_id"])
        if raised and refund["created_at"] - raised > timedelta(hours=sla.get("refund", 48)):
            refunds.append({**refund, "raised_at": raised, "turnaround_hours": _hours(refund["created_at"] - raised)})
    return {"items": items, "refunds": refunds, "tickets": data["tickets"], "frt_target_minutes": frt_target}


async def breaches_page(request: Request):
    require(request, READ)
    return render(request, "breaches.html", sla=context(request).settings.sla_hours, **breaches(request))
