"""The file ledger: every landed file recorded once; a changed or vanished file refused by name.

Files under usage/, tickets/ and payments/ are immutable once landed and never
deleted. A file is recorded (path, size, sha256, first seen) the first time it
loads; a later run that finds different bytes under a recorded path refuses
that file (`changed_files`), and one that no longer finds a recorded path names
it (`missing_files`): an invoice computed without it would silently be lower.
Files that cannot be read are never recorded, so replacing them later is not a
"change".
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class LandedFile:
    path: Path  # absolute
    rel: str  # relative to the landing root: the name used everywhere in the warehouse
    size: int
    sha256: str


class BadFiles(Exception):
    """Files of a batch that could not be loaded; the rest of the batch loaded."""

    def __init__(self, source: str, problems: dict[str, str]):
        self.source = source
        self.problems = problems
        lines = "; ".join(f"{path}: {why}" for path, why in sorted(problems.items()))
        super().__init__(f"{source}: {len(problems)} file(s) not loaded, the month is incomplete: {lines}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(landing: Path, paths: list[Path]) -> list[LandedFile]:
    """Size and hash every file; hashing releases the GIL, so two threads use both cores."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashes = list(pool.map(_sha256, paths))
    return [
        LandedFile(path=p, rel=p.relative_to(landing).as_posix(), size=p.stat().st_size, sha256=h)
        for p, h in zip(paths, hashes)
    ]


def changed_files(con: duckdb.DuckDBPyConnection, files: list[LandedFile]) -> dict[str, str]:
    """Files whose bytes differ from what the ledger recorded under the same path."""
    if not files:
        return {}
    recorded = dict(
        con.execute(
            "SELECT path, sha256 FROM audit.landed_files WHERE path IN (SELECT unnest(?))",
            [[f.rel for f in files]],
        ).fetchall()
    )
    return {
        f.rel: f"content changed since it first landed (sha256 {recorded[f.rel][:12]}… now {f.sha256[:12]}…)"
        for f in files
        if f.rel in recorded and recorded[f.rel] != f.sha256
    }


def missing_files(con: duckdb.DuckDBPyConnection, source: str, scope: str, landed: list[str]) -> dict[str, str]:
    """Files the ledger recorded for `source` under `scope` (a LIKE pattern) that are no longer landed.

    `landed` is every path found now, readable or not: a recorded file replaced by
    unreadable bytes is reported by the probe, not twice.
    """
    rows = con.execute(
        """
        SELECT path, first_seen_at FROM audit.landed_files
        WHERE source = ? AND path LIKE ? AND path NOT IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY path
        """,
        [source, scope, landed],
    ).fetchall()
    return {
        path: f"recorded in the ledger (first seen {seen:%Y-%m-%d %H:%M:%S} UTC) but no longer in the landing zone: "
              "landed files are never deleted; restore it"
        for path, seen in rows
    }


def record_files(con: duckdb.DuckDBPyConnection, source: str, files: list[LandedFile], now: datetime) -> None:
    """Record files not yet in the ledger; a recorded file keeps its first-seen time."""
    if not files:
        return
    con.execute(
        """
        INSERT INTO audit.landed_files
        SELECT ?, f.path, f.size_bytes, f.sha256, ?
        FROM (SELECT unnest(?) AS path, unnest(?) AS size_bytes, unnest(?) AS sha256) f
        WHERE f.path NOT IN (SELECT path FROM audit.landed_files)
        """,
        [source, now, [f.rel for f in files], [f.size for f in files], [f.sha256 for f in files]],
    )
