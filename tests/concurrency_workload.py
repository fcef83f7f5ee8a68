"""A worker that hammers one agent with holds, confirms, releases, spends, deposits and withdrawals.

Used by the PostgreSQL concurrency tests from threads and from separate
processes; it returns every operation the ledger accepted, with the journal
sequence it got, so the test can replay them serially and compare.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import random

from agentbooks import Ledger, LedgerError

HOT_AGENT = "0x5aeda56215b167893e80b4fe645ba6d5bab767de"
EXPECTED_REFUSALS = {"insufficient_balance", "credit_limit_exceeded", "hold_exceeded", "unknown_hold"}


def hammer(target: str | Ledger, worker: int, operations: int, seed: int) -> tuple[list[tuple[int, dict]], list[str]]:
    """``target``: a database URL (the worker opens its own ledger) or a ledger shared with other workers."""
    rng = random.Random(seed)
    accepted: list[tuple[int, dict]] = []
    refused: list[str] = []
    my_holds: list[str] = []
    opened = Ledger.open(target) if isinstance(target, str) else contextlib.nullcontext(target)
    with opened as ledger:
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


def hammer_from_threads(url: str, threads: int, operations: int, seed: int) -> tuple[list[tuple[int, dict]], list[str], int]:
    """``threads`` workers sharing one ledger (so their writes are group-committed); also the largest group seen."""
    with Ledger.open(url) as ledger:
        with futures.ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda w: hammer(ledger, seed + w, operations, seed + w), range(threads)))
        largest = ledger.service.group_stats().largest_group
    return [a for r in results for a in r[0]], [c for r in results for c in r[1]], largest
