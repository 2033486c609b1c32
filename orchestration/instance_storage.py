"""The Dagster instance's event log: Dagster's SQLite storage, keeping its connections open.

Dagster's SQLite event log opens a new SQLAlchemy engine and connection for every write and
closes it after, about six times per event. A close writes ~800 events (dbt's data tests are
asset checks, each planned and then evaluated), and those reconnections cost ~8 s of the ~35 s
a small close takes. This is the same storage, the same files and schema (`$DAGSTER_HOME/history/runs`,
one database per run plus the index), with one engine per database kept open (the index
and the most recent runs), so `dagster dev`, the daemon and `billops close` read and write
exactly what they would with Dagster's default. `billops` configures it in the dagster.yaml
it writes for a new instance (cli/close.py).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

from dagster._config import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

OPEN_DATABASES = 8  # the index and the runs being written or read now; older ones are closed


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage under `<dagster_home>/history/runs`, one open engine per database.

    Configured with the instance's home (`base_dir: {env: DAGSTER_HOME}`) so that a moved or
    copied instance keeps working. Writes still go through Dagster's lock (`_db_lock`), one
    connection at a time per process; other processes open their own, as SQLite allows.
    """

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(os.path.join(base_dir, "history", "runs"), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=StaticPool,  # one connection, reused; Dagster's lock serialises its use
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            self._engines[shard] = engine
            while len(self._engines) > OPEN_DATABASES:
                self._engines.popitem(last=False)[1].dispose()
        self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def _close_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._close_engines()  # before Dagster deletes the run databases
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_engines()
