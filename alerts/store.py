"""The durable record of alerts: what was claimed, on which channels it went out, and when.

Exactly once rests here, not on a sensor cursor: an alert is claimed by
inserting its dedup key (the run id of a failed close, `check:<event storage
id>` of a failed warning check) under a UNIQUE constraint before anything is
sent; a second tick, a retry or a restarted daemon hits the constraint and
sends nothing. The table lives in the operational store (warehouse/ops_store.py)
because the warehouse may be held by a running close.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from config.settings import ops_store_url
from warehouse.ops_store import ops_engine

RUN_FAILED = "run_failed"
CHECK_WARNING = "check_warning"

metadata = MetaData()

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("dedup_key", String(200), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),  # run_failed | check_warning
    Column("billing_month", Date),
    Column("run_id", String(64)),
    Column("text", Text, nullable=False),
    Column("channels", String(100), nullable=False, default=""),  # channels it went out on, comma-separated
    Column("created_at", DateTime, nullable=False),  # UTC, naive
    Column("sent_at", DateTime),  # delivery finished (all channels sent, or attempts exhausted); NULL = pending
    Column("attempts", Integer, nullable=False, default=0),
    Column("attempted_at", DateTime),
    Column("last_error", Text),
)

# Which store contents were last copied into which warehouse (alerts/mirror.py): the warehouse file is
# opened only when this changes, so that a sensor takes DuckDB's lock as rarely as possible.
alert_mirrors = Table(
    "alert_mirrors",
    metadata,
    Column("warehouse", String(1000), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("mirrored_at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class Alert:
    alert_id: str
    dedup_key: str
    kind: str
    billing_month: date | None
    run_id: str | None
    text: str
    channels: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    attempted_at: datetime | None
    last_error: str | None


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


_engines: dict[str, Engine] = {}


def engine() -> Engine:
    """The store's engine for the current environment (one per URL per process), tables created on first use."""
    url = ops_store_url()
    if url not in _engines:
        created = ops_engine(url)
        metadata.create_all(created)
        _engines[url] = created
    return _engines[url]


def forget_engines() -> None:
    """Dispose of the cached engines, as a restarted process starts without them."""
    for cached in _engines.values():
        cached.dispose()
    _engines.clear()


def claim(dedup_key: str, kind: str, billing_month: date | None, run_id: str | None, text: str) -> Alert | None:
    """Insert the alert; None if its key was already claimed (by this or any earlier tick or process)."""
    row = {
        "alert_id": uuid.uuid4().hex,
        "dedup_key": dedup_key,
        "kind": kind,
        "billing_month": billing_month,
        "run_id": run_id,
        "text": text,
        "channels": "",
        "created_at": utc_now(),
        "attempts": 0,
    }
    try:
        with engine().begin() as connection:
            connection.execute(insert(alerts).values(**row))
    except IntegrityError:
        return None
    return fetch(dedup_key)


def claimed_keys(keys: list[str]) -> set[str]:
    """Which of these dedup keys are already in the store (one query per tick, not one per run)."""
    found: set[str] = set()
    with engine().connect() as connection:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            found.update(connection.execute(select(alerts.c.dedup_key).where(alerts.c.dedup_key.in_(chunk))).scalars())
    return found


def fetch(dedup_key: str) -> Alert | None:
    with engine().connect() as connection:
        row = connection.execute(select(alerts).where(alerts.c.dedup_key == dedup_key)).mappings().first()
    return Alert(**row) if row else None


def all_alerts() -> list[Alert]:
    with engine().connect() as connection:
        rows = connection.execute(select(alerts).order_by(alerts.c.created_at, alerts.c.alert_id)).mappings().all()
    return [Alert(**row) for row in rows]


def due_for_retry(max_attempts: int, retry_after: timedelta) -> list[Alert]:
    """Alerts still pending whose last attempt is older than `retry_after` (or that were never attempted)."""
    cutoff = utc_now() - retry_after
    with engine().connect() as connection:
        rows = connection.execute(
            select(alerts)
            .where(alerts.c.sent_at.is_(None), alerts.c.attempts < max_attempts)
            .where((alerts.c.attempted_at.is_(None)) | (alerts.c.attempted_at <= cutoff))
            .order_by(alerts.c.created_at)
        ).mappings().all()
    return [Alert(**row) for row in rows]


def start_attempt(alert: Alert) -> bool:
    """Take the alert for one delivery attempt; False if another tick or process took it first.

    The update only matches the attempt count we read, so two processes retrying the same
    pending alert cannot both send it.
    """
    with engine().begin() as connection:
        result = connection.execute(
            update(alerts)
            .where(alerts.c.alert_id == alert.alert_id, alerts.c.attempts == alert.attempts, alerts.c.sent_at.is_(None))
            .values(attempts=alert.attempts + 1, attempted_at=utc_now())
        )
    return result.rowcount == 1


def finish_attempt(alert_id: str, channels: list[str], error: str | None, done: bool) -> None:
    """Record the channels sent so far and the last error; `done` closes the alert (sent_at)."""
    with engine().begin() as connection:
        connection.execute(
            update(alerts)
            .where(alerts.c.alert_id == alert_id)
            .values(channels=",".join(channels), last_error=error, sent_at=utc_now() if done else None)
        )
