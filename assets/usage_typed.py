"""Usage's typed reading of Parquet: the footer probe, the typed view and the flagging pass (SQL once).

Shared by the folder ingestion (assets/usage_folder.py) and the monthly asset (assets/usage.py).
The hot path stays near the Parquet (docs/performance.md): rows are never copied into DuckDB. A
typed view reads the files (one read_parquet per kind of `quantity` storage, so a DECIMAL file never
passes through a double); the flagging pass checks every row rule and takes every row whose
event_id hash is a duplicate candidate, in one scan.

Repeated event ids are found by sorting the 64-bit `hash(event_id, reverse(event_id))` of every
row in numpy (`sorted_event_hashes`), then settled exactly by event_id (assets/usage_folder.py).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from assets.ingestion import UnreadableFile, accepted_view_sql
from warehouse.landing import sql_path_list

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
# The landed values, for quarantine's raw column. A floating quantity keeps its own column so a
# UNION with DECIMAL files never widens their landed values to DOUBLE.
SOURCE_COLUMNS = [f"src_{c}" for c in USAGE_COLUMNS] + ["src_quantity_double"]


@dataclass(frozen=True)
class ParquetFooter:
    """What the footer says, read before any row: how many rows, which columns, how each is stored."""

    rows: int
    columns: frozenset[str]
    floating_quantity: bool  # FLOAT/DOUBLE: converted through its shortest text (decisions.md #24)
    utc_timestamps: frozenset[str] = frozenset()  # timestamp columns stored as UTC instants (tz-aware)
    native: frozenset[str] = frozenset()  # columns already stored as the type they are read as

    @property
    def kind(self) -> tuple:
        """Files of one kind are read by one read_parquet with the same casts."""
        return (self.floating_quantity, self.utc_timestamps, self.native)


def _is_native(column: str, arrow_type: pa.DataType) -> bool:
    duck_type = USAGE_COLUMNS[column][0]
    if duck_type == "VARCHAR":
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if duck_type == "TIMESTAMP":
        return pa.types.is_timestamp(arrow_type) and arrow_type.tz is None and arrow_type.unit == "us"
    return arrow_type == pa.decimal128(18, 6)


def probe_parquet(_con, path: Path) -> ParquetFooter:
    """The file's footer, or UnreadableFile saying why pyarrow cannot read it (truncated, not Parquet)."""
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        rows = parquet.metadata.num_rows
    except Exception as exc:
        raise UnreadableFile(f"unreadable Parquet ({type(exc).__name__}: {exc})") from exc
    floating = "quantity" in schema.names and pa.types.is_floating(schema.field("quantity").type)
    types = {name: schema.field(name).type for name in schema.names if name in USAGE_COLUMNS}
    utc = frozenset(name for name, t in types.items() if USAGE_COLUMNS[name][0] == "TIMESTAMP"
                    and pa.types.is_timestamp(t) and t.tz is not None and t.unit in ("s", "ms", "us"))
    native = frozenset(name for name, t in types.items() if _is_native(name, t))
    return ParquetFooter(rows, frozenset(schema.names), floating, utc, native)


def _quantity_cast(floating: bool) -> str:
    """A DECIMAL (or text, or integer) quantity casts straight to DECIMAL(18,6), exactly. A DOUBLE goes
    through its shortest round-trip text first, so 2.675 is 2.675000 and 5e-07 rounds half up to
    0.000001; a direct DOUBLE cast (or DuckDB's round) works on the binary fraction instead."""
    return "try_cast(quantity::VARCHAR AS DECIMAL(18,6))" if floating else "try_cast(quantity AS DECIMAL(18,6))"


def _group_select(landing: Path, files: list[Path], columns_present: set[str], kind: tuple) -> str:
    """One read_parquet over files of one kind (same storage of every column), typed like every other group.

    A column stored as the type it is read as is taken as is, and cannot fail its type check; a UTC
    timestamp becomes the naive UTC timestamp by its epoch microseconds (exact, and ~100x cheaper than
    a cast through the time-zone library, which cost ~12 s a column on a 200M-row month).
    """
    floating, utc_timestamps, native = kind
    source = {c: (c if c in columns_present else "NULL::VARCHAR") for c in USAGE_COLUMNS}
    casts = {c: f"try_cast({source[c]} AS {t})" for c, (t, _) in USAGE_COLUMNS.items()}
    for c in native:
        casts[c] = c
    for c in utc_timestamps:
        casts[c] = f"make_timestamp(epoch_us({c}))"
    if "quantity" in columns_present and "quantity" not in native:
        casts["quantity"] = _quantity_cast(floating)
    checks = []
    for c, (t, required) in USAGE_COLUMNS.items():
        if c not in columns_present:
            if required:
                checks.append(f"WHEN true THEN 'missing column {c}'")
            continue
        if required:
            checks.append(f"WHEN {c} IS NULL THEN '{c} is null'")
        if c not in native and c not in utc_timestamps:
            checks.append(f"WHEN {c} IS NOT NULL AND {casts[c]} IS NULL THEN '{c} is not a {t}: ' || {c}::VARCHAR")
    # An untyped NULL takes the other groups' type in the UNION, so no group widens another's values.
    originals = {f"src_{c}": (c if c in columns_present else "NULL") for c in USAGE_COLUMNS}
    originals["src_quantity_double"] = "NULL::DOUBLE"
    if floating:
        originals["src_quantity"], originals["src_quantity_double"] = "NULL", "quantity::DOUBLE"
    return f"""
SELECT
  substr(filename, {len(str(landing)) + 2}) AS source_file,
  file_row_number + 1 AS row_number,
  {', '.join(f"{casts[c]} AS {c}" for c in USAGE_COLUMNS)},
  CASE {' '.join(checks)} END AS schema_error,
  -- the values as landed, for quarantine's raw column (turned into JSON only for rejected rows)
  {', '.join(f"{expr} AS {name}" for name, expr in originals.items())}
FROM read_parquet({sql_path_list(files)}, filename = true, file_row_number = true, union_by_name = true)"""


