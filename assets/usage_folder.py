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

The month is then settled from the candidates alone (`settle_month`): exactly by event_id, first in
(folder, file name, row) order; the duplicate quarantine and the re-deliveries are rewritten, and
the accepted aggregate is Σ folders' valid aggregates − the non-standing candidates, so a late
file in an earlier folder corrects later days without reading them again. Hash collisions only
add candidates (settled exactly). Measured costs: docs/performance.md ("Daily ingestion").
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
from assets.usage_lookback import previous_month, settle_lookback, shared_hashes, temp_hash_table, unique_sorted
from assets.usage_lookback import write_index, indexed_hashes
from warehouse.landing import file_sha256, usage_month_prefix

FOLDER_VIEW = "usage_folder_typed"
OTHER_VIEW = "usage_other_typed"
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


def _temp_view(sql: str) -> str:
    return sql.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW", 1)


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
        distinct = distinct[~np.isin(distinct, np.asarray(dropped, dtype=np.uint64))]
    return distinct


def _write_hashes(con, month: date, day: date, hashes: np.ndarray) -> None:
    con.execute("DELETE FROM raw.usage_folder_hashes WHERE folder_day = ?", [day])
    con.register("usage_folder_hashes_in", pa.table({"h": pa.array(hashes, type=pa.uint64())}))
    try:
        con.execute("INSERT INTO raw.usage_folder_hashes SELECT $month, $day, h FROM usage_folder_hashes_in",
                    {"month": month, "day": day})
    finally:
        con.unregister("usage_folder_hashes_in")


def _existing_hashes(con, month: date, skip: list[date]) -> np.ndarray:
    """The valid hashes of the month's folders outside this batch, sorted (each folder's are a sorted run)."""
    hashes = con.execute(
        "SELECT event_hash FROM raw.usage_folder_hashes WHERE billing_month = ? AND NOT list_contains(?, folder_day)",
        [month, skip]).fetchnumpy()["event_hash"]
    return _sorted(hashes)


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
        con.execute(_temp_view(usage_view_sql(batch.landing, paths, footers, view=OTHER_VIEW)))
        temp_hash_table(con, "usage_fetch_hashes", np.asarray(hashes, dtype=np.uint64))
        before = con.execute("SELECT count(*) FROM raw.usage_candidates").fetchone()[0]
        con.execute(FETCH_SQL, {"month": batch.month, "day": day})
        fetched += con.execute("SELECT count(*) FROM raw.usage_candidates").fetchone()[0] - before
    return fetched


def load_folders(con, batch: FolderBatch) -> None:
    """Ingest the batch's folders (inside the caller's transaction): quarantine, aggregates, hashes, candidates.

    Three scans of each folder's files, as the month-wide pass made of the month: hashes, flags, sums.
    The candidate hashes of the batch are decided before any folder is flagged, from every folder's
    hashes at once: repeated inside a folder, held by two folders, or accepted by the previous month.
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
        con.execute(_temp_view(usage_view_sql(batch.landing, [f.path for f in files], footers, view=FOLDER_VIEW)))
        hashes[day] = sorted_event_hashes(con, FOLDER_VIEW)
    existing = _existing_hashes(con, batch.month, batch.days)
    within = [repeated_event_hashes(h) for h in hashes.values()]
    across = _repeated_in([unique_sorted(h) for h in hashes.values()] + ([existing] if len(existing) else []))
    month_hashes = _sorted(np.concatenate([unique_sorted(h) for h in hashes.values()] + [existing]))
    month_hashes = unique_sorted(month_hashes)
    prior = indexed_hashes(con, previous_month(batch.month))
    lookback = shared_hashes(month_hashes, prior) if len(prior) and len(month_hashes) else EMPTY
    del month_hashes, prior
    candidates = np.union1d(np.union1d(across, lookback), np.concatenate(within) if within else EMPTY)
    temp_hash_table(con, "usage_repeated_hashes", candidates)
    batch_valid = []
    for day in batch.days:
        # the look-back candidates this folder holds: the previous month's files are read only for them
        temp_hash_table(con, "usage_lookback_hashes", np.intersect1d(lookback, hashes[day]))
        files = batch.files[day]
        footers = {f.path: batch.footers[f.rel] for f in files}
        con.execute(_temp_view(usage_view_sql(batch.landing, [f.path for f in files], footers, view=FOLDER_VIEW)))
        con.execute(flagged_sql(FOLDER_VIEW), params)
        settle_lookback(con, batch.landing, batch.month)
        values = {"prefix": folder_prefix(day), "now": batch.now, "month": batch.month, "day": day}
        for statement in QUARANTINE_SQL.split(";"):
            con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})
        for statement in AGGREGATE_SQL.split(";"):
            con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})
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
    if len(existing) and batch_valid:
        _fetch_shared(con, batch, shared_hashes(_sorted(np.concatenate(batch_valid)), existing))


# --- the month, settled from the candidates -----------------------------------------------------------

SETTLE_SQL = """
CREATE OR REPLACE TEMP TABLE usage_repeats AS
WITH ranked AS (
  SELECT *,
    row_number() OVER w AS delivery,
    first_value(source_file) OVER w AS first_file,
    first_value(row_number) OVER w AS first_row_number,
    first_value(content) OVER w AS first_content
  FROM raw.usage_candidates WHERE billing_month = $month
  WINDOW w AS (PARTITION BY event_id ORDER BY source_file, row_number)
)
SELECT source_file, row_number, event_id, raw, content, first_content, first_file, first_row_number,
       content IS NOT DISTINCT FROM first_content AS same_content
