"""Control C2: a second implementation of docs/contract/billing-rules.md, in Python, re-rates the month and must
agree with every draft invoice and line to the cent.

`rerate_month` is pure (Arrow and text in, Arrow out) and shares no code with the dbt models;
the rules it applies are in quality/rerating_rules.py. `independent_rerating` reads the month
from the warehouse, re-rates it and compares the result with `intermediate.int_invoices_drafted`
and `intermediate.int_invoice_lines_drafted` in DuckDB (exact DECIMAL comparison).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Mapping

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quality import rerating_rules as rules
from quality.rerating_rules import CENTS, MODELS, QTY, decimals, half_up, rows_of, text, unscaled

C2_CHECK_NAME = "C2_independent_rerating"
C2_DESCRIPTION = "C2: a second implementation of docs/contract/billing-rules.md (Python) agrees with every draft invoice and line to the cent"

# Accepted usage per (customer, resource, SKU, UTC day), aggregated by ingestion with a plain
# GROUP BY over the accepted records (assets/usage.py), not by the dbt models C2 judges.
USAGE_DAILY_SQL = """
SELECT customer_id, resource_id, sku, usage_date, quantity, last_start_time
FROM raw.usage_daily
WHERE usage_date >= $start AND usage_date < $end
"""
INVOICE_COMPARED = ["invoice_number", "customer_id", "subtotal", "credits_applied", "taxable_amount", "tax_rate",
                    "tax_amount", "total", "reverse_charge"]
LINE_COMPARED = ["invoice_number", "line_number", "sku", "resource_id", "quantity", "unit_price", "amount"]
EPOCH = date(1970, 1, 1)


def month_bounds(month: date) -> tuple[date, date]:
    start = month.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _lines_of_resources(usage: pa.Table, book: rules.PriceBook, model: str, month_start_us: int) -> tuple[dict, pa.Table]:
    """hourly_capped or unit lines, one per (customer, resource, SKU) (§3; docs/decisions.md 8), and, for
    hourly_capped, each resource's transfer allowance. The row at the last record sets cap, price, allowance."""
    usage = usage.filter(pc.equal(usage["model"], MODELS.index(model)))
    # the price row at the resource's last record: max of (last start time, row) packed in one int64
    since = pc.cast(usage["last_start_time"], pa.timestamp("us")).cast(pa.int64()).to_numpy() - month_start_us
    usage = usage.append_column("last_key", pa.array((np.maximum(since, 0) << rules.DATE_BITS) + usage["row"].to_numpy()))
    groups = usage.group_by(["customer_id", "resource_id", "sku"], use_threads=False).aggregate(
        [("quantity", "sum"), ("exact", "sum"), ("last_key", "max")])
    last_row = groups["last_key_max"].to_numpy() & ((1 << rules.DATE_BITS) - 1)
    quantity = unscaled(groups["quantity_sum"], 38, 6).astype(object)
    exact = unscaled(groups["exact_sum"], 38, 14).astype(object)
    if model == "hourly_capped":
        amount = rules.hourly_capped_amount(exact, book.monthly_cap[last_row])
        allowance = rules.transfer_allowance(quantity, book.cap_hours[last_row], book.included_gib[last_row])
    else:
        amount, allowance = rules.unit_amount(exact), np.zeros(len(quantity), dtype=object)
    lines = dict(customer_id=groups["customer_id"], sku=groups["sku"], resource_id=groups["resource_id"],
                 row=last_row, quantity=quantity, unit_price=book.unit_price[last_row], amount=amount)
    earned = pa.table({"customer_id": groups["customer_id"], "pool": pa.array(allowance.astype(np.int64))})
    return lines, earned


