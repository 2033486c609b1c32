"""Reference CSVs into raw.<name> as they stand: the loading the close and a usage day share.

No Dagster here: `billops ingest` loads the two references its row rules read in a process that never
imports Dagster (importing it costs ~2.5 s, more than a small day's whole ingestion).
"""

from datetime import datetime

from warehouse.landing import REFERENCE_COLUMNS, RULE_REFERENCES  # noqa: F401 (RULE_REFERENCES re-exported)


def load_reference_tables(con, landing, names: list[str], now: datetime) -> dict[str, int]:
    """raw.<name> from reference/<name>.csv as it stands, for each name: rows loaded per name.

    The close loads all four and records their hashes; a day's usage ingestion (assets/usage_day.py)
    loads customers and the price book only, the two its row rules read, and records nothing.
    """
    loaded = {}
    for name in names:
        path = landing / "reference" / f"{name}.csv"
        rel = path.relative_to(landing).as_posix()
        columns = ", ".join(f"'{c}': 'VARCHAR'" for c in REFERENCE_COLUMNS[name])
        con.execute(
            f"""
            CREATE OR REPLACE TABLE raw.{name} AS
            SELECT *, ? AS _source_file, ? AS _loaded_at
            FROM read_csv(?, header = true, columns = {{{columns}}}, quote = '"', escape = '"')
            """,
            [rel, now, str(path)],
        )
        loaded[name] = con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0]
    return loaded
