"""The console's roles and what each may do (docs/console.md, issue 17 item 2).

One table, read by every page and every form handler, so a permission is granted in one place
and a test can walk it. The roles follow the team: specialists work the queue (assign, decline,
approve what needs one person, propose — record the first approval of — what needs two);
approvers also give the approval that settles a four-eyes item; the lead does everything and
manages the accounts; finance reads everything and changes nothing.
"""

from __future__ import annotations

ROLES = ("specialist", "approver", "lead", "finance")

# Every permission a page or form asks for.
READ = "read"                      # every page: queue, items, customers, invoices, KPIs, the report
ASSIGN = "assign"                  # assign an open item to oneself
DECLINE = "decline"                # decline an open item, with a reason
APPROVE = "approve"                # approve an item needing one approval; record the first of two
SETTLE_FOUR_EYES = "settle_four_eyes"  # give the second approval of an item that requires two
MANAGE_USERS = "manage_users"      # add, disable accounts, set passwords

PERMISSIONS: dict[str, frozenset[str]] = {
    "specialist": frozenset({READ, ASSIGN, DECLINE, APPROVE}),
    "approver": frozenset({READ, ASSIGN, DECLINE, APPROVE, SETTLE_FOUR_EYES}),
    "lead": frozenset({READ, ASSIGN, DECLINE, APPROVE, SETTLE_FOUR_EYES, MANAGE_USERS}),
    "finance": frozenset({READ}),
}


def may(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())