def _lines_of_month(usage: pa.Table, book: rules.PriceBook, model: str, month_rows: dict[int, int],
                    pools: pa.Table, days_in_month: int) -> dict:
    """transfer, graduated and flat_monthly lines, one per (customer, SKU) at the month-end row (§3)."""
    usage = usage.filter(pc.equal(usage["model"], MODELS.index(model)))
    groups = usage.group_by(["customer_id", "sku"], use_threads=False).aggregate(
        [("quantity", "sum"), ("usage_date", "count_distinct"), ("sku_code", "min")]
    ).sort_by([("customer_id", "ascending"), ("sku", "ascending")])  # the pool is drawn in sku order
    row = np.array([month_rows[c] for c in groups["sku_code_min"].to_pylist()], dtype=np.int64)
    quantity = unscaled(groups["quantity_sum"], 38, 6).astype(object)
    price = book.unit_price[row]
    if model == "transfer":
        at = pc.index_in(groups["customer_id"], value_set=pools["customer_id"])
        pool = np.where(at.is_null().to_numpy(zero_copy_only=False), 0,
                        pools["pool"].to_numpy()[at.fill_null(0).to_numpy()]).astype(object)
        customers = groups["customer_id"].to_numpy()
        quantity = rules.transfer_overage(customers, quantity, pool)
        amount = rules.transfer_amount(quantity, price)
    elif model == "graduated":
        amount = np.zeros(len(row), dtype=object)
        for r in np.unique(row):  # one pass per price row's tiers
            mine = row == r
            amount[mine] = rules.graduated_amount(quantity[mine], book.tiers[r])
        price = np.full(len(row), None, dtype=object)
    else:
        days = groups["usage_date_count_distinct"].to_numpy().astype(object)
        quantity = days * QTY
        amount = rules.flat_monthly_amount(price, days, days_in_month)
    return dict(customer_id=groups["customer_id"], sku=groups["sku"], resource_id=pa.nulls(len(row), pa.string()),
                row=row, quantity=quantity, unit_price=price, amount=amount)


def _rated_usage(usage_daily: pa.Table, book: rules.PriceBook) -> pa.Table:
    """Each usage-daily row with its price row by date (§2) and its exact amount (×10^-14 $) at that price.
    Rows without a price row are not billable and are left out (C9 blocks such a month)."""
    sku_code = pc.index_in(usage_daily["sku"], value_set=pa.array(book.skus, pa.string())).fill_null(-1)
    sku_code = sku_code.to_numpy().astype(np.int64)
    days = pc.cast(usage_daily["usage_date"], pa.date32()).cast(pa.int32()).to_numpy().astype(np.int64)
    row = rules.rows_by_date(book, sku_code, days)
    billable = row >= 0
    usage = usage_daily.filter(pa.array(billable)).select(["customer_id", "resource_id", "sku", "usage_date",
                                                            "last_start_time"])
    row = row[billable]
    quantity = usage_daily["quantity"].filter(pa.array(billable))
    prices = decimals(np.where(book.unit_price == None, 0, book.unit_price)[row], 18, 8)  # noqa: E711
    if rules.wide_quantities(quantity):  # a day beyond DECIMAL(18,6): exact products in DECIMAL256 (C14 fails)
        quantity, prices = pc.cast(quantity, pa.decimal256(40, 6)), pc.cast(prices, pa.decimal256(18, 8))
    else:
        quantity = pc.cast(quantity, pa.decimal128(18, 6))
    return usage.append_column("quantity", quantity).append_column("row", pa.array(row)) \
        .append_column("sku_code", pa.array(sku_code[billable])) \
        .append_column("model", pa.array(book.model[row])) \
        .append_column("exact", pc.multiply(quantity, prices))


def _invoice_lines(parts: list[dict], book: rules.PriceBook, month: date) -> pa.Table:
    """All lines, ordered per customer by product, account-level last, SKU, resource (decision 9), numbered."""
    column = lambda name: pa.concat_arrays(  # noqa: E731
        [pc.cast(p[name], pa.string()).combine_chunks() if isinstance(p[name], pa.ChunkedArray)
         else pc.cast(p[name], pa.string()) for p in parts])
    row = np.concatenate([p["row"] for p in parts]).astype(np.int64)
    text_of = lambda key: np.array([r[key] for r in book.rows] or [""], dtype=object)[row]  # noqa: E731
    table = pa.table({
        "customer_id": column("customer_id"), "sku": column("sku"), "product": pa.array(text_of("product"), pa.string()),
        "resource_id": column("resource_id"), "description": pa.array(text_of("description"), pa.string()),
        # wide, like the dbt rating before narrowing: a value out of range is compared, never a crash
        "quantity": decimals(np.concatenate([p["quantity"] for p in parts]), 38, 6),
        "unit": pa.array(text_of("unit"), pa.string()),
        "unit_price": decimals(np.concatenate([p["unit_price"] for p in parts]), 18, 8),
        "amount": decimals(np.concatenate([p["amount"] for p in parts]), 38, 2),
    })
    table = table.append_column("account_level", pc.is_null(table["resource_id"])).sort_by(
        [("customer_id", "ascending"), ("product", "ascending"), ("account_level", "ascending"),
         ("sku", "ascending"), ("resource_id", "ascending")]).drop_columns(["account_level"])
    customers = table["customer_id"].to_numpy()
    first = np.r_[True, customers[1:] != customers[:-1]] if len(customers) else np.zeros(0, dtype=bool)
    position = np.arange(len(customers))
    invoice = np.cumsum(first) - 1
    numbers = np.array([f"BO-{month:%Y%m}-{n:06d}" for n in range(1, int(first.sum()) + 1)], dtype=object)
    line_number = position - np.maximum.accumulate(np.where(first, position, 0)) + 1
    return table.add_column(0, "invoice_number", pa.array(numbers[invoice] if len(invoice) else [], pa.string())) \
        .add_column(1, "line_number", pa.array(line_number, pa.int32())) \
        .add_column(3, "billing_month", pa.array([month] * len(table), pa.date32()))


