"""Help-desk tickets and chats (Zendesk-like ``tickets/tickets-M.jsonl``).

Three sources of tickets, one line per version (a ticket answered once has a
``new`` version at creation and its current one; ordered by ``updated_at``):

* background: Poisson per invoice, more for larger bills (0.10 + 0.05 ·
  ln(1 + subtotal)), on TOPICS; billing topics marked "may name an invoice"
  name it 40 % of the time;
* claims (true and false, ``claims.py``): tagged ``incorrect_invoice`` (60 %) or
  ``refund_request``, naming the invoice, after its charge, left ``open`` for
  billing's review;
* payment problems: 60 % of the invoices whose payment failed for good and of
  30 % of those paid on retry write ``payment_failed`` (65 %) or
  ``payment_extension``, naming the invoice, within 2 days of the first attempt.

Reply, resolution and work times are lognormal: chats in minutes (reply ~2.5,
resolved ~15), other channels in hours (reply ~3, resolved ~20), business time
a share of calendar time; 10 % of tickets are reopened.
"""
from __future__ import annotations

import json
import re
import zlib

import numpy as np

from synthetic.charges import Charges, PaymentRoles
from synthetic.claims import Claims
from synthetic.issued_invoices import IssuedInvoices
from synthetic.jsonl import compact_json
from synthetic.months import DAY, HOUR, iso_utc

# Help desk: groups, their agents (integer ids) and topics.
GROUPS = {"billing": (360001001, list(range(361000101, 361000109))),
          "support": (360001002, list(range(361000201, 361000215))),
          "accounts": (360001003, list(range(361000301, 361000305))),
          "trust": (360001004, list(range(361000401, 361000404)))}
# (tags, group, subject, share, may name an invoice). Background tickets tagged
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
TOPIC_SHARES = np.array([t[3] for t in TOPICS]) / sum(t[3] for t in TOPICS)
CHANNELS = ["chat", "web", "email", "api"]
CHANNEL_SHARES = [0.25, 0.30, 0.35, 0.10]
SCORES = ["good", "bad", "offered", "unoffered"]
PRIORITIES = ["low", "normal", "high", "urgent"]
STATUSES = ["new", "open", "pending", "hold", "solved", "closed"]
BACKGROUND, TRUE_CLAIM, FALSE_CLAIM, PAYMENT_PROBLEM = 0, 1, 2, 3
NO_TIME = {"calendar": None, "business": None}


def _customer_number(customer_id: str) -> int:
    """The digits of a customer id (``c0000042`` → 42), or a stable hash of an id without them."""
    match = re.fullmatch(r"[A-Za-z_-]*?0*(\d{1,12})", customer_id)
    return int(match.group(1)) if match else zlib.crc32(customer_id.encode("utf-8"))


