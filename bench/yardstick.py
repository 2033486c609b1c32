"""The yardstick of `make bench`: one hand-written DuckDB query that de-duplicates and rates a month.

It does the least a close must do, written the way an engineer would write it
by hand for speed: drop repeated event ids (the first delivery in (file, row)
order stands; ids are compared by a 64-bit hash, as the close's own first pass
does), sum each (customer, resource, SKU, UTC day), price it by the row in
effect that day, and total per customer. None of the close's bookkeeping:
no ledger, quarantine, reference checks, dbt, caps, tiers, credits, tax,
controls, issuing or publication. The close is judged by its ratio to this
query on the same Parquet, measured side by side in one `make bench`
(issue 7: within 3x). Run alone: `python bench/yardstick.py LANDING YYYY-MM`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

DAY_US = 86_400_000_000

QUERY = f"""
WITH usage AS (
  SELECT hash(event_id) AS event_hash, customer_id, resource_id, sku,
         epoch_us(start_time) // {DAY_US} AS day, quantity, filename, file_row_number
  FROM read_parquet($files, filename = true, file_row_number = true, union_by_name = true)
), repeated AS (
  SELECT event_hash FROM usage GROUP BY event_hash HAVING count(*) > 1
), later_deliveries AS (
  SELECT filename, file_row_number FROM (
    SELECT filename, file_row_number,
           row_number() OVER (PARTITION BY event_hash ORDER BY filename, file_row_number) AS delivery
    FROM usage SEMI JOIN repeated USING (event_hash)
  ) WHERE delivery > 1
), daily AS (
  SELECT customer_id, resource_id, sku, day, sum(quantity) AS quantity
  FROM usage ANTI JOIN later_deliveries USING (filename, file_row_number)
  GROUP BY ALL
), prices AS (
  SELECT sku, unit_price::DECIMAL(18, 8) AS unit_price,
         epoch_us(effective_from::DATE::TIMESTAMP) // {DAY_US} AS effective_from,
         epoch_us(coalesce(nullif(effective_to, '')::DATE, DATE '9999-12-31')::TIMESTAMP) // {DAY_US} AS effective_to
  FROM read_csv($price_book, all_varchar = true)
  WHERE nullif(unit_price, '') IS NOT NULL
), per_customer AS (
  SELECT d.customer_id, sum(round(d.quantity * p.unit_price, 2)) AS amount
  FROM daily d JOIN prices p ON p.sku = d.sku AND d.day >= p.effective_from AND d.day < p.effective_to
  GROUP BY d.customer_id
)
SELECT count(*) AS customers, sum(amount) AS amount FROM per_customer
"""


def run(landing: Path, month: str) -> dict:
    files = sorted(str(p) for p in (landing / "usage").glob(f"dt={month}-*/*.parquet"))
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    customers, amount = con.execute(
        QUERY, {"files": files, "price_book": str(landing / "reference" / "price_book.csv")}
    ).fetchone()
    con.close()
    return {"seconds": round(time.perf_counter() - started, 2), "customers": customers, "amount": str(amount)}


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), sys.argv[2])))