def apply_credits(subtotals: Mapping[str, int], credit_grants, openings: Mapping[str, Decimal],
                  month_start: date, month_end: date) -> tuple[dict[str, int], list[tuple[str, int, int]]]:
    """§4: usable grants, soonest expiry first (never last), then granted_at, grant_id, up to the subtotal.
    Returns cents applied per customer and, per usable grant of an invoiced customer in the order used,
    (grant_id, opening cents, applied cents)."""
    start, end = datetime.combine(month_start, datetime.min.time()), datetime.combine(month_end, datetime.min.time())
    left, applied, ledger, usable = dict(subtotals), dict.fromkeys(subtotals, 0), [], []
    for g in rows_of(credit_grants):
        expires, granted = rules.instant(g["expires_at"]), rules.instant(g["granted_at"])
        if granted < end and (expires is None or expires > start) and g["customer_id"] in left:
            usable.append((g["customer_id"], expires is None, expires or end, granted, g["grant_id"], g["amount"]))
    for customer, _, _, _, grant_id, amount in sorted(usable):
        opening = rules.scaled(openings.get(grant_id, amount), CENTS, "credit balance")
        used = min(opening, left[customer])
        left[customer] -= used
        applied[customer] += used
        ledger.append((grant_id, opening, used))
    return applied, ledger


def _taxes(customer_ids: list[str], customers, tax_rates, issue_date: date) -> tuple[list, np.ndarray, np.ndarray]:
    """§5: the region row, else the country row, in effect on issue_date; reverse charge with a tax_id."""
    rates = {}
    for t in rows_of(tax_rates):
        ends = rules.day(t["effective_to"])
        if rules.day(t["effective_from"]) <= issue_date and (ends is None or issue_date < ends):
            rates[(t["country"].strip().upper(), (text(t["region"]) or "").upper())] = t
    by_id = {c["customer_id"]: c for c in rows_of(customers)}
    names, rate, reverse = [], np.zeros(len(customer_ids), dtype=np.int64), np.zeros(len(customer_ids), dtype=bool)
    for i, customer_id in enumerate(customer_ids):
        c = by_id.get(customer_id, {})
        country, region = (text(c.get("country")) or "").upper(), (text(c.get("region")) or "").upper()
        row = (region and rates.get((country, region))) or rates.get((country, ""))
        names.append(text(row["tax_name"]) if row else None)
        reverse[i] = bool(row) and (text(row["reverse_charge"]) or "").lower() == "true" and text(c.get("tax_id")) is not None
        rate[i] = 0 if not row or reverse[i] else rules.scaled(row["rate"], QTY, "tax rate")
    return names, rate, reverse


