"""One ingestion skeleton for every landed source: find → probe → ledger → load → file loads → metadata.

Usage (Parquet, `assets/usage.py`) and the JSON-lines sources (tickets and
payments, `assets/jsonl.py`) follow the same landing rules, so the rules live
here once and a source only says what differs:

- which files are its own (`paths`) and which ledgered paths must still be
  landed (`scope`, a LIKE pattern: the month's usage folders, a JSON folder);
- how to read a file's header (`probe`, one per format: it raises
  `UnreadableFile` for a file that cannot be read at all, and returns whatever
  the loader needs from it, such as Parquet footer facts);
- how to load the readable files (`load`): build the typed view, write the
  quarantine and re-delivery rows, and say how many rows each file holds.

The skeleton does the rest: a file that cannot be read, whose bytes changed
since the ledger recorded it, or that the ledger recorded and is gone, is left
out and named (`Ingested.problems`); the others load in one transaction with
the ledger and `audit.file_loads` (read = accepted + re-delivered +
quarantined, per file); the asset reports totals and a per-file table, and
raises `BadFiles` after everything loadable loaded, so the close fails naming
the files (the month is incomplete).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Generic, TypeVar

import duckdb

if TYPE_CHECKING:
    import dagster as dg

from assets.ledger import BadFiles, LandedFile, changed_files, describe_files, missing_files, record_files

Probe = TypeVar("Probe")
COUNT_COLUMNS = ("rows_read", "accepted", "redelivered", "quarantined")


class UnreadableFile(Exception):
    """A landed file that cannot be read at all (truncated, not the format, not UTF-8): why, for the operator."""


def accepted_view_sql(view: str, typed_view: str, source: str, internal_columns: list[str]) -> str:
    """The view dbt reads for a source: its typed rows less those quarantined or re-delivered,
    with each row's load time (first_seen_at of its file in the ledger).

    `internal_columns` are the typed view's working columns (schema errors, raw values) that
    stay out of what dbt sees.
    """
    return f"""
CREATE OR REPLACE VIEW {view} AS
SELECT t.* EXCLUDE ({', '.join(internal_columns)}), f.first_seen_at AS loaded_at
FROM {typed_view} t
ANTI JOIN (
  SELECT file, row_number FROM audit.quarantine WHERE source = '{source}'
  UNION ALL
  SELECT file, row_number FROM audit.redeliveries WHERE source = '{source}'
) r ON r.file = t.source_file AND r.row_number = t.row_number
LEFT JOIN audit.landed_files f ON f.path = t.source_file
"""


@dataclass(frozen=True)
class Batch(Generic[Probe]):
    """The files a loader gets: readable, unchanged, in the order found, with what the probe read from each."""

    landing: Path
    files: list[LandedFile]
    probes: dict[str, Probe]  # by path relative to the landing root
    now: datetime  # the load time written to every audit row of this run


Loader = Callable[[duckdb.DuckDBPyConnection, Batch], dict[str, int]]  # → rows read per file


@dataclass
class Ingested:
    """What one source's ingestion did: per-file counts, quarantine by reason, the files it could not load."""

    source: str
    per_file: list[dict]
    by_reason: dict[str, int]
    problems: dict[str, str]

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(r[k] for r in self.per_file) for k in COUNT_COLUMNS}

    def result(self, asset_key: dg.AssetKey, checks: list[dg.AssetCheckResult], **extra) -> dg.MaterializeResult:
        import dagster as dg  # here, not at the top: `billops ingest` reads files without Dagster (~2.5 s)

        return dg.MaterializeResult(
            asset_key=asset_key,
            metadata={
                "files": len(self.per_file),
                **{k: dg.MetadataValue.int(v) for k, v in self.totals.items()},
                "quarantined_by_reason": dg.MetadataValue.json(self.by_reason),
                "per_file": dg.MetadataValue.md(per_file_markdown(self.per_file)),
                **extra,
            },
            check_results=checks,
        )


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    landing: Path,
    paths: list[Path],
    scope: str,
    probe: Callable[[duckdb.DuckDBPyConnection, Path], Probe],
    load: Loader,
    month: date,
) -> Ingested:
    """Probe, ledger and load one source's files; name every file left out instead of failing the batch."""
    problems: dict[str, str] = {}
    probes: dict[str, Probe] = {}
    readable: list[Path] = []
    found = [path.relative_to(landing).as_posix() for path in paths]
    for path, rel in zip(paths, found):
        try:
            probes[rel] = probe(con, path)
            readable.append(path)
        except UnreadableFile as exc:
            problems[rel] = str(exc)
    files = describe_files(landing, readable)
    problems |= changed_files(con, files)
    problems |= missing_files(con, source, scope, found)
    files = [f for f in files if f.rel not in problems]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("BEGIN")
    try:
        rows_read = load(con, Batch(landing, files, {f.rel: probes[f.rel] for f in files}, now))
        record_files(con, source, files, now)
        write_file_loads(con, source, month, rows_read, now)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return Ingested(source, read_file_loads(con, source, month), quarantined_by_reason(con, source, scope), problems)


