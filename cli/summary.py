"""The close's summary on the terminal: what this run read, issued or restated, and what failed.

Every figure comes from the run's own events (asset metadata, check evaluations),
so a close that could not open the warehouse never shows an earlier close's numbers.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.close import CloseOutcome, PlannedClose
from config.billing_month import BillingMonth
from config.settings import Settings

USAGE = "raw/usage"
ISSUING = "audit/issued_invoices"
WORK_ITEMS = "marts/work_items"  # workitems/asset.py
OTHER_SOURCES = ("raw/tickets", "raw/charges", "raw/refunds", "raw/disputes")


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_plan(console: Console, asked: BillingMonth, plan: list[PlannedClose]) -> None:
    """Say what the close will run before it runs: each earlier month restated and why, then the month asked."""
    restatements = [step for step in plan if step.restatement]
    if not restatements:
        return
    console.print(f"close {asked}: {len(restatements)} earlier issued month(s) to restate first, then {asked}")
    for step in restatements:
        console.print(f"  restate {step.month} ({escape(step.options.describe())}, as it was issued): "
                      + escape("; ".join(step.reasons)))


def print_outcome(console: Console, err_console: Console, outcome: CloseOutcome, settings: Settings,
                  asked: BillingMonth | None = None, step: PlannedClose | None = None) -> None:
    """The run's summary. Every piece of data goes through `escape`: a C13 message quoting a landed value
    such as `[found twenty]` must print as it is, not as Rich markup."""
    month = outcome.month
    asked = asked or month
    doing = f"restating {month} for close {asked}" if month != asked else f"close {asked}"
    table = Table(title=f"billops {escape(doing)}", show_header=False)
    usage = outcome.metadata.get(USAGE, {})
    for key, label in (("files", "usage files"), ("rows_read", "records read"), ("accepted", "accepted"),
                       ("redelivered", "re-delivered"), ("quarantined", "quarantined")):
        if key in usage:
            table.add_row(label, _count(usage[key]))
    for reason, count in (usage.get("quarantined_by_reason") or {}).items():
        table.add_row(f"  {escape(str(reason))}", _count(count))
    for source in OTHER_SOURCES:
        meta = outcome.metadata.get(source)
        if meta:
            table.add_row(source.split("/")[1], " · ".join(
                f"{k} {_count(meta[k])}" for k in ("rows_read", "accepted", "redelivered", "quarantined") if k in meta))
    issuing = outcome.metadata.get(ISSUING)
    if issuing and issuing.get("action") == "issued":
        table.add_row("issued", f"{_count(issuing['invoices'])} invoices, {_count(issuing['lines'])} lines")
        table.add_row("total issued (USD)", str(issuing["total"]))
    elif issuing:
        table.add_row("restated", f"{_count(issuing['customers_differing'])} customers differ from what was issued, "
                                  f"{_count(issuing['restatements_added'])} new restatement rows")
        table.add_row("net difference (USD)", str(issuing["net_difference"]))
    elif outcome.success:
        table.add_row("issued", "nothing")
    else:
        table.add_row("issued", "nothing: the month was not issued")
    console.print(table)
    work_items = outcome.metadata.get(WORK_ITEMS)
    if work_items:  # the queue as this run left it (raised by the close's own asset, decisions #59)
        console.print(f"work items: {_count(work_items['raised'])} raised, {_count(work_items['marked_done'])} marked done"
                      + (escape(f"; {work_items['refunds_not_matched']} refund(s) naming no approved item: "
                                f"{work_items.get('refunds_not_matched_detail', '')}")
                         if work_items.get("refunds_not_matched") else ""))
    console.print(escape(f"Dagster run {outcome.run_id} in {settings.dagster_home}; log {outcome.log_file}"))
    for warning in outcome.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(warning)}")
    if not outcome.success:
        if month != asked:
            err_console.print(f"[red]close {asked} failed[/red]: restating {month} failed; nothing of "
                              f"{month} was restated and {asked} was not run:")
        else:
            err_console.print(f"[red]close {asked} failed[/red]; nothing was issued or restated:")
        for failure in outcome.failures or ["the run failed (see the Dagster UI)"]:
            err_console.print(f"  - {escape(failure)}")
        return
    action = "restated" if issuing and issuing.get("action") == "restated" else "issued"
    if month != asked:
        console.print(f"[green]restating {month} succeeded[/green]: {action}; now close {asked}")
    else:
        console.print(f"[green]close {asked} succeeded[/green]: {action}")
