"""The work-item queue in the operational store (docs/contract/work-items.md): raise, decide, close, audit.

The queue lives in `warehouse.ops_store` (SQLite in WAL mode by default, any
SQLAlchemy URL in BILLOPS_QUEUE_URL) and not in DuckDB, because a close holds
the warehouse's single write lock for minutes while the team keeps deciding.
Every change is one transaction that first locks the item (BEGIN IMMEDIATE on
SQLite, SELECT ... FOR UPDATE elsewhere) and moves its status with a
conditional UPDATE, so two people approving at once never lose an approval.

Four eyes: an item with `requires_approval` is approved by two different
people; the first approval is recorded (event `approval_recorded`) and the
item stays `open`; the second, by someone else, makes it `approved`.
`decided_by` is the person whose decision settled the item; every approver
is in the audit trail (`work_item_events`) with the channel it came through.

Who decides is established by the channel, not here: the command passes the OS
user running it (workitems/identity.py); code calling `approve` is trusted as
a direct writer of the store is. People are compared through
`identity.person_key`, so no spelling makes one person two.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from config.settings import workitem_webhook_url
from workitems.identity import os_user, person_key, visible
from workitems.tables import (  # noqa: F401 - the engines and the vocabulary are the store's interface too
    APPROVAL_THRESHOLD, CHANNELS, COLUMNS, DECIDED, KINDS, RULES, STATUSES, NoQueue, existing_queue_engine,
    queue_engine, work_item_assignees, work_item_events, work_item_numbers, work_items,
)
from workitems.webhook import post_items


class Refused(Exception):
    """A change the queue's rules forbid; the message says why, for the person who asked."""


@dataclass(frozen=True)
class Decision:
    work_item_id: str
    status: str
    approvals: tuple[str, ...]
    message: str


def dedup_key_for(kind: str, rule: str, invoice_number: str | None, charge_id: str | None = None,
                  ticket_id: str | None = None) -> str:
    """docs/contract/work-items.md: kind + rule + invoice + charge or ticket."""
    return ":".join([kind, rule, invoice_number or "-", charge_id or ticket_id or "-"])


def requires_approval_for(kind: str, amount: Decimal | None) -> bool:
    """Refunds and credit notes over $100 need two approvers."""
    return kind in ("refund", "credit_note") and amount is not None and amount > APPROVAL_THRESHOLD


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in evidence")


def _checked_item(item: Mapping) -> dict:
    """The row to insert, with the contract's rules applied; ValueError names what is wrong."""
    kind, rule = item.get("kind"), item.get("rule")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if rule not in RULES[kind]:
        raise ValueError(f"rule {rule!r} does not raise a {kind} (allowed: {', '.join(RULES[kind])})")
    amount = item.get("amount")
    if isinstance(amount, float):
        raise TypeError("amount must be a Decimal or a decimal string, never a float")
    if amount is not None:
        amount = Decimal(str(amount))
        if amount != amount.quantize(Decimal("0.01")) or amount <= 0:
            raise ValueError(f"amount must be positive with at most two decimals, not {amount}")
    if kind != "payment_extension" and amount is None:
        raise ValueError(f"a {kind} needs an amount")
    due = item.get("proposed_due_date")
    if isinstance(due, str):
        due = date.fromisoformat(due)
    dedup_key = item.get("dedup_key") or dedup_key_for(
        kind, rule, item.get("invoice_number"), item.get("charge_id"), item.get("ticket_id"))
    requires = item.get("requires_approval")
    return {
        "kind": kind, "rule": rule, "customer_id": item.get("customer_id"),
        "invoice_number": item.get("invoice_number"), "charge_id": item.get("charge_id"),
        "ticket_id": item.get("ticket_id"), "amount": amount, "proposed_due_date": due,
        "reason": item.get("reason"),
        "evidence": json.dumps(item.get("evidence") or {}, sort_keys=True, default=_json_default),
        "status": "open",
        # a raiser may ask for four eyes below the threshold, never waive them above it
        "requires_approval": bool(requires) or requires_approval_for(kind, amount),
        "dedup_key": dedup_key,
    }


