"""A page of the journal with what each transaction changed: balances after it, and monitors crossed.

``read_page`` reads, in one snapshot, the transactions after a sequence, the balances and credit
limits as of that sequence for everything they touch, and the monitors. ``changes`` then rolls
those balances forward one transaction at a time, in memory, so each transaction is published with
the balances it left and each monitor sees the state before and after every transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection

from ..domain import accounts as acct
from ..domain.model import AgentState, Kind, Transaction
from ..domain.monitors import BalanceMonitor, TargetKind, crossed
from ..storage import events_store
from ..storage import journal_store as store


@lru_cache(maxsize=16_384)
def _owner(account: str) -> str | None:
    return acct.parse_account(account).agent


def touched_agents(tx: Transaction) -> set[str]:
    """The agents whose balances or credit line the transaction changed."""
    agents = {a for a in (_owner(p.account) for p in tx.postings) if a}
    if tx.kind is Kind.SET_CREDIT_LIMIT and tx.agent:
        agents.add(tx.agent)
    return agents


@dataclass(frozen=True, slots=True)
class Page:
    after_seq: int
    head_seq: int
    transactions: list[Transaction]
    balances: dict[str, int]  # beancount-signed, as of after_seq
    credit_limits: dict[str, int]  # as of after_seq
    monitors: list[BalanceMonitor]


def read_page(conn: Connection, after_seq: int, limit: int) -> Page:
    """Run inside one read snapshot (``LedgerService.read``)."""
    txs = store.transactions_page(conn, after_seq=after_seq, limit=limit)
    head_seq = store.head(conn)[0]
    agents = {a for tx in txs for a in touched_agents(tx)}
    accounts = {p.account for tx in txs for p in tx.postings}
    accounts.update(name for a in agents for name in acct.agent_accounts(a).values())
    return Page(after_seq, head_seq, txs, events_store.balances_as_of(conn, accounts, after_seq),
                events_store.credit_limits_as_of(conn, agents, after_seq),
                events_store.list_monitors(conn) if txs else [])


@dataclass(frozen=True, slots=True)
class Crossing:
    monitor: BalanceMonitor
    before: AgentState | int
    after: AgentState | int


@dataclass(frozen=True, slots=True)
class Change:
    transaction: Transaction
    balances: dict[str, int]  # each account it posted to, beancount-signed, after it
    agents: dict[str, AgentState]  # each agent it touched, after it (totals not included)
    crossings: list[Crossing]


class _RunningBooks:
    def __init__(self, balances: dict[str, int], credit_limits: dict[str, int]) -> None:
        self.balances = defaultdict(int, balances)
        self.credit_limits = defaultdict(int, credit_limits)

    def agent(self, agent: str) -> AgentState:
        sums = {bucket: self.balances[name] for bucket, name in acct.agent_accounts(agent).items()}
        return store.agent_state_from_row(agent, sums, self.credit_limits[agent], 0, 0)

    def value(self, monitor: BalanceMonitor) -> AgentState | int:
        target = monitor.condition.target
        return self.agent(target) if monitor.condition.target_kind is TargetKind.AGENT else self.balances[target]

    def apply(self, tx: Transaction) -> None:
        for p in tx.postings:
            self.balances[p.account] += p.amount_micros
        if tx.kind is Kind.SET_CREDIT_LIMIT and tx.agent and tx.credit_limit_micros is not None:
            self.credit_limits[tx.agent] = tx.credit_limit_micros


def changes(page: Page) -> list[Change]:
    books = _RunningBooks(page.balances, page.credit_limits)
    by_target: dict[str, list[BalanceMonitor]] = defaultdict(list)
    for m in page.monitors:
        by_target[m.condition.target].append(m)
    out = []
    for tx in page.transactions:
        agents = touched_agents(tx)
        targets = agents | {p.account for p in tx.postings}
        watching = [m for t in sorted(targets) for m in by_target.get(t, ()) if tx.seq > m.after_seq]
        before = [books.value(m) for m in watching]
        books.apply(tx)
        crossings = []
        for monitor, was in zip(watching, before):
            now = books.value(monitor)
            if crossed(monitor.condition, was, now):
                crossings.append(Crossing(monitor, was, now))
        out.append(Change(tx, {p.account: books.balances[p.account] for p in tx.postings},
                          {a: books.agent(a) for a in sorted(agents)}, crossings))
    return out
