"""The words of an alert, read from the run's event log in the Dagster instance.

One message per failed close names the month, every failed step with its error,
every failed ERROR-severity check with its metadata numbers, and a link to the
run; a check that failed in a run that succeeded gets one message of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import dagster as dg

from alerts.channels import AlertConfig
from alerts.store import CHECK_WARNING, RUN_FAILED

PARTITION_TAG = "dagster/partition"
# Enough of an error for the on-call engineer to know where to look; the UI has the rest.
MAX_ERROR_CHARS = 400
SCALAR_METADATA = (dg.IntMetadataValue, dg.FloatMetadataValue, dg.TextMetadataValue, dg.BoolMetadataValue)


@dataclass(frozen=True)
class AlertDraft:
    dedup_key: str
    kind: str
    billing_month: date | None
    run_id: str
    text: str


def billing_month_of(run: dg.DagsterRun, partition: str | None = None) -> date | None:
    """The month a close run billed, from its partition (e.g. `2026-10-01`)."""
    value = partition or run.tags.get(PARTITION_TAG)
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _month_label(month: date | None) -> str:
    return month.strftime("%Y-%m") if month else "an unknown month"


def error_text(error) -> str:  # noqa: ANN001 - dagster's SerializableErrorInfo
    """The user's exception rather than Dagster's wrapper, on one line, without module paths."""
    if error is None:
        return "failed"
    if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    text = " ".join(error.message.split())
    text = re.sub(r"^(?:[\w]+\.)+(\w+:)", r"\1", text)
    return text[:MAX_ERROR_CHARS]


def metadata_numbers(metadata: dict) -> str:
    """`key=value` for every scalar metadata entry (row counts, failures, amounts)."""
    parts = []
    for key, value in metadata.items():
        if isinstance(value, SCALAR_METADATA):
            parts.append(f"{key}={str(value.value)[:80]}")
    return ", ".join(parts) or "no figures recorded"


def _check_line(evaluation) -> str:  # noqa: ANN001 - AssetCheckEvaluation
    return f"{evaluation.asset_key.to_user_string()} / {evaluation.check_name}: {metadata_numbers(evaluation.metadata)}"


def failed_close_alert(instance: dg.DagsterInstance, run: dg.DagsterRun, config: AlertConfig) -> AlertDraft:
    """The one message for a failed close run, keyed by its run id."""
    records = instance.get_records_for_run(
        run.run_id,
        of_type={
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            dg.DagsterEventType.RUN_FAILURE,
        },
    ).records
    steps, blocking, warnings, run_failures = [], [], [], []
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            steps.append(f"{event.step_key}: {error_text(data.error)}")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not data.passed:
            (blocking if data.severity == dg.AssetCheckSeverity.ERROR else warnings).append(_check_line(data))
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
            run_failures.append(" ".join((event.message or record.event_log_entry.user_message).split()))
    month = billing_month_of(run)
    lines = [f"billops: close of {_month_label(month)} FAILED (run {run.run_id[:8]})"]
    for title, items in (("Failed steps", steps), ("Failed checks", blocking), ("Warnings", warnings)):
        if items:
            lines.append(f"{title}:")
            lines.extend(f"- {item}" for item in items)
    if not steps and not blocking:
        lines.append(f"Run failure: {run_failures[-1] if run_failures else 'no failed step recorded'}")
    lines.append(f"Run: {config.run_link(run.run_id)}")
    return AlertDraft(run.run_id, RUN_FAILED, month, run.run_id, "\n".join(lines))


def failed_check_alerts(instance: dg.DagsterInstance, run: dg.DagsterRun, config: AlertConfig) -> list[AlertDraft]:
    """One message per failed check evaluation of a run that succeeded, keyed by the event's storage id.

    WARN checks are the expected case (C11); an ERROR check that does not block would
    also end here rather than pass unnoticed.
    """
    drafts = []
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        month = billing_month_of(run, evaluation.partition)
        text = "\n".join(
            [
                f"billops: {evaluation.severity.value} check {evaluation.check_name} failed "
                f"in the close of {_month_label(month)} (run {run.run_id[:8]} succeeded)",
                f"- {_check_line(evaluation)}",
                *([f"- {evaluation.description}"] if evaluation.description else []),
                f"Run: {config.run_link(run.run_id)}",
            ]
        )
        drafts.append(AlertDraft(f"check:{record.storage_id}", CHECK_WARNING, month, run.run_id, text))
    return drafts
