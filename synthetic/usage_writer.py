"""Usage rows: one day of a month's resources expanded into Arrow tables, written as Parquet.

Expansion is numpy only (no Python loop over rows), in chunks of about
CHUNK_ROWS rows, each written by a background thread as one row group, so memory
stays bounded at any scale (docs/contract/synthetic-data.md, "Scale").
"""
from __future__ import annotations

import pathlib
import queue
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthetic import streams
from synthetic.catalogue import DAILY_FLAT, DAILY_USAGE, REGION_STRINGS, SKU_INFERENCE, SKU_STRINGS, TRANSFER
from synthetic.months import DAY, EPOCH_2020, HOUR
from synthetic.resources import Resources

CHUNK_ROWS = 500_000  # rows per chunk and row group: ~40 MB of Arrow, large enough for fast Parquet
MICRO = 1_000_000  # quantity is DECIMAL(18, 6): integers of micro-units
USAGE_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("customer_id", pa.string()),
        ("resource_id", pa.string()),
        ("sku", pa.string()),
        ("region", pa.string()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")),
        ("quantity", pa.decimal128(18, 6)),
    ]
)
PARQUET_OPTIONS = dict(
    compression="zstd",
    compression_level=1,
    use_dictionary=["customer_id", "resource_id", "sku", "region"],
    write_statistics=True,
    version="2.6",
)


def timestamp_array(micros: np.ndarray) -> pa.Array:
    """Epoch microseconds as a UTC timestamp column (zero copy)."""
    micros = np.ascontiguousarray(micros, dtype=np.int64)
    return pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), len(micros), [None, pa.py_buffer(micros)])


