"""Usage, one landed `usage/dt=D/` folder at a time, settled month-wide without re-reading earlier days.

The contract makes the day folder the unit of landing, but two rules are month-wide (docs/contract/inputs.md): a
record of the month may sit in any of its folders, and the first delivery of an event_id in
(folder, file name, row) order stands. So a folder's ingestion keeps what the month needs to
settle it later, and reads no other folder in full (docs/decisions.md #73):

- the row rules and the one-month look-back are per row: the folder's rejected rows go to
  `audit.quarantine` at once;
- its *valid* rows (passed every rule) are summed per (customer, resource, SKU, UTC day) into
  `raw.usage_folder_daily`, counted per file (`raw.usage_folder_files`), and their distinct
  64-bit `hash(event_id, reverse(event_id))` kept sorted (`raw.usage_folder_hashes`);
- a valid row whose hash another valid row of the month may share (repeated in the folder, or
  held by another folder) is a *candidate*, kept whole in `raw.usage_candidates`; for a hash that
  becomes shared only now, the other folder's rows of that hash are read back, filtered by hash
  (a few rows, only from the folders concerned).

The month is then settled from the candidates alone (`settle_month`, assets/usage_settle.py): exactly
by event_id, first in (folder, file name, row) order; the duplicate quarantine and the re-deliveries
are rewritten, and the accepted aggregate is Σ folders' valid aggregates − the non-standing
candidates, summed again only for the groups the batch touched, so a late file in an earlier folder
corrects later days without reading them again. Hash collisions only add candidates (settled
exactly). What is shared with other folders or the previous month is found by probing their hash
tables with the batch's hashes, and the month's index follows by difference: a day's cost follows
the day, but for one scan of the month's hashes (decisions #99-#101). Measured costs:
docs/performance.md ("Daily ingestion", and "A day costs a day").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from assets.ingestion import UnreadableFile
from assets.ingestion import write_file_loads
from assets.ledger import LandedFile, changed_files, describe_files, missing_files, record_files
from assets.usage_typed import (LOOKUPS_SQL, RAW_JSON_SQL, flagged_sql, probe_parquet, repeated_event_hashes,
                          sorted_event_hashes, usage_view_sql)
from assets.usage_lookback import (in_sorted, previous_month, settle_lookback, temp_hash_table, union_sorted,
                                   unique_sorted)
from assets.usage_settle import OTHER_VIEW, settle_month, temp_view
from assets.usage_settle import refresh_usage_daily, visible_sql  # noqa: F401 (re-exported: usage, usage_day, cli)
from warehouse.landing import file_sha256, usage_month_prefix

FOLDER_VIEW = "usage_folder_typed"
EMPTY = np.empty(0, dtype=np.uint64)


def folder_prefix(day: date) -> str:
    """SQL LIKE pattern of one folder's files, relative to the landing root."""
    return f"usage/dt={day:%Y-%m-%d}/%"


def folder_files(landing: Path, day: date) -> list[Path]:
    """The folder's Parquet files in file-name order."""
    return sorted((landing / "usage" / f"dt={day:%Y-%m-%d}").glob("*.parquet"))


def month_folder_days(landing: Path, month: date) -> list[date]:
    """Every day of the month whose folder holds a Parquet file, in order."""
    days = []
    for folder in sorted((landing / "usage").glob(f"dt={month:%Y-%m}-[0-3][0-9]")):
        try:
            day = date.fromisoformat(folder.name[3:])
        except ValueError:
            continue
        if folder.is_dir() and any(folder.glob("*.parquet")):
            days.append(day)
    return days


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return start, end


def _sorted(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.uint64)
    values.sort(kind="stable")  # concatenated sorted runs: timsort merges them
    return values


# --- fingerprints: what a folder's ingestion depended on besides its own files ----------------------------

