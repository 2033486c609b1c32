"""Customers and invoices: search by customer id or invoice number, a customer's page, an invoice's page.

Everything here is read from the published copy (console/published.py) in one connection per
page, so a page shows one publication. The invoice page traces each line to the landed usage
files it was rated from (`marts.invoice_line_sources`) and shows the hash of the issued month it
belongs to (`marts.issued_months`), so a person can answer "where does this amount come from"
without the warehouse. Work items come from the queue (the truth), not the copy.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from console.roles import READ
from console.web import context, render, require
from workitems import store

INVOICE_NUMBER = re.compile(r"^BO-\d{6}-\d{6}$", re.IGNORECASE)


async def search(request: Request):
    """One box: an invoice number opens the invoice, an exact customer id the customer, else a list."""
    require(request, READ)
    q = (request.query_params.get("q") or "").strip()
    matches: list[dict] = []
    if q:
        ctx = context(request)
        if INVOICE_NUMBER.match(q):
            found = ctx.published.rows("SELECT invoice_number FROM marts.invoices WHERE upper(invoice_number) = upper(?)", [q])
            if found:
                return RedirectResponse(f"/invoices/{found[0]['invoice_number']}", status_code=303)
        exact = ctx.published.many({"c": ("SELECT customer_id FROM marts.customers WHERE customer_id = ?", [q]),
                                    "i": ("SELECT DISTINCT customer_id FROM marts.invoices WHERE customer_id = ?", [q])})
        if exact["c"] or exact["i"]:
            return RedirectResponse(f"/customers/{q}", status_code=303)
        like = f"%{q.lower()}%"
        matches = ctx.published.many({"m": (
            "SELECT customer_id, name, country FROM marts.customers WHERE lower(customer_id) LIKE ? OR lower(name) LIKE ? "
            "ORDER BY customer_id LIMIT 50", [like, like])})["m"]
    return render(request, "search.html", q=q, matches=matches)


async def customer_page(request: Request):
    require(request, READ)
    customer_id = request.path_params["customer_id"]
    ctx = context(request)
    data = ctx.published.many({
        "customer": ("SELECT * FROM marts.customers WHERE customer_id = ?", [customer_id]),
        "invoices": ("SELECT i.*, ar.amount_outstanding, ar.days_past_due FROM marts.invoices i "
                     "LEFT JOIN marts.accounts_receivable ar USING (invoice_number) WHERE i.customer_id = ? "
                     "ORDER BY billing_month DESC", [customer_id]),
        "charges": ("SELECT * FROM marts.charges WHERE customer_id = ? ORDER BY created_at DESC", [customer_id]),
        "refunds": ("SELECT * FROM marts.refunds WHERE customer_id = ? ORDER BY created_at DESC", [customer_id]),
        "tickets": ("SELECT * FROM marts.tickets WHERE customer_id = ? ORDER BY created_at DESC", [customer_id]),
        "restatements": ("SELECT * FROM marts.restatements WHERE customer_id = ? ORDER BY detected_at DESC", [customer_id]),
        "credits": ("SELECT * FROM marts.credit_ledger WHERE customer_id = ? ORDER BY billing_month DESC, grant_id",
                    [customer_id]),
    })
    if not data["customer"] and not data["invoices"]:
        raise HTTPException(404, f"no customer {customer_id} in the published copy")
    items = [r for r in store.list_items(ctx.queue) if r["customer_id"] == customer_id]
    return render(request, "customer.html", customer_id=customer_id, customer=(data["customer"] or [{}])[0],
                  items=items, **{k: v for k, v in data.items() if k != "customer"})


def lines_with_sources(lines: list[dict], sources: list[dict]) -> list[dict]:
    by_line: dict[int, list[dict]] = {}
    for source in sources:
        by_line.setdefault(source["line_number"], []).append(source)
    return [{**line, "sources": by_line.get(line["line_number"], [])} for line in lines]


async def invoice_page(request: Request):
    require(request, READ)
    number = request.path_params["invoice_number"]
    ctx = context(request)
    data = ctx.published.many({
        "invoice": ("SELECT * FROM marts.invoices WHERE invoice_number = ?", [number]),
        "lines": ("SELECT * FROM marts.invoice_lines WHERE invoice_number = ? ORDER BY line_number", [number]),
        "sources": ("SELECT * FROM marts.invoice_line_sources WHERE invoice_number = ? ORDER BY line_number, source_file",
                    [number]),
        "issued": ("SELECT m.* FROM marts.issued_months m JOIN marts.invoices i USING (billing_month) "
                   "WHERE i.invoice_number = ?", [number]),
        "receivable": ("SELECT * FROM marts.accounts_receivable WHERE invoice_number = ?", [number]),
        "charges": ("SELECT * FROM marts.charges WHERE invoice_number = ? ORDER BY created_at", [number]),
        "refunds": ("SELECT * FROM marts.refunds WHERE invoice_number = ? ORDER BY created_at", [number]),
        "restatements": ("SELECT * FROM marts.restatements WHERE invoice_number = ? ORDER BY detected_at", [number]),
    })
    if not data["invoice"]:
        raise HTTPException(404, f"no invoice {number} in the published copy")
    items = [r for r in store.list_items(ctx.queue) if r["invoice_number"] == number]
    return render(request, "invoice.html", invoice=data["invoice"][0], lines=lines_with_sources(data["lines"], data["sources"]),
                  issued=(data["issued"] or [None])[0], receivable=(data["receivable"] or [None])[0], items=items,
                  charges=data["charges"], refunds=data["refunds"], restatements=data["restatements"])
