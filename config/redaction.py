"""Keep URL settings out of errors, logs, audit trails and marts (issue 14 item 3).

A Slack-style webhook carries its token in the path and a database URL its password: only
`safe_url(url)` (`scheme://host[:port]`) may be shown, whoever shows it (an alert, a log line, a work
item's audit trail, an error naming the queue). Three leaks are closed here:
- httpx's exceptions put the full URL into `str(exc)`: `failure_text` describes an error from
  its type and codes (HTTP status, SMTP code, the OS error) and never quotes it;
- httpx logs `HTTP Request: POST <full url> ...` at INFO: `RedactingFilter` on its logger
  rewrites the URL to `scheme://host[:port]`;
- text written by others (a failed step's error quoted in an alert) may still carry a setting:
  `redact` replaces every configured URL setting's value by its safe form.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from config.settings import url_setting_values

# `scheme://user:password@` in any text: the credentials go, whichever URL it is.
CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)


def safe_url(url: str | None) -> str:
    """A URL setting as it may be shown: `scheme://host[:port]`, never its path, query or credentials.

    A Slack-style webhook carries its token in the path and a database URL its password in the
    userinfo, so an error, a log line, an audit trail or a mart only ever gets this form.
    """
    if not url:
        return "(not set)"
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(unparseable URL)"
    if not parts.scheme:
        return "(unparseable URL)"
    if parts.scheme.startswith("sqlite"):
        return url.strip().split("?", 1)[0]  # a local file: its path is where to look, and it carries no credentials
    if not host:
        return f"{parts.scheme}://"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def redact(text: str | None) -> str | None:
    """`text` with each configured URL setting (config/settings.py URL_SETTINGS) shown as
    `scheme://host[:port]` and credentials removed."""
    if not text:
        return text
    for value in url_setting_values():
        if value in text:
            text = text.replace(value, safe_url(value))
    return CREDENTIALS.sub(r"\1***@", text)


def _chain(error: BaseException):
    seen = 0
    while error is not None and seen < 8:
        yield error
        error, seen = error.__cause__ or error.__context__, seen + 1


def failure_text(error: BaseException) -> str:
    """What went wrong, from the exception's class and codes only, never `str(error)`.

    `HTTPStatusError: HTTP 500 Internal Server Error`, `ConnectError: Connection refused`,
    `SMTPDataError: SMTP 554`, `ReadTimeout`: enough to act on, and no URL can be in it.
    """
    name = type(error).__name__
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return f"{name}: HTTP {status} {getattr(response, 'reason_phrase', '') or ''}".rstrip()
    smtp_code = getattr(error, "smtp_code", None)
    if isinstance(smtp_code, int):
        return f"{name}: SMTP {smtp_code}"
    reason = next((e.strerror for e in _chain(error) if isinstance(e, OSError) and e.strerror), None)
    return f"{name}: {reason}" if reason else name


class RedactingFilter(logging.Filter):
    """Rewrites a record's URLs before any handler sees it: httpx's request line, and any setting's value."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "httpx" and isinstance(record.args, tuple) and len(record.args) >= 2:
            record.args = (record.args[0], safe_url(str(record.args[1])), *record.args[2:])
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the handler's to report, not the caller's
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def redact_logs(*names: str) -> None:
    """Put the filter on these loggers (once each); httpx's own logger always."""
    for name in ("httpx", *names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