def _existing_id(conn: Connection, dedup_key: str) -> str | None:
    return conn.execute(sa.select(work_items.c.work_item_id).where(work_items.c.dedup_key == dedup_key)).scalar()


def record_event(conn: Connection, work_item_id: str, action: str, by: str, note: str | None = None,
                 from_status: str | None = None, to_status: str | None = None, channel: str = "sensor") -> None:
    """One line of the audit trail: who (the identity and the OS user of the writing process), through
    which channel, when, why, which move."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    conn.execute(work_item_events.insert().values(
        work_item_id=work_item_id, at=_now(), action=action, by=by, os_user=os_user(), note=note,
        from_status=from_status, to_status=to_status, channel=channel))


def _insert(conn: Connection, item: Mapping, raised_by: str, channel: str = "sensor") -> tuple[str, bool]:
    row = _checked_item(item)
    existing = _existing_id(conn, row["dedup_key"])
    if existing:  # raised before, whatever its status: a decided item is never reopened
        return existing, False
    number = conn.execute(work_item_numbers.insert().values(dedup_key=row["dedup_key"])).inserted_primary_key[0]
    work_item_id = f"WI-{number:06d}"
    created_at = _now()
    conn.execute(work_items.insert().values(work_item_id=work_item_id, created_at=created_at, **row))
    record_event(conn, work_item_id, "created", raised_by, row["reason"], None, "open", channel)
    return work_item_id, True


def raise_items(engine: Engine, items: Iterable[Mapping], raised_by: str = "sensor",
                channel: str = "sensor") -> list[tuple[str, bool]]:
    """Write items in one transaction (durable on return), then post the webhook for the new ones.

    Idempotent through `dedup_key`: an item already in the queue returns (its id, False) untouched.
    A raiser records its own progress (a close's materialization, a sensor's cursor) only after this returns.
    """
    items = list(items)
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                results = [_insert(conn, item, raised_by, channel) for item in items]
            break
        except IntegrityError:  # a concurrent raiser wrote one of these keys first: re-read, now a no-op
            if attempt == 2:
                raise
    notify_new_items(engine, [work_item_id for work_item_id, created in results if created], channel)
    return results


def notify_new_items(engine: Engine, work_item_ids: list[str], channel: str = "sensor") -> None:
    """Post the new items to BILLOPS_WORKITEM_WEBHOOK_URL, if set; the outcome goes into each audit trail."""
    url = workitem_webhook_url()
    if not url or not work_item_ids:
        return
    rows = [as_json_row(get_item(engine, work_item_id)) for work_item_id in work_item_ids]
    for work_item_id, (ok, note) in zip(work_item_ids, post_items(url, rows)):
        with engine.begin() as conn:
            record_event(conn, work_item_id, "webhook_sent" if ok else "webhook_failed", "webhook", note, channel=channel)


def raise_item(target: Engine | Connection, item: Mapping, raised_by: str = "sensor") -> tuple[str, bool]:
    """Raise one item; returns (work_item_id, created). On an Engine it commits and posts the webhook;
    on a Connection it writes inside the caller's transaction, who calls
    `notify_new_items` after the commit."""
    if isinstance(target, Connection):
        return _insert(target, item, raised_by)
    return raise_items(target, [item], raised_by)[0]


def as_json_row(item: Mapping) -> dict:
    """A marts.work_items row as JSON: amounts as strings with two decimals, dates ISO (timestamps UTC, `Z`),
    evidence an object."""
    row = {column: item[column] for column in COLUMNS}
    row["amount"] = None if row["amount"] is None else f"{row['amount']:.2f}"
    for column in ("proposed_due_date", "created_at", "decided_at"):
        value = row[column]
        row[column] = None if value is None else (
            value.isoformat(timespec="seconds") + "Z" if isinstance(value, datetime) else value.isoformat())
    row["evidence"] = json.loads(row["evidence"]) if isinstance(row["evidence"], str) else row["evidence"]
    return row


def list_items(engine: Engine, status: str | None = None, kind: str | None = None) -> list[dict]:
    """Items in the order they were raised, optionally of one status and/or kind."""
    query = sa.select(work_items).order_by(work_items.c.created_at, work_items.c.work_item_id)
    if status:
        query = query.where(work_items.c.status == status)
    if kind:
        query = query.where(work_items.c.kind == kind)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def approvals_by_item(engine: Engine) -> dict[str, tuple[str, ...]]:
    """Who approved each item so far, in one query (for listings)."""
    query = (sa.select(work_item_events.c.work_item_id, work_item_events.c.by)
             .where(work_item_events.c.action.in_(("approval_recorded", "approved")))
             .order_by(work_item_events.c.event_id))
    approvals: dict[str, tuple[str, ...]] = {}
    with engine.connect() as conn:
        for work_item_id, by in conn.execute(query):
            approvals[work_item_id] = (*approvals.get(work_item_id, ()), by)
    return approvals


def get_item(engine: Engine | Connection, work_item_id: str) -> dict | None:
    """The item with its audit trail (`events`, oldest first) and its approvers, or None."""
    if isinstance(engine, Engine):
        with engine.connect() as conn:
            return get_item(conn, work_item_id)
    row = engine.execute(sa.select(work_items).where(work_items.c.work_item_id == work_item_id)).first()
    if row is None:
        return None
    events = [dict(e._mapping) for e in engine.execute(
        sa.select(work_item_events).where(work_item_events.c.work_item_id == work_item_id)
        .order_by(work_item_events.c.event_id))]
    item = dict(row._mapping)
    item["events"] = events
    item["approvals"] = tuple(e["by"] for e in events if e["action"] in ("approval_recorded", "approved"))
    return item


def _locked_item(conn: Connection, work_item_id: str) -> dict:
    row = conn.execute(
        sa.select(work_items).where(work_items.c.work_item_id == work_item_id).with_for_update()).first()
    if row is None:
        raise Refused(f"no work item {work_item_id}")
    return get_item(conn, work_item_id)


def _refuse_if_decided(item: dict, wanted: str) -> None:
    if item["status"] in DECIDED:
        when = item["decided_at"].isoformat(timespec="seconds") if item["decided_at"] else "earlier"
        raise Refused(f"{item['work_item_id']} is already {item['status']} (by {item['decided_by']} at {when}Z); "
                      f"a decided item cannot be {wanted}")


def _move(conn: Connection, item: dict, to_status: str, by: str, values: dict) -> None:
    """The status change itself, only if nobody moved the item since we read it."""
    result = conn.execute(work_items.update()
                          .where(work_items.c.work_item_id == item["work_item_id"], work_items.c.status == item["status"])
                          .values(status=to_status, **values))
    if result.rowcount != 1:
        raise Refused(f"{item['work_item_id']} changed while you were deciding; look at it again")


def _people(event: Mapping) -> set[str]:
    """Who an event speaks for: its identity; for a command written before identities were real
    (channel NULL, `by` was free text), its OS user too, so an upgrade opens no way round four eyes."""
    people = {person_key(event["by"])}
    if event.get("channel") is None:
        people.add(person_key(event["os_user"]))
    return people


def _decider(by: str, verb: str) -> str:
    by = " ".join((by or "").split())
    if not by:
        raise Refused(f"who {verb} is not known")
    return by


def approve(engine: Engine, work_item_id: str, by: str, note: str | None = None, channel: str = "command",
            may_settle_four_eyes: bool = True) -> Decision:
    """Approve as `by` (the identity its channel established); an item that requires approval needs a
    second approver who is another person (after `person_key`) than the first, and neither is the raiser.

    `may_settle_four_eyes=False` (a console specialist, decisions #91) lets `by` record the first
    approval of a four-eyes item but not the one that settles it; judged inside the item's lock, so
    an approval recorded by someone else a moment earlier cannot turn a proposal into the final word."""
    by = _decider(by, "approves")
    me = person_key(by)
    with engine.begin() as conn:
        item = _locked_item(conn, work_item_id)
        _refuse_if_decided(item, "approved")
        created = item["events"][0]
        if me == person_key(created["by"]):
            raise Refused(f"{work_item_id} was raised by {created['by']}; the requester cannot approve it")
        first = next((e for e in item["events"] if e["action"] in ("approval_recorded", "approved") and me in _people(e)),
                     None)
        if first:
            account = "" if person_key(first["by"]) == me else f" as the OS user {first['os_user']}"
            raise Refused(f"{work_item_id} needs two different people (four eyes): {visible(first['by'])} already "
                          f"approved it{account}; a second person must approve")
        needed = 2 if item["requires_approval"] else 1
        approvals = (*item["approvals"], by)
        if len(approvals) < needed:
            _move(conn, item, "open", by, {})  # no status change, but it takes the conditional-update check
            record_event(conn, work_item_id, "approval_recorded", by, note, "open", "open", channel)
            return Decision(work_item_id, "open", approvals,
                            f"{work_item_id}: approval 1 of {needed} recorded by {by}; a second person must approve")
        if needed == 2 and not may_settle_four_eyes:
            raise Refused(f"{work_item_id} already has its first approval ({visible(item['approvals'][0])}); "
                          "the second approval of a four-eyes item needs an approver")
        _move(conn, item, "approved", by, {"decided_at": _now(), "decided_by": by})
        record_event(conn, work_item_id, "approved", by, note, item["status"], "approved", channel)
        who = " and ".join(approvals)
        return Decision(work_item_id, "approved", approvals, f"{work_item_id} approved by {who}")


def decline(engine: Engine, work_item_id: str, by: str, reason: str, channel: str = "command") -> Decision:
    """Decline an open item as `by` (the identity its channel established); one person and a reason suffice."""
    by = _decider(by, "declines")
    if not (reason or "").strip():
        raise Refused("a decline needs a --reason")
    with engine.begin() as conn:
        item = _locked_item(conn, work_item_id)
        _refuse_if_decided(item, "declined")
        _move(conn, item, "declined", by, {"decided_at": _now(), "decided_by": by})
        record_event(conn, work_item_id, "declined", by, reason, item["status"], "declined", channel)
        return Decision(work_item_id, "declined", item["approvals"], f"{work_item_id} declined by {by}: {reason}")


def mark_done(engine: Engine, work_item_id: str, evidence: Mapping, by: str = "payments feed",
              channel: str = "sensor") -> bool:
    """An approved item's money moved (e.g. its refund arrived in the payments feed): `done`.

    `evidence` (refund id, amount, ...) is kept under `evidence.done`. Returns False when the
    item is already done, so every close can call it again; refuses other statuses.
    """
    with engine.begin() as conn:
        item = _locked_item(conn, work_item_id)
        if item["status"] == "done":
            return False
        if item["status"] != "approved":
            raise Refused(f"{work_item_id} is {item['status']}; only an approved item can be done")
        merged = {**json.loads(item["evidence"]), "done": dict(evidence)}
        _move(conn, item, "done", by, {"evidence": json.dumps(merged, sort_keys=True, default=_json_default)})
        record_event(conn, work_item_id, "done", by, json.dumps(dict(evidence), sort_keys=True, default=_json_default),
                     "approved", "done", channel)
        return True


def assignees(engine: Engine) -> dict[str, str]:
    """Who works each item now (work_item_id -> assignee), in one query (for listings)."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(work_item_assignees.c.work_item_id, work_item_assignees.c.assignee)).all())


def assign(engine: Engine, work_item_id: str, to: str, by: str, channel: str = "console") -> str:
    """Make `to` the item's assignee (an open item only), audited as an `assigned` event by `by`."""
    to, by = _decider(to, "is assigned"), _decider(by, "assigns")
    with engine.begin() as conn:
        item = _locked_item(conn, work_item_id)
        if item["status"] != "open":
            raise Refused(f"{work_item_id} is {item['status']}; only an open item is assigned")
        conn.execute(work_item_assignees.delete().where(work_item_assignees.c.work_item_id == work_item_id))
        conn.execute(work_item_assignees.insert().values(work_item_id=work_item_id, assignee=to, assigned_at=_now()))
        record_event(conn, work_item_id, "assigned", by, f"assigned to {to}", "open", "open", channel)
    return f"{work_item_id} assigned to {to}"
