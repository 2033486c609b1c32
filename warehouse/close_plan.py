"""What a close runs, in order: the earlier issued months to restate (and why), then the month asked.

One planner for every way a close starts — `billops close`, the monthly schedule and
the restatement sensor — so they restate the same months with the same options. It
reads the landing zone and the close state (warehouse/close_state.py), never the
warehouse file. An issued month is restated when a usage file landed in its folders
that its last successful run did not load, or a reference snapshot's sha256 differs
from the one that run used; it runs with the options it was issued with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from config.billing_month import BillingMonth
from warehouse.close_options import CloseOptions
from warehouse.close_state import CloseState
from warehouse.landing import REFERENCE_COLUMNS, file_sha256, landed_usage_months, usage_month_files
from warehouse.months import first_month_problem, order_problem


class CloseRefused(Exception):
    """The month cannot be closed now; nothing was run."""


@dataclass(frozen=True)
class PlannedClose:
    """One run of a close: the month, the options it runs with, and why it runs (empty for the month asked)."""

    month: BillingMonth
    options: CloseOptions
    reasons: tuple[str, ...] = ()

    @property
    def restatement(self) -> bool:
        return bool(self.reasons)


def _some(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def restatements(landing: Path, state: CloseState, before: date | None = None) -> list[PlannedClose]:
    """Each issued month (before `before`, if given) whose inputs changed since its last successful run."""
    current = {f"reference/{name}.csv": file_sha256(landing / "reference" / f"{name}.csv")
               for name in REFERENCE_COLUMNS if (landing / "reference" / f"{name}.csv").exists()}
    planned = []
    for month in state.issued:
        if before is not None and month >= before:
            continue
        loaded = state.usage_files.get(month, set())
        late = [p.relative_to(landing).as_posix() for p in usage_month_files(landing, month)]
        late = [rel for rel in late if rel not in loaded]
        used = state.snapshots.get(month, {})
        changed = [rel for rel, sha in current.items() if used.get(rel) != sha]
        reasons = [f"{len(late)} usage file(s) landed since it was issued: {_some(late)}"] if late else []
        reasons += [f"{_some(changed)} changed since it was issued"] if changed else []
        if reasons:
            planned.append(PlannedClose(BillingMonth.of(month), state.options[month], tuple(reasons)))
    return planned


def plan_close(landing: Path, state: CloseState, month: BillingMonth,
               options: CloseOptions = CloseOptions()) -> list[PlannedClose]:
    """The runs of a close of `month`: earlier restatements first, then the month itself.

    Raises CloseRefused when the month would be issued out of order or would strand earlier
    landed usage as the warehouse's first month.
    """
    problem = order_problem(state.issued, month.start) or first_month_problem(
        state.issued, month.start, landed_usage_months(landing), options.first_month)
    if problem:
        raise CloseRefused(problem)
    return restatements(landing, state, before=month.start) + [PlannedClose(month, options)]
