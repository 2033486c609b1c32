"""The catalogue: SKUs, their list prices and the price book's history (DigitalOcean-like public prices).

``price_book_rows(month)`` is the price book as it stands at the end of a
month, before any correction ``simulate`` lands (those live in
``synthetic/price_book.py``).
"""
from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa

from synthetic.contract import REFERENCE_COLUMNS
from synthetic.months import iso_date, month_ordinal, month_start, ordinal_year_month

PRICE_COLUMNS = REFERENCE_COLUMNS["price_book"]
PRICE_BOOK_FROM = "2020-01-01"  # every SKU's first row starts here
PRICE_CHANGE_EPOCH = (2024, 1)  # one mid-month price change every month from here
HOURS_PER_CAP = "672"  # 28 days: an hourly_capped resource costs its monthly cap after 672 hours
NO_PRICE_SKU = "gpu-h100x1-80gb"  # usage for it is an anomaly: it has no price row (blocks the month)

# (slug, description, monthly cap, hourly price, included transfer GiB, share of droplets created)
# The shares follow public "most popular size" talk: 1 GiB basic droplets lead, large sizes are rare.
DROPLETS = [
    ("s-1vcpu-512mb-10gb", "Basic Droplet 1 vCPU 512 MiB", "4.00", "0.00595", 500, 0.12),
    ("s-1vcpu-1gb", "Basic Droplet 1 vCPU 1 GiB", "6.00", "0.00893", 1000, 0.28),
    ("s-1vcpu-2gb", "Basic Droplet 1 vCPU 2 GiB", "12.00", "0.01786", 2000, 0.17),
    ("s-2vcpu-2gb", "Basic Droplet 2 vCPU 2 GiB", "18.00", "0.02679", 3000, 0.10),
    ("s-2vcpu-4gb", "Basic Droplet 2 vCPU 4 GiB", "24.00", "0.03571", 4000, 0.12),
    ("s-4vcpu-8gb", "Basic Droplet 4 vCPU 8 GiB", "48.00", "0.07143", 5000, 0.08),
    ("s-8vcpu-16gb", "Basic Droplet 8 vCPU 16 GiB", "96.00", "0.14286", 6000, 0.04),
    ("g-2vcpu-8gb", "General Purpose 2 vCPU 8 GiB", "63.00", "0.09375", 4000, 0.03),
    ("g-4vcpu-16gb", "General Purpose 4 vCPU 16 GiB", "126.00", "0.1875", 5000, 0.025),
    ("g-8vcpu-32gb", "General Purpose 8 vCPU 32 GiB", "252.00", "0.375", 6000, 0.015),
    ("c-4vcpu-8gb", "CPU-Optimized 4 vCPU 8 GiB", "84.00", "0.125", 5000, 0.02),
]
# (slug, description, monthly cap, hourly price, share of databases created)
DATABASES = [
    ("db-pg-1vcpu-1gb", "Managed PostgreSQL 1 vCPU 1 GiB", "15.00", "0.02232", 0.45),
    ("db-pg-1vcpu-2gb", "Managed PostgreSQL 1 vCPU 2 GiB", "30.00", "0.04464", 0.25),
    ("db-pg-2vcpu-4gb", "Managed PostgreSQL 2 vCPU 4 GiB", "60.00", "0.08929", 0.2),
    ("db-pg-4vcpu-8gb", "Managed PostgreSQL 4 vCPU 8 GiB", "120.00", "0.17857", 0.1),
]
TIERS_FUNCTIONS = [{"up_to": 90000, "unit_price": 0}, {"up_to": None, "unit_price": 1.85e-05}]
TIERS_INFERENCE = [
    {"up_to": 1000000, "unit_price": 2e-07},
    {"up_to": 100000000, "unit_price": 1.5e-07},
    {"up_to": None, "unit_price": 1.2e-07},
]
REGIONS = ["nyc1", "nyc3", "sfo2", "sfo3", "tor1", "atl1", "lon1", "fra1", "ams3", "sgp1", "blr1", "syd1"]
REGION_INDEX = {name: i for i, name in enumerate(REGIONS)}

# How a resource is metered, which decides its usage rows (synthetic/usage_writer.py). The order
# matters: metering <= TRANSFER is one row per hour, metering >= DAILY_FLAT one row per day.
HOURLY, TRANSFER, DAILY_FLAT, DAILY_USAGE = 0, 1, 2, 3


