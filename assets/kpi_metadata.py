"""Headline KPI numbers as asset metadata, so the Dagster UI plots each KPI across closes.

The KPI marts (dbt_project/models/marts/kpis/) are dbt models; dagster-dbt turns each built
model into an Output. Numeric metadata on that Output is what the UI charts per
materialization, so after dbt has finished (DuckDB allows one writer: the figures are read
once dbt's process has exited and released the file) the month being closed is read back
from the KPI tables and attached to its model's event. Everything is a float or int in the
metadata only because Dagster's plot needs numbers; the marts themselves stay DECIMAL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal

import dagster as dg
import duckdb

KPI_PREFIX = "kpi_"

# model → (SQL over the model for the month $m, the headline columns it returns)
HEADLINES: dict[str, str] = {
    "kpi_billing_monthly": """
        SELECT invoices_issued, invoiced_amount, invoice_accuracy_rate, pre_issue_control_pass_rate,
               refunds_count, refunds_amount, refund_turnaround_hours_median, payment_success_rate,
               failed_payment_recovery_rate, extensions_granted,
               ar_current + ar_1_30 + ar_31_60 + ar_61_90 + ar_90_plus AS ar_total, ar_90_plus, dso_days
        FROM marts.kpi_billing_monthly WHERE month = $m""",
    "kpi_support_monthly": """
        SELECT tickets_created, tickets_solved, frt_minutes_median, frt_minutes_p90, frt_business_minutes_median,
               aht_minutes, resolution_minutes_median, csat, reopen_rate, billing_tickets_per_1k_invoices
        FROM marts.kpi_support_monthly WHERE month = $m AND dimension = 'all'""",
    "kpi_churn_monthly": """
        SELECT active_customers_start, churned_customers, logo_churn_rate, revenue_churn_rate, involuntary_churned
        FROM marts.kpi_churn_monthly WHERE month = $m""",
    "kpi_team_daily": """
        SELECT count(DISTINCT agent_id) AS agents_active, sum(tickets_solved) AS tickets_solved,
               count(DISTINCT day) AS days_covered
        FROM marts.kpi_team_daily WHERE day >= $m AND day < $m + INTERVAL 1 MONTH""",
}


def headline_metadata(con: duckdb.DuckDBPyConnection, model: str, month: date) -> dict[str, dg.MetadataValue]:
    """The month's headline numbers of one KPI model; a null KPI (empty denominator) is left out."""
    cursor = con.execute(HEADLINES[model], {"m": month})
    row = cursor.fetchone()
    if row is None:
        return {}
    metadata: dict[str, dg.MetadataValue] = {}
    for (name, *_), value in zip(cursor.description, row):
        if value is None:
            continue
        if isinstance(value, Decimal):
            metadata[name] = dg.MetadataValue.float(float(value))
        else:
            metadata[name] = dg.MetadataValue.int(int(value))
    return metadata


def _model_name(context: dg.AssetExecutionContext, event) -> str | None:
    if isinstance(event, dg.Output):
        key = context.asset_key_for_output(event.output_name)
    elif isinstance(event, dg.AssetMaterialization):
        key = event.asset_key
    else:
        return None
    name = key.path[-1]
    return name if name in HEADLINES else None


def with_kpi_metadata(context: dg.AssetExecutionContext, events: Iterable, warehouse_path: str, month: date) -> Iterator:
    """Pass dbt's events through, holding back the KPI models' ones until dbt is done, then add their figures.

    If dbt fails part way, the held events still go out (without figures) before the error.
    """
    held = []
    try:
        for event in events:
            if _model_name(context, event):
                held.append(event)
            else:
                yield event
    except Exception:
        yield from held
        raise
    if not held:
        return
    try:
        con = duckdb.connect(warehouse_path, read_only=True)
    except duckdb.Error as exc:  # the figures are a convenience: never fail the close over them
        context.log.warning(f"KPI metadata skipped, warehouse not readable: {exc}")
        yield from held
        return
    try:
        for event in held:
            try:
                extra = headline_metadata(con, _model_name(context, event), month)
            except duckdb.Error as exc:
                context.log.warning(f"KPI metadata skipped for {_model_name(context, event)}: {exc}")
                extra = {}
            yield event.with_metadata({**event.metadata, **extra}) if extra else event
    finally:
        con.close()
