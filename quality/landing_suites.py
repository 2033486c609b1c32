"""Landing suites (warn): Great Expectations suites on tickets and payments as they were loaded
(raw.tickets, raw.charges, raw.refunds, raw.disputes — accepted rows, small), one check per source.

Ingestion already quarantines what the contract rejects line by line (assets/jsonl.py); these
suites judge the accepted rows as a whole and across sources — one row per id, statuses and
currencies in the contract's lists (currencies case-folded: ingestion already quarantines any
but usd), a refund or dispute no larger than its charge, a ticket not updated before it was
created — and name each unexpected row by file and line. They warn
(an alert, not a blocked month): payments and tickets do not change what is invoiced.
"""

import warnings

import dagster as dg

from config.partitions import monthly_partitions
from quality.gx_runner import SHOWN, Expect, SuiteOutcome, frame, run_suite, suite_result
from warehouse.resource import WarehouseResource

# Partitioned asset checks are a "preview" in Dagster 1.13; the month is what these checks judge.
warnings.filterwarnings("ignore", "Specifying a partitions_def on an AssetCheckSpec", dg.PreviewWarning)

INDEX = ["source_file", "row_number"]


def _in_set(column: str, values: list[str]) -> Expect:
    return Expect(f"{column} must be one of {', '.join(values)}", "ExpectColumnValuesToBeInSet",
                  {"column": column, "value_set": values})


def _unique(column: str = "id") -> Expect:
    return Expect(f"{column} must appear once", "ExpectColumnValuesToBeUnique", {"column": column})


def _not_above(column: str, bound: str) -> Expect:
    return Expect(f"{column} must not exceed {bound}", "ExpectColumnPairValuesAToBeGreaterThanB",
                  {"column_A": bound, "column_B": column, "or_equal": True, "ignore_row_if": "either_value_is_missing"})


def _at_least_zero(column: str) -> Expect:
    return Expect(f"{column} must not be negative", "ExpectColumnValuesToBeBetween", {"column": column, "min_value": 0})


# source → (query over its accepted view, the suite)
SUITES: dict[str, tuple[str, list[Expect]]] = {
    "tickets": (
        "SELECT source_file, row_number, id, status, channel, customer_id, satisfaction_score, created_at, "
        "updated_at, solved_at FROM raw.tickets",
        [
            _unique(),
            Expect("customer_id must be present", "ExpectColumnValuesToNotBeNull", {"column": "customer_id"}),
            _in_set("status", ["new", "open", "pending", "hold", "solved", "closed"]),
            _in_set("channel", ["chat", "web", "email", "api"]),
            _in_set("satisfaction_score", ["good", "bad", "offered", "unoffered"]),
            Expect("updated_at must not be before created_at", "ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "updated_at", "column_B": "created_at", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
            Expect("solved_at must not be before created_at", "ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "solved_at", "column_B": "created_at", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
        ],
    ),
    "charges": (
        "SELECT source_file, row_number, id, amount, amount_refunded, lower(currency) AS currency, status FROM raw.charges",
        [
            _unique(),
            _in_set("currency", ["usd"]),
            _in_set("status", ["succeeded", "failed", "pending"]),
            _at_least_zero("amount"),
            _not_above("amount_refunded", "amount"),
        ],
    ),
    "refunds": (
        "SELECT r.source_file, r.row_number, r.id, r.amount, lower(r.currency) AS currency, r.status, r.reason, c.amount AS charge_amount "
        "FROM raw.refunds r LEFT JOIN raw.charges c ON c.id = r.charge_id",
        [
            _unique(),
            _in_set("currency", ["usd"]),
            _in_set("status", ["succeeded", "pending", "failed", "canceled"]),
            _in_set("reason", ["duplicate", "fraudulent", "requested_by_customer"]),
            _at_least_zero("amount"),
            _not_above("amount", "charge_amount"),
        ],
    ),
    "disputes": (
        "SELECT d.source_file, d.row_number, d.id, d.amount, lower(d.currency) AS currency, d.status, c.amount AS charge_amount "
        "FROM raw.disputes d LEFT JOIN raw.charges c ON c.id = d.charge_id",
        [
            _unique(),
            _in_set("currency", ["usd"]),
            _in_set("status", ["warning_needs_response", "needs_response", "under_review", "won", "lost"]),
            _at_least_zero("amount"),
            _not_above("amount", "charge_amount"),
        ],
    ),
}


def judge(source: str, outcome: SuiteOutcome, asset_key: dg.AssetKey | None = None,
          check_name: str | None = None) -> dg.AssetCheckResult:
    """The warning for one source: its unexpected rows named by file and line (on raw.<source> at the close;
    the day's ingestion of tickets and payments, quality/feeds_checks.py, reports it on its own asset)."""
    offending = [
        {"file": o.index.get("source_file"), "row": o.index.get("row_number"), "rule": o.rule, "value": o.value}
        for o in outcome.offences
    ]
    named = "; ".join(
        f"{o['file']} line {o['row']}: {o['rule']}" + (f" [found {o['value']}]" if o["value"] is not None else "")
        for o in offending[:SHOWN]
    )
    if outcome.errors:
        description = f"{source} suite could not be evaluated: GX raised on " + "; ".join(outcome.errors[:3])
    elif not outcome.success:
        description = f"{len(offending)} unexpected value(s) in raw.{source}: {named}"
    else:
        description = f"all {outcome.rows_checked} rows of raw.{source} meet the landing suite"
    return suite_result(asset_key or dg.AssetKey(["raw", source]), check_name or f"{source}_landing_suite",
                        dg.AssetCheckSeverity.WARN,
                        description, outcome, offending)


@dg.multi_asset_check(
    name="landing_suites",
    specs=[
        dg.AssetCheckSpec(
            f"{source}_landing_suite", asset=dg.AssetKey(["raw", source]), partitions_def=monthly_partitions,
            description=f"Warn: the accepted rows of raw.{source} meet their Great Expectations suite "
                        "(ids once, statuses and currencies in the contract's lists, amounts within their charge); "
                        "unexpected rows are named by file and line.",
        )
        for source in SUITES
    ],
    can_subset=True,
    description="Great Expectations suites on tickets and payments as loaded (warnings).",
)
def landing_suites(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Each selected source's suite, on its accepted view as this close loaded it."""
    selected = {key.asset_key.path[-1] for key in context.selected_asset_check_keys}
    sources = [s for s in SUITES if s in selected]
    with warehouse.connect(read_only=True) as con:
        frames = {s: frame(con.sql(SUITES[s][0]).to_arrow_table()) for s in sources}
    for source in sources:
        yield judge(source, run_suite(f"landing_{source}", frames[source], SUITES[source][1], INDEX))


landing_suite_checks = [landing_suites]
