"""C13 reference data valid (blocking): every row of the four reference snapshots follows
docs/contract/inputs.md, or the close fails naming the file, the row (from 1, header excluded) and
the rule, before dbt staging casts a single value and before usage is priced against it.

raw.<name> holds each CSV as text (assets/reference.py), in file order: `rowid + 1` is the row.
DuckDB computes what a rule needs SQL for (does a value cast the way dbt staging casts it, do two
effective ranges overlap); tiers are judged in Python (a few rows); every rule is then a GX
expectation on the snapshot's frame, and the rows GX finds unexpected are the offending rows.
"""


import json
import warnings
from decimal import Decimal

import dagster as dg

from config.partitions import monthly_partitions
from quality.gx_runner import SHOWN, Expect, SuiteOutcome, frame, run_suite, suite_result
from warehouse.resource import WarehouseResource

# Partitioned asset checks are a "preview" in Dagster 1.13; the month is what these checks judge.
warnings.filterwarnings("ignore", "Specifying a partitions_def on an AssetCheckSpec", dg.PreviewWarning)

MODELS = ["hourly_capped", "unit", "transfer", "graduated", "flat_monthly"]
PAYMENT_METHODS = ["card", "paypal", "none"]
GRANT_KINDS = ["promo", "goodwill", "refund_credit"]
REFERENCE_NAMES = ["customers", "price_book", "tax_rates", "credit_grants"]

# column → the type dbt staging casts it to (stg_reference__*.sql): what C13 passes, staging can read.
CASTS = {
    "customers": {"created_at": "TIMESTAMPTZ", "closed_at": "TIMESTAMPTZ"},
    "price_book": {"unit_price": "DECIMAL(18,8)", "monthly_cap": "DECIMAL(18,2)", "cap_hours": "DECIMAL(18,6)",
                   "included_transfer_gib": "DECIMAL(18,6)", "effective_from": "DATE", "effective_to": "DATE"},
    "tax_rates": {"rate": "DECIMAL(9,6)", "effective_from": "DATE", "effective_to": "DATE"},
    "credit_grants": {"amount": "DECIMAL(18,2)", "granted_at": "TIMESTAMPTZ", "expires_at": "TIMESTAMPTZ"},
}
# Rows sharing these keys must not have overlapping [effective_from, effective_to).
RANGE_KEYS = {"price_book": "sku", "tax_rates": "upper(country) || '/' || upper(coalesce(region, ''))"}


def _snapshot_sql(name: str) -> str:
    """The snapshot as text, with per row: each typed value, the text that does not cast, overlaps."""
    casts = CASTS[name]
    typed = "".join(f", try_cast({c} AS {t}) AS {c}_value" for c, t in casts.items())
    unparseable = "".join(
        f", CASE WHEN {c} IS NOT NULL AND try_cast({c} AS {t}) IS NULL THEN {c} END AS {c}_unparseable"
        for c, t in casts.items()
    )
    overlap = ""
    if name in RANGE_KEYS:
        overlap = """, (SELECT string_agg('row ' || o.row || ', ' || o.effective_from || ' to '
                                        || coalesce(o.effective_to, 'open'), ' and ' ORDER BY o.row)
              FROM ranged o
              WHERE o.range_key = s.range_key AND o.row <> s.row AND s.valid_range AND o.valid_range
                AND o.from_day < coalesce(s.to_day, DATE '9999-12-31')
                AND s.from_day < coalesce(o.to_day, DATE '9999-12-31')) AS overlapping_rows,
            CASE WHEN s.to_day <= s.from_day THEN s.effective_to END AS effective_to_not_after_from"""
    # Only well-formed ranges are compared: an unparseable or inverted one is reported by its own rule.
    ranged = (
        f", {RANGE_KEYS[name]} AS range_key, try_cast(effective_from AS DATE) AS from_day,"
        " try_cast(effective_to AS DATE) AS to_day,"
        " from_day IS NOT NULL AND (effective_to IS NULL OR to_day > from_day) AS valid_range"
        if name in RANGE_KEYS else ""
    )
    return f"""
WITH ranged AS (SELECT rowid + 1 AS row, *{ranged} FROM raw.{name})
SELECT s.* EXCLUDE (_loaded_at){typed}{unparseable}{overlap}
FROM ranged s ORDER BY row"""


