"""Metered usage: the month's Parquet files → typed view, quarantine, re-deliveries.

The hot path stays near the Parquet (architecture.md): rows are never copied
into DuckDB. `raw.usage_month_typed` is a typed view over the month's readable
files; this asset settles which of its rows are rejected (`audit.quarantine`)
or re-delivered (`audit.redeliveries`), and `raw.usage_month`, what dbt reads,
is the typed view minus those, with each row's load time from the ledger. Re-running replaces the month's rows, so nothing is counted twice.

De-duplication groups by `hash(event_id)` (a 64-bit integer, cheap) to find
the few repeated keys, then settles only those exactly by event_id in
(folder, file name, row) order: the first delivery stands, an identical later
one is a re-delivery, a different one is quarantined.
"""


from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from assets.ledger import BadFiles, changed_files, describe_files, record_files
from assets.warehouse import accepted_view_sql
from orchestration.partitions import monthly_partitions
from orchestration.resources import WarehouseResource
from quality.usage_checks import usage_check_specs, usage_is_priced, usage_rows_reconcile

# column → (DuckDB type it is read as, required: a null is bad_schema)
USAGE_COLUMNS = {
    "event_id": ("VARCHAR", True),
    "customer_id": ("VARCHAR", True),
    "resource_id": ("VARCHAR", True),
    "sku": ("VARCHAR", True),
    "region": ("VARCHAR", False),
    "start_time": ("TIMESTAMP", True),
    "end_time": ("TIMESTAMP", True),
    "quantity": ("DECIMAL(18,6)", True),
}


def month_files(landing: Path, month: date) -> list[Path]:
    """The month's usage files in (folder, file name) order: the order that decides the first delivery."""
    return sorted((landing / "usage").glob(f"dt={month:%Y-%m}-[0-3][0-9]/*.parquet"))


def _probe(path: Path) -> tuple[int, set[str]] | str:
    """Rows and column names from the Parquet footer, or why the file cannot be read."""
    try:
        parquet = pq.ParquetFile(path)
        return parquet.metadata.num_rows, set(parquet.schema_arrow.names)
    except Exception as exc:  # a truncated or foreign file: pyarrow says why
        return f"unreadable Parquet ({type(exc).__name__}: {exc})"


def usage_view_sql(landing: Path, files: list[Path], columns_present: set[str]) -> str:
    """The typed view over the month's files; casts live here once, for ingestion and dbt alike."""
    if not files:
        cols = ", ".join(f"NULL::{t} AS {c}" for c, (t, _) in USAGE_COLUMNS.items())
        return (
            "CREATE OR REPLACE VIEW raw.usage_month_typed AS SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS row_number, "
            f"{cols}, NULL::VARCHAR AS schema_error, "
            + ", ".join(f"NULL::VARCHAR AS src_{c}" for c in USAGE_COLUMNS)
            + " WHERE false"
        )
    prefix = len(str(landing)) + 2
    source = {c: (c if c in columns_present else "NULL::VARCHAR") for c in USAGE_COLUMNS}
    typed = ",\n  ".join(f"try_cast({source[c]} AS {t}) AS {c}" for c, (t, _) in USAGE_COLUMNS.items())
    checks = []
    for c, (t, required) in USAGE_COLUMNS.items():
        if c not in columns_present:
            if required:
                checks.append(f"WHEN true THEN 'missing column {c}'")
            continue
        if required:
            checks.append(f"WHEN {c} IS NULL THEN '{c} is null'")
        checks.append(f"WHEN {c} IS NOT NULL AND try_cast({c} AS {t}) IS NULL THEN '{c} is not a {t}: ' || {c}::VARCHAR")
    originals = ",\n  ".join(f"{source[c]} AS src_{c}" for c in USAGE_COLUMNS)
    file_list = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    return f"""
CREATE OR REPLACE VIEW raw.usage_month_typed AS
SELECT
  substr(filename, {prefix}) AS source_file,
  file_row_number + 1 AS row_number,
  {typed},
  CASE {' '.join(checks)} END AS schema_error,
  -- the values as landed, for quarantine's raw column (turned into JSON only for rejected rows)
  {originals}
FROM read_parquet([{file_list}], filename = true, file_row_number = true, union_by_name = true)
"""


