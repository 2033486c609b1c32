"""The optional webhook per new work item (BILLOPS_WORKITEM_WEBHOOK_URL, docs/contract/work-items.md).

Posted after the items are committed, one POST per new item, and the outcome goes into the
item's audit trail (`webhook_sent` / `webhook_failed`): a failing webhook never loses an item.
A failed post is not retried; the item is in the queue and in marts.work_items all the same.
"""

from __future__ import annotations

import os

import httpx

WEBHOOK_ENV = "BILLOPS_WORKITEM_WEBHOOK_URL"
WEBHOOK_TIMEOUT_SECONDS = 3.0  # a sensor tick must finish well inside Dagster's 60 s


def webhook_url() -> str:
    return os.environ.get(WEBHOOK_ENV, "").strip()


def post_items(url: str, rows: list[dict]) -> list[tuple[bool, str]]:
    """POST each row (a marts.work_items row as JSON) to the webhook; (ok, note) per row, never raising."""
    outcomes = []
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
        for row in rows:
            try:
                response = client.post(url, json=row)
                outcomes.append((response.is_success, f"POST {url}: HTTP {response.status_code}"))
            except httpx.HTTPError as exc:
                outcomes.append((False, f"POST {url}: {type(exc).__name__}: {exc}"))
    return outcomes
