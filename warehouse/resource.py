"""The warehouse as a Dagster resource: the DuckDB file holding every layer, and the landing zone it is fed from.

Every step that reads or writes the warehouse asks this resource for a connection, so the storage
layer owns how the file is opened (one writing process: a connection per step, closed before dbt
runs). Which file and which landing zone is bound on top, in orchestration/resources.py.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb

from config.settings import absolute, load_settings
from warehouse.connection import open_warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file holding every layer, and the read-only landing zone it is fed from.

    DuckDB allows one writing process, so a connection is opened per step and
    closed before dbt runs (`connect` is a context manager). A path left unset is the setting
    (BILLOPS_WAREHOUSE, BILLOPS_LANDING) as config/settings.py reads it when the step runs, not
    when the definitions were loaded: a process that loaded them before the variable was set
    (a test worker, a code server) still closes the right warehouse.
    """

    path: str | None = None
    landing: str | None = None

    @property
    def warehouse_path(self) -> Path:
        return absolute(self.path) if self.path else load_settings().warehouse

    @property
    def landing_path(self) -> Path:
        return absolute(self.landing) if self.landing else load_settings().landing

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(self.warehouse_path, read_only) as con:
            yield con
