"""The optional webhook per new work item (BILLOPS_WORKITEM_WEBHOOK_URL, work-items.md).

Posted after the items are committed, one POST per new item, and the outcome goes into the
item's audit trail (`webhook_sent` / `webhook_failed`): a failing webhook never loses an item.
A failed post is not retried; the item is in the queue and in marts.work_items all the same.
"""

from __future__ import annotations

import os

import httpx
from sqlalchemy import Engine

from workitems.store import as_json_row, get_item, record_event

WEBHOOK_ENV = "BILLOPS_WORKITEM_WEBHOOK_URL"
WEBHOOK_TIMEOUT_SECONDS = 3.0  # a sensor tick must finish well inside Dagster's 60 s


def notify_new_items(engine: Engine, work_item_ids: list[str]) -> None:
    """POST each new item (a marts.work_items row as JSON) to BILLOPS_WORKITEM_WEBHOOK_URL, if set."""
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url or not work_item_ids:
        return
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
        for work_item_id in work_item_ids:
            item = get_item(engine, work_item_id)
            try:
                response = client.post(url, json=as_json_row(item))
                ok, note = response.is_success, f"POST {url}: HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, note = False, f"POST {url}: {type(exc).__name__}: {exc}"
            with engine.begin() as conn:
                record_event(conn, work_item_id, "webhook_sent" if ok else "webhook_failed", "webhook", note)
