"""Great Expectations 1.x as the row-rule engine of small tables (reference snapshots, tickets,
payments, the per-day usage profile): a suite of expectations in code, run on a pandas frame,
and the rows GX finds unexpected named by their index columns (file, row).

GX 1.24 has no DuckDB engine and its pandas path cannot hold a month of usage, so DuckDB
builds the small frame (typed values, flags a rule needs SQL for) and GX judges it. Importing
GX costs ~3 s, so it happens inside `run_suite`, never on the CLI's or `dagster dev`'s import path.
A suite passes only when GX says so and raised nothing: an expectation that errors is a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import dagster as dg
import pyarrow as pa

SHOWN = 10  # offending rows named in a description and in metadata


@dataclass(frozen=True)
class Expect:
    """One rule: the words a failing row is reported with, and the GX expectation that checks it."""

    rule: str
    expectation: str  # a class of great_expectations.expectations, e.g. "ExpectColumnValuesToBeInSet"
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Offence:
    index: dict[str, Any]  # the index columns of the row (e.g. {"row": 3}); empty for a table-level rule
    rule: str
    value: Any


@dataclass
class SuiteOutcome:
    success: bool
    rows_checked: int
    offences: list[Offence] = field(default_factory=list)
    failed_rules: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # expectations GX could not evaluate


def frame(table: pa.Table):
    """A pandas frame of an Arrow table that keeps DECIMAL as Decimal and integer columns with nulls as int."""
    return table.to_pandas(integer_object_nulls=True, date_as_object=True)


def plain(value: Any) -> Any:
    """A JSON-safe value for metadata: numpy scalars to Python, NaN to None, Decimal and times to text."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (Decimal, date, datetime)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def run_suite(name: str, data, expectations: list[Expect], index_columns: list[str]) -> SuiteOutcome:
    """Validate `data` (a pandas frame) against the expectations in an ephemeral GX context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,  # no network calls from a close
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        ),
    )
    batch_definition = (
        context.data_sources.add_pandas(name).add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
    )
    suite = gx.ExpectationSuite(name=name)
    for i, e in enumerate(expectations):
        suite.add_expectation(getattr(gx.expectations, e.expectation)(**e.kwargs, meta={"rule_index": i}))
    result = batch_definition.get_batch(batch_parameters={"dataframe": data}).validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index_columns}
    )
    outcome = SuiteOutcome(success=bool(result.success), rows_checked=len(data))
    for r in result.results:
        rule = expectations[r.expectation_config.meta["rule_index"]]
        error = _raised(r.exception_info)
        if error:
            outcome.errors.append(f"{rule.rule}: {error}")
        if r.success:
            continue
        outcome.failed_rules.append(rule.rule)
        unexpected = r.result.get("unexpected_index_list") or []
        column = rule.kwargs.get("column")
        for item in unexpected:
            if isinstance(item, dict):
                index = {c: plain(item.get(c)) for c in index_columns}
                value = plain(item.get(column)) if column else {k: plain(v) for k, v in item.items() if k not in index_columns}
            else:  # GX gives bare positions when it cannot name the row
                index, value = {"position": plain(item)}, None
            outcome.offences.append(Offence(index, rule.rule, value))
        if not unexpected:
            observed = r.result.get("observed_value")
            outcome.offences.append(Offence({}, rule.rule, plain(observed)))
    # GX errors never pass a suite, whatever GX's own verdict was.
    outcome.success = outcome.success and not outcome.errors
    outcome.offences.sort(key=lambda o: tuple(str(v).zfill(12) for v in o.index.values()))
    return outcome


def _raised(info: dict | None) -> str | None:
    """GX's exception message for an expectation, if it raised: `exception_info` is either one
    {"raised_exception", "exception_message"} or a mapping of metric id to such entries."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    messages = [str(e.get("exception_message")) for e in entries if e.get("raised_exception")]
    return "; ".join(messages) or None


def suite_result(asset_key: dg.AssetKey, check_name: str, severity: dg.AssetCheckSeverity, description: str,
                 outcome: SuiteOutcome, offending: list[dict], **extra) -> dg.AssetCheckResult:
    """A suite's check result: the same metadata keys for every suite, on pass and on fail."""
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=outcome.success,
        severity=severity,
        description=description,
        metadata={
            **extra,
            "rows_checked": outcome.rows_checked,
            "failures": len(offending),
            "rules_failed": dg.MetadataValue.json(outcome.failed_rules),
            "offending_rows": dg.MetadataValue.json(offending[:SHOWN]),
            "gx_errors": dg.MetadataValue.json(outcome.errors[:SHOWN]),
        },
    )
