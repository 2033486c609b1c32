"""`billops workitems list|show|approve|decline`: the billing team's queue (docs/contract/work-items.md).

Exit codes follow `billops close`: 0 done, 1 a refused change, an unknown item or no queue where
billops looks (the message says why, or where it looked), 2 a usage error. Who approves or declines
is the OS user running the command (workitems/identity.py); `--by` may only name that user.
Reading never creates the queue. Imports stay cheap (typer only) because cli/main.py loads this
module for every `billops` command; the store is imported inside the commands.
"""

from __future__ import annotations

import json

import typer

workitems_app = typer.Typer(help="The billing team's work-item queue: refunds, credit notes, payment extensions.",
                            no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)

STATUSES = ("open", "approved", "declined", "done")
KINDS = ("refund", "credit_note", "payment_extension")
FORMATS = ("table", "json")
TABLE_COLUMNS = (  # (header, key) of `list --format table`; every column is in `--format json`
    ("ID", "work_item_id"), ("KIND", "kind"), ("RULE", "rule"), ("CUSTOMER", "customer_id"),
    ("INVOICE", "invoice_number"), ("AMOUNT", "amount"), ("DUE", "proposed_due_date"), ("STATUS", "status"),
    ("APPROVALS", "approvals"), ("CREATED", "created_at"),
)


def _one_of(allowed: tuple[str, ...], option: str):
    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"must be one of {', '.join(allowed)}", param_hint=option)
        return value
    return check


def _fail(message: str) -> None:
    typer.echo(f"refused: {message}", err=True)
    raise typer.Exit(1)


def _engine():
    """The queue where it already is; none there is a failure that says where billops looked."""
    from workitems.store import NoQueue, existing_queue_engine

    try:
        return existing_queue_engine()
    except NoQueue as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _identity(by: str | None) -> str:
    """The OS user running the command; `--by` naming anyone else is refused before the queue is read."""
    from workitems.identity import NotThisUser, command_identity

    try:
        return command_identity(by)
    except NotThisUser as exc:
        _fail(str(exc))


def _publish() -> None:
    """Refresh marts.work_items in the published copy (BILLOPS_PUBLISHED) after a decision.

    Never the warehouse (only a close run opens it, decisions #60): the copy's other tables stay as the
    last close published them, and the warehouse's marts.work_items catches up at the next close. A close
    publishing at that moment holds the publish lock for a few seconds; this waits for it.
    """
    from config.settings import load_settings
    from workitems.mirror import publish_work_items

    engine = _engine()
    try:
        publish_work_items(load_settings().published, engine)
    except Exception as exc:  # noqa: BLE001 - the decision is committed; a failed copy must not look like a refusal
        typer.echo(f"note: the published copy was not refreshed ({type(exc).__name__}: {exc}); the decision is "
                   "recorded and the next close publishes it", err=True)
    finally:
        engine.dispose()


def _cell(row: dict, key: str) -> str:
    if key == "approvals":
        return f"{len(row['approvals'])}/2" if row["requires_approval"] else f"{len(row['approvals'])}/1"
    value = row[key]
    return "" if value is None else str(value)


def _table(rows: list[dict]) -> str:
    """Plain aligned columns: never wrapped, so a terminal, a pipe and grep see the same lines."""
    cells = [[header for header, _ in TABLE_COLUMNS]] + [[_cell(r, key) for _, key in TABLE_COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_COLUMNS))]
    right = {i for i, (_, key) in enumerate(TABLE_COLUMNS) if key in ("amount", "approvals")}
    return "\n".join(
        "  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
        for line in cells)


