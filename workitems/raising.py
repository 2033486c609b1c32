"""Raise the work items the rules want, close those whose refund arrived, and mirror the queue: one close's duty.

Runs inside a close run only (the `marts/work_items` asset, workitems/asset.py), on the warehouse
connection the run already holds: nothing outside a close opens the warehouse, not even to read
(DuckDB's read lock blocks the writer too). Every step is idempotent, so a re-executed run, a
restatement run followed by its month's run, or a crash between writing the items and recording
the materialization raises nothing twice and loses nothing:

1. propose every item the rules want now (``workitems.rules``, not only those for new data);
2. write the ones not yet in the queue with ``raise_items`` (one committed transaction; the store
   de-duplicates by ``dedup_key`` and never reopens a decided item), then post the webhook;
3. mark ``done`` each approved item whose refund arrived (a succeeded refund in
   ``staging.stg_payments__refunds`` with ``metadata.work_item_id``); a refund naming an item that is
   not approved is reported and changes nothing;
4. replace ``marts.work_items`` with the queue, in the caller's connection (the dbt marts that read
   ``queue.work_items`` run after this, so they see the items just raised).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
from sqlalchemy import Engine

from workitems.mirror import write_work_items
from workitems.rules import executed_refunds, propose_items
from workitems.store import Refused, list_items, mark_done, raise_items

RAISED_BY = "billops close"  # who the audit trail names as the raiser: no OS account name holds a space
CHANNEL = "close"

REQUIRED = {f"audit.{name}" for name in ("issued_months", "issued_invoices", "restatements")} | {
    f"staging.{name}" for name in ("stg_payments__charges", "stg_payments__refunds", "stg_payments__disputes",
                                   "stg_support__tickets", "stg_reference__customers")}
PRESENT_SQL = """
SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE schema_name IN ('audit', 'staging')
UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE schema_name = 'staging'
"""


@dataclass
class RaiseOutcome:
    """What one close did to the queue."""

    proposed: int = 0
    raised: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    refused_done: list[str] = field(default_factory=list)  # "<refund id>: <why>" per refund naming no approved item
    queue_size: int = 0
    note: str = ""

    @property
    def summary(self) -> str:
        """The line `billops close` prints (cli/summary.py prints it from the run's metadata instead)."""
        return f"{len(self.raised)} raised, {len(self.done)} marked done"


def raise_and_mirror(con: duckdb.DuckDBPyConnection, engine: Engine) -> RaiseOutcome:
    """Steps 1-4 of the module docstring on `con`, a read-write connection the close run holds."""
    present = {row[0] for row in con.execute(PRESENT_SQL).fetchall()}
    if not REQUIRED <= present:  # a warehouse no month was ever rated in: nothing to read yet
        return RaiseOutcome(note="no month rated yet: nothing to raise")
    queue = list_items(engine)
    proposals = propose_items(con, queue)
    arrived = executed_refunds(con)

    known = {item["dedup_key"] for item in queue}
    results = raise_items(engine, [p for p in proposals if p["dedup_key"] not in known],
                          raised_by=RAISED_BY, channel=CHANNEL)
    outcome = RaiseOutcome(proposed=len(proposals),
                           raised=[work_item_id for work_item_id, created in results if created])
    for refund in arrived:
        evidence = {"refund_id": refund["refund_id"], "charge_id": refund["charge_id"], "amount": refund["amount"],
                    "refunded_at": refund["created_at"]}
        try:
            if mark_done(engine, refund["work_item_id"], evidence, channel=CHANNEL):
                outcome.done.append(refund["work_item_id"])
        except Refused as refusal:  # a refund naming an unknown or undecided item: reported, never fatal
            outcome.refused_done.append(f"{refund['refund_id']}: {refusal}")
    con.execute("BEGIN TRANSACTION")
    try:
        outcome.queue_size = write_work_items(con, engine)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return outcome
