"""Per-agent reports: statements, credit exposure, open holds and escrows."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..domain import accounts as acct
from ..domain.addresses import normalize_address
from ..ledger import Ledger
from ..storage import journal_store as store
from .books import _time_of
from .model import Column, Report

MAX_STATEMENT_TRANSACTIONS = 100_000
PAGE = 1000


def agent_statement(ledger: Ledger, agent: str, start: Any = None, end: Any = None) -> Report:
    """Opening balance, every transaction with running balances, closing balance, per sub-account."""
    address = normalize_address(agent)
    first = ledger.resolve_as_of(start) if start is not None else 0
    last = ledger.resolve_as_of(end)
    names = acct.agent_accounts(address)
    by_name = {name: bucket for bucket, name in names.items()}
    opening_state = ledger.get_balance(address, as_of=first)
    running = {
        acct.AgentBucket.AVAILABLE: int(opening_state.available.scaleb(6)),
        acct.AgentBucket.PENDING: int(opening_state.pending.scaleb(6)),
        acct.AgentBucket.ESCROWED: int(opening_state.escrowed.scaleb(6)),
        acct.AgentBucket.CREDIT: int(opening_state.credit_used.scaleb(6)),
    }
    rows: list[dict[str, Any]] = [
        {"time": None, "seq": first, "kind": "opening balance", "reference": "", "sub_account": b.value,
         "change": 0, "balance": running[b]} for b in running
    ]
    cursor = first
    while cursor < last and len(rows) < MAX_STATEMENT_TRANSACTIONS:
        page = ledger.service.read(lambda c: store.agent_transactions(c, address, after_seq=cursor, upto_seq=last,
                                                                      limit=PAGE))
        for tx in page:
            for p in tx.postings:
                bucket = by_name.get(p.account)
                if bucket is None:
                    continue
                change = p.amount_micros if bucket is acct.AgentBucket.CREDIT else -p.amount_micros
                running[bucket] += change
                rows.append({"time": tx.occurred_at, "seq": tx.seq, "kind": tx.kind.value,
                             "reference": p.reference or tx.reference or "", "sub_account": bucket.value,
                             "change": change, "balance": running[bucket]})
        if len(page) < PAGE:
            break
        cursor = page[-1].seq
    closing = ledger.get_balance(address, as_of=last)
    expected = {
        acct.AgentBucket.AVAILABLE: int(closing.available.scaleb(6)),
        acct.AgentBucket.PENDING: int(closing.pending.scaleb(6)),
        acct.AgentBucket.ESCROWED: int(closing.escrowed.scaleb(6)),
        acct.AgentBucket.CREDIT: int(closing.credit_used.scaleb(6)),
    }
    rows += [{"time": None, "seq": last, "kind": "closing balance", "reference": "", "sub_account": b.value,
              "change": 0, "balance": running[b]} for b in running]
    return Report(
        name="agent-statement", title=f"Statement of {address}", as_of_seq=last, as_of=_time_of(ledger, last),
        columns=(Column("time", "Time", "time"), Column("seq", "Seq", "int"), Column("kind", "Kind"),
                 Column("reference", "Reference"), Column("sub_account", "Sub-account"),
                 Column("change", "Change", "money"), Column("balance", "Balance", "money")),
        rows=tuple(rows),
        checks={"running balances end at the ledger's closing balance": running == expected},
        notes=("Credit is the credit drawn (what the agent owes); the others are what the platform owes the agent.",),
        period=(_time_of(ledger, first), _time_of(ledger, last)),
    )


def credit_exposure(ledger: Ledger, as_of: Any = None) -> Report:
    """Per agent with a credit line: limit, used, headroom, utilisation."""
    seq = ledger.resolve_as_of(as_of)
    rows = []
    for address in ledger.agents():
        b = ledger.get_balance(address, as_of=seq)
        limit, used = int(b.credit_limit.scaleb(6)), int(b.credit_used.scaleb(6))
        if limit == 0 and used == 0:
            continue
        rows.append({"agent": address, "limit": limit, "used": used, "headroom": limit - used,
                     "utilisation": round(used * 100 / limit, 2) if limit else 0})
    return Report(
        name="credit-exposure", title="Credit exposure", as_of_seq=seq, as_of=_time_of(ledger, seq),
        columns=(Column("agent", "Agent"), Column("limit", "Limit", "money"), Column("used", "Used", "money"),
                 Column("headroom", "Headroom", "money"), Column("utilisation", "Utilisation %", "percent")),
        rows=tuple(rows),
        totals={"agent": "Total", "limit": sum(r["limit"] for r in rows), "used": sum(r["used"] for r in rows),
                "headroom": sum(r["headroom"] for r in rows)},
        checks={"no agent over its limit": all(r["used"] <= r["limit"] for r in rows)},
    )


def open_holds(ledger: Ledger, now: datetime | None = None) -> Report:
    """Every open hold and escrow with what it still holds and its age."""
    moment = now or ledger.service.clock()
    seq = ledger.head()[0]
    rows = []
    for h in ledger.open_holds():
        created = _time_of(ledger, h.created_seq)
        age_hours = round((moment - created).total_seconds() / 3600, 2) if created else 0
        rows.append({"kind": h.kind.value, "agent": h.agent, "reference": h.reference, "amount": h.amount_micros,
                     "remaining": h.remaining_micros, "created": created, "age_hours": age_hours,
                     "expires": h.expires_at, "expired": "yes" if h.expires_at and h.expires_at <= moment else ""})
    return Report(
        name="open-holds", title="Open holds and escrows", as_of_seq=seq, as_of=moment.astimezone(timezone.utc),
        columns=(Column("kind", "Kind"), Column("agent", "Agent"), Column("reference", "Reference"),
                 Column("amount", "Amount", "money"), Column("remaining", "Remaining", "money"),
                 Column("created", "Created", "time"), Column("age_hours", "Age (h)", "percent"),
                 Column("expires", "Expires", "time"), Column("expired", "Expired")),
        rows=tuple(rows), totals={"kind": "Total", "remaining": sum(r["remaining"] for r in rows)},
    )
