"""The queue pages: open items by age, amount and due time against their SLA; one item with all its evidence.

The queue's truth is the operational store (workitems/store.py), read on every request: a
decision made a second ago on the command line is on the page. Decisions go through the same
`approve`/`decline` as `billops workitems`, with the console account as the identity and
`console` as the channel, so four eyes count a console account and an OS user of the same name
as one person (decisions #90). After a decision the published copy's `marts.work_items` is
refreshed (as the command does), after the response, so BI sees it without waiting for a close.

The SLA clock starts when the item is raised (`created_at`) and runs for the kind's target
(BILLOPS_SLA_HOURS: refunds and credit notes 48 h, extensions 24 h by default).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request

from console.roles import APPROVE, ASSIGN, DECLINE, READ, SETTLE_FOUR_EYES, may
from console.web import back_to, context, form_of, render, require
from workitems import store

SORTS = {
    "due": lambda r: (r["due_at"], r["work_item_id"]),
    "age": lambda r: (r["created_at"], r["work_item_id"]),
    "amount": lambda r: (-(r["amount"] or Decimal(0)), r["work_item_id"]),
    "customer": lambda r: (r["customer_id"] or "", r["work_item_id"]),
}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _hours(delta: timedelta) -> str:
    """A duration as people read a clock: 3 d 4 h, 5 h 12 min, 40 min."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    text = f"{days} d {hours} h" if days else f"{hours} h {mins} min" if hours else f"{mins} min"
    return text if delta >= timedelta(0) else f"-{text}"


def with_sla(item: dict, sla_hours: dict[str, int], now: datetime) -> dict:
    """The item with its age, due time, time left and whether the SLA is breached (for an open item:
    now past due; for a decided one: decided after due)."""
    target = timedelta(hours=sla_hours.get(item["kind"], 48))
    due = item["created_at"] + target
    settled = item.get("decided_at")
    breached = (settled or now) > due
    return {**item, "sla_hours": sla_hours.get(item["kind"], 48), "due_at": due, "age": _hours(now - item["created_at"]),
            "left": _hours(due - now) if not settled else "", "breached": breached}


def queue_rows(request: Request, status: str | None) -> list[dict]:
    ctx = context(request)
    now = _now()
    approvals = store.approvals_by_item(ctx.queue)
    assignees = store.assignees(ctx.queue)
    return [with_sla({**r, "approvals": approvals.get(r["work_item_id"], ()), "assignee": assignees.get(r["work_item_id"])},
                     ctx.settings.sla_hours, now)
            for r in store.list_items(ctx.queue, status=status or None)]


async def queue_page(request: Request):
    me = require(request, READ)
    q = request.query_params
    status = q.get("status", "open")
    rows = queue_rows(request, None if status == "all" else status)
    for key in ("kind", "rule"):
        if q.get(key):
            rows = [r for r in rows if r[key] == q[key]]
    if q.get("assignee") == "me":
        rows = [r for r in rows if r["assignee"] == me.name]
    elif q.get("assignee") == "none":
        rows = [r for r in rows if not r["assignee"]]
    if q.get("customer"):
        rows = [r for r in rows if q["customer"].lower() in (r["customer_id"] or "").lower()]
    sort = q.get("sort", "due") if q.get("sort", "due") in SORTS else "due"
    rows.sort(key=SORTS[sort])
    return render(request, "queue.html", rows=rows, status=status, sort=sort, filters=dict(q),
                  sla=context(request).settings.sla_hours, msg=q.get("msg"), err=q.get("err"))


def _item_or_404(request: Request, work_item_id: str) -> dict:
    ctx = context(request)
    item = store.get_item(ctx.queue, work_item_id)
    if item is None:
        raise HTTPException(404, f"no work item {work_item_id}")
    item["assignee"] = store.assignees(ctx.queue).get(work_item_id)
    return with_sla(item, ctx.settings.sla_hours, _now())


