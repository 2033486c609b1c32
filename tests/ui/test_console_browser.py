"""The console in a real browser: uvicorn serving the real app, Playwright driving Debian's chromium.

On the session's generated chain (two closed months, copied: tests/console_workspace.py): a
specialist logs in, finds a refund over $100 in the queue, assigns it to herself and proposes it
(approval 1 of 2), is refused a second approval, logs out; an approver logs in and approves it;
the item page then shows both approvers and the audit trail through the console channel. The
pages load nothing from another origin (every request the browser makes is to the console).

Screenshots go to a temp folder; `BILLOPS_UPDATE_SCREENSHOTS=1` writes them to docs/screenshots/
(the README shows those).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.console_workspace import PASSWORD, build
from tests.ui.test_dagster_ui import _free_port, _no_browser_reason, launched_chromium

pytestmark = pytest.mark.skipif(_no_browser_reason() is not None, reason=_no_browser_reason() or "")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("BILLOPS_UPDATE_SCREENSHOTS") == "1":
        (REPO / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
        return REPO / "docs" / "screenshots"
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def console(generated_chain, tmp_path_factory):
    """uvicorn serving the console on a free port, in a thread of this process: (base URL, workspace)."""
    import uvicorn

    from console.app import create_app

    cws = build(generated_chain, tmp_path_factory.mktemp("console-browser"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cws.published, cws.queue_url, settings=cws.settings()),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", cws
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(console):
    with launched_chromium() as chromium:
        yield chromium


def log_in(browser, base: str, name: str, requests: list[str]):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{base}/queue")
    assert page.url.endswith("/login")  # not logged in: sent to the login page
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/queue")
    assert page.inner_text("#whoami").startswith(name)
    return page


def test_a_specialist_and_an_approver_work_a_refund_end_to_end(console, browser, shots):
    base, cws = console
    work_item_id = cws.four_eyes_item
    requests: list[str] = []

    sam = log_in(browser, base, "sam", requests)
    row = sam.locator(f'tr[data-item="{work_item_id}"]')
    assert row.count() == 1 and "0/2" in row.inner_text()
    sam.screenshot(path=str(shots / "console-queue.png"), full_page=False)
    row.locator("a").first.click()
    sam.wait_for_url(f"{base}/items/{work_item_id}")
    sam.click("#assign")
    sam.wait_for_selector("#message")
    assert sam.inner_text("#assignee") == "sam"
    sam.click("#approve")
    sam.wait_for_selector("#message")
    assert "approval 1 of 2 recorded by sam" in sam.inner_text("#message")
    # the page offers sam no second approval; forcing the form anyway is refused by the server
    assert sam.locator("#approve").count() == 0
    sam.evaluate("""id => { const f = document.createElement('form'); f.method = 'post'; f.action = `/items/${id}/approve`;
        const t = document.createElement('input'); t.name = 'csrf_token';
        t.value = document.querySelector('input[name=csrf_token]').value; f.appendChild(t); document.body.appendChild(f); f.submit(); }""",
                 work_item_id)
    sam.wait_for_selector("#error")
    assert "four eyes" in sam.inner_text("#error") and sam.inner_text("#status") == "open"
    sam.click("text=Log out")
    sam.wait_for_url(f"{base}/login")

    ann = log_in(browser, base, "ann", requests)
    ann.goto(f"{base}/items/{work_item_id}")
    ann.click("#approve")
    ann.wait_for_selector("#message")
    assert f"{work_item_id} approved by sam and ann" in ann.inner_text("#message")
    assert ann.inner_text("#status") == "approved"
    trail = ann.inner_text("#audit")
    assert "approval_recorded\tsam\tconsole" in trail and "approved\tann\tconsole" in trail and "assigned\tsam\tconsole" in trail
    ann.screenshot(path=str(shots / "console-item.png"), full_page=True)

    # the other pages a lead shows management, for the README
    ann.goto(f"{base}/items/{work_item_id}")
    number = ann.locator("a[href^='/invoices/']").first.inner_text()
    customer = ann.locator("a[href^='/customers/']").first.inner_text()
    ann.goto(f"{base}/search")
    ann.fill("#q", number)
    ann.keyboard.press("Enter")
    ann.wait_for_url(f"{base}/invoices/{number}")
    ann.locator("#lines details").first.evaluate("d => d.open = true")
    assert ann.locator("#lines [data-file]").count() > 0
    ann.screenshot(path=str(shots / "console-invoice.png"), full_page=False)
    ann.goto(f"{base}/customers/{customer}")
    assert number in ann.inner_text("#invoices")
    ann.screenshot(path=str(shots / "console-customer.png"), full_page=False)
    ann.goto(f"{base}/kpis")
    ann.wait_for_selector(".plot-container")  # Plotly drew, from the console's own copy of its script
    ann.screenshot(path=str(shots / "console-kpis.png"), full_page=False)
    ann.goto(f"{base}/reports/2026-10")
    ann.wait_for_selector(".plot-container")
    ann.screenshot(path=str(shots / "console-report.png"), full_page=False)

    assert requests and all(url.startswith(base) for url in requests), [u for u in requests if not u.startswith(base)]
