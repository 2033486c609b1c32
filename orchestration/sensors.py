"""Sensors that alert the on-call engineer (docs/contract/controls.md, Alerting), running by default with the daemon.

Plain sensors, not run-status sensors: a run-status sensor skips runs that ended
before its first tick (a daemon `billops close` starts for itself ticks first after its
run failed) and advances its cursor even when its body raises. A run whose worker was killed
is marked failed by Dagster itself (the code server that launched it, or run monitoring). These
read the instance's run records each tick and rely on the alert store
(alerts/store.py) for exactly once; the cursor only narrows what is read.

Neither opens the warehouse, not even to read (decisions #60): a sensor runs in the daemon
or the webserver's code server while a close holds the file. `marts.alerts` reaches BI
through the published copy (alerts/mirror.py, `publish_alerts`); the warehouse's own
copy is written by the next close.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg

from alerts.channels import alert_config
from alerts.delivery import raise_alert, retry_pending
from alerts.messages import failed_check_alerts, failed_close_alert
from alerts.mirror import publish_alerts
from alerts.store import claimed_keys
from config.settings import load_settings
from orchestration.jobs import close_month_job, ingest_feeds_day_job, ingest_usage_day_job

CLOSE_JOB = close_month_job.name
# The jobs whose failures and failed checks alert: the close, and a day's usage or tickets-and-payments
# ingestion (their checks judge what landed that day, so the alert names the day).
ALERTED_JOBS = (CLOSE_JOB, ingest_usage_day_job.name, ingest_feeds_day_job.name)

TICK_SECONDS = 30
# Runs finishing while a tick reads may carry an update time just before the cursor; re-reading the
# last 10 minutes costs one query and the store drops what was already claimed.
CURSOR_OVERLAP = timedelta(minutes=10)


def _publish_alerts() -> str:
    """marts.alerts of the published copy, refreshed from the store when it differs (never the warehouse)."""
    return publish_alerts(load_settings().published)


@dg.sensor(
    name="alert_on_failed_close_sensor",
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One alert per failed close or day-ingestion run (a killed run worker is marked failed by Dagster first).",
)
def alert_on_failed_close_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    instance = context.instance
    config = alert_config()
    failed = [record for job in ALERTED_JOBS
              for record in instance.get_run_records(dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.FAILURE]))]
    already = claimed_keys([record.dagster_run.run_id for record in failed])
    sent = 0
    for record in failed:
        if record.dagster_run.run_id not in already:
            sent += raise_alert(failed_close_alert(instance, record.dagster_run, config), config) is not None
    retried = retry_pending(config)
    mirror = _publish_alerts()
    return dg.SkipReason(f"{sent} alerts sent, {retried} retried; {mirror}")


@dg.sensor(
    name="alert_on_failed_warning_check_sensor",
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One alert per failed check in a close or day-ingestion run that succeeded (a day's checks never block).",
)
def alert_on_failed_warning_check_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    instance = context.instance
    config = alert_config()
    since = datetime.fromtimestamp(float(context.cursor), tz=timezone.utc) - CURSOR_OVERLAP if context.cursor else None
    succeeded = [record for job in ALERTED_JOBS for record in instance.get_run_records(
        dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=since)
    )]
    drafts = [draft for record in succeeded for draft in failed_check_alerts(instance, record.dagster_run, config)]
    already = claimed_keys([draft.dedup_key for draft in drafts])
    sent = sum(raise_alert(draft, config) is not None for draft in drafts if draft.dedup_key not in already)
    retried = retry_pending(config)
    mirror = _publish_alerts()
    if succeeded:
        newest = max(record.update_timestamp for record in succeeded)
        context.update_cursor(str(newest.timestamp()))
    return dg.SkipReason(f"{len(succeeded)} runs read, {sent} alerts sent, {retried} retried; {mirror}")


sensors = [alert_on_failed_close_sensor, alert_on_failed_warning_check_sensor]
