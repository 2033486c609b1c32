"""`dagster dev` from the repository root shows the close's run and the lineage from a landed file to an invoice line."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pyarrow.parquet as pq

from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def test_dagster_dev_shows_the_close_and_its_lineage(copy_closed_golden):
    # A copy: dagster dev runs sensors that may write to the instance and the warehouse.
    golden = copy_closed_golden
    usage_files = sorted((golden.landing / "usage").glob("dt=2026-10-*/*.parquet"))
    rows_landed = sum(pq.ParquetFile(p).metadata.num_rows for p in usage_files)
    redelivered = pq.ParquetFile(golden.landing / "usage/dt=2026-10-15/part-1-redelivery.parquet").metadata.num_rows
    port = _free_port()
    dagster = str(os.path.join(os.path.dirname(sys.executable), "dagster"))
    process = subprocess.Popen(
        ["setsid", "env", "--default-signal=INT,TERM", dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=golden.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "dagster dev did not come up in 240 s"
            time.sleep(1)
        runs = _graphql(port, "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }")
        # The session's close killed with -9 (FAILURE, reaped) and the close that issued October.
        results = [r for r in runs["runsOrError"]["results"] if r["jobName"] == "close_month_job"]
        assert sorted(r["status"] for r in results) == ["FAILURE", "SUCCESS"]
        (run,) = [r for r in results if r["status"] == "SUCCESS"]
        assert {"key": "dagster/partition", "value": "2026-10-01"} in run["tags"]

        def upstream(path: list[str]) -> set[tuple]:
            node = _graphql(port, '{ assetNodeOrError(assetKey: {path: %s}) { ... on AssetNode { dependencyKeys { path } } } }'
                            % str(path).replace("'", '"'))
            return {tuple(k["path"]) for k in node["assetNodeOrError"]["dependencyKeys"]}

        # invoice_lines ← int_invoice_lines_drafted ← int_invoice_lines ← int_lines_hourly_capped
        # ← int_resource_usage_monthly ← int_usage_daily_priced ← int_usage_daily ← stg_usage__daily
        # ← raw/usage_daily (summed at ingestion from the landed files); the mart also reads the issued copy.
        chain = [("marts", "invoice_lines"), ("intermediate", "int_invoice_lines_drafted"),
                 ("intermediate", "int_invoice_lines"), ("intermediate", "int_lines_hourly_capped"),
                 ("intermediate", "int_resource_usage_monthly"), ("intermediate", "int_usage_daily_priced"),
                 ("intermediate", "int_usage_daily"), ("staging", "stg_usage__daily"), ("raw", "usage_daily")]
        for child, parent in zip(chain, chain[1:]):
            assert parent in upstream(list(child)), (child, parent)
        assert ("audit", "issued_invoice_lines") in upstream(["marts", "invoice_lines"])
        materialized = _graphql(
            port, '{ assetNodeOrError(assetKey: {path: ["raw", "usage"]}) { ... on AssetNode { '
                  'assetMaterializations(limit: 1) { partition metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }'
        )["assetNodeOrError"]["assetMaterializations"][0]
        assert materialized["partition"] == "2026-10-01"
        values = {e["label"]: e.get("intValue") for e in materialized["metadataEntries"]}
        assert (values["rows_read"], values["redelivered"]) == (rows_landed, redelivered)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
