"""The month's usage duplicates settled after a batch of folders, touching only what the batch changed.

`settle_month` runs inside the batch's transaction (assets/usage_folder.py). The duplicate candidates
of the month are ranked again (few: the month's repeated ids, ~1e-3 of its rows), the duplicate
quarantine and the re-deliveries rewritten from them. Everything month-sized is updated, not
rebuilt (decisions #99-#101):

- `raw.usage_accepted_daily` and, when it holds this month, `raw.usage_daily`: only the groups
  (customer, resource, SKU, UTC day) the batch's folders held before or hold now, and those of the
  candidates whose standing changed (a late file in an earlier folder moves the first delivery);
  each such group is summed again from the folders' aggregates, filtered by its keys, by the same
  formula as the month's — so a group's value is the one a settle over the whole month gives;
- the month's index of accepted event ids (`raw.usage_event_index`) gets the batch's new hashes
  appended and its vanished ones deleted (assets/usage_folder.py computes both).

Before this, each day re-summed the month's ~3M folder aggregates and rewrote its 20M-hash index:
7.9 of the 18.9 s a day took at 10,000 customers (docs/performance.md).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from assets.usage_typed import probe_parquet, usage_view_sql
from warehouse.landing import usage_month_prefix

OTHER_VIEW = "usage_other_typed"
KEYS = ("customer_id", "resource_id", "sku", "usage_date")


def temp_view(sql: str) -> str:
    return sql.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW", 1)


def _on(left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in KEYS)


# The month's candidates outside the batch that did not stand before this settle (batch folders'
# own candidates were deleted with their folder; their groups are touched anyway).
REMOVED_BEFORE_SQL = """
CREATE OR REPLACE TEMP TABLE usage_removed_before AS
SELECT c.source_file, c.row_number FROM raw.usage_candidates c
WHERE c.billing_month = $month AND NOT list_contains($days, c.folder_day)
  AND (EXISTS (SELECT 1 FROM audit.redeliveries r WHERE r.source = 'usage'
               AND r.file = c.source_file AND r.row_number = c.row_number)
    OR EXISTS (SELECT 1 FROM audit.quarantine q WHERE q.source = 'usage' AND q.reason = 'conflicting_duplicate'
               AND q.file = c.source_file AND q.row_number = c.row_number))
"""

REPEATS_SQL = """
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
  FROM usage_repeats WHERE same_content
"""

# The groups of the candidates whose standing changed: removed now and not before, or the reverse.
CHANGED_GROUPS_SQL = """
INSERT INTO usage_touched
SELECT c.content.customer_id, c.content.resource_id, c.content.sku, c.content.start_time::DATE
FROM raw.usage_candidates c SEMI JOIN (
  (SELECT source_file, row_number FROM usage_removed_before
   EXCEPT SELECT source_file, row_number FROM usage_repeats)
  UNION ALL
  (SELECT source_file, row_number FROM usage_repeats
   EXCEPT SELECT source_file, row_number FROM usage_removed_before)) x
  ON x.source_file = c.source_file AND x.row_number = c.row_number
WHERE c.billing_month = $month;
CREATE OR REPLACE TEMP TABLE usage_touched_groups AS SELECT DISTINCT * FROM usage_touched
"""

# The removed records of the touched groups, and the latest start among those whose standing delivery
# is not in the same group at the same start (a re-delivery always is, and so is a conflicting one
# differing only in quantity or region).
REMOVED_SQL = f"""
CREATE OR REPLACE TEMP TABLE usage_removed AS
SELECT * FROM (
  SELECT content.customer_id AS customer_id, content.resource_id AS resource_id, content.sku AS sku,
         content.start_time::DATE AS usage_date, sum(content.quantity) AS quantity, count(*) AS records,
         max(content.start_time) FILTER (WHERE NOT same_content AND (
           struct_extract(content, 'customer_id') IS DISTINCT FROM struct_extract(first_content, 'customer_id')
           OR struct_extract(content, 'resource_id') IS DISTINCT FROM struct_extract(first_content, 'resource_id')
           OR struct_extract(content, 'sku') IS DISTINCT FROM struct_extract(first_content, 'sku')
           OR struct_extract(content, 'start_time') IS DISTINCT FROM struct_extract(first_content, 'start_time')))
           AS last_at_risk
  FROM usage_repeats GROUP BY ALL) r
SEMI JOIN usage_touched_groups g ON {_on('g', 'r')}
"""

# The touched groups summed again over every folder's aggregates (the month's formula, filtered by key;
# the date range lets DuckDB skip the row groups of other days: each folder's rows are mostly its day).
ACCEPTED_SQL = f"""
DELETE FROM raw.usage_accepted_daily a
WHERE a.billing_month = $month AND a.usage_date BETWEEN $lo AND $hi
  AND EXISTS (SELECT 1 FROM usage_touched_groups g WHERE {_on('g', 'a')});
INSERT INTO raw.usage_accepted_daily
WITH total AS (
  SELECT f.customer_id, f.resource_id, f.sku, f.usage_date, sum(f.quantity) AS quantity, sum(f.records) AS records,
         max(f.last_start_time) AS last_start_time
  FROM raw.usage_folder_daily f SEMI JOIN usage_touched_groups g ON {_on('g', 'f')}
  WHERE f.billing_month = $month AND f.usage_date BETWEEN $lo AND $hi GROUP BY ALL
)
SELECT $month, t.customer_id, t.resource_id, t.sku, t.usage_date,
       (t.quantity - coalesce(r.quantity, 0))::DECIMAL(38,6), t.records - coalesce(r.records, 0), t.last_start_time