ACCEPTED_VIEW_SQL = accepted_view_sql(
    "raw.usage_month", "raw.usage_month_typed", "usage", ["schema_error", *(f"src_{c}" for c in USAGE_COLUMNS)]
)

LOOKUPS_SQL = """
-- Small lookup tables for the flagging pass: known customers, and the (SKU, day) pairs
-- of the month that have a price row in effect.
CREATE OR REPLACE TEMP TABLE usage_known_customers AS SELECT DISTINCT customer_id FROM raw.customers;
CREATE OR REPLACE TEMP TABLE usage_priced_days AS
SELECT DISTINCT p.sku, d::DATE AS day
FROM raw.price_book p, range($start::TIMESTAMP, $end::TIMESTAMP, INTERVAL 1 DAY) r(d)
WHERE try_cast(p.effective_from AS DATE) <= d::DATE
  AND (p.effective_to IS NULL OR d::DATE < try_cast(p.effective_to AS DATE))
"""

FLAGGED_SQL = """
-- One pass: every row that breaks a rule, and every row whose event_id hash repeats.
-- Only those rows reach the projection, so the raw JSON is built for them alone.
CREATE OR REPLACE TEMP TABLE usage_flagged AS
SELECT u.source_file, u.row_number, u.event_id,
  to_json(struct_pack({raw}))::VARCHAR AS raw,
  struct_pack(u.customer_id, u.resource_id, u.sku, u.region, u.start_time, u.end_time, u.quantity) AS content,
  CASE
    WHEN u.schema_error IS NOT NULL THEN 'bad_schema'
    WHEN u.start_time < $start::TIMESTAMP OR u.start_time >= $end::TIMESTAMP THEN 'outside_month'
    WHEN u.end_time <= u.start_time OR u.end_time - u.start_time > INTERVAL 1 HOUR THEN 'bad_interval'
    WHEN u.quantity < 0 THEN 'negative_quantity'
    WHEN kc.customer_id IS NULL THEN 'unknown_customer'
    WHEN pd.sku IS NULL THEN 'no_price'
  END AS reason,
  CASE
    WHEN u.schema_error IS NOT NULL THEN u.schema_error
    WHEN u.start_time < $start::TIMESTAMP OR u.start_time >= $end::TIMESTAMP
      THEN 'start_time ' || u.start_time::VARCHAR || ' is outside the folder''s month ' || strftime($start::TIMESTAMP, '%Y-%m')
    WHEN u.end_time <= u.start_time THEN 'end_time ' || u.end_time::VARCHAR || ' is not after start_time ' || u.start_time::VARCHAR
    WHEN u.end_time - u.start_time > INTERVAL 1 HOUR THEN 'interval of ' || (u.end_time - u.start_time)::VARCHAR || ' is longer than one hour'
    WHEN u.quantity < 0 THEN 'quantity ' || u.quantity::VARCHAR || ' is negative'
    WHEN kc.customer_id IS NULL
      THEN 'customer ' || u.customer_id || ' is not in reference/customers.csv'
    WHEN pd.sku IS NULL THEN 'no price row of sku ' || u.sku || ' in effect on ' || u.start_time::DATE::VARCHAR
  END AS detail
FROM raw.usage_month_typed u
LEFT JOIN usage_known_customers kc ON kc.customer_id = u.customer_id
LEFT JOIN usage_priced_days pd ON pd.sku = u.sku AND pd.day = u.start_time::DATE
WHERE u.schema_error IS NOT NULL
   OR u.start_time < $start::TIMESTAMP OR u.start_time >= $end::TIMESTAMP
   OR u.end_time <= u.start_time OR u.end_time - u.start_time > INTERVAL 1 HOUR
   OR u.quantity < 0
   OR kc.customer_id IS NULL
   OR pd.sku IS NULL
   OR hash(u.event_id, reverse(u.event_id)) IN (SELECT h FROM usage_repeated_hashes)
""".replace("{raw}", ", ".join(f"{c} := u.src_{c}" for c in USAGE_COLUMNS))

