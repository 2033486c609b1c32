"""billops: generate, simulate and close billing months (docs/contract/published-interface.md, "Command line")."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from config.settings import load_settings
from cli.console import console_command, report_command, users_app
from cli.workitems import workitems_app

app = typer.Typer(help="billops: a billing-operations lakehouse.", no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)
console = Console()
err_console = Console(stderr=True)
app.add_typer(workitems_app, name="workitems")
app.add_typer(users_app, name="users")


@app.callback()
def billops() -> None:
    """Paths come from BILLOPS_LANDING, BILLOPS_WAREHOUSE and DAGSTER_HOME (README)."""


def _check_month(month: str) -> str:
    from cli.close import MONTH_PATTERN

    if not MONTH_PATTERN.match(month):
        raise typer.BadParameter(f"{month!r} is not a month in the form YYYY-MM", param_hint="--month")
    return month


@app.command()
def close(
    month: str = typer.Option(..., "--month", help="Billing month, YYYY-MM.", callback=_check_month),
    allow_missing_days: bool = typer.Option(
        False, "--allow-missing-days", help="Issue even if some UTC day has no usage file (C12); the run records it."),
    first_month: bool = typer.Option(
        False, "--first-month",
        help="Let MONTH be the warehouse's first issued month although earlier usage has landed; the run records it."),
    verbose: bool = typer.Option(
        False, "--verbose", help="With --in-process: show Dagster's log lines and warnings here too (always in the run and the log)."),
    in_process: bool = typer.Option(
        False, "--in-process",
        help="Run in this process, outside the instance's run queue (as `dagster job execute`): for debugging and tests."),
) -> None:
    """Close MONTH through Dagster: submit its runs (earlier months to restate first) to the instance, follow them."""
    from cli.close import CloseRefused, CloseSession, partition_problem, plan_months, run_in_process
    from cli.instance_runs import LaunchFailed
    from cli.summary import print_outcome, print_plan
    from config.billing_month import BillingMonth
    from warehouse.close_options import CloseOptions

    asked = BillingMonth.parse(month)  # one type from here to dbt's vars (docs/decisions.md #67)
    settings = load_settings()
    if not settings.landing.is_dir():
        err_console.print(f"[red]close {month} failed:[/red] landing zone {escape(str(settings.landing))} does not exist "
                          "(BILLOPS_LANDING)")
        raise typer.Exit(2)
    problem = partition_problem(asked)
    if problem:
        err_console.print(f"[red]close {month} refused:[/red] {escape(problem)}")
        raise typer.Exit(2)
    try:
        plan = plan_months(settings, asked, CloseOptions(allow_missing_days=allow_missing_days, first_month=first_month),
                           in_process=in_process)
    except CloseRefused as refused:
        err_console.print(f"[red]close {month} refused:[/red] {escape(str(refused))}; nothing was issued")
        raise typer.Exit(1)
    print_plan(console, asked, plan)
    if in_process:
        for step in plan:
            outcome = run_in_process(settings, step.month, step.options, verbose=verbose)
            print_outcome(console, err_console, outcome, settings, asked=asked, step=step)
            if not outcome.success:
                raise typer.Exit(1)
        return

    def waiting(blocking: list[str]) -> None:
        console.print(f"queued: waiting for the warehouse behind run(s) {escape(', '.join(blocking))}")

    try:
        with CloseSession(settings, on_wait=waiting) as session:
            for step in plan:
                outcome = session.run(step.month, step.options)
                print_outcome(console, err_console, outcome, settings, asked=asked, step=step)
                if not outcome.success:
                    break
    except LaunchFailed as failed:
        err_console.print(f"[red]close {month} failed:[/red] the run could not be queued: {escape(str(failed))}")
        raise typer.Exit(1)
    if not outcome.success:
        raise typer.Exit(1)


@app.command()
def preview(
    month: str = typer.Option(..., "--month", help="Billing month, YYYY-MM (one not issued yet).", callback=_check_month),
    customer: str = typer.Option(None, "--customer", help="Only this customer's preview."),
    output: str = typer.Option("table", "--format", help="table (readable, with totals) or json (one array)."),
) -> None:
    """Print MONTH's month-to-date invoices (marts.invoice_preview) from the published copy, never the warehouse."""
    from cli.preview import NoPreview, as_json, as_table, failing_day_checks, read_preview
    from config.billing_month import BillingMonth

    if output not in ("table", "json"):
        raise typer.BadParameter("must be table or json", param_hint="--format")
    asked = BillingMonth.parse(month)
    settings = load_settings()
    try:
        found = read_preview(settings.published, asked, customer)
    except NoPreview as none:
        err_console.print(f"[red]preview {month}:[/red] {escape(str(none))}")
        raise typer.Exit(1)
    failing = failing_day_checks(settings.dagster_home, asked)
    if output == "json":
        print(as_json(found))  # plain print: Rich would wrap and colour the JSON
    else:
        console.print(as_table(found))
    if failing:  # the preview is printed, and marked failing: which day checks, on stderr, exit 3
        err_console.print(f"[red]preview {month} is FAILING:[/red] {len(failing)} day check(s) failed")
        for failed in failing:
            err_console.print(f"- {escape(failed)}")
        raise typer.Exit(3)


