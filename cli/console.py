"""`billops console`, `billops users add|disable|enable|passwd|list` and `billops report` (docs/console.md).

The console and the report read the published copy (BILLOPS_PUBLISHED) and the operational
store (BILLOPS_QUEUE_URL, or ops.sqlite beside the warehouse), never the warehouse. Account
changes are made by the OS user running the command, recorded as such (channel `command`).
A password is read from standard input when it is not a terminal (one line), else prompted
for twice without echo; it never appears on a command line, in a log or in an error.
Imports stay cheap: cli/main.py loads this module for every `billops` command.
"""

from __future__ import annotations

import sys

import typer

users_app = typer.Typer(help="Console accounts: add, disable, enable, passwd, list.", no_args_is_help=True,
                        add_completion=False, pretty_exceptions_show_locals=False)


def _password(prompt: bool = True) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


def _accounts():
    from console.accounts import accounts_engine

    return accounts_engine()


def _who() -> str:
    from workitems.identity import os_user

    return os_user()


def _run(change) -> None:
    from console.accounts import AccountError

    try:
        message = change()
    except AccountError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(message)


@users_app.command("add")
def add_command(
    name: str = typer.Argument(..., help="The account's name (compared as people read it: case, width, hidden characters)."),
    role: str = typer.Option(..., "--role", help="specialist | approver | lead | finance"),
    sso_only: bool = typer.Option(False, "--sso-only", help="No password: only the trusted proxy's header logs it in."),
) -> None:
    """Add a console account; the password is read from stdin (not a terminal) or prompted for."""
    from console.accounts import add_user

    password = None if sso_only else _password()
    _run(lambda: f"added {add_user(_accounts(), name, role, password, by=_who()).name} ({role})")


@users_app.command("passwd")
def passwd_command(name: str = typer.Argument(...)) -> None:
    """Set an account's password (its sessions end)."""
    from console.accounts import set_password

    password = _password()
    _run(lambda: set_password(_accounts(), name, password, by=_who()) or f"password of {name} set")


@users_app.command("disable")
def disable_command(name: str = typer.Argument(...)) -> None:
    """Disable an account at once (its sessions end)."""
    from console.accounts import set_disabled

    _run(lambda: set_disabled(_accounts(), name, True, by=_who()) or f"{name} disabled")


@users_app.command("enable")
def enable_command(name: str = typer.Argument(...)) -> None:
    """Enable a disabled account."""
    from console.accounts import set_disabled

    _run(lambda: set_disabled(_accounts(), name, False, by=_who()) or f"{name} enabled")


@users_app.command("list")
def list_command() -> None:
    """The accounts, their roles and state."""
    from console.accounts import list_users

    for user in list_users(_accounts()):
        state = "disabled" if user["disabled"] else "active"
        login = "password" if user["has_password"] else "sso-only"
        typer.echo(f"{user['name']:<24} {user['role']:<10} {state:<8} {login}")


def console_command(
    host: str = typer.Option(None, "--host", help="Address to listen on (default BILLOPS_CONSOLE_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default BILLOPS_CONSOLE_PORT, 8765)."),
) -> None:
    """Serve the billing team's console: the queue, customers and invoices, KPIs, reports."""
    import uvicorn

    from config.settings import console_settings, load_settings
    from console.app import create_app

    settings = console_settings()
    app = create_app(load_settings().published, settings=settings)
    host, port = host or settings.host, port or settings.port
    typer.echo(f"billops console on http://{host}:{port}/ (published copy {load_settings().published})")
    # The trusted proxies are judged on the peer address; uvicorn must not rewrite it from X-Forwarded-For.
    uvicorn.run(app, host=host, port=port, proxy_headers=False, log_level="warning")


def report_command(
    month: str = typer.Option(..., "--month", help="The billing month, YYYY-MM."),
    out: str = typer.Option(None, "--out", help="File to write (default reports/billops-report-YYYY-MM.html)."),
) -> None:
    """Write the month's self-contained HTML report for management (printable to PDF)."""
    from pathlib import Path

    from config.settings import load_settings
    from console.published import NotPublished, PublishedCopy
    from console.report import write_report
    from workitems.store import NoQueue, existing_queue_engine

    try:
        queue = existing_queue_engine()
        path = write_report(PublishedCopy(load_settings().published), queue, month,
                            Path(out or f"reports/billops-report-{month}.html").resolve())
    except (NotPublished, NoQueue, ValueError) as exc:
        typer.echo(f"report {month} failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"report {month} written to {path}")
