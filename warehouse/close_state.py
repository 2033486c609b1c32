"""What each issued month was last closed with, kept in the operational store for planning.

Deciding what a close must restate needs, per issued month, the options it was issued
with, the usage files and reference snapshots its last successful run used. Those facts
are in the warehouse, but only a queued close run may open the warehouse (DuckDB's read
lock blocks a writer too): the command, the schedule and the restatement sensor plan from
this copy instead. The issuing asset writes the month it issued or restated right after
its commit — from that run's own file loads and snapshots, so a run that failed later
leaves the month planned for restatement again — and fills any issued month missing here
from the warehouse (a warehouse closed before this copy existed heals at its next close).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
from sqlalchemy import Boolean, Column, Date, Engine, MetaData, String, Table, delete, insert, inspect, select

from warehouse.close_options import CloseOptions

metadata = MetaData()

issued_month_state = Table(
    "close_state_months", metadata,
    Column("billing_month", Date, primary_key=True),
    Column("allow_missing_days", Boolean, nullable=False),
    Column("first_month", Boolean, nullable=False),
)
usage_file_state = Table(
    "close_state_usage_files", metadata,
    Column("billing_month", Date, primary_key=True),
    Column("path", String(1000), primary_key=True),  # relative to the landing root
)
snapshot_state = Table(
    "close_state_snapshots", metadata,
    Column("billing_month", Date, primary_key=True),
    Column("file", String(200), primary_key=True),
    Column("sha256", String(64), nullable=False),
)


@dataclass
class CloseState:
    """Per issued month: its options, the usage files and snapshot hashes its last successful run used."""

    options: dict[date, CloseOptions] = field(default_factory=dict)
    usage_files: dict[date, set[str]] = field(default_factory=dict)
    snapshots: dict[date, dict[str, str]] = field(default_factory=dict)

    @property
    def issued(self) -> list[date]:
        return sorted(self.options)


def read_close_state(engine: Engine) -> CloseState | None:
    """The recorded state, or None where the store holds none yet (never creates tables)."""
    if not inspect(engine).has_table(issued_month_state.name):
        return None
    state = CloseState()
    with engine.connect() as conn:
        for month, allow, first in conn.execute(select(issued_month_state)):
            state.options[month] = CloseOptions(allow_missing_days=allow, first_month=first)
        for month, path in conn.execute(select(usage_file_state)):
            state.usage_files.setdefault(month, set()).add(path)
        for month, file, sha256 in conn.execute(select(snapshot_state)):
            state.snapshots.setdefault(month, {})[file] = sha256
    return state if state.options else None


def close_state_in_store(url: str | None = None) -> CloseState | None:
    """The state in the operational store, or None; a SQLite store that does not exist is not created."""
    from config.settings import ops_store_url
    from warehouse.ops_store import ops_engine, sqlite_file

    url = url or ops_store_url()
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None
    engine = ops_engine(url, create=False)
    try:
        return read_close_state(engine)
    finally:
        engine.dispose()


def close_state_in_warehouse(con: duckdb.DuckDBPyConnection) -> CloseState:
    """The same facts read from the warehouse (a warehouse issued before the store held them)."""
    state = CloseState()
    for (month,) in con.execute("SELECT billing_month FROM audit.issued_months ORDER BY 1").fetchall():
        months, files, snapshots = _month_rows(con, month)
        state.options[month] = CloseOptions(months["allow_missing_days"], months["first_month"])
        state.usage_files[month] = {f["path"] for f in files}
        state.snapshots[month] = {s["file"]: s["sha256"] for s in snapshots}
    return state


def _month_rows(con: duckdb.DuckDBPyConnection, month: date) -> tuple[dict, list[dict], list[dict]]:
    columns = {r[0] for r in con.execute("DESCRIBE audit.issued_months").fetchall()}
    options = [c if c in columns else "false" for c in ("allow_missing_days", "first_month")]  # an older warehouse
    allow, first = con.execute(
        f"SELECT {', '.join(options)} FROM audit.issued_months WHERE billing_month = ?", [month]).fetchone()
    files = con.execute("SELECT DISTINCT file FROM audit.file_loads WHERE source = 'usage' AND billing_month = ?",
                        [month]).fetchall()
    snapshots = con.execute("SELECT file, sha256 FROM audit.reference_snapshots WHERE billing_month = ?",
                            [month]).fetchall()
    return ({"billing_month": month, "allow_missing_days": bool(allow), "first_month": bool(first)},
            [{"billing_month": month, "path": f} for (f,) in files],
            [{"billing_month": month, "file": f, "sha256": s} for f, s in snapshots])


def record_close_state(engine: Engine, con: duckdb.DuckDBPyConnection, month: date) -> None:
    """After `month` was issued or restated (committed): record it, and any issued month not recorded yet."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        known = {m for (m,) in conn.execute(select(issued_month_state.c.billing_month))}
        issued = [m for (m,) in con.execute("SELECT billing_month FROM audit.issued_months ORDER BY 1").fetchall()]
        for target in [m for m in issued if m == month or m not in known]:
            months, files, snapshots = _month_rows(con, target)
            for table in (issued_month_state, usage_file_state, snapshot_state):
                conn.execute(delete(table).where(table.c.billing_month == target))
            conn.execute(insert(issued_month_state), [months])
            if files:
                conn.execute(insert(usage_file_state), files)
            if snapshots:
                conn.execute(insert(snapshot_state), snapshots)
