"""Payment processor and help desk simulator (``billops simulate``).

Plays Stripe and Zendesk during month M, answering the invoices issued on the
1st of M (``marts.invoices`` rows with billing_month = M-1, read from the
published copy, ``published.py``), and writes into the landing zone
(``docs/contract/synthetic-data.md``, ``docs/contract/inputs.md`` "Tickets" and "Payments"):

* ``payments/charges/charges-M.jsonl`` — ``charges.py``: one charge per payable
  invoice (total > 0, payment method card or paypal); some fail (half retried
  and paid, the rest failed for good), ~1 % are charged twice. Customers with
  payment_method ``none`` are never charged (docs/decisions.md #19).
* ``payments/refunds/refunds-M.jsonl``, ``payments/disputes/disputes-M.jsonl``
  — ``refunds_disputes.py``; the refunds include the ones approved in the
  work-item queue, as the published ``marts.work_items`` shows them
  (``metadata.work_item_id``), executed once each.
* ``tickets/tickets-M.jsonl`` — ``tickets.py``: tickets and chats, plus the
  claims naming an invoice (``claims.py``): TRUE claims name invoices holding a
  line of one hourly SKU whose price for M-1 the simulator corrects (lowers) in
  ``reference/price_book.csv`` (``price_book.py``); FALSE claims name invoices
  without that SKU; and the ``refund_request`` ticket each ordinary refund
  answers (naming no invoice: the customer asked, billing refunded).
* ``_truth/anomalies.jsonl`` — ``simulate_manifest.py``: lines with ``"step":
  "simulate"`` and ``"month"``; a re-run drops its own earlier lines for the
  month and keeps all others. Failed payments carry the verdict of
  rule E1 (``eligibility.py``, the contract's table restated).

Deterministic: every draw comes from ``streams.simulator_rng(seed, year, month,
part)``, inputs are sorted by invoice number and nothing reads the clock
(except the ``seconds`` of the returned summary).
"""
from __future__ import annotations

import calendar
import datetime as dt
import json
import pathlib
import time

import numpy as np

from synthetic import streams
from synthetic.charges import assign_roles, charges
from synthetic.claims import choose_claims
from synthetic.issued_invoices import earlier_lost_disputes, issued_invoices, read_customers
from synthetic.jsonl import write_jsonl
from synthetic.manifest import replace_step_lines
from synthetic.months import DAY, date_midnight
from synthetic.price_book import correct_price, read_price_book
from synthetic.published import read_published
from synthetic.refunds_disputes import dispute_lines, refund_lines, work_item_refund_lines
from synthetic.simulate_manifest import simulate_entries
from synthetic.tickets import by_update, refund_request_tickets, tickets

STEP = "simulate"


def _progress_bar(month: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(f"simulate {month}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[step]}"), TimeElapsedColumn())
    bar.start()
    return bar, bar.add_task("steps", total=5, step="reading the published copy")


