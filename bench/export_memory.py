"""Memory and speed of the beancount export as the journal grows (run by hand; not a test).

    python bench/export_memory.py 5000 20000 50000

For each size it fills a fresh SQLite ledger with deposits, spends, transfers
and holds among 50 agents (batched writes), then exports it to a single file
under tracemalloc: the peak stays flat while the file grows linearly, because
the exporter streams the journal a page at a time.
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

from agentbooks import Ledger
from agentbooks.export.beancount import export_file

AGENTS = [f"0x{i:040x}" for i in range(1, 51)]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=3)
        return self.now


def fill(ledger: Ledger, transactions: int) -> None:
    batch, n = [], 0
    for i in range(transactions):
        agent, other = AGENTS[(i // 4) % 50], AGENTS[(i // 4 + 7) % 50]
        step = i % 4
        if step == 0:
            batch.append({"op": "deposit", "agent": agent, "amount": "100", "tx_hash": f"0xd{i}"})
        elif step == 1:
            batch.append({"op": "spend", "agent": agent, "amount": "0.25", "session_key_id": "sk"})
        elif step == 2:
            batch.append({"op": "transfer", "from_agent": agent, "to_agent": other, "amount": "1.5",
                          "reference": f"t{i}"})
        else:
            batch.append({"op": "hold", "agent": agent, "amount": "2", "reference": f"h{i}"})
        if len(batch) == 500:
            ledger.batch(batch)
            n += len(batch)
            batch = []
    if batch:
        ledger.batch(batch)


def main(sizes: list[int]) -> None:
    print(f"{'transactions':>12} {'file MB':>8} {'peak MiB':>9} {'seconds':>8} {'tx/s':>8}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            with Ledger.open(f"sqlite:///{tmp}/b.db", clock=Clock()) as ledger:
                fill(ledger, size)
                started = time.perf_counter()
                summary = export_file(ledger, Path(tmp) / "b.beancount")
                elapsed = time.perf_counter() - started
                tracemalloc.start()  # a second run for memory: tracing slows Python down several times
                export_file(ledger, Path(tmp) / "b.beancount")
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                mb = summary.path.stat().st_size / 1e6
            print(f"{summary.transactions:>12} {mb:>8.1f} {peak / 2**20:>9.2f} {elapsed:>8.2f} "
                  f"{summary.transactions / elapsed:>8.0f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 10000, 40000])
