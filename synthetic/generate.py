"""Synthetic landing-zone generator (``billops generate``).

Writes, for one month, the reference snapshots (as they stand at the end of the
month), the month's usage Parquet files and the generator's lines of the
ground-truth manifest, following ``docs/contract/inputs.md`` and
``docs/contract/synthetic-data.md``. Where things come from:

* ``catalogue.py`` — SKUs, list prices, the price book's history;
* ``customers.py``, ``resources.py`` — the business, from ``(seed, customers)``
  alone, so consecutive months continue it;
* ``reference_files.py`` — the four reference CSVs;
* ``usage_writer.py``, ``usage_month.py`` — usage expanded per day and chunk
  with numpy and written by a background thread, in bounded memory;
* ``anomalies.py`` — the anomaly plan and the bad rows;
* ``streams.py`` — every random draw: same arguments, same bytes.
"""
from __future__ import annotations

import calendar
import json
import pathlib
import time

import numpy as np
import pyarrow as pa

from synthetic.anomalies import plan_anomalies
from synthetic.catalogue import TRANSFER, price_change_sku
from synthetic.customers import customer_base
from synthetic.manifest import replace_step_lines
from synthetic.months import DAY, HOUR, month_ordinal, month_start
from synthetic.reference_files import write_reference_files
from synthetic.resources import month_resources
from synthetic.usage_month import UsageMonth

ANOMALY_SETS = ("none", "default", "all")


def _progress_bar(month: str, days: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(f"generate {month}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn())
    bar.start()
    return bar, bar.add_task("days", total=days, rows=0)


def generate(month: str, customers: int, seed: int, out: pathlib.Path, anomalies: str = "default",
             progress: bool = True) -> dict:
    """Write reference snapshots, the month's usage and the truth manifest into ``out``.

    ``anomalies``: ``"none"`` (clean month), ``"default"`` (non-blocking anomalies)
    or ``"all"`` (adds usage for a SKU with no price, which blocks the month).
    Returns a summary (counts, bytes, anomalies by kind, seconds).
    """
    t_begin = time.perf_counter()
    if anomalies not in ANOMALY_SETS:
        raise ValueError(f"anomalies must be none, default or all, not {anomalies!r}")
    if customers < 1:
        raise ValueError("customers must be >= 1")
    year, month_number = (int(x) for x in month.split("-"))
    if not (1 <= month_number <= 12):
        raise ValueError(f"bad month {month!r}")
    month = f"{year:04d}-{month_number:02d}"
    ordinal = month_ordinal(year, month_number)
    month_first, month_after = month_start(ordinal), month_start(ordinal + 1)
    days = calendar.monthrange(year, month_number)[1]
    out = pathlib.Path(out)

    base = customer_base(seed, customers)
    reference_bytes, listed = write_reference_files(out, seed, base, ordinal)
    resources = month_resources(seed, base, ordinal)
    seconds_in_month = np.minimum(resources.end, month_after) - np.maximum(resources.start, month_first)
    estimated_rows = int(np.where(resources.metering <= TRANSFER, seconds_in_month // HOUR + 1,
                                  seconds_in_month // DAY + 1).sum())
    plan = plan_anomalies(seed, customers, ordinal, days, estimated_rows, anomalies)

    manifest: list[str] = []
    by_kind: dict[str, int] = {}

    def note(entry: dict) -> None:
        by_kind[entry["anomaly"]] = by_kind.get(entry["anomaly"], 0) + 1
        manifest.append(json.dumps({"step": "generate", "month": month, **entry}))

    usage = UsageMonth(out / "usage", year, month_number, ordinal, month_first, month_after, seed, customers,
                       resources, pa.array(base.ids.tolist(), pa.string()), plan, note)
    usage.clear(days)
    bar = _progress_bar(month, days) if progress else None
    try:
        for day in range(1, days + 1):
            usage.write_day(day)
            if bar is not None:
                bar[0].update(bar[1], advance=1, rows=sum(usage.rows.values()))
    finally:
        try:
            usage.writer.finish()
        finally:
            if bar is not None:
                bar[0].stop()

    usage_bytes = sum(p.stat().st_size for day in range(1, days + 1)
                      for p in usage.day_folder(day).glob("part-*.parquet"))
    replace_step_lines(out, "generate", month, manifest)  # idempotent per generate+month; other lines kept
    return {
        "month": month,
        "seed": seed,
        "anomalies_set": anomalies,
        "customers": int(len(listed)),
        "active_customers": int(((base.created < month_after) & (base.closed > month_first)).sum()),
        "resources": int(len(resources.number)),
        "rows": int(sum(usage.rows.values())),
        "rows_by_file": usage.rows,
        "files": 4 + usage.files,
        "bytes": int(reference_bytes + usage_bytes),
        "anomalies": by_kind,
        "price_change_sku": price_change_sku(ordinal),
        "seconds": round(time.perf_counter() - t_begin, 3),
    }
