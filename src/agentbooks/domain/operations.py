"""Operations → postings: the model's table (model.md, section 3) as code.

Each operation is an immutable request with validated fields. ``plan`` is a
pure function of the current state of the agents and references it touches
(``PlanContext``) and either returns one balanced ``TransactionDraft`` or
raises a typed error. The storage layer loads the context under the right
locks and records the draft; it never decides money movements itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, Mapping

from . import accounts as acct
from .errors import (
    AgentAccountNotAdjustable,
    AlreadyReversed,
    DuplicateEntry,
    InvalidAccount,
    PeriodAlreadyClosed,
    PeriodNotComplete,
    CreditLimitBelowUsed,
    DuplicateDeposit,
    DuplicateRefund,
    DuplicateWithdrawal,
    IdempotencyConflict,
    LedgerError,
    ReferenceInUse,
    CreditLimitExceeded,
    EscrowExceeded,
    HoldExceeded,
    HoldExpired,
    InsufficientBalance,
    InvalidArgument,
    InvalidTimestamp,
    NoOutstandingCredit,
    NotReversible,
    RefundExceedsPaid,
    UnknownEscrow,
    UnknownHold,
    SuspenseSettled,
)
from .model import (
    AgentFlow,
    AgentState,
    HoldEffect,
    HoldKind,
    HoldState,
    Kind,
    Posting,
    Transaction,
    TransactionDraft,
)

HoldKey = tuple[HoldKind, str, str]  # (kind, agent, reference)


@dataclass(frozen=True, slots=True)
class UniqueKey:
    """A natural key an operation may use once (scope, key), and the error a reuse raises."""

    scope: str
    key: str
    error: type[LedgerError] = IdempotencyConflict


@dataclass(frozen=True)
class PlanContext:
    now: datetime
    agents: Mapping[str, AgentState]
    holds: Mapping[HoldKey, HoldState | None] = field(default_factory=dict)
    original: Transaction | None = None  # the transaction a reversal negates

    def agent(self, address: str) -> AgentState:
        return self.agents.get(address) or AgentState(address)


CLIENT_METADATA_KEY = "client"  # the transaction metadata member holding the caller's own key/value pairs
ClientMetadata = tuple[tuple[str, str], ...]  # sorted (key, value) pairs: hashable, like the operation


@dataclass(frozen=True)
class Operation:
    """Base of every ledger operation.

    ``client_metadata``: the caller's own string pairs (an order id, a session), validated at the
    edge (``requests.check_client_metadata``); recorded under ``metadata["client"]``, inside the
    hash chain, and part of the request's fingerprint.
    """

    kind: ClassVar[Kind]
    client_metadata: ClientMetadata = field(default=(), kw_only=True)

    def involved_agents(self) -> tuple[str, ...]:
        raise NotImplementedError

    def hold_keys(self) -> tuple[HoldKey, ...]:
        return ()

    def unique_key(self) -> UniqueKey | None:
        return None

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        raise NotImplementedError

    def planned(self, ctx: PlanContext) -> TransactionDraft:
        """``plan``, with the caller's metadata added to the draft's."""
        draft = self.plan(ctx)
        if not self.client_metadata:
            return draft
        return replace(draft, metadata={**draft.metadata, CLIENT_METADATA_KEY: dict(self.client_metadata)})

    def fingerprint(self) -> dict[str, Any]:
        """A stable description of the request, compared on idempotent retries."""
        out: dict[str, Any] = {"op": self.kind.value}
        for name in self.__dataclass_fields__:  # type: ignore[attr-defined]
            value = getattr(self, name)
            if name == "client_metadata" and not value:
                continue  # absent metadata leaves the fingerprints keys were stored with unchanged
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


class AgentOperation(Operation):
    """An operation on one agent's money (``self.agent``)."""

    agent: str

    def involved_agents(self) -> tuple[str, ...]:
        return (self.agent,)


class HoldOperation(AgentOperation):
    """An operation on one of the agent's holds (``self.reference``)."""

    reference: str

    def hold_keys(self) -> tuple[HoldKey, ...]:
        return ((HoldKind.HOLD, self.agent, self.reference),)


class EscrowOperation(AgentOperation):
    """An operation on one of the agent's escrows (``self.reference``)."""

    reference: str

    def hold_keys(self) -> tuple[HoldKey, ...]:
        return ((HoldKind.ESCROW, self.agent, self.reference),)


class BuyerSellerOperation(Operation):
    """Money from a buyer's hold or escrow (``held_in``, ``self.reference``) to a seller."""

    held_in: ClassVar[HoldKind]
    buyer: str
    seller: str
    reference: str

    def involved_agents(self) -> tuple[str, ...]:
        return tuple(sorted({self.buyer, self.seller}))

    def hold_keys(self) -> tuple[HoldKey, ...]:
        return ((self.held_in, self.buyer, self.reference),)


# --- shared posting shapes -------------------------------------------------


def inflow(state: AgentState, amount_micros: int) -> list[Posting]:
    """Money arriving in an agent's Available: outstanding credit is repaid first."""
    repay = min(amount_micros, state.credit_used_micros)
    postings = []
    if repay:
        postings.append(Posting(acct.credit(state.agent), -repay))
    if amount_micros - repay:
        postings.append(Posting(acct.available(state.agent), -(amount_micros - repay)))
    return postings


