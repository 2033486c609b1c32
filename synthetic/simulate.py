"""Payment processor and help desk simulator (``billops simulate``).

Plays Stripe and Zendesk during month M, answering the invoices issued on the
1st of M (``marts.invoices`` rows with billing_month = M-1, read from the
warehouse opened read-only), and writes into the landing zone
(``synthetic-data.md``, ``landing-contract.md`` "Tickets" and "Payments"):

* ``payments/charges/charges-M.jsonl`` — one charge per payable invoice (total
  > 0, payment method card or paypal); ~6 % fail (card_declined,
  insufficient_funds, expired_card, processing_error): half are retried a few
  days later and succeed, the rest fail for good (half of those after a second
  failed attempt); ~1 % get a second succeeded charge minutes later (a
  duplicate, never refunded, so sensor R2 raises it).  Customers with
  payment_method ``none`` are never charged (their invoices stay unpaid and
  become past_due; no work item is expected, none is recorded).
* ``payments/refunds/refunds-M.jsonl`` — a few partial ``requested_by_customer``
  refunds of ordinary succeeded charges.
* ``payments/disputes/disputes-M.jsonl`` — a few disputes of ordinary succeeded
  charges across the contract's statuses (always at least one ``lost``).
* ``tickets/tickets-M.jsonl`` — Zendesk tickets and chats, billing and other
  topics, some with several versions (same id, later ``updated_at``), a
  customer's ticket count growing with their invoice; plus claims naming an
  invoice (tag ``incorrect_invoice`` / ``refund_request``, custom field
  ``invoice_number``): TRUE claims name invoices holding a line of one hourly
  SKU whose price for M-1 the simulator corrects (lowers) in
  ``reference/price_book.csv``; FALSE claims name invoices without that SKU.
* ``_truth/anomalies.jsonl`` — lines with ``"step": "simulate"`` and
  ``"month"``; a re-run drops its own earlier lines for the month and keeps all
  others.

Deterministic: every draw comes from ``np.random.default_rng(SeedSequence([seed,
STREAM, year, month, part]))``, inputs are sorted by invoice number and nothing
reads the clock (except the ``seconds`` of the returned summary).
"""
from __future__ import annotations

import calendar
import csv
import datetime as dt
import json
import os
import pathlib
import re
import time
import zlib
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import numpy as np

from synthetic.generate import PRICE_COLUMNS
from synthetic.manifest import replace_step_lines

UTC = dt.timezone.utc
HOUR = 3600
DAY = 86400
STEP = "simulate"
STREAM = 0x5117  # separates simulate's random streams from generate's

# Rates (of payable invoices) and the minimum counts that make a small month exercise every case.
FAIL_RATE, RETRY_SHARE, SECOND_FAIL_SHARE = 0.06, 0.5, 0.5
DUPLICATE_RATE = 0.01
REFUND_RATE = 0.005
DISPUTE_RATE = 0.003
CLAIM_RATE = 0.0003  # true claims and, separately, false claims (capped at MAX_CLAIMS each)
MAX_CLAIMS = 25
PRICE_CORRECTION = Decimal("0.90")  # the corrected price is 10 % lower
LOST_DISPUTE_FAIL_RATE = 0.5  # customers with an earlier lost dispute fail this often
EXTENSION_MIN_AGE_DAYS = 90
EXTENSION_MAX_CENTS = 500_000
EXTENSION_LOOKBACK_DAYS = 180

FAILURES = [  # (failure_code, failure_message, weight)
    ("card_declined", "Your card was declined.", 0.45),
    ("insufficient_funds", "Your card has insufficient funds.", 0.30),
    ("expired_card", "Your card has expired.", 0.15),
    ("processing_error", "An error occurred while processing your card. Try again in a little bit.", 0.10),
]
DISPUTE_STATUSES = (["warning_needs_response", "needs_response", "under_review", "won", "lost"],
                    [0.10, 0.25, 0.25, 0.15, 0.25])
DISPUTE_REASONS = ["fraudulent", "product_not_received", "duplicate", "subscription_canceled",
                   "credit_not_processed", "unrecognized", "general"]

# Help desk: groups, their agents (integer ids) and topics.
GROUPS = {"billing": (360001001, list(range(361000101, 361000109))),
          "support": (360001002, list(range(361000201, 361000215))),
          "accounts": (360001003, list(range(361000301, 361000305))),
          "trust": (360001004, list(range(361000401, 361000404)))}
