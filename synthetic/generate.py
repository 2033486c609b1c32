"""Synthetic landing-zone generator (``billops generate``).

Writes, for one month, the reference snapshots (as they stand at the end of the
month), the month's usage Parquet files and the ground-truth anomaly manifest,
following ``landing-contract.md`` and ``synthetic-data.md``.

Design
------
* The customer base, each customer's long-lived ("core") resources and
  account-level subscriptions derive from ``(seed, customers)`` alone, so
  consecutive months continue the same business.  Short-lived ("ephemeral")
  resources are derived from ``(seed, customers, birth month)``; a month sees
  the ephemeral resources born in it and in the month before (they live < 28 d).
* Usage is expanded per day and per chunk of resources with numpy only (no
  Python loop over rows) and written by a background thread, one row group per
  chunk, so memory stays bounded.
* Everything random comes from ``np.random.default_rng(SeedSequence([...]))``
  with keys built from the arguments: same arguments, same bytes.
"""
from __future__ import annotations

import calendar
import csv
import datetime as dt
import json
import os
import pathlib
import queue
import threading
import time
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthetic.manifest import replace_step_lines

HOUR = 3600
DAY = 86400
UTC = dt.timezone.utc
EPOCH_2020 = int(dt.datetime(2020, 1, 1, tzinfo=UTC).timestamp())
# Base customers sign up over the 3 years before ANCHOR; after it a steady
# stream of sign-ups (every month) continues for STREAM_MONTHS months.
ANCHOR = (2026, 1)
HISTORY_MONTHS = 36
STREAM_MONTHS = 120
PRICE_CHANGE_EPOCH = (2024, 1)  # one mid-month price change every month from here
GOODWILL_EPOCH = (2023, 1)
PRICE_BOOK_FROM = "2020-01-01"
TAX_FROM = "2020-01-01"

CHUNK_ROWS = 500_000
CORE_BASE = 1
ACC_BASE = 5_000_000_000
EPH_BASE = 10_000_000_000
UNKNOWN_CUSTOMER_BASE = 9_900_000

# kinds of metering
K_HOURLY, K_TRANSFER, K_DAILY_FLAT, K_DAILY_USAGE = 0, 1, 2, 3

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
PARQUET_OPTS = dict(
    compression="zstd",
    compression_level=1,
    use_dictionary=["customer_id", "resource_id", "sku", "region"],
    write_statistics=True,
    version="2.6",
)
NO_PRICE_SKU = "gpu-h100x1-80gb"

# --------------------------------------------------------------------------
# Catalogue (DigitalOcean-like public prices)
# --------------------------------------------------------------------------
# (slug, description, monthly cap, hourly price, included transfer GiB, weight)
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
PRICE_COLUMNS = [
    "sku", "product", "description", "model", "unit", "unit_price", "monthly_cap",
    "cap_hours", "included_transfer_gib", "tiers", "effective_from", "effective_to",
]


def _q(x: Decimal, places: str) -> Decimal:
    return x.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _catalogue() -> list[dict]:
    rows: list[dict] = []

    def add(sku, product, desc, model, unit, price="", cap="", cap_hours="", incl="", tiers=""):
        rows.append(dict(sku=sku, product=product, description=desc, model=model, unit=unit,
                         unit_price=price, monthly_cap=cap, cap_hours=cap_hours,
                         included_transfer_gib=incl, tiers=tiers))

    for slug, desc, cap, price, incl, _w in DROPLETS:
        add(f"droplet-{slug}", "Droplets", desc, "hourly_capped", "hour", price, cap, "672", str(incl))
    for slug, desc, cap, _price, _incl, _w in DROPLETS:
        bcap = _q(Decimal(cap) * Decimal("0.2"), "0.01")
        bprice = _q(bcap / 672, "0.000001")
        add(f"backup-weekly-{slug}", "Backups", f"Weekly backups, {desc}", "hourly_capped", "hour",
            str(bprice), str(bcap), "672")
    add("lb-small", "Load Balancers", "Load Balancer, 1 node", "hourly_capped", "hour", "0.01786", "12.00", "672")
    for slug, desc, cap, price, _w in DATABASES:
        add(slug, "Databases", desc, "hourly_capped", "hour", price, cap, "672")
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


CATALOGUE = _catalogue()
SKUS = [r["sku"] for r in CATALOGUE]
SKU_INDEX = {s: i for i, s in enumerate(SKUS)}
N_DROPLET = len(DROPLETS)
DROPLET_SKU = np.array([SKU_INDEX[f"droplet-{d[0]}"] for d in DROPLETS])
BACKUP_SKU = np.array([SKU_INDEX[f"backup-weekly-{d[0]}"] for d in DROPLETS])
DROPLET_W = np.array([d[5] for d in DROPLETS]) / sum(d[5] for d in DROPLETS)
DB_SKU = np.array([SKU_INDEX[d[0]] for d in DATABASES])
DB_W = np.array([d[4] for d in DATABASES]) / sum(d[4] for d in DATABASES)
SKU_LB = SKU_INDEX["lb-small"]
SKU_VOL = SKU_INDEX["volume-gib"]
SKU_SNAP = SKU_INDEX["snapshot-gib"]
SKU_TRANSFER = SKU_INDEX["transfer-out-gib"]
SKU_FUNC = SKU_INDEX["functions-gib-s"]
SKU_INFER = SKU_INDEX["inference-tokens"]
SKU_SUP_DEV = SKU_INDEX["support-developer"]
SKU_SUP_STD = SKU_INDEX["support-standard"]
# resource id prefix per SKU
SKU_PREFIX = []
for _s in SKUS:
    if _s.startswith("droplet-"):
        SKU_PREFIX.append("droplet-")
    elif _s.startswith("backup-"):
        SKU_PREFIX.append("backup-")
    elif _s.startswith("db-"):
        SKU_PREFIX.append("db-")
    elif _s == "lb-small":
        SKU_PREFIX.append("lb-")
    elif _s == "volume-gib":
        SKU_PREFIX.append("vol-")
    elif _s == "snapshot-gib":
        SKU_PREFIX.append("snap-")
    else:
        SKU_PREFIX.append("")  # account level: resource_id = customer_id

