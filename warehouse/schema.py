"""Tables Python owns in the warehouse (dbt owns staging, intermediate and marts).

- `audit.landed_files`: the file ledger, every landed file once (path, size, sha256, first seen).
- `audit.quarantine`, `audit.redeliveries`, `audit.file_loads`: what ingestion rejected, dropped as
  re-delivered, and read per file. The reason codes are the contract's fixed list, enforced here.
- `audit.reference_snapshots`: the hash of every reference snapshot a close used.
- `raw.usage_event_index`: the event ids each month's usage ingestion accepted, as 64-bit hashes, so the
  next month's close can look back one month for duplicates (assets/usage_lookback.py).
- `audit.issued_*`: the frozen, append-only copy of every issued month (docs/contract/billing-rules.md §6);
  `audit.restatements`: differences found when an issued month is recomputed.
- `marts.work_items`: created empty so dbt can read the queue before workitems/mirror.py first fills it.
"""

from __future__ import annotations

import duckdb

# docs/contract/inputs.md, audit.quarantine: the fixed reason codes (a new one needs a line in docs/decisions.md).
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

_REASON_LIST = ", ".join(f"'{r}'" for r in QUARANTINE_REASONS)

INVOICE_COLUMNS = """
    invoice_number  VARCHAR NOT NULL,
    customer_id     VARCHAR NOT NULL,
    billing_month   DATE NOT NULL,
    issue_date      DATE NOT NULL,
    due_date        DATE NOT NULL,
    currency        VARCHAR NOT NULL,
    subtotal        DECIMAL(18,2) NOT NULL,
    credits_applied DECIMAL(18,2) NOT NULL,
    taxable_amount  DECIMAL(18,2) NOT NULL,
    tax_name        VARCHAR,
    tax_rate        DECIMAL(9,6) NOT NULL,
    tax_amount      DECIMAL(18,2) NOT NULL,
    total           DECIMAL(18,2) NOT NULL,
    reverse_charge  BOOLEAN NOT NULL"""

INVOICE_LINE_COLUMNS = """
    invoice_number VARCHAR NOT NULL,
    line_number    INTEGER NOT NULL,
    customer_id    VARCHAR NOT NULL,
    billing_month  DATE NOT NULL,
    sku            VARCHAR NOT NULL,
    product        VARCHAR,
    resource_id    VARCHAR,
    description    VARCHAR,
    quantity       DECIMAL(18,6) NOT NULL,
    unit           VARCHAR,
    unit_price     DECIMAL(18,8),
    amount         DECIMAL(18,2) NOT NULL"""

# marts.work_items (docs/contract/published-interface.md): created empty here, replaced whole by workitems/mirror.py.
WORK_ITEMS_COLUMNS = """
    work_item_id      VARCHAR NOT NULL PRIMARY KEY,
    kind              VARCHAR NOT NULL,
    rule              VARCHAR NOT NULL,
    customer_id       VARCHAR,
    invoice_number    VARCHAR,
    charge_id         VARCHAR,
    ticket_id         VARCHAR,
    amount            DECIMAL(18,2),
    proposed_due_date DATE,
    reason            VARCHAR,
    evidence          JSON,
    status            VARCHAR NOT NULL,
    requires_approval BOOLEAN NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    decided_at        TIMESTAMP,
    decided_by        VARCHAR,
    dedup_key         VARCHAR NOT NULL UNIQUE"""