# (tags, group, subject, weight, may name an invoice). Background tickets tagged
# incorrect_invoice / refund_request never name an invoice: only recorded claims do.
TOPICS = [
    (["incorrect_invoice"], "billing", "Question about my invoice amount", 0.04, False),
    (["refund_request"], "billing", "Please refund unused credit", 0.03, False),
    (["payment_failed"], "billing", "Card update after a failed payment", 0.03, False),
    (["payment_extension"], "billing", "Can we pay later this month?", 0.02, False),
    (["tax_question"], "billing", "VAT / sales tax on my invoice", 0.07, True),
    (["other_billing"], "billing", "Change the billing email on my account", 0.06, False),
    (["other_billing"], "billing", "Need a PDF copy of my invoice", 0.05, True),
    (["droplets", "technical"], "support", "Droplet unreachable after reboot", 0.16, False),
    (["volumes", "technical"], "support", "Cannot attach a volume", 0.08, False),
    (["networking", "technical"], "support", "Load balancer health checks failing", 0.08, False),
    (["dns", "technical"], "support", "DNS records not propagating", 0.07, False),
    (["databases", "technical"], "support", "Managed database connection limit reached", 0.08, False),
    (["account_access"], "accounts", "Cannot log in: lost 2FA device", 0.07, False),
    (["account_limits"], "accounts", "Raise my Droplet limit", 0.04, False),
    (["abuse_report"], "trust", "Abuse report: outgoing spam from my IP", 0.02, False),
]
TOPIC_W = np.array([t[3] for t in TOPICS]) / sum(t[3] for t in TOPICS)
CHANNELS = ["chat", "web", "email", "api"]
CHANNEL_W = [0.25, 0.30, 0.35, 0.10]
SCORES = ["good", "bad", "offered", "unoffered"]
PRIORITIES = ["low", "normal", "high", "urgent"]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _rng(seed: int, y: int, m: int, part: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), STREAM, y, m, part]))


def _ts(d: dt.date) -> int:
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _iso(ts) -> list[str]:
    s = np.datetime_as_string(np.asarray(ts, dtype="int64").astype("datetime64[s]"), unit="s")
    return [x + "Z" for x in s.tolist()]


