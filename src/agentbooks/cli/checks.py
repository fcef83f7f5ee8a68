"""``agentbooks verify``, ``verify-export`` and ``reconcile``: exit 0 clean, 1 differences, 2 bad input."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ..audit_runs import reconciled, verified
from ..domain.addresses import normalize_address
from ..domain.errors import LedgerError
from ..reconcile.runs import build_window, inputs_digest, parse_treasury_balance
from ..reconcile.transfers import ReadOptions, read_block_times, read_transfers
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
                                   help="eth_getLogs output, log objects (JSON array or lines), an explorer's "
                                        "token-transfer CSV, or normalised CSV / JSON lines"),
    treasury: list[str] = typer.Option(..., "--treasury", help="a treasury address (repeat for several)"),
    token: str | None = typer.Option(None, "--token", help="the USDC contract; other tokens are ignored, counted"),
    chain_id: int = typer.Option(0, "--chain-id", help="the chain of logs and explorer rows (0: any)"),
    decimals: int = typer.Option(6, "--decimals", min=0, max=36, help="the token's decimals"),
    blocks: Path | None = typer.Option(None, "--blocks", exists=True, dir_okay=False,
                                       help="eth_getBlockByNumber results: block times for logs without them"),
    from_block: int | None = typer.Option(None, "--from-block", min=0),
    to_block: int | None = typer.Option(None, "--to-block", min=0),
    confirmations: int | None = typer.Option(None, "--confirmations", min=1,
                                             help="with --head-block: cut at the last block this deep"),
    head_block: int | None = typer.Option(None, "--head-block", min=0),
    start: str | None = typer.Option(None, "--from", help="window start by chain time, RFC 3339"),
    end: str | None = typer.Option(None, "--to", help="window end by chain time, RFC 3339"),
    treasury_balance: list[str] = typer.Option([], "--treasury-balance",
                                               help="ADDRESS=AMOUNT@BLOCK: the on-chain balance to check against"),
    record: bool = typer.Option(False, "--record", help="store this run; the next run says what changed"),
    as_json: bool = typer.Option(False, "--json"),
    url: str | None = DatabaseUrl,
) -> None:
    """Match the ledger's deposits and payouts against chain data; exit 0 clean, 1 differences, 2 bad input."""
    try:
        options = ReadOptions(token=normalize_address(token, field="token") if token else None, chain_id=chain_id,
                              decimals=decimals, block_times=read_block_times(blocks) if blocks else None)
        records = read_transfers(transfers, options)
        window = build_window(from_block=from_block, to_block=to_block, start=start, end=end,
                              confirmations=confirmations, head_block=head_block)
        balances = [parse_treasury_balance(b) for b in treasury_balance]
        digest = inputs_digest(transfers.read_bytes(), {"token": options.token, "chainId": chain_id,
                                                        "decimals": decimals, "treasury": sorted(treasury)})
        with open_ledger(url) as ledger:
            clean, body = reconciled(ledger, records, treasury, window=window, balances=balances,
                                     digest=digest, record=record)
    except LedgerError as exc:
        if as_json:
            print(json.dumps(exc.to_dict(), indent=2))
        else:
            err_console.print(f"[red]error[/red] {exc.code}: {transfers}: {exc.message}")
        raise typer.Exit(2)
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        _show_reconciliation(body, clean)
    raise typer.Exit(0 if clean else 1)


def _show_reconciliation(body: dict, clean: bool) -> None:
    table = Table(title=f"reconciliation: {len(body['matched'])} matched, {len(body['differences'])} differences, "
                        f"{len(body['ignored'])} ignored")
    for column in ("class", "dir", "chain (block, tx, log, amount)", "ledger (seq, kind, amount)"):
        table.add_column(column)
    for item in body["differences"] + [m for m in body["matched"] if m["class"] != "matched"]:
        c, m = item.get("chain"), item.get("ledger")
        table.add_row(item["class"], item["direction"],
                      f"{c['blockNumber']} {c['txHash'][:18]} {c['logIndex']} {c['amount']}" if c else "",
                      f"{m['seq']} {m['kind']} {m['amount']}" if m else "")
    console.print(table)
    console.print(body["counts"], highlight=False)
    console.print(body["treasury"], highlight=False)
    console.print("[green]clean[/green]" if clean else "[red]differences found[/red]")