def write_file_loads(con: duckdb.DuckDBPyConnection, source: str, month: date, rows_read: dict[str, int],
                     now: datetime) -> None:
    """Per file this close read: read, accepted = read − re-delivered − quarantined, re-delivered, quarantined."""
    con.execute("DELETE FROM audit.file_loads WHERE source = ? AND billing_month = ?", [source, month])
    if not rows_read:
        return
    con.execute(
        """
        INSERT INTO audit.file_loads
        SELECT $month, $source, f.file, f.rows_read,
               f.rows_read - coalesce(r.n, 0) - coalesce(q.n, 0), coalesce(r.n, 0), coalesce(q.n, 0), $now
        FROM (SELECT unnest($files::VARCHAR[]) AS file, unnest($rows::BIGINT[]) AS rows_read) f
        LEFT JOIN (SELECT file, count(*) n FROM audit.redeliveries WHERE source = $source GROUP BY 1) r USING (file)
        LEFT JOIN (SELECT file, count(*) n FROM audit.quarantine WHERE source = $source GROUP BY 1) q USING (file)
        """,
        {"month": month, "source": source, "now": now, "files": list(rows_read), "rows": list(rows_read.values())},
    )


def read_file_loads(con: duckdb.DuckDBPyConnection, source: str, month: date) -> list[dict]:
    cols = ["file", *COUNT_COLUMNS]
    rows = con.execute(
        f"SELECT {', '.join(cols)} FROM audit.file_loads WHERE source = ? AND billing_month = ? ORDER BY file",
        [source, month],
    ).fetchall()
    return [dict(zip(cols, r)) for r in rows]


def quarantined_by_reason(con: duckdb.DuckDBPyConnection, source: str, scope: str) -> dict[str, int]:
    return dict(con.execute(
        "SELECT reason, count(*) FROM audit.quarantine WHERE source = ? AND file LIKE ? GROUP BY 1 ORDER BY 1",
        [source, scope],
    ).fetchall())


def per_file_markdown(per_file: list[dict]) -> str:
    lines = ["| file | read | accepted | re-delivered | quarantined |", "|---|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['rows_read']} | {r['accepted']} | {r['redelivered']} | {r['quarantined']} |"
              for r in per_file]
    return "\n".join(lines)


def raise_bad_files(context: dg.AssetExecutionContext, label: str, loads: list[Ingested]) -> None:
    """After every file that could load did: fail naming the ones that could not (the month is incomplete)."""
    problems = {rel: why for load in loads for rel, why in load.problems.items()}
    for rel, why in problems.items():
        context.log.error(f"{label} file not loaded: {rel}: {why}")
    if problems:
        raise BadFiles(label, problems)
