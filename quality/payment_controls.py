"""Controls on money movement (docs/contract/controls.md P1–P4): warnings on the published payments marts.

They judge the books as the close states them: money moved before the end of the
month being closed ($end, the same cut-off as marts.accounts_receivable's as_of),
whatever month it paid for. They never block (the month is issued already when
the payments marts are published); a failure is a WARN check result with its
numbers, which the warning-check alert sensor turns into one alert.

Definitions (where docs/contract/controls.md leaves room):
- P1: a succeeded charge that is not the first succeeded one for its invoice
  (marts.charges.is_duplicate) fails while it is not refunded in full; refunding
  the duplicate (R2) settles it, so a remedied duplicate does not alert forever.
- P2: per charge, Σ succeeded refunds <= the amount captured (the charge's amount
  if it succeeded, 0 otherwise: a refund of a failed charge is unbounded money).
- P3: every succeeded refund over $100 carrying metadata.work_item_id executes a
  refund item that is approved (or done), required four eyes, was approved by two
  different people, none of them the requester, for at least the refunded amount.
  The approval trail is in the ops store (work_item_events), not in marts.work_items
  (which carries only the settling approver, decided_by); the check reads the trail
  from the store and joins it as the in-memory table `work_item_trail`.
- P4: per billing month of the issued invoices, succeeded charges − their succeeded
  refunds (moved before $end) = what the books call settled: amount_due of every
  invoice marked paid, plus what was kept on invoices marked partially_refunded or
  refunded. Money on invoices marked anything else (a partial payment of an unpaid
  invoice) and money beyond amount_due (an unrefunded duplicate) make it differ.
"""

import dagster as dg
import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import Engine

from config.partitions import monthly_partitions
from quality.controls import Control
from warehouse.resource import WarehouseResource

CHARGES = dg.AssetKey(["marts", "charges"])
REFUNDS = dg.AssetKey(["marts", "refunds"])
ACCOUNTS_RECEIVABLE = dg.AssetKey(["marts", "accounts_receivable"])

TRAIL_TABLE = "work_item_trail"  # registered on the connection by register_approval_trail
REFUND_APPROVAL_OVER = "100.00"  # docs/contract/controls.md P3, docs/contract/work-items.md: refunds over $100 need approval

_REFUNDED_BEFORE_END = """
    SELECT charge_id, sum(amount) AS refunded FROM marts.refunds
    WHERE status = 'succeeded' AND created_at < $end GROUP BY charge_id"""

P1 = Control(
    "P1_no_duplicate_charge", CHARGES,
    "At most one succeeded charge per invoice: a second one is a duplicate until it is refunded in full.",
    "SELECT count(*) FROM marts.charges WHERE status = 'succeeded' AND created_at < $end",
    f"""
    WITH refunded AS ({_REFUNDED_BEFORE_END})
    SELECT c.invoice_number, c.charge_id, c.customer_id, c.created_at, c.amount,
           coalesce(r.refunded, 0) AS refunded, c.amount - coalesce(r.refunded, 0) AS unrefunded
    FROM marts.charges c LEFT JOIN refunded r ON r.charge_id = c.charge_id
    WHERE c.is_duplicate AND c.created_at < $end AND coalesce(r.refunded, 0) < c.amount
    ORDER BY c.invoice_number, c.created_at, c.charge_id""",
    amount_column="unrefunded",
    severity=dg.AssetCheckSeverity.WARN,
)

P2 = Control(
    "P2_refunds_bounded", REFUNDS,
    "Per charge, the succeeded refunds add up to at most the amount captured (0 for a charge that did not succeed).",
    f"SELECT count(*) FROM ({_REFUNDED_BEFORE_END})",
    f"""
    WITH refunded AS ({_REFUNDED_BEFORE_END})
    SELECT r.charge_id, c.invoice_number, c.status AS charge_status, c.amount AS charge_amount,
           r.refunded, r.refunded - CASE WHEN c.status = 'succeeded' THEN c.amount ELSE 0 END AS excess
    FROM refunded r LEFT JOIN marts.charges c ON c.charge_id = r.charge_id
    WHERE r.refunded > CASE WHEN c.status = 'succeeded' THEN c.amount ELSE 0 END
    ORDER BY r.charge_id""",
    amount_column="excess",
    severity=dg.AssetCheckSeverity.WARN,
)

_REFUNDS_FOR_ITEMS = f"""
    SELECT * FROM marts.refunds
    WHERE status = 'succeeded' AND created_at < $end AND work_item_id IS NOT NULL
      AND amount > {REFUND_APPROVAL_OVER}"""

P3 = Control(
    "P3_refund_approval", REFUNDS,
    "Every refund over $100 executed for a work item was approved by two different people, none of them its "
    "requester, for at least the refunded amount.",
    f"SELECT count(*) FROM ({_REFUNDS_FOR_ITEMS})",
    f"""
    WITH executed AS ({_REFUNDS_FOR_ITEMS}),
    judged AS (
      SELECT r.refund_id, r.charge_id, r.invoice_number, r.amount, r.work_item_id, w.status AS item_status,
             w.amount AS approved_amount, t.requested_by, t.approvers, w.decided_by,
             CASE
               WHEN w.work_item_id IS NULL THEN 'no such work item in marts.work_items'
               WHEN w.kind <> 'refund' THEN 'work item is a ' || w.kind || ', not a refund'
               WHEN w.status NOT IN ('approved', 'done') THEN 'work item is ' || w.status || ', not approved'
               WHEN NOT w.requires_approval THEN 'work item did not require approval (four eyes)'
               WHEN t.work_item_id IS NULL THEN 'no approval trail in the queue'
               WHEN list_contains(t.approver_keys, t.requested_key)
                 THEN 'approved by its requester ' || t.requested_by
               WHEN len(list_distinct(t.approver_keys)) < 2
                 THEN 'approved by ' || len(list_distinct(t.approver_keys)) || ' person, not two'
               WHEN r.amount > w.amount THEN 'refund exceeds the approved amount'
             END AS problem
      FROM executed r
      LEFT JOIN marts.work_items w ON w.work_item_id = r.work_item_id
      LEFT JOIN {TRAIL_TABLE} t ON t.work_item_id = r.work_item_id
    )
    SELECT refund_id, charge_id, invoice_number, amount, work_item_id, item_status, approved_amount,
           requested_by, array_to_string(approvers, ', ') AS approvers, decided_by, problem
    FROM judged WHERE problem IS NOT NULL
    ORDER BY refund_id""",
    amount_column="amount",
    severity=dg.AssetCheckSeverity.WARN,
)

