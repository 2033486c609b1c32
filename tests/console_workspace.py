"""The console's test workspace: the session's generated chain (two closed months), its published copy and queue copied.

The chain (tests/generated_chain.py) is the demo's business at 200 customers: September and
October closed through the real command, payments, refunds and tickets simulated, work items
raised by October's close. Its published copy and its queue are copied (never changed in
place: other tests read the chain), accounts are added for each role, and a refund over $100
that needs four eyes is made sure of. No close is run here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from config.settings import ConsoleSettings

PASSWORD = "a long test password"
ACCOUNTS = {"sam": "specialist", "ann": "approver", "lee": "lead", "fin": "finance"}


@dataclass
class ConsoleWorkspace:
    root: Path
    published: Path
    queue_url: str
    chain_root: Path  # the chain's own workspace (read-only: its warehouse, for independent counts)
    four_eyes_item: str

    def settings(self, **overrides) -> ConsoleSettings:
        values = dict(host="127.0.0.1", port=0, session_minutes=60,
                      sla_hours={"refund": 48, "credit_note": 48, "payment_extension": 24, "first_response": 4},
                      proxy_header="", trusted_proxies=())
        values.update(overrides)
        return ConsoleSettings(**values)


def build(chain, root: Path) -> ConsoleWorkspace:
    from console.accounts import accounts_engine, add_user
    from workitems.store import get_item, list_items, queue_engine, raise_item

    source = chain.ws.root
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "data" / "published", root / "published", symlinks=True)
    for path in source.glob("ops.sqlite*"):
        shutil.copy2(path, root / path.name)
    url = f"sqlite:///{root / 'ops.sqlite'}"
    engine = accounts_engine(url)
    for name, role in ACCOUNTS.items():
        add_user(engine, name, role, PASSWORD, by="tests")
    queue = queue_engine(url)
    four_eyes = next((i["work_item_id"] for i in list_items(queue, status="open") if i["requires_approval"]), None)
    if four_eyes is None:  # the chain raised none open: one like R2's, on a real invoice of the chain
        import duckdb

        con = duckdb.connect(str(root / "published" / "billops.duckdb"), read_only=True)
        number, customer = con.execute("SELECT invoice_number, customer_id FROM marts.invoices ORDER BY total DESC "
                                       "LIMIT 1").fetchone()
        con.close()
        four_eyes, _ = raise_item(queue, {
            "kind": "refund", "rule": "R2", "customer_id": customer, "invoice_number": number,
            "charge_id": "ch_console_test", "amount": Decimal("150.10"), "reason": "second succeeded charge (test)",
            "evidence": {"charges": ["ch_a", "ch_console_test"]}}, raised_by="tests")
    assert get_item(queue, four_eyes)["requires_approval"]
    queue.dispose()
    engine.dispose()
    return ConsoleWorkspace(root, root / "published", url, source, four_eyes)