def simulate(month: str, seed: int, landing: pathlib.Path, published: pathlib.Path, progress: bool = True) -> dict:
    """Write month ``month``'s charges, refunds, disputes and tickets answering the invoices of the month before.

    Reads ``marts.invoices``, ``marts.invoice_lines`` and ``marts.work_items`` from
    ``published``, the published copy's DuckDB file (``BILLOPS_PUBLISHED/billops.duckdb``,
    opened read-only), and ``reference/customers.csv`` / ``price_book.csv`` from
    ``landing``; raises ValueError when the previous month has no invoices (it must be
    closed first). Returns a summary: counts per file and per anomaly, seconds.
    """
    t_begin = time.perf_counter()
    try:
        year, month_number = (int(x) for x in month.split("-"))
        if not 1 <= month_number <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, not {month!r}") from None
    month = f"{year:04d}-{month_number:02d}"
    landing, published = pathlib.Path(landing), pathlib.Path(published)
    prev_year, prev_month = (year, month_number - 1) if month_number > 1 else (year - 1, 12)
    prev = f"{prev_year:04d}-{prev_month:02d}"
    first_day, prev_first_day = dt.date(year, month_number, 1), dt.date(prev_year, prev_month, 1)
    month_first = date_midnight(first_day)
    month_end = month_first + calendar.monthrange(year, month_number)[1] * DAY
    ym = f"{year:04d}{month_number:02d}"
    files = {"charges": f"payments/charges/charges-{month}.jsonl",
             "refunds": f"payments/refunds/refunds-{month}.jsonl",
             "disputes": f"payments/disputes/disputes-{month}.jsonl",
             "tickets": f"tickets/tickets-{month}.jsonl"}

    bar = _progress_bar(month) if progress else None

    def advance(step: str) -> None:
        if bar is not None:
            bar[0].update(bar[1], advance=1, step=step)

    try:
        answered = read_published(published, prev_first_day, prev)
        customers = read_customers(landing)
        lost_before = earlier_lost_disputes(landing, {pathlib.PurePosixPath(f).name for f in files.values()})
        price_path = landing / "reference" / "price_book.csv"
        book = read_price_book(price_path) if price_path.exists() else []
        advance("drawing payments")

        invoices = issued_invoices(answered.invoices, customers, month_first)
        rng = streams.simulator_rng(seed, year, month_number, streams.PAYMENTS)
        correction_from, correction_to = prev_first_day.isoformat(), first_day.isoformat()
        claims = choose_claims(rng, invoices, answered.sku_amounts, book, correction_from, correction_to)
        roles = assign_roles(rng, invoices, np.concatenate([claims.true_claims, claims.false_claims]), lost_before)
        charged = charges(rng, invoices, roles, month_end, ym)
        advance("refunds and disputes")

        rng = streams.simulator_rng(seed, year, month_number, streams.REFUNDS_DISPUTES)
        refunds = refund_lines(rng, invoices, charged, roles.refunded, month_end, ym)
        executed = work_item_refund_lines(answered.approved_refunds, landing, charged.lines, files,
                                          len(refunds) + 1, month_first, month_end, ym)
        refunds += executed
        disputes, lost_now = dispute_lines(rng, invoices, charged, roles.disputed, month_end, ym)
        advance("tickets")

        rng = streams.simulator_rng(seed, year, month_number, streams.TICKETS)
        ticket_lines, claim_tickets, ticket_count = tickets(rng, invoices, roles, claims, charged, month_first,
                                                            month_end, year, month_number)
        asked = refund_request_tickets(rng, invoices, charged, refunds[:len(refunds) - len(executed)],
                                       ((year - 2020) * 12 + month_number) * 1_000_000 + 1 + ticket_count)
        ticket_lines, ticket_count = by_update(ticket_lines + asked), ticket_count + len(asked) // 2
        advance("price correction and manifest")

        correction = None
        if len(claims.true_claims):  # the true claims' cause: a lower price for the previous month
            correction = correct_price(price_path, claims.sku, correction_from, correction_to)
            correction["invoices_with_sku"] = claims.invoices_with_sku
        manifest = simulate_entries(invoices, roles, charged, claims, claim_tickets, correction, customers,
                                    lost_before | lost_now, answered.extensions)
        counts = {}
        for key, lines in (("charges", charged.lines), ("refunds", refunds), ("disputes", disputes),
                           ("tickets", ticket_lines)):
            counts[files[key]] = write_jsonl(landing / files[key], lines)
        replace_step_lines(landing, STEP, month, [json.dumps({"step": STEP, "month": month, **e}) for e in manifest])
        advance("done")
    finally:
        if bar is not None:
            bar[0].stop()

    by_kind: dict[str, int] = {}
    for entry in manifest:
        by_kind[entry["anomaly"]] = by_kind.get(entry["anomaly"], 0) + 1
    eligible = sum(1 for e in manifest if e["anomaly"] == "failed_payment" and e["eligible"])
    cents = invoices.cents
    return {
        "month": month,
        "seed": seed,
        "answers_billing_month": prev,
        "invoices": len(invoices.numbers),
        "zero_total_invoices": int((cents == 0).sum()),
        "unpaid_no_payment_method": int(((cents > 0) & (invoices.payment_method == "none")).sum()),
        "charges": len(charged.lines),
        "failed_charges": int((~charged.succeeded).sum()),
        "retried_and_paid": int(len(roles.retried)),
        "refunds": len(refunds),
        "work_item_refunds": len(executed),
        "disputes": len(disputes),
        "tickets": int(ticket_count),
        "ticket_versions": len(ticket_lines),
        "files": counts,
        "anomalies": by_kind,
        "failed_payments_eligible": eligible,
        "failed_payments_ineligible": by_kind.get("failed_payment", 0) - eligible,
        "price_correction": correction,
        "seconds": round(time.perf_counter() - t_begin, 3),
    }