def outflow(state: AgentState, amount_micros: int) -> tuple[list[Posting], int]:
    """Money leaving Available, drawing the shortfall from the credit line.

    Returns the postings and the part drawn from credit.
    """
    own = min(amount_micros, state.available_micros)
    gap = amount_micros - own
    if gap > state.credit_headroom_micros:
        error = CreditLimitExceeded if state.credit_limit_micros else InsufficientBalance
        raise error(
            f"{state.agent} can spend {state.spendable_micros} micro-USDC, not {amount_micros}",
            agent=state.agent,
            requested_micros=amount_micros,
            spendable_micros=state.spendable_micros,
        )
    postings = []
    if own:
        postings.append(Posting(acct.available(state.agent), own))
    if gap:
        postings.append(Posting(acct.credit(state.agent), gap))
    return postings, gap


def require_available(state: AgentState, amount_micros: int) -> None:
    if state.available_micros < amount_micros:
        raise InsufficientBalance(
            f"{state.agent} has {state.available_micros} micro-USDC available, not {amount_micros}",
            agent=state.agent,
            requested_micros=amount_micros,
            available_micros=state.available_micros,
        )


def require_new_reference(ctx: PlanContext, key: HoldKey) -> None:
    """A hold or escrow reference names one lock of funds, once per agent."""
    if ctx.holds.get(key) is not None:
        kind, agent, reference = key
        raise ReferenceInUse(f"{kind.value} reference {reference!r} is already used by {agent}",
                             agent=agent, reference=reference)


def open_hold(ctx: PlanContext, key: HoldKey, amount_micros: int) -> HoldState:
    """The live state of a hold or escrow reference, or a typed not-found error."""
    hold = ctx.holds.get(key)
    kind, agent, reference = key
    if hold is None:
        error = UnknownHold if kind is HoldKind.HOLD else UnknownEscrow
        raise error(f"no {kind.value} {reference!r} for {agent}", agent=agent, reference=reference)
    if amount_micros > hold.remaining_micros:
        error = HoldExceeded if kind is HoldKind.HOLD else EscrowExceeded
        raise error(
            f"{kind.value} {reference!r} has {hold.remaining_micros} micro-USDC left, not {amount_micros}",
            agent=agent,
            reference=reference,
            remaining_micros=hold.remaining_micros,
            requested_micros=amount_micros,
        )
    return hold


def consume_hold(hold: HoldState, amount_micros: int, now: datetime) -> HoldEffect:
    """Confirm/settle part of a hold: the agent's own funds are consumed before credit."""
    if hold.expires_at is not None and hold.expires_at <= now:
        raise HoldExpired(
            f"hold {hold.reference!r} expired at {hold.expires_at.isoformat()}",
            agent=hold.agent,
            reference=hold.reference,
        )
    own_left = hold.remaining_micros - hold.credit_micros
    credit_consumed = max(0, amount_micros - own_left)
    return HoldEffect(
        HoldKind.HOLD,
        hold.agent,
        hold.reference,
        remaining_micros=-amount_micros,
        credit_micros=-credit_consumed,
        confirmed_micros=amount_micros,
    )


# --- the operations ---------------------------------------------------------


def chain_metadata(chain_id: int, log_index: int, block_number: int | None = None, block_hash: str | None = None,
                   destination: str | None = None) -> dict[str, Any]:
    """Where a transfer was mined, as a transaction's metadata (hashed): the facts given, nothing else."""
    meta: dict[str, Any] = {"chain_id": chain_id, "log_index": log_index}
    for name, value in (("block_number", block_number), ("block_hash", block_hash), ("destination", destination)):
        if value is not None:
            meta[name] = value
    return meta


class ChainOperation(AgentOperation):
    """An operation that records an on-chain transfer; its optional later fields stay out of the
    request fingerprint while unset, so a retry of a request made before they existed still matches."""

    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ("block_number", "block_hash", "destination")

    def fingerprint(self) -> dict[str, Any]:
        out = super().fingerprint()
        for name in self.OPTIONAL_FIELDS:
            if out.get(name, 0) is None:
                del out[name]
        return out


@dataclass(frozen=True)
class Deposit(ChainOperation):
    kind: ClassVar[Kind] = Kind.DEPOSIT
    agent: str
    amount_micros: int
    tx_hash: str
    chain_id: int = 0
    log_index: int = 0
    block_number: int | None = None
    block_hash: str | None = None

    def unique_key(self) -> UniqueKey:
        return UniqueKey("deposit", deposit_key(self.chain_id, self.tx_hash, self.log_index), DuplicateDeposit)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        return TransactionDraft(
            kind=self.kind,
            agent=self.agent,
            amount_micros=a,
            postings=(Posting(acct.TREASURY, a), *inflow(ctx.agent(self.agent), a)),
            flows=(AgentFlow(self.agent, total_in_micros=a),),
            tx_hash=self.tx_hash,
            metadata=chain_metadata(self.chain_id, self.log_index, self.block_number, self.block_hash),
        )


