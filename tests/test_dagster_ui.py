"""`dagster dev` from the repository root shows the close's run and the lineage from a landed file to an invoice line."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def test_dagster_dev_shows_the_close_and_its_lineage(golden):
    assert golden.close("2026-10").returncode == 0
    port = _free_port()
    dagster = str(os.path.join(os.path.dirname(sys.executable), "dagster"))
    process = subprocess.Popen(
        ["setsid", "env", "--default-signal=INT,TERM", dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=golden.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "dagster dev did not come up in 120 s"
            time.sleep(1)
        runs = _graphql(port, "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }")
        (run,) = runs["runsOrError"]["results"]
        assert run["jobName"] == "close_month_job" and run["status"] == "SUCCESS"
        assert {"key": "dagster/partition", "value": "2026-10-01"} in run["tags"]

        def upstream(path: list[str]) -> set[tuple]:
            node = _graphql(port, '{ assetNodeOrError(assetKey: {path: %s}) { ... on AssetNode { dependencyKeys { path } } } }'
                            % str(path).replace("'", '"'))
            return {tuple(k["path"]) for k in node["assetNodeOrError"]["dependencyKeys"]}

        # invoice_lines ← int_invoice_lines ← int_lines_hourly_capped ← int_resource_usage_monthly
        # ← int_usage_daily_priced ← int_usage_daily ← stg_usage__events ← raw/usage (the landed files)
        chain = [("marts", "invoice_lines"), ("intermediate", "int_invoice_lines"), ("intermediate", "int_lines_hourly_capped"),
                 ("intermediate", "int_resource_usage_monthly"), ("intermediate", "int_usage_daily_priced"),
                 ("intermediate", "int_usage_daily"), ("staging", "stg_usage__events"), ("raw", "usage")]
        for child, parent in zip(chain, chain[1:]):
            assert parent in upstream(list(child)), (child, parent)
        materialized = _graphql(
            port, '{ assetNodeOrError(assetKey: {path: ["raw", "usage"]}) { ... on AssetNode { '
                  'assetMaterializations(limit: 1) { partition metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }'
        )["assetNodeOrError"]["assetMaterializations"][0]
        assert materialized["partition"] == "2026-10-01"
        values = {e["label"]: e.get("intValue") for e in materialized["metadataEntries"]}
        assert values["rows_read"] == 2774 and values["redelivered"] == 109
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
