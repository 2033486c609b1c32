"""Where alerts go: a Slack-compatible webhook and plain SMTP, as config/settings.py reads them.

Every alert is also a log line (logger `billops.alerts`), whether or not a channel is set.
A channel's error is described by `failure_text` and the channel's `safe_url`, never by the
exception's own words: httpx puts the webhook's full URL, token included, into them.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import asdict, dataclass
from email.message import EmailMessage

from config.redaction import failure_text, redact_logs, safe_url
from config.settings import AlertSettings, alert_settings


logger = logging.getLogger("billops.alerts")
redact_logs(logger.name)

# A sensor tick must end well within the daemon's patience; 10 s per channel keeps two channels under 30 s.
SEND_TIMEOUT_SECONDS = 10.0

WEBHOOK = "webhook"
EMAIL = "email"


@dataclass(frozen=True)
class AlertConfig(AlertSettings):
    """The alert settings, with what the senders need to know of them."""

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels this environment configures, in sending order."""
        return tuple(name for name, on in ((WEBHOOK, bool(self.webhook_url)), (EMAIL, bool(self.email_to))) if on)

    def where(self, channel: str) -> str:
        """The channel's destination as it may be shown: `scheme://host[:port]`."""
        if channel == WEBHOOK:
            return safe_url(self.webhook_url)
        return safe_url(f"smtp://{self.smtp_host}:{self.smtp_port}")

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url}/runs/{run_id}"


def alert_config() -> AlertConfig:
    """The alert channels of this environment (docs/contract/controls.md, Alerting; config/settings.py)."""
    return AlertConfig(**asdict(alert_settings()))


def send_webhook(config: AlertConfig, text: str) -> None:
    """POST `{"text": ...}`; a non-2xx answer is an error (Slack answers 200 "ok")."""
    import httpx  # 0.25 s to import: kept off the path of every process that loads the definitions

    response = httpx.post(config.webhook_url, json={"text": text}, timeout=SEND_TIMEOUT_SECONDS)
    response.raise_for_status()


def send_email(config: AlertConfig, text: str) -> None:
    """One plain-text message to every recipient; the subject is the alert's first line."""
    message = EmailMessage()
    message["From"] = config.email_from
    message["To"] = ", ".join(config.email_to)
    message["Subject"] = text.splitlines()[0][:200]
    message.set_content(text)
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=SEND_TIMEOUT_SECONDS) as smtp:
        smtp.send_message(message)


SENDERS = {WEBHOOK: send_webhook, EMAIL: send_email}


def send(config: AlertConfig, channels: tuple[str, ...], text: str) -> tuple[list[str], dict[str, str]]:
    """Try each channel once: (channels sent, {channel: error}). A failing channel never stops the others."""
    sent: list[str] = []
    errors: dict[str, str] = {}
    for channel in channels:
        try:
            SENDERS[channel](config, text)
            sent.append(channel)
        except Exception as error:  # noqa: BLE001 - any failure of a channel is recorded and retried
            errors[channel] = f"{config.where(channel)}: {failure_text(error)}"
            logger.warning("alert channel %s failed: %s", channel, errors[channel])
    return sent, errors