REGIONS = ["nyc1", "nyc3", "sfo2", "sfo3", "tor1", "atl1", "lon1", "fra1", "ams3", "sgp1", "blr1", "syd1"]
REGION_INDEX = {r: i for i, r in enumerate(REGIONS)}

# (country, us state, weight, home region)
GEOS = [
    ("US", "NY", 0.09, "nyc3"),
    ("US", "TX", 0.07, "atl1"),
    ("US", "WA", 0.05, "sfo3"),
    ("US", "CA", 0.12, "sfo3"),
    ("US", "OR", 0.04, "sfo2"),
    ("DE", "", 0.12, "fra1"),
    ("FR", "", 0.08, "fra1"),
    ("NL", "", 0.06, "ams3"),
    ("GB", "", 0.12, "lon1"),
    ("AU", "", 0.08, "syd1"),
    ("IN", "", 0.17, "blr1"),
]
GEO_W = np.array([g[2] for g in GEOS]) / sum(g[2] for g in GEOS)

TAX_RATES = [
    ("DE", "", "VAT", "0.19", "true"),
    ("FR", "", "VAT", "0.20", "true"),
    ("NL", "", "VAT", "0.21", "true"),
    ("GB", "", "VAT", "0.20", "false"),
    ("AU", "", "GST", "0.10", "false"),
    ("IN", "", "GST", "0.18", "false"),
    ("US", "NY", "Sales tax", "0.08875", "false"),
    ("US", "TX", "Sales tax", "0.0825", "false"),
    ("US", "WA", "Sales tax", "0.065", "false"),
]

ADJ = ["Acme", "Blue", "Bright", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Indigo",
       "Juniper", "Kite", "Lumen", "Maple", "Nimbus", "Orbit", "Pine", "Quartz", "River", "Summit",
       "Tidal", "Umber", "Vector", "Willow", "Xenon", "Yonder", "Zephyr", "Atlas", "Beacon", "Copper"]
NOUN = ["Labs", "Studio", "Apps", "Data", "Cloud", "Systems", "Works", "Digital", "Analytics",
        "Media", "Games", "Health", "Logistics", "Robotics", "AI", "Software", "Commerce", "Bio"]
SUFFIX = {"US": "Inc", "DE": "GmbH", "FR": "SAS", "NL": "B.V.", "GB": "Ltd", "AU": "Pty Ltd", "IN": "Pvt Ltd"}


# --------------------------------------------------------------------------
# time helpers
# --------------------------------------------------------------------------
def _month_ord(y: int, m: int) -> int:
    return (y - 2020) * 12 + (m - 1)


def _ord_to_ym(o: int) -> tuple[int, int]:
    return 2020 + o // 12, o % 12 + 1


def _month_start(o: int) -> int:
    y, m = _ord_to_ym(o)
    return int(dt.datetime(y, m, 1, tzinfo=UTC).timestamp())


def _iso(ts: np.ndarray) -> list[str]:
    s = np.datetime_as_string(np.asarray(ts, dtype="int64").astype("datetime64[s]"), unit="s")
    return [x + "Z" for x in s.tolist()]


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


# --------------------------------------------------------------------------
# customers (month independent)
# --------------------------------------------------------------------------
def _customers(seed: int, n: int) -> dict:
    rng = _rng(seed, n, 1)
    anchor = _month_start(_month_ord(*ANCHOR))
    hist0 = _month_start(_month_ord(*ANCHOR) - HISTORY_MONTHS)
    rate = max(1, int(round(0.012 * n)))
    u = np.sort(rng.random(n) ** 0.8)
    base_created = hist0 + (u * (anchor - hist0)).astype(np.int64)
    j = np.arange(rate * STREAM_MONTHS)
    mo = _month_ord(*ANCHOR) + j // rate
    ms = np.array([_month_start(o) for o in range(_month_ord(*ANCHOR), _month_ord(*ANCHOR) + STREAM_MONTHS + 1)])
    rel = mo - _month_ord(*ANCHOR)
    mlen = ms[rel + 1] - ms[rel]
    stream_created = ms[rel] + (rng.random(len(j)) * mlen).astype(np.int64)
    # keep ids ascending with created_at inside each month of the stream
    stream_created = np.sort(stream_created)
    created = np.concatenate([base_created, stream_created]).astype(np.int64)
    p = len(created)
    assert p < UNKNOWN_CUSTOMER_BASE
    lifetime = rng.exponential(96 * 30.44 * DAY, p).astype(np.int64) + DAY
    closed = created + lifetime
    geo = rng.choice(len(GEOS), p, p=GEO_W)
    country = np.array([g[0] for g in GEOS])[geo]
    eu = np.isin(country, ["DE", "FR", "NL"])
    has_tax = (eu & (rng.random(p) < 0.45)) | ((country == "GB") & (rng.random(p) < 0.2))
    pay = rng.choice(3, p, p=[0.8, 0.15, 0.05])
    adj = rng.integers(0, len(ADJ), p)
    noun = rng.integers(0, len(NOUN), p)
    taxnum = rng.integers(100_000_000, 999_999_999, p)
    # core resources per customer: many small accounts, a few large ones
    n_core = np.where(rng.random(p) < 0.1, 0,
                      np.clip(np.round(rng.lognormal(0.36, 1.1, p)), 1, 3000)).astype(np.int64)
    return dict(n=n, pool=p, created=created, closed=closed, geo=geo, country=country,
                has_tax=has_tax, pay=pay, adj=adj, noun=noun, taxnum=taxnum, n_core=n_core,
                ids=np.array([f"c{i + 1:07d}" for i in range(p)], dtype=object))


