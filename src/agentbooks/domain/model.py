"""Immutable ledger data: postings, transactions, balances, history entries.

A ``TransactionDraft`` is what an operation decides (pure); a ``Transaction``
is a draft once the journal has given it a sequence number, a time and its
place in the hash chain.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

from .errors import InvariantViolation
from .money import CURRENCY, to_decimal


class Kind(str, enum.Enum):
    """Journal transaction kinds; the value is stored and exported."""

    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    SPEND = "spend"
    HOLD = "hold"
    CONFIRM_HOLD = "confirm_hold"
    RELEASE_HOLD = "release_hold"
    SETTLE_HOLD = "settle_hold"
    ESCROW_LOCK = "escrow_lock"
    RELEASE_ESCROW = "release_escrow"
    REFUND_ESCROW = "refund_escrow"
    SETTLE_ESCROW = "settle_escrow"
    REFUND = "refund"
    SET_CREDIT_LIMIT = "set_credit_limit"
    USE_CREDIT = "use_credit"
    REPAY_CREDIT = "repay_credit"
    TRANSFER = "transfer"
    REVERSAL = "reversal"
    RECEIVE_UNIDENTIFIED = "receive_unidentified"
    ASSIGN_SUSPENSE = "assign_suspense"
    RETURN_SUSPENSE = "return_suspense"
    CONTRIBUTE_CAPITAL = "contribute_capital"
    OPENING_BALANCE = "opening_balance"
    PAY_NETWORK_FEE = "pay_network_fee"
    WRITE_OFF_CREDIT = "write_off_credit"
    ADJUST = "adjust"
    CLOSE_PERIOD = "close_period"


class HoldKind(str, enum.Enum):
    HOLD = "hold"
    ESCROW = "escrow"


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    amount_micros: int  # beancount sign: positive debits the account
    currency: str = CURRENCY
    reference: str | None = None  # the hold/escrow reference this posting moves

    def negated(self) -> "Posting":
        return replace(self, amount_micros=-self.amount_micros)


@dataclass(frozen=True, slots=True)
class AgentFlow:
    """How one transaction moves an agent's lifetime totals (and marks it involved)."""

    agent: str
    total_in_micros: int = 0
    total_out_micros: int = 0

    def negated(self) -> "AgentFlow":
        return AgentFlow(self.agent, -self.total_in_micros, -self.total_out_micros)


