"""Per-agent reports: statements, credit exposure, open holds and escrows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..domain import accounts as acct
from ..domain.addresses import normalize_address
from ..domain.model import HoldKind, HoldState, Transaction
from ..ledger import Ledger
from ..storage import journal_store as store
from .books import MAX_CHART_POINTS, _time_of
from .model import Chart, Column, Report
from .period import Boundary, end_boundary, period, zone

MAX_STATEMENT_TRANSACTIONS = 100_000
PAGE = 1000
MAX_HOLDS = 1_000_000


def _own_funds(balance: Any) -> int:
    """What the agent has net of what it owes: A + P + E - CU (= totalIn - totalOut)."""
    return int((balance.available + balance.pending + balance.escrowed - balance.credit_used).scaleb(6))


class _Summary:
    """Money in and out of the agent's own funds by kind, and the fees it paid, over the period."""

    def __init__(self) -> None:
        self.money_in: dict[str, int] = defaultdict(int)
        self.money_out: dict[str, int] = defaultdict(int)
        self.fees = 0

    def add(self, tx: Transaction, agent: str) -> None:
        for f in tx.flows:
            if f.agent != agent:
                continue
            for micros, into in ((f.total_in_micros, True), (-f.total_out_micros, True)):
                if micros:
                    (self.money_in if (micros > 0) == into else self.money_out)[tx.kind.value] += abs(micros)
        if tx.kind.value == "settle_hold" and tx.agent == agent:
            self.fees += int(tx.metadata.get("fee", 0))

    def lines(self, opening: int, closing: int) -> tuple[tuple[str, int], ...]:
        return (("opening balance (available + pending + escrowed - credit used)", opening),
                *((f"in: {kind.replace('_', ' ')}", v) for kind, v in sorted(self.money_in.items())),
                *((f"out: {kind.replace('_', ' ')}", v) for kind, v in sorted(self.money_out.items())),
                ("fees paid (included in out)", self.fees),
                ("closing balance", closing))

    def adds_up(self, opening: int, closing: int) -> bool:
        return opening + sum(self.money_in.values()) - sum(self.money_out.values()) == closing