def _resource_types(rng, k):
    """Draw SKU index and size (GiB multiplier, 1 for hours) for k resources."""
    t = rng.choice(5, k, p=[0.60, 0.15, 0.08, 0.05, 0.12])  # droplet vol snap lb db
    sku = np.empty(k, np.int64)
    size = np.ones(k, np.int64)
    d = t == 0
    sku[d] = DROPLET_SKU[rng.choice(N_DROPLET, d.sum(), p=DROPLET_W)]
    v = t == 1
    sku[v] = SKU_VOL
    size[v] = rng.choice([10, 25, 50, 100, 250, 500, 1000, 2000], v.sum(),
                         p=[0.1, 0.2, 0.2, 0.25, 0.12, 0.08, 0.04, 0.01])
    s = t == 2
    sku[s] = SKU_SNAP
    size[s] = np.clip(np.round(rng.lognormal(3.0, 1.0, s.sum())), 1, 4000).astype(np.int64)
    sku[t == 3] = SKU_LB
    b = t == 4
    sku[b] = DB_SKU[rng.choice(len(DB_SKU), b.sum(), p=DB_W)]
    return sku, size


def _home_region(c: dict) -> np.ndarray:
    return np.array([REGION_INDEX[g[3]] for g in GEOS])[c["geo"]]


def _core_resources(seed: int, c: dict) -> dict:
    rng = _rng(seed, c["n"], 2)
    cust = np.repeat(np.arange(c["pool"]), c["n_core"])
    k = len(cust)
    sku, size = _resource_types(rng, k)
    birth = c["created"][cust] + rng.exponential(20 * DAY, k).astype(np.int64)
    permanent = rng.random(k) < 0.75
    end = np.where(permanent, c["closed"][cust],
                   birth + rng.exponential(240 * DAY, k).astype(np.int64) + HOUR)
    end = np.minimum(end, c["closed"][cust])
    home = _home_region(c)[cust]
    region = np.where(rng.random(k) < 0.9, home, rng.integers(0, len(REGIONS), k))
    # weekly backups for 30 % of droplets: same life, same customer
    is_drop = np.isin(sku, DROPLET_SKU)
    bk = is_drop & (rng.random(k) < 0.3)
    # map droplet sku -> backup sku
    dmap = np.full(len(SKUS), -1)
    dmap[DROPLET_SKU] = BACKUP_SKU
    res = dict(
        cust=np.concatenate([cust, cust[bk]]),
        sku=np.concatenate([sku, dmap[sku[bk]]]),
        size=np.concatenate([size, np.ones(bk.sum(), np.int64)]),
        start=np.concatenate([birth, birth[bk]]),
        end=np.concatenate([end, end[bk]]),
        region=np.concatenate([region, region[bk]]),
    )
    res["num"] = CORE_BASE + np.arange(len(res["cust"]), dtype=np.int64)
    res["kind"] = np.zeros(len(res["cust"]), np.int8)
    res["level"] = np.zeros(len(res["cust"]))
    res["hoff"] = np.zeros(len(res["cust"]), np.int64)
    return res


def _account_resources(seed: int, c: dict) -> dict:
    rng = _rng(seed, c["n"], 3)
    p = c["pool"]
    ids = np.arange(p)
    home = _home_region(c)
    parts = []

    def add(mask, slot, sku, kind, start, end, level, hoff):
        m = mask & (start < end)
        parts.append(dict(cust=ids[m], sku=np.broadcast_to(sku, p)[m].astype(np.int64),
                          size=np.ones(m.sum(), np.int64), start=start[m], end=end[m],
                          region=home[m], num=ACC_BASE + ids[m] * 8 + slot,
                          kind=np.full(m.sum(), kind, np.int8), level=level[m], hoff=hoff[m]))

    created, closed = c["created"], c["closed"]
    zero_h = np.zeros(p, np.int64)
    # outbound transfer, hourly GiB, for most accounts with resources
    tr = (c["n_core"] > 0) & (rng.random(p) < 0.92) | (rng.random(p) < 0.3)
    add(tr, 0, SKU_TRANSFER, K_TRANSFER, created, closed,
        rng.lognormal(np.log(0.25), 1.3, p), zero_h)
    f_start = created + rng.exponential(90 * DAY, p).astype(np.int64)
    add(rng.random(p) < 0.06, 1, SKU_FUNC, K_DAILY_USAGE, f_start, closed,
        rng.lognormal(np.log(2500), 1.2, p), rng.integers(0, 24, p))
    i_start = created + rng.exponential(90 * DAY, p).astype(np.int64)
    add(rng.random(p) < 0.04, 2, SKU_INFER, K_DAILY_USAGE, i_start, closed,
        rng.lognormal(np.log(60000), 1.5, p), rng.integers(0, 24, p))
    s_start = created + rng.exponential(60 * DAY, p).astype(np.int64)
    s_end = np.minimum(closed, s_start + rng.exponential(18 * 30 * DAY, p).astype(np.int64))
    s_sku = np.where(rng.random(p) < 0.75, SKU_SUP_DEV, SKU_SUP_STD)
    add(rng.random(p) < 0.08, 3, s_sku, K_DAILY_FLAT, s_start, s_end, np.zeros(p), zero_h)
    return {k: np.concatenate([x[k] for x in parts]) for k in parts[0]}


