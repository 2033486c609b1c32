"""Every environment variable billops reads, read here and nowhere else, each default written once.

A newcomer finds every setting in `DEFAULTS` below; a test (tests/test_layering.py) fails when any
other production module touches `os.environ`. Values are read when asked for, not at import, so a
process (or a test) that sets a variable before it asks sees it. An empty variable counts as unset.

Paths (docs/contract/published-interface.md) are resolved to absolute ones against the directory
the command runs in, so that dbt (which runs in its own project directory) and Dagster see the same
files. URL settings are secrets (a webhook's token is in its path, a database URL carries its
password): show them only through `config.redaction.safe_url`. Nothing here writes the environment.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

# Every variable billops reads → its default ("" = none: the feature is off, or derived below).
DEFAULTS: dict[str, str] = {
    # Where billops reads and writes (relative paths are taken from the directory the command runs in).
    "BILLOPS_LANDING": "data/landing",            # the landing zone, never written by the pipeline
    "BILLOPS_WAREHOUSE": "data/warehouse.duckdb",  # every layer of the warehouse
    "DAGSTER_HOME": ".dagster",                    # the Dagster instance
    "BILLOPS_PUBLISHED": "data/published",        # the copy BI reads
    # The first billing month the Dagster partitions hold (YYYY-MM); none: the earliest month landed
    # (config/partitions.py), so the UI's months start where the data does.
    "BILLOPS_FIRST_MONTH": "",
    # The deployment: picks the dbt target (dbt_project/profiles.yml).
    "BILLOPS_ENV": "local",
    # The operational store (work items, alerts sent); none: ops.sqlite beside the warehouse.
    "BILLOPS_QUEUE_URL": "",
    # Alerts (docs/alerts.md): a Slack-compatible webhook and/or e-mail; none: only logged.
    "BILLOPS_ALERT_WEBHOOK_URL": "",
    "BILLOPS_ALERT_EMAIL_TO": "",                  # comma-separated addresses
    "BILLOPS_ALERT_EMAIL_FROM": "",               # none: billops@<this host's name>
    "BILLOPS_SMTP_HOST": "localhost",
    "BILLOPS_SMTP_PORT": "25",
    "BILLOPS_UI_URL": "http://localhost:3000",     # the Dagster UI, for links in alerts
    # Work items (docs/workitems.md): one POST per new item; none: no webhook.
    "BILLOPS_WORKITEM_WEBHOOK_URL": "",
    # The billing team's console (docs/console.md): where `billops console` listens by default,
    # how long a session lives without a request, the per-kind SLA targets of the queue, and
    # the optional single sign-on through a trusted reverse proxy (a header naming the account,
    # believed only from the listed proxy addresses; none: local passwords only).
    "BILLOPS_CONSOLE_HOST": "127.0.0.1",
    "BILLOPS_CONSOLE_PORT": "8765",
    "BILLOPS_CONSOLE_SESSION_MINUTES": "60",
    "BILLOPS_SLA_HOURS": "refund=48,credit_note=48,payment_extension=24,first_response=4",
    "BILLOPS_CONSOLE_PROXY_HEADER": "",
    "BILLOPS_CONSOLE_TRUSTED_PROXIES": "",
}
ENVIRONMENTS = ("local", "ci", "prod")
# The settings whose values are URLs, and so may carry a secret (config/redaction.py).
URL_SETTINGS = ("BILLOPS_ALERT_WEBHOOK_URL", "BILLOPS_WORKITEM_WEBHOOK_URL", "BILLOPS_QUEUE_URL")


def is_set(name: str) -> bool:
    """True when the variable is set to something (an empty one counts as unset)."""
    return bool(_read(name))


def setting(name: str) -> str:
    """The variable as set, or its default."""
    return _read(name) or DEFAULTS[name]


def _read(name: str) -> str:
    if name not in DEFAULTS:
        raise KeyError(f"{name} is not a billops setting: add it to config/settings.py DEFAULTS")
    return os.environ.get(name, "").strip()


def absolute(value: str | Path) -> Path:
    return Path(value).expanduser().resolve()


@dataclass(frozen=True)
class Settings:
    """Where billops reads and writes, as absolute paths."""

    landing: Path
    warehouse: Path
    dagster_home: Path
    published: Path


def load_settings() -> Settings:
    """BILLOPS_LANDING, BILLOPS_WAREHOUSE, DAGSTER_HOME and BILLOPS_PUBLISHED with their defaults."""
    return Settings(
        landing=absolute(setting("BILLOPS_LANDING")),
        warehouse=absolute(setting("BILLOPS_WAREHOUSE")),
        dagster_home=absolute(setting("DAGSTER_HOME")),
        published=absolute(setting("BILLOPS_PUBLISHED")),
    )


def child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with the path settings made absolute, for the processes `billops close`
    starts (`dagster job launch`, the daemon and its run workers): they work in the project's folder,
    where a relative BILLOPS_LANDING would name another place."""
    return {**os.environ, "BILLOPS_LANDING": str(settings.landing), "BILLOPS_WAREHOUSE": str(settings.warehouse),
            "DAGSTER_HOME": str(settings.dagster_home), "BILLOPS_PUBLISHED": str(settings.published)}


