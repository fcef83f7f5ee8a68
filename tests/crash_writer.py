"""A writer for the crash test: records operations and prints ``ACK <id>`` only after each commit returned.

With more than one thread the threads share one ledger, so the writes are
group-committed and the kill lands in the middle of groups.
"""

from __future__ import annotations

import sys
import threading

from agentbooks import Ledger, LedgerError

AGENTS = ["0x5aeda56215b167893e80b4fe645ba6d5bab767de", "0x6813eb9362372eef6200f3b1dbc3f819671cba69"]


def main(url: str, first: int, count: int, threads: int = 1) -> None:
    print_lock = threading.Lock()
    with Ledger.open(url) as ledger:
        workers = [threading.Thread(target=write, args=(ledger, first + t, first + count, threads, print_lock))
                   for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


def write(ledger: Ledger, first: int, end: int, step: int, print_lock: threading.Lock) -> None:
    for i in range(first, end, step):
        agent = AGENTS[i % 2]
        try:
            if i % 4 == 0:
                tx = ledger.deposit(agent, "5", f"0xcrash{i}")
            elif i % 4 == 1:
                tx = ledger.hold(agent, "1", f"h{i}")
            elif i % 4 == 2:
                tx = ledger.transfer(agent, AGENTS[(i + 1) % 2], "0.5", f"t{i}")
            else:
                tx = ledger.release_hold(agent, "1", f"h{i - 2}")
        except LedgerError:
            continue
        with print_lock:
            print(f"ACK {tx.id}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