@dataclass(frozen=True)
class Withdraw(ChainOperation):
    """Money sent on chain to ``destination`` (the agent's own address when not given).

    Keyed on (chain id, tx hash, log index): a batched payout, one transaction
    paying several agents, is one withdrawal per ``Transfer`` log.
    """

    kind: ClassVar[Kind] = Kind.WITHDRAW
    agent: str
    amount_micros: int
    tx_hash: str
    chain_id: int = 0
    log_index: int = 0
    destination: str | None = None
    block_number: int | None = None
    block_hash: str | None = None

    def unique_key(self) -> UniqueKey:
        return UniqueKey("withdraw", f"{self.chain_id}:{self.tx_hash}:{self.log_index}", DuplicateWithdrawal)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        require_available(ctx.agent(self.agent), a)  # never from credit
        return TransactionDraft(
            kind=self.kind,
            agent=self.agent,
            amount_micros=a,
            postings=(Posting(acct.available(self.agent), a), Posting(acct.TREASURY, -a)),
            flows=(AgentFlow(self.agent, total_out_micros=a),),
            tx_hash=self.tx_hash,
            metadata=chain_metadata(self.chain_id, self.log_index, self.block_number, self.block_hash,
                                    self.destination),
        )


@dataclass(frozen=True)
class Spend(AgentOperation):
    kind: ClassVar[Kind] = Kind.SPEND
    agent: str
    amount_micros: int
    session_key_id: str

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        postings, gap = outflow(ctx.agent(self.agent), a)
        return TransactionDraft(
            kind=self.kind,
            agent=self.agent,
            amount_micros=a,
            postings=(*postings, Posting(acct.TREASURY, -a)),
            flows=(AgentFlow(self.agent, total_out_micros=a),),
            reference=self.session_key_id,
            metadata={"credit_drawn": gap} if gap else {},
        )


@dataclass(frozen=True)
class Hold(HoldOperation):
    kind: ClassVar[Kind] = Kind.HOLD
    agent: str
    amount_micros: int
    reference: str
    expires_at: datetime | None = None
    allow_credit: bool = True  # False for withdrawals: money leaving the platform is never borrowed

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        require_new_reference(ctx, self.hold_keys()[0])
        if self.expires_at is not None and self.expires_at <= ctx.now:
            raise InvalidTimestamp("expires_at must be in the future", field="expires_at")
        if not self.allow_credit:
            require_available(ctx.agent(self.agent), a)
        postings, gap = outflow(ctx.agent(self.agent), a)
        return TransactionDraft(
            kind=self.kind,
            agent=self.agent,
            amount_micros=a,
            postings=(*postings, Posting(acct.pending(self.agent), -a, reference=self.reference)),
            flows=(AgentFlow(self.agent),),
            hold_effects=(
                HoldEffect(
                    HoldKind.HOLD,
                    self.agent,
                    self.reference,
                    amount_micros=a,
                    remaining_micros=a,
                    credit_micros=gap,
                    expires_at=self.expires_at,
                    creates=True,
                ),
            ),
            reference=self.reference,
            metadata={"credit_drawn": gap} if gap else {},
        )


@dataclass(frozen=True)
class ConfirmHold(HoldOperation, ChainOperation):
    """The held transfer went out on chain: the money leaves the platform (where to, when given)."""

    kind: ClassVar[Kind] = Kind.CONFIRM_HOLD
    agent: str
    amount_micros: int
    reference: str
    tx_hash: str | None = None
    chain_id: int | None = None
    log_index: int | None = None
    destination: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ("chain_id", "log_index", *ChainOperation.OPTIONAL_FIELDS)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        hold = open_hold(ctx, self.hold_keys()[0], a)
        return TransactionDraft(
            kind=self.kind,
            agent=self.agent,
            amount_micros=a,
            postings=(
                Posting(acct.pending(self.agent), a, reference=self.reference),
                Posting(acct.TREASURY, -a),
            ),
            flows=(AgentFlow(self.agent, total_out_micros=a),),
            hold_effects=(consume_hold(hold, a, ctx.now),),
            reference=self.reference,
            tx_hash=self.tx_hash,
            metadata=self._chain_metadata(),
        )

    def _chain_metadata(self) -> dict[str, Any]:
        if self.tx_hash is None or (self.chain_id is None and self.log_index is None and self.destination is None
                                    and self.block_number is None):
            return {}  # a confirmation that names no on-chain transfer, as before
        return chain_metadata(self.chain_id or 0, self.log_index or 0, self.block_number, self.block_hash,
                              self.destination)


@dataclass(frozen=True)
class ReleaseHold(HoldOperation):
    """The held transfer failed: the money returns, credit first."""

    kind: ClassVar[Kind] = Kind.RELEASE_HOLD
    agent: str
    amount_micros: int
    reference: str
    reason: str | None = None

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        hold = open_hold(ctx, self.hold_keys()[0], a)
        state = ctx.agent(self.agent)
        credit_in_ref = min(a, hold.credit_micros)
        # A deposit may already have repaid the credit this hold drew.
        repay = min(credit_in_ref, state.credit_used_micros)
        postings = [Posting(acct.pending(self.agent), a, reference=self.reference)]
        if repay:
            postings.append(Posting(acct.credit(self.agent), -repay))
        if a - repay:
            postings.append(Posting(acct.available(self.agent), -(a - repay)))
        return TransactionDraft(
            kind=self.kind,
            agent=self.agent,
            amount_micros=a,
            postings=tuple(postings),
            flows=(AgentFlow(self.agent),),
            hold_effects=(
                HoldEffect(
                    HoldKind.HOLD,
                    self.agent,
                    self.reference,
                    remaining_micros=-a,
                    credit_micros=-credit_in_ref,
                    released_micros=a,
                ),
            ),
            reference=self.reference,
            memo=self.reason,
        )