REPEATS_SQL = """
-- Settle the candidates exactly by event_id, in (folder, file name, row) order, among valid rows.
CREATE OR REPLACE TEMP TABLE usage_repeats AS
WITH ranked AS (
  SELECT *,
    row_number() OVER w AS delivery,
    first_value(source_file) OVER w AS first_file,
    first_value(row_number) OVER w AS first_row_number,
    first_value(content) OVER w AS first_content
  FROM usage_flagged
  WHERE reason IS NULL
  WINDOW w AS (PARTITION BY event_id ORDER BY source_file, row_number)
)
SELECT source_file, row_number, event_id, raw, first_file, first_row_number,
       content IS NOT DISTINCT FROM first_content AS same_content
FROM ranked WHERE delivery > 1
"""


def repeated_event_hashes(con) -> "pa.Table":
    """The 64-bit hashes of event_id that occur more than once, found by sorting, not grouping.

    Grouping 200M distinct keys costs 10+ GB; fetching the hashes as one
    uint64 array and sorting it takes ~6 s and 2 GiB. Hash collisions only add
    candidates: REPEATS_SQL settles them exactly by event_id. DuckDB's plain
    `hash(event_id)` collided for ~2% of 200M generated ids that share long
    prefixes (5M false candidates); mixing in the reversed id brought that to 0.
    """
    hashes = con.execute(
        "SELECT hash(event_id, reverse(event_id)) AS h FROM raw.usage_month_typed WHERE event_id IS NOT NULL"
    ).fetchnumpy()["h"]
    hashes.sort()
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    del hashes
    return pa.table({"h": pa.array(repeated, type=pa.uint64())})


WRITE_SQL = """
DELETE FROM audit.quarantine WHERE source = 'usage' AND file LIKE $prefix;
INSERT INTO audit.quarantine
  SELECT 'usage', source_file, row_number, event_id, reason, detail, raw, $now FROM usage_flagged WHERE reason IS NOT NULL
  UNION ALL
  SELECT 'usage', source_file, row_number, event_id, 'conflicting_duplicate',
         'event_id ' || event_id || ' first delivered in ' || first_file || ' row ' || first_row_number || ' with different content',
         raw, $now
  FROM usage_repeats WHERE NOT same_content;
DELETE FROM audit.redeliveries WHERE source = 'usage' AND file LIKE $prefix;
INSERT INTO audit.redeliveries
  SELECT 'usage', source_file, row_number, event_id, first_file, first_row_number, $now
  FROM usage_repeats WHERE same_content;
"""


