"""The original's reconciliation shape: per agent, do its balances agree with the journal?

Built from one ``verify`` run: each agent's cached balances beside the violations that name it
(by agent, or by one of its accounts); what names no agent is book-wide.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..ledger import Ledger
from .model import VerifyReport, Violation

MAX_AGENTS = 10_000


def _agent_of(v: Violation) -> str | None:
    if v.agent:
        return v.agent
    if v.account and v.account.startswith("Agent:0x"):
        return v.account.split(":")[1]
    if v.account and v.account.startswith("Platform:Credit:"):
        return v.account.split(":")[2]
    return None


def per_agent(ledger: Ledger, report: VerifyReport, *, limit: int = MAX_AGENTS) -> dict[str, Any]:
    by_agent: dict[str, list[dict[str, Any]]] = {}
    book_wide: list[dict[str, Any]] = []
    for v in report.violations:
        item = {k: x for k, x in asdict(v).items() if x is not None}
        agent = _agent_of(v)
        (by_agent.setdefault(agent, []) if agent else book_wide).append(item)
    results = []
    for agent in ledger.agents()[:limit]:
        b = ledger.get_balance(agent)
        found = by_agent.get(agent, [])
        results.append({"agentAddr": agent, "ok": not found, "available": f"{b.available:.6f}",
                        "pending": f"{b.pending:.6f}", "escrowed": f"{b.escrowed:.6f}",
                        "creditUsed": f"{b.credit_used:.6f}", "mismatches": found})
    return {"ok": report.clean, "agentsChecked": len(results),
            "mismatchedAgents": sum(1 for r in results if not r["ok"]), "results": results,
            "bookWide": book_wide, "lastSeq": report.last_seq, "headHash": report.head_hash,
            "violationCount": report.violation_count}