def billops_env() -> str:
    """The deployment environment (the dbt target): local, ci or prod."""
    env = setting("BILLOPS_ENV")
    if env not in ENVIRONMENTS:
        raise ValueError(f"BILLOPS_ENV={env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    return env


def default_ops_path() -> Path:
    """Where the operational store lives without BILLOPS_QUEUE_URL: `ops.sqlite` in the warehouse's folder."""
    return absolute(setting("BILLOPS_WAREHOUSE")).parent / "ops.sqlite"


def ops_store_url() -> str:
    """BILLOPS_QUEUE_URL, or the SQLite file `default_ops_path()`. A secret: show it through safe_url."""
    return setting("BILLOPS_QUEUE_URL") or f"sqlite:///{default_ops_path()}"


def url_setting_values() -> list[str]:
    """The values of the URL settings that are set (what `redact` must never let through)."""
    return [value for value in map(_read, URL_SETTINGS) if value]


def workitem_webhook_url() -> str:
    """BILLOPS_WORKITEM_WEBHOOK_URL, or "" for none. A secret: show it through safe_url."""
    return setting("BILLOPS_WORKITEM_WEBHOOK_URL")


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go (docs/contract/controls.md, Alerting); alerts/channels.py says how they are sent."""

    webhook_url: str | None = field(repr=False)  # a secret: its token is in the path
    email_to: tuple[str, ...]
    smtp_host: str
    smtp_port: int
    email_from: str
    ui_url: str


def alert_settings() -> AlertSettings:
    return AlertSettings(
        webhook_url=setting("BILLOPS_ALERT_WEBHOOK_URL") or None,
        email_to=tuple(address.strip() for address in setting("BILLOPS_ALERT_EMAIL_TO").split(",") if address.strip()),
        smtp_host=setting("BILLOPS_SMTP_HOST"),
        smtp_port=int(setting("BILLOPS_SMTP_PORT")),
        email_from=setting("BILLOPS_ALERT_EMAIL_FROM") or f"billops@{socket.gethostname()}",
        ui_url=setting("BILLOPS_UI_URL").rstrip("/"),
    )


@dataclass(frozen=True)
class ConsoleSettings:
    """The console's settings (docs/console.md). `proxy_header` is honoured only from `trusted_proxies`."""

    host: str
    port: int
    session_minutes: int
    sla_hours: dict[str, int]
    proxy_header: str
    trusted_proxies: tuple[str, ...]


def _sla_hours(text: str) -> dict[str, int]:
    """`kind=hours,...` over the defaults: a setting may name only the kinds it changes."""
    hours = {}
    for part in (DEFAULTS["BILLOPS_SLA_HOURS"] + "," + text).split(","):
        if part.strip():
            kind, _, value = part.partition("=")
            if not value.strip().isdigit() or int(value) <= 0:
                raise ValueError(f"BILLOPS_SLA_HOURS: {part.strip()!r} is not kind=hours (a positive whole number)")
            hours[kind.strip()] = int(value)
    return hours


def console_settings() -> ConsoleSettings:
    return ConsoleSettings(
        host=setting("BILLOPS_CONSOLE_HOST"),
        port=int(setting("BILLOPS_CONSOLE_PORT")),
        session_minutes=int(setting("BILLOPS_CONSOLE_SESSION_MINUTES")),
        sla_hours=_sla_hours(_read("BILLOPS_SLA_HOURS")),
        proxy_header=setting("BILLOPS_CONSOLE_PROXY_HEADER"),
        trusted_proxies=tuple(a.strip() for a in setting("BILLOPS_CONSOLE_TRUSTED_PROXIES").split(",") if a.strip()),
    )
