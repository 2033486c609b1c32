"""One usage day's ingestion step, in process, on a warehouse that already holds the month's other days.

    python bench/day_step_bench.py prepare --source /tmp/bench/source --root /tmp/bench/day --day 2026-10-31
    python bench/day_step_bench.py day --root /tmp/bench/day [--profile]

`prepare` lands every folder of the day's month (symlinks to the generated source) and ingests all but
`--day` in one batch, as a close would (the base warehouse, kept). `day` copies the base and times
`ingest_day` (assets/usage_day.py: reference tables, the folder, the month settled, raw.usage_daily)
for that day alone — the step of a daily run without Dagster's or the command's start-up (~8-10 s of
`billops ingest`). raw.usage_daily is made current for the month first, untimed, as the previous day's
run leaves it. BILLOPS_REPO=/path/to/checkout times another checkout's code on the same base (before/after).
Prints one JSON object: seconds, peak RSS, and with --profile the top cumulative functions.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, os.environ.get("BILLOPS_REPO", str(Path(__file__).resolve().parent.parent)))

import duckdb  # noqa: E402
import pandas  # noqa: E402,F401  (imported by Dagster in a real run; pyarrow's register imports it on first use)

from assets.reference import load_reference_tables  # noqa: E402
from assets.usage_day import RULE_REFERENCES, ingest_day  # noqa: E402
from assets.usage_folder import ingest_folders, refresh_usage_daily  # noqa: E402
from warehouse.schema import bootstrap  # noqa: E402


def prepare(source: Path, root: Path, day: date) -> None:
    landing = root / "landing"
    shutil.rmtree(root, ignore_errors=True)
    (landing / "usage").mkdir(parents=True)
    shutil.copytree(source / "reference", landing / "reference")
    month = day.replace(day=1)
    days = []
    for folder in sorted((source / "usage").glob(f"dt={month:%Y-%m}-*")):
        (landing / "usage" / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
        days.append(date.fromisoformat(folder.name[3:]))
    con = duckdb.connect(str(root / "base.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    bootstrap(con)
    started = time.perf_counter()
    load_reference_tables(con, landing, RULE_REFERENCES, datetime.now(timezone.utc).replace(tzinfo=None))
    ingest_folders(con, landing, month, [d for d in days if d != day])
    refresh_usage_daily(con, month)
    con.close()
    (root / "day.txt").write_text(day.isoformat())
    print(json.dumps({"prepared_folders": len(days) - 1, "seconds": round(time.perf_counter() - started, 1)}))


def run_day(root: Path, profile: bool) -> None:
    day = date.fromisoformat((root / "day.txt").read_text())
    shutil.copyfile(root / "base.duckdb", root / "run.duckdb")
    con = duckdb.connect(str(root / "run.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    bootstrap(con)
    refresh_usage_daily(con, day.replace(day=1))  # as the previous day's run leaves it (untimed)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    batch, checks = ingest_day(con, root / "landing", day)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    out = {"day": day.isoformat(), "seconds": round(seconds, 2),
           "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
           "checks_passed": [c.passed for c in checks], "problems": batch.problems,
           "index_rows": con.execute("SELECT count(*) FROM raw.usage_event_index").fetchone()[0],
           "usage_daily_rows": con.execute("SELECT count(*) FROM raw.usage_daily").fetchone()[0]}
    con.close()
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        out["profile"] = text.getvalue().splitlines()
    print(json.dumps(out, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["prepare", "day"])
    parser.add_argument("--source", type=Path)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 10, 31))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.source, args.root, args.day)
    else:
        run_day(args.root, args.profile)


if __name__ == "__main__":
    main()
