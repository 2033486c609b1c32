"""The Dagster UI on a closed scenario: one `dagster-webserver`, read through GraphQL and in a real browser.

The scenario: the golden October closed by the real `billops close` (the session's
`closed_golden`, whose first close was killed) and November after it (the session's
`closed_november`), copied; December closed with one landed day holding a SKU the price
book does not know, so C9 fails with its numbers and nothing is issued. GraphQL must show the runs and
the lineage from the landed usage to an invoice line; the browser (Playwright driving
Debian's chromium) must show (a) the lineage from the landed usage to marts/invoices,
(b) the failed control with its numbers, (c) the billing KPIs plotted across the closed months.

Screenshots go to a temp folder; `BILLOPS_UPDATE_SCREENSHOTS=1` writes them to
docs/screenshots/ (the README shows those).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from config.billing_month import BillingMonth
from tests.conftest import REPO, copy_workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "docs" / "screenshots"
UNPRICED_SKU = "gpu-h100-unpriced"

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


def _land_a_day(ws, day: str, unpriced_hours: int = 0) -> None:
    """c001's droplet for 24 hours of `day`, and c002 on a GPU SKU the price book lacks for `unpriced_hours`."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)

    def event(event_id: str, customer: str, resource: str, sku: str, hour: int) -> dict:
        return {"event_id": event_id, "customer_id": customer, "resource_id": resource, "sku": sku, "region": "fra1",
                "start_time": start + timedelta(hours=hour), "end_time": start + timedelta(hours=hour + 1),
                "quantity": Decimal("1")}

    rows = [event(f"{day}-{h}", "c001", "r001", "droplet-s-1vcpu-1gb", h) for h in range(24)]
    rows += [event(f"{day}-gpu-{h}", "c002", "gpu-1", UNPRICED_SKU, h) for h in range(unpriced_hours)]
    ws.write_usage(f"usage/dt={day}/part-0.parquet", rows)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("BILLOPS_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def scenario(closed_november, tmp_path_factory):
    """October (golden) and November (tests/golden_november.py) issued, December failed on C9: the workspace."""
    assert closed_november.result.returncode == 0, closed_november.result.stderr[-3000:]
    ws = copy_workspace(closed_november.ws, tmp_path_factory.mktemp("ui") / "ws")
    _land_a_day(ws, "2026-12-01", unpriced_hours=3)
    december = ws.close("2026-12", "--allow-missing-days")
    assert december.returncode == 1 and "C9_usage_is_priced" in december.stderr, december.stderr[-3000:]
    return ws


@pytest.fixture(scope="module")
def ui(scenario):
    """The Dagster UI on the scenario (a copy): its base URL.

    `dagster-webserver`, the UI process that `dagster dev` starts, on the same workspace.yaml and
    instance. Not `dagster dev`, whose daemon would tick the alert and work-item sensors (tested
    with real ticks in tests/alerts and tests/workitems) and whose code server re-parses the dbt
    project at load: ~20 s of CPU that shows nothing more in the UI.
    """
    ws = scenario
    port = _free_port()
    venv_bin = str(Path(sys.executable).parent)
    env = {**ws.env, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),  # dagster-dbt finds `dbt` on PATH
           "BILLOPS_PUBLISHED": str(ws.root / "published"),
           "BILLOPS_FIRST_MONTH": ""}  # as deployed: the months start at the first month landed (decision #97)
    process = subprocess.Popen(
        ["setsid", "env", "--default-signal=INT,TERM", os.path.join(venv_bin, "dagster-webserver"), "-w",
         "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
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
            assert time.time() < deadline, "dagster-webserver did not load the code location in 120 s"
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
    reason = _no_browser_reason()
    if reason:
        print(f"\n{reason}\n", file=sys.stderr)
        pytest.skip(reason)
    with launched_chromium() as chromium:
        yield chromium


@contextmanager
def launched_chromium():
    """Debian's chromium driven by Playwright (its own browser download cannot work here), closed after."""
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


def test_the_billing_kpis_are_plotted_across_the_closed_months(ui, page, shots):
    page.goto(f"{ui}/assets/marts/kpi_billing_monthly?view=overview")
    page.get_by_text("invoices_issued", exact=True).first.wait_for()
    page.get_by_text("Plots", exact=True).first.click()
    page.locator("canvas").first.wait_for()  # the plots are chart.js canvases, one per numeric label
    assert page.locator("canvas").count() >= 5  # invoices_issued, invoiced_amount, accuracy, AR, DSO, ...
    page.locator("canvas").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "plot-kpi-billing-monthly.png"))
    # The plots' axis is the asset's partition keys: from October, the first month landed, to the later
    # of December (landed) and the current month, not from 2020 (issue 17, decision #97).
    keys = _graphql(ui, '{ assetNodeOrError(assetKey: {path: ["marts", "kpi_billing_monthly"]}) '
                        '{ ... on AssetNode { partitionKeys } } }')["assetNodeOrError"]["partitionKeys"]
    last = max(BillingMonth(2026, 12), BillingMonth.of(datetime.now(UTC)))
    assert (keys[0], keys[-1], len(keys)) == ("2026-10-01", last.partition_key, 3 + (last.year - 2026) * 12 + last.month - 12)


