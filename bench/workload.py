"""A fixed-seed workload shaped like agent traffic, as batch items for ``Ledger.batch``.

Deposits fund agents; spends draw on available then credit; holds are later
confirmed or released; escrows are later released to a seller or refunded;
some agents draw credit. A configurable share of the traffic goes to a few
hot agents. Every operation is valid in sequence (planned against a simple
running model), so a benchmark measures writes, not refusals.
"""

from __future__ import annotations

import random
from collections import defaultdict

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