def _ephemeral_resources(seed: int, c: dict, mo: int) -> dict:
    """Short-lived resources born in month ``mo`` (lifetime < 28 days)."""
    rng = _rng(seed, c["n"], 4, mo)
    ms, me = _month_start(mo), _month_start(mo + 1)
    alive = np.flatnonzero((c["created"] < me) & (c["closed"] > ms))
    cnt = rng.poisson(0.35, len(alive))
    cust = np.repeat(alive, cnt)
    k = len(cust)
    sku, size = _resource_types(rng, k)
    birth = np.maximum(ms + (rng.random(k) * (me - ms)).astype(np.int64), c["created"][cust])
    life = np.clip(rng.exponential(3 * DAY, k), 300, 27 * DAY).astype(np.int64)
    end = np.minimum(birth + life, c["closed"][cust])
    keep = (birth < end) & (birth < me)
    region = _home_region(c)[cust]
    return dict(cust=cust[keep], sku=sku[keep], size=size[keep], start=birth[keep], end=end[keep],
                region=region[keep], num=EPH_BASE + mo * 100_000_000 + np.flatnonzero(keep),
                kind=np.zeros(keep.sum(), np.int8), level=np.zeros(keep.sum()),
                hoff=np.zeros(keep.sum(), np.int64))


def _month_resources(seed: int, c: dict, mo: int) -> dict:
    ms, me = _month_start(mo), _month_start(mo + 1)
    parts = [_core_resources(seed, c), _account_resources(seed, c),
             _ephemeral_resources(seed, c, mo - 1), _ephemeral_resources(seed, c, mo)]
    r = {k: np.concatenate([x[k] for x in parts]) for k in parts[0]}
    m = (r["start"] < me) & (r["end"] > ms) & (r["start"] < r["end"])
    r = {k: v[m] for k, v in r.items()}
    order = np.lexsort((r["num"], r["cust"]))
    r = {k: v[order] for k, v in r.items()}
    prefix = np.array(SKU_PREFIX, dtype=object)[r["sku"]]
    acc = prefix == ""
    rid = np.where(acc, c["ids"][r["cust"]], prefix + r["num"].astype(str).astype(object))
    r["rid"] = pa.array(rid.tolist(), pa.string())
    return r


# --------------------------------------------------------------------------
# reference files
# --------------------------------------------------------------------------
def _write_csv(path: pathlib.Path, header: list[str], rows) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path.stat().st_size


def _reapply_price_corrections(out: pathlib.Path, price_book: pathlib.Path) -> None:
    """Keep the price corrections `simulate` landed (upstream state, recorded in the manifest).

    The price book is rewritten as it stands at the end of each generated month;
    a correction simulate made for an earlier month is part of that history, so
    it is applied again, in the order it was made (idempotent per correction).
    """
    from synthetic.simulate import _correct_price

    manifest = out / "_truth" / "anomalies.jsonl"
    if not manifest.exists():
        return
    for line in manifest.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("anomaly") == "price_correction":
            _correct_price(price_book, entry["sku"], entry["effective_from"], entry["effective_to"])


def _price_book(mo: int) -> list[list[str]]:
    """All price rows effective before the end of month ``mo``.

    From PRICE_CHANGE_EPOCH on, every month one droplet SKU (rotating) changes
    price on the 16th: alternately a 5 % lower price (and cap) and back to list.
    """
    me_date = _date(_month_start(mo + 1))
    changes: dict[str, list[str]] = {}
    for o in range(_month_ord(*PRICE_CHANGE_EPOCH), mo + 1):
        y, m = _ord_to_ym(o)
        sku = f"droplet-{DROPLETS[o % N_DROPLET][0]}"
        changes.setdefault(sku, []).append(f"{y:04d}-{m:02d}-16")
    out = []
    for row in CATALOGUE:
        dates = [PRICE_BOOK_FROM] + changes.get(row["sku"], [])
        for k, start in enumerate(dates):
            if start >= me_date:
                continue
            end = dates[k + 1] if k + 1 < len(dates) and dates[k + 1] < me_date else ""
            r = dict(row)
            if k % 2 == 1:
                cap = _q(Decimal(row["monthly_cap"]) * Decimal("0.95"), "0.01")
                r["monthly_cap"] = str(cap)
                r["unit_price"] = str(_q(cap / 672, "0.00001"))
            r["effective_from"], r["effective_to"] = start, end
            out.append([r[k2] for k2 in PRICE_COLUMNS])
    return out


def _price_change_sku(mo: int) -> str | None:
    if mo < _month_ord(*PRICE_CHANGE_EPOCH):
        return None
    return f"droplet-{DROPLETS[mo % N_DROPLET][0]}"


def _customer_rows(c: dict, me: int) -> tuple[list[list[str]], np.ndarray]:
    listed = np.flatnonzero(c["created"] < me)
    ids = c["ids"][listed]
    created = _iso(c["created"][listed])
    closed_ts = c["closed"][listed]
    closed = np.where(closed_ts < me, np.array(_iso(closed_ts), dtype=object), "")
    country = c["country"][listed]
    region = np.array([g[1] for g in GEOS], dtype=object)[c["geo"][listed]]
    names = (np.array(ADJ, dtype=object)[c["adj"][listed]] + " "
             + np.array(NOUN, dtype=object)[c["noun"][listed]] + " "
             + np.array([SUFFIX[x] for x in [g[0] for g in GEOS]], dtype=object)[c["geo"][listed]])
    slug = (np.array([a.lower() for a in ADJ], dtype=object)[c["adj"][listed]]
            + np.array([a.lower() for a in NOUN], dtype=object)[c["noun"][listed]])
    emails = "billing@" + slug + "-" + np.char.lstrip(ids.astype(str), "c").astype(object) + ".example"
    taxnum = c["taxnum"][listed].astype(str).astype(object)
    tax_id = np.where(c["has_tax"][listed], country.astype(object) + taxnum, "")
    tax_id = np.where((country == "NL") & c["has_tax"][listed], tax_id + "B01", tax_id)
    pay = np.array(["card", "paypal", "none"], dtype=object)[c["pay"][listed]]
    rows = list(zip(ids.tolist(), names.tolist(), emails.tolist(), country.tolist(), region.tolist(),
                    tax_id.tolist(), created, closed.tolist(), pay.tolist()))
    return rows, listed


