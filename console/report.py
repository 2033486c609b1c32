"""The monthly report for management (`billops report --month YYYY-MM`, and /reports/YYYY-MM in the console).

One self-contained HTML file: Plotly's script and the styles are inlined, so it opens from a
mail attachment or a shared drive with no network, and prints to PDF from a browser. It reads
the published copy and the queue only (never the warehouse), so it can be written during a
close. Every figure is the mart's DECIMAL shown as text; charts show the trend up to the month.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from console.charts import PLOTLY_JS, shown, trend_html
from console.kpis import MARTS, TITLES, definitions, kind_of
from console.published import PublishedCopy
from console.roles import READ
from console.web import HERE, context, money, rate, render, require
from workitems import store

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]))
    env.filters.update(money=money, rate=rate)
    return env


def report_data(published: PublishedCopy, queue: Engine, month: str) -> dict:
    """Everything the report shows for `month` (YYYY-MM), from the marts and the queue."""
    first = date.fromisoformat(f"{month}-01")
    data = published.many({
        "kpi_billing_monthly": ("SELECT * FROM marts.kpi_billing_monthly WHERE month <= ? ORDER BY month", [first]),
        "kpi_support_monthly": ("SELECT * FROM marts.kpi_support_monthly WHERE dimension = 'all' AND month <= ? "
                                "ORDER BY month", [first]),
        "kpi_churn_monthly": ("SELECT * FROM marts.kpi_churn_monthly WHERE month <= ? ORDER BY month", [first]),
        "issued": ("SELECT * FROM marts.issued_months WHERE billing_month = ?", [first]),
        "statuses": ("SELECT status, count(*) AS invoices, sum(total) AS total FROM marts.invoices WHERE billing_month = ? "
                     "GROUP BY status ORDER BY status", [first]),
        "restatements": ("SELECT * FROM marts.restatements WHERE billing_month = ? ORDER BY abs(difference) DESC LIMIT 20",
                         [first]),
        "refunds": ("SELECT * FROM marts.refunds WHERE date_trunc('month', created_at) = ? ORDER BY created_at", [first]),
        "alerts": ("SELECT * FROM marts.alerts WHERE billing_month = ? ORDER BY created_at", [first]),
    })
    sections = []
    for mart, (_, columns) in MARTS.items():
        rows = data[mart]
        months = [r["month"] for r in rows]
        this = next((r for r in rows if r["month"] == first), None)
        sections.append({"mart": mart, "title": TITLES[mart], "kpis": [
            {"column": c, "definition": definitions().get(c, ""), "kind": kind_of(c),
             "value": None if this is None else this[c], "shown": shown(None if this is None else this[c], kind_of(c)),
             "chart": trend_html(f"{mart}-{c}", months, [r[c] for r in rows], kind_of(c))} for c in columns]})
    items = store.list_items(queue)
    raised = [i for i in items if i["created_at"].strftime("%Y-%m") == month]
    decided = [i for i in items if i["decided_at"] and i["decided_at"].strftime("%Y-%m") == month]
    throughput = {"raised": len(raised), "decided": len(decided),
                  "approved": sum(i["status"] in ("approved", "done") for i in decided),
                  "declined": sum(i["status"] == "declined" for i in decided),
                  "open_now": sum(i["status"] == "open" for i in items)}
    alerts = [{**a, "text": offline_text(a["text"])} for a in data["alerts"]]
    return {"month": month, "sections": sections, "issued": (data["issued"] or [None])[0], "statuses": data["statuses"],
            "restatements": data["restatements"], "refunds": data["refunds"], "alerts": alerts,
            "throughput": throughput, "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


RUN_LINK = re.compile(r"https?://\S*?/runs/([0-9a-f-]{36})")
ANY_LINK = re.compile(r"https?://\S+")


def offline_text(text: str) -> str:
    """An alert's text for a document read away from the network: the Dagster UI link an alert carries
    (`Run: http://host:3000/runs/<id>`) becomes the run id, and any other address is dropped, so the
    printed report links nowhere and names what an operator can look up."""
    return ANY_LINK.sub("(link removed)", RUN_LINK.sub(r"\1", text or ""))


def render_report(published: PublishedCopy, queue: Engine, month: str) -> str:
    """The report as one HTML document with Plotly's script and the style sheet inlined."""
    if not MONTH.match(month):
        raise ValueError(f"{month!r} is not a month in the form YYYY-MM")
    values = report_data(published, queue, month)
    return _env().get_template("report.html").render(
        plotly_js=PLOTLY_JS.read_text(), style=(HERE / "static" / "console.css").read_text(), **values)


def write_report(published: PublishedCopy, queue: Engine, month: str, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(published, queue, month))
    return out


async def reports_page(request: Request):
    require(request, READ)
    months = context(request).published.many({"m": ("SELECT billing_month FROM marts.issued_months ORDER BY 1 DESC", [])})["m"]
    return render(request, "reports.html", months=[m["billing_month"].strftime("%Y-%m") for m in months])


async def report_page(request: Request):
    require(request, READ)
    month = request.path_params["month"]
    if not MONTH.match(month):
        raise HTTPException(404, f"{month!r} is not a month (YYYY-MM)")
    ctx = context(request)
    return HTMLResponse(render_report(ctx.published, ctx.queue, month))