def tickets(rng: np.random.Generator, invoices: IssuedInvoices, roles: PaymentRoles, claims: Claims,
            charges: Charges, month_first: int, month_end: int, year: int, month: int) -> tuple[list[str], dict, int]:
    """(ticket version lines, (invoice position, TRUE_CLAIM | FALSE_CLAIM) → ticket id, ticket count)."""
    n = len(invoices.numbers)
    background = np.repeat(np.arange(n), rng.poisson(0.10 + 0.05 * np.log1p(np.maximum(invoices.subtotal, 0))))
    nb = len(background)
    topic = rng.choice(len(TOPICS), nb, p=TOPIC_SHARES)
    background_at = month_first + (rng.random(nb) * (month_end - month_first - 2 * HOUR)).astype(np.int64)
    names_invoice = np.array([TOPICS[t][4] for t in topic], bool) & (rng.random(nb) < 0.4)
    problems = np.concatenate([roles.failed_for_good, roles.retried[rng.random(len(roles.retried)) < 0.3]])
    problems = problems[rng.random(len(problems)) < 0.6] if len(problems) > 2 else problems
    claimed = np.concatenate([claims.true_claims, claims.false_claims])
    claim_kind = np.concatenate([np.full(len(claims.true_claims), TRUE_CLAIM, np.int64),
                                 np.full(len(claims.false_claims), FALSE_CLAIM)])
    invoice = np.concatenate([background, claimed, problems]).astype(np.int64)
    kind = np.concatenate([np.full(nb, BACKGROUND, np.int64), claim_kind, np.full(len(problems), PAYMENT_PROBLEM)])
    count = len(invoice)
    charged_at = np.array([charges.created_of.get((int(i), 0), int(invoices.issued_at[i])) for i in claimed], np.int64)
    claim_at = np.minimum(charged_at + HOUR + (rng.random(len(claimed))
                                               * np.maximum(month_end - charged_at - 4 * DAY, HOUR)).astype(np.int64),
                          month_end - 3 * DAY)
    problem_at = charges.first_attempt_at[problems] + HOUR + rng.integers(0, 2 * DAY, len(problems))
    created = np.concatenate([background_at, claim_at, np.minimum(problem_at, month_end - 2 * DAY)]).astype(np.int64)
    claim_says_incorrect = rng.random(len(claimed)) < 0.6      # else refund_request
    problem_says_failed = rng.random(len(problems)) < 0.65     # else payment_extension
    channel = rng.choice(len(CHANNELS), count, p=CHANNEL_SHARES)
    channel[kind != BACKGROUND] = np.where(rng.random((kind != BACKGROUND).sum()) < 0.5, 1, 2)  # web or email
    chat = channel == 0
    reply = np.where(chat, rng.lognormal(np.log(2.5), 0.6, count), rng.lognormal(np.log(180), 1.1, count))
    reply = np.maximum(1, np.round(reply)).astype(np.int64)  # minutes
    business_share = np.where(chat, 1.0, rng.uniform(0.25, 0.7, count))
    resolve = reply + np.where(chat, rng.lognormal(np.log(15), 0.7, count), rng.lognormal(np.log(1200), 1.0, count))
    resolve = np.round(resolve).astype(np.int64)
    work = np.minimum(resolve, np.maximum(1, np.round(rng.lognormal(np.log(12), 0.8, count)))).astype(np.int64)
    reopens = rng.choice(3, count, p=[0.9, 0.08, 0.02])
    resolve = resolve + reopens * np.round(rng.lognormal(np.log(600), 0.8, count)).astype(np.int64)
    # final status: most solved/closed unless still in progress at month end; claims wait for billing
    status = rng.choice(len(STATUSES), count, p=[0.04, 0.08, 0.06, 0.02, 0.62, 0.18])
    solved_at = created + resolve * 60
    status = np.where((status >= 4) & (solved_at >= month_end - 60), 1, status)
    status[(kind == TRUE_CLAIM) | (kind == FALSE_CLAIM)] = 1
    solved = status >= 4
    replied = status >= 1
    updated = np.where(solved, solved_at,
                       created + np.where(replied, reply * 60 + rng.integers(60, 6 * HOUR, count), 0))
    updated = np.minimum(updated, month_end - 30)
    updated = np.maximum(updated, created + np.where(replied, 60, 0))
    two_versions = replied & ((kind != BACKGROUND) | (rng.random(count) < 0.35))
    score = np.where(solved, rng.choice(4, count, p=[0.55, 0.08, 0.25, 0.12]), np.where(rng.random(count) < 0.1, 2, 3))
    priority = rng.choice(4, count, p=[0.2, 0.55, 0.2, 0.05])
    requester = rng.integers(0, 3, count)  # up to three people per customer write in
    agent_pick = rng.integers(0, 1 << 30, count)
    ticket_id = np.empty(count, np.int64)
    ticket_id[np.lexsort((np.arange(count), created))] = ((year - 2020) * 12 + month) * 1_000_000 + 1 + np.arange(count)
    created_iso, updated_iso, solved_iso = iso_utc(created), iso_utc(updated), iso_utc(solved_at)
    versions = []  # (updated_ts, id, line)
    for j in range(count):
        i = int(invoice[j])
        number = invoices.numbers[i]
        if kind[j] == BACKGROUND:
            tags, group, subject, _share, _names = TOPICS[topic[j]]
            tags, named = list(tags), bool(names_invoice[j])
        elif kind[j] in (TRUE_CLAIM, FALSE_CLAIM):
            incorrect = claim_says_incorrect[j - nb]
            tags = ["incorrect_invoice"] if incorrect else ["refund_request"]
            group, named = "billing", True
            subject = (f"Invoice {number} looks wrong: we were overcharged" if incorrect
                       else f"Refund request: overcharge on invoice {number}")
        else:
            failed = problem_says_failed[j - nb - len(claimed)]
            tags = ["payment_failed"] if failed else ["payment_extension"]
            group, named = "billing", True
            subject = f"Payment for invoice {number} failed" if failed else f"More time to pay invoice {number}?"
        group_id, agents = GROUPS[group]
        share = business_share[j]
        reply_minutes, resolve_minutes, work_minutes = int(reply[j]), int(resolve[j]), int(work[j])
        current = {
            "id": int(ticket_id[j]),
            "url": f"https://billops.zendesk.com/api/v2/tickets/{int(ticket_id[j])}.json",
            "created_at": created_iso[j],
            "updated_at": updated_iso[j],
            "type": "problem" if group == "support" else "question",
            "subject": subject,
            "status": STATUSES[status[j]],
            "priority": PRIORITIES[priority[j]],
            "via": {"channel": CHANNELS[channel[j]]},
            "requester_id": 20_000_000_000 + _customer_number(invoices.customers[i]) * 4 + int(requester[j]),
            "organization_id": invoices.customers[i],
            "assignee_id": agents[agent_pick[j] % len(agents)] if replied[j] else None,
            "group_id": group_id,
            "tags": tags,
            "custom_fields": [{"id": "invoice_number", "value": number if named else None}],
            "satisfaction_rating": {"score": SCORES[score[j]]},
            "metrics": {
                "replies": (1 + int(reopens[j]) + (1 if solved[j] else 0)) if replied[j] else 0,
                "reopens": int(reopens[j]) if solved[j] else 0,
                "reply_time_in_minutes": {"calendar": reply_minutes, "business": int(round(reply[j] * share))}
                if replied[j] else NO_TIME,
                "full_resolution_time_in_minutes":
                    {"calendar": resolve_minutes, "business": int(round(resolve[j] * share))}
                    if solved[j] else NO_TIME,
                "agent_work_time_in_minutes":
                    {"calendar": work_minutes, "business": min(work_minutes, int(round(work_minutes * share)))}
                    if replied[j] else {"calendar": 0, "business": 0},
                "solved_at": solved_iso[j] if solved[j] else None,
            },
        }
        versions.append((int(updated[j]), int(ticket_id[j]), compact_json(current)))
        if two_versions[j]:
            first = dict(current, updated_at=created_iso[j], status="new", assignee_id=None,
                         satisfaction_rating={"score": "unoffered"},
                         metrics={"replies": 0, "reopens": 0, "reply_time_in_minutes": NO_TIME,
                                  "full_resolution_time_in_minutes": NO_TIME,
                                  "agent_work_time_in_minutes": {"calendar": 0, "business": 0}, "solved_at": None})
            versions.append((int(created[j]), int(ticket_id[j]), compact_json(first)))
    versions.sort(key=lambda v: (v[0], v[1]))
    claim_ticket = {(int(invoice[j]), int(kind[j])): int(ticket_id[j]) for j in range(nb, nb + len(claimed))}
    return [v[2] for v in versions], claim_ticket, count


