"""Reference snapshots (customers, price book, tax rates, credit grants) into raw.*.

Reference CSVs are replaced in place upstream, so each close loads the
snapshot as it stands and records its hash per billing month
(`audit.reference_snapshots`): a later difference can be traced to the
snapshot that caused it. Values stay text here; dbt staging types them.
"""


from datetime import datetime, timezone

import dagster as dg

from assets.ledger import describe_files
from assets.reference_tables import load_reference_tables
from config.partitions import monthly_partitions, run_month
from warehouse.landing import REFERENCE_COLUMNS
from warehouse.resource import WarehouseResource


class BadReferenceFile(Exception):
    pass


def _header(path) -> list[str]:
    with path.open(encoding="utf-8-sig") as handle:
        return [c.strip() for c in handle.readline().rstrip("\r\n").split(",")]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["raw", name], group_name="landing", description=f"reference/{name}.csv as landed (text columns).",
                     kinds={"duckdb", "csv"})
        for name in REFERENCE_COLUMNS
    ],
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
def reference_snapshots(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Load the four reference snapshots and record the hash of each one this month's close used."""
    month = run_month(context).start
    landing = warehouse.landing_path
    paths = {name: landing / "reference" / f"{name}.csv" for name in REFERENCE_COLUMNS}
    missing = [str(p.relative_to(landing)) for p in paths.values() if not p.exists()]
    if missing:
        raise BadReferenceFile(f"missing reference file(s) in {landing}: {', '.join(missing)}")
    for name, path in paths.items():
        header = _header(path)
        if header != REFERENCE_COLUMNS[name]:
            raise BadReferenceFile(
                f"reference/{name}.csv: header {header} does not match the contract's columns {REFERENCE_COLUMNS[name]}"
            )
    described = {f.rel: f for f in describe_files(landing, list(paths.values()))}
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    results = []
    with warehouse.connect() as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM audit.reference_snapshots WHERE billing_month = ?", [month])
        for name, rows in load_reference_tables(con, landing, list(paths), now).items():
            rel = paths[name].relative_to(landing).as_posix()
            f = described[rel]
            con.execute(
                "INSERT INTO audit.reference_snapshots VALUES (?, ?, ?, ?, ?, ?)",
                [month, rel, f.size, f.sha256, rows, now],
            )
            results.append(dg.MaterializeResult(
                asset_key=["raw", name],
                metadata={"rows": rows, "sha256": f.sha256, "file": rel, "size_bytes": f.size},
            ))
        con.execute("COMMIT")
    yield from results
