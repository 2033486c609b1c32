"""make bench: generate and close one synthetic month, timing every step.

Each step runs as its own process (the real `billops` command), so its wall
time and peak memory (ru_maxrss from wait4) are its own. The hand-written
yardstick query (bench/yardstick.py) runs on the same Parquet right after the
close, and the close's ratio to it is reported (issue 7: within 3x). Per-asset times come
from the Dagster instance's step statistics of the close's run. Results are
printed and written to bench/results.json.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BILLOPS = Path(sys.executable).parent / "billops"


def run_measured(args: list[str], env: dict) -> dict:
    """Run a command; return its wall seconds, peak RSS (GiB) and output."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({process.returncode}):\n{output[-4000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3), "output": output}


def step_seconds(dagster_home: Path, run_id: str) -> dict[str, float]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        return {s.step_key: round(s.end_time - s.start_time, 2) for s in instance.get_run_step_stats(run_id)}


def main() -> None:
    customers = int(os.environ.get("BENCH_CUSTOMERS", "10000"))
    month = os.environ.get("BENCH_MONTH", "2026-10")
    root = Path(os.environ.get("BENCH_DIR", REPO / "data" / f"bench-{customers}")).resolve()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = {
        **os.environ,
        "BILLOPS_LANDING": str(root / "landing"),
        "BILLOPS_WAREHOUSE": str(root / "warehouse.duckdb"),
        "DAGSTER_HOME": str(root / "dagster"),
        "BILLOPS_ENV": os.environ.get("BILLOPS_ENV", "prod"),
    }
    print(f"bench: {customers:,} customers, month {month}, in {root}", flush=True)
    generate = run_measured([str(BILLOPS), "generate", "--month", month, "--customers", str(customers), "--seed", "7"], env)
    print(" ".join(generate["output"].split("anomalies:")[0].split()), flush=True)
    close = run_measured([str(BILLOPS), "close", "--month", month], env)
    # The yardstick on the same Parquet, right after the close, in its own process (bench/yardstick.py).
    yardstick = run_measured([sys.executable, str(REPO / "bench" / "yardstick.py"), str(root / "landing"), month], env)
    run_id = re.search(r"Dagster run ([0-9a-f-]{36})", close["output"]).group(1)
    rows = int(re.search(r"records read\s*│\s*([\d,]+)", close["output"]).group(1).replace(",", ""))
    landing_bytes = sum(p.stat().st_size for p in (root / "landing").rglob("*") if p.is_file())
    results = {
        "customers": customers,
        "month": month,
        "usage_rows": rows,
        "landing_bytes": landing_bytes,
        "generate": {k: generate[k] for k in ("seconds", "peak_rss_gib")}
        | {"rows_per_second": round(rows / generate["seconds"])},
        "close": {k: close[k] for k in ("seconds", "peak_rss_gib")} | {"rows_per_second": round(rows / close["seconds"])},
        "close_steps_seconds": step_seconds(root / "dagster", run_id),
        "yardstick": {k: yardstick[k] for k in ("seconds", "peak_rss_gib")}
        | {"close_ratio": round(close["seconds"] / yardstick["seconds"], 2)},
        "warehouse_bytes": (root / "warehouse.duckdb").stat().st_size,
        "machine": {"cpus": os.cpu_count()},
    }
    out = REPO / "bench" / "results.json"
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing[str(customers)] = results
    out.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