@dataclass(frozen=True)
class SettleHold(BuyerSellerOperation):
    """Pay a seller from the buyer's hold, the platform keeping an optional fee."""

    held_in: ClassVar[HoldKind] = HoldKind.HOLD
    kind: ClassVar[Kind] = Kind.SETTLE_HOLD
    buyer: str
    seller: str
    amount_micros: int
    reference: str
    fee_micros: int = 0

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a, fee = self.amount_micros, self.fee_micros
        if self.buyer == self.seller:
            raise InvalidArgument("buyer and seller must differ", field="seller")
        if fee > a:
            raise InvalidArgument("fee cannot exceed the settled amount", field="fee")
        hold = open_hold(ctx, self.hold_keys()[0], a)
        postings = [Posting(acct.pending(self.buyer), a, reference=self.reference)]
        postings += inflow(ctx.agent(self.seller), a - fee) if a - fee else []
        if fee:
            postings.append(Posting(acct.FEES, -fee))
        return TransactionDraft(
            kind=self.kind,
            agent=self.buyer,
            counterparty=self.seller,
            amount_micros=a,
            postings=tuple(postings),
            flows=(
                AgentFlow(self.buyer, total_out_micros=a),
                AgentFlow(self.seller, total_in_micros=a - fee),
            ),
            hold_effects=(consume_hold(hold, a, ctx.now),),
            reference=self.reference,
            metadata={"fee": fee} if fee else {},
        )


@dataclass(frozen=True)
class EscrowLock(EscrowOperation):
    kind: ClassVar[Kind] = Kind.ESCROW_LOCK
    agent: str
    amount_micros: int
    reference: str

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        require_new_reference(ctx, self.hold_keys()[0])
        require_available(ctx.agent(self.agent), a)  # buyer protection is never on credit
        return TransactionDraft(
            kind=self.kind,
            agent=self.agent,
            amount_micros=a,
            postings=(
                Posting(acct.available(self.agent), a),
                Posting(acct.escrowed(self.agent), -a, reference=self.reference),
            ),
            flows=(AgentFlow(self.agent),),
            hold_effects=(
                HoldEffect(
                    HoldKind.ESCROW, self.agent, self.reference,
                    amount_micros=a, remaining_micros=a, creates=True,
                ),
            ),
            reference=self.reference,
        )


def _escrow_out(
    ctx: PlanContext, buyer: str, reference: str, to_seller: tuple[str, int] | None, refund_micros: int
) -> tuple[list[Posting], list[AgentFlow], HoldEffect]:
    """Postings moving an escrow's money to a seller and/or back to the buyer."""
    seller_micros = to_seller[1] if to_seller else 0
    total = seller_micros + refund_micros
    open_hold(ctx, (HoldKind.ESCROW, buyer, reference), total)
    postings = [Posting(acct.escrowed(buyer), total, reference=reference)]
    flows = [AgentFlow(buyer, total_out_micros=seller_micros)]
    if to_seller and seller_micros:
        postings += inflow(ctx.agent(to_seller[0]), seller_micros)
        if to_seller[0] == buyer:  # released to the buyer itself: paid out and received, as the original
            flows = [AgentFlow(buyer, total_in_micros=seller_micros, total_out_micros=seller_micros)]
        else:
            flows.append(AgentFlow(to_seller[0], total_in_micros=seller_micros))
    if refund_micros:
        postings += inflow(ctx.agent(buyer), refund_micros)
    effect = HoldEffect(
        HoldKind.ESCROW, buyer, reference,
        remaining_micros=-total, confirmed_micros=seller_micros, released_micros=refund_micros,
    )
    return postings, flows, effect


@dataclass(frozen=True)
class ReleaseEscrow(BuyerSellerOperation):
    held_in: ClassVar[HoldKind] = HoldKind.ESCROW
    kind: ClassVar[Kind] = Kind.RELEASE_ESCROW
    buyer: str
    seller: str
    amount_micros: int
    reference: str

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        # buyer == seller is accepted, as the original did: the escrow returns to Available.
        postings, flows, effect = _escrow_out(
            ctx, self.buyer, self.reference, (self.seller, self.amount_micros), 0
        )
        return TransactionDraft(
            kind=self.kind, agent=self.buyer, counterparty=self.seller,
            amount_micros=self.amount_micros, postings=tuple(postings), flows=tuple(flows),
            hold_effects=(effect,), reference=self.reference,
        )


@dataclass(frozen=True)
class RefundEscrow(EscrowOperation):
    kind: ClassVar[Kind] = Kind.REFUND_ESCROW
    agent: str
    amount_micros: int
    reference: str

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        postings, flows, effect = _escrow_out(ctx, self.agent, self.reference, None, self.amount_micros)
        return TransactionDraft(
            kind=self.kind, agent=self.agent, amount_micros=self.amount_micros,
            postings=tuple(postings), flows=tuple(flows), hold_effects=(effect,),
            reference=self.reference,
        )