DDL = f"""
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
    reason     VARCHAR NOT NULL CHECK (reason IN ({_REASON_LIST})),
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
CREATE TABLE IF NOT EXISTS audit.issued_months (
    billing_month  DATE NOT NULL PRIMARY KEY,
    invoices       BIGINT NOT NULL,
    lines          BIGINT NOT NULL,
    total          DECIMAL(18,2) NOT NULL,
    content_sha256 VARCHAR NOT NULL,   -- of the issued invoices and lines, for C10
    issued_at      TIMESTAMP NOT NULL,
    run_id         VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.issued_invoices ({INVOICE_COLUMNS},
    issued_at TIMESTAMP NOT NULL,
    run_id    VARCHAR NOT NULL,
    PRIMARY KEY (invoice_number)
);
CREATE TABLE IF NOT EXISTS audit.issued_invoice_lines ({INVOICE_LINE_COLUMNS},
    issued_at TIMESTAMP NOT NULL,
    run_id    VARCHAR NOT NULL,
    PRIMARY KEY (invoice_number, line_number)
);
CREATE TABLE IF NOT EXISTS audit.issued_credit_ledger (
    billing_month   DATE NOT NULL,
    grant_id        VARCHAR NOT NULL,
    customer_id     VARCHAR NOT NULL,
    granted_amount  DECIMAL(18,2) NOT NULL,
    opening_balance DECIMAL(18,2) NOT NULL,
    applied         DECIMAL(18,2) NOT NULL,
    closing_balance DECIMAL(18,2) NOT NULL,
    issued_at       TIMESTAMP NOT NULL,
    run_id          VARCHAR NOT NULL,
    PRIMARY KEY (billing_month, grant_id)
);
CREATE TABLE IF NOT EXISTS audit.issued_price_book (
    billing_month DATE NOT NULL,   -- the price rows in effect when the month was issued (restatement causes)
    sku VARCHAR, product VARCHAR, description VARCHAR, model VARCHAR, unit VARCHAR, unit_price VARCHAR,
    monthly_cap VARCHAR, cap_hours VARCHAR, included_transfer_gib VARCHAR, tiers VARCHAR,
    effective_from VARCHAR, effective_to VARCHAR
);
CREATE TABLE IF NOT EXISTS audit.restatements (
    billing_month    DATE NOT NULL,
    customer_id      VARCHAR NOT NULL,
    invoice_number   VARCHAR,
    issued_total     DECIMAL(18,2) NOT NULL,
    recomputed_total DECIMAL(18,2) NOT NULL,
    difference       DECIMAL(18,2) NOT NULL,
    cause            VARCHAR NOT NULL,
    detected_at      TIMESTAMP NOT NULL,
    run_id           VARCHAR NOT NULL
);
-- One row per distinct event id a usage month accepted (docs/contract/inputs.md, "Across months"): its
-- 64-bit hash(event_id, reverse(event_id)), each once, appended and deleted by difference as folders are
-- ingested, so month M+1's ingestion finds its repeats of M's ids without re-reading M (assets/usage_lookback.py).
CREATE TABLE IF NOT EXISTS raw.usage_event_index (
    billing_month DATE NOT NULL,
    event_hash    UBIGINT NOT NULL
);
-- Daily usage ingestion (assets/usage_folder.py, docs/contract/inputs.md "Daily ingestion"): what each
-- ingested usage/dt=D/ folder leaves behind so that the month is settled without re-reading it.
-- The folder's state: its files (rel -> sha256) and the reference and look-back it was judged against.
CREATE TABLE IF NOT EXISTS raw.usage_folder_state (
    billing_month DATE NOT NULL,
    folder_day    DATE NOT NULL PRIMARY KEY,
    files         VARCHAR NOT NULL,   -- JSON object: file path → sha256, of the files loaded
    reference     VARCHAR NOT NULL,   -- fingerprint of the customers and price rows the row rules used
    lookback      VARCHAR NOT NULL,   -- fingerprint of the previous month's index the look-back used
    ingested_at   TIMESTAMP NOT NULL
);
-- Per file of the folder: rows read (footer) and rows valid (passed every row rule and the look-back).
CREATE TABLE IF NOT EXISTS raw.usage_folder_files (
    billing_month DATE NOT NULL,
    folder_day    DATE NOT NULL,
    file          VARCHAR NOT NULL,
    rows_read     BIGINT NOT NULL,
    valid         BIGINT NOT NULL
);
-- The folder's valid rows summed per (customer, resource, SKU, UTC day), duplicates not yet settled.
CREATE TABLE IF NOT EXISTS raw.usage_folder_daily (
    billing_month   DATE NOT NULL,
    folder_day      DATE NOT NULL,
    customer_id     VARCHAR,
    resource_id     VARCHAR,
    sku             VARCHAR,
    usage_date      DATE,
    quantity        DECIMAL(38,6),
    records         BIGINT,
    last_start_time TIMESTAMP
);
-- The distinct hash(event_id, reverse(event_id)) of the folder's valid rows, in hash order.
CREATE TABLE IF NOT EXISTS raw.usage_folder_hashes (
    billing_month DATE NOT NULL,
    folder_day    DATE NOT NULL,
    event_hash    UBIGINT NOT NULL
);
-- The month's valid rows whose hash another valid row of the month shares: what settles duplicates.
CREATE TABLE IF NOT EXISTS raw.usage_candidates (
    billing_month DATE NOT NULL,
    folder_day    DATE NOT NULL,
    source_file   VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL,
    event_id      VARCHAR NOT NULL,
    event_hash    UBIGINT NOT NULL,
    content       STRUCT(customer_id VARCHAR, resource_id VARCHAR, sku VARCHAR, region VARCHAR,
                         start_time TIMESTAMP, end_time TIMESTAMP, quantity DECIMAL(18,6)),
    raw           VARCHAR
);
-- The month's accepted usage per (customer, resource, SKU, UTC day), duplicates settled, as of the
-- folders ingested so far: what the close copies into raw.usage_daily for dbt.
CREATE TABLE IF NOT EXISTS raw.usage_accepted_daily (
    billing_month   DATE NOT NULL,
    customer_id     VARCHAR,
    resource_id     VARCHAR,
    sku             VARCHAR,
    usage_date      DATE,
    quantity        DECIMAL(38,6),
    records         BIGINT,
    last_start_time TIMESTAMP
);
-- Which month raw.usage_daily (what dbt rates, one month) holds, so that a day of that month updates it
-- in place (assets/usage_settle.py); a copy of another month replaces it whole.
CREATE TABLE IF NOT EXISTS raw.usage_daily_state (
    billing_month DATE NOT NULL
);
-- Columns added after the first release, so that a warehouse closed by an older billops opens.
-- modified_ns: the file's mtime when last verified; a close stats every recorded file and hashes
-- only one whose size or mtime moved (whole-ledger check, assets/ledger.py).
ALTER TABLE audit.landed_files ADD COLUMN IF NOT EXISTS modified_ns BIGINT;
-- The options a month was issued with (docs/contract/billing-rules.md §4, controls C12): a restatement runs with them.
ALTER TABLE audit.issued_months ADD COLUMN IF NOT EXISTS allow_missing_days BOOLEAN DEFAULT false;
ALTER TABLE audit.issued_months ADD COLUMN IF NOT EXISTS first_month BOOLEAN DEFAULT false;
-- The work-item queue as BI reads it (landing contract). Its truth is the ops store; workitems/mirror.py
-- replaces it whole with the same columns. Created here, empty, so that dbt (source queue.work_items:
-- credit notes, extensions) can read it before the first mirror.
CREATE SCHEMA IF NOT EXISTS marts;
CREATE TABLE IF NOT EXISTS marts.work_items ({WORK_ITEMS_COLUMNS}
);
"""


def bootstrap(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit schemas and Python-owned tables if they are missing."""
    con.execute(DDL)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """True when schema.table exists, as a table or a view."""
    return con.execute(
        "SELECT count(*) > 0 FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t",
        {"s": schema, "t": table},
    ).fetchone()[0] or con.execute(
        "SELECT count(*) > 0 FROM duckdb_views() WHERE schema_name = $s AND view_name = $t",
        {"s": schema, "t": table},
    ).fetchone()[0]