def reference_fingerprint(con) -> str:
    """The customers and priced (SKU, day) pairs the row rules judge by (the LOOKUPS_SQL temp tables)."""
    return con.execute("""
        SELECT md5(coalesce((SELECT string_agg(customer_id, ',' ORDER BY customer_id) FROM usage_known_customers), '')
               || '|' || coalesce((SELECT string_agg(sku || '@' || day::VARCHAR, ',' ORDER BY sku, day)
                                   FROM usage_priced_days), ''))""").fetchone()[0]


def lookback_fingerprint(con, month: date) -> str:
    """The previous month's index, as the look-back read it: its size and the xor of its hashes."""
    n, x = con.execute("SELECT count(*), coalesce(bit_xor(event_hash), 0) FROM raw.usage_event_index "
                       "WHERE billing_month = ?", [previous_month(month)]).fetchone()
    return f"{n}:{x}"


@dataclass
class FolderBatch:
    """The folders one run ingests (one day, or every folder of a month a close finds not ingested)."""

    landing: Path
    month: date
    days: list[date]
    now: datetime
    problems: dict[str, str] = field(default_factory=dict)  # file → why it was left out
    files: dict[date, list[LandedFile]] = field(default_factory=dict)
    footers: dict[str, object] = field(default_factory=dict)
    found: dict[date, list[str]] = field(default_factory=dict)


def _prepare(con, batch: FolderBatch) -> None:
    """Probe, hash and check every file of the batch's folders against the ledger (assets/ingestion.py rules)."""
    for day in batch.days:
        paths = folder_files(batch.landing, day)
        found = [p.relative_to(batch.landing).as_posix() for p in paths]
        readable = []
        for path, rel in zip(paths, found):
            try:
                batch.footers[rel] = probe_parquet(con, path)
                readable.append(path)
            except UnreadableFile as exc:
                batch.problems[rel] = str(exc)
        described = describe_files(batch.landing, readable)
        problems = changed_files(con, described) | missing_files(con, "usage", folder_prefix(day), found)
        batch.problems |= problems
        batch.files[day] = [f for f in described if f.rel not in problems]
        batch.found[day] = found


QUARANTINE_SQL = """
DELETE FROM audit.quarantine WHERE source = 'usage' AND file LIKE $prefix;
INSERT INTO audit.quarantine
  SELECT 'usage', source_file, row_number, event_id, reason, detail, raw, $now FROM usage_flagged WHERE reason IS NOT NULL;
DELETE FROM audit.redeliveries WHERE source = 'usage' AND file LIKE $prefix
"""

# One scan of the folder: its valid rows summed per day key, and counted per file (GROUPING SETS).
AGGREGATE_SQL = """
CREATE OR REPLACE TEMP TABLE usage_valid_groups AS
SELECT grouping(t.source_file) AS per_day, t.source_file,
       t.customer_id, t.resource_id, t.sku, t.start_time::DATE AS usage_date,
       sum(t.quantity)::DECIMAL(38,6) AS quantity, count(*) AS records, max(t.start_time) AS last_start_time
FROM usage_folder_typed t
ANTI JOIN (SELECT source_file, row_number FROM usage_flagged WHERE reason IS NOT NULL) r
  ON r.source_file = t.source_file AND r.row_number = t.row_number
GROUP BY GROUPING SETS ((t.customer_id, t.resource_id, t.sku, usage_date), (t.source_file));
DELETE FROM raw.usage_folder_daily WHERE folder_day = $day;
INSERT INTO raw.usage_folder_daily
SELECT $month, $day, customer_id, resource_id, sku, usage_date, quantity, records, last_start_time
FROM usage_valid_groups WHERE per_day = 1;
DELETE FROM raw.usage_candidates WHERE folder_day = $day;
INSERT INTO raw.usage_candidates
SELECT $month, $day, source_file, row_number, event_id, hash(event_id, reverse(event_id)), content, raw
FROM usage_flagged WHERE reason IS NULL
"""

