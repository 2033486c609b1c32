"""Resources: the DuckDB warehouse, the landing zone and dbt, configured from the environment."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from warehouse.schema import bootstrap
from orchestration.dbt_project import dbt_project
from orchestration.settings import load_settings


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file holding every layer, and the read-only landing zone it is fed from.

    DuckDB allows one writing process, so a connection is opened per step and
    closed before dbt runs (`connect` is a context manager).
    """

    path: str
    landing: str

    @property
    def landing_path(self) -> Path:
        return Path(self.landing)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path, read_only=read_only)
        try:
            con.execute("SET TimeZone = 'UTC'")
            if not read_only:
                bootstrap(con)
            yield con
        finally:
            con.close()


def build_resources() -> dict:
    settings = load_settings()
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse), landing=str(settings.landing)),
        "dbt": DbtCliResource(project_dir=dbt_project),
    }
