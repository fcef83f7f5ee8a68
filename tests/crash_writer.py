"""A writer for the crash test: records operations and prints ``ACK <id>`` only after each commit returned."""

from __future__ import annotations

import sys

from agentbooks import Ledger, LedgerError

AGENTS = ["0x5aeda56215b167893e80b4fe645ba6d5bab767de", "0x6813eb9362372eef6200f3b1dbc3f819671cba69"]


def main(url: str, first: int, count: int) -> None:
    with Ledger.open(url) as ledger:
        for i in range(first, first + count):
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
            print(f"ACK {tx.id}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
