"""The close's options, as the run tags every close carries (the command sets them; the UI can too).

- `billops/allow_missing_days`: C12 lets the month issue with UTC days that have no usage file.
- `billops/first_month`: the month may be the warehouse's first issued month although earlier
  usage has landed (docs/contract/billing-rules.md §4; those earlier months can then never be closed).

The issuing asset records both on `audit.issued_months`, so that a later restatement of the
month runs with the allowances the month was issued with (a November issued with missing days
is not failed by C12 when a December close restates it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

# How the run started: command, command --in-process, schedule, restatement_sensor (the UI sets none).
TRIGGER_TAG = "billops/trigger"
# The warehouse's one writer slot: close_month_job carries this tag and the instance's run queue
# runs one such run at a time (orchestration/instance_config.py); DuckDB allows one writing process.
WAREHOUSE_SLOT_TAG = "billops/warehouse"
# A preview run (preview_month_job): it rates an open month and publishes, never issues; the rating
# refuses a month already issued (assets/dbt.py), so a preview never rewrites an issued month's drafts.
PREVIEW_TAG = "billops/preview"
ALLOW_MISSING_DAYS_TAG = "billops/allow_missing_days"
FIRST_MONTH_TAG = "billops/first_month"


@dataclass(frozen=True)
class CloseOptions:
    allow_missing_days: bool = False
    first_month: bool = False

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> "CloseOptions":
        def flag(name: str) -> bool:
            return str(tags.get(name, "")).strip().lower() == "true"
        return cls(allow_missing_days=flag(ALLOW_MISSING_DAYS_TAG), first_month=flag(FIRST_MONTH_TAG))

    def tags(self) -> dict[str, str]:
        return {tag: "true" for tag, on in ((ALLOW_MISSING_DAYS_TAG, self.allow_missing_days),
                                            (FIRST_MONTH_TAG, self.first_month)) if on}

    def describe(self) -> str:
        named = [name for name, on in (("--allow-missing-days", self.allow_missing_days),
                                       ("--first-month", self.first_month)) if on]
        return " ".join(named) or "no options"