P4 = Control(
    "P4_payments_reconcile", ACCOUNTS_RECEIVABLE,
    "Per billing month, succeeded charges − their refunds = amount due of invoices marked paid + what was kept "
    "on invoices marked partially_refunded or refunded, to the cent.",
    "SELECT count(DISTINCT billing_month) FROM marts.accounts_receivable",
    """
    WITH money AS (
      SELECT c.billing_month, sum(c.amount) AS charged, sum(coalesce(r.refunded, 0)) AS refunded
      FROM marts.charges c
      LEFT JOIN (
        SELECT charge_id, sum(amount) AS refunded FROM marts.refunds
        WHERE status = 'succeeded' AND created_at < $end GROUP BY charge_id
      ) r ON r.charge_id = c.charge_id
      WHERE c.status = 'succeeded' AND c.created_at < $end
      GROUP BY c.billing_month
    ), settled AS (
      SELECT billing_month,
             sum(CASE WHEN status = 'paid' THEN amount_due
                      WHEN status IN ('partially_refunded', 'refunded') THEN paid_amount ELSE 0 END) AS settled,
             count(*) FILTER (WHERE status = 'paid') AS invoices_paid
      FROM marts.accounts_receivable GROUP BY billing_month
    )
    SELECT coalesce(s.billing_month, m.billing_month) AS billing_month,
           coalesce(m.charged, 0) AS charged, coalesce(m.refunded, 0) AS refunded,
           coalesce(m.charged, 0) - coalesce(m.refunded, 0) AS net_received,
           coalesce(s.settled, 0) AS settled, coalesce(s.invoices_paid, 0) AS invoices_paid,
           coalesce(m.charged, 0) - coalesce(m.refunded, 0) - coalesce(s.settled, 0) AS difference
    FROM settled s FULL OUTER JOIN money m ON m.billing_month = s.billing_month
    WHERE coalesce(m.charged, 0) - coalesce(m.refunded, 0) <> coalesce(s.settled, 0)
    ORDER BY 1""",
    amount_column="difference",
    severity=dg.AssetCheckSeverity.WARN,
)

PAYMENT_CONTROLS = [P1, P2, P3, P4]

# The *_keys columns are workitems.identity.person_key of the names: "ana" and "ANA\u200b" are one person.
TRAIL_SCHEMA = pa.schema([("work_item_id", pa.string()), ("requested_by", pa.string()),
                          ("approvers", pa.list_(pa.string())), ("requested_key", pa.string()),
                          ("approver_keys", pa.list_(pa.string()))])


def approval_trail(engine: Engine) -> pa.Table:
    """Per work item, who raised it (its `created` event) and who approved it, oldest first, from the queue."""
    from workitems.identity import person_key
    from workitems.tables import work_item_events as events

    query = (sa.select(events.c.work_item_id, events.c.action, events.c.by)
             .where(events.c.action.in_(("created", "approval_recorded", "approved")))
             .order_by(events.c.event_id))
    trail: dict[str, dict] = {}
    with engine.connect() as conn:
        for work_item_id, action, by in conn.execute(query):
            item = trail.setdefault(work_item_id, {"work_item_id": work_item_id, "requested_by": None, "approvers": [],
                                                   "requested_key": None, "approver_keys": []})
            if action == "created":
                item["requested_by"], item["requested_key"] = by, person_key(by)
            else:
                item["approvers"].append(by)
                item["approver_keys"].append(person_key(by))
    return pa.Table.from_pylist(list(trail.values()), schema=TRAIL_SCHEMA)


def register_approval_trail(con: duckdb.DuckDBPyConnection, trail: pa.Table) -> None:
    """Make the queue's approval trail readable by P3 as `work_item_trail` (a read-only connection may)."""
    con.register(TRAIL_TABLE, trail)


def evaluate_payment_controls(con: duckdb.DuckDBPyConnection, params: dict, trail: pa.Table):
    """P1–P4 on one connection; params {'m': first day, 'end': first day after the month}."""
    register_approval_trail(con, trail)
    for control in PAYMENT_CONTROLS:
        yield control.evaluate(con, params)


@dg.multi_asset_check(
    specs=[c.spec(monthly_partitions) for c in PAYMENT_CONTROLS],
    name="payment_controls",
    description="Controls on money movement (docs/contract/controls.md P1–P4), warnings on the published payments marts.",
)
def payment_controls_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Evaluate P1–P4 as of the end of the partition's month, the approval trail read from the queue."""
    from workitems.store import queue_engine

    window = context.partition_time_window
    params = {"m": window.start.date(), "end": window.end.date()}
    trail = approval_trail(queue_engine())
    with warehouse.connect(read_only=True) as con:
        yield from evaluate_payment_controls(con, params, trail)


payment_controls = [payment_controls_check]