@dataclass(frozen=True)
class SettleEscrow(BuyerSellerOperation):
    """Partial settle: pay the seller part of an escrow and refund the buyer the rest."""

    held_in: ClassVar[HoldKind] = HoldKind.ESCROW
    kind: ClassVar[Kind] = Kind.SETTLE_ESCROW
    buyer: str
    seller: str
    seller_amount_micros: int
    reference: str

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        if self.buyer == self.seller:
            raise InvalidArgument("buyer and seller must differ", field="seller")
        hold = open_hold(ctx, self.hold_keys()[0], self.seller_amount_micros)
        if hold.remaining_micros == 0:
            raise EscrowExceeded(f"escrow {self.reference!r} has nothing left to settle",
                                 agent=self.buyer, reference=self.reference, remaining_micros=0)
        refund = hold.remaining_micros - self.seller_amount_micros
        postings, flows, effect = _escrow_out(
            ctx, self.buyer, self.reference, (self.seller, self.seller_amount_micros), refund
        )
        return TransactionDraft(
            kind=self.kind, agent=self.buyer, counterparty=self.seller,
            amount_micros=hold.remaining_micros, postings=tuple(postings), flows=tuple(flows),
            hold_effects=(effect,), reference=self.reference,
            metadata={"to_seller": self.seller_amount_micros, "refunded": refund},
        )


@dataclass(frozen=True)
class Refund(AgentOperation):
    """A transfer failed after the money left: the platform credits it back."""

    kind: ClassVar[Kind] = Kind.REFUND
    agent: str
    amount_micros: int
    reference: str

    def unique_key(self) -> UniqueKey:
        return UniqueKey("refund", f"{self.agent}:{self.reference}", DuplicateRefund)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        state = ctx.agent(self.agent)
        if a > state.total_out_micros:  # a refund never creates money
            raise RefundExceedsPaid(
                f"{self.agent} has paid out {state.total_out_micros} micro-USDC, cannot refund {a}",
                agent=self.agent, requested_micros=a, paid_out_micros=state.total_out_micros,
            )
        return TransactionDraft(
            kind=self.kind, agent=self.agent, amount_micros=a,
            postings=(Posting(acct.TREASURY, a), *inflow(state, a)),
            flows=(AgentFlow(self.agent, total_out_micros=-a),),
            reference=self.reference,
        )


@dataclass(frozen=True)
class SetCreditLimit(AgentOperation):
    kind: ClassVar[Kind] = Kind.SET_CREDIT_LIMIT
    agent: str
    limit_micros: int

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        state = ctx.agent(self.agent)
        if self.limit_micros < state.credit_used_micros:
            raise CreditLimitBelowUsed(
                f"{self.agent} has {state.credit_used_micros} micro-USDC of credit in use",
                agent=self.agent, credit_used_micros=state.credit_used_micros,
            )
        return TransactionDraft(
            kind=self.kind, agent=self.agent, amount_micros=self.limit_micros, postings=(),
            flows=(AgentFlow(self.agent),), credit_limit_micros=self.limit_micros,
            metadata={"previous_limit": state.credit_limit_micros},
        )


@dataclass(frozen=True)
class UseCredit(AgentOperation):
    kind: ClassVar[Kind] = Kind.USE_CREDIT
    agent: str
    amount_micros: int

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        state = ctx.agent(self.agent)
        if state.credit_used_micros + a > state.credit_limit_micros:
            raise CreditLimitExceeded(
                f"{self.agent} has {state.credit_headroom_micros} micro-USDC of credit left, not {a}",
                agent=self.agent, headroom_micros=state.credit_headroom_micros, requested_micros=a,
            )
        return TransactionDraft(
            kind=self.kind, agent=self.agent, amount_micros=a,
            postings=(Posting(acct.credit(self.agent), a), Posting(acct.available(self.agent), -a)),
            flows=(AgentFlow(self.agent),),
        )


@dataclass(frozen=True)
class RepayCredit(AgentOperation):
    kind: ClassVar[Kind] = Kind.REPAY_CREDIT
    agent: str
    amount_micros: int

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        state = ctx.agent(self.agent)
        if state.credit_used_micros == 0:
            raise NoOutstandingCredit(f"{self.agent} has no credit to repay", agent=self.agent)
        repay = min(self.amount_micros, state.credit_used_micros)
        require_available(state, repay)
        return TransactionDraft(
            kind=self.kind, agent=self.agent, amount_micros=repay,
            postings=(Posting(acct.available(self.agent), repay), Posting(acct.credit(self.agent), -repay)),
            flows=(AgentFlow(self.agent),),
            metadata={"requested": self.amount_micros} if repay != self.amount_micros else {},
        )


@dataclass(frozen=True)
class Transfer(Operation):
    """An agent pays another agent inside the platform (credit may fund it, like a spend)."""

    kind: ClassVar[Kind] = Kind.TRANSFER
    from_agent: str
    to_agent: str
    amount_micros: int
    reference: str

    def involved_agents(self) -> tuple[str, ...]:
        return tuple(sorted({self.from_agent, self.to_agent}))

    def unique_key(self) -> UniqueKey:
        return UniqueKey("transfer", f"{self.from_agent}:{self.reference}", ReferenceInUse)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        if self.from_agent == self.to_agent:
            raise InvalidArgument("cannot transfer to the same agent", field="to_agent")
        a = self.amount_micros
        out_postings, gap = outflow(ctx.agent(self.from_agent), a)
        return TransactionDraft(
            kind=self.kind, agent=self.from_agent, counterparty=self.to_agent, amount_micros=a,
            postings=(*out_postings, *inflow(ctx.agent(self.to_agent), a)),
            flows=(
                AgentFlow(self.from_agent, total_out_micros=a),
                AgentFlow(self.to_agent, total_in_micros=a),
            ),
            reference=self.reference,
            metadata={"credit_drawn": gap} if gap else {},
        )