def _linked(request: Request, item: dict) -> dict[str, list[dict]]:
    """What the published copy holds about the item: its invoice, the invoice's charges, refunds,
    restatements and (when published) the ticket."""
    ctx = context(request)
    number = item["invoice_number"] or ""
    return ctx.published.many({
        "invoice": ("SELECT * FROM marts.invoices WHERE invoice_number = ?", [number]),
        "charges": ("SELECT * FROM marts.charges WHERE invoice_number = ? OR charge_id = ? ORDER BY created_at",
                    [number, item["charge_id"] or ""]),
        "refunds": ("SELECT * FROM marts.refunds WHERE invoice_number = ? OR work_item_id = ? ORDER BY created_at",
                    [number, item["work_item_id"]]),
        "restatements": ("SELECT * FROM marts.restatements WHERE invoice_number = ? ORDER BY detected_at", [number]),
        "tickets": ("SELECT * FROM marts.tickets WHERE ticket_id = ? OR (invoice_number = ? AND invoice_number <> '') "
                    "ORDER BY created_at", [item["ticket_id"] or "", number]),
    })


async def item_page(request: Request):
    me = require(request, READ)
    item = _item_or_404(request, request.path_params["work_item_id"])
    try:
        linked = _linked(request, item)
    except Exception as exc:  # noqa: BLE001 - no published copy yet: the item still shows
        linked, item["linked_error"] = {}, str(exc)
    evidence = json.loads(item["evidence"]) if isinstance(item["evidence"], str) else item["evidence"]
    needed = 2 if item["requires_approval"] else 1
    settles = len(item["approvals"]) + 1 >= needed
    may_approve = may(me.role, APPROVE) and (not (settles and needed == 2) or may(me.role, SETTLE_FOUR_EYES))
    return render(request, "item.html", item=item, evidence=json.dumps(evidence, indent=2, sort_keys=True),
                  linked=linked, needed=needed, may_approve=may_approve, q=request.query_params)


def _republish(request: Request) -> BackgroundTask:
    """Refresh marts.work_items in the published copy once the response is sent (as the command does)."""
    from workitems.mirror import publish_work_items

    ctx = context(request)

    def refresh() -> None:
        try:
            publish_work_items(ctx.published_folder, ctx.queue)
        except Exception:  # noqa: BLE001 - the decision is committed; the next close publishes it
            pass

    return BackgroundTask(refresh)


async def _decide(request: Request, form_spec, act):
    """Approve or decline from the item page: `act(queue, work_item_id, me, form)` decides; a refusal is
    shown on the page, a decision republishes marts.work_items after the response."""
    me, form = await form_of(request, form_spec)
    work_item_id = request.path_params["work_item_id"]
    url = f"/items/{work_item_id}"
    try:
        decision = act(context(request).queue, work_item_id, me, form)
    except store.Refused as refused:
        return back_to(url, error=str(refused))
    response = back_to(url, message=decision.message)
    response.background = _republish(request)
    return response


async def approve(request: Request):
    return await _decide(request, APPROVE, lambda queue, work_item_id, me, form: store.approve(
        queue, work_item_id, me.name, form.get("note") or None,
        channel="console", may_settle_four_eyes=may(me.role, SETTLE_FOUR_EYES)))


async def decline(request: Request):
    return await _decide(request, DECLINE, lambda queue, work_item_id, me, form: store.decline(
        queue, work_item_id, me.name, form.get("reason", ""), channel="console"))


async def assign_to_me(request: Request):
    me, form = await form_of(request, ASSIGN)
    work_item_id = request.path_params["work_item_id"]
    back = str(form.get("back", ""))
    if not back.startswith("/") or back.startswith("//"):  # only a page of this console, never another site
        back = f"/items/{work_item_id}"
    try:
        message = store.assign(context(request).queue, work_item_id, me.name, me.name, channel="console")
    except store.Refused as refused:
        return back_to(back, error=str(refused))
    return back_to(back, message=message)
