"""Usage duplicates across months: the index of accepted event ids, and the look-back of one month.

The contract (docs/contract/inputs.md, "Across months"): a record of month M whose event_id was
accepted in month M-1 is `conflicting_duplicate`, and M-1's delivery stands. Billops looks back
exactly one month (decisions #71, #72).

- **The index**, `raw.usage_event_index`: per month, the distinct 64-bit
  `hash(event_id, reverse(event_id))` of the event ids the month accepted — the distinct valid
  hashes of its folders (`raw.usage_folder_hashes`). Each batch of folders appends its new hashes
  and deletes those no folder holds any more, inside its transaction (assets/usage_folder.py,
  decisions #99); ~6-8 bytes an id as DuckDB stores them. Every month is kept: a restatement of
  any issued month re-applies the rule against the month before it, so no month's index may go
  while its successor can be restated.
- **The look-back**: the batch's hashes are probed against M-1's index in DuckDB (a hash table
  of the batch's, one scan of M-1's rows: no month-sized array in Python). A shared hash is a
  candidate, confirmed by event_id string equality: M-1's files as its last ingestion loaded them
  (`audit.file_loads`; immutable, and the ledger verifies them on every close) are read back,
  their event_id column only, for the rows with a candidate hash, less the rows M-1 quarantined
  or found re-delivered: what is left is M-1's delivery that stands.

Why hashes only, not (hash, file, row) per accepted record (the layout first built): measured on a
10,000-customer month (21.5M rows, shared 2-core machine), that index cost +6-7 s on a 9 s usage
step (writing it from the typed view 2.4-4.8 s, committing it ~1.5 s, sorting M-1's hashes at the
next close ~1.5 s); locating M-1's delivery is paid only in the months that do repeat M-1's ids:
one read of M-1's event_id column (20.8M rows: 1.6-2.2 s for 1,000 candidates, 3.1-3.3 s for 100,000).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from warehouse.landing import sql_path_list

# M-1's accepted rows whose event id hash M shares, read back from the files its last ingestion loaded.
PRIOR_ROWS_SQL = """
CREATE OR REPLACE TEMP TABLE usage_lookback_first AS
SELECT DISTINCT ON (event_id) event_id, source_file, row_number
FROM (
  SELECT substr(filename, {prefix}) AS source_file, file_row_number + 1 AS row_number,
         try_cast(event_id AS VARCHAR) AS event_id
  FROM read_parquet({paths}, filename = true, file_row_number = true, union_by_name = true)
) p
WHERE event_id IS NOT NULL AND hash(event_id, reverse(event_id)) IN (SELECT h FROM usage_lookback_hashes)
  AND NOT EXISTS (SELECT 1 FROM audit.quarantine q
                  WHERE q.source = 'usage' AND q.file = p.source_file AND q.row_number = p.row_number)
  AND NOT EXISTS (SELECT 1 FROM audit.redeliveries r
                  WHERE r.source = 'usage' AND r.file = p.source_file AND r.row_number = p.row_number)
ORDER BY event_id, source_file, row_number
"""

# A valid row of M (it passed every row rule) with an id M-1 accepted: quarantined, naming M-1's delivery.
# Every such row, also those the in-month pass would have called re-deliveries of each other: the
# delivery that stands is M-1's (decisions #72).
CONFIRM_SQL = """
UPDATE usage_flagged SET reason = 'conflicting_duplicate',
  detail = 'event_id ' || usage_flagged.event_id || ' first accepted in ' || $previous_text || ' in '
           || c.source_file || ' row ' || c.row_number::VARCHAR
FROM usage_lookback_first c
WHERE usage_flagged.reason IS NULL AND usage_flagged.event_id = c.event_id
"""

def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def unique_sorted(values: np.ndarray) -> np.ndarray:
    if len(values) < 2:
        return values
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


def union_sorted(*arrays: np.ndarray) -> np.ndarray:
    """The distinct values of sorted arrays, sorted (a stable sort of concatenated sorted runs merges them)."""
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return np.empty(0, dtype=np.uint64)
    merged = np.concatenate(arrays).astype(np.uint64, copy=False)
    merged.sort(kind="stable")
    return unique_sorted(merged)


def in_sorted(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Which of `values` the sorted array holds (a mask), by binary search. numpy's own set operations
    (intersect1d, union1d) make both sides unique again with a hash table: 11 of the 17 s a day took at
    10,000 customers before these two replaced them (docs/performance.md, 2026-12-04)."""
    if not len(values) or not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def settle_lookback(con, landing: Path, month: date) -> int:
    """Quarantine the valid rows of usage_flagged whose event_id the previous month accepted; how many.

    Only when `usage_lookback_hashes` holds a candidate. A file of the previous month that is no
    longer landed is skipped here: the ledger check fails the close naming it.
    """
    if not con.execute("SELECT count(*) FROM usage_lookback_hashes").fetchone()[0]:
        return 0
    previous = previous_month(month)
    files = [rel for (rel,) in con.execute(
        "SELECT file FROM audit.file_loads WHERE source = 'usage' AND billing_month = ? ORDER BY file", [previous]
    ).fetchall()]
    paths = [landing / rel for rel in files if (landing / rel).is_file()]
    if not paths:
        return 0
    con.execute(PRIOR_ROWS_SQL.format(prefix=len(str(landing)) + 2, paths=sql_path_list(paths)))
    (confirmed,) = con.execute(CONFIRM_SQL, {"previous_text": f"{previous:%Y-%m}"}).fetchone()
    return confirmed


def temp_hash_table(con, name: str, hashes: np.ndarray) -> None:
    """A temp table `name` (h UBIGINT) of the given hashes, for the flagging pass to probe."""
    con.register("usage_hashes_in", pa.table({"h": pa.array(hashes, type=pa.uint64())}))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT h FROM usage_hashes_in")
    finally:
        con.unregister("usage_hashes_in")
