"""Usage anomalies: which days get them, and bad rows derived from valid ones (docs/contract/synthetic-data.md).

A month gets one day with a re-delivered file (about REDELIVERY_SHARE of the
month's rows, copied from that day's file), two days whose file is delivered
late (LATE_SHARE of the day's rows held back into a second file), and three
days with a file of bad rows: every kind of BAD_KINDS (and NO_PRICE_KIND with
``--anomalies all``) about BAD_ROWS_SHARE of the month's rows, at least one
each, split over those days. The days never overlap, and the last day of the
month is never one of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from synthetic import streams
from synthetic.catalogue import NO_PRICE_SKU
from synthetic.customers import UNKNOWN_CUSTOMER_BASE
from synthetic.months import DAY, HOUR, ordinal_year_month
from synthetic.usage_writer import (
    MICRO, USAGE_SCHEMA, decimal_array, decimal_to_micro, timestamp_array, timestamp_to_micros,
)

# (anomaly name, expected quarantine reason): one broken rule each
BAD_KINDS = [
    ("null_customer_id", "bad_schema"),
    ("null_sku", "bad_schema"),
    ("null_resource_id", "bad_schema"),
    ("null_quantity", "bad_schema"),
    ("empty_interval", "bad_interval"),
    ("interval_over_one_hour", "bad_interval"),
    ("negative_quantity", "negative_quantity"),
    ("unknown_customer", "unknown_customer"),
    ("start_in_previous_month", "outside_month"),
    ("start_in_next_month", "outside_month"),
    ("conflicting_duplicate", "conflicting_duplicate"),
]
NO_PRICE_KIND = ("unknown_sku", "no_price")  # blocks the month: only with --anomalies all
BAD_ROWS_SHARE = 2e-5      # of the month's rows, per kind
REDELIVERY_SHARE = 0.0005  # of the month's rows, re-delivered on one day
LATE_SHARE = 0.01          # of a late day's rows, delivered in a second file
TEMPLATE_OVERSAMPLING = 4  # valid rows sampled per bad row needed, so a day can always supply them


@dataclass
class AnomalyPlan:
    redelivery_day: int = -1
    late_days: list[int] = field(default_factory=list)
    bad_days: list[int] = field(default_factory=list)
    kinds: list[tuple[str, str]] = field(default_factory=list)
    bad_rows: dict[int, list[int]] = field(default_factory=dict)  # day → rows per kind (mutable: carried over)
    redelivery_rate: float = 0.0  # of the day's rows


def plan_anomalies(seed: int, customers: int, ordinal: int, days: int, estimated_rows: int,
                   anomalies: str) -> AnomalyPlan:
    """Which days get which anomaly (``anomalies``: none, default or all)."""
    rng = streams.generator_rng(seed, customers, streams.ANOMALY_PLAN, ordinal)
    day_numbers = np.arange(1, days + 1)
    redelivery_day = int(rng.choice(day_numbers[1:-1]))
    rest = day_numbers[(day_numbers != redelivery_day) & (day_numbers < days)]
    late_days = sorted(rng.choice(rest, 2, replace=False).tolist())
    rest = rest[~np.isin(rest, late_days)]
    bad_days = sorted(rng.choice(rest, 3, replace=False).tolist())
    if anomalies == "none":
        return AnomalyPlan()
    kinds = list(BAD_KINDS) + ([NO_PRICE_KIND] if anomalies == "all" else [])
    per_kind = max(1, int(round(BAD_ROWS_SHARE * estimated_rows)))
    bad_rows = {d: [0] * len(kinds) for d in bad_days}
    for k in range(len(kinds)):
        for d, part in zip(bad_days, np.array_split(np.arange(per_kind), len(bad_days))):
            bad_rows[d][k] = len(part)
    # ~0.05 % of the month, as a share of one average day's rows
    redelivery_rate = min(1.0, REDELIVERY_SHARE * estimated_rows / max(1, estimated_rows / days))
    return AnomalyPlan(redelivery_day, late_days, bad_days, kinds, bad_rows, redelivery_rate)


def build_bad_rows(templates: pa.Table, template_rows: np.ndarray, kinds: list[tuple[str, str]],
                   counts: list[int], rng: np.random.Generator, month_first: int, month_after: int,
                   ordinal: int, first_sequence: int) -> tuple[pa.Table, list[dict]]:
    """Bad rows, each a valid template row with one rule broken, shuffled; and their manifest entries.

    ``counts[k]`` rows of ``kinds[k]``; ``template_rows`` are the templates' row
    numbers (0-based) in the day's file, for a conflicting duplicate's original.
    Bad rows get fresh event ids ``qYYYYMM########`` numbered from
    ``first_sequence`` (docs/decisions.md #21), except conflicting duplicates.
    """
    need = sum(counts)
    if templates.num_rows < need:
        pick = np.resize(np.arange(templates.num_rows), need)
    else:
        pick = rng.choice(templates.num_rows, need, replace=False)
    picked = templates.take(pa.array(pick))
    original_row = template_rows[pick]
    event = np.array(picked["event_id"].to_pylist(), dtype=object)
    customer = np.array(picked["customer_id"].to_pylist(), dtype=object)
    resource = np.array(picked["resource_id"].to_pylist(), dtype=object)
    sku = np.array(picked["sku"].to_pylist(), dtype=object)
    region = np.array(picked["region"].to_pylist(), dtype=object)
    start = timestamp_to_micros(picked["start_time"])
    end = timestamp_to_micros(picked["end_time"])
    quantity = decimal_to_micro(picked["quantity"])
    quantity_valid = np.ones(need, bool)
    kind_of_row = np.repeat(np.arange(len(kinds)), counts)
    year, month = ordinal_year_month(ordinal)
    fresh = np.array([f"q{year:04d}{month:02d}{first_sequence + i:08d}" for i in range(need)], dtype=object)
    for k, (name, _reason) in enumerate(kinds):
        sel = kind_of_row == k
        if not sel.any():
            continue
        if name != "conflicting_duplicate":
            event[sel] = fresh[sel]
        if name == "null_customer_id":
            customer[sel] = None
        elif name == "null_sku":
            sku[sel] = None
        elif name == "null_resource_id":
            resource[sel] = None
        elif name == "null_quantity":
            quantity_valid[sel] = False
        elif name == "empty_interval":
            end[sel] = start[sel]
        elif name == "interval_over_one_hour":
            end[sel] = start[sel] + 2 * HOUR * MICRO
        elif name == "negative_quantity":
            quantity[sel] = -quantity[sel]
        elif name == "unknown_customer":
            unknown = np.array([f"c{UNKNOWN_CUSTOMER_BASE + first_sequence + i:07d}" for i in np.flatnonzero(sel)],
                               dtype=object)
            account_level = resource[sel] == customer[sel]
            resource[sel] = np.where(account_level, unknown, resource[sel])
            customer[sel] = unknown
        elif name in ("start_in_previous_month", "start_in_next_month"):
            time_of_day = (start[sel] // MICRO - month_first) % DAY
            day = (month_first - DAY) if name == "start_in_previous_month" else month_after
            length = end[sel] - start[sel]
            start[sel] = (day + time_of_day) * MICRO
            end[sel] = start[sel] + length
        elif name == "conflicting_duplicate":
            quantity[sel] = quantity[sel] + MICRO
        elif name == "unknown_sku":
            sku[sel] = NO_PRICE_SKU
            resource[sel] = np.array([f"gpu-{x}" for x in np.flatnonzero(sel) + first_sequence], dtype=object)
            quantity[sel] = np.maximum(1, quantity[sel])
    order = rng.permutation(need)
    table = pa.Table.from_arrays(
        [pa.array(event[order].tolist(), pa.string()), pa.array(customer[order].tolist(), pa.string()),
         pa.array(resource[order].tolist(), pa.string()), pa.array(sku[order].tolist(), pa.string()),
         pa.array(region[order].tolist(), pa.string()), timestamp_array(start[order]),
         timestamp_array(end[order]), decimal_array(quantity[order], quantity_valid[order])],
        schema=USAGE_SCHEMA)
    entries = []
    for row, i in enumerate(order.tolist()):
        name, reason = kinds[kind_of_row[i]]
        entry = {"anomaly": name, "expect": "quarantine", "reason": reason, "event_id": event[i],
                 "customer_id": customer[i], "row_number": row + 1}
        if name == "conflicting_duplicate":
            entry["original_row_number"] = int(original_row[i]) + 1
        entries.append(entry)
    return table, entries
