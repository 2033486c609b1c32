"""Claim, log and send an alert; retry the channels that failed on later ticks.

Retries: a channel that errors is tried again on a later tick, at least
RETRY_AFTER apart, until MAX_ATTEMPTS attempts in all (5 attempts over ≥4
minutes covers a webhook or mail relay restart); then the alert is closed with
its last error, visible in marts.alerts. The one window without exactly-once: a
process killed between a channel accepting the alert and the store recording it
sends that channel again on retry — a duplicate rather than a lost alert.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from alerts import store
from alerts.channels import AlertConfig, alert_config, send
from alerts.messages import AlertDraft

logger = logging.getLogger("billops.alerts")

MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(seconds=60)


def raise_alert(draft: AlertDraft, config: AlertConfig | None = None) -> store.Alert | None:
    """Claim the alert and send it; None when its key was already claimed (nothing is sent)."""
    alert = store.claim(draft.dedup_key, draft.kind, draft.billing_month, draft.run_id, draft.text)
    if alert is None:
        return None
    level = logging.ERROR if draft.kind == store.RUN_FAILED else logging.WARNING
    logger.log(level, "alert %s [%s]\n%s", draft.dedup_key, draft.kind, draft.text)
    attempt(alert, config or alert_config(), MAX_ATTEMPTS)
    return store.fetch(draft.dedup_key)


def attempt(alert: store.Alert, config: AlertConfig, max_attempts: int) -> bool:
    """One delivery attempt on the channels not yet sent; False if another process holds the alert."""
    if not store.start_attempt(alert):
        return False
    sent = [channel for channel in alert.channels.split(",") if channel]
    pending = tuple(channel for channel in config.channels if channel not in sent)
    newly_sent, errors = send(config, pending, alert.text)
    sent.extend(newly_sent)
    error = "; ".join(f"{channel}: {message}" for channel, message in errors.items()) or None
    done = not errors or alert.attempts + 1 >= max_attempts
    store.finish_attempt(alert.alert_id, sent, error, done)
    if errors and done:
        logger.error("alert %s: giving up on %s after %d attempts", alert.dedup_key, ", ".join(errors), max_attempts)
    return True


def retry_pending(config: AlertConfig | None = None) -> int:
    """Retry every pending alert whose last attempt is at least RETRY_AFTER old; the number attempted."""
    config = config or alert_config()
    return sum(attempt(alert, config, MAX_ATTEMPTS) for alert in store.due_for_retry(MAX_ATTEMPTS, RETRY_AFTER))