FROM ranked WHERE delivery > 1;
DELETE FROM audit.quarantine q WHERE q.source = 'usage' AND q.reason = 'conflicting_duplicate' AND q.file LIKE $prefix
  AND EXISTS (SELECT 1 FROM raw.usage_candidates c
              WHERE c.billing_month = $month AND c.source_file = q.file AND c.row_number = q.row_number);
INSERT INTO audit.quarantine
  SELECT 'usage', source_file, row_number, event_id, 'conflicting_duplicate',
         'event_id ' || event_id || ' first delivered in ' || first_file || ' row ' || first_row_number || ' with different content',
         raw, $now
  FROM usage_repeats WHERE NOT same_content;
DELETE FROM audit.redeliveries WHERE source = 'usage' AND file LIKE $prefix;
INSERT INTO audit.redeliveries
  SELECT 'usage', source_file, row_number, event_id, first_file, first_row_number, $now
  FROM usage_repeats WHERE same_content;
CREATE OR REPLACE TEMP TABLE usage_removed AS
SELECT content.customer_id AS customer_id, content.resource_id AS resource_id, content.sku AS sku,
       content.start_time::DATE AS usage_date, sum(content.quantity) AS quantity, count(*) AS records,
       -- the latest start among the removed records whose standing delivery is not in the same group at the
       -- same start (a re-delivery always is, and so is a conflicting one differing only in quantity or region)
       max(content.start_time) FILTER (WHERE NOT same_content AND (
         struct_extract(content, 'customer_id') IS DISTINCT FROM struct_extract(first_content, 'customer_id')
         OR struct_extract(content, 'resource_id') IS DISTINCT FROM struct_extract(first_content, 'resource_id')
         OR struct_extract(content, 'sku') IS DISTINCT FROM struct_extract(first_content, 'sku')
         OR struct_extract(content, 'start_time') IS DISTINCT FROM struct_extract(first_content, 'start_time')))
         AS last_at_risk
FROM usage_repeats GROUP BY ALL;
DELETE FROM raw.usage_accepted_daily WHERE billing_month = $month;
INSERT INTO raw.usage_accepted_daily
WITH total AS (
  SELECT customer_id, resource_id, sku, usage_date, sum(quantity) AS quantity, sum(records) AS records,
         max(last_start_time) AS last_start_time
  FROM raw.usage_folder_daily WHERE billing_month = $month GROUP BY ALL
)
SELECT $month, t.customer_id, t.resource_id, t.sku, t.usage_date,
       (t.quantity - coalesce(r.quantity, 0))::DECIMAL(38,6), t.records - coalesce(r.records, 0), t.last_start_time
FROM total t LEFT JOIN usage_removed r
  ON r.customer_id = t.customer_id AND r.resource_id = t.resource_id AND r.sku = t.sku AND r.usage_date = t.usage_date
WHERE t.records - coalesce(r.records, 0) > 0
"""

# Groups whose latest record may be one that did not stand, and the folders that hold each.
STALE_LAST_SQL = """
CREATE OR REPLACE TEMP TABLE usage_stale_last AS
SELECT a.customer_id, a.resource_id, a.sku, a.usage_date
FROM raw.usage_accepted_daily a JOIN usage_removed r
  ON r.customer_id = a.customer_id AND r.resource_id = a.resource_id AND r.sku = a.sku AND r.usage_date = a.usage_date