def _credit_rows(seed: int, c: dict, mo: int) -> list[list[str]]:
    me = _month_start(mo + 1)
    rng = _rng(seed, c["n"], 5)
    p = c["pool"]
    has = rng.random(p) < 0.25
    amount = rng.choice([10, 25, 50, 100, 200], p, p=[0.2, 0.3, 0.25, 0.2, 0.05])
    exp_kind = rng.choice(3, p, p=[0.4, 0.4, 0.2])
    expires = np.where(exp_kind == 0, c["created"] + 60 * DAY, c["created"] + 365 * DAY)
    sel = np.flatnonzero(has & (c["created"] < me))
    rows = []
    exp_iso = _iso(expires[sel])
    gr_iso = _iso(c["created"][sel])
    for j, i in enumerate(sel.tolist()):
        rows.append((c["created"][i], f"gp{i + 1:07d}", c["ids"][i], f"{amount[i]}.00", "promo", gr_iso[j],
                     "" if exp_kind[i] == 2 else exp_iso[j], "signup promo"))
    reasons = ["service outage", "billing error", "support escalation", "migration assistance"]
    k = max(1, int(round(0.004 * c["n"])))
    for o in range(_month_ord(*GOODWILL_EPOCH), mo + 1):
        ms, mend = _month_start(o), _month_start(o + 1)
        cand = np.flatnonzero((c["created"] < ms) & (c["closed"] > mend))
        if len(cand) == 0:
            continue
        g = _rng(seed, c["n"], 6, o)
        who = g.choice(cand, min(k, len(cand)), replace=False)
        t = np.sort(ms + (g.random(len(who)) * (mend - ms)).astype(np.int64))
        amt = np.round(np.clip(g.lognormal(np.log(15), 0.8, len(who)), 1, 500), 2)
        never = g.random(len(who)) < 0.5
        why = g.integers(0, len(reasons), len(who))
        y, m = _ord_to_ym(o)
        t_iso, e_iso = _iso(t), _iso(t + 180 * DAY)
        for j in range(len(who)):
            rows.append((t[j], f"gg{y:04d}{m:02d}{j + 1:05d}", c["ids"][who[j]], f"{amt[j]:.2f}",
                         "goodwill", t_iso[j], "" if never[j] else e_iso[j], reasons[why[j]]))
    rows = [r for r in rows if r[0] < me]
    rows.sort(key=lambda r: (r[0], r[1]))
    return [list(r[1:]) for r in rows]


# --------------------------------------------------------------------------
# usage
# --------------------------------------------------------------------------
def _ts_array(us: np.ndarray) -> pa.Array:
    us = np.ascontiguousarray(us, dtype=np.int64)
    return pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), len(us), [None, pa.py_buffer(us)])


