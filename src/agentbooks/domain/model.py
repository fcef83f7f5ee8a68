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
from .money import CURRENCY


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