WHERE a.billing_month = $month AND r.last_at_risk >= a.last_start_time
"""

# One read of the folders concerned, filtered by the groups' keys: their latest accepted start.
EXACT_LAST_SQL = """
UPDATE raw.usage_accepted_daily SET last_start_time = x.last_start_time
FROM (
  SELECT u.customer_id, u.resource_id, u.sku, u.start_time::DATE AS usage_date, max(u.start_time) AS last_start_time
  FROM usage_other_typed u SEMI JOIN usage_stale_last k
    ON k.customer_id = u.customer_id AND k.resource_id = u.resource_id AND k.sku = u.sku
   AND k.usage_date = u.start_time::DATE
  WHERE NOT EXISTS (SELECT 1 FROM audit.quarantine q WHERE q.source = 'usage'
                    AND q.file = u.source_file AND q.row_number = u.row_number)
    AND NOT EXISTS (SELECT 1 FROM audit.redeliveries r WHERE r.source = 'usage'
                    AND r.file = u.source_file AND r.row_number = u.row_number)
  GROUP BY ALL
) x
WHERE usage_accepted_daily.billing_month = $month AND usage_accepted_daily.customer_id = x.customer_id
  AND usage_accepted_daily.resource_id = x.resource_id AND usage_accepted_daily.sku = x.sku
  AND usage_accepted_daily.usage_date = x.usage_date
"""


def _exact_last_start(con, landing: Path, month: date) -> int:
    """The latest accepted start of each group whose latest valid record may not stand (rare: a conflicting
    duplicate at another time or key, on the group's last hour), read back from the folders holding the
    group, filtered by key: one read for all such groups. How many groups."""
    con.execute(STALE_LAST_SQL, {"month": month})
    stale = con.execute("SELECT count(*) FROM usage_stale_last").fetchone()[0]
    if not stale:
        return 0
    rels = [rel for (rel,) in con.execute("""
        SELECT DISTINCT ff.file FROM raw.usage_folder_files ff
        WHERE ff.billing_month = $month AND ff.folder_day IN (
          SELECT DISTINCT f.folder_day FROM raw.usage_folder_daily f SEMI JOIN usage_stale_last k
            ON k.customer_id = f.customer_id AND k.resource_id = f.resource_id AND k.sku = f.sku
           AND k.usage_date = f.usage_date
          WHERE f.billing_month = $month)
        ORDER BY 1""", {"month": month}).fetchall()]
    paths = [landing / rel for rel in rels if (landing / rel).is_file()]
    if paths:
        con.execute(_temp_view(usage_view_sql(landing, paths, {p: probe_parquet(con, p) for p in paths},
                                              view=OTHER_VIEW)))
        con.execute(EXACT_LAST_SQL, {"month": month})
    return stale


def settle_month(con, landing: Path, month: date, now: datetime) -> dict[str, int]:
    """Settle the month's duplicates from its candidates; rewrite its accepted aggregates and index.

    Returns rows read per file of the month (audit.file_loads' `rows_read`)."""
    values = {"month": month, "prefix": usage_month_prefix(month), "now": now}
    for statement in SETTLE_SQL.split(";"):
        if statement.strip():
            con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})
    _exact_last_start(con, landing, month)
    hashes = con.execute("SELECT event_hash FROM raw.usage_folder_hashes WHERE billing_month = ?",
                         [month]).fetchnumpy()["event_hash"]
    write_index(con, month, _sorted(hashes))
    return dict(con.execute("SELECT file, rows_read FROM raw.usage_folder_files WHERE billing_month = ? ORDER BY file",
                            [month]).fetchall())


# What dbt rates: one month's accepted usage per (customer, resource, SKU, UTC day), settled. The close
# writes it for the month it closes; a day's ingestion for its month, so that the month-to-date preview
# (orchestration/preview.py) rates the days ingested so far.
USAGE_DAILY_SQL = """
CREATE OR REPLACE TABLE raw.usage_daily AS
SELECT customer_id, resource_id, sku, usage_date, quantity, records, last_start_time
FROM raw.usage_accepted_daily WHERE billing_month = ?
"""


def refresh_usage_daily(con, month: date) -> None:
    """raw.usage_daily := the month's settled aggregates."""
    con.execute(USAGE_DAILY_SQL, [month])


def visible_sql(month: date) -> str:
    """Per file of the month: the valid rows less the candidates that did not stand (what rating sums)."""
    m = f"DATE '{month:%Y-%m-%d}'"
    return f"""
SELECT f.file AS source_file, f.valid - coalesce(x.n, 0) AS n
FROM raw.usage_folder_files f
LEFT JOIN (
  SELECT c.source_file, count(*) AS n FROM raw.usage_candidates c
  WHERE c.billing_month = {m} AND (
    EXISTS (SELECT 1 FROM audit.redeliveries r WHERE r.source = 'usage' AND r.file = c.source_file AND r.row_number = c.row_number)
    OR EXISTS (SELECT 1 FROM audit.quarantine q WHERE q.source = 'usage' AND q.file = c.source_file AND q.row_number = c.row_number))
  GROUP BY 1) x ON x.source_file = f.file
WHERE f.billing_month = {m}"""


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
        rows_read = settle_month(con, landing, month, now)
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