@dataclass(frozen=True, slots=True)
class HoldEffect:
    """How one transaction changes a hold's or an escrow's per-reference state."""

    kind: HoldKind
    agent: str
    reference: str
    amount_micros: int = 0  # set when the reference is created
    remaining_micros: int = 0
    credit_micros: int = 0  # credit still inside the reference
    confirmed_micros: int = 0  # confirmed, settled or released to a seller
    released_micros: int = 0  # returned to the agent
    expires_at: datetime | None = None
    creates: bool = False

    def negated(self) -> "HoldEffect":
        return replace(
            self,
            amount_micros=-self.amount_micros,
            remaining_micros=-self.remaining_micros,
            credit_micros=-self.credit_micros,
            confirmed_micros=-self.confirmed_micros,
            released_micros=-self.released_micros,
            expires_at=None,
            creates=False,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "agent": self.agent,
            "reference": self.reference,
            "amount": self.amount_micros,
            "remaining": self.remaining_micros,
            "credit": self.credit_micros,
            "confirmed": self.confirmed_micros,
            "released": self.released_micros,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "creates": self.creates,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "HoldEffect":
        return cls(
            kind=HoldKind(data["kind"]),
            agent=data["agent"],
            reference=data["reference"],
            amount_micros=data["amount"],
            remaining_micros=data["remaining"],
            credit_micros=data["credit"],
            confirmed_micros=data["confirmed"],
            released_micros=data["released"],
            expires_at=datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None,
            creates=data.get("creates", False),
        )


@dataclass(frozen=True, slots=True)
class TransactionDraft:
    kind: Kind
    agent: str | None
    amount_micros: int
    postings: tuple[Posting, ...]
    flows: tuple[AgentFlow, ...] = ()
    hold_effects: tuple[HoldEffect, ...] = ()
    counterparty: str | None = None
    reference: str | None = None
    tx_hash: str | None = None
    memo: str | None = None
    credit_limit_micros: int | None = None  # set_credit_limit events only
    reverses_seq: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_balanced(self.postings)

    def agents(self) -> tuple[str, ...]:
        return tuple(sorted({f.agent for f in self.flows}))


def check_balanced(postings: tuple[Posting, ...]) -> None:
    """Every transaction sums to zero per currency and has no empty posting."""
    sums: dict[str, int] = {}
    for p in postings:
        if p.amount_micros == 0:
            raise InvariantViolation(f"zero posting to {p.account}")
        sums[p.currency] = sums.get(p.currency, 0) + p.amount_micros
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        raise InvariantViolation(f"postings do not balance: {unbalanced}")


@dataclass(frozen=True, slots=True)
class Transaction:
    """A recorded journal transaction."""

    seq: int
    id: str
    occurred_at: datetime
    kind: Kind
    agent: str | None
    counterparty: str | None
    amount_micros: int
    reference: str | None
    tx_hash: str | None
    memo: str | None
    postings: tuple[Posting, ...]
    flows: tuple[AgentFlow, ...]
    hold_effects: tuple[HoldEffect, ...]
    credit_limit_micros: int | None
    reverses_seq: int | None
    metadata: Mapping[str, Any]
    prev_hash: str
    hash: str
    replayed: bool = False  # True when an idempotent retry returned this earlier result

    def movement_micros(self, agent: str) -> int:
        """How much of this transaction is ``agent``'s own movement, for its history line.

        The transaction's primary agent sees the transaction's amount; another party sees what
        moved its own totals (the seller of a settled hold its amount less the fee, the seller
        of a partial escrow settlement its share), as a magnitude.
        """
        if agent == self.agent:
            return self.amount_micros
        moved = sum(abs(f.total_in_micros) + abs(f.total_out_micros) for f in self.flows if f.agent == agent)
        return moved or self.amount_micros


@dataclass(frozen=True, slots=True)
class AgentState:
    """The slice of an agent's books an operation's guard needs (display signs)."""

    agent: str
    available_micros: int = 0
    pending_micros: int = 0
    escrowed_micros: int = 0
    credit_used_micros: int = 0
    credit_limit_micros: int = 0
    total_in_micros: int = 0
    total_out_micros: int = 0

    @property
    def credit_headroom_micros(self) -> int:
        return max(0, self.credit_limit_micros - self.credit_used_micros)

    @property
    def spendable_micros(self) -> int:
        return self.available_micros + self.credit_headroom_micros

    def amounts(self) -> tuple[int, int, int, int, int, int, int]:
        """Every amount, in field order (available ... total_out): ``agent_state_history``'s columns."""
        return (self.available_micros, self.pending_micros, self.escrowed_micros, self.credit_used_micros,
                self.credit_limit_micros, self.total_in_micros, self.total_out_micros)


@dataclass(frozen=True, slots=True)
class HoldState:
    kind: HoldKind
    agent: str
    reference: str
    amount_micros: int
    remaining_micros: int
    credit_micros: int
    confirmed_micros: int
    released_micros: int
    expires_at: datetime | None
    created_seq: int


@dataclass(frozen=True, slots=True)
class Balance:
    """The seed's Balance, amounts as 6-place Decimals."""

    agent_addr: str
    available: Decimal
    pending: Decimal
    escrowed: Decimal
    credit_limit: Decimal
    credit_used: Decimal
    total_in: Decimal
    total_out: Decimal
    updated_at: datetime | None
    as_of_seq: int

    @classmethod
    def of(cls, state: AgentState, updated_at: datetime | None, seq: int) -> "Balance":
        return cls(
            agent_addr=state.agent,
            available=to_decimal(state.available_micros),
            pending=to_decimal(state.pending_micros),
            escrowed=to_decimal(state.escrowed_micros),
            credit_limit=to_decimal(state.credit_limit_micros),
            credit_used=to_decimal(state.credit_used_micros),
            total_in=to_decimal(state.total_in_micros),
            total_out=to_decimal(state.total_out_micros),
            updated_at=updated_at,
            as_of_seq=seq,
        )


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a write would record now (``dry_run=True``); nothing was written and no key claimed.

    ``drafts``: the transactions, in order, as the real call would record them (sequence, time and
    hash are given only when recording). ``balances``: each involved agent after them, as of the
    journal head ``as_of_seq`` the plan was made against. ``replayed``: the idempotency key already
    has this answer (the drafts are its recorded transactions).
    """

    drafts: tuple[TransactionDraft, ...]
    balances: Mapping[str, Balance]
    as_of_seq: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """The transaction listing's filters, all optional and combined with AND (``find_transactions``).

    ``agent``: transactions involving it (its own or as counterparty); the sequence bounds are
    inclusive; ``from_time``/``to_time`` an inclusive time range; amounts in micro-units;
    ``meta_key`` (and ``meta_value``) a caller's metadata pair.
    """

    agent: str | None = None
    kind: str | None = None
    reference: str | None = None
    tx_hash: str | None = None
    from_seq: int | None = None
    to_seq: int | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None
    min_amount_micros: int | None = None
    max_amount_micros: int | None = None
    meta_key: str | None = None
    meta_value: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionPage:
    """One page of a transaction listing; ``next_cursor`` (a journal sequence) asks for the next, None at the end."""

    transactions: list[Transaction]
    next_cursor: int | None


def draft_of(tx: Transaction) -> TransactionDraft:
    """A recorded transaction's draft: what its operation decided."""
    return TransactionDraft(
        kind=tx.kind, agent=tx.agent, amount_micros=tx.amount_micros, postings=tx.postings, flows=tx.flows,
        hold_effects=tx.hold_effects, counterparty=tx.counterparty, reference=tx.reference, tx_hash=tx.tx_hash,
        memo=tx.memo, credit_limit_micros=tx.credit_limit_micros, reverses_seq=tx.reverses_seq,
        metadata=tx.metadata,
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of an agent's history (the seed's Entry)."""

    id: str
    seq: int
    agent_addr: str
    type: str
    amount: Decimal
    tx_hash: str | None
    reference: str | None
    description: str | None
    created_at: datetime
    counterparty: str | None = None


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """What an admin says about an agent: a display name and free-form metadata (not money)."""

    agent_addr: str
    display_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The display name when there is one, else the address."""
        return self.display_name or self.agent_addr
