"""The words of an alert, read from the run's event log in the Dagster instance.

One message per failed close names the month, every failed step with its error,
every failed ERROR-severity check with what it found (its description: the file,
row, rule and value of C13, the missing days of C12 …) and its figures, each fact
once, and a link to the run; a check that failed in a run that succeeded gets one
message of its own. Nothing is cut mid-sentence, and any URL setting quoted by an
error is shown as `scheme://host[:port]` (config/redaction.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import dagster as dg

from alerts.channels import AlertConfig
from alerts.store import CHECK_WARNING, RUN_FAILED
from config.redaction import redact

PARTITION_TAG = "dagster/partition"
# Enough of an error or a check's finding to act on; the run has the rest. Longer text is cut at the
# last sentence, line or list item that fits and says so, never in the middle of a sentence.
MAX_ERROR_CHARS = 600
MAX_CHECK_CHARS = 1200
TRUNCATED = "(truncated, see the run)"
SCALAR_METADATA = (dg.IntMetadataValue, dg.FloatMetadataValue, dg.TextMetadataValue, dg.BoolMetadataValue)
# `<key>_plot` is a float copy of the money in `<key>` for the UI's check plot (decisions #48): not a fact of its own.
PLOT_SUFFIX = "_plot"
NUMBER = re.compile(r"-?[\d.,]*")

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Where a stack excerpt starts inside an error message: the lines from there on are dropped.
STACK_START = re.compile(r'^(Traceback \(most recent call last\)|File "|Stack Trace:|The above exception|During handling of)')
DBT_FAILURE = re.compile(r"The dbt CLI process with command\s*`(?P<command>[^`]*)`\s*failed with exit code `(?P<code>-?\d+)`")
DBT_ERRORS = "Errors parsed from dbt logs:"
# dbt's progress line (`1 of 9 ERROR creating … [ERROR in 0.16s]`) and the carets under a SQL excerpt say nothing new.
NOISE = re.compile(r"^(\d+ of \d+ \w+ .*\.{3,}.*|[\^~\s]+)$")
SENTENCE_ENDS = (". ", "; ", "! ", "? ", "\n")  # where a cut may fall: after a sentence, a list item, a line


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
        return date.fromisoformat(value).replace(day=1) if value else None  # a day's run: its month
    except ValueError:
        return None


# The daily ingestion jobs (orchestration/jobs.py, named here as strings: alerts sit below orchestration)
# → what one run ingests, for the message.
DAY_JOBS = {"ingest_usage_day_job": "usage", "ingest_feeds_day_job": "tickets and payments"}


def _what(run: dg.DagsterRun, month: date | None, partition: str | None = None) -> str:
    """What the run did, for the message: the close of a month, or the ingestion of one day's usage (or
    tickets and payments)."""
    if run.job_name in DAY_JOBS:
        return f"{DAY_JOBS[run.job_name]} ingestion of day {partition or run.tags.get(PARTITION_TAG) or 'unknown'}"
    return f"close of {_month_label(month)}"


def _month_label(month: date | None) -> str:
    return month.strftime("%Y-%m") if month else "an unknown month"


def clip(text: str, limit: int) -> str:
    """`text` whole if it fits; else up to the last sentence, list item or line end that fits, marked TRUNCATED."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(TRUNCATED) - 1]
    end = max(head.rfind(sep) + 1 for sep in SENTENCE_ENDS)
    if end < len(head) // 3:  # one very long sentence: cut it after a clause, else a word, and say so
        end = head.rfind(", ") + 1 or head.rfind(" ") + 1 or len(head)
    return f"{head[:end].rstrip(' ;:,')} {TRUNCATED}".lstrip()


def _meaningful_lines(text: str) -> list[str]:
    """The message's lines up to any stack excerpt, stripped, without blank ones."""
    lines = []
    for line in ANSI.sub("", text).splitlines():
        line = line.strip()
        if STACK_START.match(line):
            break
        if line and not NOISE.match(line):
            lines.append(line)
    return lines


def _joined(lines: list[str]) -> str:
    """Lines as one line: a line that ends without punctuation is followed by `;`."""
    return " ".join(line if line.endswith((".", ":", ";", "!", "?")) or i == len(lines) - 1 else f"{line};"
                    for i, line in enumerate(lines))