def _dollars(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _customer_number(cid: str) -> int:
    m = re.fullmatch(r"[A-Za-z_-]*?0*(\d{1,12})", cid)
    return int(m.group(1)) if m else zlib.crc32(cid.encode("utf-8"))


def _take(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    """k distinct elements of ``pool`` (sorted), or all of them when there are fewer."""
    k = min(k, len(pool))
    return np.sort(rng.choice(pool, k, replace=False)) if k else pool[:0]


def _write_lines(path: pathlib.Path, lines: list[str]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(tmp, path)
    return len(lines)


def _dumps(o: dict) -> str:
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                       [schema, table]).fetchone()[0] > 0


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def _read_warehouse(warehouse: pathlib.Path, prev_first: dt.date, prev: str) -> tuple[list, list, list]:
    """(invoices, hourly line amounts per invoice+sku, approved extensions) of the previous month."""
    close_first = (f"no invoices for {prev} in marts.invoices of {warehouse}: "
                   f"close {prev} first (billops close --month {prev})")
    if not pathlib.Path(warehouse).exists():
        raise ValueError(close_first)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        if not _table_exists(con, "marts", "invoices"):
            raise ValueError(close_first)
        invoices = con.execute(
            """SELECT invoice_number, customer_id, CAST(issue_date AS DATE), CAST(due_date AS DATE),
                      CAST(total AS VARCHAR), CAST(subtotal AS VARCHAR), CAST(credits_applied AS VARCHAR)
               FROM marts.invoices
               WHERE billing_month = ? AND coalesce(status, 'issued') NOT IN ('void', 'draft')
               ORDER BY invoice_number""", [prev_first]).fetchall()
        if not invoices:
            raise ValueError(close_first)
        lines = []
        if _table_exists(con, "marts", "invoice_lines"):
            lines = con.execute(
                """SELECT invoice_number, sku, CAST(sum(amount) AS VARCHAR)
                   FROM marts.invoice_lines WHERE billing_month = ? AND sku IS NOT NULL
                   GROUP BY ALL ORDER BY ALL""", [prev_first]).fetchall()
        extensions = []
        if _table_exists(con, "marts", "work_items"):
            extensions = con.execute(
                """SELECT customer_id, CAST(coalesce(decided_at, created_at) AS TIMESTAMP)
                   FROM marts.work_items WHERE kind = 'payment_extension' AND status IN ('approved', 'done')
                   ORDER BY ALL""").fetchall()
        return invoices, lines, extensions
    finally:
        con.close()


def _read_customers(landing: pathlib.Path) -> dict[str, tuple[str, str]]:
    """customer_id → (created_at, payment_method) from reference/customers.csv."""
    path = landing / "reference" / "customers.csv"
    if not path.exists():
        raise ValueError(f"{path} is missing: run billops generate for the previous month first")
    with open(path, newline="", encoding="utf-8") as f:
        return {r["customer_id"]: (r["created_at"], r["payment_method"]) for r in csv.DictReader(f)}


def _sql_list(paths: list[pathlib.Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _earlier_lost_disputes(landing: pathlib.Path, own: set[str]) -> set[str]:
    """Customers with a lost dispute in earlier payment files (not the files this run rewrites)."""
    disputes = [p for p in sorted((landing / "payments" / "disputes").glob("*.jsonl")) if p.name not in own]
    charges = [p for p in sorted((landing / "payments" / "charges").glob("*.jsonl")) if p.name not in own]
    if not disputes or not charges:
        return set()
    con = duckdb.connect()
    try:
        rows = con.execute(f"""
            SELECT DISTINCT c.customer
            FROM read_json({_sql_list(charges)}, format = 'newline_delimited', ignore_errors = true,
                           columns = {{'id': 'VARCHAR', 'customer': 'VARCHAR'}}) c
            JOIN read_json({_sql_list(disputes)}, format = 'newline_delimited', ignore_errors = true,
                           columns = {{'charge': 'VARCHAR', 'status': 'VARCHAR'}}) d ON d.charge = c.id
            WHERE d.status = 'lost' AND c.customer IS NOT NULL""").fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


# --------------------------------------------------------------------------
# price correction (the cause of the true claims)
# --------------------------------------------------------------------------
def _read_price_book(path: pathlib.Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != PRICE_COLUMNS:
        raise ValueError(f"{path}: header is not {','.join(PRICE_COLUMNS)}")
    return rows[1:]


def _covering_rows(book: list[list[str]], sku: str, start: str, end: str) -> list[int]:
    """Indexes of the SKU's rows overlapping [start, end) (ISO dates compare as text)."""
    i_sku, i_from, i_to = 0, PRICE_COLUMNS.index("effective_from"), PRICE_COLUMNS.index("effective_to")
    return [i for i, r in enumerate(book)
            if r[i_sku] == sku and r[i_from] < end and (r[i_to] == "" or r[i_to] > start)]


def _correctable_skus(book: list[list[str]], start: str, end: str) -> set[str]:
    """hourly_capped SKUs with one price row spanning the whole month (no mid-month change)."""
    i_model, i_from, i_to = PRICE_COLUMNS.index("model"), PRICE_COLUMNS.index("effective_from"), \
        PRICE_COLUMNS.index("effective_to")
    out = set()
    for sku in sorted({r[0] for r in book if r[i_model] == "hourly_capped"}):
        rows = _covering_rows(book, sku, start, end)
        if len(rows) == 1:
            r = book[rows[0]]
            if r[i_from] <= start and (r[i_to] == "" or r[i_to] >= end):
                out.add(sku)
    return out


def _lower(value: str) -> str:
    """``value`` × PRICE_CORRECTION at the same number of decimals, strictly lower."""
    d = Decimal(value)
    step = Decimal(1).scaleb(d.as_tuple().exponent)
    new = (d * PRICE_CORRECTION).quantize(step, rounding=ROUND_HALF_UP)
    if new >= d:
        new = d - step
    return str(new)


def _correct_price(path: pathlib.Path, sku: str, start: str, end: str) -> dict:
    """Split the SKU's row covering [start, end) so that this month alone has a lower price and cap.

    Idempotent: when the covering row already is exactly [start, end) — our earlier
    correction; generate.py never starts or ends a row on the 1st after 2020-01-01 —
    nothing is written.
    """
    book = _read_price_book(path)
    i_price, i_cap = PRICE_COLUMNS.index("unit_price"), PRICE_COLUMNS.index("monthly_cap")
    i_from, i_to = PRICE_COLUMNS.index("effective_from"), PRICE_COLUMNS.index("effective_to")
    (i,) = _covering_rows(book, sku, start, end)
    row = book[i]
    if row[i_from] == start and row[i_to] == end:
        before = [r for r in book if r[0] == sku and r[i_to] == start]
        old = before[0] if before else row
        return {"sku": sku, "effective_from": start, "effective_to": end, "old_unit_price": old[i_price],
                "new_unit_price": row[i_price], "old_monthly_cap": old[i_cap], "new_monthly_cap": row[i_cap],
                "written": False}
    corrected = list(row)
    corrected[i_price] = _lower(row[i_price])
    if row[i_cap]:
        corrected[i_cap] = _lower(row[i_cap])
    corrected[i_from], corrected[i_to] = start, end
    pieces = []
    if row[i_from] < start:
        head = list(row)
        head[i_to] = start
        pieces.append(head)
    pieces.append(corrected)
    tail = list(row)
    tail[i_from] = end
    pieces.append(tail)  # the list price again from the 1st of this month (open-ended or to the old end)
    if row[i_to] == end:
        pieces.pop()
    book[i:i + 1] = pieces
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(PRICE_COLUMNS)
        w.writerows(book)
    os.replace(tmp, path)
    return {"sku": sku, "effective_from": start, "effective_to": end, "old_unit_price": row[i_price],
            "new_unit_price": corrected[i_price], "old_monthly_cap": row[i_cap],
            "new_monthly_cap": corrected[i_cap], "written": True}


# --------------------------------------------------------------------------
# main entry point
# --------------------------------------------------------------------------
def simulate(month: str, seed: int, landing: pathlib.Path, warehouse: pathlib.Path, progress: bool = True) -> dict:
    """Write month ``month``'s charges, refunds, disputes and tickets answering the invoices of the month before.

    Reads ``marts.invoices`` (and ``marts.invoice_lines``) of the previous month from
    ``warehouse`` (read-only) and ``reference/customers.csv`` / ``price_book.csv`` from
    ``landing``; raises ValueError when the previous month has no invoices (it must be
    closed first). Returns a summary: counts per file and per anomaly, seconds.
    """
    t_begin = time.perf_counter()
    try:
        y, m = (int(x) for x in month.split("-"))
        if not 1 <= m <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, not {month!r}") from None
    month = f"{y:04d}-{m:02d}"
    landing, warehouse = pathlib.Path(landing), pathlib.Path(warehouse)
    py, pm = (y, m - 1) if m > 1 else (y - 1, 12)
    prev = f"{py:04d}-{pm:02d}"
    month_first, prev_first = dt.date(y, m, 1), dt.date(py, pm, 1)
    ms = _ts(month_first)
    me = ms + calendar.monthrange(y, m)[1] * DAY
    ym = f"{y:04d}{m:02d}"
    files = {"charges": f"payments/charges/charges-{month}.jsonl",
             "refunds": f"payments/refunds/refunds-{month}.jsonl",
             "disputes": f"payments/disputes/disputes-{month}.jsonl",
             "tickets": f"tickets/tickets-{month}.jsonl"}

    prog = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(TextColumn(f"simulate {month}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[step]}"), TimeElapsedColumn())
        prog.start()
        task = prog.add_task("steps", total=5, step="reading the warehouse")

    def advance(step: str) -> None:
        if prog is not None:
            prog.update(task, advance=1, step=step)

    try:
        # ---- inputs
        invoices, hourly_lines, extensions = _read_warehouse(warehouse, prev_first, prev)
        customers = _read_customers(landing)
        own = {pathlib.PurePosixPath(f).name for f in files.values()}
        lost_before = _earlier_lost_disputes(landing, own)
        price_path = landing / "reference" / "price_book.csv"
        book = _read_price_book(price_path) if price_path.exists() else []
        advance("drawing payments")

        n = len(invoices)
        inv_no = [r[0] for r in invoices]
        inv_cust = [r[1] for r in invoices]
        cents = np.empty(n, np.int64)
        for i, r in enumerate(invoices):
            c = Decimal(r[4]) * 100
            if c != c.to_integral_value():
                raise ValueError(f"invoice {r[0]}: total {r[4]} is not whole cents")
            cents[i] = int(c)
        subtotal = np.array([float(r[5]) for r in invoices])
        credits_zero = np.array([Decimal(r[6] or "0") == 0 for r in invoices])
        issue_ts = np.array([max(_ts(r[2]), ms) if r[2] else ms for r in invoices], np.int64)
        method = np.array([customers.get(c, ("", "card"))[1] for c in inv_cust], dtype=object)
        payable = (cents > 0) & (method != "none")
        pay_idx = np.flatnonzero(payable)
        npay = len(pay_idx)

        # ---- claims: one hourly SKU corrected for the previous month; true claims name its invoices
        rng = _rng(seed, y, m, 1)
        n_claims = min(MAX_CLAIMS, max(2, round(CLAIM_RATE * n)))
        ps, ts_ = prev_first.isoformat(), month_first.isoformat()
        correctable = _correctable_skus(book, ps, ts_) if book else set()
        pos = {num: i for i, num in enumerate(inv_no)}
        sku_invoices: dict[str, list[int]] = {}
        sku_candidates: dict[str, list[int]] = {}
        for num, sku, amount in hourly_lines:
            i = pos.get(num)
            if i is None or sku not in correctable:
                continue
            sku_invoices.setdefault(sku, []).append(i)
            if payable[i] and credits_zero[i] and Decimal(amount) >= 1:
                sku_candidates.setdefault(sku, []).append(i)
        claim_sku = None
        if sku_candidates:
            # the SKU touching the fewest invoices among those with enough candidates (small blast radius)
            claim_sku = min(sku_candidates, key=lambda s: (len(sku_candidates[s]) < n_claims,
                                                           len(sku_invoices[s]), s))
        true_claims = _take(rng, np.array(sku_candidates.get(claim_sku, []), np.int64), n_claims)
        touched = np.zeros(n, bool)
        if claim_sku:
            touched[sku_invoices[claim_sku]] = True
        false_claims = _take(rng, pay_idx[~touched[pay_idx]], n_claims)
        role_free = payable.copy()
        role_free[true_claims] = False
        role_free[false_claims] = False

        # ---- payment outcomes (disjoint roles among the remaining payable invoices)
        free = np.flatnonzero(role_free)
        k_fail = min(len(free), max(2, round(FAIL_RATE * npay)))
        lost_cust = np.array([c in lost_before for c in inv_cust], bool)
        forced = free[lost_cust[free] & (rng.random(len(free)) < LOST_DISPUTE_FAIL_RATE)]
        rest = np.setdiff1d(free, forced)
        failed = np.sort(np.concatenate([forced[:k_fail], _take(rng, rest, k_fail - min(k_fail, len(forced)))]))
        retry_mask = np.zeros(len(failed), bool)
        retry_mask[rng.permutation(len(failed))[: (len(failed) + 1) // 2]] = True
        retried, final = failed[retry_mask], failed[~retry_mask]
        second_fail = final[rng.random(len(final)) < SECOND_FAIL_SHARE]
        role_free[failed] = False
        dups = _take(rng, np.flatnonzero(role_free), max(1, round(DUPLICATE_RATE * npay)))
        role_free[dups] = False
        ordinary = np.flatnonzero(role_free & (cents >= 2))
        refunded = _take(rng, ordinary, max(1, round(REFUND_RATE * npay)))
        role_free[refunded] = False
        disputed = _take(rng, np.flatnonzero(role_free), max(2, round(DISPUTE_RATE * npay)))

        # ---- charges: first attempt at issue + up to 30 h; retries days later; duplicates minutes later
        t1 = np.minimum(issue_ts + 600 + rng.integers(0, 30 * HOUR, n), me - 4 * HOUR)
        fail_code = rng.choice(len(FAILURES), n, p=[f[2] for f in FAILURES])
        fail_code2 = rng.choice(len(FAILURES), n, p=[f[2] for f in FAILURES])
        t_retry = np.minimum(t1 + rng.integers(2 * DAY, 8 * DAY, n), me - 2 * HOUR)
        t_dup = np.minimum(t1 + rng.integers(20, 900, n), me - HOUR)
        is_failed = np.zeros(n, bool)
        is_failed[failed] = True
        # columns: invoice, attempt, created, succeeded, failure index
        parts = [
            (pay_idx, np.zeros(npay, np.int64), t1[pay_idx], ~is_failed[pay_idx], fail_code[pay_idx]),
            (retried, np.ones(len(retried), np.int64), t_retry[retried], np.ones(len(retried), bool), fail_code[retried]),
            (second_fail, np.ones(len(second_fail), np.int64), t_retry[second_fail], np.zeros(len(second_fail), bool),
             fail_code2[second_fail]),
            (dups, np.ones(len(dups), np.int64), t_dup[dups], np.ones(len(dups), bool), fail_code[dups]),
        ]
        c_inv, c_att, c_t, c_ok, c_fc = (np.concatenate([p[k] for p in parts]) for k in range(5))
        order = np.lexsort((c_att, c_inv, c_t))
        c_inv, c_att, c_t, c_ok, c_fc = c_inv[order], c_att[order], c_t[order], c_ok[order], c_fc[order]
        charge_ids = [f"ch_{ym}{k + 1:08d}" for k in range(len(c_inv))]
        charge_of = {(int(i), int(a)): cid for i, a, cid in zip(c_inv, c_att, charge_ids)}
        charge_t = {(int(i), int(a)): int(t) for i, a, t in zip(c_inv, c_att, c_t)}
        charge_lines = []
        for cid, i, t, ok, fc in zip(charge_ids, c_inv.tolist(), c_t.tolist(), c_ok.tolist(), c_fc.tolist()):
            charge_lines.append(_dumps({
                "id": cid, "object": "charge", "amount": int(cents[i]), "amount_captured": int(cents[i]) if ok else 0,
                "amount_refunded": 0, "captured": ok, "currency": "usd", "customer": inv_cust[i],
                "created": t, "description": f"Invoice {inv_no[i]}", "livemode": False,
                "status": "succeeded" if ok else "failed", "paid": ok,
                "failure_code": None if ok else FAILURES[fc][0],
                "failure_message": None if ok else FAILURES[fc][1],
                "refunded": False, "metadata": {"invoice_number": inv_no[i]},
                "payment_method_details": {"type": "paypal" if method[i] == "paypal" else "card"},
            }))
        advance("refunds and disputes")

        # ---- refunds: partial, requested by the customer, on ordinary succeeded charges
        rrng = _rng(seed, y, m, 2)
        r_amt = np.maximum(1, np.floor(cents[refunded] * rrng.uniform(0.1, 0.5, len(refunded)))).astype(np.int64)
        r_t = np.array([charge_t[(int(i), 0)] for i in refunded], np.int64)
        r_t = np.minimum(r_t + rrng.integers(DAY, 10 * DAY, len(refunded)), me - 60)
        r_order = np.lexsort((refunded, r_t))
        refund_lines = []
        for k, j in enumerate(r_order.tolist()):
            i = int(refunded[j])
            refund_lines.append(_dumps({
                "id": f"re_{ym}{k + 1:08d}", "object": "refund", "amount": int(r_amt[j]),
                "charge": charge_of[(i, 0)], "created": int(r_t[j]), "currency": "usd",
                "reason": "requested_by_customer", "status": "succeeded", "metadata": {},
            }))

        # ---- disputes: across the contract's statuses, the first always lost
        d_status = rrng.choice(len(DISPUTE_STATUSES[0]), len(disputed), p=DISPUTE_STATUSES[1])
        if len(disputed):
            d_status[rrng.integers(0, len(disputed))] = DISPUTE_STATUSES[0].index("lost")
        d_reason = rrng.integers(0, len(DISPUTE_REASONS), len(disputed))
        d_t = np.array([charge_t[(int(i), 0)] for i in disputed], np.int64)
        d_t = np.minimum(d_t + rrng.integers(2 * DAY, 12 * DAY, len(disputed)), me - 60)
        d_order = np.lexsort((disputed, d_t))
        dispute_lines = []
        lost_now = set()
        for k, j in enumerate(d_order.tolist()):
            i = int(disputed[j])
            status = DISPUTE_STATUSES[0][d_status[j]]
            if status == "lost":
                lost_now.add(inv_cust[i])
            dispute_lines.append(_dumps({
                "id": f"dp_{ym}{k + 1:08d}", "object": "dispute", "amount": int(cents[i]),
                "charge": charge_of[(i, 0)], "created": int(d_t[j]), "currency": "usd",
                "reason": DISPUTE_REASONS[d_reason[j]], "status": status,
                "is_charge_refundable": False, "livemode": False,
            }))
        advance("tickets")

        # ---- tickets
        trng = _rng(seed, y, m, 3)
        lam = 0.10 + 0.05 * np.log1p(np.maximum(subtotal, 0))
        per_cust = trng.poisson(lam)
        bg_inv = np.repeat(np.arange(n), per_cust)
        nb = len(bg_inv)
        bg_topic = trng.choice(len(TOPICS), nb, p=TOPIC_W)
        bg_t = ms + (trng.random(nb) * (me - ms - 2 * HOUR)).astype(np.int64)
        bg_named = np.array([TOPICS[t][4] for t in bg_topic], bool) & (trng.random(nb) < 0.4)
        # kinds: 0 background, 1 true claim, 2 false claim, 3 payment problem
        fail_tk = np.concatenate([final, retried[trng.random(len(retried)) < 0.3]])
        fail_tk = fail_tk[trng.random(len(fail_tk)) < 0.6] if len(fail_tk) > 2 else fail_tk
        claims = np.concatenate([true_claims, false_claims])
        claim_kind = np.concatenate([np.ones(len(true_claims), np.int64), np.full(len(false_claims), 2)])
        t_inv = np.concatenate([bg_inv, claims, fail_tk]).astype(np.int64)
        kind = np.concatenate([np.zeros(nb, np.int64), claim_kind, np.full(len(fail_tk), 3)])
        T = len(t_inv)
        after = np.array([charge_t.get((int(i), 0), int(issue_ts[i])) for i in claims], np.int64)
        claim_t = np.minimum(after + HOUR + (trng.random(len(claims)) * np.maximum(me - after - 4 * DAY, HOUR)).astype(np.int64),
                             me - 3 * DAY)
        fail_after = t1[fail_tk] + HOUR + trng.integers(0, 2 * DAY, len(fail_tk))
        created = np.concatenate([bg_t, claim_t, np.minimum(fail_after, me - 2 * DAY)]).astype(np.int64)
        claim_tag = trng.random(len(claims)) < 0.6  # incorrect_invoice, else refund_request
        fail_tag = trng.random(len(fail_tk)) < 0.65  # payment_failed, else payment_extension
        channel = trng.choice(len(CHANNELS), T, p=CHANNEL_W)
        channel[kind != 0] = np.where(trng.random((kind != 0).sum()) < 0.5, 1, 2)  # claims: web or email
        chat = channel == 0
        reply = np.where(chat, trng.lognormal(np.log(2.5), 0.6, T), trng.lognormal(np.log(180), 1.1, T))
        reply = np.maximum(1, np.round(reply)).astype(np.int64)
        biz_share = np.where(chat, 1.0, trng.uniform(0.25, 0.7, T))
        resolve = reply + np.where(chat, trng.lognormal(np.log(15), 0.7, T), trng.lognormal(np.log(1200), 1.0, T))
        resolve = np.round(resolve).astype(np.int64)
        work = np.minimum(resolve, np.maximum(1, np.round(trng.lognormal(np.log(12), 0.8, T)))).astype(np.int64)
        reopens = trng.choice(3, T, p=[0.9, 0.08, 0.02])
        resolve = resolve + reopens * np.round(trng.lognormal(np.log(600), 0.8, T)).astype(np.int64)
        # final status: most solved/closed unless still in progress at month end
        st = trng.choice(6, T, p=[0.04, 0.08, 0.06, 0.02, 0.62, 0.18])  # new open pending hold solved closed
        solved_at = created + resolve * 60
        late = solved_at >= me - 60
        st = np.where((st >= 4) & late, 1, st)
        st[kind == 1] = 1  # claims wait for billing's review
        st[kind == 2] = 1
        solved = st >= 4
        replied = st >= 1
        updated = np.where(solved, solved_at, created + np.where(replied, reply * 60 + trng.integers(60, 6 * HOUR, T), 0))
        updated = np.minimum(updated, me - 30)
        updated = np.maximum(updated, created + np.where(replied, 60, 0))
        two_versions = replied & ((kind != 0) | (trng.random(T) < 0.35))
        score = np.where(solved, trng.choice(4, T, p=[0.55, 0.08, 0.25, 0.12]),
                         np.where(trng.random(T) < 0.1, 2, 3))
        priority = trng.choice(4, T, p=[0.2, 0.55, 0.2, 0.05])
        requester_k = trng.integers(0, 3, T)
        agent_pick = trng.integers(0, 1 << 30, T)
        t_order = np.lexsort((np.arange(T), created))
        ticket_id = np.empty(T, np.int64)
        ticket_id[t_order] = ((y - 2020) * 12 + m) * 1_000_000 + 1 + np.arange(T)
        created_iso, updated_iso, solved_iso = _iso(created), _iso(updated), _iso(solved_at)
        statuses = ["new", "open", "pending", "hold", "solved", "closed"]
        versions = []  # (updated_ts, id, line)
        for j in range(T):
            i = int(t_inv[j])
            k = int(kind[j])
            num = inv_no[i]
            if k == 0:
                tags, group, subject, _w, named = TOPICS[bg_topic[j]]
                tags = list(tags)
                named = bool(bg_named[j])
            elif k in (1, 2):
                tags = ["incorrect_invoice"] if claim_tag[j - nb] else ["refund_request"]
                group, named = "billing", True
                subject = (f"Invoice {num} looks wrong: we were overcharged" if claim_tag[j - nb]
                           else f"Refund request: overcharge on invoice {num}")
            else:
                f = j - nb - len(claims)
                tags = ["payment_failed"] if fail_tag[f] else ["payment_extension"]
                group, named = "billing", True
                subject = (f"Payment for invoice {num} failed" if fail_tag[f]
                           else f"More time to pay invoice {num}?")
            gid, agents = GROUPS[group]
            base = {
                "id": int(ticket_id[j]),
                "url": f"https://billops.zendesk.com/api/v2/tickets/{int(ticket_id[j])}.json",
                "created_at": created_iso[j],
                "updated_at": updated_iso[j],
                "type": "problem" if group == "support" else "question",
                "subject": subject,
                "status": statuses[st[j]],
                "priority": PRIORITIES[priority[j]],
                "via": {"channel": CHANNELS[channel[j]]},
                "requester_id": 20_000_000_000 + _customer_number(inv_cust[i]) * 4 + int(requester_k[j]),
                "organization_id": inv_cust[i],
                "assignee_id": agents[agent_pick[j] % len(agents)] if replied[j] else None,
                "group_id": gid,
                "tags": tags,
                "custom_fields": [{"id": "invoice_number", "value": num if named else None}],
                "satisfaction_rating": {"score": SCORES[score[j]]},
            }
            rc, rb = int(reply[j]), int(round(reply[j] * biz_share[j]))
            fc, fb = int(resolve[j]), int(round(resolve[j] * biz_share[j]))
            wc = int(work[j])
            base["metrics"] = {
                "replies": (1 + int(reopens[j]) + (1 if solved[j] else 0)) if replied[j] else 0,
                "reopens": int(reopens[j]) if solved[j] else 0,
                "reply_time_in_minutes": {"calendar": rc, "business": rb} if replied[j]
                else {"calendar": None, "business": None},
                "full_resolution_time_in_minutes": {"calendar": fc, "business": fb} if solved[j]
                else {"calendar": None, "business": None},
                "agent_work_time_in_minutes": {"calendar": wc, "business": min(wc, int(round(wc * biz_share[j])))}
                if replied[j] else {"calendar": 0, "business": 0},
                "solved_at": solved_iso[j] if solved[j] else None,
            }
            versions.append((int(updated[j]), int(ticket_id[j]), _dumps(base)))
            if two_versions[j]:
                first = dict(base, updated_at=created_iso[j], status="new", assignee_id=None,
                             satisfaction_rating={"score": "unoffered"},
                             metrics={"replies": 0, "reopens": 0,
                                      "reply_time_in_minutes": {"calendar": None, "business": None},
                                      "full_resolution_time_in_minutes": {"calendar": None, "business": None},
                                      "agent_work_time_in_minutes": {"calendar": 0, "business": 0},
                                      "solved_at": None})
                versions.append((int(created[j]), int(ticket_id[j]), _dumps(first)))
        versions.sort(key=lambda v: (v[0], v[1]))
        ticket_lines = [v[2] for v in versions]
        ticket_of = {(int(t_inv[j]), int(kind[j])): int(ticket_id[j]) for j in range(nb, nb + len(claims))}
        advance("price correction and manifest")

        # ---- the true claims' cause: a corrected (lower) price for the previous month
        correction = None
        if len(true_claims):
            correction = _correct_price(price_path, claim_sku, ps, ts_)
            correction["invoices_with_sku"] = len(sku_invoices[claim_sku])

        # ---- manifest
        manifest: list[dict] = []
        created_of = {}
        for i in dups:
            i = int(i)
            manifest.append({"anomaly": "duplicate_charge", "expect": "work_item:refund", "invoice_number": inv_no[i],
                             "charge_id": charge_of[(i, 1)], "original_charge_id": charge_of[(i, 0)],
                             "customer_id": inv_cust[i], "amount": _dollars(int(cents[i]))})
        lost_all = lost_before | lost_now
        ext_by_cust: dict[str, list[int]] = {}
        for cust, when in extensions:
            if when is not None:
                ext_by_cust.setdefault(cust, []).append(int(when.replace(tzinfo=UTC).timestamp()))
        for i in final:
            i = int(i)
            att = 1 if (i, 1) in charge_of else 0
            failed_at = charge_t[(i, att)]
            cust = inv_cust[i]
            created_at = customers.get(cust, ("", ""))[0]
            if cust not in created_of:
                created_of[cust] = (int(dt.datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp())
                                    if created_at else None)
            c_ts = created_of[cust]
            prior = [w for w in ext_by_cust.get(cust, []) if failed_at - EXTENSION_LOOKBACK_DAYS * DAY <= w <= failed_at]
            reasons = []
            if c_ts is None or failed_at - c_ts < EXTENSION_MIN_AGE_DAYS * DAY:
                reasons.append("customer_younger_than_90_days")
            if prior:
                reasons.append("extension_in_last_180_days")
            if cust in lost_all:
                reasons.append("lost_dispute")
            if cents[i] > EXTENSION_MAX_CENTS:
                reasons.append("amount_over_5000")
            manifest.append({"anomaly": "failed_payment", "expect": "work_item:payment_extension",
                             "invoice_number": inv_no[i], "customer_id": cust, "charge_id": charge_of[(i, att)],
                             "amount": _dollars(int(cents[i])), "failed_at": _iso([failed_at])[0],
                             "attempts": att + 1, "eligible": not reasons, "ineligible_reasons": reasons,
                             "customer_created_at": created_at or None, "prior_extensions": len(prior)})
        for i in true_claims:
            i = int(i)
            manifest.append({"anomaly": "true_claim", "expect": "work_item:refund", "invoice_number": inv_no[i],
                             "ticket_id": ticket_of[(i, 1)], "customer_id": inv_cust[i], "sku": claim_sku,
                             "charge_id": charge_of[(i, 0)]})
        for i in false_claims:
            i = int(i)
            manifest.append({"anomaly": "false_claim", "expect": "no_work_item", "invoice_number": inv_no[i],
                             "ticket_id": ticket_of[(i, 2)], "customer_id": inv_cust[i]})
        if correction:
            manifest.append({"anomaly": "price_correction", "expect": "accept",
                             **{k: v for k, v in correction.items() if k != "written"},
                             "file": "reference/price_book.csv"})

        # ---- write
        counts = {}
        for key, lines in (("charges", charge_lines), ("refunds", refund_lines), ("disputes", dispute_lines),
                           ("tickets", ticket_lines)):
            counts[files[key]] = _write_lines(landing / files[key], lines)
        replace_step_lines(landing, STEP, month, [json.dumps({"step": STEP, "month": month, **e}) for e in manifest])
        advance("done")
    finally:
        if prog is not None:
            prog.stop()

    by_kind: dict[str, int] = {}
    for e in manifest:
        by_kind[e["anomaly"]] = by_kind.get(e["anomaly"], 0) + 1
    eligible = sum(1 for e in manifest if e["anomaly"] == "failed_payment" and e["eligible"])
    return {
        "month": month,
        "seed": seed,
        "answers_billing_month": prev,
        "invoices": n,
        "zero_total_invoices": int((cents == 0).sum()),
        "unpaid_no_payment_method": int(((cents > 0) & (method == "none")).sum()),
        "charges": len(charge_lines),
        "failed_charges": int((~c_ok).sum()),
        "retried_and_paid": int(len(retried)),
        "refunds": len(refund_lines),
        "disputes": len(dispute_lines),
        "tickets": int(T),
        "ticket_versions": len(ticket_lines),
        "files": counts,
        "anomalies": by_kind,
        "failed_payments_eligible": eligible,
        "failed_payments_ineligible": by_kind.get("failed_payment", 0) - eligible,
        "price_correction": correction,
        "seconds": round(time.perf_counter() - t_begin, 3),
    }
