"""The file ledger: every landed file recorded once; a changed or vanished file refused by name.

Files under usage/, tickets/ and payments/ are immutable once landed and never
deleted. A file is recorded (path, size, sha256, first seen) the first time it
loads; a later run that finds different bytes under a recorded path refuses
that file (`changed_files`), and one that no longer finds a recorded path names
it (`missing_files`): an invoice computed without it would silently be lower.
Files that cannot be read are never recorded, so replacing them later is not a
"change".

The month's own files are hashed on every close. Every other recorded file — the
other months' usage — is verified too (`unverified_recorded_files`), cheaply: a
stat per file, the hash only where the size or the modification time moved since
the ledger last saw it (a landing zone copied elsewhere rehashes once, then the
new times are recorded). A close therefore never runs on a ledger it cannot vouch for.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from warehouse.landing import file_sha256


@dataclass(frozen=True)
class LandedFile:
    path: Path  # absolute
    rel: str  # relative to the landing root: the name used everywhere in the warehouse
    size: int
    sha256: str
    modified_ns: int


class BadFiles(Exception):
    """Files of a batch that could not be loaded; the rest of the batch loaded."""

    def __init__(self, source: str, problems: dict[str, str]):
        self.source = source
        self.problems = problems
        lines = "; ".join(f"{path}: {why}" for path, why in sorted(problems.items()))
        super().__init__(f"{source}: {len(problems)} file(s) not loaded, the month is incomplete: {lines}")


def describe_files(landing: Path, paths: list[Path]) -> list[LandedFile]:
    """Size and hash every file; hashing releases the GIL, so two threads use both cores."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashes = list(pool.map(file_sha256, paths))
    stats = [p.stat() for p in paths]
    return [
        LandedFile(path=p, rel=p.relative_to(landing).as_posix(), size=st.st_size, sha256=h, modified_ns=st.st_mtime_ns)
        for p, h, st in zip(paths, hashes, stats)
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
    return {f.rel: _changed(recorded[f.rel], f.sha256) for f in files if f.rel in recorded and recorded[f.rel] != f.sha256}


def _changed(recorded: str, now: str) -> str:
    return f"content changed since it first landed (sha256 {recorded[:12]}… now {now[:12]}…)"


def _missing(first_seen: datetime) -> str:
    return (f"recorded in the ledger (first seen {first_seen:%Y-%m-%d %H:%M:%S} UTC) but no longer in the landing zone: "
            "landed files are never deleted; restore it")


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
    return {path: _missing(seen) for path, seen in rows}


def record_files(con: duckdb.DuckDBPyConnection, source: str, files: list[LandedFile], now: datetime) -> None:
    """Record files not yet in the ledger; a recorded file keeps its first-seen time, its mtime is refreshed."""
    if not files:
        return
    con.execute(
        """
        INSERT INTO audit.landed_files (source, path, size_bytes, sha256, first_seen_at, modified_ns)
        SELECT ?, f.path, f.size_bytes, f.sha256, ?, f.modified_ns
        FROM (SELECT unnest(?) AS path, unnest(?) AS size_bytes, unnest(?) AS sha256, unnest(?) AS modified_ns) f
        ON CONFLICT (path) DO UPDATE SET modified_ns = excluded.modified_ns
        """,
        [source, now, [f.rel for f in files], [f.size for f in files], [f.sha256 for f in files],
         [f.modified_ns for f in files]],
    )


def unverified_recorded_files(con: duckdb.DuckDBPyConnection, landing: Path, source: str,
                              skip_scope: str) -> dict[str, str]:
    """Recorded `source` files outside `skip_scope` (a LIKE pattern, the files this run hashes anyway)
    that are gone or whose bytes changed: path → why.

    A stat per file; the hash only where size or mtime differ from the ledger (or no mtime was
    recorded yet). A file whose bytes are unchanged gets its new mtime recorded.
    """
    recorded = con.execute(
        "SELECT path, size_bytes, sha256, modified_ns, first_seen_at FROM audit.landed_files "
        "WHERE source = ? AND path NOT LIKE ? ORDER BY path",
        [source, skip_scope],
    ).fetchall()
    problems: dict[str, str] = {}
    suspects: list[tuple[Path, str, str]] = []
    for rel, size, sha256, modified_ns, seen in recorded:
        path = landing / rel
        try:
            stat = path.stat()
        except FileNotFoundError:
            problems[rel] = _missing(seen)
            continue
        if stat.st_size != size or stat.st_mtime_ns != modified_ns:
            suspects.append((path, rel, sha256))
    if suspects:
        now_described = describe_files(landing, [path for path, _, _ in suspects])
        for described, (_, rel, sha256) in zip(now_described, suspects):
            if described.sha256 != sha256:
                problems[rel] = _changed(sha256, described.sha256)
        con.execute(
            "UPDATE audit.landed_files SET modified_ns = f.modified_ns "
            "FROM (SELECT unnest(?) AS path, unnest(?) AS modified_ns) f WHERE landed_files.path = f.path",
            [[d.rel for d in now_described if d.rel not in problems],
             [d.modified_ns for d in now_described if d.rel not in problems]],
        )
    return problems