@dg.asset(
    key=["raw", "usage"],
    group_name="landing",
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    deps=[dg.AssetKey(["raw", "customers"]), dg.AssetKey(["raw", "price_book"])],
    kinds={"duckdb", "parquet"},
    check_specs=usage_check_specs,
    description="Accepted usage of the month: raw.usage_month, a typed view over the month's Parquet files less the rows quarantined (audit.quarantine) or re-delivered (audit.redeliveries).",
)
def usage(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Ingest the month's usage: ledger every file, quarantine bad rows, settle duplicates."""
    window = context.partition_time_window
    start, end = window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)
    month = start.date()
    landing = warehouse.landing_path
    paths = month_files(landing, month)
    problems: dict[str, str] = {}
    readable: list[Path] = []
    rows_in_file: dict[str, int] = {}
    columns_present: set[str] = set()
    for path in paths:
        probe = _probe(path)
        rel = path.relative_to(landing).as_posix()
        if isinstance(probe, str):
            problems[rel] = probe
            continue
        rows_in_file[rel], names = probe
        columns_present |= names
        readable.append(path)
    files = describe_files(landing, readable)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with warehouse.connect() as con:
        problems |= changed_files(con, files)
        files = [f for f in files if f.rel not in problems]
        params = {"start": start, "end": end}
        con.execute("BEGIN")
        con.execute(usage_view_sql(landing, [f.path for f in files], columns_present))
        con.execute(ACCEPTED_VIEW_SQL)
        for statement in LOOKUPS_SQL.split(";"):
            con.execute(statement, params if "$start" in statement else None)
        repeated = repeated_event_hashes(con)  # noqa: F841 - scanned by name below
        con.execute("CREATE OR REPLACE TEMP TABLE usage_repeated_hashes AS SELECT h FROM repeated")
        con.execute(FLAGGED_SQL, params)
        con.execute(REPEATS_SQL)
        for statement in WRITE_SQL.split(";"):
            if statement.strip():
                con.execute(statement, {k: v for k, v in {"prefix": f"usage/dt={month:%Y-%m}-%", "now": now}.items() if f"${k}" in statement})
        record_files(con, "usage", files, now)
        per_file = _record_file_loads(con, month, [f.rel for f in files], rows_in_file, now)
        con.execute("COMMIT")
        checks = [usage_rows_reconcile(con, month), usage_is_priced(con, month)]
        by_reason = dict(
            con.execute(
                "SELECT reason, count(*) FROM audit.quarantine WHERE source = 'usage' AND file LIKE ? GROUP BY 1 ORDER BY 1",
                [f"usage/dt={month:%Y-%m}-%"],
            ).fetchall()
        )
    totals = {k: sum(r[k] for r in per_file) for k in ("rows_read", "accepted", "redelivered", "quarantined")}
    for rel, why in problems.items():
        context.log.error(f"usage file not loaded: {rel}: {why}")
    if problems:
        raise BadFiles("usage", problems)
    return dg.MaterializeResult(
        metadata={
            "files": len(files),
            **{k: dg.MetadataValue.int(v) for k, v in totals.items()},
            "quarantined_by_reason": dg.MetadataValue.json(by_reason),
            "per_file": dg.MetadataValue.md(_per_file_markdown(per_file)),
        },
        check_results=checks,
    )


def _record_file_loads(con, month: date, rels: list[str], rows_in_file: dict[str, int], now: datetime) -> list[dict]:
    """Per file: read = accepted + re-delivered + quarantined, kept in audit.file_loads."""
    con.execute("DELETE FROM audit.file_loads WHERE source = 'usage' AND billing_month = ?", [month])
    con.execute(
        """
        INSERT INTO audit.file_loads
        SELECT ?, 'usage', f.file, f.rows_read,
               f.rows_read - coalesce(r.n, 0) - coalesce(q.n, 0), coalesce(r.n, 0), coalesce(q.n, 0), ?
        FROM (SELECT unnest(?) AS file, unnest(?) AS rows_read) f
        LEFT JOIN (SELECT file, count(*) n FROM audit.redeliveries WHERE source = 'usage' GROUP BY 1) r USING (file)
        LEFT JOIN (SELECT file, count(*) n FROM audit.quarantine WHERE source = 'usage' GROUP BY 1) q USING (file)
        """,
        [month, now, rels, [rows_in_file[r] for r in rels]],
    )
    cols = ["file", "rows_read", "accepted", "redelivered", "quarantined"]
    rows = con.execute(
        f"SELECT {', '.join(cols)} FROM audit.file_loads WHERE source = 'usage' AND billing_month = ? ORDER BY file",
        [month],
    ).fetchall()
    return [dict(zip(cols, r)) for r in rows]


def _per_file_markdown(per_file: list[dict]) -> str:
    lines = ["| file | read | accepted | re-delivered | quarantined |", "|---|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['rows_read']} | {r['accepted']} | {r['redelivered']} | {r['quarantined']} |" for r in per_file]
    return "\n".join(lines)
