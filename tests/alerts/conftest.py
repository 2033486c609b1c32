"""The `receivers` fixture: a local webhook and SMTP server wired into the alert environment."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller

from alerts import store
from tests.alerts.receivers import UI, Mailbox, Webhook, free_port


@pytest.fixture
def receivers(tmp_path, monkeypatch):
    webhook, mailbox = Webhook(), Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    monkeypatch.delenv("BILLOPS_QUEUE_URL", raising=False)
    monkeypatch.setenv("BILLOPS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("BILLOPS_PUBLISHED", str(tmp_path / "published"))  # where the sensors publish marts.alerts
    monkeypatch.setenv("BILLOPS_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("BILLOPS_ALERT_EMAIL_TO", "oncall@billops.test")
    monkeypatch.setenv("BILLOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BILLOPS_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("BILLOPS_UI_URL", UI)
    yield webhook, mailbox
    smtp.stop()
    webhook.close()
    store.forget_engines()