def tiers_problem(model: str | None, tiers: str | None) -> str | None:
    """Why a graduated row's tiers are not a usable tier list, or None. Usable (docs/contract/billing-rules.md §3): a
    non-empty JSON list of {"up_to", "unit_price"}, prices non-negative numbers, up_to ascending, only
    the last null (unbounded)."""
    if model != "graduated":
        return None
    if not isinstance(tiers, str) or not tiers.strip():  # an empty CSV cell reaches pandas as NaN
        return "no tiers"
    try:
        parsed = json.loads(tiers, parse_float=Decimal)
    except ValueError:
        return f"tiers is not JSON: {tiers[:60]}"
    if not isinstance(parsed, list) or not parsed:
        return f"tiers is not a non-empty list: {tiers[:60]}"
    bound = None
    for i, tier in enumerate(parsed, 1):
        if not isinstance(tier, dict) or "up_to" not in tier or "unit_price" not in tier:
            return f"tier {i} is not an object with up_to and unit_price"
        price, up_to = tier["unit_price"], tier["up_to"]
        if isinstance(price, bool) or not isinstance(price, (int, Decimal)) or price < 0:
            return f"tier {i}: unit_price {price!r} is not a non-negative number"
        if up_to is None:
            if i != len(parsed):
                return f"tier {i}: up_to is null but it is not the last tier"
        elif isinstance(up_to, bool) or not isinstance(up_to, (int, Decimal)) or up_to <= (bound or 0):
            return f"tier {i}: up_to {up_to} is not above the previous bound {bound or 0}"
        bound = up_to
    return None


def _parseable(name: str) -> list[Expect]:
    return [
        Expect(f"{c} must be a {t.split('(')[0].replace('TIMESTAMPTZ', 'timestamp').lower()}",
               "ExpectColumnValuesToBeNull", {"column": f"{c}_unparseable"})
        for c, t in CASTS[name].items()
    ]


def _required(*columns: str) -> list[Expect]:
    return [Expect(f"{c} must be present", "ExpectColumnValuesToNotBeNull", {"column": c}) for c in columns]


def _no_overlap(key: str) -> list[Expect]:
    return [
        Expect(f"effective range must not overlap another row of the same {key}", "ExpectColumnValuesToBeNull",
               {"column": "overlapping_rows"}),
        Expect("effective_to must be after effective_from", "ExpectColumnValuesToBeNull",
               {"column": "effective_to_not_after_from"}),
    ]


def _at_least(column: str, minimum: int, strict: bool = False) -> Expect:
    return Expect(f"{column} must be {'above' if strict else 'at least'} {minimum}", "ExpectColumnValuesToBeBetween",
                  {"column": f"{column}_value", "min_value": minimum, "strict_min": strict})


CODE = r"^[A-Za-z]{2}$"  # ISO 3166-1 alpha-2 country, US state code

SUITES: dict[str, list[Expect]] = {
    "customers": [
        *_required("customer_id", "country", "created_at", "payment_method"),
        Expect("customer_id must be unique", "ExpectColumnValuesToBeUnique", {"column": "customer_id"}),
        Expect("country must be an ISO 3166-1 alpha-2 code", "ExpectColumnValuesToMatchRegex", {"column": "country", "regex": CODE}),
        Expect("region must be a two-letter code or empty", "ExpectColumnValuesToMatchRegex", {"column": "region", "regex": CODE}),
        Expect(f"payment_method must be one of {', '.join(PAYMENT_METHODS)}", "ExpectColumnValuesToBeInSet",
               {"column": "payment_method", "value_set": PAYMENT_METHODS}),
        *_parseable("customers"),
    ],
    "price_book": [
        *_required("sku", "model", "effective_from"),
        Expect(f"model must be one of {', '.join(MODELS)}", "ExpectColumnValuesToBeInSet", {"column": "model", "value_set": MODELS}),
        *_parseable("price_book"),
        _at_least("unit_price", 0), _at_least("monthly_cap", 0), _at_least("cap_hours", 0, strict=True),
        _at_least("included_transfer_gib", 0),
        Expect("a non-graduated row must have a unit_price", "ExpectColumnValuesToBeNull", {"column": "unit_price_missing"}),
        Expect("an hourly_capped row must have a monthly_cap", "ExpectColumnValuesToBeNull", {"column": "monthly_cap_missing"}),
        Expect("an hourly_capped row with included_transfer_gib must have cap_hours", "ExpectColumnValuesToBeNull",
               {"column": "transfer_without_cap_hours"}),
        Expect("a graduated row must have valid tiers", "ExpectColumnValuesToBeNull", {"column": "tiers_problem"}),
        *_no_overlap("sku"),
    ],
    "tax_rates": [
        *_required("country", "rate", "effective_from"),
        Expect("country must be an ISO 3166-1 alpha-2 code", "ExpectColumnValuesToMatchRegex", {"column": "country", "regex": CODE}),
        Expect("region must be a two-letter code or empty", "ExpectColumnValuesToMatchRegex", {"column": "region", "regex": CODE}),
        Expect("reverse_charge must be true, false or empty", "ExpectColumnValuesToMatchRegex",
               {"column": "reverse_charge", "regex": r"(?i)^(?:true|false)$"}),
        *_parseable("tax_rates"),
        Expect("rate must be a fraction between 0 and 1", "ExpectColumnValuesToBeBetween",
               {"column": "rate_value", "min_value": 0, "max_value": 1}),
        *_no_overlap("country and region"),
    ],
    "credit_grants": [
        *_required("grant_id", "customer_id", "amount", "kind", "granted_at"),
        Expect("grant_id must be unique", "ExpectColumnValuesToBeUnique", {"column": "grant_id"}),
        Expect(f"kind must be one of {', '.join(GRANT_KINDS)}", "ExpectColumnValuesToBeInSet", {"column": "kind", "value_set": GRANT_KINDS}),
        Expect("amount must be a USD amount with at most 2 decimals", "ExpectColumnValuesToMatchRegex",
               {"column": "amount", "regex": r"^\s*-?\d+(?:\.\d{1,2})?\s*$"}),
        *_parseable("credit_grants"),
        _at_least("amount", 0, strict=True),
    ],
}


