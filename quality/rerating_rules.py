"""docs/contract/billing-rules.md §1-§6 a second time, in Python, for control C2 (quality/rerating.py).

Written from the spec, not from the dbt models, so that a mistake in one shows
up as a difference against the other. Money and quantities are exact integers
(never floats): quantities in micro-units (×10^6), prices in 10^-8 dollars,
amounts in cents; products and divisions of group aggregates use Python ints
in numpy object arrays, so nothing overflows. The ~10M usage-daily rows at
100k customers are handled with numpy/pyarrow only; Python loops run per price
row, per credit grant and per tax jurisdiction, never per usage row.

Reference arguments are the snapshots as landed: a pyarrow Table or a list of
dicts, every value text (empty = none), columns as in docs/contract/inputs.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, localcontext

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

QTY = 10**6     # quantities keep 6 decimals (docs/contract/billing-rules.md §1)
PRICE = 10**8   # unit prices keep 8
CENTS = 10**2
MODELS = ("hourly_capped", "unit", "transfer", "graduated", "flat_monthly")
PER_RESOURCE = ("hourly_capped", "unit")  # rated per (resource, SKU); the others per (customer, SKU) on the month
DATE_BITS = 20  # price row index packed under the date / timestamp in one int64 sort key


def rows_of(reference) -> list[dict]:
    """A reference snapshot as a list of dicts of text; a pyarrow Table is converted."""
    return reference.to_pylist() if isinstance(reference, pa.Table) else list(reference)


def text(value) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def scaled(value, scale: int, what: str) -> int | None:
    """Exact integer value × scale of a decimal text; more precision than the spec allows is an error."""
    if text(value) is None:
        return None
    exact = Decimal(text(value)) * scale
    if exact != exact.to_integral_value():
        raise ValueError(f"{what} {value!r} has more decimals than docs/contract/billing-rules.md §1 allows")
    return int(exact)


def day(value) -> date | None:
    return None if text(value) is None else date.fromisoformat(text(value)[:10])


def instant(value) -> datetime | None:
    """An ISO-8601 time as a naive UTC datetime (a bare date is midnight UTC)."""
    if text(value) is None:
        return None
    parsed = datetime.fromisoformat(text(value).replace("Z", "+00:00"))
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def half_up(numerator, denominator):
    """round(numerator / denominator) half away from zero, exact, on ints or numpy object/int arrays."""
    twice = 2 * numerator
    positive = (twice + denominator) // (2 * denominator)
    negative = -((-twice + denominator) // (2 * denominator))
    return np.where(numerator < 0, negative, positive) if isinstance(numerator, np.ndarray) else (
        negative if numerator < 0 else positive)


@dataclass(frozen=True)
class PriceBook:
    """The price rows sorted by (sku, effective_from), as parallel numpy arrays plus their text columns."""

    skus: list[str]            # distinct SKUs, sorted; sku_code indexes it
    sku_code: np.ndarray       # per row
    start_day: np.ndarray      # effective_from, days since epoch
    end_day: np.ndarray        # effective_to (exclusive), days since epoch; open = max int
    model: np.ndarray          # index into MODELS
    unit_price: np.ndarray     # ×PRICE, object (None where empty)
    monthly_cap: np.ndarray    # cents, object (None where empty)
    cap_hours: np.ndarray      # ×QTY, object
    included_gib: np.ndarray   # ×QTY, object
    tiers: list                # per row: [(up_to ×QTY or None, price ×PRICE)]
    rows: list[dict]           # the text rows in the same order (product, description, unit)


def parse_price_book(reference) -> PriceBook:
    rows = sorted(rows_of(reference), key=lambda r: (r["sku"], day(r["effective_from"])))
    skus = sorted({r["sku"] for r in rows})
    code = {s: i for i, s in enumerate(skus)}
    epoch = date(1970, 1, 1)

    def tier_list(raw):
        tiers = json.loads(raw, parse_float=Decimal, parse_int=Decimal) if text(raw) else []
        return [(scaled(t.get("up_to"), QTY, "up_to"), scaled(t["unit_price"], PRICE, "tier unit_price")) for t in tiers]

    obj = lambda values: np.array(values, dtype=object)  # noqa: E731 - exact ints, None allowed
    return PriceBook(
        skus=skus,
        sku_code=np.array([code[r["sku"]] for r in rows], dtype=np.int64),
        start_day=np.array([(day(r["effective_from"]) - epoch).days for r in rows], dtype=np.int64),
        end_day=np.array([(day(r["effective_to"]) - epoch).days if day(r["effective_to"]) else 2**40 for r in rows],
                         dtype=np.int64),
        model=np.array([MODELS.index(r["model"]) for r in rows], dtype=np.int64),
        unit_price=obj([scaled(r["unit_price"], PRICE, "unit_price") for r in rows]),
        monthly_cap=obj([scaled(r["monthly_cap"], CENTS, "monthly_cap") for r in rows]),
        cap_hours=obj([scaled(r["cap_hours"], QTY, "cap_hours") for r in rows]),
        included_gib=obj([scaled(r["included_transfer_gib"], QTY, "included_transfer_gib") for r in rows]),
        tiers=[tier_list(r.get("tiers")) for r in rows],
        rows=rows,
    )


def rows_by_date(book: PriceBook, sku_code: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Per usage row, the price row whose [effective_from, effective_to) holds its date; -1 where none (§2)."""
    keys = (book.sku_code << DATE_BITS) + book.start_day
    wanted = (sku_code << DATE_BITS) + days
    found = np.searchsorted(keys, wanted, side="right") - 1
    safe = np.clip(found, 0, max(len(keys) - 1, 0))
    ok = (found >= 0) & (sku_code >= 0) & (book.sku_code[safe] == sku_code) & (days < book.end_day[safe])
    return np.where(ok, found, -1)


