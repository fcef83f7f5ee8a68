"""``agentbooks export`` and ``agentbooks report``: the books for accountants' tools."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..export.beancount import export_directory, export_file
from ..render import RENDERERS, render
from ..render.pdf import html_to_pdf
from ..reports import REPORTS, build_report
from . import app
from .common import DatabaseUrl, console, open_ledger

export_app = typer.Typer(help="Export the books.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("beancount")
def export_beancount(
    out: Path = typer.Option(Path("ledgers/agentbooks.beancount"), "--out",
                             help="a .beancount file, or a directory with --monthly"),
    as_of: str | None = typer.Option(None, "--as-of", help="RFC 3339 time or journal sequence (default: now)"),
    monthly: bool = typer.Option(False, "--monthly", help="a main file with one include per month, appended to"),
    since: int | None = typer.Option(None, "--since", help="with --monthly: append after this sequence "
                                     "(default: where the last export in that directory stopped)"),
    chain: str = typer.Option("metadata", "--chain-metadata",
                              help="metadata | comments: the hash-chain fields as transaction metadata, or as "
                                   "comment lines fava does not show (verify-export reads both)"),
    url: str | None = DatabaseUrl,
) -> None:
    """Write a beancount ledger that bean-check accepts, with exact balance assertions at the cut-off.

    Accounts go under the standard roots (Assets:Platform:…, Liabilities:Agent:…) so hledger, ledger
    and fava classify them with no configuration."""
    if chain not in ("metadata", "comments"):
        raise typer.BadParameter("metadata or comments", param_hint="--chain-metadata")
    cutoff = int(as_of) if as_of and as_of.isascii() and as_of.isdigit() else as_of
    with open_ledger(url) as ledger:
        total = ledger.resolve_as_of(cutoff)
        with Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, disable=not sys.stdout.isatty()) as progress:
            task = progress.add_task("export", total=total)

            def tick(tx) -> None:  # type: ignore[no-untyped-def]
                progress.update(task, completed=tx.seq)

            if monthly:
                try:
                    summary = export_directory(ledger, out, since_seq=since, as_of=cutoff, on_transaction=tick,
                                               chain=chain)
                except ValueError as refused:  # a gap, a repeat, or another ledger's chain: nothing written
                    raise typer.BadParameter(str(refused), param_hint="--out/--since") from None
            else:
                if since is not None:
                    raise typer.BadParameter("--since appends to a --monthly export directory")
                summary = export_file(ledger, out, as_of=cutoff, on_transaction=tick, chain=chain)
    console.print(f"wrote {summary.path}: {summary.transactions} transactions (up to seq {summary.last_seq}), "
                  f"{summary.accounts} accounts, head {summary.head_hash[:16] or '-'}", highlight=False)


@app.command()
def report(
    name: str = typer.Argument(..., help=" | ".join(REPORTS)),
    fmt: str = typer.Option("csv", "--format", help=" | ".join([*RENDERERS, "pdf"])),
    as_of: str | None = typer.Option(None, "--as-of", "--to", help="RFC 3339 time or journal sequence (period end)"),
    start: str | None = typer.Option(None, "--from", help="period start (journal, income statement, agent statement)"),
    agent: str | None = typer.Option(None, "--agent", help="the agent, for agent-statement"),
    tz: str | None = typer.Option(None, "--tz", help="reporting time zone for plain dates and labels "
                                  "(e.g. Europe/Berlin; default UTC)"),
    interval: str | None = typer.Option(None, "--interval", help="income-statement columns: month | quarter"),
    out: Path | None = typer.Option(None, "--out", help="file to write (default: reports/<name>.<format>)"),
    url: str | None = DatabaseUrl,
) -> None:
    """Write a report (trial balance, balance sheet, statements, …) as CSV, JSON, XLSX, HTML or PDF.

    Boundaries are RFC 3339 times, plain dates (midnight in --tz) or journal sequences; a period is
    [--from, --to): a transaction at exactly --to belongs to the next period."""
    def cut(value: str | None):  # type: ignore[no-untyped-def]
        return int(value) if value and value.isascii() and value.isdigit() else value

    with open_ledger(url) as ledger:
        data = build_report(ledger, name, as_of=cut(as_of), start=cut(start), agent=agent, tz=tz, interval=interval)
        body = html_to_pdf(render(data, "html")) if fmt == "pdf" else render(data, fmt)
    path = out or Path("reports") / f"{name}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    failed = [check for check, ok in data.checks.items() if not ok]
    console.print(f"wrote {path} ({len(data.rows)} rows, as of seq {data.as_of_seq})"
                  + (f" [red]FAILED checks: {failed}[/red]" if failed else ""), highlight=False)
    if failed:
        raise typer.Exit(1)
