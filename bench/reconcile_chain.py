"""Reconciliation speed and memory: N on-chain transfers against a ledger of 0.99·N deposits.

Each measurement runs in a fresh interpreter (``ru_maxrss`` is that process's
peak): reading the transfer file and matching it against the whole ledger,
then a window of 1% of the blocks, which reads only the ledger rows it
covers (``chain_refs`` by block).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agentbooks import Ledger

TREASURY = "0x" + "7e" * 20
CHAIN = 8453
AGENTS = [f"0x{i:040x}" for i in range(1, 1001)]
BATCH = 1000

_MEASURE = """
import resource, sys, time
from agentbooks import Ledger
from agentbooks.reconcile.match import Window, reconcile
from agentbooks.reconcile.transfers import read_transfers
from pathlib import Path
url, path, first, last = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
window = Window(int(first), int(last)) if first != "-" else Window()
with Ledger.open(url) as ledger:
    started = time.perf_counter()
    result = reconcile(ledger, read_transfers(path), {"%s"}, window=window)
    seconds = time.perf_counter() - started
assert result.counts()["matched"] > 0
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""" % TREASURY


def _tx(i: int) -> str:
    return f"0x{i:064x}"


def prepare(url: str, path: Path, transfers: int) -> None:
    """The ledger (deposits for 99% of the transfers, with blocks) and the transfer file (JSON lines)."""
    credited = transfers * 99 // 100
    with Ledger.open(url) as ledger:
        ops = []
        for i in range(credited):
            ops.append({"op": "deposit", "agent": AGENTS[i % len(AGENTS)], "amount": "1.5", "tx_hash": _tx(i),
                        "chain_id": CHAIN, "log_index": 0, "block_number": i // 10})
            if len(ops) == BATCH:
                ledger.batch(ops)
                ops = []
        if ops:
            ledger.batch(ops)
    with path.open("w") as out:
        for i in range(transfers):
            out.write(json.dumps({"chain_id": CHAIN, "tx_hash": _tx(i), "log_index": 0,
                                  "from": AGENTS[i % len(AGENTS)], "to": TREASURY, "amount_micros": 1_500_000,
                                  "block_number": i // 10, "timestamp": 1767225600 + i}) + "\n")


def measure(url: str, path: Path, window: tuple[int, int] | None) -> tuple[float, float]:
    """(seconds, peak MB) of one reconciliation in a fresh process."""
    first, last = (str(window[0]), str(window[1])) if window else ("-", "-")
    run = subprocess.run([sys.executable, "-c", _MEASURE, url, str(path), first, last], capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise RuntimeError(f"measurement failed: {run.stderr[-3000:]}")
    seconds, kb = run.stdout.split()
    return float(seconds), float(kb) / 1024


def reconcile_suite(workdir: Path, sizes: tuple[int, ...]) -> list[tuple[str, float, str]]:
    """Rows of (measure, value, unit) for each size: whole ledger, and a 1% block window."""
    rows = []
    for n in sizes:
        url, path = f"sqlite:///{workdir / f'reconcile{n}.db'}", workdir / f"transfers{n}.jsonl"
        prepare(url, path, n)
        seconds, peak = measure(url, path, None)
        rows += [(f"{n:,} transfers vs {n * 99 // 100:,} deposits, whole ledger", n / seconds, "transfers/s"),
                 (f"{n:,} transfers, whole ledger: peak memory", peak, "MB")]
        last_block = n // 10
        seconds, peak = measure(url, path, (last_block // 2, last_block // 2 + last_block // 100))
        rows += [(f"{n:,} transfers, a window of 1% of the blocks", n / seconds, "transfers/s"),
                 (f"{n:,} transfers, 1% window: peak memory", peak, "MB")]
    return rows


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for row in reconcile_suite(Path(tmp), tuple(int(a) for a in sys.argv[1:]) or (10**4,)):
            print(*row)