FROM total t LEFT JOIN usage_removed r ON {_on('r', 't')}
WHERE t.records - coalesce(r.records, 0) > 0
"""

# Touched groups whose latest record may be one that did not stand.
STALE_LAST_SQL = f"""
CREATE OR REPLACE TEMP TABLE usage_stale_last AS
SELECT a.customer_id, a.resource_id, a.sku, a.usage_date
FROM raw.usage_accepted_daily a JOIN usage_removed r ON {_on('r', 'a')}
WHERE a.billing_month = $month AND a.usage_date BETWEEN $lo AND $hi AND r.last_at_risk >= a.last_start_time
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

# raw.usage_daily, when it holds the month, follows the touched groups.
USAGE_DAILY_GROUPS_SQL = f"""
DELETE FROM raw.usage_daily d
WHERE d.usage_date BETWEEN $lo AND $hi AND EXISTS (SELECT 1 FROM usage_touched_groups g WHERE {_on('g', 'd')});
INSERT INTO raw.usage_daily
SELECT a.customer_id, a.resource_id, a.sku, a.usage_date, a.quantity, a.records, a.last_start_time
FROM raw.usage_accepted_daily a SEMI JOIN usage_touched_groups g ON {_on('g', 'a')}
WHERE a.billing_month = $month AND a.usage_date BETWEEN $lo AND $hi
"""

# What dbt rates: one month's accepted usage per (customer, resource, SKU, UTC day), settled, and which
# month that is (raw.usage_daily_state), so that a day of the same month updates it in place.
USAGE_DAILY_SQL = """
CREATE OR REPLACE TABLE raw.usage_daily AS
SELECT customer_id, resource_id, sku, usage_date, quantity, records, last_start_time
FROM raw.usage_accepted_daily WHERE billing_month = $month;
DELETE FROM raw.usage_daily_state;
INSERT INTO raw.usage_daily_state VALUES ($month)
"""


def _run(con, sql: str, values: dict) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})


def _exact_last_start(con, landing: Path, values: dict) -> int:
    """The latest accepted start of each touched group whose latest valid record may not stand (rare: a
    conflicting duplicate at another time or key, on the group's last hour), read back from the folders
    holding the group, filtered by key: one read for all such groups. How many groups."""
    _run(con, STALE_LAST_SQL, values)
    stale = con.execute("SELECT count(*) FROM usage_stale_last").fetchone()[0]
    if not stale:
        return 0
    rels = [rel for (rel,) in con.execute(f"""
        SELECT DISTINCT ff.file FROM raw.usage_folder_files ff
        WHERE ff.billing_month = $month AND ff.folder_day IN (
          SELECT DISTINCT f.folder_day FROM raw.usage_folder_daily f SEMI JOIN usage_stale_last k ON {_on('k', 'f')}
          WHERE f.billing_month = $month AND f.usage_date BETWEEN $lo AND $hi)
        ORDER BY 1""", {k: values[k] for k in ("month", "lo", "hi")}).fetchall()]
    paths = [landing / rel for rel in rels if (landing / rel).is_file()]
    if paths:
        con.execute(temp_view(usage_view_sql(landing, paths, {p: probe_parquet(con, p) for p in paths},
                                             view=OTHER_VIEW)))
        con.execute(EXACT_LAST_SQL, {"month": values["month"]})
    return stale


def usage_daily_holds(con, month: date) -> bool:
    """raw.usage_daily holds `month` (the last refresh was of it; settle_month keeps it current since)."""
    row = con.execute("SELECT max(billing_month) FROM raw.usage_daily_state").fetchone()
    return row[0] == month


def settle_month(con, landing: Path, month: date, days: list[date], now: datetime) -> dict[str, int]:
    """Settle the month's duplicates from its candidates after the batch `days`; update the touched groups.

    Expects `usage_touched` (the batch folders' groups, before and after) from load_folders. Returns
    rows read per file of the month (audit.file_loads' `rows_read`)."""
    values = {"month": month, "days": days, "prefix": usage_month_prefix(month), "now": now}
    _run(con, REMOVED_BEFORE_SQL, values)
    _run(con, REPEATS_SQL, values)
    _run(con, CHANGED_GROUPS_SQL, values)
    lo, hi = con.execute("SELECT min(usage_date), max(usage_date) FROM usage_touched_groups").fetchone()
    if lo is not None:
        values |= {"lo": lo, "hi": hi}
        _run(con, REMOVED_SQL, values)
        _run(con, ACCEPTED_SQL, values)
        _exact_last_start(con, landing, values)
        if usage_daily_holds(con, month):
            _run(con, USAGE_DAILY_GROUPS_SQL, values)
    return dict(con.execute("SELECT file, rows_read FROM raw.usage_folder_files WHERE billing_month = ? ORDER BY file",
                            [month]).fetchall())


def refresh_usage_daily(con, month: date, whole: bool = False) -> None:
    """raw.usage_daily := the month's settled aggregates.

    Nothing to copy when it already holds the month: every settle since the last copy updated the
    groups it touched, in its own transaction (~1 s a day saved at 10,000 customers, 3M rows). The
    close passes `whole`, and copies the month it rates anyway."""
    if not whole and usage_daily_holds(con, month):
        return
    con.execute("BEGIN")
    try:
        _run(con, USAGE_DAILY_SQL, {"month": month})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


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
