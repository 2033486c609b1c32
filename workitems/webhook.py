"""The optional webhook per new work item (BILLOPS_WORKITEM_WEBHOOK_URL, docs/contract/work-items.md).

Posted after the items are committed, one POST per new item, and the outcome goes into the
item's audit trail (`webhook_sent` / `webhook_failed`): a failing webhook never loses an item.
A failed post is not retried; the item is in the queue and in marts.work_items all the same.
The note names the webhook as `scheme://host[:port]` and the failure by its class and status,
never the URL or httpx's own message (which quotes it): the path may carry a token.
"""

from __future__ import annotations

import httpx

from config.redaction import failure_text, redact_logs, safe_url

WEBHOOK_TIMEOUT_SECONDS = 3.0  # a close's work-item step must not wait long on a dead receiver
redact_logs()  # httpx logs each request's full URL at INFO


def post_items(url: str, rows: list[dict]) -> list[tuple[bool, str]]:
    """POST each row (a marts.work_items row as JSON) to the webhook; (ok, note) per row, never raising."""
    outcomes = []
    shown = safe_url(url)
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
        for row in rows:
            try:
                response = client.post(url, json=row)
                outcomes.append((response.is_success, f"POST {shown}: HTTP {response.status_code}"))
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError, and quotes the URL
                outcomes.append((False, f"POST {shown}: {failure_text(exc)}"))
    return outcomes
