"""Warehouse tables owned by Python (not dbt): the file ledger and the audit trail.

`audit.landed_files` records every landed file once (path, size, content hash,
first seen); `audit.quarantine` holds every rejected record with the fixed
reason codes of landing-contract.md. Both are replaced per file on a re-run,
never appended twice.
"""

import duckdb

QUARANTINE_REASONS = (
    "bad_schema",
    "bad_json",
    "bad_interval",
    "negative_quantity",
    "unknown_customer",
    "unknown_invoice",
    "outside_month",
    "conflicting_duplicate",
    "no_price",
)

DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.landed_files (
    source        VARCHAR NOT NULL,
    path          VARCHAR NOT NULL PRIMARY KEY,   -- relative to the landing root
    size_bytes    BIGINT NOT NULL,
    sha256        VARCHAR NOT NULL,
    first_seen_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.quarantine (
    source     VARCHAR NOT NULL,
    file       VARCHAR NOT NULL,
    row_number BIGINT NOT NULL,
    record_id  VARCHAR,
    reason     VARCHAR NOT NULL,
    detail     VARCHAR,
    raw        VARCHAR,
    loaded_at  TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.redeliveries (
    source            VARCHAR NOT NULL,
    file              VARCHAR NOT NULL,
    row_number        BIGINT NOT NULL,
    record_id         VARCHAR NOT NULL,
    first_file        VARCHAR NOT NULL,
    first_row_number  BIGINT NOT NULL,
    loaded_at         TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.file_loads (
    billing_month  DATE NOT NULL,
    source         VARCHAR NOT NULL,
    file           VARCHAR NOT NULL,
    rows_read      BIGINT NOT NULL,
    accepted       BIGINT NOT NULL,
    redelivered    BIGINT NOT NULL,
    quarantined    BIGINT NOT NULL,
    loaded_at      TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.reference_snapshots (
    billing_month DATE NOT NULL,
    file          VARCHAR NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        VARCHAR NOT NULL,
    rows          BIGINT NOT NULL,
    loaded_at     TIMESTAMP NOT NULL
);
"""


def bootstrap(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit schemas and Python-owned tables if they are missing."""
    con.execute(DDL)


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