def agent_statement(ledger: Ledger, agent: str, start: Any = None, end: Any = None, *, tz: str | None = None) -> Report:
    """A statement to send: a summary (opening, in and out by kind, fees, closing), then every movement of
    each sub-account with its counterparty, on-chain transaction hash and running balance."""
    address = normalize_address(agent)
    zone_info = zone(tz)
    first_boundary, last_boundary = period(ledger, start, end, zone_info)
    first, last = first_boundary.seq, last_boundary.seq
    profile = ledger.agent_profile(address)
    names = acct.agent_accounts(address)
    by_name = {name: bucket for bucket, name in names.items()}
    opening_state = ledger.get_balance(address, as_of=first)
    running = {
        acct.AgentBucket.AVAILABLE: int(opening_state.available.scaleb(6)),
        acct.AgentBucket.PENDING: int(opening_state.pending.scaleb(6)),
        acct.AgentBucket.ESCROWED: int(opening_state.escrowed.scaleb(6)),
        acct.AgentBucket.CREDIT: int(opening_state.credit_used.scaleb(6)),
    }
    blank = {"counterparty": "", "tx_hash": "", "reference": "", "change": 0}
    rows: list[dict[str, Any]] = [
        {**blank, "time": first_boundary.at, "seq": first, "kind": "opening balance", "sub_account": b.value,
         "balance": running[b]} for b in running
    ]
    summary = _Summary()
    parties: dict[str, str] = {}
    cursor = first
    while cursor < last and len(rows) < MAX_STATEMENT_TRANSACTIONS:
        page = ledger.service.read(lambda c: store.agent_transactions(c, address, after_seq=cursor, upto_seq=last,
                                                                      limit=PAGE))
        others = {a for tx in page for a in (tx.agent, tx.counterparty) if a and a != address} - set(parties)
        parties.update({a: p.label for a, p in ledger.agent_profiles(others).items()} if others else {})
        for tx in page:
            summary.add(tx, address)
            other = tx.counterparty if tx.agent == address else tx.agent
            for p in tx.postings:
                bucket = by_name.get(p.account)
                if bucket is None:
                    continue
                change = p.amount_micros if bucket is acct.AgentBucket.CREDIT else -p.amount_micros
                running[bucket] += change
                rows.append({"time": tx.occurred_at, "seq": tx.seq, "kind": tx.kind.value,
                             "counterparty": parties.get(other or "", other or ""), "tx_hash": tx.tx_hash or "",
                             "reference": p.reference or tx.reference or "", "sub_account": bucket.value,
                             "change": change, "balance": running[bucket]})
        if len(page) < PAGE:
            break
        cursor = page[-1].seq
    cut = len(rows) >= MAX_STATEMENT_TRANSACTIONS and cursor < last
    if cut:  # a very long period: close at the last transaction shown, so the statement still adds up
        last = cursor
        last_boundary = Boundary(last, _time_of(ledger, last))
    closing = ledger.get_balance(address, as_of=last)
    expected = {
        acct.AgentBucket.AVAILABLE: int(closing.available.scaleb(6)),
        acct.AgentBucket.PENDING: int(closing.pending.scaleb(6)),
        acct.AgentBucket.ESCROWED: int(closing.escrowed.scaleb(6)),
        acct.AgentBucket.CREDIT: int(closing.credit_used.scaleb(6)),
    }
    rows += [{**blank, "time": last_boundary.at, "seq": last, "kind": "closing balance", "sub_account": b.value,
              "balance": running[b]} for b in running]
    chart = _balance_chart(rows, first_boundary.at, last_boundary.at)
    opening_funds, closing_funds = _own_funds(opening_state), _own_funds(closing)
    who = f"{profile.display_name} ({address})" if profile.display_name else address
    return Report(
        name="agent-statement", title=f"Statement of {who}", as_of_seq=last, as_of=last_boundary.at,
        columns=(Column("time", "Date", "date"), Column("seq", "Seq", "int"), Column("kind", "Kind"),
                 Column("counterparty", "Counterparty"), Column("reference", "Reference"),
                 Column("tx_hash", "On-chain tx"), Column("sub_account", "Sub-account"),
                 Column("change", "Change", "money"), Column("balance", "Balance", "money")),
        rows=tuple(rows),
        checks={"running balances end at the ledger's closing balance": running == expected,
                "opening + in - out = closing": summary.adds_up(opening_funds, closing_funds)},
        notes=("Credit is the credit drawn (what the agent owes); the others are what the platform owes the agent.",)
        + ((f"cut at {MAX_STATEMENT_TRANSACTIONS} rows: continue with --from {last}",) if cut else ()),
        period=(first_boundary.at, last_boundary.at), tz=zone_info.key,
        chart=chart, summary=summary.lines(opening_funds, closing_funds),
    )


