"""Alerts end to end: real runs in a real Dagster instance, real sensor ticks, a local HTTP
receiver and a local SMTP server, the SQLite alert store and a DuckDB warehouse file."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from aiosmtpd.controller import Controller

from alerts import delivery, store
from alerts.dead_runs import PID_START_TAG, reap_dead_runs, run_tags
from orchestration.sensors import alert_on_failed_close_sensor, alert_on_failed_warning_check_sensor

UI = "http://billops.test:3000"


# --- a tiny close_month_job in four outcomes -------------------------------------------------


@dg.op
def rate_usage():
    raise ValueError("two price rows overlap for sku vm.small")


@dg.job(name="close_month_job")
def failing_close():
    rate_usage()


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


def _instance(home: Path) -> dg.DagsterInstance:
    """A persistent instance on `home`; one event-log database and no captured stdout keep runs at ~0.5 s."""
    return dg.DagsterInstance.local_temp(
        str(home),
        overrides={
            "event_log_storage": {
                "module": "dagster.core.storage.event_log",
                "class": "ConsolidatedSqliteEventLogStorage",
                "config": {"base_dir": str(home / "history")},
            },
            "compute_logs": {"module": "dagster.core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"},
        },
    )


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory) -> Path:
    """One instance holding a failed close, a close stopped by a blocking check, a close with a
    failed warning check and a good close (runs are read-only for the tests that share it)."""
    home = tmp_path_factory.mktemp("dagster")
    with _instance(home) as instance:
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


# --- local receivers ---------------------------------------------------------------------------


class Webhook:
    """A Slack-like receiver: records each JSON body; answers with the next queued status (200 once empty)."""

    def __init__(self):
        self.posts: list[dict] = []
        self.statuses: list[int] = []
        self.always: int | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.always or (receiver.statuses.pop(0) if receiver.statuses else 200)
                if status == 200:
                    receiver.posts.append(body)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(envelope.content.decode())
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def receivers(tmp_path, monkeypatch):
    webhook, mailbox = Webhook(), Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    monkeypatch.delenv("BILLOPS_QUEUE_URL", raising=False)
    monkeypatch.setenv("BILLOPS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("BILLOPS_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("BILLOPS_ALERT_EMAIL_TO", "oncall@billops.test")
    monkeypatch.setenv("BILLOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BILLOPS_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("BILLOPS_UI_URL", UI)
    yield webhook, mailbox
    smtp.stop()
    webhook.close()
    store.forget_engines()


def _tick(instance, cursors: dict) -> list[str]:
    """One tick of each sensor, as the daemon does it, carrying each sensor's cursor."""
    reasons = []
    for sensor in (alert_on_failed_close_sensor, alert_on_failed_warning_check_sensor):
        context = dg.build_sensor_context(instance=instance, cursor=cursors.get(sensor.name))
        reasons.append(sensor(context).skip_message)
        cursors[sensor.name] = context.cursor
    return reasons