# The rows a hash that becomes shared only now holds in an earlier-ingested folder: its valid rows.
FETCH_SQL = """
INSERT INTO raw.usage_candidates
SELECT $month, $day, u.source_file, u.row_number, u.event_id, hash(u.event_id, reverse(u.event_id)),
       struct_pack(u.customer_id, u.resource_id, u.sku, u.region, u.start_time, u.end_time, u.quantity),
       {raw}
FROM usage_other_typed u
WHERE u.event_id IS NOT NULL AND hash(u.event_id, reverse(u.event_id)) IN (SELECT h FROM usage_fetch_hashes)
  AND NOT EXISTS (SELECT 1 FROM audit.quarantine q
                  WHERE q.source = 'usage' AND q.file = u.source_file AND q.row_number = u.row_number)
""".replace("{raw}", RAW_JSON_SQL)


def _valid_hashes(con, hashes: np.ndarray) -> np.ndarray:
    """The folder's distinct hashes less those none of whose rows is valid (sorted).

    Every row of a candidate hash is in usage_flagged; a hash outside the candidates has one row in
    the folder, in usage_flagged only if a rule rejected it.
    """
    dropped = con.execute("""
        SELECT hash(event_id, reverse(event_id)) AS h FROM usage_flagged WHERE event_id IS NOT NULL
        GROUP BY 1 HAVING NOT bool_or(reason IS NULL)""").fetchnumpy()["h"]
    distinct = unique_sorted(hashes)
    if len(dropped):
        distinct = distinct[~in_sorted(distinct, _sorted(dropped))]
    return distinct


def _write_hashes(con, month: date, day: date, hashes: np.ndarray) -> None:
    con.execute("DELETE FROM raw.usage_folder_hashes WHERE folder_day = ?", [day])
    con.register("usage_folder_hashes_in", pa.table({"h": pa.array(hashes, type=pa.uint64())}))
    try:
        con.execute("INSERT INTO raw.usage_folder_hashes SELECT $month, $day, h FROM usage_folder_hashes_in",
                    {"month": month, "day": day})
    finally:
        con.unregister("usage_folder_hashes_in")


# The batch's hashes (and its folders' hashes as last ingested) that a folder outside the batch holds: one
# scan of the month's folder hashes probing a hash table of the batch's — no month-sized array in Python.
HELD_ELSEWHERE_SQL = """
SELECT folder_day, event_hash FROM raw.usage_folder_hashes
WHERE billing_month = $month AND event_hash IN (SELECT h FROM usage_probe_hashes)
"""

# The batch's hashes the previous month accepted (its index): look-back candidates.
HELD_BEFORE_SQL = """
SELECT event_hash FROM raw.usage_event_index
WHERE billing_month = $previous AND event_hash IN (SELECT h FROM usage_probe_hashes)
"""


def _probe(con, sql: str, values: dict) -> np.ndarray:
    return _sorted(con.execute(sql, values).fetchnumpy()["event_hash"])


def _held_elsewhere(con, batch: FolderBatch) -> np.ndarray:
    """The probed hashes a folder of the month outside the batch holds, sorted and distinct (the batch's own
    folders are left out here, from the few rows found, rather than by a list test on each of the month's rows)."""
    found = con.execute(HELD_ELSEWHERE_SQL, {"month": batch.month}).fetchnumpy()
    outside = ~np.isin(found["folder_day"].astype("datetime64[D]"), np.array(batch.days, dtype="datetime64[D]"))
    return union_sorted(np.asarray(found["event_hash"], dtype=np.uint64)[outside])


def _batch_hashes_before(con, batch: FolderBatch) -> np.ndarray:
    """The valid hashes the batch's folders held as last ingested (empty for a folder's first ingestion)."""
    return unique_sorted(_probe(con, """
        SELECT event_hash FROM raw.usage_folder_hashes
        WHERE billing_month = $month AND folder_day BETWEEN $first AND $last AND list_contains($days, folder_day)""",
        {"month": batch.month, "first": batch.days[0], "last": batch.days[-1], "days": batch.days}))


