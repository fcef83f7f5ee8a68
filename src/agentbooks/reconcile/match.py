"""Matching on-chain transfers against the ledger's deposits, withdrawals and confirmed holds.

Transfers into a treasury address are deposits, keyed on (chain id, tx hash,
log index) — a ledger deposit recorded without a chain id (0) matches any
chain. Transfers out of a treasury address are withdrawals or confirmed
holds, keyed on the tx hash. Every item lands in exactly one class:
matched, amount_mismatch, agent_mismatch, ledger_only, chain_only or
duplicate. The treasury check compares the on-chain net flow with the
movement of ``Platform:Treasury`` over the same window and explains the
difference item by item; ``unexplained`` is what remains (zero when the
classes account for everything).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from ..domain import accounts as acct
from ..domain.model import Kind, Transaction
from ..domain.money import format_micros
from ..ledger import Ledger
from .transfers import ChainTransfer

CLASSES = ("matched", "amount_mismatch", "agent_mismatch", "ledger_only", "chain_only", "duplicate")


@dataclass(frozen=True)
class LedgerMovement:
    seq: int
    transaction_id: str
    kind: str
    agent: str
    amount_micros: int
    chain_id: int
    tx_hash: str
    log_index: int | None  # None for outflows: the ledger keys them on the tx hash
    treasury_micros: int  # signed effect on Platform:Treasury
    occurred_at: datetime


@dataclass(frozen=True)
class Item:
    kind: str  # one of CLASSES
    direction: str  # "in" (deposit) or "out" (withdrawal / confirmed hold)
    chain: ChainTransfer | None
    ledger: LedgerMovement | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class": self.kind, "direction": self.direction}
        if self.chain:
            c = self.chain
            out["chain"] = {"line": c.line, "chainId": c.chain_id, "txHash": c.tx_hash, "logIndex": c.log_index,
                            "from": c.sender, "to": c.recipient, "amount": format_micros(c.amount_micros),
                            "blockNumber": c.block_number, "timestamp": c.timestamp.isoformat()}
        if self.ledger:
            m = self.ledger
            out["ledger"] = {"seq": m.seq, "transactionId": m.transaction_id, "kind": m.kind, "agent": m.agent,
                             "amount": format_micros(m.amount_micros), "txHash": m.tx_hash}
        return out


@dataclass
class Reconciliation:
    items: list[Item] = field(default_factory=list)
    chain_net_micros: int = 0
    ledger_treasury_micros: int = 0
    other_treasury_micros: int = 0  # spends, refunds, settlements: treasury moves no transfer file lists
    unrelated_transfers: int = 0

    def counts(self) -> dict[str, int]:
        counts = {k: 0 for k in CLASSES}
        for item in self.items:
            counts[item.kind] += 1
        return counts

    @property
    def clean(self) -> bool:
        return all(i.kind == "matched" for i in self.items) and self.unexplained_micros == 0

    @property
    def explained_micros(self) -> int:
        total = self.other_treasury_micros
        for i in self.items:
            ledger = i.ledger.treasury_micros if i.ledger else 0
            chain = (i.chain.amount_micros if i.direction == "in" else -i.chain.amount_micros) if i.chain else 0
            if i.kind != "matched":
                total += ledger - chain
        return total

    @property
    def unexplained_micros(self) -> int:
        return (self.ledger_treasury_micros - self.chain_net_micros) - self.explained_micros

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "counts": self.counts(),
            "treasury": {
                "chainNetFlow": format_micros(self.chain_net_micros),
                "ledgerTreasuryMovement": format_micros(self.ledger_treasury_micros),
                "difference": format_micros(self.ledger_treasury_micros - self.chain_net_micros),
                "explainedByItems": format_micros(self.explained_micros - self.other_treasury_micros),
                "explainedByOtherLedgerMovements": format_micros(self.other_treasury_micros),
                "unexplained": format_micros(self.unexplained_micros),
            },
            "unrelatedTransfers": self.unrelated_transfers,
            "differences": [i.to_dict() for i in self.items if i.kind != "matched"],
            "matched": sum(1 for i in self.items if i.kind == "matched"),
        }


def _treasury_effect(tx: Transaction) -> int:
    return sum(p.amount_micros for p in tx.postings if p.account == acct.TREASURY)


def ledger_movements(transactions: Iterable[Transaction], start: datetime | None, end: datetime | None
                     ) -> tuple[list[LedgerMovement], int, int]:
    """Reconcilable movements in the window, the treasury's total movement, and the rest of it."""
    movements: dict[int, LedgerMovement] = {}
    treasury_total = other = 0
    reversed_seqs: dict[int, int] = {}
    for tx in transactions:
        if (start and tx.occurred_at < start) or (end and tx.occurred_at > end):
            continue
        effect = _treasury_effect(tx)
        treasury_total += effect
        if tx.kind is Kind.REVERSAL and tx.reverses_seq in movements:
            reversed_seqs[tx.reverses_seq] = effect  # a reversed deposit no longer counts; nor does its reversal
            continue
        if tx.kind is Kind.DEPOSIT:
            log_index = int(tx.metadata.get("log_index", 0))
            movements[tx.seq] = LedgerMovement(tx.seq, tx.id, tx.kind.value, tx.agent or "", tx.amount_micros,
                                               int(tx.metadata.get("chain_id", 0)), (tx.tx_hash or "").lower(),
                                               log_index, effect, tx.occurred_at)
        elif tx.kind in (Kind.WITHDRAW, Kind.CONFIRM_HOLD) and tx.tx_hash:
            movements[tx.seq] = LedgerMovement(tx.seq, tx.id, tx.kind.value, tx.agent or "", tx.amount_micros, 0,
                                               tx.tx_hash.lower(), None, effect, tx.occurred_at)
        else:
            other += effect
    for seq, reversal_effect in reversed_seqs.items():
        other += movements.pop(seq).treasury_micros + reversal_effect
    return list(movements.values()), treasury_total, other