def usage_view_sql(landing: Path, files: list[Path], footers: dict[Path, ParquetFooter],
                   view: str = "raw.usage_month_typed") -> str:
    """The typed view over the month's files; casts live here once, for ingestion and dbt alike.

    Files are grouped by how their columns are stored (ParquetFooter.kind), one read_parquet per
    group joined by UNION ALL: one union_by_name read over a DECIMAL and a DOUBLE file would read
    both as DOUBLE (123456789012.345678 → …345680). Each file is still scanned once; a month of one
    kind is one read.
    """
    if not files:
        cols = ", ".join(f"NULL::{t} AS {c}" for c, (t, _) in USAGE_COLUMNS.items())
        return (
            f"CREATE OR REPLACE VIEW {view} AS SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS row_number, "
            f"{cols}, NULL::VARCHAR AS schema_error, "
            + ", ".join(f"NULL::{'DOUBLE' if c == 'src_quantity_double' else 'VARCHAR'} AS {c}" for c in SOURCE_COLUMNS)
            + " WHERE false"
        )
    groups = []
    for kind in dict.fromkeys(footers[f].kind for f in files):  # in the order first met
        group = [f for f in files if footers[f].kind == kind]
        present = set().union(*(footers[f].columns for f in group))
        groups.append(_group_select(landing, group, present, kind))
    return f"CREATE OR REPLACE VIEW {view} AS" + "\nUNION ALL".join(groups)


ACCEPTED_VIEW_SQL = accepted_view_sql("raw.usage_month", "raw.usage_month_typed", "usage", ["schema_error", *SOURCE_COLUMNS])

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
  CASE WHEN u.src_quantity_double IS NULL THEN to_json(struct_pack({raw}))
       ELSE to_json(struct_pack({raw_double})) END::VARCHAR AS raw,
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
FROM {typed} u
LEFT JOIN usage_known_customers kc ON kc.customer_id = u.customer_id
LEFT JOIN usage_priced_days pd ON pd.sku = u.sku AND pd.day = u.start_time::DATE
WHERE u.schema_error IS NOT NULL
   OR u.start_time < $start::TIMESTAMP OR u.start_time >= $end::TIMESTAMP
   OR u.end_time <= u.start_time OR u.end_time - u.start_time > INTERVAL 1 HOUR
   OR u.quantity < 0
   OR kc.customer_id IS NULL
   OR pd.sku IS NULL
   OR hash(u.event_id, reverse(u.event_id)) IN (SELECT h FROM usage_repeated_hashes)
""".replace("{raw}", ", ".join(f"{c} := u.src_{c}" for c in USAGE_COLUMNS)).replace(
    "{raw_double}", ", ".join(f"{c} := u.src_{c}" if c != "quantity" else "quantity := u.src_quantity_double" for c in USAGE_COLUMNS))
# The raw JSON of a typed row `u`, as the flagging pass writes it for quarantine.
RAW_JSON_SQL = FLAGGED_SQL[FLAGGED_SQL.index("CASE WHEN u.src_quantity_double"):FLAGGED_SQL.index(" AS raw,")]


def flagged_sql(typed: str = "raw.usage_month_typed") -> str:
    """The flagging pass over one typed view (the month's, or one folder's)."""
    return FLAGGED_SQL.replace("{typed}", typed)


def sorted_event_hashes(con, typed: str = "raw.usage_month_typed") -> np.ndarray:
    """The 64-bit hash(event_id, reverse(event_id)) of every row of the month with an event id, sorted.

    Repeated keys are found by sorting, not grouping: grouping 200M distinct keys costs 10+ GB;
    fetching the hashes as one uint64 array and sorting it takes ~6 s and 2 GiB. Hash collisions
    only add candidates: settle_month (assets/usage_folder.py) settles them exactly by event_id. DuckDB's plain
    `hash(event_id)` collided for ~2% of 200M generated ids that share long prefixes (5M false
    candidates); mixing in the reversed id brought that to 0. The same sorted array feeds the
    month's event index and the look-back (assets/usage_lookback.py).
    """
    hashes = con.execute(
        f"SELECT hash(event_id, reverse(event_id)) AS h FROM {typed} WHERE event_id IS NOT NULL"
    ).fetchnumpy()["h"]
    hashes.sort()
    return hashes


def repeated_event_hashes(hashes: np.ndarray) -> np.ndarray:
    """The hashes that occur more than once in the sorted array."""
    return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])