def quantize(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _list_prices() -> list[dict]:
    rows: list[dict] = []

    def add(sku, product, desc, model, unit, price="", cap="", cap_hours="", incl="", tiers=""):
        rows.append(dict(sku=sku, product=product, description=desc, model=model, unit=unit,
                         unit_price=price, monthly_cap=cap, cap_hours=cap_hours,
                         included_transfer_gib=incl, tiers=tiers))

    for slug, desc, cap, price, incl, _share in DROPLETS:
        add(f"droplet-{slug}", "Droplets", desc, "hourly_capped", "hour", price, cap, HOURS_PER_CAP, str(incl))
    for slug, desc, cap, _price, _incl, _share in DROPLETS:
        backup_cap = quantize(Decimal(cap) * Decimal("0.2"), "0.01")  # weekly backups cost 20 % of the droplet
        backup_price = quantize(backup_cap / 672, "0.000001")
        add(f"backup-weekly-{slug}", "Backups", f"Weekly backups, {desc}", "hourly_capped", "hour",
            str(backup_price), str(backup_cap), HOURS_PER_CAP)
    add("lb-small", "Load Balancers", "Load Balancer, 1 node", "hourly_capped", "hour", "0.01786", "12.00",
        HOURS_PER_CAP)
    for slug, desc, cap, price, _share in DATABASES:
        add(slug, "Databases", desc, "hourly_capped", "hour", price, cap, HOURS_PER_CAP)
    add("volume-gib", "Volumes", "Block storage", "unit", "GiB-hour", "0.00014881")
    add("snapshot-gib", "Snapshots", "Snapshots", "unit", "GiB-hour", "0.00008929")
    add("transfer-out-gib", "Bandwidth", "Outbound data transfer", "transfer", "GiB", "0.01")
    add("functions-gib-s", "Functions", "Functions compute", "graduated", "GiB-second",
        tiers=json.dumps(TIERS_FUNCTIONS))
    add("inference-tokens", "Inference", "Serverless inference tokens", "graduated", "token",
        tiers=json.dumps(TIERS_INFERENCE))
    add("support-developer", "Support", "Developer support plan", "flat_monthly", "day", "24.00")
    add("support-standard", "Support", "Standard support plan", "flat_monthly", "day", "99.00")
    return rows


LIST_PRICES = _list_prices()
SKUS = [row["sku"] for row in LIST_PRICES]
SKU_INDEX = {sku: i for i, sku in enumerate(SKUS)}
DROPLET_SKUS = np.array([SKU_INDEX[f"droplet-{d[0]}"] for d in DROPLETS])
BACKUP_SKUS = np.array([SKU_INDEX[f"backup-weekly-{d[0]}"] for d in DROPLETS])  # same order as DROPLET_SKUS
DROPLET_SHARES = np.array([d[5] for d in DROPLETS]) / sum(d[5] for d in DROPLETS)
DATABASE_SKUS = np.array([SKU_INDEX[d[0]] for d in DATABASES])
DATABASE_SHARES = np.array([d[4] for d in DATABASES]) / sum(d[4] for d in DATABASES)
SKU_LOAD_BALANCER = SKU_INDEX["lb-small"]
SKU_VOLUME = SKU_INDEX["volume-gib"]
SKU_SNAPSHOT = SKU_INDEX["snapshot-gib"]
SKU_TRANSFER = SKU_INDEX["transfer-out-gib"]
SKU_FUNCTIONS = SKU_INDEX["functions-gib-s"]
SKU_INFERENCE = SKU_INDEX["inference-tokens"]
SKU_SUPPORT_DEVELOPER = SKU_INDEX["support-developer"]
SKU_SUPPORT_STANDARD = SKU_INDEX["support-standard"]


def _resource_id_prefix(sku: str) -> str:
    """``droplet-123``, ``vol-456``…; account-level SKUs have none (their resource_id is the customer_id)."""
    for sku_start, prefix in (("droplet-", "droplet-"), ("backup-", "backup-"), ("db-", "db-")):
        if sku.startswith(sku_start):
            return prefix
    return {"lb-small": "lb-", "volume-gib": "vol-", "snapshot-gib": "snap-"}.get(sku, "")


RESOURCE_ID_PREFIX = [_resource_id_prefix(sku) for sku in SKUS]
# Arrow dictionaries the usage rows take their strings from (index = SKU / region number;
# the extra last SKU is the unpriced one of the ``unknown_sku`` anomaly).
SKU_STRINGS = pa.array(SKUS + [NO_PRICE_SKU], pa.string())
REGION_STRINGS = pa.array(REGIONS, pa.string())


def price_change_sku(ordinal: int) -> str | None:
    """The droplet SKU whose price changes on the 16th of the month (rotating), if any."""
    if ordinal < month_ordinal(*PRICE_CHANGE_EPOCH):
        return None
    return f"droplet-{DROPLETS[ordinal % len(DROPLETS)][0]}"


def price_book_rows(ordinal: int) -> list[list[str]]:
    """All price rows effective before the end of month ``ordinal``, in PRICE_COLUMNS order.

    From PRICE_CHANGE_EPOCH on, every month one droplet SKU (rotating) changes
    price on the 16th: alternately a 5 % lower price (and cap) and back to list.
    """
    end_date = iso_date(month_start(ordinal + 1))
    change_dates: dict[str, list[str]] = {}
    for o in range(month_ordinal(*PRICE_CHANGE_EPOCH), ordinal + 1):
        year, month = ordinal_year_month(o)
        change_dates.setdefault(price_change_sku(o), []).append(f"{year:04d}-{month:02d}-16")
    rows = []
    for listed in LIST_PRICES:
        starts = [PRICE_BOOK_FROM] + change_dates.get(listed["sku"], [])
        for k, start in enumerate(starts):
            if start >= end_date:
                continue
            next_start = starts[k + 1] if k + 1 < len(starts) and starts[k + 1] < end_date else ""
            row = dict(listed)
            if k % 2 == 1:  # the discounted half of the alternation
                cap = quantize(Decimal(listed["monthly_cap"]) * Decimal("0.95"), "0.01")
                row["monthly_cap"] = str(cap)
                row["unit_price"] = str(quantize(cap / 672, "0.00001"))
            row["effective_from"], row["effective_to"] = start, next_start
            rows.append([row[column] for column in PRICE_COLUMNS])
    return rows
