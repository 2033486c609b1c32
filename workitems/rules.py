"""Rules R1, R2, R3 and E1 of docs/contract/work-items.md: what the queue should hold, proposed from the warehouse.

Set-based SQL on the close run's warehouse connection (workitems/raising.py); the only Python per row is
E1's eligibility (``workitems.eligibility.assess``, the rule said once, which the
simulator also imports) on invoices whose charge failed. The proposals are
plain dicts with the columns of ``marts.work_items``, ready for
``workitems.store.raise_items`` (idempotent by ``dedup_key``).

What the rules read: ``audit.issued_invoices``, ``audit.restatements``,
``staging.stg_payments__charges`` / ``__refunds`` / ``__disputes``,
``staging.stg_support__tickets``, ``staging.stg_reference__customers``, and the
queue itself (``queue_items``, registered from the operational store), because
the queue knows what the warehouse does not:

* an invoice's over-billing is refunded once: an invoice already holding an R1
  or R3 item gets no other R1/R3 item (an R1 credit note raised while unpaid
  is not followed by an R1 refund once paid; a claim arriving after the R1 item
  was raised adds nothing);
* E1's "no extension in the last 180 days" reads the extensions approved or
  done in the queue (granted at ``coalesce(decided_at, created_at)``, as the
  simulator reads ``marts.work_items``);
* approved credit notes lower what an invoice asks for (docs/contract/billing-rules.md §7).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from workitems.eligibility import ExtensionCase, assess, failed_criteria
from workitems.store import dedup_key_for, requires_approval_for

CLAIM_TAGS = ("incorrect_invoice", "refund_request")

QUEUE_SCHEMA = pa.schema([
    ("work_item_id", pa.string()), ("kind", pa.string()), ("rule", pa.string()), ("customer_id", pa.string()),
    ("invoice_number", pa.string()), ("amount", pa.decimal128(18, 2)), ("status", pa.string()),
    ("created_at", pa.timestamp("us")), ("decided_at", pa.timestamp("us")),
])

# Invoices, what was paid on them, their latest restatement and the claims naming them.
_BASE = f"""
WITH invoices AS (
    SELECT invoice_number, customer_id, billing_month, total, due_date FROM audit.issued_invoices
), charge_refunds AS (
    SELECT charge_id, sum(amount) AS refunded FROM staging.stg_payments__refunds
    WHERE status = 'succeeded' GROUP BY charge_id
), charges AS (
    SELECT c.charge_id, c.customer_id, c.invoice_number, c.amount, c.status, c.created_at,
           coalesce(r.refunded, 0) AS refunded
    FROM staging.stg_payments__charges c LEFT JOIN charge_refunds r USING (charge_id)
), paid AS (
    SELECT invoice_number, sum(amount - refunded) AS net_paid, count(*) AS succeeded_charges
    FROM charges WHERE status = 'succeeded' GROUP BY invoice_number
), approved_credit_notes AS (
    SELECT invoice_number, sum(amount) AS credited FROM queue_items
    WHERE kind = 'credit_note' AND status IN ('approved', 'done') GROUP BY invoice_number
), latest_restatement AS (
    SELECT * FROM audit.restatements WHERE invoice_number IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY invoice_number ORDER BY detected_at DESC, run_id DESC) = 1
), claims AS (
    SELECT CAST(ticket_id AS VARCHAR) AS ticket_id, ticket_id AS ticket_number, customer_id AS ticket_customer_id,
           invoice_number, tags, created_at AS ticket_created_at
    FROM staging.stg_support__tickets
    WHERE invoice_number IS NOT NULL AND list_has_any(tags, {list(CLAIM_TAGS)})
), first_claim AS (
    SELECT invoice_number, arg_min(ticket_id, (ticket_created_at, ticket_number)) AS ticket_id,
           list(ticket_id ORDER BY ticket_created_at, ticket_number) AS claim_tickets
    FROM claims GROUP BY invoice_number
), already_refunded_once AS (  -- an invoice's over-billing is in the queue at most once
    SELECT DISTINCT invoice_number FROM queue_items WHERE rule IN ('R1', 'R3')
)
"""

OVERBILLING_SQL = _BASE + """
SELECT i.invoice_number, i.customer_id, i.total AS invoice_total, i.billing_month,
       coalesce(p.net_paid, 0) AS net_paid, coalesce(p.net_paid, 0) >= i.total AS is_paid,
       r.issued_total, r.recomputed_total, r.difference, r.cause, r.detected_at, r.run_id,
       -r.difference AS amount, f.ticket_id, f.claim_tickets,
       CASE WHEN f.ticket_id IS NULL THEN 'R1' ELSE 'R3' END AS rule
