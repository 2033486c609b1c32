"""The resources a synthetic business runs, and those alive in one month.

Three kinds, each from its own random stream:

* core resources (droplets, volumes, snapshots, load balancers, databases, and
  weekly backups of some droplets), long-lived, derived from ``(seed, customers)``;
* account-level subscriptions (outbound transfer, functions, inference tokens,
  support plans), whose resource_id is the customer_id;
* ephemeral resources, born in a month and living less than 28 days, derived
  from ``(seed, customers, birth month)``: a month sees those born in it and in
  the month before.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pyarrow as pa

from synthetic import streams
from synthetic.catalogue import (
    BACKUP_SKUS, DAILY_FLAT, DAILY_USAGE, DATABASE_SHARES, DATABASE_SKUS, DROPLET_SHARES, DROPLET_SKUS, HOURLY,
    REGIONS, RESOURCE_ID_PREFIX, SKU_FUNCTIONS, SKU_INFERENCE, SKU_LOAD_BALANCER, SKU_SNAPSHOT,
    SKU_SUPPORT_DEVELOPER, SKU_SUPPORT_STANDARD, SKU_TRANSFER, SKU_VOLUME, SKUS, TRANSFER,
)
from synthetic.customers import CustomerBase
from synthetic.months import DAY, HOUR, month_start

# Resource numbers (the digits of resource_id) never collide between the kinds:
CORE_NUMBERS_FROM = 1
ACCOUNT_NUMBERS_FROM = 5_000_000_000       # + customer index * 8 + subscription slot
EPHEMERAL_NUMBERS_FROM = 10_000_000_000    # + birth month ordinal * 100,000,000 + index

# Kinds of core and ephemeral resources: droplets dominate; volumes, databases, snapshots, load balancers.
TYPE_SHARES = [0.60, 0.15, 0.08, 0.05, 0.12]  # droplet, volume, snapshot, load balancer, database
VOLUME_SIZES_GIB = [10, 25, 50, 100, 250, 500, 1000, 2000]
VOLUME_SIZE_SHARES = [0.1, 0.2, 0.2, 0.25, 0.12, 0.08, 0.04, 0.01]
SNAPSHOT_LOG_MEAN, SNAPSHOT_LOG_SIGMA, SNAPSHOT_MAX_GIB = 3.0, 1.0, 4000  # median e^3 ≈ 20 GiB
# Core resources: created on average 20 days after the account; 75 % run until the account closes,
# the rest are deleted after exponential(240 days); 90 % in the customer's home region.
CORE_MEAN_DELAY_DAYS, CORE_PERMANENT_SHARE, CORE_MEAN_LIFE_DAYS, HOME_REGION_SHARE = 20, 0.75, 240, 0.9
BACKUP_SHARE = 0.3  # droplets with weekly backups (same life, same customer)
# Ephemeral resources: Poisson(0.35) per active customer per month, living exponential(3 days)
# clipped to [5 minutes, 27 days] (so a month only needs its own and the previous month's births).
EPHEMERAL_PER_CUSTOMER, EPHEMERAL_MEAN_LIFE_DAYS = 0.35, 3


@dataclass(frozen=True)
class Resources:
    """One array entry per resource."""

    customer: np.ndarray   # index into the CustomerBase
    sku: np.ndarray        # index into catalogue.SKUS
    size: np.ndarray       # GiB for volumes and snapshots, 1 otherwise
    start: np.ndarray      # epoch seconds
    end: np.ndarray        # epoch seconds (exclusive)
    region: np.ndarray     # index into catalogue.REGIONS
    number: np.ndarray     # resource number (the digits of resource_id)
    metering: np.ndarray   # catalogue.HOURLY, TRANSFER, DAILY_FLAT or DAILY_USAGE
    level: np.ndarray      # TRANSFER: mean GiB per hour; DAILY_USAGE: mean units per day
    usual_hour: np.ndarray  # DAILY_USAGE: hour of the day its daily record starts
    resource_ids: pa.Array | None = None  # set for a month's resources (month_resources)

    def take(self, index: np.ndarray) -> Resources:
        return Resources(**{f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "resource_ids"})

    @staticmethod
    def concat(parts: list[Resources]) -> Resources:
        return Resources(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                            for f in fields(Resources) if f.name != "resource_ids"})


def _draw_types(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """SKU index and size (GiB, 1 when not storage) of k new resources."""
    kind = rng.choice(5, k, p=TYPE_SHARES)
    sku = np.empty(k, np.int64)
    size = np.ones(k, np.int64)
    droplet = kind == 0
    sku[droplet] = DROPLET_SKUS[rng.choice(len(DROPLET_SKUS), droplet.sum(), p=DROPLET_SHARES)]
    volume = kind == 1
    sku[volume] = SKU_VOLUME
    size[volume] = rng.choice(VOLUME_SIZES_GIB, volume.sum(), p=VOLUME_SIZE_SHARES)
    snapshot = kind == 2
    sku[snapshot] = SKU_SNAPSHOT
    size[snapshot] = np.clip(np.round(rng.lognormal(SNAPSHOT_LOG_MEAN, SNAPSHOT_LOG_SIGMA, snapshot.sum())),
                             1, SNAPSHOT_MAX_GIB).astype(np.int64)
    sku[kind == 3] = SKU_LOAD_BALANCER
    database = kind == 4
    sku[database] = DATABASE_SKUS[rng.choice(len(DATABASE_SKUS), database.sum(), p=DATABASE_SHARES)]
    return sku, size


def _core_resources(seed: int, base: CustomerBase) -> Resources:
    rng = streams.generator_rng(seed, base.requested, streams.CORE_RESOURCES)
    owner = np.repeat(np.arange(base.pool), base.core_resources)
    k = len(owner)
    sku, size = _draw_types(rng, k)
    birth = base.created[owner] + rng.exponential(CORE_MEAN_DELAY_DAYS * DAY, k).astype(np.int64)
    permanent = rng.random(k) < CORE_PERMANENT_SHARE
    end = np.where(permanent, base.closed[owner],
                   birth + rng.exponential(CORE_MEAN_LIFE_DAYS * DAY, k).astype(np.int64) + HOUR)
    end = np.minimum(end, base.closed[owner])
    home = base.home_region[owner]
    region = np.where(rng.random(k) < HOME_REGION_SHARE, home, rng.integers(0, len(REGIONS), k))
    backed_up = np.isin(sku, DROPLET_SKUS) & (rng.random(k) < BACKUP_SHARE)
    backup_of = np.full(len(SKUS), -1)
    backup_of[DROPLET_SKUS] = BACKUP_SKUS
    count = k + int(backed_up.sum())
    return Resources(
        customer=np.concatenate([owner, owner[backed_up]]),
        sku=np.concatenate([sku, backup_of[sku[backed_up]]]),
        size=np.concatenate([size, np.ones(backed_up.sum(), np.int64)]),
        start=np.concatenate([birth, birth[backed_up]]),
        end=np.concatenate([end, end[backed_up]]),
        region=np.concatenate([region, region[backed_up]]),
        number=CORE_NUMBERS_FROM + np.arange(count, dtype=np.int64),
        metering=np.full(count, HOURLY, np.int8),
        level=np.zeros(count),
        usual_hour=np.zeros(count, np.int64),
    )


def _account_resources(seed: int, base: CustomerBase) -> Resources:
    """Subscriptions: transfer (most accounts), functions (6 %), inference (4 %), a support plan (8 %)."""
    rng = streams.generator_rng(seed, base.requested, streams.ACCOUNT_RESOURCES)
    pool = base.pool
    customer = np.arange(pool)
    parts = []

    def add(mask, slot, sku, metering, start, end, level, usual_hour):
        has = mask & (start < end)
        parts.append(Resources(
            customer=customer[has], sku=np.broadcast_to(sku, pool)[has].astype(np.int64),
            size=np.ones(has.sum(), np.int64), start=start[has], end=end[has], region=base.home_region[has],
            number=ACCOUNT_NUMBERS_FROM + customer[has] * 8 + slot,
            metering=np.full(has.sum(), metering, np.int8), level=level[has], usual_hour=usual_hour[has]))

    created, closed = base.created, base.closed
    midnight = np.zeros(pool, np.int64)
    # outbound transfer: 92 % of accounts with resources, and 30 % of all (account-level traffic);
    # a median of 0.25 GiB an hour
    transfer = (base.core_resources > 0) & (rng.random(pool) < 0.92) | (rng.random(pool) < 0.3)
    add(transfer, 0, SKU_TRANSFER, TRANSFER, created, closed, rng.lognormal(np.log(0.25), 1.3, pool), midnight)
    # functions: a median of 2,500 GiB-seconds a day, one record a day at the account's usual hour
    functions_start = created + rng.exponential(90 * DAY, pool).astype(np.int64)
    add(rng.random(pool) < 0.06, 1, SKU_FUNCTIONS, DAILY_USAGE, functions_start, closed,
        rng.lognormal(np.log(2500), 1.2, pool), rng.integers(0, 24, pool))
    # inference: a median of 60,000 tokens a day (most stay in the first graduated tier)
    inference_start = created + rng.exponential(90 * DAY, pool).astype(np.int64)
    add(rng.random(pool) < 0.04, 2, SKU_INFERENCE, DAILY_USAGE, inference_start, closed,
        rng.lognormal(np.log(60000), 1.5, pool), rng.integers(0, 24, pool))
    # support plans: bought about two months in, kept ~18 months; three in four are Developer
    support_start = created + rng.exponential(60 * DAY, pool).astype(np.int64)
    support_end = np.minimum(closed, support_start + rng.exponential(18 * 30 * DAY, pool).astype(np.int64))
    support_sku = np.where(rng.random(pool) < 0.75, SKU_SUPPORT_DEVELOPER, SKU_SUPPORT_STANDARD)
    add(rng.random(pool) < 0.08, 3, support_sku, DAILY_FLAT, support_start, support_end, np.zeros(pool), midnight)
    return Resources.concat(parts)


def _ephemeral_resources(seed: int, base: CustomerBase, birth_month: int) -> Resources:
    """Short-lived resources born in month ``birth_month`` (ordinal; lifetime < 28 days)."""
    rng = streams.generator_rng(seed, base.requested, streams.EPHEMERAL_RESOURCES, birth_month)
    first, after = month_start(birth_month), month_start(birth_month + 1)
    active = np.flatnonzero((base.created < after) & (base.closed > first))
    owner = np.repeat(active, rng.poisson(EPHEMERAL_PER_CUSTOMER, len(active)))
    k = len(owner)
    sku, size = _draw_types(rng, k)
    birth = np.maximum(first + (rng.random(k) * (after - first)).astype(np.int64), base.created[owner])
    life = np.clip(rng.exponential(EPHEMERAL_MEAN_LIFE_DAYS * DAY, k), 300, 27 * DAY).astype(np.int64)
    end = np.minimum(birth + life, base.closed[owner])
    keep = (birth < end) & (birth < after)
    kept = int(keep.sum())
    return Resources(customer=owner[keep], sku=sku[keep], size=size[keep], start=birth[keep], end=end[keep],
                     region=base.home_region[owner][keep],
                     number=EPHEMERAL_NUMBERS_FROM + birth_month * 100_000_000 + np.flatnonzero(keep),
                     metering=np.full(kept, HOURLY, np.int8), level=np.zeros(kept),
                     usual_hour=np.zeros(kept, np.int64))


def month_resources(seed: int, base: CustomerBase, ordinal: int) -> Resources:
    """Every resource alive during month ``ordinal``, ordered by customer then number, with its resource_id."""
    first, after = month_start(ordinal), month_start(ordinal + 1)
    every = Resources.concat([_core_resources(seed, base), _account_resources(seed, base),
                              _ephemeral_resources(seed, base, ordinal - 1),
                              _ephemeral_resources(seed, base, ordinal)])
    alive = every.take((every.start < after) & (every.end > first) & (every.start < every.end))
    month = alive.take(np.lexsort((alive.number, alive.customer)))
    prefix = np.array(RESOURCE_ID_PREFIX, dtype=object)[month.sku]
    account_level = prefix == ""
    resource_ids = np.where(account_level, base.ids[month.customer],
                            prefix + month.number.astype(str).astype(object))
    return replace(month, resource_ids=pa.array(resource_ids.tolist(), pa.string()))