def load_snapshot(con, name: str):
    """raw.<name> as a frame: text columns, `row`, typed values, and the flags the suite checks."""
    data = frame(con.sql(_snapshot_sql(name)).to_arrow_table())
    if name == "price_book":
        model, unit_price = data["model"], data["unit_price"]
        data["unit_price_missing"] = model.where(model.isin(["hourly_capped", "unit", "transfer", "flat_monthly"])
                                                 & unit_price.isna())
        data["monthly_cap_missing"] = model.where((model == "hourly_capped") & data["monthly_cap"].isna())
        data["transfer_without_cap_hours"] = data["included_transfer_gib"].where(
            (model == "hourly_capped") & data["included_transfer_gib"].notna() & data["cap_hours"].isna())
        data["tiers_problem"] = [tiers_problem(m, t) for m, t in zip(model, data["tiers"])]
        data["tiers_problem"] = data["tiers_problem"].astype(object)
    return data


def judge(name: str, outcome: SuiteOutcome, asset_key: dg.AssetKey | None = None,
          check_name: str | None = None, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
          ) -> dg.AssetCheckResult:
    """C13's result for one snapshot: the offending rows named by file, row and rule.

    The close's check is on the snapshot's own asset (raw/<name>); a usage day judges the two
    snapshots its row rules read on its own asset (quality/usage_checks.py), under another name."""
    file = f"reference/{name}.csv"
    offending = [{"file": file, "row": o.index.get("row"), "rule": o.rule, "value": o.value} for o in outcome.offences]
    named = "; ".join(
        f"row {o['row']}: {o['rule']}" + (f" [found {o['value']}]" if o["value"] is not None else "")
        if o["row"] is not None else f"{o['rule']} [found {o['value']}]"
        for o in offending[:SHOWN]
    )
    if outcome.errors:
        description = f"C13 could not be evaluated on {file}: GX raised on " + "; ".join(outcome.errors[:3])
    elif not outcome.success:
        rows = len({o["row"] for o in offending})
        description = f"C13 failed: {file}: {rows} row(s) break the landing contract: {named}"
    else:
        description = f"C13: all {outcome.rows_checked} rows of {file} follow the landing contract"
    return suite_result(asset_key or dg.AssetKey(["raw", name]), check_name or f"C13_{name}_valid", severity,
                        description, outcome, offending, file=file)


@dg.multi_asset_check(
    name="C13_reference_data_valid",
    specs=[
        dg.AssetCheckSpec(
            f"C13_{name}_valid", asset=dg.AssetKey(["raw", name]), blocking=True, partitions_def=monthly_partitions,
            description=f"C13 reference data valid: every row of reference/{name}.csv follows docs/contract/inputs.md "
                        "(parseable values, known model, no overlapping effective ranges, valid tiers); "
                        "a failure names the file, the row (from 1) and the rule, and blocks the month.",
        )
        for name in REFERENCE_NAMES
    ],
    can_subset=True,
    description="C13: the four reference snapshots, judged row by row with Great Expectations.",
)
def reference_data_valid(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """C13 on customers, price book, tax rates and credit grants as this close loaded them."""
    selected = {key.asset_key.path[-1] for key in context.selected_asset_check_keys}
    names = [name for name in REFERENCE_NAMES if name in selected]
    with warehouse.connect(read_only=True) as con:
        snapshots = {name: load_snapshot(con, name) for name in names}
    for name in names:
        yield judge(name, run_suite(f"c13_{name}", snapshots[name], SUITES[name], ["row"]))


reference_checks = [reference_data_valid]