@dataclass(frozen=True)
class Reverse(Operation):
    """The exact negation of a recorded transaction, linked to it, at most once."""

    kind: ClassVar[Kind] = Kind.REVERSAL
    transaction_id: str
    reason: str
    # Filled in by the service once it has loaded the original under lock.
    original_agents: tuple[str, ...] = ()
    original_holds: tuple[HoldKey, ...] = ()
    original_seq: int | None = None

    def involved_agents(self) -> tuple[str, ...]:
        return self.original_agents

    def hold_keys(self) -> tuple[HoldKey, ...]:
        return self.original_holds

    def unique_key(self) -> UniqueKey | None:
        return UniqueKey("reversal", str(self.original_seq), AlreadyReversed) if self.original_seq is not None else None

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        original = ctx.original
        if original is None:
            raise InvalidArgument("reversal planned without its original")
        if original.kind in (Kind.REVERSAL, Kind.SET_CREDIT_LIMIT, Kind.CLOSE_PERIOD):
            raise NotReversible(
                f"a {original.kind.value} cannot be reversed; record a new transaction instead",
                transaction_id=original.id,
            )
        return TransactionDraft(
            kind=self.kind,
            agent=original.agent,
            counterparty=original.counterparty,
            amount_micros=original.amount_micros,
            postings=tuple(p.negated() for p in original.postings),
            flows=tuple(f.negated() for f in original.flows),
            hold_effects=tuple(e.negated() for e in original.hold_effects),
            reference=original.reference,
            memo=self.reason,
            reverses_seq=original.seq,
            metadata={"reverses": original.id, "reversed_kind": original.kind.value},
        )


# --- the platform's own books (model.md, section 5) ------------------------------


class PlatformOperation(Operation):
    """An entry in the platform's own books: capital, opening balances, expenses, adjustments, closes."""

    def involved_agents(self) -> tuple[str, ...]:
        return ()


def _treasury_entry(kind: Kind, amount_micros: int, account: str, *, into_treasury: bool,
                    **fields: Any) -> TransactionDraft:
    """USDC into the treasury from ``account`` (capital), or out of it to ``account`` (an expense)."""
    moved = amount_micros if into_treasury else -amount_micros
    return TransactionDraft(kind=kind, agent=None, amount_micros=amount_micros,
                            postings=(Posting(acct.TREASURY, moved), Posting(account, -moved)), **fields)


@dataclass(frozen=True)
class ContributeCapital(PlatformOperation):
    """Owners put USDC into the treasury: the capital that funds credit lines."""

    kind: ClassVar[Kind] = Kind.CONTRIBUTE_CAPITAL
    amount_micros: int
    reference: str
    memo: str | None = None

    def unique_key(self) -> UniqueKey:
        return UniqueKey("capital", self.reference, DuplicateEntry)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        return _treasury_entry(self.kind, self.amount_micros, acct.CAPITAL, into_treasury=True,
                               reference=self.reference, memo=self.memo)


@dataclass(frozen=True)
class OpeningBalance(Operation):
    """One balance brought over from an existing ledger, against ``Equity:Opening``.

    ``amount_micros`` is the balance as a person reads it: what the treasury
    holds, what the platform owes an agent. An agent's opening balance is an
    inflow (``totalIn``), so its identity holds from the first transaction;
    only ``Available`` can be opened (pending and escrowed money needs its hold).
    """

    kind: ClassVar[Kind] = Kind.OPENING_BALANCE
    account: str
    amount_micros: int
    reference: str

    def _info(self) -> acct.AccountInfo:
        info = acct.parse_account(self.account)
        if info.agent is not None and info.bucket is not acct.AgentBucket.AVAILABLE:
            raise AgentAccountNotAdjustable(
                f"{self.account} cannot be opened: only an agent's Available takes an opening balance",
                account=self.account)
        if self.account == acct.OPENING:
            raise InvalidAccount("Equity:Opening is the other side of every opening balance", account=self.account)
        return info

    def involved_agents(self) -> tuple[str, ...]:
        info = self._info()
        return (info.agent,) if info.agent else ()

    def unique_key(self) -> UniqueKey:
        return UniqueKey("opening", f"{self.account}:{self.reference}", DuplicateEntry)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        info, a = self._info(), self.amount_micros
        if info.agent is not None:
            postings = inflow(ctx.agent(info.agent), a)
            flows: tuple[AgentFlow, ...] = (AgentFlow(info.agent, total_in_micros=a),)
        else:
            postings, flows = [Posting(self.account, info.display_sign * a)], ()
        return TransactionDraft(
            kind=self.kind, agent=info.agent, amount_micros=a,
            postings=(*postings, Posting(acct.OPENING, -sum(p.amount_micros for p in postings))),
            flows=flows, reference=self.reference, metadata={"account": self.account},
        )


@dataclass(frozen=True)
class PayNetworkFee(PlatformOperation):
    """USDC the platform paid to move money on chain (a paymaster's or a relayer's charge)."""

    kind: ClassVar[Kind] = Kind.PAY_NETWORK_FEE
    amount_micros: int
    tx_hash: str
    memo: str | None = None

    def unique_key(self) -> UniqueKey:
        return UniqueKey("network_fee", self.tx_hash, DuplicateEntry)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        return _treasury_entry(self.kind, self.amount_micros, acct.NETWORK_FEES, into_treasury=False,
                               tx_hash=self.tx_hash, memo=self.memo)


