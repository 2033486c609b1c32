"""C12 deliveries complete (blocking): every UTC day of the billing month has at least one usage
file with rows, or the month is not issued — a month with a missing day, or no usage folder at
all, would otherwise close "successfully" with invoices short of that usage.

The judgement is a GX suite on a per-day profile DuckDB computes without scanning usage rows
(a month is ~220M rows at full size): files and rows per day from `audit.file_loads` (what the
usage asset read for the month), null counts and min/max `start_time` per day from the Parquet
footers' statistics. Records on another day of the month are accepted by the contract, and rows
outside the month are quarantined, so "times inside the day" is reported, not blocking.

`billops close --allow-missing-days` tags the run `billops/allow_missing_days=true`: C12 then
passes, and its metadata records that it was overridden and which days were missing. A month
issued that way keeps the allowance when it is restated (`audit.issued_months.allow_missing_days`).
"""

import calendar
from datetime import date

import warnings

import dagster as dg

from config.partitions import monthly_partitions
from quality.gx_runner import SHOWN, Expect, frame, plain, run_suite
from warehouse.close_options import CloseOptions
from warehouse.resource import WarehouseResource

# Partitioned asset checks are a "preview" in Dagster 1.13; the month is what these checks judge.
warnings.filterwarnings("ignore", "Specifying a partitions_def on an AssetCheckSpec", dg.PreviewWarning)

USAGE_KEY = dg.AssetKey(["raw", "usage"])
REQUIRED_COLUMNS = ["event_id", "customer_id", "resource_id", "sku", "start_time", "end_time", "quantity"]

FILE_STATS_SQL = """
-- Per usage file, from the Parquet footers alone: nulls in required columns, min/max start_time.
SELECT file,
  sum(stats_null_count) FILTER (WHERE list_contains($required, path_in_schema)) AS null_values,
  min(try_cast(stats_min_value AS TIMESTAMPTZ)) FILTER (WHERE path_in_schema = 'start_time') AT TIME ZONE 'UTC' AS min_start_time,
  max(try_cast(stats_max_value AS TIMESTAMPTZ)) FILTER (WHERE path_in_schema = 'start_time') AT TIME ZONE 'UTC' AS max_start_time
FROM (SELECT substr(file_name, $prefix) AS file, * FROM parquet_metadata($paths))
GROUP BY file
"""

DAY_PROFILE_SQL = """
WITH days AS (
  SELECT d::DATE AS day FROM range($start::TIMESTAMP, $end::TIMESTAMP, INTERVAL 1 DAY) r(d)
), loads AS (
  SELECT try_cast(regexp_extract(l.file, 'dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/', 1) AS DATE) AS day,
         l.rows_read, l.accepted, l.quarantined, s.null_values, s.min_start_time, s.max_start_time
  FROM audit.file_loads l LEFT JOIN usage_file_stats s USING (file)
  WHERE l.source = 'usage' AND l.billing_month = $month
)
SELECT strftime(days.day, '%Y-%m-%d') AS day, days.day::TIMESTAMP AS day_start, days.day::TIMESTAMP + INTERVAL 1 DAY AS next_day,
  count(loads.day) AS files, coalesce(sum(rows_read), 0)::BIGINT AS rows_read, coalesce(sum(accepted), 0)::BIGINT AS accepted,
  coalesce(sum(quarantined), 0)::BIGINT AS quarantined, sum(null_values)::BIGINT AS null_values,
  min(min_start_time) AS min_start_time, max(max_start_time) AS max_start_time
FROM days LEFT JOIN loads USING (day)
GROUP BY ALL ORDER BY day
"""

DELIVERY_SUITE = [
    Expect("every UTC day of the month must have at least one usage file", "ExpectColumnValuesToBeBetween",
           {"column": "files", "min_value": 1}),
    Expect("every UTC day of the month must have usage rows", "ExpectColumnValuesToBeBetween",
           {"column": "rows_read", "min_value": 1}),
]
# Reported, not blocking: the contract accepts records of another day of the month in a day's folder.
PROFILE_SUITE = [
    Expect("a day's files start no earlier than the day", "ExpectColumnPairValuesAToBeGreaterThanB",
           {"column_A": "min_start_time", "column_B": "day_start", "or_equal": True, "ignore_row_if": "either_value_is_missing"}),
    Expect("a day's files start before the next day", "ExpectColumnPairValuesAToBeGreaterThanB",
           {"column_A": "next_day", "column_B": "max_start_time", "ignore_row_if": "either_value_is_missing"}),
]


