"""Daily ingestion measured: one generated month landed a folder at a time, `billops ingest` after each, then
the close; beside the full close from nothing and the hand-written query (perf_limit.py of the shared bench
folder beside the repository, when it is there).

    python bench/daily_bench.py --customers 10000 --month 2026-10 --root /tmp/bench-daily

Every step is the real `billops` command in its own process (bench/run.py's run_measured: wall
seconds and peak RSS). Prints one JSON object; docs/performance.md ("Daily ingestion") records it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import BILLOPS, run_measured  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PERF_LIMIT = REPO.parent / "shared" / "bench" / "perf_limit.py"  # the yardstick, outside the repository


def workspace(root: Path, name: str) -> dict:
    ws = root / name
    return {**os.environ, "BILLOPS_ENV": "ci", "BILLOPS_LANDING": str(ws / "landing"),
            "BILLOPS_WAREHOUSE": str(ws / "warehouse.duckdb"), "DAGSTER_HOME": str(ws / "dagster_home")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench-daily"))
    args = parser.parse_args()
    source = args.root / "source"
    if not (source / "usage").exists():
        subprocess.run([str(BILLOPS), "generate", "--month", args.month, "--customers", str(args.customers),
                        "--seed", str(args.seed), "--out", str(source)], check=True)
    results = {"customers": args.customers, "month": args.month}
    folders = sorted((source / "usage").glob(f"dt={args.month}-*"))

    # the full close from nothing
    env = workspace(args.root, "full")
    shutil.rmtree(args.root / "full", ignore_errors=True)
    shutil.copytree(source, Path(env["BILLOPS_LANDING"]))
    results["full_close"] = {k: v for k, v in run_measured([str(BILLOPS), "close", "--month", args.month,
                                                             "--in-process"], env).items() if k != "output"}
    if PERF_LIMIT.exists():
        results["perf_limit_month"] = {k: v for k, v in run_measured(
            [sys.executable, str(PERF_LIMIT), "query", "--landing", env["BILLOPS_LANDING"], "--month", args.month],
            env).items() if k != "output"}
    shutil.rmtree(args.root / "full", ignore_errors=True)

    # day by day, then the close
    env = workspace(args.root, "daily")
    shutil.rmtree(args.root / "daily", ignore_errors=True)
    landing = Path(env["BILLOPS_LANDING"])
    landing.mkdir(parents=True)
    shutil.copytree(source / "reference", landing / "reference")
    days = []
    for folder in folders:
        shutil.copytree(folder, landing / "usage" / folder.name)
        measured = run_measured([str(BILLOPS), "ingest"], env)
        days.append({"day": folder.name[3:], "seconds": measured["seconds"], "peak_rss_gib": measured["peak_rss_gib"]})
    results["days"] = days
    results["close_after_days"] = {k: v for k, v in run_measured([str(BILLOPS), "close", "--month", args.month,
                                                                   "--in-process"], env).items() if k != "output"}
    if PERF_LIMIT.exists():  # the yardstick on a landing that holds the last day alone
        one = args.root / "one-day"
        shutil.rmtree(one, ignore_errors=True)
        shutil.copytree(source / "reference", one / "reference")
        shutil.copytree(folders[-1], one / "usage" / folders[-1].name)
        results["perf_limit_one_day"] = {k: v for k, v in run_measured(
            [sys.executable, str(PERF_LIMIT), "query", "--landing", str(one), "--month", args.month],
            env).items() if k != "output"}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
