"""``agentbooks verify``, ``verify-export`` and ``reconcile``: exit 0 clean, 1 differences, 2 bad input."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ..audit_runs import reconciled, verified
from ..reconcile.transfers import TransferFileError, read_transfers
from ..requests import parse_time
from ..verify.model import VerifyReport
from ..verify.offline import verify_export
from . import app
from .common import DatabaseUrl, console, err_console, open_ledger


def _show(report: VerifyReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        table = Table(title=f"verify {report.source}: {report.transactions} transactions, "
                            f"{report.violation_count} violations")
        for column in ("code", "seq", "account / agent", "message"):
            table.add_column(column)
        for v in report.violations:
            table.add_row(v.code, str(v.seq or ""), v.account or v.agent or "", v.message)
        console.print(table)
        for hold in report.expired_holds:
            console.print(f"expired hold: {hold}", highlight=False)
        console.print("[green]clean[/green]" if report.clean else "[red]violations found[/red]")
    raise typer.Exit(0 if report.clean else 1)


@app.command()
def verify(as_json: bool = typer.Option(False, "--json", help="machine-readable output"), url: str | None = DatabaseUrl) -> None:
    """Check the books against themselves: balance, hash chain, caches, identities, holds."""
    with open_ledger(url) as ledger:
        report = verified(ledger)
    _show(report, as_json)


@app.command("verify-export")
def verify_export_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="a beancount export (main file)"),
    expect_head: str | None = typer.Option(None, "--expect-head", help="the head hash the platform published"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check a beancount export alone (no database): hash chain, balances, published head."""
    _show(verify_export(path, expect_head=expect_head), as_json)


@app.command()
def reconcile(
    transfers: Path = typer.Option(..., "--transfers", exists=True, dir_okay=False,
                                   help="on-chain USDC transfers: CSV with a header, or JSON lines"),
    treasury: list[str] = typer.Option(..., "--treasury", help="a treasury address (repeat for several)"),
    start: str | None = typer.Option(None, "--from", help="window start, RFC 3339"),
    end: str | None = typer.Option(None, "--to", help="window end, RFC 3339"),
    as_json: bool = typer.Option(False, "--json"),
    url: str | None = DatabaseUrl,
) -> None:
    """Match the ledger's deposits, withdrawals and confirmed holds against on-chain transfers."""
    try:
        records = read_transfers(transfers)
        window = (parse_time(start, field="from") if start else None, parse_time(end, field="to") if end else None)
    except TransferFileError as exc:
        err_console.print(f"[red]error[/red] {exc.code}: {transfers}: {exc.message}")
        raise typer.Exit(2)
    with open_ledger(url) as ledger:
        result = reconciled(ledger, records, set(treasury), start=window[0], end=window[1])
    body = result.to_dict()
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        table = Table(title=f"reconciliation: {body['matched']} matched, {len(body['differences'])} differences")
        for column in ("class", "dir", "chain (line, tx, amount)", "ledger (seq, kind, amount)"):
            table.add_column(column)
        for item in body["differences"]:
            c, m = item.get("chain"), item.get("ledger")
            table.add_row(item["class"], item["direction"],
                          f"{c['line']} {c['txHash'][:18]} {c['amount']}" if c else "",
                          f"{m['seq']} {m['kind']} {m['amount']}" if m else "")
        console.print(table)
        console.print(body["treasury"], highlight=False)
        console.print("[green]clean[/green]" if result.clean else "[red]differences found[/red]")
    raise typer.Exit(0 if result.clean else 1)