def refund_request_tickets(rng: np.random.Generator, invoices: IssuedInvoices, charges: Charges,
                           refund_lines: list[str], first_id: int) -> list[str]:
    """The ``refund_request`` ticket each ordinary refund answers: the customer asked, billing refunded.

    Without it a customer's refund has no start, and the refund-turnaround KPI of docs/contract/kpis.md (ticket
    created → refund succeeded) has nothing to measure. The ticket names no invoice (only recorded
    claims do): the KPI matches it by customer, opened between the charge and the refund. Opened
    2–48 hours before the refund (never before the charge), solved by the refund; two versions.
    Drawn after ``tickets``' draws on its stream, with ids after its ``count``: nothing else moves.
    """
    position_of = {charge_id: i for (i, attempt), charge_id in charges.id_of.items() if attempt == 0}
    asked = [(position_of[r["charge"]], int(r["created"])) for r in map(json.loads, refund_lines)]
    count = len(asked)
    lead = rng.integers(2 * HOUR, 48 * HOUR, count)
    reply = rng.integers(5, 240, count)
    share = rng.uniform(0.25, 0.7, count)
    channel = np.where(rng.random(count) < 0.5, 1, 2)  # web or email
    score = rng.choice(4, count, p=[0.55, 0.08, 0.25, 0.12])
    agent = rng.integers(0, 1 << 30, count)
    group_id, agents = GROUPS["billing"]
    lines = []
    for k, (i, refunded_at) in enumerate(asked):
        charged_at = charges.created_of[(i, 0)]
        created = max(refunded_at - int(lead[k]), charged_at + 60)
        created = min(created, refunded_at - 60)
        resolve = (refunded_at - created) // 60
        reply_minutes = min(int(reply[k]), resolve)
        work = min(resolve, 5 + int(reply[k]) // 10)
        created_iso, solved_iso = iso_utc([created, refunded_at])
        ticket_id = first_id + k
        current = {
            "id": ticket_id, "url": f"https://billops.zendesk.com/api/v2/tickets/{ticket_id}.json",
            "created_at": created_iso, "updated_at": solved_iso, "type": "question",
            "subject": "Please refund part of my last payment", "status": "solved", "priority": "normal",
            "via": {"channel": CHANNELS[channel[k]]},
            "requester_id": 20_000_000_000 + _customer_number(invoices.customers[i]) * 4,
            "organization_id": invoices.customers[i],
            "assignee_id": agents[int(agent[k]) % len(agents)], "group_id": group_id,
            "tags": ["refund_request"], "custom_fields": [{"id": "invoice_number", "value": None}],
            "satisfaction_rating": {"score": SCORES[score[k]]},
            "metrics": {
                "replies": 2, "reopens": 0,
                "reply_time_in_minutes": {"calendar": reply_minutes, "business": int(round(reply_minutes * share[k]))},
                "full_resolution_time_in_minutes": {"calendar": resolve, "business": int(round(resolve * share[k]))},
                "agent_work_time_in_minutes": {"calendar": work, "business": min(work, int(round(work * share[k])))},
                "solved_at": solved_iso,
            },
        }
        first = dict(current, updated_at=created_iso, status="new", assignee_id=None,
                     satisfaction_rating={"score": "unoffered"},
                     metrics={"replies": 0, "reopens": 0, "reply_time_in_minutes": NO_TIME,
                              "full_resolution_time_in_minutes": NO_TIME,
                              "agent_work_time_in_minutes": {"calendar": 0, "business": 0}, "solved_at": None})
        lines += [compact_json(first), compact_json(current)]
    return lines


def by_update(lines: list[str]) -> list[str]:
    """Ticket version lines in file order: by ``updated_at``, then id (as ``tickets`` orders its own)."""
    def key(line: str) -> tuple[str, int]:
        doc = json.loads(line)
        return doc["updated_at"], doc["id"]
    return sorted(lines, key=key)
