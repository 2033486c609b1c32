"""Alerts end to end: real runs in a real Dagster instance, real sensor ticks, a local HTTP
receiver and a local SMTP server, the SQLite alert store and a DuckDB warehouse file."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from alerts import delivery, store
from tests.alerts.receivers import UI, failing_close, instance_on, marts_alerts, tick


# --- a tiny close_month_job in four outcomes -------------------------------------------------


@dg.asset(check_specs=[dg.AssetCheckSpec("C1_lines_add_up", asset="invoice_drafts", blocking=True)])
def invoice_drafts():
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name="C1_lines_add_up", passed=False, metadata={"rows_checked": 120, "failures": 2, "difference": "0.03"})


@dg.asset(deps=[invoice_drafts])
def issued_invoices():
    return 1


def _tickets_with_check(passed: bool):
    @dg.asset(name="tickets", check_specs=[dg.AssetCheckSpec("C11_ticket_credits_reviewed", asset="tickets")])
    def tickets():
        yield dg.Output(1)
        yield dg.AssetCheckResult(
            check_name="C11_ticket_credits_reviewed",
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"unreviewed": 0 if passed else 3},
        )

    return tickets


def _close_job(*assets) -> dg.JobDefinition:
    definitions = dg.Definitions(assets=list(assets), jobs=[dg.define_asset_job("close_month_job")])
    return definitions.resolve_job_def("close_month_job")


def _close(instance, job, month: str) -> str:
    result = job.execute_in_process(instance=instance, raise_on_error=False, tags={"dagster/partition": f"{month}-01"})
    return result.run_id


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory) -> Path:
    """One instance holding a failed close, a close stopped by a blocking check, a close with a
    failed warning check and a good close (runs are read-only for the tests that share it)."""
    home = tmp_path_factory.mktemp("dagster")
    with instance_on(home) as instance:
        runs = {
            "failed": _close(instance, failing_close, "2026-10"),
            "blocked": _close(instance, _close_job(invoice_drafts, issued_invoices), "2026-11"),
            "warned": _close(instance, _close_job(_tickets_with_check(False)), "2026-12"),
            "good": _close(instance, _close_job(_tickets_with_check(True)), "2026-09"),
        }
    (home / "runs.json").write_text(json.dumps(runs))
    return home


def _runs(home: Path) -> dict[str, str]:
    return json.loads((home / "runs.json").read_text())


# --- tests -------------------------------------------------------------------------------------


def test_each_failure_alerts_once_across_ticks_and_a_restart(dagster_home, receivers, tmp_path):
    webhook, mailbox = receivers
    runs = _runs(dagster_home)
    cursors: dict = {}
    with instance_on(dagster_home) as instance:
        for _ in range(3):
            tick(instance, cursors)
    store.forget_engines()  # the daemon restarts: new process, new instance object, same DAGSTER_HOME and store
    with instance_on(dagster_home) as instance:
        for _ in range(2):
            tick(instance, {})  # a lost cursor must not resend either

    texts = sorted(post["text"] for post in webhook.posts)
    assert len(texts) == 3 and len(mailbox.messages) == 3
    failed, blocked, warned = (next(t for t in texts if month in t) for month in ("2026-10", "2026-11", "2026-12"))
    assert failed.startswith("billops: close of 2026-10 FAILED")
    assert "- rate_usage: ValueError: two price rows overlap for sku vm.small" in failed
    assert f"Run: {UI}/runs/{runs['failed']}" in failed
    assert blocked == (  # the check stopped the step: named once, as a failed check, not again as a failed step
        f"billops: close of 2026-11 FAILED (run {runs['blocked'][:8]})\nFailed checks:\n"
        f"- invoice_drafts / C1_lines_add_up: difference=0.03, failures=2, rows_checked=120\nRun: {UI}/runs/{runs['blocked']}"
    )
    assert "WARN check C11_ticket_credits_reviewed failed in the close of 2026-12" in warned
    assert "tickets / C11_ticket_credits_reviewed: unreviewed=3" in warned
    assert not any("2026-09" in text or runs["good"] in text for text in texts)
    assert sum("Subject: billops: close of 2026-10 FAILED" in message for message in mailbox.messages) == 1

    rows = marts_alerts(tmp_path / "published")
    assert [(kind, str(month), run_id, channels) for kind, month, run_id, channels, _ in rows] == [
        ("run_failed", "2026-10-01", runs["failed"], "webhook,email"),
        ("run_failed", "2026-11-01", runs["blocked"], "webhook,email"),
        ("check_warning", "2026-12-01", runs["warned"], "webhook,email"),
    ]


def test_a_good_close_sends_nothing_and_creates_no_warehouse(tmp_path, receivers):
    webhook, mailbox = receivers
    with dg.DagsterInstance.ephemeral() as instance:
        _close(instance, _close_job(_tickets_with_check(True)), "2026-10")
        tick(instance, {})
        tick(instance, {})
    assert webhook.posts == [] and mailbox.messages == []
    assert store.all_alerts() == []
    assert not (tmp_path / "warehouse.duckdb").exists() and not (tmp_path / "published").exists()


def test_a_held_warehouse_changes_nothing_the_alerts_are_published_without_it(dagster_home, receivers, tmp_path):
    """The sensors never open the warehouse (decisions #60): with another process writing it, each tick sends
    and publishes marts.alerts to the published copy at once, and the warehouse is left as it was."""
    webhook, _ = receivers
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with instance_on(dagster_home) as instance:
            reasons = tick(instance, {})
            again = tick(instance, {})
        assert [reason.rsplit("; ", 1)[1] for reason in reasons] == ["alerts published", "alerts published"]
        assert [reason.rsplit("; ", 1)[1] for reason in again] == ["published alerts up to date"] * 2
        assert len(webhook.posts) == 3  # the channels do not wait for the warehouse
        assert [kind for kind, *_ in marts_alerts(tmp_path / "published")] == ["run_failed", "run_failed", "check_warning"]
    finally:
        holder.kill()
        holder.wait()
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)  # never written


def test_a_failing_channel_is_retried_up_to_the_limit_without_resending_the_others(dagster_home, receivers, monkeypatch, tmp_path):
    webhook, mailbox = receivers
    monkeypatch.setattr(delivery, "RETRY_AFTER", timedelta(0))
    webhook.statuses = [500]  # the webhook fails once, for the first alert sent
    with instance_on(dagster_home) as instance:
        tick(instance, {})
        assert len(webhook.posts) == 3 and len(mailbox.messages) == 3  # retried within the tick (RETRY_AFTER=0)
        first = store.all_alerts()[0]
        assert first.channels == "email,webhook" and first.attempts == 2 and first.sent_at is not None

        store.forget_engines()
        monkeypatch.setenv("BILLOPS_QUEUE_URL", f"sqlite:///{tmp_path / 'second-store.sqlite'}")
        webhook.always = 503  # now the webhook is down for good: 5 attempts per alert, then it is closed with its error
        for _ in range(8):
            tick(instance, {})
    retried = store.all_alerts()
    assert [alert.attempts for alert in retried] == [delivery.MAX_ATTEMPTS] * 3
    assert all(alert.channels == "email" and alert.sent_at is not None and "503" in alert.last_error for alert in retried)
    assert len(webhook.posts) == 3 and len(mailbox.messages) == 6  # each alert mailed once per store, never resent