# --- the same UI read through GraphQL (no browser needed) ------------------------------------------


def _graphql(base: str, query: str) -> dict:
    response = httpx.post(f"{base}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def test_the_runs_of_every_close_are_in_the_instance(ui):
    runs = _graphql(ui, "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }")
    months = {}
    for run in runs["runsOrError"]["results"]:
        if run["jobName"] == "close_month_job":
            tags = {t["key"]: t["value"] for t in run["tags"]}
            months.setdefault(tags["dagster/partition"], []).append(run["status"])
    # The session's first close was killed with -9 (reaped: FAILURE); December failed on C9.
    assert {month: sorted(statuses) for month, statuses in months.items()} == {
        "2026-10-01": ["FAILURE", "SUCCESS"], "2026-11-01": ["SUCCESS"], "2026-12-01": ["FAILURE"]}


def test_the_lineage_runs_from_a_landed_file_to_an_invoice_line(ui, scenario):
    def upstream(path: list[str]) -> set[tuple]:
        node = _graphql(ui, '{ assetNodeOrError(assetKey: {path: %s}) { ... on AssetNode { dependencyKeys { path } } } }'
                        % str(path).replace("'", '"'))
        return {tuple(k["path"]) for k in node["assetNodeOrError"]["dependencyKeys"]}

    # invoice_lines ← int_invoice_lines_open (an open month's drafts, decisions #80) ← int_invoice_lines_drafted
    # ← int_invoice_lines ← int_lines_hourly_capped
    # ← int_resource_usage_monthly ← int_usage_daily_priced ← int_usage_daily ← stg_usage__daily
    # ← raw/usage_daily (summed at ingestion from the landed files); the mart also reads the issued copy.
    chain = [("marts", "invoice_lines"), ("intermediate", "int_invoice_lines_open"), ("intermediate", "int_invoice_lines_drafted"),
             ("intermediate", "int_invoice_lines"), ("intermediate", "int_lines_hourly_capped"),
             ("intermediate", "int_resource_usage_monthly"), ("intermediate", "int_usage_daily_priced"),
             ("intermediate", "int_usage_daily"), ("staging", "stg_usage__daily"), ("raw", "usage_daily")]
    for child, parent in zip(chain, chain[1:]):
        assert parent in upstream(list(child)), (child, parent)
    assert ("audit", "issued_invoice_lines") in upstream(["marts", "invoice_lines"])
    # October's materialization of the landed usage carries the figures of the golden files.
    usage_files = sorted((scenario.landing / "usage").glob("dt=2026-10-*/*.parquet"))
    rows_landed = sum(pq.ParquetFile(p).metadata.num_rows for p in usage_files)
    redelivered = pq.ParquetFile(scenario.landing / "usage/dt=2026-10-15/part-1-redelivery.parquet").metadata.num_rows
    (october,) = _graphql(
        ui, '{ assetNodeOrError(assetKey: {path: ["raw", "usage"]}) { ... on AssetNode { '
            'assetMaterializations(partitions: ["2026-10-01"]) { partition metadataEntries { label '
            '... on IntMetadataEntry { intValue } } } } } }')["assetNodeOrError"]["assetMaterializations"]
    values = {e["label"]: e.get("intValue") for e in october["metadataEntries"]}
    assert (values["rows_read"], values["redelivered"]) == (rows_landed, redelivered)