def rerate_month(usage_daily: pa.Table, customers, price_book, tax_rates, credit_grants,
                 openings: Mapping[str, Decimal], month: date) -> tuple[pa.Table, pa.Table]:
    """Rate one month from scratch (docs/contract/billing-rules.md §1-§6) → (invoices, lines), columns of marts.invoices
    (status 'draft') and marts.invoice_lines, quantities and money in DECIMAL(38, s): a value beyond the
    published DECIMAL(18, s) is compared with the drafts (C14 names it), never a crash.

    usage_daily: customer_id, resource_id, sku, usage_date (date), quantity (decimal), last_start_time
    (timestamp, naive UTC), one row per (customer, resource, SKU, UTC day). customers, price_book,
    tax_rates, credit_grants: the snapshots as landed (Table or list of dicts, text values).
    openings: grant_id → balance at the start of the month, for grants seen in an earlier issued
    month; a grant not in it enters with its full amount (§4)."""
    month_start, month_end = month_bounds(month)
    book = rules.parse_price_book(price_book)
    usage = _rated_usage(usage_daily, book)
    month_start_us = (month_start - EPOCH).days * 86_400_000_000
    month_rows = rules.month_end_rows(book, (month_start - EPOCH).days, (month_end - EPOCH).days)
    hourly, earned = _lines_of_resources(usage, book, "hourly_capped", month_start_us)
    unit, _ = _lines_of_resources(usage, book, "unit", month_start_us)
    pools = earned.group_by("customer_id").aggregate([("pool", "sum")])
    pools = pa.table({"customer_id": pools["customer_id"].combine_chunks(), "pool": pools["pool_sum"]})
    days_in_month = (month_end - month_start).days
    parts = [hourly, unit] + [_lines_of_month(usage, book, m, month_rows, pools, days_in_month)
                              for m in ("transfer", "graduated", "flat_monthly")]
    lines = _invoice_lines(parts, book, month_start)

    first = np.r_[True, pc.not_equal(lines["invoice_number"][1:], lines["invoice_number"][:-1]).to_numpy()] \
        if lines.num_rows else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(first)
    cents = rules.widened(unscaled(lines["amount"], 38, 2))  # Python ints where a sum could leave int64
    subtotal = np.add.reduceat(cents, starts) if len(starts) else np.zeros(0, dtype=np.int64)
    customer_ids = lines["customer_id"].take(pa.array(starts, pa.int64())).to_pylist()
    applied, _ = apply_credits(dict(zip(customer_ids, subtotal.tolist())), credit_grants, openings, month_start, month_end)
    credits = np.array([applied[c] for c in customer_ids], dtype=np.int64)
    tax_names, rate, reverse = _taxes(customer_ids, customers, tax_rates, month_end)
    taxable = rules.widened(subtotal - credits, int(rate.max(initial=1)))
    tax = half_up(taxable * rate, QTY)  # rate ×10^6: DECIMAL(9,6)
    n = len(starts)
    invoices = pa.table({
        "invoice_number": lines["invoice_number"].take(pa.array(starts, pa.int64())),
        "customer_id": pa.array(customer_ids, pa.string()),
        "billing_month": pa.array([month_start] * n, pa.date32()),
        "issue_date": pa.array([month_end] * n, pa.date32()),
        "due_date": pa.array([month_end + timedelta(days=14)] * n, pa.date32()),
        "currency": pa.array(["USD"] * n, pa.string()),
        "subtotal": decimals(subtotal, 38, 2), "credits_applied": decimals(credits, 38, 2),
        "taxable_amount": decimals(taxable, 38, 2), "tax_name": pa.array(tax_names, pa.string()),
        "tax_rate": decimals(rate, 9, 6), "tax_amount": decimals(tax, 38, 2),
        "total": decimals(taxable + tax, 38, 2), "reverse_charge": pa.array(reverse, pa.bool_()),
        "status": pa.array(["draft"] * n, pa.string()),
    })
    return invoices, lines


def load_openings(con: duckdb.DuckDBPyConnection, month: date) -> dict[str, Decimal]:
    """Each grant's closing balance in its latest issued month before `month` (docs/contract/billing-rules.md §4)."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'audit' "
                         "AND table_name = 'issued_credit_ledger'").fetchall()[0][0]
    if not exists:
        return {}
    return dict(con.execute("SELECT grant_id, arg_max(closing_balance, billing_month) FROM audit.issued_credit_ledger "
                            "WHERE billing_month < ? GROUP BY grant_id", [month_bounds(month)[0]]).fetchall())


def rerate_from_warehouse(con: duckdb.DuckDBPyConnection, month: date) -> tuple[pa.Table, pa.Table]:
    """The month's accepted usage, the reference snapshots as landed and the credit openings → rerate_month."""
    start, end = month_bounds(month)
    usage_daily = con.sql(USAGE_DAILY_SQL, params={"start": datetime.combine(start, datetime.min.time()),
                                                   "end": datetime.combine(end, datetime.min.time())}).to_arrow_table()
    snapshots = {name: con.sql(f"SELECT * EXCLUDE (_source_file, _loaded_at) FROM raw.{name}").to_arrow_table()
                 for name in ("customers", "price_book", "tax_rates", "credit_grants")}
    return rerate_month(usage_daily, **snapshots, openings=load_openings(con, start), month=start)


