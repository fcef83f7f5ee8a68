"""``agentbooks demo``: a fresh SQLite ledger, a scripted day, the trial balance."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..demo import AGENTS, ScriptedClock, run_demo_day
from ..domain.money import format_micros
from ..ledger import Ledger
from ..samples import write_samples
from . import app
from .common import console


def _micros(d) -> int:  # type: ignore[no-untyped-def]
    return int(d.scaleb(6))


@app.command()
def demo(
    db: Path = typer.Option(Path("agentbooks-demo.db"), "--db", help="SQLite file to (re)create for the demo"),
    quiet: bool = typer.Option(False, "--quiet", help="print only the trial balance"),
    samples: bool = typer.Option(True, "--samples/--no-samples",
                                 help="write the sample export to ledgers/ and sample reports to reports/"),
) -> None:
    """Create a SQLite ledger, run a scripted day of agent activity, print the books."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with Ledger.open(f"sqlite:///{db}", clock=ScriptedClock()) as ledger:
        log = run_demo_day(ledger)
        if not quiet:
            console.rule("a day of agent activity")
            for line in log:
                console.print(line, highlight=False)

        trial = Table(title=f"Trial balance, {db} (beancount signs: debit +, credit −)")
        trial.add_column("account")
        trial.add_column("balance USDC", justify="right")
        total = 0
        for name, amount in ledger.rollup("").items():
            if amount:
                trial.add_row(name, format_micros(_micros(amount)))
                total += _micros(amount)
        trial.add_row("[bold]total[/bold]", f"[bold]{format_micros(total)}[/bold]")
        console.print(trial)

        agents = Table(title="Agent balances")
        for column in ("agent", "available", "pending", "escrowed", "credit used/limit", "total in", "total out"):
            agents.add_column(column, justify="left" if column == "agent" else "right")
        for label, address in AGENTS.items():
            b = ledger.get_balance(address)
            agents.add_row(label, str(b.available), str(b.pending), str(b.escrowed),
                           f"{b.credit_used}/{b.credit_limit}", str(b.total_in), str(b.total_out))
        console.print(agents)
        seq, tip = ledger.head()
        console.print(f"journal: {seq} transactions, hash chain tip {tip[:16]}…", highlight=False)
        if samples:
            written = write_samples(ledger, Path("ledgers"), Path("reports"))
            console.print(f"samples: {written[0]} and {len(written) - 1} reports in reports/", highlight=False)
    if total != 0:
        raise typer.Exit(1)  # the books do not balance: never report success
