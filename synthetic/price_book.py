"""The landed ``reference/price_book.csv``: write it, and correct one SKU's price for one month.

A true over-billing claim needs a cause upstream (docs/contract/synthetic-data.md):
``simulate`` lowers one hourly SKU's price for the previous month
(``correct_price``), and ``generate``, which rewrites the price book as it stands
at the end of each month, applies every correction recorded in the manifest
again (``reapply_price_corrections``, docs/decisions.md #18). Both steps use this
module, so the file is read and written one way.
"""
from __future__ import annotations

import csv
import json
import os
import pathlib
from decimal import ROUND_HALF_UP, Decimal

from synthetic.contract import REFERENCE_COLUMNS

PRICE_COLUMNS = REFERENCE_COLUMNS["price_book"]
PRICE_CORRECTION = Decimal("0.90")  # the corrected price (and cap) is 10 % lower
_SKU = PRICE_COLUMNS.index("sku")
_MODEL = PRICE_COLUMNS.index("model")
_PRICE = PRICE_COLUMNS.index("unit_price")
_CAP = PRICE_COLUMNS.index("monthly_cap")
_FROM = PRICE_COLUMNS.index("effective_from")
_TO = PRICE_COLUMNS.index("effective_to")


def write_csv(path: pathlib.Path, header: list[str], rows) -> int:
    """Write one reference CSV (``\\n`` line ends, as landed); returns its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path.stat().st_size


def read_price_book(path: pathlib.Path) -> list[list[str]]:
    """The rows (header checked and dropped)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != PRICE_COLUMNS:
        raise ValueError(f"{path}: header is not {','.join(PRICE_COLUMNS)}")
    return rows[1:]


def _covering_rows(book: list[list[str]], sku: str, start: str, end: str) -> list[int]:
    """Indexes of the SKU's rows overlapping [start, end) (ISO dates compare as text)."""
    return [i for i, row in enumerate(book)
            if row[_SKU] == sku and row[_FROM] < end and (row[_TO] == "" or row[_TO] > start)]


def correctable_skus(book: list[list[str]], start: str, end: str) -> set[str]:
    """hourly_capped SKUs with one price row spanning the whole of [start, end) (no change inside)."""
    found = set()
    for sku in sorted({row[_SKU] for row in book if row[_MODEL] == "hourly_capped"}):
        covering = _covering_rows(book, sku, start, end)
        if len(covering) == 1:
            row = book[covering[0]]
            if row[_FROM] <= start and (row[_TO] == "" or row[_TO] >= end):
                found.add(sku)
    return found


def _lower(value: str) -> str:
    """``value`` × PRICE_CORRECTION at the same number of decimals, strictly lower."""
    amount = Decimal(value)
    step = Decimal(1).scaleb(amount.as_tuple().exponent)
    lowered = (amount * PRICE_CORRECTION).quantize(step, rounding=ROUND_HALF_UP)
    if lowered >= amount:
        lowered = amount - step
    return str(lowered)


def correct_price(path: pathlib.Path, sku: str, start: str, end: str) -> dict:
    """Split the SKU's row covering [start, end) so that this month alone has a lower price and cap.

    Idempotent: when the covering row already is exactly [start, end) — an
    earlier correction; the catalogue never starts or ends a row on the 1st after
    2020-01-01 — nothing is written. Returns the old and new price and cap.
    """
    book = read_price_book(path)
    (i,) = _covering_rows(book, sku, start, end)
    row = book[i]
    if row[_FROM] == start and row[_TO] == end:
        before = [r for r in book if r[_SKU] == sku and r[_TO] == start]
        old = before[0] if before else row
        return {"sku": sku, "effective_from": start, "effective_to": end, "old_unit_price": old[_PRICE],
                "new_unit_price": row[_PRICE], "old_monthly_cap": old[_CAP], "new_monthly_cap": row[_CAP],
                "written": False}
    corrected = list(row)
    corrected[_PRICE] = _lower(row[_PRICE])
    if row[_CAP]:
        corrected[_CAP] = _lower(row[_CAP])
    corrected[_FROM], corrected[_TO] = start, end
    pieces = []
    if row[_FROM] < start:
        head = list(row)
        head[_TO] = start
        pieces.append(head)
    pieces.append(corrected)
    if row[_TO] != end:  # the list price again from the 1st of the next month (open-ended or to the old end)
        tail = list(row)
        tail[_FROM] = end
        pieces.append(tail)
    book[i:i + 1] = pieces
    tmp = path.with_name(path.name + ".tmp")
    write_csv(tmp, PRICE_COLUMNS, book)
    os.replace(tmp, path)
    return {"sku": sku, "effective_from": start, "effective_to": end, "old_unit_price": row[_PRICE],
            "new_unit_price": corrected[_PRICE], "old_monthly_cap": row[_CAP],
            "new_monthly_cap": corrected[_CAP], "written": True}


def reapply_price_corrections(landing: pathlib.Path, path: pathlib.Path) -> None:
    """Apply again, in the order they were made, the corrections the manifest records (idempotent each)."""
    manifest = landing / "_truth" / "anomalies.jsonl"
    if not manifest.exists():
        return
    for line in manifest.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("anomaly") == "price_correction":
            correct_price(path, entry["sku"], entry["effective_from"], entry["effective_to"])
