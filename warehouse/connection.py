"""Opening the warehouse file: UTC, and its schemas created on a writer's first connection.

The one place a DuckDB connection to the warehouse is made, for the Dagster resource
(warehouse/resource.py) and for `billops ingest`, which runs without importing Dagster.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from warehouse.schema import bootstrap


@contextmanager
def open_warehouse(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file, closed on exit. DuckDB allows one writing process per file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            bootstrap(con)
        yield con
    finally:
        con.close()