def reconcile(ledger: Ledger, transfers: list[ChainTransfer], treasury: set[str], *,
              start: datetime | None = None, end: datetime | None = None) -> Reconciliation:
    treasury = {t.lower() for t in treasury}
    result = Reconciliation()
    movements, result.ledger_treasury_micros, result.other_treasury_micros = ledger_movements(
        ledger.transactions(), start, end)
    window = [t for t in transfers if (not start or t.timestamp >= start) and (not end or t.timestamp <= end)]
    inflows = [t for t in window if t.recipient in treasury and t.sender not in treasury]
    outflows = [t for t in window if t.sender in treasury and t.recipient not in treasury]
    result.unrelated_transfers = len(window) - len(inflows) - len(outflows)
    result.chain_net_micros = sum(t.amount_micros for t in inflows) - sum(t.amount_micros for t in outflows)

    deposits = [m for m in movements if m.log_index is not None]
    payouts = [m for m in movements if m.log_index is None]
    result.items += _match(inflows, deposits, "in",
                           lambda t: [(t.chain_id, t.tx_hash, t.log_index), (0, t.tx_hash, t.log_index)],
                           lambda m: (m.chain_id, m.tx_hash, m.log_index), lambda t: t.sender)
    result.items += _match(outflows, payouts, "out", lambda t: [(0, t.tx_hash, None)],
                           lambda m: (0, m.tx_hash, None), lambda t: t.recipient)
    return result


def _match(chain: list[ChainTransfer], ledger: list[LedgerMovement], direction: str, chain_keys, ledger_key,
           chain_agent) -> list[Item]:  # type: ignore[no-untyped-def]
    by_key: dict[tuple, list[LedgerMovement]] = defaultdict(list)
    for m in sorted(ledger, key=lambda m: m.seq):
        by_key[ledger_key(m)].append(m)
    items: list[Item] = []
    matched_hashes: set[str] = set()
    for t in chain:
        found = next((by_key[k].pop(0) for k in chain_keys(t) if by_key.get(k)), None)
        if found is None:
            items.append(Item("chain_only", direction, t, None))
            continue
        matched_hashes.add(t.tx_hash)
        if found.amount_micros != t.amount_micros:
            items.append(Item("amount_mismatch", direction, t, found))
        elif found.agent != chain_agent(t):
            items.append(Item("agent_mismatch", direction, t, found))
        else:
            items.append(Item("matched", direction, t, found))
    for leftovers in by_key.values():
        for m in leftovers:
            # A second ledger entry for a transfer already matched: one transfer credited twice.
            items.append(Item("duplicate" if m.tx_hash in matched_hashes else "ledger_only", direction, None, m))
    return items
