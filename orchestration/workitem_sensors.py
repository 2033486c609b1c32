"""The sensor that raises the billing team's work items (docs/contract/work-items.md) and closes them when refunds arrive.

Each tick: open the warehouse READ-ONLY (a close holding it means skip the tick,
cursor untouched: the sensor never fights a close), read a watermark of what the
rules read, propose every item the rules want (``workitems.rules``) when the
watermark moved since the cursor, write the new ones with ``raise_items`` (one
committed transaction), mark ``done`` the approved items whose refund arrived
in the payments feed (a succeeded refund with ``metadata.work_item_id``), and
only THEN advance the cursor. Last, mirror the queue into ``marts.work_items``
when something changed and no close is running.

The cursor is the watermark (counts and newest times of ``audit.issued_months``,
``audit.restatements``, ``audit.file_loads``, ``audit.landed_files``: new
payments, tickets or restatements only reach the warehouse through a close,
which writes there). It only saves work: the rules re-propose everything they
see, and the store de-duplicates by ``dedup_key``, so a tick repeated after a
crash between the write and the cursor (or after a restart with an old cursor,
or no cursor at all) raises nothing twice and loses nothing; a decided item is
never reopened because ``raise_items`` returns the existing item untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from sqlalchemy import Engine

from workitems.rules import WarehouseBusy, executed_refunds, open_read_only, propose_items
from workitems.store import Refused, list_items, mark_done, queue_engine, raise_items

SENSOR_NAME = "raise_work_items_sensor"
TICK_SECONDS = 30
CLOSE_JOB = "close_month_job"

# Changes whenever a close loads files, issues a month or restates one (all native tables: cheap).
WATERMARK_SQL = """
SELECT concat_ws('|',
    (SELECT count(*) || '@' || coalesce(max(issued_at)::VARCHAR, '') FROM audit.issued_months),
    (SELECT count(*) || '@' || coalesce(max(detected_at)::VARCHAR, '') FROM audit.restatements),
    (SELECT count(*) || '@' || coalesce(max(loaded_at)::VARCHAR, '') FROM audit.file_loads),
    (SELECT count(*) || '@' || coalesce(max(first_seen_at)::VARCHAR, '') FROM audit.landed_files))
"""
REQUIRED_TABLES = ("issued_months", "issued_invoices", "restatements", "file_loads", "landed_files")
STAGING_READ = ("stg_payments__charges", "stg_payments__refunds", "stg_payments__disputes", "stg_support__tickets",
                "stg_reference__customers")
PRESENT_SQL = """
SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE schema_name IN ('audit', 'staging')
UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE schema_name = 'staging'
"""


@dataclass
class TickOutcome:
    """What one tick did; `cursor` is None when the cursor must not move (the tick was skipped)."""

    cursor: str | None
    message: str
    raised: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    refused_done: list[str] = field(default_factory=list)


def _cursor_watermark(cursor: str | None) -> str | None:
    try:
        return json.loads(cursor)["watermark"] if cursor else None
    except (ValueError, KeyError, TypeError):  # a cursor from an older version: re-propose everything
        return None


def _mirror_pending(cursor: str | None) -> bool:
    try:
        return bool(json.loads(cursor).get("mirror_pending")) if cursor else False
    except (ValueError, AttributeError):
        return False


def raise_work_items(warehouse: str | Path, engine: Engine, cursor: str | None) -> TickOutcome:
    """One tick's work without Dagster: propose, write durably, close executed refunds; the new cursor last."""
    if not Path(warehouse).exists():
        return TickOutcome(None, f"no warehouse at {warehouse} yet")
    try:
        con = open_read_only(warehouse)
    except WarehouseBusy:
        return TickOutcome(None, "warehouse busy (a close holds it): tick skipped, cursor kept")
    try:
        present = {row[0] for row in con.execute(PRESENT_SQL).fetchall()}
        needed = {f"audit.{name}" for name in REQUIRED_TABLES} | {f"staging.{name}" for name in STAGING_READ}
        if not needed <= present:  # a warehouse no close has built yet
            return TickOutcome(None, "no month closed yet: nothing to raise")
        (watermark,), = con.execute(WATERMARK_SQL).fetchall()
        queue = list_items(engine)
        changed = watermark != _cursor_watermark(cursor)
        proposals = propose_items(con, queue) if changed else []
        approved_refunds = {item["work_item_id"] for item in queue if item["status"] == "approved"}
        arrived = executed_refunds(con) if (changed or approved_refunds) else []
    finally:
        con.close()

    known = {item["dedup_key"] for item in queue}
    results = raise_items(engine, [p for p in proposals if p["dedup_key"] not in known], raised_by=SENSOR_NAME)
    outcome = TickOutcome(None, "", raised=[work_item_id for work_item_id, created in results if created])
    for refund in arrived:
        evidence = {"refund_id": refund["refund_id"], "charge_id": refund["charge_id"], "amount": refund["amount"],
                    "refunded_at": refund["created_at"]}
        try:
            if mark_done(engine, refund["work_item_id"], evidence):
                outcome.done.append(refund["work_item_id"])
        except Refused as refusal:  # a refund naming an unknown or undecided item: reported, never fatal
            outcome.refused_done.append(f"{refund['refund_id']}: {refusal}")
    # Only now, with the items and their closures committed, may the cursor move.
    mirror_pending = bool(outcome.raised or outcome.done) or _mirror_pending(cursor)
    outcome.cursor = json.dumps({"watermark": watermark, "mirror_pending": mirror_pending}, sort_keys=True)
    outcome.message = (f"{len(proposals)} proposed, {len(outcome.raised)} raised, {len(outcome.done)} done"
                       + (f", {len(outcome.refused_done)} refunds not matched: {'; '.join(outcome.refused_done)}"
                          if outcome.refused_done else "")
                       + ("" if changed else " (warehouse unchanged since the cursor)"))
    return outcome


def _close_running(instance: dg.DagsterInstance) -> bool:
    return bool(instance.get_run_records(
        dg.RunsFilter(job_name=CLOSE_JOB, statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]),
        limit=1))


def _mirror(instance: dg.DagsterInstance, warehouse: Path, engine: Engine, outcome: TickOutcome) -> str:
    """Mirror marts.work_items when something changed; never while a close runs (it gives way when locked)."""
    from workitems.mirror import mirror_work_items

    state = json.loads(outcome.cursor)
    if not state["mirror_pending"]:
        return "mirror up to date"
    if _close_running(instance):
        return "mirror deferred: a close is running"
    if not mirror_work_items(warehouse, engine):
        return "mirror skipped: warehouse busy"
    outcome.cursor = json.dumps({**state, "mirror_pending": False}, sort_keys=True)
    return "mirrored"


@dg.sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Raises refunds, credit notes (R1, R2, R3) and payment extensions (E1) into the work-item queue; "
                "marks refunds done when they arrive in the payments feed.",
)
def raise_work_items_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    from orchestration.settings import load_settings

    warehouse = load_settings().warehouse
    engine = queue_engine()
    try:
        outcome = raise_work_items(warehouse, engine, context.cursor)
        if outcome.cursor is None:
            return dg.SkipReason(outcome.message)
        mirror = _mirror(context.instance, warehouse, engine, outcome)
        context.update_cursor(outcome.cursor)
        return dg.SkipReason(f"{outcome.message}; {mirror}")
    finally:
        engine.dispose()


workitem_sensors = [raise_work_items_sensor]
