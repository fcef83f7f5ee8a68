"""A worker that hammers one agent with holds, confirms, releases, spends, deposits and withdrawals.

Used by the PostgreSQL concurrency tests from threads and from separate
processes; it returns every operation the ledger accepted, with the journal
sequence it got, so the test can replay them serially and compare.
"""

from __future__ import annotations

import random

from agentbooks import Ledger, LedgerError

HOT_AGENT = "0x5aeda56215b167893e80b4fe645ba6d5bab767de"
EXPECTED_REFUSALS = {"insufficient_balance", "credit_limit_exceeded", "hold_exceeded", "unknown_hold"}


def hammer(url: str, worker: int, operations: int, seed: int) -> tuple[list[tuple[int, dict]], list[str]]:
    rng = random.Random(seed)
    accepted: list[tuple[int, dict]] = []
    refused: list[str] = []
    my_holds: list[str] = []
    with Ledger.open(url) as ledger:
        for i in range(operations):
            amount = f"{rng.randint(1, 9)}.{rng.randint(0, 999999):06d}"
            roll = rng.random()
            if roll < 0.15:
                op = {"op": "deposit", "agent": HOT_AGENT, "amount": amount, "tx_hash": f"0xw{worker}d{i}"}
            elif roll < 0.35:
                op = {"op": "spend", "agent": HOT_AGENT, "amount": amount, "session_key_id": f"sk-{worker}"}
            elif roll < 0.45:
                op = {"op": "withdraw", "agent": HOT_AGENT, "amount": amount, "tx_hash": f"0xw{worker}w{i}"}
            elif roll < 0.75 or not my_holds:
                ref = f"w{worker}-h{i}"
                op = {"op": "hold", "agent": HOT_AGENT, "amount": amount, "reference": ref}
            else:
                ref = rng.choice(my_holds)
                kind = "confirm_hold" if rng.random() < 0.5 else "release_hold"
                op = {"op": kind, "agent": HOT_AGENT, "amount": amount, "reference": ref}
            try:
                (tx,) = ledger.batch([op])
            except LedgerError as exc:
                refused.append(exc.code)
                continue
            if op["op"] == "hold":
                my_holds.append(op["reference"])
            accepted.append((tx.seq, op))
    return accepted, refused
