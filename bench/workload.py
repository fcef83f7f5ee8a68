"""Fixed-seed workloads shaped like agent traffic.

``workload``: batch items for ``Ledger.batch``. Deposits fund agents; spends
draw on available then credit; holds are later confirmed or released; escrows
are later released to a seller or refunded; some agents draw credit. A
configurable share of the traffic goes to a few hot agents. Every operation
is valid in sequence (planned against a simple running model), so a benchmark
measures writes, not refusals.

``mixed_calls`` and ``metering_calls``: endless streams of ``Ledger`` method
calls, one stream per concurrent caller (the group-commit suites). They stay
valid in any interleaving of many callers' streams.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Iterator

from agentbooks.domain.money import format_micros


def agent_address(n: int) -> str:
    return f"0x{n + 1:040x}"


def workload(operations: int, *, agents: int = 1000, hot_share: float = 0.1, hot_agents: int = 10,
             seed: int = 42, tag: str = "") -> list[dict]:
    """``tag`` keeps tx hashes and references unique when several workloads share one ledger."""
    rng = random.Random(seed)
    available: dict[str, int] = defaultdict(int)
    open_holds: list[tuple[str, str, int]] = []
    open_escrows: list[tuple[str, str, int]] = []
    credit: dict[str, int] = {}
    ops: list[dict] = []
    counter = 0

    def pick() -> str:
        pool = hot_agents if rng.random() < hot_share else agents
        return agent_address(rng.randrange(pool))

    while len(ops) < operations:
        counter += 1
        agent = pick()
        roll = rng.random()
        if roll < 0.25 or available[agent] < 5_000_000:
            amount = rng.randint(5, 500) * 1_000_000
            ops.append({"op": "deposit", "agent": agent, "amount": format_micros(amount), "tx_hash": f"0xb{tag}{counter:x}"})
            available[agent] += amount
        elif roll < 0.45:
            amount = rng.randint(1, min(available[agent], 5_000_000))
            ops.append({"op": "spend", "agent": agent, "amount": format_micros(amount), "session_key_id": "sk-bench"})
            available[agent] -= amount
        elif roll < 0.6:
            amount = rng.randint(1, available[agent] // 2)
            ref = f"h{tag}{counter}"
            ops.append({"op": "hold", "agent": agent, "amount": format_micros(amount), "reference": ref})
            available[agent] -= amount
            open_holds.append((agent, ref, amount))
        elif roll < 0.72 and open_holds:
            holder, ref, amount = open_holds.pop(rng.randrange(len(open_holds)))
            if rng.random() < 0.7:
                ops.append({"op": "confirm_hold", "agent": holder, "amount": format_micros(amount), "reference": ref})
            else:
                ops.append({"op": "release_hold", "agent": holder, "amount": format_micros(amount), "reference": ref})
                available[holder] += amount
        elif roll < 0.82:
            amount = rng.randint(1, available[agent] // 2)
            ref = f"e{tag}{counter}"
            ops.append({"op": "escrow_lock", "agent": agent, "amount": format_micros(amount), "reference": ref})
            available[agent] -= amount
            open_escrows.append((agent, ref, amount))
        elif roll < 0.92 and open_escrows:
            buyer, ref, amount = open_escrows.pop(rng.randrange(len(open_escrows)))
            if rng.random() < 0.8:
                seller = pick()
                if seller == buyer:
                    seller = agent_address(agents + 1)
                ops.append({"op": "release_escrow", "buyer": buyer, "seller": seller, "amount": format_micros(amount),
                            "reference": ref})
                available[seller] += amount
            else:
                ops.append({"op": "refund_escrow", "agent": buyer, "amount": format_micros(amount), "reference": ref})
                available[buyer] += amount
        elif agent not in credit:
            credit[agent] = 50_000_000
            ops.append({"op": "set_credit_limit", "agent": agent, "limit": "50"})
        else:
            amount = rng.randint(1, 10) * 1_000_000
            if credit[agent] >= amount:
                ops.append({"op": "use_credit", "agent": agent, "amount": format_micros(amount)})
                credit[agent] -= amount
                available[agent] += amount
    return ops[:operations]


Call = tuple[str, tuple[Any, ...], dict[str, Any]]  # a ``Ledger`` method's name, its arguments, its keywords
MAX_OPEN_HOLDS_PER_CALLER = 20


def mixed_calls(*, allowance_micros: int, agents: int = 1000, hot_share: float = 0.1, hot_agents: int = 10,
                seed: int = 0, tag: str = "") -> Iterator[Call]:
    """One caller's endless deposits, spends, holds and confirmations or releases of its own holds.

    Valid in any interleaving with other callers' streams on the same agents:
    this caller spends and holds only its ``allowance_micros`` of each agent's
    seed funds plus what it deposited itself, and settles only holds it opened.
    ``tag`` keeps its tx hashes and references unique.
    """
    rng = random.Random(seed)
    own: dict[str, int] = defaultdict(lambda: allowance_micros)
    open_holds: list[tuple[str, str, int]] = []
    counter = 0
    while True:
        counter += 1
        agent = agent_address(rng.randrange(hot_agents if rng.random() < hot_share else agents))
        roll = rng.random()
        if open_holds and (roll < 0.2 or len(open_holds) >= MAX_OPEN_HOLDS_PER_CALLER):
            holder, ref, amount = open_holds.pop(rng.randrange(len(open_holds)))
            if rng.random() < 0.7:
                yield "confirm_hold", (holder, format_micros(amount), ref), {}
            else:
                own[holder] += amount
                yield "release_hold", (holder, format_micros(amount), ref), {}
        elif roll < 0.45 or own[agent] < 20_000:
            amount = rng.randint(1, 50) * 1_000_000
            own[agent] += amount
            yield "deposit", (agent, format_micros(amount), f"0x{tag}{counter:x}"), {}
        elif roll < 0.75:
            amount = rng.randint(10_000, min(own[agent], 2_000_000))
            own[agent] -= amount
            yield "spend", (agent, format_micros(amount), "sk-bench"), {}
        else:
            amount = rng.randint(10_000, min(own[agent], 2_000_000))
            own[agent] -= amount
            ref = f"h{tag}{counter}"
            open_holds.append((agent, ref, amount))
            yield "hold", (agent, format_micros(amount), ref), {}


METERED_PRICE_MICROS = (1_000, 5_000)  # what one paid request costs: 0.001 to 0.005 USDC
METERED_FEE_SHARE = 10  # the platform keeps a tenth


def metering_calls(buyer: str, reference: str, *, sellers: int = 1000, seed: int = 0) -> Iterator[Call]:
    """The platform's metering: every paid request settles a small part of the buyer's session hold to a seller.

    Many callers run such a stream against the same hold at once; the hold
    must cover ``METERED_PRICE_MICROS[1]`` per call made.
    """
    rng = random.Random(seed)
    while True:
        price = rng.randint(*METERED_PRICE_MICROS)
        seller = agent_address(rng.randrange(sellers))
        yield ("settle_hold", (buyer, seller, format_micros(price), reference),
               {"fee": format_micros(price // METERED_FEE_SHARE)})