@app.command()
def ingest() -> None:
    """Ingest every landed usage day not yet ingested (or changed) of the months not yet issued, and the ticket
    and payment files not yet ingested, in this process."""
    from cli.ingest import IngestRefused, ingest_landed

    settings = load_settings()
    if not settings.landing.is_dir():
        err_console.print(f"[red]ingest failed:[/red] landing zone {escape(str(settings.landing))} does not exist "
                          "(BILLOPS_LANDING)")
        raise typer.Exit(2)
    try:
        outcome = ingest_landed(settings)
    except IngestRefused as refused:
        err_console.print(f"[red]ingest refused:[/red] {escape(str(refused))}; nothing was ingested")
        raise typer.Exit(2)
    for month, days in outcome.days.items():
        shown = ", ".join(f"{d:%d}" for d in days) if days else "none (all ingested)"
        console.print(f"usage {month:%Y-%m}: {len(days)} day(s) ingested: {shown}")
    for month in outcome.skipped:
        console.print(f"usage {month:%Y-%m}: issued, left to its restatement at the next close")
    if outcome.feeds is not None:
        feeds = outcome.feeds
        console.print(f"tickets and payments: {feeds['files']} file(s) read, {feeds['new_files']} new, "
                      f"{feeds['new_lines_quarantined']} line(s) of the new files quarantined")
    elif outcome.feeds_skipped:
        console.print(f"tickets and payments: not ingested: {escape(outcome.feeds_skipped)}")
    else:
        console.print("tickets and payments: none (all ingested)")
    if outcome.problems:
        for rel, why in sorted(outcome.problems.items()):
            err_console.print(f"[red]not ingested:[/red] {escape(rel)}: {escape(why)}")
        raise typer.Exit(1)


@app.command()
def generate(
    month: str = typer.Option(..., "--month", help="Month to generate, YYYY-MM.", callback=_check_month),
    customers: int = typer.Option(..., "--customers", min=1, help="Size of the customer base."),
    seed: int = typer.Option(..., "--seed", help="Same seed and customers continue the same business."),
    anomalies: str = typer.Option("default", "--anomalies", help="default | all | none (docs/contract/synthetic-data.md)."),
    out: str = typer.Option(None, "--out", help="Landing zone to write; default BILLOPS_LANDING."),
) -> None:
    """Write the reference files and MONTH's usage of a synthetic business (docs/contract/synthetic-data.md)."""
    from pathlib import Path

    from synthetic.generate import generate as generate_month

    if anomalies not in ("default", "all", "none"):
        raise typer.BadParameter("must be default, all or none", param_hint="--anomalies")
    target = Path(out).resolve() if out else load_settings().landing
    summary = generate_month(month, customers, seed, target, anomalies=anomalies, progress=sys.stderr.isatty())
    console.print(
        f"generated {month}: {summary['customers']:,} customers, {summary['rows']:,} usage rows in "
        f"{summary['files']} files ({summary['bytes'] / 1e6:,.1f} MB) in {summary['seconds']:.1f} s → {target}"
    )
    console.print(f"anomalies: {summary['anomalies']}")


@app.command()
def simulate(
    month: str = typer.Option(..., "--month", help="Month to simulate, YYYY-MM.", callback=_check_month),
    seed: int = typer.Option(..., "--seed", help="Same seed and published copy give the same files."),
) -> None:
    """Write MONTH's payments and tickets, answering the invoices published for the month before."""
    from synthetic.simulate import simulate as simulate_month
    from warehouse.published import DUCKDB_FILE

    settings = load_settings()
    try:
        summary = simulate_month(month, seed, settings.landing, settings.published / DUCKDB_FILE,
                                 progress=sys.stderr.isatty())
    except ValueError as exc:
        err_console.print(f"[red]simulate {month} failed:[/red] {exc}")
        raise typer.Exit(1)
    counts = ", ".join(f"{k} {v:,}" for k, v in summary.get("files", {}).items())
    console.print(f"simulated {month}: {counts} → {settings.landing}")
    console.print(f"anomalies: {summary.get('anomalies', {})}")


# After close, generate and simulate in `billops --help`: the team's console, its accounts, the monthly report.
app.command("console")(console_command)
app.command("report")(report_command)