def month_end_rows(book: PriceBook, month_start: int, month_end: int) -> dict[int, int]:
    """Per SKU code, its row in effect on the month's last day, else its last row in effect during the
    month (docs/decisions.md 23): among the rows overlapping the month, the latest to start."""
    chosen: dict[int, int] = {}
    for i in np.flatnonzero((book.start_day < month_end) & (book.end_day > month_start)):
        chosen[int(book.sku_code[i])] = int(i)  # rows are sorted by start: the last one wins
    return chosen


def hourly_capped_amount(exact_e14, cap_cents):
    """§3 hourly_capped: min(round(Σ quantity·price, 2), cap) in cents; no cap → the rounded sum."""
    amount = half_up(exact_e14, QTY * PRICE // CENTS)
    uncapped = cap_cents == None  # noqa: E711 - elementwise on an object array
    return np.where(uncapped, amount, np.minimum(amount, np.where(uncapped, 0, cap_cents)))


def unit_amount(exact_e14):
    """§3 unit: round(Σ quantity·price, 2) in cents."""
    return half_up(exact_e14, QTY * PRICE // CENTS)


def transfer_allowance(hours, cap_hours, included_gib):
    """§3 transfer: included_transfer_gib · min(hours, cap_hours) / cap_hours, half up to 6 decimals (×QTY).
    0 where the row carries no allowance or no cap_hours."""
    included = np.where(included_gib == None, 0, included_gib)  # noqa: E711
    cap = np.where(cap_hours == None, 0, cap_hours)  # noqa: E711
    earns = ((included != 0) & (cap > 0)).astype(bool)
    cap = np.where(earns, cap, 1)
    return np.where(earns, half_up(included * np.minimum(hours, cap), cap), 0)


def transfer_overage(customer_codes, used, pool):
    """§3 transfer, one pool per customer drawn in sku order: rows sorted by (customer, sku); each SKU
    uses what is left after the SKUs before it. Returns overage_gib per row (×QTY)."""
    drawn = np.cumsum(used) - used  # drawn by earlier rows, across customers
    first = np.r_[True, customer_codes[1:] != customer_codes[:-1]]
    customer_start = np.maximum.accumulate(np.where(first, np.arange(len(used)), 0))
    drawn = drawn - drawn[customer_start]  # ... by earlier SKUs of the same customer
    left = np.maximum(pool - drawn, 0)
    return np.maximum(used - left, 0)


def transfer_amount(overage, price):
    """§3 transfer: round(overage_gib · unit_price, 2) in cents."""
    return half_up(overage * price, QTY * PRICE // CENTS)


def graduated_amount(quantity, tiers):
    """§3 graduated: each tier bills the units between the previous bound and its `up_to` at its price."""
    exact = np.zeros(len(quantity), dtype=object)
    lower = 0
    for up_to, price in tiers:
        upper = quantity if up_to is None else np.minimum(quantity, up_to)
        exact = exact + np.maximum(upper - lower, 0) * price
        if up_to is None:
            break
        lower = up_to
    return half_up(exact, QTY * PRICE // CENTS)


def flat_monthly_amount(price, active_days, days_in_month: int):
    """§3 flat_monthly: round(unit_price · active_days / days_in_month, 2) in cents."""
    return half_up(price * active_days, days_in_month * PRICE // CENTS)


def unscaled(values: pa.ChunkedArray | pa.Array, precision: int, scale: int) -> np.ndarray:
    """The exact integers behind a decimal column (value × 10^scale): int64 when every value fits,
    else Python ints (object). Reads the 16-byte two's-complement words directly, no per-row Python;
    a DECIMAL256 column (quantities out of the published range, see `wide_quantities`) goes through
    Python ints, exactly."""
    if pa.types.is_decimal256(values.type):
        return _unscaled_in_python(values, scale)
    values = pc.cast(values, pa.decimal128(precision, scale))
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    parts = []
    for chunk in chunks:
        if chunk.null_count:
            raise ValueError("a null amount or quantity cannot be rated")
        words = np.frombuffer(chunk.buffers()[1], dtype=np.int64).reshape(-1, 2)[chunk.offset:chunk.offset + len(chunk)]
        parts.append(words)
    words = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
    low, high = words[:, 0], words[:, 1]
    if np.array_equal(high, low >> 63):
        return low.copy()
    return high.astype(object) * 2**64 + low.view(np.uint64).astype(object)


def _unscaled_in_python(values: pa.ChunkedArray | pa.Array, scale: int) -> np.ndarray:
    items = values.to_pylist()
    if any(v is None for v in items):
        raise ValueError("a null amount or quantity cannot be rated")
    with localcontext(prec=120):  # scaleb rounds to the context's precision: 120 digits hold any DECIMAL256
        return np.array([int(v.scaleb(scale)) for v in items], dtype=object)


def widened(values: np.ndarray, factor: int = 1) -> np.ndarray:
    """`values` as Python ints (object) when a product by `factor`, or the sum of all of them, could leave
    int64 (numpy would wrap around silently); unchanged otherwise (the fast path of every real month)."""
    if values.dtype == object or not len(values):
        return values
    bound = (2**62 // max(int(factor), 1)) // len(values)
    return values.astype(object) if int(np.abs(values).max()) > bound else values


def wide_quantities(quantity: pa.ChunkedArray | pa.Array) -> bool:
    """Whether a quantity column holds a value that leaves DECIMAL(18,6): multiplied by a DECIMAL(18,8)
    price, it would leave DECIMAL128, so the exact products are taken in DECIMAL256 instead."""
    largest = pc.max(pc.abs(quantity)).as_py()
    return largest is not None and largest >= 10**12


def decimals(values, precision: int, scale: int) -> pa.Array:
    """Exact integers (value × 10^scale; None = null) as a DECIMAL(precision, scale) array; integers
    beyond int64 (a value out of the published range, judged by C14) go through Python Decimals."""
    try:
        ints = pa.array(values, pa.int64())
    except OverflowError:
        with localcontext(prec=120):
            return pa.array([None if v is None else Decimal(int(v)).scaleb(-scale) for v in values],
                            pa.decimal128(precision, scale))
    data = ints.fill_null(0).to_numpy()
    words = np.empty(2 * len(data), dtype=np.int64)
    words[0::2], words[1::2] = data, data >> 63
    validity = ints.buffers()[0] if ints.null_count else None
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(data), [validity, pa.py_buffer(words)],
                                 null_count=ints.null_count)