def _marts_alerts(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute("SELECT kind, billing_month, run_id, channels, text FROM marts.alerts ORDER BY billing_month").fetchall()


# --- tests -------------------------------------------------------------------------------------


def test_each_failure_alerts_once_across_ticks_and_a_restart(dagster_home, receivers, tmp_path):
    webhook, mailbox = receivers
    runs = _runs(dagster_home)
    cursors: dict = {}
    with _instance(dagster_home) as instance:
        for _ in range(3):
            _tick(instance, cursors)
    store.forget_engines()  # the daemon restarts: new process, new instance object, same DAGSTER_HOME and store
    with _instance(dagster_home) as instance:
        for _ in range(2):
            _tick(instance, {})  # a lost cursor must not resend either

    texts = sorted(post["text"] for post in webhook.posts)
    assert len(texts) == 3 and len(mailbox.messages) == 3
    failed, blocked, warned = (next(t for t in texts if month in t) for month in ("2026-10", "2026-11", "2026-12"))
    assert failed.startswith("billops: close of 2026-10 FAILED")
    assert "- rate_usage: ValueError: two price rows overlap for sku vm.small" in failed
    assert f"Run: {UI}/runs/{runs['failed']}" in failed
    assert "invoice_drafts / C1_lines_add_up: difference=0.03, failures=2, rows_checked=120" in blocked
    assert "- invoice_drafts: DagsterAssetCheckFailedError" in blocked
    assert f"{UI}/runs/{runs['blocked']}" in blocked
    assert "WARN check C11_ticket_credits_reviewed failed in the close of 2026-12" in warned
    assert "tickets / C11_ticket_credits_reviewed: unreviewed=3" in warned
    assert not any("2026-09" in text or runs["good"] in text for text in texts)
    assert sum("Subject: billops: close of 2026-10 FAILED" in message for message in mailbox.messages) == 1

    rows = _marts_alerts(tmp_path / "warehouse.duckdb")
    assert [(kind, str(month), run_id, channels) for kind, month, run_id, channels, _ in rows] == [
        ("run_failed", "2026-10-01", runs["failed"], "webhook,email"),
        ("run_failed", "2026-11-01", runs["blocked"], "webhook,email"),
        ("check_warning", "2026-12-01", runs["warned"], "webhook,email"),
    ]


def test_a_good_close_sends_nothing_and_creates_no_warehouse(tmp_path, receivers):
    webhook, mailbox = receivers
    with dg.DagsterInstance.ephemeral() as instance:
        _close(instance, _close_job(_tickets_with_check(True)), "2026-10")
        _tick(instance, {})
        _tick(instance, {})
    assert webhook.posts == [] and mailbox.messages == []
    assert store.all_alerts() == []
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_a_busy_warehouse_defers_marts_alerts_to_a_later_tick(dagster_home, receivers, tmp_path):
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
        with _instance(dagster_home) as instance:
            reasons = _tick(instance, {})
        assert all(reason.endswith("mirror skipped: warehouse busy") for reason in reasons)
        assert len(webhook.posts) == 3  # the channels do not wait for the warehouse
    finally:
        holder.kill()
        holder.wait()
    with _instance(dagster_home) as instance:
        reasons = _tick(instance, {})
    assert reasons[0].endswith("mirrored") and len(webhook.posts) == 3
    assert len(_marts_alerts(warehouse)) == 3


def test_a_failing_channel_is_retried_up_to_the_limit_without_resending_the_others(dagster_home, receivers, monkeypatch, tmp_path):
    webhook, mailbox = receivers
    monkeypatch.setattr(delivery, "RETRY_AFTER", timedelta(0))
    webhook.statuses = [500]  # the webhook fails once, for the first alert sent
    with _instance(dagster_home) as instance:
        _tick(instance, {})
        assert len(webhook.posts) == 3 and len(mailbox.messages) == 3  # retried within the tick (RETRY_AFTER=0)
        first = store.all_alerts()[0]
        assert first.channels == "email,webhook" and first.attempts == 2 and first.sent_at is not None

        store.forget_engines()
        monkeypatch.setenv("BILLOPS_QUEUE_URL", f"sqlite:///{tmp_path / 'second-store.sqlite'}")
        webhook.always = 503  # now the webhook is down for good: 5 attempts per alert, then it is closed with its error
        for _ in range(8):
            _tick(instance, {})
    retried = store.all_alerts()
    assert [alert.attempts for alert in retried] == [delivery.MAX_ATTEMPTS] * 3
    assert all(alert.channels == "email" and alert.sent_at is not None and "503" in alert.last_error for alert in retried)
    assert len(webhook.posts) == 3 and len(mailbox.messages) == 6  # each alert mailed once per store, never resent


def test_a_killed_close_is_failed_and_alerted_once(tmp_path, receivers):
    webhook, _ = receivers
    exited = subprocess.Popen(["sleep", "0"])
    exited.wait()
    host = socket.gethostname()
    with dg.DagsterInstance.ephemeral() as instance:

        def started_run(month: str, tags: dict) -> str:
            run = instance.create_run_for_job(
                failing_close, status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": f"{month}-01", **tags}
            )
            return run.run_id

        dead = started_run("2026-10", {"billops/pid": str(exited.pid), "billops/host": host})
        reused = started_run("2026-11", {**run_tags(), PID_START_TAG: "1"})  # our pid, but a different process start
        alive = started_run("2026-12", run_tags())

        assert sorted(reap_dead_runs(instance)) == sorted([dead, reused])
        assert reap_dead_runs(instance) == []
        statuses = {run_id: instance.get_run_by_id(run_id).status for run_id in (dead, reused, alive)}
        assert statuses == {dead: dg.DagsterRunStatus.FAILURE, reused: dg.DagsterRunStatus.FAILURE, alive: dg.DagsterRunStatus.STARTED}

        for _ in range(3):
            reasons = _tick(instance, {})
    assert reasons[0].endswith("mirror deferred: a close is running")  # the live close keeps the warehouse
    texts = [post["text"] for post in webhook.posts]
    assert len(texts) == 2
    dead_text = next(text for text in texts if dead in text)
    assert "close of 2026-10 FAILED" in dead_text
    assert f"Run failure: billops close process {exited.pid} on {host} is gone" in dead_text
