"""The close's summary on the terminal: what this run read, issued or restated, and what failed.

Every figure comes from the run's own events (asset metadata, check evaluations),
so a close that could not open the warehouse never shows an earlier close's numbers.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cli.close import CloseOutcome
from orchestration.settings import Settings

USAGE = "raw/usage"
ISSUING = "audit/issued_invoices"
OTHER_SOURCES = ("raw/tickets", "raw/charges", "raw/refunds", "raw/disputes")


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_outcome(console: Console, err_console: Console, outcome: CloseOutcome, settings: Settings) -> None:
    table = Table(title=f"billops close {outcome.month}", show_header=False)
    usage = outcome.metadata.get(USAGE, {})
    for key, label in (("files", "usage files"), ("rows_read", "records read"), ("accepted", "accepted"),
                       ("redelivered", "re-delivered"), ("quarantined", "quarantined")):
        if key in usage:
            table.add_row(label, _count(usage[key]))
    for reason, count in (usage.get("quarantined_by_reason") or {}).items():
        table.add_row(f"  {reason}", _count(count))
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
    console.print(f"Dagster run {outcome.run_id} in {settings.dagster_home}; dbt log {outcome.log_file}")
    for warning in outcome.warnings:
        console.print(f"[yellow]warning[/yellow] {warning}")
    if not outcome.success:
        err_console.print(f"[red]close {outcome.month} failed[/red]; nothing was issued or restated:")
        for failure in outcome.failures or ["the run failed (see the Dagster UI)"]:
            err_console.print(f"  - {failure}")
        return
    action = "restated" if issuing and issuing.get("action") == "restated" else "issued"
    console.print(f"[green]close {outcome.month} succeeded[/green]: {action}")
