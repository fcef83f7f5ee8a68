"""Net settlement (the original's ``NetSettle``): many agent-to-agent obligations netted into few transfers.

Pure: obligations in, transfers out, exact micro-units. Each agent's net position (what it is owed
less what it owes) is kept exactly; self-obligations are dropped; addresses are normalised. The
result is deterministic (the original's order came from map iteration): debtors and creditors
whose net positions are equal are paired first (one transfer settles both), then the largest
debtor pays the largest creditor, ties broken by address, until every position is zero. That is
at most one transfer fewer than the agents with a non-zero position; the true minimum is the
partition problem (NP-hard), which the exact pairs cover in the common cases.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterable

from .addresses import normalize_address
from .errors import InvalidArgument
from .money import check_micros

MAX_OBLIGATIONS = 10_000


@dataclass(frozen=True, slots=True, order=True)
class Obligation:
    """``from_agent`` owes ``to_agent`` ``amount_micros`` (input and output alike)."""

    from_agent: str
    to_agent: str
    amount_micros: int


def net_positions(obligations: Iterable[Obligation]) -> dict[str, int]:
    """Each agent's net position: positive is owed to it, negative it owes (zero positions omitted)."""
    net: dict[str, int] = {}
    for o in obligations:
        net[o.from_agent] = net.get(o.from_agent, 0) - o.amount_micros
        net[o.to_agent] = net.get(o.to_agent, 0) + o.amount_micros
    return {agent: v for agent, v in net.items() if v}


def normalized(obligations: Iterable[Obligation]) -> list[Obligation]:
    """Checked and normalised: lower-case addresses, positive micro-units, self-obligations dropped."""
    out = []
    for i, o in enumerate(obligations):
        if i >= MAX_OBLIGATIONS:
            raise InvalidArgument(f"net settlement takes at most {MAX_OBLIGATIONS} obligations", field="transfers")
        a, b = normalize_address(o.from_agent, field="from"), normalize_address(o.to_agent, field="to")
        check_micros(o.amount_micros)
        if a != b:
            out.append(Obligation(a, b, o.amount_micros))
    return out


def net_settle(obligations: Iterable[Obligation]) -> list[Obligation]:
    """The transfers that settle ``obligations``, sorted by (payer, payee)."""
    net = net_positions(normalized(obligations))
    debtors = {a: -v for a, v in net.items() if v < 0}
    creditors = {a: v for a, v in net.items() if v > 0}
    transfers: list[Obligation] = []
    # Exact pairs first: one transfer closes two positions.
    by_amount: dict[int, list[str]] = {}
    for agent in sorted(creditors):
        by_amount.setdefault(creditors[agent], []).append(agent)
    for debtor in sorted(debtors):
        candidates = by_amount.get(debtors[debtor])
        if candidates:
            creditor = candidates.pop(0)
            transfers.append(Obligation(debtor, creditor, debtors.pop(debtor)))
            del creditors[creditor]
    # Then the largest debtor pays the largest creditor (ties by address); a remainder goes back.
    owing = [(-v, a) for a, v in debtors.items()]
    owed = [(-v, a) for a, v in creditors.items()]
    heapq.heapify(owing)
    heapq.heapify(owed)
    while owing:
        debt, debtor = heapq.heappop(owing)
        credit, creditor = heapq.heappop(owed)
        amount = min(-debt, -credit)
        transfers.append(Obligation(debtor, creditor, amount))
        if -debt > amount:
            heapq.heappush(owing, (debt + amount, debtor))
        if -credit > amount:
            heapq.heappush(owed, (credit + amount, creditor))
    return sorted(transfers)
