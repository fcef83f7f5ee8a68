"""``agentbooks watch`` (the deposit watcher) and ``agentbooks payouts`` (the payout executor)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import typer

from . import app
from .common import DatabaseUrl, open_ledger

Rpc = typer.Option(..., "--rpc", envvar="AGENTBOOKS_RPC_URL", help="the node's JSON-RPC endpoint (http(s):// or ws(s)://)")
Token = typer.Option(..., "--token", help="the USDC contract's address")
Confirmations = typer.Option(12, "--confirmations", min=0, max=10_000, help="blocks on top before a transfer counts")
Once = typer.Option(False, "--once", help="one pass, then exit (for a scheduler)")
Interval = typer.Option(5.0, "--interval", min=0.1, max=3600, help="seconds between passes")
MetricsPort = typer.Option(None, "--metrics-port", min=1, max=65535,
                           help="serve Prometheus metrics on 127.0.0.1 at this port")


def _logging() -> None:
    from ..api.observability import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("agentbooks").handlers[:] = [handler]
    logging.getLogger("agentbooks").setLevel(logging.INFO)


@app.command()
def watch(
    rpc: str = Rpc,
    token: str = Token,
    treasury: list[str] = typer.Option(..., "--treasury", help="a treasury address (repeat for several)"),
    confirmations: int = Confirmations,
    unknown_senders: str = typer.Option("credit", "--unknown-senders",
                                        help="credit: as a new agent (the original's behaviour); suspense: hold in "
                                             "Agent:Suspense until an admin assigns or returns it"),
    from_block: int = typer.Option(0, "--from-block", min=0, help="the first block of a new watcher's scan"),
    page_size: int = typer.Option(1000, "--page-size", min=1, max=10_000, help="blocks per log query"),
    once: bool = Once,
    interval: float = Interval,
    metrics_port: int | None = MetricsPort,
    url: str | None = DatabaseUrl,
) -> None:
    """Credit the token's confirmed Transfer logs to the treasury addresses (reorgs checked each pass)."""
    from ..chain.erc20 import connect
    from ..chain.watcher import DepositWatcher, WatchConfig

    _logging()
    with open_ledger(url) as ledger:
        config = WatchConfig(token=token, treasuries=tuple(treasury), confirmations=confirmations,
                             unknown_senders=unknown_senders, page_size=page_size, from_block=from_block)
        watcher = DepositWatcher(ledger.service, connect(rpc), config)
        _work(watcher, watcher.poll, once, interval, metrics_port, lambda report: {
            "checkpoint": report.checkpoint and report.checkpoint[0], "head": report.head,
            "lagBlocks": report.lag_blocks, "credited": len(report.credited), "reversed": len(report.reversed),
            "reversalRefused": len(report.reversal_refused), "ignored": report.ignored})


@app.command()
def payouts(
    rpc: str = Rpc,
    token: str = Token,
    key_file: Path | None = typer.Option(None, "--key-file", exists=True, dir_okay=False,
                                         help="the hot wallet's private key (hex); else $AGENTBOOKS_HOT_WALLET_KEY"),
    confirmations: int = Confirmations,
    once: bool = Once,
    interval: float = Interval,
    metrics_port: int | None = MetricsPort,
    url: str | None = DatabaseUrl,
) -> None:
    """Send held payouts from the hot wallet, confirm them after N blocks, release the failed ones."""
    from ..chain.erc20 import connect
    from ..chain.executor import HotWallet, PayoutExecutor

    _logging()
    wallet = HotWallet.from_file(key_file) if key_file else HotWallet.from_env()
    with open_ledger(url) as ledger:
        executor = PayoutExecutor(ledger.service, connect(rpc), token, wallet, confirmations=confirmations)
        _work(executor, executor.step, once, interval, metrics_port, lambda counts: {"payouts": counts})


def _work(worker: Any, one_pass: Callable[[], Any], once: bool, interval: float, metrics_port: int | None,
          summary: Callable[[Any], dict[str, Any]]) -> None:
    """Serve the worker's metrics if asked; one pass printed as JSON (``--once``), or passes until stopped."""
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=worker.metrics.registry)
    if not once:
        worker.run(interval=interval)
        return
    print(json.dumps(summary(one_pass())))