def _update_index(con, month: date, before: np.ndarray, after: np.ndarray, elsewhere: np.ndarray,
                  alone: bool) -> None:
    """The month's index := the distinct valid hashes of its folders, by difference (decisions #99).

    `before`/`after`: the batch folders' valid hashes as last ingested and now; `elsewhere`: those of
    either held by another folder of the month. Appended: after − before − elsewhere; deleted:
    before − after − elsewhere. `alone` (no other folder ingested): the month's rows are replaced,
    so that an index written otherwise (an older billops) is not appended to.
    """
    if alone:
        con.execute("DELETE FROM raw.usage_event_index WHERE billing_month = ?", [month]).fetchall()
        added = after
    else:
        added = after[~in_sorted(after, union_sorted(before, elsewhere))]
        gone = before[~in_sorted(before, union_sorted(after, elsewhere))]
        if len(gone):
            temp_hash_table(con, "usage_index_gone", gone)
            con.execute("DELETE FROM raw.usage_event_index WHERE billing_month = ? "
                        "AND event_hash IN (SELECT h FROM usage_index_gone)", [month]).fetchall()
    if len(added):
        con.register("usage_index_in", pa.table({"h": pa.array(added, type=pa.uint64())}))
        try:
            con.execute("INSERT INTO raw.usage_event_index SELECT $month, h FROM usage_index_in", {"month": month})
        finally:
            con.unregister("usage_index_in")


def _repeated_in(arrays: list[np.ndarray]) -> np.ndarray:
    """Values found in more than one of the arrays (each unique), sorted."""
    if len(arrays) < 2:
        return EMPTY
    merged = _sorted(np.concatenate(arrays))
    return repeated_event_hashes(merged)


def _fetch_shared(con, batch: FolderBatch, shared: np.ndarray) -> int:
    """Read back, from folders outside the batch, their valid rows of hashes the batch now shares."""
    if not len(shared):
        return 0
    temp_hash_table(con, "usage_shared_hashes", shared)
    pairs = con.execute("""
        SELECT folder_day, list(event_hash) FROM (
          SELECT folder_day, event_hash FROM raw.usage_folder_hashes
          WHERE billing_month = $month AND NOT list_contains($days, folder_day)
            AND event_hash IN (SELECT h FROM usage_shared_hashes)
          EXCEPT SELECT folder_day, event_hash FROM raw.usage_candidates WHERE billing_month = $month)
        GROUP BY 1 ORDER BY 1""", {"month": batch.month, "days": batch.days}).fetchall()
    fetched = 0
    for day, hashes in pairs:
        files = [rel for (rel,) in con.execute(
            "SELECT file FROM raw.usage_folder_files WHERE folder_day = ? ORDER BY file", [day]).fetchall()]
        paths = [batch.landing / rel for rel in files if (batch.landing / rel).is_file()]
        if not paths:
            continue
        footers = {p: probe_parquet(con, p) for p in paths}
        con.execute(temp_view(usage_view_sql(batch.landing, paths, footers, view=OTHER_VIEW)))
        temp_hash_table(con, "usage_fetch_hashes", np.asarray(hashes, dtype=np.uint64))
        before = con.execute("SELECT count(*) FROM raw.usage_candidates").fetchone()[0]
        con.execute(FETCH_SQL, {"month": batch.month, "day": day})
        fetched += con.execute("SELECT count(*) FROM raw.usage_candidates").fetchone()[0] - before
    return fetched


