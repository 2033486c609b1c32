"""Micro-benchmark of control C2's re-rating (quality/rerating.py) at 100k customers: a synthetic
~10M-row usage_daily Arrow table built with numpy, timed through rerate_month. Not part of the tests.

    .venv/bin/python bench/rerating_bench.py [--customers 100000]
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

import numpy as np
import pyarrow as pa

from quality.rerating import rerate_month
from quality.rerating_rules import decimals

MONTH = date(2026, 10, 1)
DAYS = 31
# per customer: 3 droplets, 2 volumes, 1 snapshot (one resource each) + transfer, functions, support
RESOURCE_SKUS = ["droplet-s-1vcpu-1gb", "droplet-s-2vcpu-4gb", "droplet-s-1vcpu-1gb", "volume-gib", "volume-gib",
                 "snapshot-gib"]
ACCOUNT_SKUS = ["transfer-out-gib", "functions-gib-s", "support-developer"]


def price_book() -> list[dict]:
    def row(sku, model, unit_price="", cap="", cap_hours="", included="", tiers=""):
        return {"sku": sku, "product": sku.split("-")[0], "description": sku, "model": model, "unit": "u",
                "unit_price": unit_price, "monthly_cap": cap, "cap_hours": cap_hours, "included_transfer_gib": included,
                "tiers": tiers, "effective_from": "2025-01-01", "effective_to": ""}
    return [row("droplet-s-1vcpu-1gb", "hourly_capped", "0.00893", "6.00", "672", "1000"),
            row("droplet-s-2vcpu-4gb", "hourly_capped", "0.03571", "24.00", "672", "4000"),
            row("volume-gib", "unit", "0.00014881"), row("snapshot-gib", "unit", "0.00008929"),
            row("transfer-out-gib", "transfer", "0.01"),
            row("functions-gib-s", "graduated",
                tiers='[{"up_to": 90000, "unit_price": 0}, {"up_to": null, "unit_price": 1.85e-05}]'),
            row("support-developer", "flat_monthly", "24.00")]


def usage_daily(customers: int, seed: int = 7) -> pa.Table:
    """~customers × 7 SKUs × 31 days / 2.2 rows: resources live a random span of the month."""
    rng = np.random.default_rng(seed)
    skus = RESOURCE_SKUS + ACCOUNT_SKUS  # slots; a slot is one resource
    c = np.repeat(np.arange(customers), len(skus))
    s = np.tile(np.arange(len(skus)), customers)
    first = rng.integers(0, DAYS, len(c))
    length = rng.integers(1, DAYS + 1, len(c))
    length = np.minimum(length, DAYS - first)
    per_row = np.repeat(np.arange(len(c)), length)
    day = first[per_row] + (np.arange(len(per_row)) - np.repeat(np.cumsum(length) - length, length))
    sku = s[per_row]
    scale = np.array([24, 24, 24, 2400, 2400, 1200, 40, 9000, 1])[sku]  # hours, GiB-h, GiB, GiB-s, days per day
    quantity = (rng.random(len(per_row)) * scale * 1_000_000).astype(np.int64)
    quantity[sku == len(skus) - 1] = 1_000_000
    cust = np.char.add("c", c[per_row].astype("U7"))
    is_account = sku >= len(RESOURCE_SKUS)
    resource = np.where(is_account, cust, np.char.add(np.char.add("r", c[per_row].astype("U7")), sku.astype("U1")))
    names = np.array(skus)
    start = np.datetime64(MONTH) + day.astype("timedelta64[D]")
    return pa.table({
        "customer_id": pa.array(cust), "resource_id": pa.array(resource),
        "sku": pa.array(names[sku]),
        "usage_date": pa.array(start.astype("datetime64[D]")),
        "quantity": decimals(quantity, 38, 6),
        "last_start_time": pa.array((start + np.timedelta64(23, "h")).astype("datetime64[us]")),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    built = time.perf_counter()
    usage = usage_daily(args.customers)
    customers = [{"customer_id": f"c{i}", "country": "DE" if i % 3 else "US", "region": "" if i % 3 else "NY",
                  "tax_id": "DE1" if i % 7 == 0 else ""} for i in range(args.customers)]
    taxes = [{"country": "DE", "region": "", "tax_name": "VAT", "rate": "0.19", "reverse_charge": "true",
              "effective_from": "2020-01-01", "effective_to": ""},
             {"country": "US", "region": "NY", "tax_name": "Sales tax", "rate": "0.08875", "reverse_charge": "false",
              "effective_from": "2020-01-01", "effective_to": ""}]
    grants = [{"grant_id": f"g{i}", "customer_id": f"c{i}", "amount": "5.00", "granted_at": "2026-01-01T00:00:00Z",
               "expires_at": ""} for i in range(0, args.customers, 4)]
    print(f"usage_daily: {usage.num_rows:,} rows built in {time.perf_counter() - built:.1f} s")
    started = time.perf_counter()
    invoices, lines = rerate_month(usage, customers, price_book(), taxes, grants, {}, MONTH)
    seconds = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"rerate_month: {seconds:.1f} s for {invoices.num_rows:,} invoices, {lines.num_rows:,} lines; "
          f"peak RSS {peak_gib:.2f} GiB")


if __name__ == "__main__":
    main()
