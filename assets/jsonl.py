"""JSON-lines ingestion shared by tickets and payments: files → typed view, quarantine, de-duplication.

Tickets (Zendesk) and payments (Stripe) follow the same landing rules, so the
SQL lives here once and each source is a declaration (`JsonlSource`: folder,
fields, key, which version wins) plus its own rules (`Rule`).

DuckDB reads the lines (`read_text` + `string_split ... WITH ORDINALITY`), no
Python loop over lines: each non-blank line is a record numbered by its
physical line from 1, and a line `json_valid` rejects is quarantined
`bad_json` while the file's other lines load. A UTF-8 byte-order mark opening
a file (Windows tools write one) is stripped from its first line only; anywhere
else U+FEFF is data, and a line it breaks is `bad_json`. A file DuckDB cannot read at all
(not UTF-8) fails loudly by name and is never half-loaded or ledgered.

These files are small and not month-scoped, so every run reads every file of
the source: its `audit.quarantine` and `audit.redeliveries` rows are replaced
whole, and `audit.file_loads` keeps, per (source, billing month), what that
close read. Re-running gives what one run over all files would. The ledger,
changed and vanished files, per-file counts and metadata are the shared
skeleton's (`assets/ingestion.py`); this module is the JSON-lines format.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from assets.ingestion import Batch, Ingested, UnreadableFile, accepted_view_sql, ingest_files
from warehouse.landing import sql_path_list

# Field type → (JSON types it may arrive as, the cast to the view's type). TIMESTAMP is
# ISO-8601 text made a naive UTC timestamp; Stripe's Unix seconds stay BIGINT (dbt converts).
_TYPES = {
    "VARCHAR": ("('VARCHAR')", "nullif({t}, '')"),
    "BIGINT": ("('BIGINT', 'UBIGINT')", "try_cast({t} AS BIGINT)"),
    "BOOLEAN": ("('BOOLEAN')", "try_cast({t} AS BOOLEAN)"),
    "TIMESTAMP": ("('VARCHAR')", "try_cast({t} AS TIMESTAMPTZ) AT TIME ZONE 'UTC'"),
    "VARCHAR[]": ("('ARRAY')", "CASE WHEN json_type({v}) = 'ARRAY' THEN json_extract_string({v}, '$[*]') END"),
}


@dataclass(frozen=True)
class Field:
    name: str  # column of raw.<source>
    path: str  # where the record holds it, e.g. '$.via.channel'
    type: str = "VARCHAR"
    required: bool = False  # missing, null or '' is bad_schema
    values: tuple[str, ...] = ()  # the contract's enumeration; anything else is bad_schema
    nonnegative: bool = False
    value_sql: str | None = None  # a JSON expression over `doc`, when a path cannot say it


@dataclass(frozen=True)
class Rule:
    """A contract rule on a well-formed record `t` of raw.<source>_typed: reason when `condition` holds."""

    reason: str
    condition: str
    detail: str


@dataclass(frozen=True)
class JsonlSource:
    name: str  # audit source and raw view name
    folder: str  # under the landing root
    fields: tuple[Field, ...]
    key: str = "id"  # field de-duplicated on
    newest_by: str | None = None  # the newest version by this field wins; None: the first delivery stands


def unknown_customer(column: str) -> Rule:
    return Rule(
        "unknown_customer",
        f"NOT EXISTS (SELECT 1 FROM raw.customers c WHERE c.customer_id = t.{column})",
        f"'customer ' || t.{column} || ' is not in reference/customers.csv'",
    )


def _lines_sql(landing: Path, files: list[Path]) -> str:
    if not files:
        return "SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS row_number, NULL::VARCHAR AS line WHERE false"
    # A UTF-8 byte-order mark (U+FEFF) opening a file is not part of its first record: strip it there only.
    line = "CASE WHEN s.n = 1 AND starts_with(s.line, chr(65279)) THEN substr(s.line, 2) ELSE s.line END"
    # unnest and generate_subscripts side by side in one SELECT (DuckDB zips them), not a lateral
    # `unnest(...) WITH ORDINALITY` join: that one carried the file's whole content on every line it
    # produced — 10,000 lines of a 3 MB file asked for ~30 GB (decisions #103).
    return f"""SELECT substr(s.filename, {len(str(landing)) + 2}) AS source_file, s.n AS row_number, rtrim({line}, chr(13)) AS line
  FROM (SELECT filename, unnest(lines) AS line, generate_subscripts(lines, 1) AS n
        FROM (SELECT filename, string_split(content, chr(10)) AS lines FROM read_text({sql_path_list(files)}))) s"""


def typed_view_sql(source: JsonlSource, landing: Path, files: list[Path]) -> str:
    """raw.<source>_typed: one row per non-blank line, typed, with why it breaks the schema (if it does).

    A table, parsed once per run, not a view: every rule, the accepted view, the reconciliation and the
    landing suites read it, and refunds' and disputes' rules read the charges' in correlated subqueries,
    so a view re-parsed every line of JSON at each reference. With the line cutting of `_lines_sql`, a
    run of the four sources over 10,000 charges went from 157 s and 17.6 GB to 16.6 s and 575 MB
    (decisions #103)."""
    values, typed, checks = [], [], []
    for i, f in enumerate(source.fields):
        v, j, t = f"_v{i}", f"_j{i}", f"_t{i}"
        json_types, cast = _TYPES[f.type]
        values.append(f"{f.value_sql or f'json_extract(doc, {chr(39) + f.path + chr(39)})'} AS {v}")
        present = f"({j} IS NOT NULL AND {j} <> 'NULL' AND {t} <> '')"
        ok = f"{j} IN {json_types} AND {cast.format(t=t, v=v)} IS NOT NULL"
        value = f"CASE WHEN {ok} THEN {cast.format(t=t, v=v)} END"
        typed.append(f"{value} AS {f.name}")
        label = f.path.removeprefix("$.")
        if f.required:
            checks.append(f"WHEN NOT {present} THEN '{label} is missing or null'")
        checks.append(f"WHEN {present} AND NOT ({ok}) THEN '{label} is not a {f.type}: ' || left({t}, 60)")
        if f.values:
            allowed = ", ".join(f"'{x}'" for x in f.values)
            checks.append(f"WHEN {value} NOT IN ({allowed}) THEN '{label} ' || {value} || ' is not one of {', '.join(f.values)}'")
        if f.nonnegative:
            checks.append(f"WHEN {value} < 0 THEN '{label} is negative: ' || {value}")
    parts = ",\n    ".join(f"json_type(_v{i}) AS _j{i}, json_extract_string(_v{i}, '$') AS _t{i}" for i in range(len(source.fields)))
    return f"""
CREATE OR REPLACE TABLE raw.{source.name}_typed AS
WITH lines AS (
  {_lines_sql(landing, files)}
),
records AS (
  SELECT source_file, row_number, line AS raw, CASE WHEN json_valid(line) THEN line::JSON END AS doc
  FROM lines WHERE trim(line, ' ' || chr(9)) <> ''
),
cells AS (
  SELECT source_file, row_number, raw, doc, json_type(doc) AS doc_type, {', '.join(values)} FROM records
),
parts AS (
  SELECT *, {parts} FROM cells
)
SELECT source_file, row_number,
  {', '.join(typed)},
  doc IS NULL AS bad_json,
  json_extract_string(doc, '$.{source.key}') AS record_id,
  CASE WHEN doc IS NULL THEN NULL
    WHEN doc_type <> 'OBJECT' THEN 'line is a JSON ' || lower(doc_type) || ', not an object'
    {' '.join(checks)} END AS schema_error,
  raw
FROM parts
"""


def rejected_sql(source: JsonlSource, rules: list[Rule]) -> str:
    """Every line breaking the format, the schema or a rule: first failing reason wins, in contract order."""
    whens = "".join(f" WHEN {r.condition} THEN '{r.reason}'" for r in rules)
    details = "".join(f" WHEN {r.condition} THEN {r.detail}" for r in rules)
    return f"""
CREATE OR REPLACE TEMP TABLE {source.name}_rejected AS
WITH classified AS (
  SELECT t.source_file, t.row_number, t.record_id, t.raw,
    CASE WHEN t.bad_json THEN 'bad_json' WHEN t.schema_error IS NOT NULL THEN 'bad_schema'{whens} END AS reason,
    CASE WHEN t.bad_json THEN 'line ' || t.row_number || ' is not valid JSON'
         WHEN t.schema_error IS NOT NULL THEN t.schema_error{details} END AS detail
  FROM raw.{source.name}_typed t
)
SELECT * FROM classified WHERE reason IS NOT NULL
"""


def repeats_sql(source: JsonlSource) -> str:
    """Every later delivery of a key: a re-delivery (or, newest-wins, a superseded version) or a conflict.

    First-delivery sources order by (file, line) and conflict when content differs. Newest-wins
    sources order by the version field, newest first; only a same-version, different-content line
    conflicts, since nothing decides between the two. Rejected lines take no part: a quarantined
    newest version leaves the previous good one standing.
    """
    content = ", ".join(f.name for f in source.fields)
    version = source.newest_by or "NULL"
    order = ("version DESC, " if source.newest_by else "") + "source_file, row_number"
    return f"""
CREATE OR REPLACE TEMP TABLE {source.name}_repeats AS
WITH candidates AS (
  SELECT t.source_file, t.row_number, t.record_id, t.raw, struct_pack({content}) AS content, {version} AS version
  FROM raw.{source.name}_typed t
  ANTI JOIN {source.name}_rejected x ON x.source_file = t.source_file AND x.row_number = t.row_number
),
ranked AS (
  SELECT *,
    row_number() OVER w AS delivery,
    first_value(source_file) OVER w AS first_file,
    first_value(row_number) OVER w AS first_row_number,
    first_value(content) OVER w AS first_content,
    first_value(version) OVER w AS first_version
  FROM candidates
  WINDOW w AS (PARTITION BY record_id ORDER BY {order})
)
SELECT source_file, row_number, record_id, raw, first_file, first_row_number,
       version IS NOT DISTINCT FROM first_version AND content IS DISTINCT FROM first_content AS conflicting
FROM ranked WHERE delivery > 1
"""


def write_sql(source: JsonlSource) -> list[str]:
    """Replace the source's audit rows whole (every file is read every run); `?` is the load time."""
    n = source.name
    kept = "newest version" if source.newest_by else "first delivery"
    return [
        f"DELETE FROM audit.quarantine WHERE source = '{n}'",
        f"""INSERT INTO audit.quarantine
  SELECT '{n}', source_file, row_number, record_id, reason, detail, raw, $now FROM {n}_rejected
  UNION ALL
  SELECT '{n}', source_file, row_number, record_id, 'conflicting_duplicate',
         '{source.key} ' || record_id || ': the {kept} in ' || first_file || ' line ' || first_row_number || ' stands; this line differs',
         raw, $now
  FROM {n}_repeats WHERE conflicting""",
        f"DELETE FROM audit.redeliveries WHERE source = '{n}'",
        f"""INSERT INTO audit.redeliveries
  SELECT '{n}', source_file, row_number, record_id, first_file, first_row_number, $now FROM {n}_repeats WHERE NOT conflicting""",
    ]


def probe_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Nothing to read ahead (rows are counted as lines load); UnreadableFile when DuckDB cannot read it as text."""
    try:
        con.execute("SELECT sum(length(content)) FROM read_text(?)", [str(path)]).fetchone()  # content: UTF-8 is checked
    except duckdb.Error as exc:
        raise UnreadableFile(f"unreadable JSON lines ({type(exc).__name__}: {exc})") from exc


def load_jsonl(con: duckdb.DuckDBPyConnection, batch: Batch, source: JsonlSource, rules: list[Rule]) -> dict[str, int]:
    """Typed and accepted views, rejected lines, repeats, audit rows; rows read = non-blank lines per file."""
    n = source.name
    if con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'raw' AND view_name = ?",
                   [f"{n}_typed"]).fetchone()[0]:  # a warehouse from before it was a table
        con.execute(f"DROP VIEW raw.{n}_typed")
    con.execute(typed_view_sql(source, batch.landing, [f.path for f in batch.files]))
    con.execute(accepted_view_sql(f"raw.{n}", f"raw.{n}_typed", n, ["bad_json", "record_id", "schema_error", "raw"]))
    con.execute(rejected_sql(source, rules))
    con.execute(repeats_sql(source))
    for statement in write_sql(source):
        con.execute(statement, {"now": batch.now} if "$now" in statement else None)
    lines = dict(con.execute(f"SELECT source_file, count(*) FROM raw.{n}_typed GROUP BY 1").fetchall())
    return {f.rel: lines.get(f.rel, 0) for f in batch.files}


def ingest(con: duckdb.DuckDBPyConnection, landing: Path, source: JsonlSource, rules: list[Rule], month: date) -> Ingested:
    """Every file of the source through the skeleton: ledger, quarantine, de-duplication, per-file counts."""
    return ingest_files(
        con, source=source.name, landing=landing, paths=sorted((landing / source.folder).glob("*.jsonl")),
        scope=f"{source.folder}/%", probe=probe_jsonl,
        load=lambda con, batch: load_jsonl(con, batch, source, rules), month=month,
    )