def load_folders(con, batch: FolderBatch) -> None:
    """Ingest the batch's folders (inside the caller's transaction): quarantine, aggregates, hashes, candidates.

    Three scans of each folder's files, as the month-wide pass made of the month: hashes, flags, sums.
    The candidate hashes of the batch are decided before any folder is flagged, from every batch
    folder's hashes at once: repeated inside a folder, held by two folders, or accepted by the
    previous month — the last two found by probing the month's and the previous month's tables with
    the batch's hashes (HELD_ELSEWHERE_SQL, HELD_BEFORE_SQL), a cost that follows the batch.
    Leaves `usage_touched`: the groups the batch's folders held before and hold now, for settle_month.
    """
    start, end = month_bounds(batch.month)
    params = {"start": start, "end": end}
    for statement in LOOKUPS_SQL.split(";"):
        con.execute(statement, params if "$start" in statement else None)
    footers = {}
    hashes: dict[date, np.ndarray] = {}
    for day in batch.days:
        files = batch.files[day]
        footers = {f.path: batch.footers[f.rel] for f in files}
        con.execute(temp_view(usage_view_sql(batch.landing, [f.path for f in files], footers, view=FOLDER_VIEW)))
        hashes[day] = sorted_event_hashes(con, FOLDER_VIEW)
    distinct = [unique_sorted(h) for h in hashes.values()]
    in_batch = union_sorted(*distinct)
    before = _batch_hashes_before(con, batch)
    temp_hash_table(con, "usage_probe_hashes", union_sorted(in_batch, before))
    values = {"month": batch.month, "days": batch.days}
    elsewhere = _held_elsewhere(con, batch)
    previous = {"previous": previous_month(batch.month)}
    indexed = con.execute("SELECT count(*) FROM raw.usage_event_index WHERE billing_month = $previous",
                          previous).fetchall()[0][0]  # no month before: no hash table built to probe it
    lookback = _probe(con, HELD_BEFORE_SQL, previous) if indexed else EMPTY
    within = [repeated_event_hashes(h) for h in hashes.values()]
    across = union_sorted(_repeated_in(distinct), in_batch[in_sorted(in_batch, elsewhere)])
    candidates = union_sorted(across, lookback, *within)
    del distinct, in_batch
    temp_hash_table(con, "usage_repeated_hashes", candidates)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE usage_touched AS
        SELECT DISTINCT customer_id, resource_id, sku, usage_date FROM raw.usage_folder_daily
        WHERE billing_month = $month AND folder_day BETWEEN $first AND $last AND list_contains($days, folder_day)""",
                values | {"first": batch.days[0], "last": batch.days[-1]})
    batch_valid = []
    for day in batch.days:
        # the look-back candidates this folder holds: the previous month's files are read only for them
        temp_hash_table(con, "usage_lookback_hashes", lookback[in_sorted(lookback, hashes[day])])
        files = batch.files[day]
        footers = {f.path: batch.footers[f.rel] for f in files}
        con.execute(temp_view(usage_view_sql(batch.landing, [f.path for f in files], footers, view=FOLDER_VIEW)))
        con.execute(flagged_sql(FOLDER_VIEW), params)
        settle_lookback(con, batch.landing, batch.month)
        values = {"prefix": folder_prefix(day), "now": batch.now, "month": batch.month, "day": day}
        for statement in QUARANTINE_SQL.split(";"):
            con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})
        for statement in AGGREGATE_SQL.split(";"):
            con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})
        con.execute("""INSERT INTO usage_touched SELECT customer_id, resource_id, sku, usage_date
                       FROM usage_valid_groups WHERE per_day = 1""")
        con.execute("DELETE FROM raw.usage_folder_files WHERE folder_day = ?", [day])
        con.execute(
            """INSERT INTO raw.usage_folder_files
               SELECT $month, $day, f.file, f.rows_read, coalesce(g.records, 0)
               FROM (SELECT unnest($files::VARCHAR[]) AS file, unnest($rows::BIGINT[]) AS rows_read) f
               LEFT JOIN usage_valid_groups g ON g.per_day = 0 AND g.source_file = f.file""",
            {"month": batch.month, "day": day, "files": [f.rel for f in files],
             "rows": [batch.footers[f.rel].rows for f in files]})
        valid = _valid_hashes(con, hashes.pop(day))
        _write_hashes(con, batch.month, day, valid)
        batch_valid.append(valid)
    after = union_sorted(*batch_valid)
    if len(elsewhere) and len(after):
        _fetch_shared(con, batch, after[in_sorted(after, elsewhere)])
    alone = not con.execute("""SELECT count(*) FROM raw.usage_folder_files
                               WHERE billing_month = ? AND NOT list_contains(?, folder_day)""",
                            [batch.month, batch.days]).fetchall()[0][0]
    _update_index(con, batch.month, before, after, elsewhere, alone)


# --- which folders need ingesting ------------------------------------------------------------------------

def _state(con, month: date) -> dict[date, tuple[dict, str, str]]:
    return {day: (json.loads(files), ref, look) for day, files, ref, look in con.execute(
        "SELECT folder_day, files, reference, lookback FROM raw.usage_folder_state WHERE billing_month = ?",
        [month]).fetchall()}


def stale_folders(con, landing: Path, month: date, reference: str, lookback: str) -> list[date]:
    """The month's folders not ingested, or whose files, reference data or look-back changed since.

    A file's bytes are judged by a stat against the ledger, hashed only when size or mtime moved.
    Folders recorded but no longer landed are stale too (their files are then named missing).
    """
    state = _state(con, month)
    ledger = {path: (size, mtime, sha) for path, size, mtime, sha in con.execute(
        "SELECT path, size_bytes, modified_ns, sha256 FROM audit.landed_files WHERE source = 'usage' AND path LIKE ?",
        [usage_month_prefix(month)]).fetchall()}
    stale = []
    for day in sorted(set(month_folder_days(landing, month)) | set(state)):
        if day not in state:
            stale.append(day)
            continue
        files, ref, look = state[day]
        paths = folder_files(landing, day)
        rels = [p.relative_to(landing).as_posix() for p in paths]
        if set(rels) != set(files) or ref != reference or look != lookback:
            stale.append(day)
            continue
        for path, rel in zip(paths, rels):
            st = path.stat()
            size, mtime, sha = ledger.get(rel, (None, None, None))
            if (st.st_size, st.st_mtime_ns) != (size, mtime) and file_sha256(path) != files[rel]:
                stale.append(day)
                break
    return stale


def ingest_folders(con, landing: Path, month: date, days: list[date] | None = None) -> FolderBatch:
    """Ingest `days` (default: every stale folder of the month) and settle the month, in one transaction.

    A folder whose every file loaded gets its state recorded; one with a problem file does not, so
    the next run (the close) tries it again and names the file.
    """
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    start, end = month_bounds(month)
    for statement in LOOKUPS_SQL.split(";"):
        con.execute(statement, {"start": start, "end": end} if "$start" in statement else None)
    reference, lookback = reference_fingerprint(con), lookback_fingerprint(con, month)
    if days is None:
        days = stale_folders(con, landing, month, reference, lookback)
    batch = FolderBatch(landing, month, sorted(days), now)
    if not batch.days:
        return batch
    _prepare(con, batch)
    con.execute("BEGIN")
    try:
        load_folders(con, batch)
        for day in batch.days:
            files = batch.files[day]
            record_files(con, "usage", files, now)
            con.execute("DELETE FROM raw.usage_folder_state WHERE folder_day = ?", [day])
            if not any(rel in batch.problems for rel in batch.found[day]) and not any(
                    p.startswith(f"usage/dt={day:%Y-%m-%d}/") for p in batch.problems):
                con.execute("INSERT INTO raw.usage_folder_state VALUES (?, ?, ?, ?, ?, ?)",
                            [month, day, json.dumps({f.rel: f.sha256 for f in files}), reference, lookback, now])
        rows_read = settle_month(con, landing, month, batch.days, now)
        write_file_loads(con, "usage", month, rows_read, now)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return batch


def month_of(day: date) -> date:
    return day.replace(day=1)


def days_of_month(month: date) -> list[date]:
    start, end = month_bounds(month)
    return [(start + timedelta(days=i)).date() for i in range((end - start).days)]