def day_profile(con, landing, month: date):
    """One row per UTC day of the month: files, rows read/accepted/quarantined, nulls, min/max start_time."""
    files = [r[0] for r in con.execute(
        "SELECT file FROM audit.file_loads WHERE source = 'usage' AND billing_month = ? ORDER BY file", [month]
    ).fetchall()]
    paths = [str(landing / f) for f in files if (landing / f).exists()]
    if paths:
        con.execute("CREATE OR REPLACE TEMP TABLE usage_file_stats AS " + FILE_STATS_SQL,
                    {"required": REQUIRED_COLUMNS, "prefix": len(str(landing)) + 2, "paths": paths})
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE usage_file_stats (file VARCHAR, null_values BIGINT, "
                    "min_start_time TIMESTAMP, max_start_time TIMESTAMP)")
    end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return frame(con.sql(DAY_PROFILE_SQL, params={"start": month, "end": end, "month": month}).to_arrow_table())


def judge_deliveries(profile, month: date, allow_missing_days: bool) -> dg.AssetCheckResult:
    """C12's result from the day profile: missing days fail it, unless the run allows them."""
    delivery = run_suite("c12_deliveries", profile, DELIVERY_SUITE, ["day"])
    times = run_suite("c12_day_times", profile, PROFILE_SUITE, ["day"])
    missing = sorted({o.index["day"] for o in delivery.offences if o.index.get("day")})
    present = profile[profile["rows_read"] > 0]["rows_read"]
    days_expected = calendar.monthrange(month.year, month.month)[1]
    complete = delivery.success and not missing
    overridden = allow_missing_days and not complete and not delivery.errors
    shown = ", ".join(missing[:SHOWN]) + (f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else "")
    if delivery.errors:
        description = "C12 could not be evaluated: GX raised on " + "; ".join(delivery.errors[:3])
    elif complete:
        description = f"C12: all {days_expected} UTC days of {month:%Y-%m} have usage files"
    else:
        verdict = "C12 overridden by --allow-missing-days" if overridden else "C12 failed"
        if len(missing) == days_expected:
            description = f"{verdict}: no usage file for any day of {month:%Y-%m} (no usage/dt={month:%Y-%m}-DD/*.parquet)"
        else:
            description = (f"{verdict}: {len(missing)} of {days_expected} UTC days of {month:%Y-%m} have no usage "
                           f"file (usage/dt=YYYY-MM-DD/*.parquet): {shown}")
    return dg.AssetCheckResult(
        asset_key=USAGE_KEY,
        check_name="C12_deliveries_complete",
        passed=complete or overridden,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "days_expected": days_expected,
            "days_present": days_expected - len(missing),
            "missing_days": dg.MetadataValue.json(missing[:SHOWN]),
            "failures": len(missing),
            "rows_checked": int(profile["rows_read"].sum()),
            "files": int(profile["files"].sum()),
            "rows_per_day_min": int(present.min()) if len(present) else 0,
            "rows_per_day_max": int(present.max()) if len(present) else 0,
            "null_values_in_required_columns": int(profile["null_values"].fillna(0).sum()),
            "override_requested": allow_missing_days,
            "overridden": overridden,
            "days_with_records_of_other_days": dg.MetadataValue.json(
                sorted({o.index.get("day") for o in times.offences})[:SHOWN]),
            "gx_errors": dg.MetadataValue.json((delivery.errors + times.errors)[:SHOWN]),
            "per_day": dg.MetadataValue.md(_per_day_markdown(profile)),
        },
    )


def _per_day_markdown(profile) -> str:
    columns = ["day", "files", "rows_read", "accepted", "quarantined", "min_start_time", "max_start_time"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(plain(v)) for v in row) + " |" for row in profile[columns].itertuples(index=False)]
    return "\n".join(lines)


@dg.asset_check(
    asset=USAGE_KEY,
    name="C12_deliveries_complete",
    blocking=True,
    partitions_def=monthly_partitions,
    description="C12 deliveries complete: every UTC day of the billing month has at least one usage file "
                "(usage/dt=YYYY-MM-DD/*.parquet) with rows; `billops close --allow-missing-days` overrides it "
                "and the check's metadata records that it did.",
)
def deliveries_complete(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """C12 on the month's usage as the usage asset loaded it (audit.file_loads) and the files' footers."""
    month = context.partition_time_window.start.date()
    allow = CloseOptions.from_tags(context.run.tags).allow_missing_days
    with warehouse.connect(read_only=True) as con:
        profile = day_profile(con, warehouse.landing_path, month)
        # A restatement keeps the allowance its month was issued with, however the run was launched.
        allow = allow or bool(con.execute(
            "SELECT bool_or(allow_missing_days) FROM audit.issued_months WHERE billing_month = ?", [month]
        ).fetchone()[0])
    return judge_deliveries(profile, month, allow)


delivery_checks = [deliveries_complete]
