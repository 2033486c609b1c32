"""make bench: one generated month, closed from nothing and ingested day by day, beside the yardstick.

Issue 16's four measurements, in one run on the same Parquet, each step the real `billops` command in
its own process (wall seconds and peak RSS from wait4):

1. the full close from nothing (`billops close`, through the instance, as a user runs it);
2. the hand-written dedup-and-rate query over the whole month (`perf_limit.py query`, the shared
   yardstick, beside the repository; absent, bench/yardstick.py stands in and the report says so);
3. the month landed one usage/dt=D/ folder at a time, `billops ingest` after each, then the
   month-end close (`billops close`) of a month whose days are all ingested;
4. the yardstick on a landing holding the last day alone, beside that day's ingestion.

Goals (issue 16): month end ≤ 0.25× (2), one day ≤ 1.5× (4), full close ≤ 3× (2). The ratios are
printed and written to bench/results.json with the close's per-step times from the instance.
Absolute times on a shared 2-core machine vary ±20%; only ratios within one run compare.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BILLOPS = Path(sys.executable).parent / "billops"
PERF_LIMIT = REPO.parent / "shared" / "bench" / "perf_limit.py"  # the yardstick, outside the repository
GOALS = {"month_end_vs_month_query": 0.25, "day_vs_day_query": 1.5, "full_close_vs_month_query": 3.0}


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


def figures(measured: dict) -> dict:
    return {k: measured[k] for k in ("seconds", "peak_rss_gib")}


def step_seconds(dagster_home: Path, run_id: str) -> dict[str, float]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        return {s.step_key: round(s.end_time - s.start_time, 2) for s in instance.get_run_step_stats(run_id)}


def workspace(root: Path, name: str) -> dict:
    ws = root / name
    shutil.rmtree(ws, ignore_errors=True)
    return {**os.environ, "BILLOPS_ENV": os.environ.get("BILLOPS_ENV", "prod"),
            "BILLOPS_LANDING": str(ws / "landing"), "BILLOPS_WAREHOUSE": str(ws / "warehouse.duckdb"),
            "DAGSTER_HOME": str(ws / "dagster"), "BILLOPS_PUBLISHED": str(ws / "published"),
            "BILLOPS_QUEUE_URL": f"sqlite:///{ws / 'ops.sqlite'}"}


def yardstick(landing: Path, month: str, env: dict) -> dict:
    """The hand-written query on a landing: the shared perf_limit.py, else the project's own."""
    if PERF_LIMIT.exists():
        args = [sys.executable, str(PERF_LIMIT), "query", "--landing", str(landing), "--month", month]
        return figures(run_measured(args, env)) | {"query": "perf_limit.py"}
    args = [sys.executable, str(REPO / "bench" / "yardstick.py"), str(landing), month]
    return figures(run_measured(args, env)) | {"query": "bench/yardstick.py (perf_limit.py not found)"}


def close(month: str, env: dict) -> tuple[dict, str]:
    measured = run_measured([str(BILLOPS), "close", "--month", month], env)
    run_id = re.findall(r"Dagster run ([0-9a-f-]{36})", measured["output"])[-1]
    return figures(measured), run_id


def main() -> None:
    customers = int(os.environ.get("BENCH_CUSTOMERS", "10000"))
    month = os.environ.get("BENCH_MONTH", "2026-10")
    root = Path(os.environ.get("BENCH_DIR", REPO / "data" / f"bench-{customers}")).resolve()
    source = root / "source"
    print(f"bench: {customers:,} customers, month {month}, in {root}", flush=True)
    generate = None
    if not (source / "usage").is_dir() or os.environ.get("BENCH_REGENERATE"):  # the same seed writes the same files
        shutil.rmtree(root, ignore_errors=True)
        measured = run_measured([str(BILLOPS), "generate", "--month", month, "--customers", str(customers),
                                 "--seed", "7", "--out", str(source)], workspace(root, "generate"))
        print(" ".join(measured["output"].split("anomalies:")[0].split()), flush=True)
        generate = figures(measured)
    else:
        print(f"reusing the month generated in {source} (BENCH_REGENERATE=1 to write it again)", flush=True)
    folders = sorted((source / "usage").glob(f"dt={month}-*"))

    env = workspace(root, "full")
    shutil.copytree(source, env["BILLOPS_LANDING"])
    full, full_run = close(month, env)
    print(f"full close from nothing: {full['seconds']} s", flush=True)
    full_steps = step_seconds(Path(env["DAGSTER_HOME"]), full_run)
    month_query = yardstick(Path(env["BILLOPS_LANDING"]), month, env)
    print(f"yardstick over the month: {month_query['seconds']} s", flush=True)
    landing_bytes = sum(p.stat().st_size for p in Path(env["BILLOPS_LANDING"]).rglob("*") if p.is_file())
    shutil.rmtree(root / "full", ignore_errors=True)

    env = workspace(root, "daily")
    landing = Path(env["BILLOPS_LANDING"])
    shutil.copytree(source / "reference", landing / "reference")
    days = []
    for folder in folders:
        shutil.copytree(folder, landing / "usage" / folder.name)
        days.append({"day": folder.name[3:]} | figures(run_measured([str(BILLOPS), "ingest"], env)))
        print(f"ingest {days[-1]['day']}: {days[-1]['seconds']} s", flush=True)
    month_end, month_end_run = close(month, env)
    print(f"month-end close after daily ingestion: {month_end['seconds']} s", flush=True)
    month_end_steps = step_seconds(Path(env["DAGSTER_HOME"]), month_end_run)

    one = root / "one-day"
    shutil.rmtree(one, ignore_errors=True)
    shutil.copytree(source / "reference", one / "reference")
    shutil.copytree(folders[-1], one / "usage" / folders[-1].name)
    day_query = yardstick(one, month, env)

    ratios = {
        "month_end_vs_month_query": round(month_end["seconds"] / month_query["seconds"], 2),
        "day_vs_day_query": round(days[-1]["seconds"] / day_query["seconds"], 2),
        "full_close_vs_month_query": round(full["seconds"] / month_query["seconds"], 2),
    }
    results = {
        "customers": customers, "month": month, "landing_bytes": landing_bytes,
        "load_average_at_end": os.getloadavg()[0], "machine": {"cpus": os.cpu_count()},
        "generate": generate,
        "full_close": full | {"steps_seconds": full_steps},
        "yardstick_month": month_query,
        "days": days,
        "day_median_seconds": statistics.median(d["seconds"] for d in days),
        "month_end_close": month_end | {"steps_seconds": month_end_steps},
        "yardstick_last_day": day_query,
        "ratios": ratios,
        "goals": {k: f"≤ {v}× ({'met' if ratios[k] <= v else 'not met'})" for k, v in GOALS.items()},
    }
    out = REPO / "bench" / "results.json"
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing[str(customers)] = results
    out.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
