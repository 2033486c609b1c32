"""What the console reads of the published copy ($BILLOPS_PUBLISHED/billops.duckdb), and how.

The console never opens the warehouse: a close holds it for minutes, and a reader holding it
would block the close (docs/decisions.md #60). The published copy is swapped whole by a rename
(warehouse/published.py), so each request opens the file read-only, reads, and closes it: a
request sees one whole publication, never half of one, and a close publishing meanwhile is never
waited on nor waits. Rows come back as dicts with DuckDB's types (money stays Decimal).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from warehouse.published import DUCKDB_FILE


class NotPublished(Exception):
    """No published copy yet; the message says where the console looked."""


class PublishedCopy:
    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / DUCKDB_FILE

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.path.is_file():
            raise NotPublished(f"no published copy at {self.path} (BILLOPS_PUBLISHED): close a month first")
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            yield con
        finally:
            con.close()

    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        with self.connect() as con:
            return self._dicts(con, sql, params)

    @staticmethod
    def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def many(self, queries: dict[str, tuple[str, list]]) -> dict[str, list[dict]]:
        """Several queries on one connection (one publication), by name; a table this copy lacks
        (published by an older billops) gives no rows rather than an error page."""
        out = {}
        with self.connect() as con:
            present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'").fetchall()}
            for name, (sql, params) in queries.items():
                needed = [t for t in present_tables(sql) if t not in present]
                out[name] = [] if needed else self._dicts(con, sql, params)
        return out

    def has_table(self, name: str) -> bool:
        with self.connect() as con:
            return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = ?",
                                    [name]).fetchone()[0])


def present_tables(sql: str) -> list[str]:
    """The `marts.<name>` tables a query names."""
    import re

    return re.findall(r"\bmarts\.(\w+)", sql)