@workitems_app.command("list")
def list_command(
    status: str = typer.Option(None, "--status", callback=_one_of(STATUSES, "--status"), help="open | approved | declined | done"),
    kind: str = typer.Option(None, "--kind", callback=_one_of(KINDS, "--kind"), help="refund | credit_note | payment_extension"),
    output: str = typer.Option("table", "--format", callback=_one_of(FORMATS, "--format"), help="table | json (marts.work_items rows)"),
) -> None:
    """List work items, oldest first."""
    from workitems.store import approvals_by_item, as_json_row, list_items

    engine = _engine()
    rows = list_items(engine, status=status, kind=kind)
    if output == "json":
        typer.echo(json.dumps([as_json_row(r) for r in rows], indent=2))
        return
    if not rows:
        typer.echo("no work items" + (f" with status {status}" if status else "") + (f" of kind {kind}" if kind else ""))
        return
    approvals = approvals_by_item(engine)
    for row in rows:
        row["approvals"] = approvals.get(row["work_item_id"], ())
        row["created_at"] = row["created_at"].isoformat(sep=" ", timespec="minutes")
    typer.echo(_table(rows))
    typer.echo(f"{len(rows)} item{'s' if len(rows) != 1 else ''}")


@workitems_app.command("show")
def show_command(
    work_item_id: str = typer.Argument(..., metavar="ID", help="e.g. WI-000042"),
    output: str = typer.Option("table", "--format", callback=_one_of(FORMATS, "--format"), help="table | json"),
) -> None:
    """One item: its fields, evidence, approvals and audit trail."""
    from workitems.store import COLUMNS, as_json_row, get_item

    item = get_item(_engine(), work_item_id)
    if item is None:
        typer.echo(f"no work item {work_item_id}", err=True)
        raise typer.Exit(1)
    row = as_json_row(item)
    events = [{**e, "at": e["at"].isoformat(timespec="seconds")} for e in item["events"]]
    if output == "json":
        typer.echo(json.dumps({**row, "approvals": list(item["approvals"]), "events": events}, indent=2))
        return
    width = max(len(c) for c in COLUMNS)
    for column in COLUMNS:
        if column != "evidence":
            typer.echo(f"{column.ljust(width)}  {'' if row[column] is None else row[column]}".rstrip())
    needed = 2 if item["requires_approval"] else 1
    typer.echo(f"{'approvals'.ljust(width)}  {len(item['approvals'])} of {needed}"
               + (f" ({', '.join(item['approvals'])})" if item["approvals"] else ""))
    typer.echo("evidence:")
    typer.echo("\n".join("  " + line for line in json.dumps(row["evidence"], indent=2, sort_keys=True).splitlines()))
    typer.echo("audit trail (UTC):")
    for e in events:
        move = f"{e['from_status'] or '-'} -> {e['to_status']}" if e["to_status"] else ""
        note = f"  {e['note']}" if e["note"] else ""
        via = f"{e['channel']}, " if e.get("channel") else ""
        typer.echo(f"  {e['at']}  {e['action']:<17} by {e['by']} ({via}os user {e['os_user']})  {move}{note}".rstrip())


@workitems_app.command("approve")
def approve_command(
    work_item_id: str = typer.Argument(..., metavar="ID"),
    by: str = typer.Option(None, "--by", help="Optional: must name the OS user running the command, who approves."),
    reason: str = typer.Option(None, "--reason", help="Why, for the audit trail."),
) -> None:
    """Approve an open item as the OS user running the command; one that requires approval needs two people."""
    from workitems.store import Refused, approve

    who = _identity(by)
    try:
        decision = approve(_engine(), work_item_id, who, reason, channel="command")
    except Refused as exc:
        _fail(str(exc))
    typer.echo(decision.message)
    _publish()


@workitems_app.command("decline")
def decline_command(
    work_item_id: str = typer.Argument(..., metavar="ID"),
    by: str = typer.Option(None, "--by", help="Optional: must name the OS user running the command, who declines."),
    reason: str = typer.Option(..., "--reason", help="Why (required)."),
) -> None:
    """Decline an open item, with a reason, as the OS user running the command."""
    from workitems.store import Refused, decline

    who = _identity(by)
    try:
        decision = decline(_engine(), work_item_id, who, reason, channel="command")
    except Refused as exc:
        _fail(str(exc))
    typer.echo(decision.message)
    _publish()
