"""One month of usage files, day by day, with the planned anomalies (``billops generate``).

Per day ``usage/dt=YYYY-MM-DD/``: ``part-0.parquet`` (the day's rows, minus
those held back for a late file), and as planned ``part-1-redelivery.parquet``
(rows of part-0 again), ``part-2-late.parquet`` (the held-back rows) and
``part-3-bad.parquet`` (bad rows). Every anomaly is noted for the manifest.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa

from synthetic import streams
from synthetic.anomalies import LATE_SHARE, TEMPLATE_OVERSAMPLING, AnomalyPlan, build_bad_rows
from synthetic.months import DAY
from synthetic.resources import Resources
from synthetic.usage_writer import BackgroundParquetWriter, DayUsage, write_table

FILE_NAMES = ("part-0.parquet", "part-1-redelivery.parquet", "part-2-late.parquet", "part-3-bad.parquet")
# At least this many rows of a late day's (or the re-delivery day's) first chunk, so a small month has some.
MIN_LATE_ROWS, MIN_REDELIVERED_ROWS = 3, 5


@dataclass
class UsageMonth:
    """Writes the usage of one month into ``usage``; ``rows`` counts rows per file kind."""

    usage: pathlib.Path
    year: int
    month: int
    ordinal: int
    month_first: int
    month_after: int
    seed: int
    customers: int
    resources: Resources
    customer_ids: pa.Array
    plan: AnomalyPlan
    note: Callable[[dict], None]  # records one manifest entry
    writer: BackgroundParquetWriter = field(default_factory=BackgroundParquetWriter)
    rows: dict = field(default_factory=lambda: {"part-0": 0, "redelivery": 0, "late": 0, "bad": 0})
    files: int = 0
    bad_sequence: int = 0  # bad rows so far: numbers their fresh event ids

    def day_folder(self, day: int) -> pathlib.Path:
        return self.usage / f"dt={self.year:04d}-{self.month:02d}-{day:02d}"

    def clear(self, days: int) -> None:
        """Create the month's day folders and remove the files an earlier run wrote there."""
        for day in range(1, days + 1):
            folder = self.day_folder(day)
            folder.mkdir(parents=True, exist_ok=True)
            for name in FILE_NAMES:
                (folder / name).unlink(missing_ok=True)

    def write_day(self, day: int) -> None:
        folder = self.day_folder(day)
        relative = f"usage/{folder.name}"
        plan = self.plan
        day_usage = DayUsage(self.resources, self.customer_ids, self.seed, self.ordinal * 31 + day,
                             self.month_first + (day - 1) * DAY)
        rng = streams.generator_rng(self.seed, self.customers, streams.ANOMALY_DAY, self.ordinal, day)
        row0 = 0  # rows of part-0 written before this chunk
        redelivered, redelivered_rows, late, templates, template_rows = [], [], [], [], []
        need_templates = sum(plan.bad_rows.get(day, []))
        for chunk, table in day_usage.chunks():
            n = table.num_rows
            if day in plan.late_days:
                held_count = max(MIN_LATE_ROWS if chunk == 0 else 0, int(round(LATE_SHARE * n)))
                held = np.zeros(n, bool)
                held[rng.choice(n, min(held_count, n - 1), replace=False)] = True
                late.append(table.filter(pa.array(held)))
                table = table.filter(pa.array(~held))
                n = table.num_rows
            if day == plan.redelivery_day:
                copies = max(MIN_REDELIVERED_ROWS if chunk == 0 else 0, int(round(plan.redelivery_rate * n)))
                positions = np.sort(rng.choice(n, min(copies, n), replace=False))
                redelivered.append(table.take(pa.array(positions)))
                redelivered_rows.append(positions + row0)
            if need_templates:
                sample = min(n, int(np.ceil(need_templates * TEMPLATE_OVERSAMPLING * n / max(1, day_usage.total))) + 1)
                positions = np.sort(rng.choice(n, sample, replace=False))
                templates.append(table.take(pa.array(positions)))
                template_rows.append(positions + row0)
            self.writer.put(str(folder / "part-0.parquet"), table)
            row0 += n
        self.writer.put(str(folder / "part-0.parquet"), None)  # close (creates an empty file if no rows)
        self.files += 1
        self.rows["part-0"] += row0
        if redelivered:
            self._write_redelivery(folder, relative, pa.concat_tables(redelivered), np.concatenate(redelivered_rows))
        if late:
            table = pa.concat_tables(late)
            write_table(folder / "part-2-late.parquet", table)
            self.files += 1
            self.rows["late"] += table.num_rows
            self.note({"anomaly": "late_file", "expect": "accept", "file": f"{relative}/part-2-late.parquet",
                       "rows": table.num_rows, "day": folder.name[3:]})
        if need_templates and not templates:  # an empty day: its bad rows move to the next bad day
            later = [d for d in plan.bad_days if d > day]
            if later:
                plan.bad_rows[later[0]] = [x + y for x, y in zip(plan.bad_rows[later[0]], plan.bad_rows[day])]
        if need_templates and templates:
            self._write_bad(folder, relative, day, rng, pa.concat_tables(templates), np.concatenate(template_rows))

    def _write_redelivery(self, folder, relative, table: pa.Table, original_rows: np.ndarray) -> None:
        write_table(folder / "part-1-redelivery.parquet", table)
        self.files += 1
        self.rows["redelivery"] += table.num_rows
        for i, (event_id, customer_id) in enumerate(zip(table["event_id"].to_pylist(),
                                                        table["customer_id"].to_pylist())):
            self.note({"anomaly": "redelivery", "expect": "dedupe", "event_id": event_id,
                       "customer_id": customer_id, "file": f"{relative}/part-1-redelivery.parquet",
                       "row_number": i + 1, "original_file": f"{relative}/part-0.parquet",
                       "original_row_number": int(original_rows[i]) + 1})

    def _write_bad(self, folder, relative, day, rng, templates: pa.Table, template_rows: np.ndarray) -> None:
        table, entries = build_bad_rows(templates, template_rows, self.plan.kinds, self.plan.bad_rows[day], rng,
                                        self.month_first, self.month_after, self.ordinal, self.bad_sequence)
        self.bad_sequence += table.num_rows
        write_table(folder / "part-3-bad.parquet", table)
        self.files += 1
        self.rows["bad"] += table.num_rows
        for entry in entries:
            entry["file"] = f"{relative}/part-3-bad.parquet"
            if "original_row_number" in entry:
                entry["original_file"] = f"{relative}/part-0.parquet"
            self.note(entry)