def error_text(error) -> str:  # noqa: ANN001 - dagster's SerializableErrorInfo
    """The user's exception rather than Dagster's wrapper, on one line, without module paths or stack
    excerpts; for dbt, the errors dbt reported rather than dagster-dbt's boilerplate around the command."""
    if error is None:
        return "failed"
    if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    message = re.sub(r"^(?:[\w]+\.)+(\w+:)", r"\1", error.message.strip())
    dbt = DBT_FAILURE.search(" ".join(message.split()))
    if dbt:
        verb = next((word for word in dbt["command"].split()[1:] if not word.startswith("-")), "command")
        reported = _meaningful_lines(message.split(DBT_ERRORS, 1)[1]) if DBT_ERRORS in message else []
        head = f"dbt {verb} failed (exit code {dbt['code']})"
        text = f"{head}: {_joined(reported)}" if reported else f"{head}; dbt's output is in the run's logs."
    else:
        text = _joined(_meaningful_lines(message))
    return clip(text, MAX_ERROR_CHARS)


def _stopped_by_a_check(error) -> bool:  # noqa: ANN001 - dagster's SerializableErrorInfo
    """A step failed only because a blocking check failed: Dagster's words repeat the check's name."""
    while error is not None:
        if error.cls_name == "DagsterAssetCheckFailedError":
            return True
        error = error.cause
    return False


def _finding(evaluation) -> str:  # noqa: ANN001 - AssetCheckEvaluation
    """The check's own words (its description), without a leading repeat of the check's name."""
    text = " ".join((evaluation.description or "").split())
    prefix = f"{evaluation.check_name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def metadata_numbers(metadata: dict, said: str = "") -> str:
    """`key=value` for every scalar metadata entry (row counts, failures, amounts), each fact once:
    a `_plot` float copy and a text (not a number) already in the check's words (`said`) are left out."""
    parts = []
    for key, value in metadata.items():
        if not isinstance(value, SCALAR_METADATA) or key.endswith(PLOT_SUFFIX):
            continue
        shown = str(value.value)
        if isinstance(value, dg.TextMetadataValue) and shown in said and not NUMBER.fullmatch(shown):
            continue  # e.g. C13's `file`, named in its finding; an amount is a figure of its own
        parts.append(f"{key}={shown[:80]}")
    return ", ".join(parts)


def check_item(evaluation) -> str:  # noqa: ANN001 - AssetCheckEvaluation
    """A failed check as a list item: what it found (row, rule, value; the missing days …), then its figures."""
    name = f"{evaluation.asset_key.to_user_string()} / {evaluation.check_name}"
    finding = _finding(evaluation)
    figures = metadata_numbers(evaluation.metadata, finding)
    if not finding:
        return f"{name}: {figures or 'no figures recorded'}"
    return f"{name}: {clip(finding, MAX_CHECK_CHARS)}" + (f"\n  figures: {figures}" if figures else "")


def worker_died(message: str) -> bool:
    """Dagster's note that a run worker died (the code server's words: "... was terminated by signal 9 (SIGKILL).")."""
    return "was terminated by signal" in message or "unexpectedly exited" in message


def failed_close_alert(instance: dg.DagsterInstance, run: dg.DagsterRun, config: AlertConfig) -> AlertDraft:
    """The one message for a failed close run, keyed by its run id."""
    records = instance.get_records_for_run(
        run.run_id,
        of_type={
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            dg.DagsterEventType.RUN_FAILURE,
            dg.DagsterEventType.ENGINE_EVENT,
        },
    ).records
    steps, blocking, warnings, run_failures = [], [], [], []
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            if not _stopped_by_a_check(data.error):  # the check itself is listed, with what it found
                steps.append(f"{event.step_key}: {error_text(data.error)}")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not data.passed:
            (blocking if data.severity == dg.AssetCheckSeverity.ERROR else warnings).append(check_item(data))
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE or (
                event.event_type == dg.DagsterEventType.ENGINE_EVENT and worker_died(event.message or "")):
            run_failures.append(clip(" ".join((event.message or record.event_log_entry.user_message).split()), MAX_ERROR_CHARS))
    month = billing_month_of(run)
    lines = [f"billops: {_what(run, month)} FAILED (run {run.run_id[:8]})"]
    for title, items in (("Failed steps", steps), ("Failed checks", blocking), ("Warnings", warnings)):
        if items:
            lines.append(f"{title}:")
            lines.extend(f"- {item}" for item in items)
    if not steps and not blocking:
        lines.append(f"Run failure: {'; '.join(run_failures) if run_failures else 'no failed step recorded'}")
    lines.append(f"Run: {config.run_link(run.run_id)}")
    return AlertDraft(run.run_id, RUN_FAILED, month, run.run_id, redact("\n".join(lines)))


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
                f"in the {_what(run, month, evaluation.partition)} (run {run.run_id[:8]} succeeded)",
                f"- {check_item(evaluation)}",
                f"Run: {config.run_link(run.run_id)}",
            ]
        )
        drafts.append(AlertDraft(f"check:{record.storage_id}", CHECK_WARNING, month, run.run_id, redact(text)))
    return drafts
