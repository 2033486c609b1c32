"""The four reference CSVs as they stand at the end of a month (docs/contract/inputs.md, "Reference files")."""
from __future__ import annotations

import pathlib

import numpy as np

from synthetic import streams
from synthetic.catalogue import price_book_rows
from synthetic.contract import REFERENCE_COLUMNS
from synthetic.customers import ADJECTIVES, GEOS, LEGAL_SUFFIX, NOUNS, PAYMENT_METHODS, CustomerBase
from synthetic.months import DAY, iso_utc, month_ordinal, month_start, ordinal_year_month
from synthetic.price_book import reapply_price_corrections, write_csv

TAX_FROM = "2020-01-01"
# (country, region, tax_name, rate, reverse_charge): EU VAT reverse-charged for customers with a tax id;
# US states missing here (CA, OR) have no sales tax on these services.
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
# Credits: a quarter of customers get a sign-up promo (amounts in dollars with their shares) that
# expires after 60 days (40 %), a year (40 %) or never (20 %); from GOODWILL_EPOCH on, 0.4 % of the
# requested customer count get a goodwill credit each month (median $15, half never expire, the
# others after 180 days).
PROMO_SHARE = 0.25
PROMO_AMOUNTS, PROMO_AMOUNT_SHARES = [10, 25, 50, 100, 200], [0.2, 0.3, 0.25, 0.2, 0.05]
PROMO_EXPIRY_SHARES = [0.4, 0.4, 0.2]  # 60 days, 365 days, never
GOODWILL_EPOCH = (2023, 1)
GOODWILL_PER_MONTH_SHARE = 0.004
GOODWILL_REASONS = ["service outage", "billing error", "support escalation", "migration assistance"]


def customer_rows(base: CustomerBase, month_end: int) -> tuple[list[tuple], np.ndarray]:
    """customers.csv rows of everyone who signed up before ``month_end``, and their pool indexes."""
    listed = np.flatnonzero(base.created < month_end)
    ids = base.ids[listed]
    created = iso_utc(base.created[listed])
    closed_ts = base.closed[listed]
    closed = np.where(closed_ts < month_end, np.array(iso_utc(closed_ts), dtype=object), "")
    country = base.country[listed]
    region = np.array([g[1] for g in GEOS], dtype=object)[base.geo[listed]]
    names = (np.array(ADJECTIVES, dtype=object)[base.adjective[listed]] + " "
             + np.array(NOUNS, dtype=object)[base.noun[listed]] + " "
             + np.array([LEGAL_SUFFIX[g[0]] for g in GEOS], dtype=object)[base.geo[listed]])
    slug = (np.array([a.lower() for a in ADJECTIVES], dtype=object)[base.adjective[listed]]
            + np.array([a.lower() for a in NOUNS], dtype=object)[base.noun[listed]])
    emails = "billing@" + slug + "-" + np.char.lstrip(ids.astype(str), "c").astype(object) + ".example"
    tax_number = base.tax_number[listed].astype(str).astype(object)
    tax_id = np.where(base.has_tax_id[listed], country.astype(object) + tax_number, "")
    tax_id = np.where((country == "NL") & base.has_tax_id[listed], tax_id + "B01", tax_id)
    payment = np.array(PAYMENT_METHODS, dtype=object)[base.payment_method[listed]]
    rows = list(zip(ids.tolist(), names.tolist(), emails.tolist(), country.tolist(), region.tolist(),
                    tax_id.tolist(), created, closed.tolist(), payment.tolist()))
    return rows, listed


def credit_rows(seed: int, base: CustomerBase, ordinal: int) -> list[list[str]]:
    """credit_grants.csv rows granted before the end of month ``ordinal``, in grant order."""
    month_end = month_start(ordinal + 1)
    rng = streams.generator_rng(seed, base.requested, streams.SIGNUP_CREDITS)
    pool = base.pool
    has_promo = rng.random(pool) < PROMO_SHARE
    amount = rng.choice(PROMO_AMOUNTS, pool, p=PROMO_AMOUNT_SHARES)
    expiry = rng.choice(3, pool, p=PROMO_EXPIRY_SHARES)
    expires = np.where(expiry == 0, base.created + 60 * DAY, base.created + 365 * DAY)
    promoted = np.flatnonzero(has_promo & (base.created < month_end))
    rows = []  # (granted at, then the CSV columns)
    expires_iso = iso_utc(expires[promoted])
    granted_iso = iso_utc(base.created[promoted])
    for j, i in enumerate(promoted.tolist()):
        rows.append((base.created[i], f"gp{i + 1:07d}", base.ids[i], f"{amount[i]}.00", "promo", granted_iso[j],
                     "" if expiry[i] == 2 else expires_iso[j], "signup promo"))
    per_month = max(1, int(round(GOODWILL_PER_MONTH_SHARE * base.requested)))
    for o in range(month_ordinal(*GOODWILL_EPOCH), ordinal + 1):
        first, after = month_start(o), month_start(o + 1)
        candidates = np.flatnonzero((base.created < first) & (base.closed > after))
        if len(candidates) == 0:
            continue
        grng = streams.generator_rng(seed, base.requested, streams.GOODWILL_CREDITS, o)
        who = grng.choice(candidates, min(per_month, len(candidates)), replace=False)
        granted = np.sort(first + (grng.random(len(who)) * (after - first)).astype(np.int64))
        dollars = np.round(np.clip(grng.lognormal(np.log(15), 0.8, len(who)), 1, 500), 2)
        never = grng.random(len(who)) < 0.5
        why = grng.integers(0, len(GOODWILL_REASONS), len(who))
        year, month = ordinal_year_month(o)
        granted_iso, expires_iso = iso_utc(granted), iso_utc(granted + 180 * DAY)
        for j in range(len(who)):
            rows.append((granted[j], f"gg{year:04d}{month:02d}{j + 1:05d}", base.ids[who[j]], f"{dollars[j]:.2f}",
                         "goodwill", granted_iso[j], "" if never[j] else expires_iso[j], GOODWILL_REASONS[why[j]]))
    rows = [r for r in rows if r[0] < month_end]
    rows.sort(key=lambda r: (r[0], r[1]))
    return [list(r[1:]) for r in rows]


def write_reference_files(landing: pathlib.Path, seed: int, base: CustomerBase, ordinal: int) -> tuple[int, np.ndarray]:
    """Write reference/*.csv for the end of month ``ordinal``; (bytes written, listed customers' indexes).

    The price book keeps every correction ``simulate`` recorded (docs/decisions.md #18).
    """
    folder = landing / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    rows, listed = customer_rows(base, month_start(ordinal + 1))
    size = write_csv(folder / "customers.csv", REFERENCE_COLUMNS["customers"], rows)
    size += write_csv(folder / "price_book.csv", REFERENCE_COLUMNS["price_book"], price_book_rows(ordinal))
    reapply_price_corrections(landing, folder / "price_book.csv")
    size += write_csv(folder / "tax_rates.csv", REFERENCE_COLUMNS["tax_rates"],
                      [list(t) + [TAX_FROM, ""] for t in TAX_RATES])
    size += write_csv(folder / "credit_grants.csv", REFERENCE_COLUMNS["credit_grants"],
                      credit_rows(seed, base, ordinal))
    return size, listed
