"""The yardstick of `make bench`: one hand-written DuckDB query that de-duplicates and rates a month.

It does the least a close must do — drop repeated event ids (first delivery in
(file, row) order stands), price each (resource, SKU, day) by the row in
effect, sum per customer — with none of the close's bookkeeping (ledger,
quarantine reasons, dbt, controls, issuing). The close is judged by its ratio to
this query on the same Parquet, measured side by side (issue 7: within 3x).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb

QUERY = """
WITH usage AS (
  SELECT event_id, customer_id, resource_id, sku, start_time, quantity::DECIMAL(18,6) AS quantity,
         filename, file_row_number
  FROM read_parquet($files, filename = true, file_row_number = true, union_by_name = true)
), repeated AS (
  SELECT event_id FROM usage GROUP BY event_id HAVING count(*) > 1
), later_deliveries AS (
  SELECT filename, file_row_number FROM (
    SELECT filename, file_row_number,
           row_number() OVER (PARTITION BY event_id ORDER BY filename, file_row_number) AS delivery
    FROM usage SEMI JOIN repeated USING (event_id)
  ) WHERE delivery > 1
), daily AS (
  SELECT customer_id, resource_id, sku, start_time::DATE AS day, sum(quantity) AS quantity
  FROM usage ANTI JOIN later_deliveries USING (filename, file_row_number)
  GROUP BY ALL
), prices AS (
  SELECT sku, unit_price::DECIMAL(18,8) AS unit_price, effective_from::DATE AS effective_from,
         coalesce(nullif(effective_to, '')::DATE, DATE '9999-12-31') AS effective_to
  FROM read_csv($price_book, all_varchar = true)
)
SELECT count(DISTINCT customer_id) AS customers, sum(round(d.quantity * p.unit_price, 2)) AS amount
FROM daily d JOIN prices p ON p.sku = d.sku AND d.day >= p.effective_from AND d.day < p.effective_to
"""


def run(landing: Path, month: str) -> dict:
    files = sorted(str(p) for p in (landing / "usage").glob(f"dt={month}-*/*.parquet"))
    started = time.perf_counter()
    con = duckdb.connect()
    customers, amount = con.execute(
        QUERY, {"files": files, "price_book": str(landing / "reference" / "price_book.csv")}
    ).fetchone()
    con.close()
    return {"seconds": round(time.perf_counter() - started, 2), "customers": customers, "amount": str(amount)}


if __name__ == "__main__":
    print(run(Path(sys.argv[1]), sys.argv[2]))
