"""Issue 14 item 3: a URL setting is shown as `scheme://host[:port]` only. A Slack-style webhook's
token is in its path: with the real local receiver answering 500, then with nothing listening,
the token appears in no alert error (`last_error`), no row of marts.alerts, no log record (httpx's
own request line included), and no note of the work-item audit trail. Real sensor ticks, the
SQLite stores, a DuckDB warehouse file."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import dagster as dg
import duckdb
import pytest

from alerts import delivery, store
from config.redaction import failure_text, redact
from tests.alerts.receivers import Webhook, failing_close, free_port, tick
from workitems.store import get_item, queue_engine, raise_items

TOKEN = "T0BILLOPS/B0SECRET/xoxb-4711-do-not-leak"


@dg.op
def post_work_items():
    raise RuntimeError(f"POST {os.environ['BILLOPS_WORKITEM_WEBHOOK_URL']} answered 401. Check the token.")


@dg.job(name="close_month_job")
def close_quoting_a_setting():
    post_work_items()


def _everything_kept(published) -> str:
    """All that the store, the published mart and the alert texts hold, as one text to search."""
    with duckdb.connect(str(published / "billops.duckdb"), read_only=True) as connection:
        mart = connection.execute("SELECT * FROM marts.alerts").fetchall()
    return repr([vars(alert) for alert in store.all_alerts()]) + repr(mart)


def test_a_failing_alert_webhook_never_shows_its_token(receivers, monkeypatch, tmp_path, caplog):
    webhook, mailbox = receivers
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(delivery, "RETRY_AFTER", timedelta(0))
    port = webhook.server.server_port
    monkeypatch.setenv("BILLOPS_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{port}/services/{TOKEN}")
    webhook.always = 500
    with dg.DagsterInstance.ephemeral() as instance:
        failing_close.execute_in_process(instance=instance, raise_on_error=False, tags={"dagster/partition": "2026-10-01"})
        for _ in range(delivery.MAX_ATTEMPTS):
            tick(instance, {})
        (answered_500,) = store.all_alerts()
        assert answered_500.attempts == delivery.MAX_ATTEMPTS and answered_500.channels == "email"
        assert answered_500.last_error == f"webhook: http://127.0.0.1:{port}: HTTPStatusError: HTTP 500 Internal Server Error"

        # Nothing listens on the webhook's port, nor on the mail relay's.
        dead, relay = free_port(), free_port()
        monkeypatch.setenv("BILLOPS_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{dead}/services/{TOKEN}")
        monkeypatch.setenv("BILLOPS_SMTP_PORT", str(relay))
        failing_close.execute_in_process(instance=instance, raise_on_error=False, tags={"dagster/partition": "2026-11-01"})
        for _ in range(delivery.MAX_ATTEMPTS):
            tick(instance, {})
    unreachable = store.fetch(next(a.dedup_key for a in store.all_alerts() if a.billing_month.month == 11))
    assert unreachable.last_error == (f"webhook: http://127.0.0.1:{dead}: ConnectError: Connection refused; "
                                      f"email: smtp://127.0.0.1:{relay}: ConnectionRefusedError: Connection refused")

    kept = _everything_kept(tmp_path / "published")
    assert "HTTP 500 Internal Server Error" in kept and f"127.0.0.1:{dead}: ConnectError" in kept  # the mart was written
    assert TOKEN.split("/")[-1] not in kept and "/services/" not in kept
    logged = caplog.text
    assert f'HTTP Request: POST http://127.0.0.1:{port} "HTTP/1.0 500 Internal Server Error"' in logged  # httpx's line, cut
    assert f"alert channel webhook failed: http://127.0.0.1:{dead}: ConnectError: Connection refused" in logged
    assert "do-not-leak" not in logged and "/services/" not in logged
    assert webhook.posts == [] and len(mailbox.messages) == 1


def test_a_setting_quoted_by_a_failed_step_is_shown_as_scheme_host_port(receivers, monkeypatch, tmp_path, caplog):
    webhook, _ = receivers
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("BILLOPS_WORKITEM_WEBHOOK_URL", f"https://hooks.billops.test/services/{TOKEN}")
    with dg.DagsterInstance.ephemeral() as instance:
        close_quoting_a_setting.execute_in_process(instance=instance, raise_on_error=False,
                                                   tags={"dagster/partition": "2026-10-01"})
        tick(instance, {})
    (text,) = [post["text"] for post in webhook.posts]
    assert "- post_work_items: RuntimeError: POST https://hooks.billops.test answered 401. Check the token." in text
    assert "do-not-leak" not in _everything_kept(tmp_path / "published")
    assert "do-not-leak" not in caplog.text


def test_the_work_item_webhook_audit_trail_names_only_scheme_host_port(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    engine = queue_engine(f"sqlite:///{tmp_path / 'queue.sqlite'}")
    receiver = Webhook()
    receiver.always = 500
    item = {"kind": "credit_note", "rule": "R1", "customer_id": "CUST-0002", "invoice_number": "BO-202610-000002",
            "amount": "40.00", "reason": "restated lower, unpaid", "evidence": {"difference": "-40.00"}}
    try:
        monkeypatch.setenv("BILLOPS_WORKITEM_WEBHOOK_URL", f"{receiver.url}/{TOKEN}")
        ((first, created),) = raise_items(engine, [item])
    finally:
        receiver.close()
    dead = free_port()
    monkeypatch.setenv("BILLOPS_WORKITEM_WEBHOOK_URL", f"http://127.0.0.1:{dead}/services/{TOKEN}")
    ((second, _),) = raise_items(engine, [{**item, "invoice_number": "BO-202610-000003"}])

    notes = [(e["action"], e["note"]) for key in (first, second) for e in get_item(engine, key)["events"]][1::2]
    assert created and notes == [
        ("webhook_failed", f"POST http://127.0.0.1:{receiver.server.server_port}: HTTP 500"),
        ("webhook_failed", f"POST http://127.0.0.1:{dead}: ConnectError: Connection refused"),
    ]
    assert "do-not-leak" not in repr([get_item(engine, key) for key in (first, second)])
    assert f"POST http://127.0.0.1:{receiver.server.server_port} " in caplog.text  # httpx's request line, cut
    assert "do-not-leak" not in caplog.text


@pytest.mark.parametrize("setting", ["BILLOPS_ALERT_WEBHOOK_URL", "BILLOPS_WORKITEM_WEBHOOK_URL", "BILLOPS_QUEUE_URL"])
def test_redact_shows_every_url_setting_as_scheme_host_port(monkeypatch, setting):
    monkeypatch.setenv(setting, "postgresql+psycopg://billops:hunter2@db.billops.test:5432/ops?sslmode=require")
    said = redact("could not connect to postgresql+psycopg://billops:hunter2@db.billops.test:5432/ops?sslmode=require")
    assert said == "could not connect to postgresql+psycopg://db.billops.test:5432"
    assert redact("unset elsewhere: mysql://root:secret@10.0.0.5/x") == "unset elsewhere: mysql://***@10.0.0.5/x"


def test_failure_text_never_quotes_the_exception():
    import httpx

    request = httpx.Request("POST", f"https://hooks.billops.test/services/{TOKEN}")
    status = httpx.HTTPStatusError(f"Server error for url '{request.url}'", request=request,
                                   response=httpx.Response(503, request=request))
    assert f"{TOKEN}" in str(status)  # what httpx would have written
    assert failure_text(status) == "HTTPStatusError: HTTP 503 Service Unavailable"
    assert failure_text(httpx.InvalidURL(f"Invalid URL {request.url}")) == "InvalidURL"


def test_a_malformed_work_item_webhook_url_is_a_note_not_an_error():
    """httpx.InvalidURL is not an httpx.HTTPError and its message quotes the URL: it used to escape the sensor."""
    from workitems.webhook import post_items

    assert post_items(f"http://hooks.billops.test:abc/services/{TOKEN}", [{"work_item_id": "WI-000001"}]) == [
        (False, "POST (unparseable URL): InvalidURL")]