@dataclass(frozen=True)
class WriteOffCredit(AgentOperation):
    """Credit an agent will not repay becomes bad debt.

    The forgiven debt counts as an inflow to the agent (``totalIn`` += a), so
    ``A + P + E = totalIn - totalOut + CU`` keeps holding as ``CU`` falls.
    """

    kind: ClassVar[Kind] = Kind.WRITE_OFF_CREDIT
    agent: str
    amount_micros: int
    reason: str

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a, state = self.amount_micros, ctx.agent(self.agent)
        if state.credit_used_micros == 0:
            raise NoOutstandingCredit(f"{self.agent} owes no credit to write off", agent=self.agent)
        if a > state.credit_used_micros:
            raise InvalidArgument(
                f"{self.agent} owes {state.credit_used_micros} micro-USDC of credit, cannot write off {a}",
                field="amount", agent=self.agent, credit_used_micros=state.credit_used_micros)
        return TransactionDraft(
            kind=self.kind, agent=self.agent, amount_micros=a,
            postings=(Posting(acct.BAD_DEBT, a), Posting(acct.credit(self.agent), -a)),
            flows=(AgentFlow(self.agent, total_in_micros=a),), memo=self.reason,
        )


MAX_ADJUSTMENT_POSTINGS = 100


@dataclass(frozen=True)
class Adjust(PlatformOperation):
    """An adjusting entry between the platform's own accounts, with a reason.

    Treasury, income, expense and equity accounts only: an agent's Available,
    Pending, Escrowed and credit receivable move only through the operations
    that keep the agent's identity and holds consistent.
    """

    kind: ClassVar[Kind] = Kind.ADJUST
    postings: tuple[tuple[str, int], ...]  # (account, beancount-signed micro-units)
    reason: str

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        if not 2 <= len(self.postings) <= MAX_ADJUSTMENT_POSTINGS:
            raise InvalidArgument(f"an adjustment has 2 to {MAX_ADJUSTMENT_POSTINGS} postings", field="postings")
        for account, micros in self.postings:
            if acct.parse_account(account).agent is not None:
                raise AgentAccountNotAdjustable(
                    f"{account} belongs to an agent: it moves only through the agent's operations", account=account)
            if micros == 0:
                raise InvalidArgument(f"the posting to {account} is zero", field="postings")
        if sum(m for _, m in self.postings):
            raise InvalidArgument("an adjustment's debits must equal its credits", field="postings")
        return TransactionDraft(
            kind=self.kind, agent=None, amount_micros=sum(m for _, m in self.postings if m > 0),
            postings=tuple(Posting(account, micros) for account, micros in self.postings), memo=self.reason,
        )


@dataclass(frozen=True)
class ClosePeriod(PlatformOperation):
    """Move every income and expense balance of the period ending at ``end`` to retained earnings.

    ``earnings`` are the income and expense balances the period leaves
    unclosed (``Ledger.close_period`` reads them in the same snapshot that
    shows the journal already past ``end``). Closes form a chain: each claims
    the slot after the previous close's end, so two concurrent closes cannot
    both move the same earnings.
    """

    kind: ClassVar[Kind] = Kind.CLOSE_PERIOD
    end: datetime
    earnings: tuple[tuple[str, int], ...]  # (account, beancount-signed balance to close)
    previous_end: datetime | None = None

    def unique_key(self) -> UniqueKey:
        after = self.previous_end.isoformat() if self.previous_end else "start"
        return UniqueKey("close", f"after:{after}", PeriodAlreadyClosed)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        if self.end > ctx.now:
            raise PeriodNotComplete(f"the period ending {self.end.isoformat()} has not ended", field="end")
        if self.previous_end is not None and self.end <= self.previous_end:
            raise PeriodAlreadyClosed(f"the books are closed up to {self.previous_end.isoformat()}", field="end")
        postings = []
        for account, micros in self.earnings:
            if not acct.parse_account(account).type.is_earnings:
                raise InvalidArgument(f"{account} is not an income or expense account", field="earnings")
            if micros:
                postings.append(Posting(account, -micros))
        net = sum(p.amount_micros for p in postings)
        if net:
            postings.append(Posting(acct.RETAINED_EARNINGS, -net))
        return TransactionDraft(
            kind=self.kind, agent=None, amount_micros=abs(net), postings=tuple(postings),
            metadata={"period_end": self.end.isoformat(),
                      **({"previous_end": self.previous_end.isoformat()} if self.previous_end else {})},
        )


# --- projecting a draft onto the state, and the rules every result keeps ----


_BUCKETS = tuple(acct.AgentBucket)  # iterating the enum class itself is slow (a fifth of a large batch's planning)


def project_agent(state: AgentState, draft: TransactionDraft) -> AgentState:
    """The agent's state after ``draft`` (used to check the invariants)."""
    delta = dict.fromkeys(_BUCKETS, 0)
    buckets = acct.account_buckets(state.agent)
    for p in draft.postings:
        bucket = buckets.get(p.account)
        if bucket is not None:
            delta[bucket] += p.amount_micros
    flow_in = flow_out = 0
    for f in draft.flows:
        if f.agent == state.agent:
            flow_in += f.total_in_micros
            flow_out += f.total_out_micros
    return AgentState(
        state.agent,
        state.available_micros - delta[acct.AgentBucket.AVAILABLE],
        state.pending_micros - delta[acct.AgentBucket.PENDING],
        state.escrowed_micros - delta[acct.AgentBucket.ESCROWED],
        state.credit_used_micros + delta[acct.AgentBucket.CREDIT],
        (draft.credit_limit_micros if draft.credit_limit_micros is not None and draft.agent == state.agent
         else state.credit_limit_micros),
        state.total_in_micros + flow_in,
        state.total_out_micros + flow_out,
    )