def decimal_array(micro: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Integers of micro-units as a DECIMAL(18, 6) column (128-bit little-endian, sign-extended)."""
    micro = np.asarray(micro, dtype=np.int64)
    words = np.empty((len(micro), 2), np.int64)
    words[:, 0] = micro
    words[:, 1] = micro >> 63
    bitmap, nulls = None, 0
    if valid is not None and not valid.all():
        bitmap = pa.array(np.asarray(valid, bool), pa.bool_()).buffers()[1]
        nulls = int((~valid).sum())
    return pa.Array.from_buffers(pa.decimal128(18, 6), len(micro), [bitmap, pa.py_buffer(words)],
                                 null_count=nulls)


def decimal_to_micro(column) -> np.ndarray:
    """A DECIMAL(18, 6) column back to integers of micro-units."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    raw = np.frombuffer(column.buffers()[1], dtype=np.int64)
    return raw.reshape(-1, 2)[column.offset: column.offset + len(column), 0].copy()


def timestamp_to_micros(column) -> np.ndarray:
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return column.cast(pa.int64()).to_numpy(zero_copy_only=False).copy()


def write_table(path: pathlib.Path, table: pa.Table) -> None:
    """A small file in one go (re-deliveries, late and bad rows)."""
    pq.write_table(table, path, row_group_size=max(1, table.num_rows), **PARQUET_OPTIONS)


class BackgroundParquetWriter:
    """Writes tables on a thread while the next chunk is expanded: one ParquetWriter per open file, in order.

    ``put(path, table)`` appends a row group; ``put(path, None)`` closes the file
    (creating an empty one if nothing was written). The queue holds one table, so
    at most two chunks are in memory.
    """

    def __init__(self):
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        open_files: dict[str, pq.ParquetWriter] = {}
        while True:
            item = self.queue.get()
            if item is None:
                break
            path, table = item
            if self.error is not None:
                continue
            try:
                if table is None:
                    writer = open_files.pop(path, None)
                    if writer is None:
                        writer = pq.ParquetWriter(path, USAGE_SCHEMA, **PARQUET_OPTIONS)
                    writer.close()
                else:
                    writer = open_files.get(path)
                    if writer is None:
                        writer = open_files[path] = pq.ParquetWriter(path, USAGE_SCHEMA, **PARQUET_OPTIONS)
                    writer.write_table(table, row_group_size=max(1, table.num_rows))
            except BaseException as e:  # noqa: BLE001 — re-raised in the caller's thread
                self.error = e

    def put(self, path: str, table: pa.Table | None) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((path, table))

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class DayUsage:
    """The usage rows of one day: every resource active that day, expanded chunk by chunk.

    An hourly or transfer resource gives one row per clock hour it overlaps
    (clipped to its life); a daily one (support plan, functions, inference) one
    row. The day's active resources are cut into chunks of about CHUNK_ROWS rows
    (a resource is never split across chunks).
    """

    def __init__(self, resources: Resources, customer_ids: pa.Array, seed: int, day_ordinal: int, day_start: int):
        self.resources, self.customer_ids, self.seed = resources, customer_ids, seed
        self.day_ordinal, self.day_start = day_ordinal, day_start
        day_end = day_start + DAY
        self.active = np.flatnonzero((resources.start < day_end) & (resources.end > day_start))
        self.start = np.maximum(resources.start[self.active], day_start)  # active part of the day
        self.end = np.minimum(resources.end[self.active], day_end)
        self.metering = resources.metering[self.active]
        hourly = self.metering <= TRANSFER
        self.first_hour = (self.start - day_start) // HOUR
        last_hour_end = -((day_start - self.end) // HOUR)  # ceil
        self.rows = np.where(hourly, last_hour_end - self.first_hour, 1).astype(np.int64)
        rows_before = np.cumsum(self.rows)
        self.total = int(rows_before[-1]) if len(rows_before) else 0
        bounds = [0]  # chunk boundaries, as positions in self.active
        if len(rows_before):
            targets = np.arange(CHUNK_ROWS, self.total, CHUNK_ROWS)
            bounds += (np.searchsorted(rows_before, targets, side="left") + 1).tolist()
            bounds.append(len(self.active))
        self.bounds = sorted(set(bounds)) if len(rows_before) else [0, 0]

    def chunks(self):
        """(chunk number, table) for every non-empty chunk, in resource order."""
        for chunk in range(len(self.bounds) - 1):
            a, b = self.bounds[chunk], self.bounds[chunk + 1]
            if b > a:
                yield chunk, self._chunk(chunk, a, b)

    def _chunk(self, chunk: int, a: int, b: int) -> pa.Table:
        """The rows of active resources a..b.

        1. ``row_resource`` repeats each resource's position once per row it
           gives; ``hour_index`` numbers a resource's rows 0, 1, ...; a row
           covers clock hour first_hour + hour_index, clipped to the active part.
        2. A daily record starts at the active part's start (support plans), or
           at the resource's usual hour when it is alive then (functions,
           inference), and lasts at most an hour.
        3. Quantity, in micro-units: hourly SKUs the covered fraction of an hour
           × size (GiB for storage), rounded half up; transfer its level × a
           gamma(2, 0.5) draw (mean 1) × a diurnal factor peaking at 14:00 UTC;
           support plans 1 (a day); functions and inference the level ×
           lognormal(0, 0.6), tokens whole, GiB-seconds to the thousandth.
        4. event_id = "e" + resource number × 10^6 + hours since 2020 of the
           start: unique per resource and hour, the same when re-generated (so a
           re-delivered row repeats it).
        """
        resources, day_start = self.resources, self.day_start
        active = self.active[a:b]
        rows = self.rows[a:b]
        start, end, first_hour, metering = self.start[a:b], self.end[a:b], self.first_hour[a:b], self.metering[a:b]
        total = int(rows.sum())
        row_resource = np.repeat(np.arange(b - a), rows)
        first_row = np.cumsum(rows) - rows
        hour_index = np.arange(total, dtype=np.int64) - first_row[row_resource]
        hour_start = day_start + (first_hour[row_resource] + hour_index) * HOUR
        row_start = np.maximum(hour_start, start[row_resource])
        row_end = np.minimum(hour_start + HOUR, end[row_resource])
        daily = metering >= DAILY_FLAT
        if daily.any():
            usual_hour = day_start + resources.usual_hour[active] * HOUR
            at_usual_hour = (metering == DAILY_USAGE) & (usual_hour < end)
            daily_start = np.where(at_usual_hour, np.maximum(usual_hour, start), start)
            daily_end = np.minimum(daily_start + HOUR, end)
            daily_row = daily[row_resource]
            row_start = np.where(daily_row, daily_start[row_resource], row_start)
            row_end = np.where(daily_row, daily_end[row_resource], row_end)
        seconds = row_end - row_start
        row_metering = metering[row_resource]
        size = resources.size[active][row_resource]
        micro = (seconds * size * MICRO + HOUR // 2) // HOUR
        rng = streams.generator_rng(self.seed, self.day_ordinal, chunk, streams.USAGE_CHUNK)
        transfer = row_metering == TRANSFER
        if transfer.any():
            hour_of_day = ((row_start[transfer] - day_start) // HOUR).astype(np.float64)
            diurnal = 1.0 + 0.5 * np.sin((hour_of_day - 8.0) * (2 * np.pi / 24))
            gib = (resources.level[active][row_resource[transfer]] * rng.gamma(2.0, 0.5, int(transfer.sum()))
                   * diurnal * seconds[transfer] / HOUR)
            micro[transfer] = np.maximum(1, np.round(gib * 1e6)).astype(np.int64)
        micro[row_metering == DAILY_FLAT] = MICRO
        daily_usage = row_metering == DAILY_USAGE
        if daily_usage.any():
            level = resources.level[active][row_resource[daily_usage]] * rng.lognormal(0.0, 0.6, int(daily_usage.sum()))
            tokens = resources.sku[active][row_resource[daily_usage]] == SKU_INFERENCE
            micro[daily_usage] = np.where(tokens, np.maximum(1, np.round(level)) * MICRO,
                                          np.maximum(1, np.round(level * 1000)) * 1000).astype(np.int64)
        event_number = resources.number[active][row_resource] * 1_000_000 + (row_start - EPOCH_2020) // HOUR
        event_ids = pc.binary_join_element_wise("e", pc.cast(pa.array(event_number), pa.string()), "")
        return pa.Table.from_arrays(
            [
                event_ids,
                self.customer_ids.take(pa.array(resources.customer[active][row_resource])),
                resources.resource_ids.take(pa.array(active[row_resource])),
                SKU_STRINGS.take(pa.array(resources.sku[active][row_resource])),
                REGION_STRINGS.take(pa.array(resources.region[active][row_resource])),
                timestamp_array(row_start * MICRO),
                timestamp_array(row_end * MICRO),
                decimal_array(micro),
            ],
            schema=USAGE_SCHEMA,
        )