def _balance_chart(rows: list[dict[str, Any]], start: datetime | None, end: datetime | None) -> Chart | None:
    """Each sub-account's running balance over the period, one point per change (capped for long periods)."""
    moves = [r for r in rows if r["kind"] not in ("opening balance", "closing balance")]
    if not moves:
        return None
    stride = max(1, len(moves) // MAX_CHART_POINTS)
    series: dict[str, list[tuple[datetime, int]]] = {}
    for r in rows[:4]:  # the opening balances
        series[r["sub_account"]] = [(start or moves[0]["time"], r["balance"])]
    for i, r in enumerate(moves):
        if i % stride == 0 or i == len(moves) - 1:
            series[r["sub_account"]].append((r["time"], r["balance"]))
    for r in rows[-4:]:  # the closing balances, so every line reaches the period's end
        series[r["sub_account"]].append((end or moves[-1]["time"], r["balance"]))
    return Chart("Running balances by sub-account (USDC)", series)


def _percent(part_micros: int, whole_micros: int) -> Decimal:
    if whole_micros == 0:
        return Decimal("0.00")
    return (Decimal(part_micros * 100) / whole_micros).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def credit_exposure(ledger: Ledger, as_of: Any = None, *, tz: str | None = None) -> Report:
    """Per agent with a credit line: limit, used, headroom, utilisation."""
    zone_info = zone(tz)
    boundary = end_boundary(ledger, as_of, zone_info)
    seq = boundary.seq
    rows = []
    at = None if seq == ledger.head()[0] else seq  # the present comes from the balance caches
    for address in ledger.agents():
        b = ledger.get_balance(address, as_of=at)
        limit, used = int(b.credit_limit.scaleb(6)), int(b.credit_used.scaleb(6))
        if limit == 0 and used == 0:
            continue
        rows.append({"agent": address, "limit": limit, "used": used, "headroom": limit - used,
                     "utilisation": _percent(used, limit)})
    return Report(
        name="credit-exposure", title="Credit exposure", as_of_seq=seq, as_of=boundary.at, tz=zone_info.key,
        columns=(Column("agent", "Agent"), Column("limit", "Limit", "money"), Column("used", "Used", "money"),
                 Column("headroom", "Headroom", "money"), Column("utilisation", "Utilisation %", "percent")),
        rows=tuple(rows),
        totals={"agent": "Total", "limit": sum(r["limit"] for r in rows), "used": sum(r["used"] for r in rows),
                "headroom": sum(r["headroom"] for r in rows)},
        checks={"no agent over its limit": all(r["used"] <= r["limit"] for r in rows)},
    )


def holds_as_of(ledger: Ledger, seq: int) -> list[HoldState]:
    """Every hold and escrow still holding money after journal ``seq``, replayed from the journal's hold effects.

    Replaying (rather than reading the holds table, which only knows the
    present) lets the report be as of any moment, and has no row cap.
    """
    found: dict[tuple[HoldKind, str, str], HoldState] = {}
    for tx in ledger.transactions(upto_seq=seq):
        for e in tx.hold_effects:
            key = (e.kind, e.agent, e.reference)
            before = found.get(key)
            if e.creates or before is None:
                before = HoldState(e.kind, e.agent, e.reference, 0, 0, 0, 0, 0, e.expires_at, tx.seq)
            found[key] = replace(
                before,
                amount_micros=before.amount_micros + e.amount_micros,
                remaining_micros=before.remaining_micros + e.remaining_micros,
                credit_micros=before.credit_micros + e.credit_micros,
                confirmed_micros=before.confirmed_micros + e.confirmed_micros,
                released_micros=before.released_micros + e.released_micros,
            )
    return sorted((h for h in found.values() if h.remaining_micros > 0), key=lambda h: (h.created_seq, h.reference))


def _hours(span: timedelta) -> Decimal:
    return (Decimal(span.days * 86_400 + span.seconds) / 3600).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def open_holds(ledger: Ledger, as_of: Any = None, *, tz: str | None = None) -> Report:
    """Every open hold and escrow as of a boundary (as every report: the last transaction when none is
    given), with what it still holds and its age at that moment."""
    zone_info = zone(tz)
    boundary = end_boundary(ledger, as_of, zone_info)
    seq, moment = boundary.seq, boundary.at
    if seq == ledger.head()[0]:  # the present: the holds table has it without walking the journal
        holds = ledger.service.read(lambda c: store.list_holds(c, open_only=True, limit=MAX_HOLDS))
    else:
        holds = holds_as_of(ledger, seq)
    rows = []
    for h in holds:
        created = _time_of(ledger, h.created_seq)
        rows.append({"kind": h.kind.value, "agent": h.agent, "reference": h.reference, "amount": h.amount_micros,
                     "remaining": h.remaining_micros, "created": created,
                     "age_hours": _hours(moment - created) if created and moment else Decimal(0),
                     "expires": h.expires_at,
                     "expired": "yes" if h.expires_at and moment and h.expires_at <= moment else ""})
    return Report(
        name="open-holds", title="Open holds and escrows", as_of_seq=seq, as_of=moment, tz=zone_info.key,
        columns=(Column("kind", "Kind"), Column("agent", "Agent"), Column("reference", "Reference"),
                 Column("amount", "Amount", "money"), Column("remaining", "Remaining", "money"),
                 Column("created", "Created", "time"), Column("age_hours", "Age (h)", "decimal"),
                 Column("expires", "Expires", "time"), Column("expired", "Expired")),
        rows=tuple(rows), totals={"kind": "Total", "remaining": sum(r["remaining"] for r in rows)},
        notes=("Age is measured at the report's as-of time.",),
    )