def check_agent(state: AgentState) -> None:
    """No constrained balance negative, credit within its limit, totals consistent."""
    if min(state.available_micros, state.pending_micros, state.escrowed_micros) < 0:
        raise InsufficientBalance(
            f"{state.agent} would go negative (available {state.available_micros}, "
            f"pending {state.pending_micros}, escrowed {state.escrowed_micros})",
            agent=state.agent,
        )
    if state.credit_used_micros < 0 or state.credit_used_micros > state.credit_limit_micros:
        raise CreditLimitExceeded(
            f"{state.agent} would have {state.credit_used_micros} micro-USDC of credit "
            f"against a limit of {state.credit_limit_micros}",
            agent=state.agent,
        )


def project_hold(before: HoldState | None, effect: HoldEffect) -> HoldState:
    """The reference's state after ``effect`` (a creation starts from nothing)."""
    if before is None:
        before = HoldState(effect.kind, effect.agent, effect.reference, 0, 0, 0, 0, 0, effect.expires_at, 0)
    return HoldState(
        before.kind, before.agent, before.reference,
        before.amount_micros + effect.amount_micros,
        before.remaining_micros + effect.remaining_micros,
        before.credit_micros + effect.credit_micros,
        before.confirmed_micros + effect.confirmed_micros,
        before.released_micros + effect.released_micros,
        before.expires_at,
        before.created_seq,
    )


def check_hold(hold: HoldState) -> None:
    if hold.remaining_micros < 0 or not 0 <= hold.credit_micros <= hold.remaining_micros:
        error = HoldExceeded if hold.kind is HoldKind.HOLD else EscrowExceeded
        raise error(
            f"{hold.kind.value} {hold.reference!r} would be left with {hold.remaining_micros} "
            f"micro-USDC ({hold.credit_micros} of it credit)",
            agent=hold.agent, reference=hold.reference,
        )


# --- Agent:Suspense: USDC from senders who are no known agent (model.md, section 5) -----------


def deposit_key(chain_id: int, tx_hash: str, log_index: int) -> str:
    """The natural key of a log of USDC received on chain, whoever it is credited to."""
    return f"{chain_id}:{tx_hash}:{log_index}"


@dataclass(frozen=True)
class ReceiveUnidentified(Operation):
    """USDC arrived from ``sender``, no known agent: the platform owes it to someone, in suspense."""

    kind: ClassVar[Kind] = Kind.RECEIVE_UNIDENTIFIED
    sender: str
    amount_micros: int
    tx_hash: str
    chain_id: int = 0
    log_index: int = 0
    block_number: int | None = None
    block_hash: str | None = None

    def involved_agents(self) -> tuple[str, ...]:
        return ()

    def unique_key(self) -> UniqueKey:  # one log is a deposit or a suspense receipt, once
        return UniqueKey("deposit", deposit_key(self.chain_id, self.tx_hash, self.log_index), DuplicateDeposit)

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        return TransactionDraft(
            kind=self.kind, agent=None, counterparty=self.sender, amount_micros=a,
            postings=(Posting(acct.TREASURY, a), Posting(acct.SUSPENSE, -a)),
            flows=(), tx_hash=self.tx_hash,
            metadata=chain_metadata(self.chain_id, self.log_index, self.block_number, self.block_hash),
        )


class SuspenseOperation(Operation):
    """Settles one suspense receipt (its ``receipt`` key) once: assigned or returned."""

    receipt: str

    def unique_key(self) -> UniqueKey:
        return UniqueKey("suspense", self.receipt, SuspenseSettled)


@dataclass(frozen=True)
class AssignSuspense(SuspenseOperation, AgentOperation):
    """An admin found whose money a suspense receipt is: it becomes the agent's (credit repaid first)."""

    kind: ClassVar[Kind] = Kind.ASSIGN_SUSPENSE
    agent: str
    amount_micros: int
    receipt: str

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        return TransactionDraft(
            kind=self.kind, agent=self.agent, amount_micros=a,
            postings=(Posting(acct.SUSPENSE, a), *inflow(ctx.agent(self.agent), a)),
            flows=(AgentFlow(self.agent, total_in_micros=a),),
            reference=self.receipt,
        )


@dataclass(frozen=True)
class ReturnSuspense(SuspenseOperation):
    """A suspense receipt was sent back on chain (``tx_hash``): the money leaves the platform."""

    kind: ClassVar[Kind] = Kind.RETURN_SUSPENSE
    amount_micros: int
    receipt: str
    tx_hash: str
    destination: str

    def involved_agents(self) -> tuple[str, ...]:
        return ()

    def plan(self, ctx: PlanContext) -> TransactionDraft:
        a = self.amount_micros
        return TransactionDraft(
            kind=self.kind, agent=None, counterparty=self.destination, amount_micros=a,
            postings=(Posting(acct.SUSPENSE, a), Posting(acct.TREASURY, -a)),
            flows=(), reference=self.receipt, tx_hash=self.tx_hash,
        )
