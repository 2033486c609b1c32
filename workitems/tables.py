"""The queue's vocabulary and tables in the operational store (docs/contract/work-items.md, `marts.work_items`).

`queue_engine` opens the store (warehouse.ops_store: SQLite in WAL mode by default, any
SQLAlchemy URL in BILLOPS_QUEUE_URL) with these tables created, for the code that raises
items; `existing_queue_engine` opens it only where it already is, for the people who read
and decide (reading never creates a store). workitems/store.py holds what is done with
them (raise, decide, close, audit).
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import Engine, event

from config.redaction import safe_url
from config.settings import DEFAULTS, default_ops_path, is_set, ops_store_url, setting
from warehouse.ops_store import ops_engine, sqlite_file

KINDS = ("refund", "credit_note", "payment_extension")
RULES = {"refund": ("R1", "R2", "R3"), "credit_note": ("R1", "R3"), "payment_extension": ("E1",)}
STATUSES = ("open", "approved", "declined", "done")
DECIDED = ("approved", "declined", "done")
APPROVAL_THRESHOLD = Decimal("100.00")  # docs/contract/work-items.md: refunds and credit notes over $100 need four eyes

# marts.work_items, in the landing contract's order.
COLUMNS = (
    "work_item_id", "kind", "rule", "customer_id", "invoice_number", "charge_id", "ticket_id", "amount",
    "proposed_due_date", "reason", "evidence", "status", "requires_approval", "created_at", "decided_at",
    "decided_by", "dedup_key",
)


class Money(sa.types.TypeDecorator):
    """DECIMAL(18,2) where the database has it; a decimal string on SQLite, whose NUMERIC is a float."""

    impl = sa.Numeric(18, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect):  # noqa: ANN001 - SQLAlchemy dialect
        return dialect.type_descriptor(sa.String(24) if dialect.name == "sqlite" else sa.Numeric(18, 2, asdecimal=True))

    def process_bind_param(self, value, dialect):  # noqa: ANN001
        if value is None:
            return None
        cents = Decimal(value).quantize(Decimal("0.01"))
        return str(cents) if dialect.name == "sqlite" else cents

    def process_result_value(self, value, dialect):  # noqa: ANN001
        return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


metadata = sa.MetaData()

work_items = sa.Table(
    "work_items", metadata,
    sa.Column("work_item_id", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("rule", sa.String(8), nullable=False),
    sa.Column("customer_id", sa.String(64)),
    sa.Column("invoice_number", sa.String(64)),
    sa.Column("charge_id", sa.String(64)),
    sa.Column("ticket_id", sa.String(64)),
    sa.Column("amount", Money()),
    sa.Column("proposed_due_date", sa.Date()),
    sa.Column("reason", sa.Text()),
    sa.Column("evidence", sa.Text(), nullable=False),  # JSON text: portable, and mirrored as DuckDB JSON
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requires_approval", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),  # UTC
    sa.Column("decided_at", sa.DateTime()),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("dedup_key", sa.String(256), nullable=False, unique=True),
    sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="work_items_status"),
)

# Numbers the items WI-000001, WI-000002, ... : an autoincrement key is safe under concurrent raisers
# on every backend, unlike MAX()+1.
work_item_numbers = sa.Table(
    "work_item_numbers", metadata,
    sa.Column("number", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("dedup_key", sa.String(256), nullable=False, unique=True),
)

work_item_events = sa.Table(
    "work_item_events", metadata,
    sa.Column("event_id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("work_item_id", sa.String(16), nullable=False, index=True),
    sa.Column("at", sa.DateTime(), nullable=False),  # UTC
    sa.Column("action", sa.String(32), nullable=False),  # created approval_recorded approved declined done webhook_*
    sa.Column("by", sa.String(128), nullable=False),  # the identity: the OS user of a command, or the raiser (`billops close`)
    sa.Column("os_user", sa.String(128), nullable=False),  # the OS user of the process that wrote the event
    sa.Column("note", sa.Text()),  # the reason given, or what happened
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16)),
    # how the change came in: `command` (billops workitems), `close` (raised or marked done by a close run,
    # decisions #59), `sensor` (the work-item sensor of older billops);
    # NULL on events written before identities were real (decisions #41)
    sa.Column("channel", sa.String(16)),
)

# Who works an item now (the console's "assign to me"): one row per item, replaced on reassignment;
# every assignment is also an `assigned` event of the audit trail.
work_item_assignees = sa.Table(
    "work_item_assignees", metadata,
    sa.Column("work_item_id", sa.String(16), primary_key=True),
    sa.Column("assignee", sa.String(128), nullable=False),
    sa.Column("assigned_at", sa.DateTime(), nullable=False),  # UTC
)

# `console`: a person logged in to the billing team's console (console/), decisions #90.
CHANNELS = ("command", "close", "sensor", "console")


class NoQueue(Exception):
    """No queue where billops looks; the message says where it looked and which setting points elsewhere."""


def _add_channel_column(conn: sa.Connection) -> None:
    """A store written by an older billops has no `channel` column: add it, once (idempotent)."""
    if "channel" not in {c["name"] for c in sa.inspect(conn).get_columns("work_item_events")}:
        conn.execute(sa.text("ALTER TABLE work_item_events ADD COLUMN channel VARCHAR(16)"))


def _prepared(engine: Engine) -> Engine:
    """SQLite transactions take the write lock up front.

    pysqlite opens a transaction lazily at the first write, so a read-then-write transaction can
    fail with SQLITE_BUSY when another writer slipped in between; BEGIN IMMEDIATE serialises
    writers instead (busy_timeout makes them wait), which is the locking the four-eyes count needs.
    """
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _driver_autocommit(dbapi_connection, _record):  # noqa: ANN001
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection):  # noqa: ANN001
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _upgrade(engine: Engine, create_tables: bool) -> None:
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                if create_tables:
                    metadata.create_all(conn)
                else:  # a queue made by an older billops has no assignees table: the console adds it
                    work_item_assignees.create(conn, checkfirst=True)
                _add_channel_column(conn)
            return
        except sa.exc.DatabaseError:  # another process created the tables or the column between check and write
            if attempt == 2:
                raise


def queue_engine(url: str | None = None) -> Engine:
    """The ops store's engine with the queue's tables, created where missing: for the code that raises items."""
    engine = _prepared(ops_engine(url))
    _upgrade(engine, create_tables=True)
    return engine


def where_it_looked(url: str | None = None) -> str:
    """Where the queue was looked for and which setting points elsewhere, for a person; never a whole URL.
    `url` is one given by the caller; None means the settings."""
    if url:
        return f"no work-item queue at {safe_url(url)}"
    if is_set("BILLOPS_QUEUE_URL"):
        return f"no work-item queue at {safe_url(ops_store_url())} (BILLOPS_QUEUE_URL)"
    warehouse = setting("BILLOPS_WAREHOUSE") if is_set("BILLOPS_WAREHOUSE") else f"{DEFAULTS['BILLOPS_WAREHOUSE']}, the default"
    return (f"no work-item queue at {default_ops_path()}: without BILLOPS_QUEUE_URL the queue is ops.sqlite "
            f"in the folder of BILLOPS_WAREHOUSE ({warehouse}); set BILLOPS_QUEUE_URL, or BILLOPS_WAREHOUSE, "
            f"to look elsewhere. "
            f"A close creates the queue when it first raises an item")


def existing_queue_engine(url: str | None = None) -> Engine:
    """The queue where it already is; NoQueue, creating nothing, where there is none (no SQLite file, or
    a store without the queue's tables, e.g. one holding only sent alerts, or a database that cannot be read)."""
    path = sqlite_file(url or ops_store_url())
    if path is not None and not path.is_file():
        raise NoQueue(where_it_looked(url))
    try:
        engine = _prepared(ops_engine(url, create=False))
        with engine.connect() as conn:
            present = sa.inspect(conn).has_table("work_items") and sa.inspect(conn).has_table("work_item_events")
    except (ImportError, sa.exc.DBAPIError) as exc:  # no driver, a server down, a password refused
        why = str(exc) if isinstance(exc, ImportError) else type(exc.orig).__name__  # a driver's text may hold the URL
        raise NoQueue(f"{where_it_looked(url)}: it could not be opened ({why})") from None
    if not present:
        engine.dispose()
        raise NoQueue(where_it_looked(url))
    _upgrade(engine, create_tables=False)
    return engine
