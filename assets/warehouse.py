"""The accepted view every ingestion source gives dbt: typed rows less rejected and re-delivered ones."""

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
