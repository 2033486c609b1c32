"""The Dagster UI in a real browser (Playwright driving Debian's chromium) on a closed scenario.

The scenario: the golden October closed by the real `billops close` (the session's
`closed_golden`), copied, then November closed with one landed day holding a SKU the
price book does not know, so C9 fails with its numbers and nothing is issued. The
UI must show (a) the lineage from the landed usage to marts/invoices, (b) the failed
control with its numbers, (c) a plot of numeric metadata across the two closes.

Screenshots go to a temp folder; `BILLOPS_UPDATE_SCREENSHOTS=1` writes them to
docs/screenshots/ (the README shows those).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, copy_workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "docs" / "screenshots"
UNPRICED_SKU = "gpu-h100-unpriced"

pytestmark = pytest.mark.xdist_group("ui")  # one dagster dev and one browser for the module, on one worker


def _no_browser_reason() -> str | None:
    if not CHROMIUM.exists():
        return (f"!!! BROWSER TESTS SKIPPED: {CHROMIUM} is missing (make install-browser needs apt-get as root: "
                "apt-get install chromium) !!!")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "!!! BROWSER TESTS SKIPPED: playwright is not installed (make install installs the dev extra) !!!"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _land_november_with_an_unpriced_sku(ws) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)

    def event(event_id: str, customer: str, resource: str, sku: str, hour: int) -> dict:
        return {"event_id": event_id, "customer_id": customer, "resource_id": resource, "sku": sku, "region": "fra1",
                "start_time": start + timedelta(hours=hour), "end_time": start + timedelta(hours=hour + 1),
                "quantity": Decimal("1")}

    rows = [event(f"nov-{h}", "c001", "r001", "droplet-s-1vcpu-1gb", h) for h in range(24)]
    rows += [event(f"nov-gpu-{h}", "c002", "gpu-1", UNPRICED_SKU, h) for h in range(3)]
    ws.write_usage("usage/dt=2026-11-01/part-0.parquet", rows)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("BILLOPS_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def ui(closed_golden, tmp_path_factory):
    """dagster dev on October closed and November failed on C9; yields its base URL."""
    reason = _no_browser_reason()
    if reason:
        print(f"\n{reason}\n", file=sys.stderr)
        pytest.skip(reason)
    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    ws = copy_workspace(closed_golden.ws, tmp_path_factory.mktemp("ui") / "ws")
    _land_november_with_an_unpriced_sku(ws)
    november = ws.close("2026-11", "--allow-missing-days")
    assert november.returncode == 1 and "C9_usage_is_priced" in november.stderr, november.stderr[-3000:]

    port = _free_port()
    venv_bin = str(Path(sys.executable).parent)
    env = {**ws.env, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),  # dagster-dbt finds `dbt` on PATH
           "BILLOPS_PUBLISHED": str(ws.root / "published")}
    process = subprocess.Popen(
        ["setsid", "env", "--default-signal=INT,TERM", os.path.join(venv_bin, "dagster"), "dev", "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:  # the webserver answers before the code location is loaded: wait for the location
            try:
                answer = httpx.post(f"{base}/graphql", timeout=5, json={"query": (
                    "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename } } } } }")})
                entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
                if entries and all(e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                                   for e in entries):
                    break
                assert not any(e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "PythonError"
                               for e in entries), f"the code location failed to load: {answer.text[:2000]}"
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                pass
            assert time.time() < deadline, "dagster dev did not load the code location in 120 s"
            time.sleep(1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def browser(ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.set_default_timeout(30_000)
    # A fresh instance greets the first visitor with a newsletter dialog: dismiss it whenever it shows.
    page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda dialog: dialog.click())
    yield page
    context.close()


def test_the_lineage_runs_from_the_landed_usage_to_the_invoices(ui, page, shots):
    page.goto(f"{ui}/assets/raw/usage?view=lineage&lineageScope=downstream&lineageDepth=12")
    graph = page.locator("body")
    for node in ("usage", "stg_usage__events", "int_usage_daily", "issued_invoices", "invoices", "invoice_lines"):
        page.get_by_text(node, exact=True).first.wait_for()
    # the groups the path crosses, landing to marts, are drawn as boxes
    for group in ("landing", "staging", "intermediate", "issuing", "marts"):
        assert graph.get_by_text(group, exact=True).count() >= 1, group
    page.get_by_text("invoices", exact=True).first.hover()  # highlights its edges in the screenshot
    page.screenshot(path=str(shots / "lineage-usage-to-invoices.png"))

    # and upstream from the invoices: the issued copy, then the drafts
    page.goto(f"{ui}/assets/marts/invoices?view=lineage&lineageScope=upstream&lineageDepth=1")
    page.get_by_text("issued_invoices", exact=True).first.wait_for()


def test_the_failed_control_shows_its_numbers_in_the_checks_view(ui, page, shots):
    page.goto(f"{ui}/assets/raw/usage?view=checks")
    c9 = page.get_by_text("C9_usage_is_priced", exact=True).first
    c9.wait_for()
    c9.click()
    page.get_by_text("Execution history", exact=True).click()
    failed = page.get_by_role("row").filter(has_text="C9 failed")
    failed.first.wait_for()
    assert "3 usage rows quarantined as no_price" in failed.first.inner_text()
    assert UNPRICED_SKU in failed.first.inner_text()
    # the October close passed the same check: both evaluations are in the history
    page.get_by_role("row").filter(has_text="C9: every usage row is priced").first.wait_for()
    page.screenshot(path=str(shots / "checks-c9-failed.png"))
    failed.first.get_by_role("button").last.click()  # the evaluation's metadata
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    values = [line.strip() for line in dialog.inner_text().splitlines() if line.strip()]
    assert values[values.index("no_price_rows") + 1] == "3", values
    assert "skus" in values and "examples" in values, values
    page.screenshot(path=str(shots / "checks-c9-metadata.png"))


def test_numeric_metadata_is_plotted_across_the_two_closes(ui, page, shots):
    page.goto(f"{ui}/assets/raw/usage?view=overview")
    page.get_by_text("rows_read", exact=True).first.wait_for()
    page.get_by_text("Plots", exact=True).first.click()
    plot = page.locator("canvas").first  # the plots are chart.js canvases, one per numeric label
    plot.wait_for()
    assert page.locator("canvas").count() >= 3  # files, rows_read, accepted, ...
    page.get_by_text("rows_read", exact=True).first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "plot-usage-rows-read.png"))
