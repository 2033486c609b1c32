"""The published copy for BI (BILLOPS_PUBLISHED): billops.duckdb and Parquet, swapped in whole.

Kept free of Dagster and dbt (duckdb only) because `billops workitems approve|decline` and the
alert sensors refresh it and must stay quick; the close's asset is `assets/publication.py`.

BI tools must never hold the warehouse: DuckDB lets one process write a file, and a
reader holding it would block the next close (and a close would block the reader).
Only a close run opens the warehouse, even to read (decisions #60). So:

- after every close (the `published/marts` asset, `publish_now`), every relation of the
  warehouse's `marts` schema is copied out as TABLEs into a different file;
- after a queue decision or an alert (`refresh_published`), the current copy is copied to a
  temp file and only the named tables (`work_items`, `alerts`) are replaced there from the
  operational store: the warehouse is not opened at all.

Both take the same publish lock, and both let the caller replace named tables from their
source of truth (`replace`: table name -> a function writing it into a connection), read while
the lock is held, so a decision committed before either publisher took the lock is in the
copy, and one committed after is published by its own refresh once the lock is free.

- `billops.duckdb` (schema `marts`): built as a temp file beside it, checkpointed,
  made read-only (0444: BI reads it, nothing but the next publication replaces it),
  fsynced, then `os.replace`d onto the name. A rename is atomic on one filesystem and
  needs only the folder to be writable, not the file: a reader opening the name gets
  the whole old file or the whole new one, and a reader that already has the old one
  open keeps reading its (unlinked) inode undisturbed. The file is not named after its
  schema: opened directly, a file `marts.duckdb` is catalog `marts` too, and DuckDB
  refuses `marts.invoices` as ambiguous (decisions #49). A `marts.duckdb` left by an
  older billops is deleted by the next publication, so no BI tool keeps reading a copy
  that has stopped changing.
- `parquet/<table>/`: each mart, Hive-partitioned by `billing_month` (or `month`)
  when it has such a column, else one `<table>.parquet`. A publication writes a new
  folder `parquet.<version>/` and flips the symlink `parquet` onto it (a temp symlink
  `os.replace`d onto `parquet`, atomic like the file). A refresh hard-links the tables
  it does not replace from the version it replaces (their files are never rewritten in
  place). A reader that resolves the link once per read (`os.path.realpath`) reads one
  version only; the version just replaced is kept until the next publication, so a read
  in flight finishes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping

import duckdb

DUCKDB_FILE = "billops.duckdb"
STALE_FILES = ("marts.duckdb", "marts.duckdb.wal")  # the copy's name before decisions #49
READ_ONLY_MODE = 0o444
PARQUET_LINK = "parquet"
MONTH_COLUMNS = ("billing_month", "month")  # the first one a mart has partitions its Parquet


# Replaces one table of schema `marts` in the connection's default catalog (inside the caller's
# transaction), reading its source of truth as it is now; returns the table's row count.
TableWriter = Callable[[duckdb.DuckDBPyConnection], int]


class WarehouseBusy(Exception):
    """Another process holds the warehouse for writing."""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync(Path(folder))


@contextmanager
def _one_publisher(published: Path) -> Iterator[None]:
    """Serialise publishers (a close and a queue change) so one never deletes the other's fresh version."""
    published.mkdir(parents=True, exist_ok=True)
    with (published / ".publish.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _qualified_marts(con: duckdb.DuckDBPyConnection) -> str:
    """`"<catalog>".marts`, whatever the file's stem (a temp file's catalog is not `billops`)."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    return '"' + catalog.replace('"', '""') + '".marts'


COPY_CATALOG = "billops_published_copy"  # never `marts`: the marts views say `marts.x`, which must mean the schema


def _copy_marts(warehouse: Path, target: Path) -> dict[str, int]:
    """Copy every relation of the warehouse's `marts` schema into `target` as tables; rows per table.

    The warehouse is attached under the name DuckDB gives it by default (its file's stem),
    because dbt writes its views with that catalog in every name ("warehouse"."audit"...).
    """
    con = duckdb.connect()
    try:
        try:
            con.execute("ATTACH ? (READ_ONLY)", [str(warehouse)])
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise WarehouseBusy(str(exc)) from exc
            raise
        (source,), = con.execute("SELECT database_name FROM duckdb_databases() WHERE path = ?",
                                 [str(warehouse)]).fetchall()
        con.execute(f"ATTACH ? AS {COPY_CATALOG}", [str(target)])
        con.execute(f"USE {COPY_CATALOG}")
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? "
            "AND table_schema = 'marts' ORDER BY table_name", [source]).fetchall()]
        con.execute(f"CREATE SCHEMA {COPY_CATALOG}.marts")
        rows = {}
        quoted_source = '"' + source.replace('"', '""') + '"'
        for name in names:
            con.execute(f'CREATE TABLE {COPY_CATALOG}.marts."{name}" AS SELECT * FROM {quoted_source}.marts."{name}"')
            rows[name] = con.execute(f'SELECT count(*) FROM {COPY_CATALOG}.marts."{name}"').fetchone()[0]
        con.execute(f"CHECKPOINT {COPY_CATALOG}")
        return rows
    finally:
        con.close()


def _write_parquet(copy: Path, folder: Path, only: set[str] | None = None) -> None:
    """Each table of the copy (or the `only` ones) as `folder/<table>/`, Hive-partitioned by its month column."""
    con = duckdb.connect(str(copy), read_only=True)
    try:
        schema = _qualified_marts(con)
        tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' "
                             "ORDER BY table_name").fetchall()
        for (name,) in tables:
            if only is not None and name not in only:
                continue
            columns = {r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = ?",
                [name]).fetchall()}
            month = next((c for c in MONTH_COLUMNS if c in columns), None)
            out = folder / name
            out.mkdir(parents=True)
            empty = con.execute(f'SELECT count(*) = 0 FROM {schema}."{name}"').fetchone()[0]
            if month and not empty:
                con.execute(f"COPY (SELECT * FROM {schema}.\"{name}\" ORDER BY \"{month}\") TO '{out}' "
                            f"(FORMAT parquet, PARTITION_BY (\"{month}\"), OVERWRITE_OR_IGNORE)")
            else:  # no month column, or no rows: one file, so the schema is still readable
                con.execute(f"COPY {schema}.\"{name}\" TO '{out / (name + '.parquet')}' (FORMAT parquet)")
    finally:
        con.close()


def _link_or_copy(source: str, target: str) -> None:
    """A published Parquet file is never rewritten in place, so two versions may share it (a hard link)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _replace_tables(copy: Path, replace: Mapping[str, TableWriter]) -> dict[str, int]:
    """Run each writer on the copy in one transaction, then checkpoint; rows per replaced table."""
    con = duckdb.connect(str(copy))
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        rows = {name: write(con) for name, write in replace.items()}
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        return rows
    finally:
        con.close()


def _swap_parquet(published: Path, version_dir: Path) -> None:
    """Point `parquet` at the new version atomically; delete versions older than the one replaced."""
    link = published / PARQUET_LINK
    previous = os.readlink(link) if link.is_symlink() else None
    if link.exists() and not link.is_symlink():  # a folder left by hand: move it aside, never mix into it
        link.rename(published / f"{PARQUET_LINK}.manual-{uuid.uuid4().hex[:8]}")
    temp_link = published / f".{PARQUET_LINK}.{uuid.uuid4().hex}.link"
    os.symlink(version_dir.name, temp_link)  # relative: the published folder can be moved or mounted elsewhere
    os.replace(temp_link, link)
    _fsync(published)
    keep = {version_dir.name, previous}
    for old in published.glob(f"{PARQUET_LINK}.v*"):
        if old.name not in keep and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(published: Path) -> None:
    """Delete the temp files of a killed publisher (safe: called under the publish lock)."""
    for leftover in [*published.glob(".*.duckdb.v*.tmp*"), *published.glob(f".{PARQUET_LINK}.*.link")]:
        leftover.unlink(missing_ok=True)


def _version() -> str:
    return f"v{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"


def _swap_in(published: Path, temp_db: Path, version_dir: Path) -> None:
    """Make the finished temp copy and Parquet version the published ones (both atomic renames)."""
    _fsync_tree(version_dir)
    os.chmod(temp_db, READ_ONLY_MODE)
    _fsync(temp_db)
    os.replace(temp_db, published / DUCKDB_FILE)
    _swap_parquet(published, version_dir)


def _discard(published: Path, temp_db: Path, version_dir: Path) -> None:
    temp_db.unlink(missing_ok=True)
    Path(f"{temp_db}.wal").unlink(missing_ok=True)
    if version_dir.exists() and (published / PARQUET_LINK).resolve() != version_dir.resolve():
        shutil.rmtree(version_dir, ignore_errors=True)


def publish_now(warehouse_path: str | Path, published: str | Path,
                replace: Mapping[str, TableWriter] | None = None) -> dict[str, int]:
    """Copy the marts out of the warehouse, replace the `replace` tables from their source of truth,
    and swap both copies in; rows per table. Raises WarehouseBusy when another process holds the warehouse."""
    warehouse, published = Path(warehouse_path), Path(published)
    with _one_publisher(published):
        _remove_leftovers(published)
        version = _version()
        temp_db = published / f".{DUCKDB_FILE}.{version}.tmp"
        version_dir = published / f"{PARQUET_LINK}.{version}"
        try:
            rows = _copy_marts(warehouse, temp_db)
            if replace:
                rows.update(_replace_tables(temp_db, replace))
            _write_parquet(temp_db, version_dir)
            _swap_in(published, temp_db, version_dir)
            for stale in STALE_FILES:  # only once the new name holds a whole copy
                (published / stale).unlink(missing_ok=True)
        except BaseException:
            _discard(published, temp_db, version_dir)
            raise
        return dict(sorted(rows.items()))


def refresh_published(published: str | Path, replace: Mapping[str, TableWriter]) -> dict[str, int]:
    """Replace only the `replace` tables of the published copy (DuckDB and Parquet), never opening the warehouse.

    The current billops.duckdb is copied to a temp file, the tables are rewritten there from their
    source of truth (read under the publish lock), their Parquet is written anew and every other
    table's Parquet hard-linked from the version being replaced; then both are swapped in as a close's
    publication is. With no copy yet (no close has published), the copy starts with these tables
    only and the first close's publication replaces it whole. Rows per replaced table.
    """
    published = Path(published)
    with _one_publisher(published):
        _remove_leftovers(published)
        version = _version()
        current = published / DUCKDB_FILE
        temp_db = published / f".{DUCKDB_FILE}.{version}.tmp"
        version_dir = published / f"{PARQUET_LINK}.{version}"
        link = published / PARQUET_LINK
        previous = Path(os.path.realpath(link)) if link.is_symlink() else None
        try:
            if current.exists():
                shutil.copyfile(current, temp_db)  # not the mode: the temp copy is writable
            rows = _replace_tables(temp_db, replace)
            _write_parquet(temp_db, version_dir, only=set(replace))
            if previous is not None and previous.is_dir():
                for kept in previous.iterdir():
                    if kept.is_dir() and kept.name not in replace:
                        shutil.copytree(kept, version_dir / kept.name, copy_function=_link_or_copy)
            _swap_in(published, temp_db, version_dir)
        except BaseException:
            _discard(published, temp_db, version_dir)
            raise
        return rows
