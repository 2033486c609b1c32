"""How a control reports (docs/contract/controls.md: numbers, not just pass/fail): one shape for every control.

A control is a query for the rows it judged and a query for the offending ones;
its result carries the same metadata keys on pass and on fail (rows checked,
failures, the amount at stake where there is one, up to 10 offending rows), so
a failure can be acted on from the UI and an alert can quote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import dagster as dg
import duckdb

MAX_EXAMPLES = 10
NAMED_IN_TEXT = 3  # offending rows written into the description, which the alert quotes


@dataclass(frozen=True)
class Control:
    """One control over SQL: `checked_sql` counts the rows judged, `offending_sql` lists the failures.

    Both take the named parameters $m (first day of the month) and $end (first day of the next).
    `amount_column` names a money column of the offending rows to total in the metadata.
    """

    name: str  # <id>_<what passes>, e.g. C1_lines_add_up
    asset: dg.AssetKey
    description: str
    checked_sql: str
    offending_sql: str
    amount_column: str | None = None
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    def spec(self, partitions_def: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name, asset=self.asset, description=self.description, partitions_def=partitions_def,
            blocking=self.severity == dg.AssetCheckSeverity.ERROR,
        )

    def evaluate(self, con: duckdb.DuckDBPyConnection, params: dict) -> dg.AssetCheckResult:
        checked = con.execute(self.checked_sql, _used(self.checked_sql, params)).fetchone()[0]
        cursor = con.execute(self.offending_sql, _used(self.offending_sql, params))
        columns = [d[0] for d in cursor.description]
        offending = [dict(zip(columns, row)) for row in cursor.fetchall()]
        amount = sum((Decimal(r[self.amount_column] or 0) for r in offending), Decimal("0.00")) if self.amount_column else None
        return result(self.name, self.asset, self.severity, self.description + named_rows(offending), checked, offending, amount)


def _used(sql: str, params: dict) -> dict:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def named_rows(offending: list[dict]) -> str:
    """The first offending rows in words (`column=value`), so that the description, and the alert that
    quotes it, names what to look at; all of them (up to 10) are in the `offending_rows` metadata."""
    if not offending:
        return ""
    rows = "; ".join(", ".join(f"{k}={_plain(v)}" for k, v in row.items()) for row in offending[:NAMED_IN_TEXT])
    more = f"; and {len(offending) - NAMED_IN_TEXT} more (offending_rows)" if len(offending) > NAMED_IN_TEXT else ""
    return f" Offending: {rows}{more}."


def result(name: str, asset: dg.AssetKey, severity: dg.AssetCheckSeverity, description: str, checked: int,
           offending: list[dict], amount: Decimal | None = None, extra: dict | None = None) -> dg.AssetCheckResult:
    """The AssetCheckResult of a control, with the metadata every control carries."""
    metadata = {
        "rows_checked": dg.MetadataValue.int(int(checked)),
        "failures": dg.MetadataValue.int(len(offending)),
        "offending_rows": dg.MetadataValue.json([{k: _plain(v) for k, v in r.items()} for r in offending[:MAX_EXAMPLES]]),
        **(extra or {}),
    }
    if amount is not None:
        # The amount is the exact text; the float copy exists only because the UI plots a check's numeric
        # metadata across runs (decisions #48). Alerts and marts never show it (alerts/messages.py).
        metadata["amount_at_stake"] = dg.MetadataValue.text(f"{amount:.2f}")
        metadata["amount_at_stake_plot"] = dg.MetadataValue.float(float(amount))
    verdict = f"{len(offending)} of {checked} failed" if offending else f"all {checked} pass"
    return dg.AssetCheckResult(
        asset_key=asset, check_name=name, passed=not offending, severity=severity,
        description=f"{name}: {verdict}. {description}", metadata=metadata,
    )