FROM latest_restatement r
JOIN invoices i USING (invoice_number)
LEFT JOIN paid p USING (invoice_number)
LEFT JOIN first_claim f USING (invoice_number)
WHERE r.difference < 0 AND invoice_number NOT IN (SELECT invoice_number FROM already_refunded_once)
ORDER BY i.invoice_number
"""

DUPLICATE_CHARGES_SQL = _BASE + """
, succeeded AS (
    SELECT *, row_number() OVER (PARTITION BY invoice_number ORDER BY created_at, charge_id) AS nth,
           list(charge_id) OVER (PARTITION BY invoice_number ORDER BY created_at, charge_id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS invoice_charges
    FROM charges WHERE status = 'succeeded'
)
SELECT s.invoice_number, coalesce(i.customer_id, s.customer_id) AS customer_id, s.charge_id, s.amount AS charge_amount,
       s.refunded, s.amount - s.refunded AS amount, s.created_at, s.nth, s.invoice_charges, i.total AS invoice_total
FROM succeeded s LEFT JOIN invoices i USING (invoice_number)
WHERE s.nth > 1 AND s.amount - s.refunded > 0
ORDER BY s.invoice_number, s.nth
"""

FAILED_PAYMENTS_SQL = _BASE + """
, failed AS (
    SELECT invoice_number, max(created_at) AS failed_at,
           arg_min(charge_id, (created_at, charge_id)) AS first_failed_charge,
           arg_max(failure_code, (created_at, charge_id)) AS failure_code,
           list(charge_id ORDER BY created_at, charge_id) AS failed_charges
    FROM staging.stg_payments__charges WHERE status = 'failed' GROUP BY invoice_number
), lost_dispute_customers AS (
    SELECT DISTINCT c.customer_id FROM staging.stg_payments__disputes d JOIN charges c USING (charge_id)
    WHERE d.status = 'lost'
), extensions AS (
    SELECT customer_id, list(coalesce(decided_at, created_at) ORDER BY coalesce(decided_at, created_at)) AS granted_at
    FROM queue_items WHERE kind = 'payment_extension' AND status IN ('approved', 'done') GROUP BY customer_id
)
SELECT i.invoice_number, i.customer_id, i.total AS invoice_total, i.due_date,
       greatest(i.total - coalesce(p.net_paid, 0) - coalesce(cn.credited, 0), 0) AS amount_due,
       f.failed_at, f.first_failed_charge, f.failure_code, f.failed_charges,
       cu.created_at AS customer_created_at, coalesce(e.granted_at, []) AS extensions_granted_at,
       i.customer_id IN (SELECT customer_id FROM lost_dispute_customers) AS has_lost_dispute
FROM failed f
JOIN invoices i USING (invoice_number)
LEFT JOIN paid p USING (invoice_number)
LEFT JOIN approved_credit_notes cn USING (invoice_number)
LEFT JOIN staging.stg_reference__customers cu ON cu.customer_id = i.customer_id
LEFT JOIN extensions e ON e.customer_id = i.customer_id
WHERE NOT EXISTS (SELECT 1 FROM charges s WHERE s.invoice_number = f.invoice_number
                  AND s.status = 'succeeded' AND s.created_at > f.failed_at)
  AND coalesce(p.net_paid, 0) < i.total
ORDER BY i.invoice_number
"""

# Claims naming an invoice whose recomputation finds no over-billing (the same test as
# dbt_project/models/marts/workitems/billing_claims_no_error.sql, which lists them).
CLAIMS_NO_ERROR_SQL = _BASE + """
SELECT c.ticket_id, c.invoice_number FROM claims c LEFT JOIN latest_restatement r USING (invoice_number)
WHERE r.difference IS NULL OR r.difference >= 0 ORDER BY c.ticket_id
"""

EXECUTED_REFUNDS_SQL = """
SELECT refund_id, work_item_id, charge_id, amount, created_at FROM staging.stg_payments__refunds
WHERE work_item_id IS NOT NULL AND status = 'succeeded' ORDER BY created_at, refund_id
"""

class WarehouseBusy(Exception):
    """A close (or another writer) holds the warehouse's lock; try again at the next tick."""


def open_read_only(warehouse: str | Path) -> duckdb.DuckDBPyConnection:
    """The warehouse read-only, for tests and tools on a copy; WarehouseBusy when a writer holds it.
    Nothing but a close run opens the production warehouse (decisions #60)."""
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(str(exc)) from exc
        raise


def register_queue(con: duckdb.DuckDBPyConnection, queue_rows: Iterable[Mapping]) -> None:
    """Make the queue's items visible to the rules' SQL as `queue_items`."""
    rows = [{name: row.get(name) for name in QUEUE_SCHEMA.names} for row in queue_rows]
    con.register("queue_items", pa.Table.from_pylist(rows, schema=QUEUE_SCHEMA))


def _records(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Warehouse timestamps are naive UTC; eligibility compares aware instants."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def overbilling_items(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """R1 (restatement) and R3 (claim confirmed by a restatement): one item per over-billed invoice."""
    items = []
    for r in _records(con, OVERBILLING_SQL):
        kind = "refund" if r["is_paid"] else "credit_note"
        restatement = {key: r[key] for key in ("billing_month", "issued_total", "recomputed_total", "difference",
                                               "cause", "detected_at", "run_id")}
        evidence = {"restatement": restatement, "invoice_total": r["invoice_total"], "net_paid": r["net_paid"],
                    "paid": r["is_paid"]}
        if r["rule"] == "R3":
            evidence["claim_tickets"] = list(r["claim_tickets"])
            reason = (f"claim in ticket {r['ticket_id']} confirmed: recomputed {r['recomputed_total']} "
                      f"< issued {r['issued_total']} ({r['cause']})")
        else:
            reason = f"restated {r['recomputed_total']} < issued {r['issued_total']} ({r['cause']})"
        items.append(_item(kind, r["rule"], r["customer_id"], r["invoice_number"], None, r["ticket_id"],
                           r["amount"], None, reason, evidence))
    return items


def duplicate_charge_items(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """R2: every succeeded charge after the first on one invoice, refunded in full (less what was refunded)."""
    return [_item("refund", "R2", r["customer_id"], r["invoice_number"], r["charge_id"], None, r["amount"], None,
                  f"succeeded charge #{r['nth']} for {r['invoice_number']}",
                  {"charges": list(r["invoice_charges"]), "charge_amount": r["charge_amount"],
                   "already_refunded": r["refunded"], "invoice_total": r["invoice_total"]})
            for r in _records(con, DUPLICATE_CHARGES_SQL)]


def failed_payment_items(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """E1: every unpaid invoice whose last failed charge had no later success; eligibility decides the rest.

    The dedup key names the invoice's FIRST failed charge, so a retry that fails after the item
    was raised does not raise a second extension for the same invoice.
    """
    items = []
    for r in _records(con, FAILED_PAYMENTS_SQL):
        case = ExtensionCase(
            failed_at=_utc(r["failed_at"]), customer_created_at=_utc(r["customer_created_at"]),
            extensions_granted_at=tuple(_utc(at) for at in r["extensions_granted_at"]),
            has_lost_dispute=bool(r["has_lost_dispute"]), amount_due=r["amount_due"], due_date=r["due_date"])
        verdict = assess(case)
        eligible = isinstance(verdict, dt.date)
        evidence = {"failed_charges": list(r["failed_charges"]), "failed_at": r["failed_at"],
                    "failure_code": r["failure_code"], "customer_created_at": r["customer_created_at"],
                    "extensions_granted_at": list(r["extensions_granted_at"]),
                    "has_lost_dispute": r["has_lost_dispute"], "amount_due": r["amount_due"],
                    "due_date": r["due_date"], "failed_criteria": failed_criteria(case)}
        items.append(_item("payment_extension", "E1", r["customer_id"], r["invoice_number"],
                           r["first_failed_charge"], None, None, verdict if eligible else None,
                           "eligible: due date + 14 days" if eligible else verdict, evidence))
    return items


def _item(kind: str, rule: str, customer_id: str | None, invoice_number: str, charge_id: str | None,
          ticket_id: str | None, amount: Decimal | None, proposed_due_date: dt.date | None, reason: str,
          evidence: dict) -> dict:
    return {
        "kind": kind, "rule": rule, "customer_id": customer_id, "invoice_number": invoice_number,
        "charge_id": charge_id, "ticket_id": ticket_id, "amount": amount, "proposed_due_date": proposed_due_date,
        "reason": reason, "evidence": evidence, "requires_approval": requires_approval_for(kind, amount),
        "dedup_key": dedup_key_for(kind, rule, invoice_number, charge_id, ticket_id),
    }


def propose_items(con: duckdb.DuckDBPyConnection, queue_rows: Iterable[Mapping] = ()) -> list[dict]:
    """Every item the rules want in the queue now (those already there included: the store de-duplicates)."""
    register_queue(con, queue_rows)
    return overbilling_items(con) + duplicate_charge_items(con) + failed_payment_items(con)


def claims_without_error(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(ticket_id, invoice_number) of claims whose invoice shows no over-billing: reviewed, never refunded."""
    register_queue(con, ())
    return [tuple(row) for row in con.execute(CLAIMS_NO_ERROR_SQL).fetchall()]


def executed_refunds(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Succeeded refunds that name a work item (metadata.work_item_id): the money moved."""
    return _records(con, EXECUTED_REFUNDS_SQL)
