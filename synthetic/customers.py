"""The customer base of a synthetic business, derived from ``(seed, customers)`` alone.

Every month of the same business sees the same pool: customers who signed up
before the month's end are listed, those closed before its start are inactive.
The pool is the requested number of *base* customers, who signed up in the
three years before ANCHOR, plus a steady stream of sign-ups after it, so that
consecutive months gain customers the way a growing business does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic import streams
from synthetic.catalogue import REGION_INDEX
from synthetic.months import DAY, month_ordinal, month_start

# Base customers sign up over HISTORY_MONTHS before ANCHOR; from ANCHOR on, SIGNUPS_PER_MONTH_SHARE of
# the requested count sign up every month, for STREAM_MONTHS months (the range a demo can reach).
ANCHOR = (2026, 1)
HISTORY_MONTHS = 36
STREAM_MONTHS = 120
SIGNUPS_PER_MONTH_SHARE = 0.012
# Sign-up instants of the base are u**0.8 of the history (u uniform): denser towards ANCHOR, as growth is.
SIGNUP_SKEW = 0.8
# Lifetime: exponential with a mean of 96 months (~1 % of customers close each month) plus one day.
MEAN_LIFETIME_DAYS = 96 * 30.44
# Customer ids of the ``unknown_customer`` anomaly start here, above any pool (asserted).
UNKNOWN_CUSTOMER_BASE = 9_900_000

# (country, US state, share of customers, home region): the US and the EU about a third each, then
# India, the UK and Australia: every tax regime of tax_rates.csv, including US states without sales tax.
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
GEO_SHARES = np.array([g[2] for g in GEOS]) / sum(g[2] for g in GEOS)
HOME_REGION = np.array([REGION_INDEX[g[3]] for g in GEOS])
# Business customers with a VAT id (reverse charge): 45 % in the EU, 20 % in the UK; nobody elsewhere.
EU_TAX_ID_SHARE, GB_TAX_ID_SHARE = 0.45, 0.2
# payment_method card / paypal / none: "none" customers are never charged (docs/decisions.md #19).
PAYMENT_METHODS = ["card", "paypal", "none"]
PAYMENT_METHOD_SHARES = [0.8, 0.15, 0.05]
# Long-lived resources per customer: 10 % have none (account-level usage only); the others
# round(lognormal(0.36, 1.1)), at least 1 (median e^0.36 ≈ 1.4), at most 3,000: a long tail of
# small accounts and a few with hundreds of resources.
NO_CORE_SHARE = 0.1
CORE_LOG_MEAN, CORE_LOG_SIGMA, CORE_MAX = 0.36, 1.1, 3000

ADJECTIVES = ["Acme", "Blue", "Bright", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Indigo",
              "Juniper", "Kite", "Lumen", "Maple", "Nimbus", "Orbit", "Pine", "Quartz", "River", "Summit",
              "Tidal", "Umber", "Vector", "Willow", "Xenon", "Yonder", "Zephyr", "Atlas", "Beacon", "Copper"]
NOUNS = ["Labs", "Studio", "Apps", "Data", "Cloud", "Systems", "Works", "Digital", "Analytics",
         "Media", "Games", "Health", "Logistics", "Robotics", "AI", "Software", "Commerce", "Bio"]
LEGAL_SUFFIX = {"US": "Inc", "DE": "GmbH", "FR": "SAS", "NL": "B.V.", "GB": "Ltd", "AU": "Pty Ltd", "IN": "Pvt Ltd"}


@dataclass(frozen=True)
class CustomerBase:
    """One array entry per customer of the pool (index = customer number - 1)."""

    requested: int            # the ``--customers`` argument: keys every random stream of the business
    pool: int                 # base customers + every sign-up of the stream
    created: np.ndarray       # epoch seconds
    closed: np.ndarray        # epoch seconds (may be far in the future)
    geo: np.ndarray           # index into GEOS
    country: np.ndarray
    has_tax_id: np.ndarray
    payment_method: np.ndarray  # index into PAYMENT_METHODS
    adjective: np.ndarray     # name parts: index into ADJECTIVES, NOUNS
    noun: np.ndarray
    tax_number: np.ndarray
    core_resources: np.ndarray  # how many long-lived resources the customer runs over its life
    ids: np.ndarray           # "c0000001", ... (object array)

    @property
    def home_region(self) -> np.ndarray:
        return HOME_REGION[self.geo]


def customer_base(seed: int, requested: int) -> CustomerBase:
    rng = streams.generator_rng(seed, requested, streams.CUSTOMER_BASE)
    anchor_ordinal = month_ordinal(*ANCHOR)
    anchor = month_start(anchor_ordinal)
    history_start = month_start(anchor_ordinal - HISTORY_MONTHS)
    signups_per_month = max(1, int(round(SIGNUPS_PER_MONTH_SHARE * requested)))
    u = np.sort(rng.random(requested) ** SIGNUP_SKEW)
    base_created = history_start + (u * (anchor - history_start)).astype(np.int64)
    signup = np.arange(signups_per_month * STREAM_MONTHS)
    months_after_anchor = signup // signups_per_month
    starts = np.array([month_start(o) for o in range(anchor_ordinal, anchor_ordinal + STREAM_MONTHS + 1)])
    month_seconds = starts[months_after_anchor + 1] - starts[months_after_anchor]
    stream_created = starts[months_after_anchor] + (rng.random(len(signup)) * month_seconds).astype(np.int64)
    # keep ids ascending with created_at inside each month of the stream
    stream_created = np.sort(stream_created)
    created = np.concatenate([base_created, stream_created]).astype(np.int64)
    pool = len(created)
    assert pool < UNKNOWN_CUSTOMER_BASE
    lifetime = rng.exponential(MEAN_LIFETIME_DAYS * DAY, pool).astype(np.int64) + DAY
    geo = rng.choice(len(GEOS), pool, p=GEO_SHARES)
    country = np.array([g[0] for g in GEOS])[geo]
    eu = np.isin(country, ["DE", "FR", "NL"])
    has_tax_id = ((eu & (rng.random(pool) < EU_TAX_ID_SHARE))
                  | ((country == "GB") & (rng.random(pool) < GB_TAX_ID_SHARE)))
    payment_method = rng.choice(len(PAYMENT_METHODS), pool, p=PAYMENT_METHOD_SHARES)
    adjective = rng.integers(0, len(ADJECTIVES), pool)
    noun = rng.integers(0, len(NOUNS), pool)
    tax_number = rng.integers(100_000_000, 999_999_999, pool)
    core = np.where(rng.random(pool) < NO_CORE_SHARE, 0,
                    np.clip(np.round(rng.lognormal(CORE_LOG_MEAN, CORE_LOG_SIGMA, pool)), 1, CORE_MAX)
                    ).astype(np.int64)
    return CustomerBase(requested=requested, pool=pool, created=created, closed=created + lifetime, geo=geo,
                        country=country, has_tax_id=has_tax_id, payment_method=payment_method,
                        adjective=adjective, noun=noun, tax_number=tax_number, core_resources=core,
                        ids=np.array([f"c{i + 1:07d}" for i in range(pool)], dtype=object))