def _differences(con: duckdb.DuckDBPyConnection, rerated: str, drafted: str, keys: list[str], compared: list[str],
                 month: date) -> tuple[int, int, list[tuple]]:
    """Rows compared, rows differing, and up to 10 (invoice_number, column, expected, got), matched on `keys`
    (a row on one side only differs in every column)."""
    join = f"""
        WITH e AS (SELECT * FROM {rerated}), d AS (SELECT * FROM {drafted} WHERE billing_month = $month),
        j AS (SELECT coalesce(e.invoice_number, d.invoice_number) AS invoice_number, {', '.join(f'e.{c} AS e_{c}, d.{c} AS d_{c}' for c in compared)},
                     {' OR '.join(f'e.{k} IS NULL' for k in keys)} AS missing_e, {' OR '.join(f'd.{k} IS NULL' for k in keys)} AS missing_d
              FROM e FULL OUTER JOIN d USING ({', '.join(keys)}))
    """
    diffs = " UNION ALL ".join(
        f"SELECT invoice_number, '{c}' AS col, e_{c}::VARCHAR AS expected, d_{c}::VARCHAR AS got, {i} AS ord FROM j "
        f"WHERE e_{c} IS DISTINCT FROM d_{c} OR missing_e OR missing_d" for i, c in enumerate(compared))
    checked, differing = con.execute(
        f"{join} SELECT count(*), count(*) FILTER (WHERE {' OR '.join(f'e_{c} IS DISTINCT FROM d_{c}' for c in compared)} "
        f"OR missing_e OR missing_d) FROM j", {"month": month}).fetchall()[0]
    examples = con.execute(f"{join}, x AS ({diffs}) SELECT invoice_number, col, expected, got FROM x "
                           f"ORDER BY invoice_number NULLS LAST, ord LIMIT 10", {"month": month}).fetchall()
    return checked, differing, examples


def independent_rerating(con: duckdb.DuckDBPyConnection, month: date,
                         asset_key: dg.AssetKey | None = None) -> dg.AssetCheckResult:
    """C2: re-rate the month in Python and compare every money and identity column with the drafts."""
    start = month_bounds(month)[0]
    invoices, lines = rerate_from_warehouse(con, start)
    con.register("c2_rerated_invoices", invoices)
    con.register("c2_rerated_lines", lines)
    try:
        inv_checked, inv_differing, inv_examples = _differences(
            con, "c2_rerated_invoices", "intermediate.int_invoices_drafted", ["customer_id"], INVOICE_COMPARED, start)
        line_checked, line_differing, line_examples = _differences(
            con, "c2_rerated_lines", "intermediate.int_invoice_lines_drafted", ["customer_id", "line_number"],
            LINE_COMPARED, start)
        amount_difference = con.execute(
            "SELECT coalesce(sum(abs(coalesce(e.total, 0) - coalesce(d.total, 0))), 0)::DECIMAL(38,2) "
            "FROM c2_rerated_invoices e FULL OUTER JOIN "
            "(SELECT * FROM intermediate.int_invoices_drafted WHERE billing_month = $month) d USING (customer_id)",
            {"month": start}).fetchall()[0][0]
    finally:
        con.unregister("c2_rerated_invoices")
        con.unregister("c2_rerated_lines")
    offending = [dict(zip(("invoice_number", "column", "expected", "got"), row))
                 for row in (inv_examples + line_examples)[:10]]
    passed = inv_differing == 0 and line_differing == 0
    return dg.AssetCheckResult(
        check_name=C2_CHECK_NAME,
        asset_key=asset_key,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=C2_DESCRIPTION if passed else (
            f"C2 failed: {inv_differing} invoice(s) and {line_differing} line(s) differ from the Python re-rating "
            f"(totals off by ${amount_difference})"),
        metadata={
            "invoices_checked": dg.MetadataValue.int(inv_checked),
            "lines_checked": dg.MetadataValue.int(line_checked),
            "invoices_differing": dg.MetadataValue.int(inv_differing),
            "lines_differing": dg.MetadataValue.int(line_differing),
            "amount_difference": dg.MetadataValue.float(float(amount_difference)),  # display only; summed as DECIMAL
            "offending_rows": dg.MetadataValue.json(offending),
        },
    )