def _dec_array(micro: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    micro = np.asarray(micro, dtype=np.int64)
    buf = np.empty((len(micro), 2), np.int64)
    buf[:, 0] = micro
    buf[:, 1] = micro >> 63
    bitmap, nulls = None, 0
    if valid is not None and not valid.all():
        bitmap = pa.array(np.asarray(valid, bool), pa.bool_()).buffers()[1]
        nulls = int((~valid).sum())
    return pa.Array.from_buffers(pa.decimal128(18, 6), len(micro), [bitmap, pa.py_buffer(buf)],
                                 null_count=nulls)


def _dec_to_micro(arr: pa.Array) -> np.ndarray:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    raw = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    return raw.reshape(-1, 2)[arr.offset: arr.offset + len(arr), 0].copy()


def _ts_to_us(arr) -> np.ndarray:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.cast(pa.int64()).to_numpy(zero_copy_only=False).copy()


class _Writer:
    """Background Parquet writer: one ParquetWriter per open file, in order."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue(maxsize=1)
        self.err: BaseException | None = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        writers: dict[str, pq.ParquetWriter] = {}
        while True:
            item = self.q.get()
            if item is None:
                break
            path, table = item
            if self.err is not None:
                continue
            try:
                if table is None:
                    w = writers.pop(path, None)
                    if w is None:
                        w = pq.ParquetWriter(path, USAGE_SCHEMA, **PARQUET_OPTS)
                    w.close()
                else:
                    w = writers.get(path)
                    if w is None:
                        w = writers[path] = pq.ParquetWriter(path, USAGE_SCHEMA, **PARQUET_OPTS)
                    w.write_table(table, row_group_size=max(1, table.num_rows))
            except BaseException as e:  # noqa: BLE001
                self.err = e

    def put(self, path: str, table):
        if self.err is not None:
            raise self.err
        self.q.put((path, table))

    def finish(self):
        self.q.put(None)
        self.t.join()
        if self.err is not None:
            raise self.err


def _write_table(path: pathlib.Path, table: pa.Table) -> None:
    pq.write_table(table, path, row_group_size=max(1, table.num_rows), **PARQUET_OPTS)


class _Day:
    """Per-day expansion of the month's resources into usage rows."""

    def __init__(self, r: dict, cust_ids: pa.Array, seed: int, day_ord: int, ds: int):
        self.r, self.cust_ids, self.seed, self.day_ord, self.ds = r, cust_ids, seed, day_ord, ds
        de = ds + DAY
        act = np.flatnonzero((r["start"] < de) & (r["end"] > ds))
        self.act = act
        s = np.maximum(r["start"][act], ds)
        e = np.minimum(r["end"][act], de)
        kind = r["kind"][act]
        hourly = kind <= K_TRANSFER
        h0 = (s - ds) // HOUR
        h1 = -((ds - e) // HOUR)
        self.n = np.where(hourly, h1 - h0, 1).astype(np.int64)
        self.s, self.e, self.h0, self.kind = s, e, h0, kind
        cum = np.cumsum(self.n)
        self.total = int(cum[-1]) if len(cum) else 0
        # chunk boundaries on resource positions
        bounds = [0]
        if len(cum):
            targets = np.arange(CHUNK_ROWS, self.total, CHUNK_ROWS)
            bounds += (np.searchsorted(cum, targets, side="left") + 1).tolist()
            bounds.append(len(act))
        self.bounds = sorted(set(bounds)) if len(cum) else [0, 0]

    def chunks(self):
        for ci in range(len(self.bounds) - 1):
            a, b = self.bounds[ci], self.bounds[ci + 1]
            if b > a:
                yield ci, self._chunk(ci, a, b)

    def _chunk(self, ci: int, a: int, b: int) -> pa.Table:
        r, ds = self.r, self.ds
        act = self.act[a:b]
        n = self.n[a:b]
        s, e, h0, kind = self.s[a:b], self.e[a:b], self.h0[a:b], self.kind[a:b]
        total = int(n.sum())
        loc = np.repeat(np.arange(b - a), n)
        off = np.cumsum(n) - n
        k = np.arange(total, dtype=np.int64) - off[loc]
        t0 = ds + (h0[loc] + k) * HOUR
        st = np.maximum(t0, s[loc])
        en = np.minimum(t0 + HOUR, e[loc])
        # daily records (support: from the start of the active part of the day;
        # usage SKUs: at the resource's usual hour when alive then)
        daily = kind >= K_DAILY_FLAT
        if daily.any():
            hoff_t = ds + r["hoff"][act] * HOUR
            use_h = (kind == K_DAILY_USAGE) & (hoff_t < e)
            dst = np.where(use_h, np.maximum(hoff_t, s), s)
            den = np.minimum(dst + HOUR, e)
            dl = daily[loc]
            st = np.where(dl, dst[loc], st)
            en = np.where(dl, den[loc], en)
        dur = en - st
        rk = kind[loc]
        size = r["size"][act][loc]
        micro = (dur * size * 1_000_000 + HOUR // 2) // HOUR
        rng = _rng(self.seed, self.day_ord, ci, 8)
        tm = rk == K_TRANSFER
        if tm.any():
            hod = ((st[tm] - ds) // HOUR).astype(np.float64)
            diurnal = 1.0 + 0.5 * np.sin((hod - 8.0) * (2 * np.pi / 24))
            gib = r["level"][act][loc[tm]] * rng.gamma(2.0, 0.5, int(tm.sum())) * diurnal * dur[tm] / HOUR
            micro[tm] = np.maximum(1, np.round(gib * 1e6)).astype(np.int64)
        micro[rk == K_DAILY_FLAT] = 1_000_000
        um = rk == K_DAILY_USAGE
        if um.any():
            lv = r["level"][act][loc[um]] * rng.lognormal(0.0, 0.6, int(um.sum()))
            is_tok = r["sku"][act][loc[um]] == SKU_INFER
            micro[um] = np.where(is_tok, np.maximum(1, np.round(lv)) * 1_000_000,
                                 np.maximum(1, np.round(lv * 1000)) * 1000).astype(np.int64)
        evnum = r["num"][act][loc] * 1_000_000 + (st - EPOCH_2020) // HOUR
        ev = pc.binary_join_element_wise("e", pc.cast(pa.array(evnum), pa.string()), "")
        res_pos = pa.array(act[loc])
        return pa.Table.from_arrays(
            [
                ev,
                self.cust_ids.take(pa.array(r["cust"][act][loc])),
                r["rid"].take(res_pos),
                _SKU_ARR.take(pa.array(r["sku"][act][loc])),
                _REGION_ARR.take(pa.array(r["region"][act][loc])),
                _ts_array(st * 1_000_000),
                _ts_array(en * 1_000_000),
                _dec_array(micro),
            ],
            schema=USAGE_SCHEMA,
        )


_SKU_ARR = pa.array(SKUS + [NO_PRICE_SKU], pa.string())
_REGION_ARR = pa.array(REGIONS, pa.string())


# --------------------------------------------------------------------------
# anomalies
# --------------------------------------------------------------------------
BAD_KINDS = [
    # (anomaly name, reason)
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
NO_PRICE_KIND = ("unknown_sku", "no_price")


def _build_bad(templates: pa.Table, tpl_rows: np.ndarray, kinds: list[tuple[str, str]],
               counts: list[int], rng: np.random.Generator, ms: int, me: int, mo: int,
               seq0: int) -> tuple[pa.Table, list[dict]]:
    """Bad rows derived from valid templates (one rule broken per row)."""
    need = sum(counts)
    if templates.num_rows < need:
        pick = np.resize(np.arange(templates.num_rows), need)
    else:
        pick = rng.choice(templates.num_rows, need, replace=False)
    T = templates.take(pa.array(pick))
    orig_row = tpl_rows[pick]
    ev = np.array(T["event_id"].to_pylist(), dtype=object)
    cust = np.array(T["customer_id"].to_pylist(), dtype=object)
    res = np.array(T["resource_id"].to_pylist(), dtype=object)
    sku = np.array(T["sku"].to_pylist(), dtype=object)
    reg = np.array(T["region"].to_pylist(), dtype=object)
    st = _ts_to_us(T["start_time"])
    en = _ts_to_us(T["end_time"])
    qty = _dec_to_micro(T["quantity"])
    qvalid = np.ones(need, bool)
    label = np.repeat(np.arange(len(kinds)), counts)
    y, m = _ord_to_ym(mo)
    fresh = np.array([f"q{y:04d}{m:02d}{seq0 + i:08d}" for i in range(need)], dtype=object)
    names = [k[0] for k in kinds]
    for li, name in enumerate(names):
        sel = label == li
        if not sel.any():
            continue
        if name != "conflicting_duplicate":
            ev[sel] = fresh[sel]
        if name == "null_customer_id":
            cust[sel] = None
        elif name == "null_sku":
            sku[sel] = None
        elif name == "null_resource_id":
            res[sel] = None
        elif name == "null_quantity":
            qvalid[sel] = False
        elif name == "empty_interval":
            en[sel] = st[sel]
        elif name == "interval_over_one_hour":
            en[sel] = st[sel] + 2 * HOUR * 1_000_000
        elif name == "negative_quantity":
            qty[sel] = -qty[sel]
        elif name == "unknown_customer":
            newc = np.array([f"c{UNKNOWN_CUSTOMER_BASE + seq0 + i:07d}" for i in np.flatnonzero(sel)],
                            dtype=object)
            acct = res[sel] == cust[sel]
            res[sel] = np.where(acct, newc, res[sel])
            cust[sel] = newc
        elif name in ("start_in_previous_month", "start_in_next_month"):
            tod = (st[sel] // 1_000_000 - ms) % DAY
            base = (ms - DAY) if name == "start_in_previous_month" else me
            d = en[sel] - st[sel]
            st[sel] = (base + tod) * 1_000_000
            en[sel] = st[sel] + d
        elif name == "conflicting_duplicate":
            qty[sel] = qty[sel] + 1_000_000
        elif name == "unknown_sku":
            sku[sel] = NO_PRICE_SKU
            res[sel] = np.array([f"gpu-{x}" for x in np.flatnonzero(sel) + seq0], dtype=object)
            qty[sel] = np.maximum(1, qty[sel])
    order = rng.permutation(need)
    table = pa.Table.from_arrays(
        [pa.array(ev[order].tolist(), pa.string()), pa.array(cust[order].tolist(), pa.string()),
         pa.array(res[order].tolist(), pa.string()), pa.array(sku[order].tolist(), pa.string()),
         pa.array(reg[order].tolist(), pa.string()), _ts_array(st[order]), _ts_array(en[order]),
         _dec_array(qty[order], qvalid[order])],
        schema=USAGE_SCHEMA)
    entries = []
    for row, i in enumerate(order.tolist()):
        name, reason = kinds[label[i]]
        e = {"anomaly": name, "expect": "quarantine", "reason": reason, "event_id": ev[i],
             "customer_id": cust[i], "row_number": row + 1}
        if name == "conflicting_duplicate":
            e["original_row_number"] = int(orig_row[i]) + 1
        entries.append(e)
    return table, entries


# --------------------------------------------------------------------------
# main entry point
# --------------------------------------------------------------------------
def generate(month: str, customers: int, seed: int, out: pathlib.Path, anomalies: str = "default",
             progress: bool = True) -> dict:
    """Write reference snapshots, the month's usage and the truth manifest into ``out``.

    ``anomalies``: ``"none"`` (clean month), ``"default"`` (non-blocking anomalies)
    or ``"all"`` (adds usage for a SKU with no price, which blocks the month).
    """
    t_begin = time.perf_counter()
    if anomalies not in ("none", "default", "all"):
        raise ValueError(f"anomalies must be none, default or all, not {anomalies!r}")
    if customers < 1:
        raise ValueError("customers must be >= 1")
    y, m = (int(x) for x in month.split("-"))
    if not (1 <= m <= 12):
        raise ValueError(f"bad month {month!r}")
    month = f"{y:04d}-{m:02d}"
    mo = _month_ord(y, m)
    ms, me = _month_start(mo), _month_start(mo + 1)
    ndays = calendar.monthrange(y, m)[1]
    out = pathlib.Path(out)
    ref = out / "reference"
    ref.mkdir(parents=True, exist_ok=True)

    # ---- reference snapshots
    c = _customers(seed, customers)
    cust_rows, listed = _customer_rows(c, me)
    nbytes = 0
    nbytes += _write_csv(ref / "customers.csv",
                         ["customer_id", "name", "email", "country", "region", "tax_id", "created_at",
                          "closed_at", "payment_method"], cust_rows)
    nbytes += _write_csv(ref / "price_book.csv", PRICE_COLUMNS, _price_book(mo))
    _reapply_price_corrections(out, ref / "price_book.csv")
    nbytes += _write_csv(ref / "tax_rates.csv",
                         ["country", "region", "tax_name", "rate", "reverse_charge", "effective_from",
                          "effective_to"], [list(t) + [TAX_FROM, ""] for t in TAX_RATES])
    credit_rows = _credit_rows(seed, c, mo)
    nbytes += _write_csv(ref / "credit_grants.csv",
                         ["grant_id", "customer_id", "amount", "kind", "granted_at", "expires_at",
                          "reason"], credit_rows)
    files = 4

    # ---- month resources
    r = _month_resources(seed, c, mo)
    cust_ids = pa.array(c["ids"].tolist(), pa.string())
    ov = np.minimum(r["end"], me) - np.maximum(r["start"], ms)
    est_rows = int(np.where(r["kind"] <= K_TRANSFER, ov // HOUR + 1, ov // DAY + 1).sum())

    # ---- anomaly plan
    arng = _rng(seed, customers, 9, mo)
    days = np.arange(1, ndays + 1)
    red_day = int(arng.choice(days[1:-1]))
    rest = days[(days != red_day) & (days < ndays)]
    late_days = sorted(arng.choice(rest, 2, replace=False).tolist())
    rest = rest[~np.isin(rest, late_days)]
    bad_days = sorted(arng.choice(rest, 3, replace=False).tolist())
    if anomalies == "none":
        red_day, late_days, bad_days = -1, [], []
    kinds = list(BAD_KINDS) + ([NO_PRICE_KIND] if anomalies == "all" else [])
    per_kind = max(1, int(round(2e-5 * est_rows)))
    # split each kind over the bad days (at least one row of every kind)
    day_counts = {d: [0] * len(kinds) for d in bad_days}
    for ki in range(len(kinds)):
        split = np.array_split(np.arange(per_kind), len(bad_days)) if bad_days else []
        for d, part in zip(bad_days, split):
            day_counts[d][ki] = len(part)
    red_rate = min(1.0, 0.0005 * est_rows / max(1, est_rows / ndays))  # ~0.05 % of the month
    late_rate = 0.01

    # ---- clean old files of this month
    usage = out / "usage"
    day_dirs = []
    for d in range(1, ndays + 1):
        dd = usage / f"dt={y:04d}-{m:02d}-{d:02d}"
        dd.mkdir(parents=True, exist_ok=True)
        for name in ("part-0.parquet", "part-1-redelivery.parquet", "part-2-late.parquet",
                     "part-3-bad.parquet"):
            (dd / name).unlink(missing_ok=True)
        day_dirs.append(dd)

    manifest: list[str] = []
    by_kind: dict[str, int] = {}

    def note(e: dict) -> None:
        by_kind[e["anomaly"]] = by_kind.get(e["anomaly"], 0) + 1
        manifest.append(json.dumps({"step": "generate", "month": month, **e}))
    counts = {"part-0": 0, "redelivery": 0, "late": 0, "bad": 0}
    n_files = 0
    writer = _Writer()
    prog = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(TextColumn(f"generate {month}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn())
        prog.start()
        task = prog.add_task("days", total=ndays, rows=0)
    seq = 0
    try:
        for d in range(1, ndays + 1):
            ds = ms + (d - 1) * DAY
            dd = day_dirs[d - 1]
            rel = f"usage/{dd.name}"
            day = _Day(r, cust_ids, seed, mo * 31 + d, ds)
            drng = _rng(seed, customers, 10, mo, d)
            row0 = 0
            red_parts, red_rows, late_parts, tpl_parts, tpl_rows = [], [], [], [], []
            need_tpl = sum(day_counts.get(d, []))
            for ci, tbl in day.chunks():
                nrow = tbl.num_rows
                if d in late_days:
                    kl = max(3 if ci == 0 else 0, int(round(late_rate * nrow)))
                    held = np.zeros(nrow, bool)
                    held[drng.choice(nrow, min(kl, nrow - 1), replace=False)] = True
                    late_parts.append(tbl.filter(pa.array(held)))
                    tbl = tbl.filter(pa.array(~held))
                    nrow = tbl.num_rows
                if d == red_day:
                    kr = max(5 if ci == 0 else 0, int(round(red_rate * nrow)))
                    pos = np.sort(drng.choice(nrow, min(kr, nrow), replace=False))
                    red_parts.append(tbl.take(pa.array(pos)))
                    red_rows.append(pos + row0)
                if need_tpl:
                    kt = min(nrow, int(np.ceil(need_tpl * 4 * nrow / max(1, day.total))) + 1)
                    pos = np.sort(drng.choice(nrow, kt, replace=False))
                    tpl_parts.append(tbl.take(pa.array(pos)))
                    tpl_rows.append(pos + row0)
                writer.put(str(dd / "part-0.parquet"), tbl)
                row0 += nrow
            writer.put(str(dd / "part-0.parquet"), None)  # close (creates an empty file if no rows)
            n_files += 1
            counts["part-0"] += row0
            if red_parts:
                rt = pa.concat_tables(red_parts)
                _write_table(dd / "part-1-redelivery.parquet", rt)
                n_files += 1
                counts["redelivery"] += rt.num_rows
                f = f"{rel}/part-1-redelivery.parquet"
                orig = np.concatenate(red_rows)
                for i, (ev, cu) in enumerate(zip(rt["event_id"].to_pylist(), rt["customer_id"].to_pylist())):
                    note({"anomaly": "redelivery", "expect": "dedupe", "event_id": ev,
                                     "customer_id": cu, "file": f, "row_number": i + 1,
                                     "original_file": f"{rel}/part-0.parquet",
                                     "original_row_number": int(orig[i]) + 1})
            if late_parts:
                lt = pa.concat_tables(late_parts)
                _write_table(dd / "part-2-late.parquet", lt)
                n_files += 1
                counts["late"] += lt.num_rows
                note({"anomaly": "late_file", "expect": "accept",
                                 "file": f"{rel}/part-2-late.parquet", "rows": lt.num_rows,
                                 "day": dd.name[3:]})
            if need_tpl and not tpl_parts:
                later = [b for b in bad_days if b > d]
                if later:
                    day_counts[later[0]] = [x + y for x, y in zip(day_counts[later[0]], day_counts[d])]
            if need_tpl and tpl_parts:
                bt, entries = _build_bad(pa.concat_tables(tpl_parts), np.concatenate(tpl_rows),
                                         kinds, day_counts[d], drng, ms, me, mo, seq)
                seq += bt.num_rows
                _write_table(dd / "part-3-bad.parquet", bt)
                n_files += 1
                counts["bad"] += bt.num_rows
                for e in entries:
                    e["file"] = f"{rel}/part-3-bad.parquet"
                    if "original_row_number" in e:
                        e["original_file"] = f"{rel}/part-0.parquet"
                    note(e)
            if prog is not None:
                prog.update(task, advance=1, rows=sum(counts.values()))
    finally:
        try:
            writer.finish()
        finally:
            if prog is not None:
                prog.stop()

    for d in range(ndays):
        for p in day_dirs[d].glob("part-*.parquet"):
            nbytes += p.stat().st_size

    # ---- manifest (idempotent per generate+month; other lines kept)
    replace_step_lines(out, "generate", month, manifest)
    return {
        "month": month,
        "seed": seed,
        "anomalies_set": anomalies,
        "customers": int(len(listed)),
        "active_customers": int(((c["created"] < me) & (c["closed"] > ms)).sum()),
        "resources": int(len(r["num"])),
        "rows": int(sum(counts.values())),
        "rows_by_file": counts,
        "files": files + n_files,
        "bytes": int(nbytes),
        "anomalies": by_kind,
        "price_change_sku": _price_change_sku(mo),
        "seconds": round(time.perf_counter() - t_begin, 3),
    }
