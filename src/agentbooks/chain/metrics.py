"""Prometheus metrics of the on-chain workers (their own registry unless given one), and their loop."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge


class ChainMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deposits_credited = Counter("agentbooks_chain_deposits_credited_total",
                                         "Transfer logs credited, to an agent or to suspense", ["to"],
                                         registry=self.registry)
        self.deposits_reversed = Counter("agentbooks_chain_deposits_reversed_total",
                                         "credited deposits whose block left the chain (reorg deeper than the "
                                         "confirmations), by outcome", ["outcome"], registry=self.registry)
        self.logs_ignored = Counter("agentbooks_chain_logs_ignored_total",
                                    "Transfer logs to a treasury not credited, by reason", ["reason"],
                                    registry=self.registry)
        self.watcher_lag = Gauge("agentbooks_chain_watcher_lag_blocks",
                                 "blocks between the chain head and the watcher's checkpoint", registry=self.registry)
        self.payouts = Counter("agentbooks_chain_payouts_total", "payouts entering each state", ["state"],
                               registry=self.registry)


def run_every(interval: float, work: Callable[[], Any], log: logging.Logger, *,
              stop: Callable[[], bool] = lambda: False) -> None:
    """``work()`` every ``interval`` seconds until ``stop()``; a failed pass is logged and tried again."""
    while not stop():
        try:
            work()
        except Exception:  # noqa: BLE001 - a node or database hiccup: the next pass starts over
            log.exception("pass failed")
        time.sleep(interval)
