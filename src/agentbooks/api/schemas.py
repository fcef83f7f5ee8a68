"""Wire shapes of the HTTP API: camelCase JSON, amounts as 6-decimal strings.

Amounts are ``StrictStr`` on purpose: a JSON number (which a client may have
built from a float) is refused with 422 rather than guessed at; the ledger's
own grammar then checks the string.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from ..domain.model import Balance, DryRun, Entry, HoldState, Transaction, TransactionDraft
from ..domain.money import format_micros
from ..domain.hashing import canonical_time


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


Amount = Field(description="USDC, decimal string with at most 6 places, e.g. \"10.500000\"", examples=["10.50"])


# --- request bodies -------------------------------------------------------------------

class WriteBody(Wire):
    """Every mutating call's body: the caller's own metadata rides along (``requests.check_client_metadata``)."""

    metadata: dict[StrictStr, StrictStr] | None = Field(
        None, max_length=16, description="the caller's own string pairs (at most 16; keys 1-64 of A-Z a-z 0-9 _ -, "
        "values at most 256 characters), recorded under the transaction's metadata.client, inside the hash chain",
        examples=[{"orderId": "ord-42"}])


class DepositBody(WriteBody):
    agent_address: StrictStr
    amount: StrictStr = Amount
    tx_hash: StrictStr
    chain_id: StrictInt = 0
    log_index: StrictInt = 0
    block_number: StrictInt | None = None
    block_hash: StrictStr | None = None


class WithdrawBody(WriteBody):
    amount: StrictStr = Amount


class PayoutBody(Wire):
    to: StrictStr = Field(description="the destination address on chain")
    amount: StrictStr = Amount
    client_ref: StrictStr = Field(description="the agent's own reference for this payout: a repeat returns it")


class AdminWithdrawBody(WriteBody):
    agent_address: StrictStr
    amount: StrictStr = Amount
    tx_hash: StrictStr
    chain_id: StrictInt = 0
    log_index: StrictInt = 0
    destination: StrictStr | None = Field(None, description="the address paid, when not the agent's own")
    block_number: StrictInt | None = None
    block_hash: StrictStr | None = None


class SpendBody(WriteBody):
    amount: StrictStr = Amount
    session_key_id: StrictStr


class HoldBody(WriteBody):
    amount: StrictStr = Amount
    reference: StrictStr
    expires_at: StrictStr | None = Field(None, description="RFC 3339; the sweep releases what is left after it")


class EscrowBody(WriteBody):
    amount: StrictStr = Amount
    reference: StrictStr


class TransferBody(WriteBody):
    to_agent: StrictStr
    amount: StrictStr = Amount
    reference: StrictStr


class AmountBody(WriteBody):
    amount: StrictStr = Amount


class ConfirmBody(WriteBody):
    amount: StrictStr = Amount
    tx_hash: StrictStr | None = None
    chain_id: StrictInt | None = None
    log_index: StrictInt | None = None
    destination: StrictStr | None = None
    block_number: StrictInt | None = None
    block_hash: StrictStr | None = None


class ReleaseBody(WriteBody):
    amount: StrictStr = Amount
    reason: StrictStr | None = None


class SettleHoldBody(WriteBody):
    seller: StrictStr
    amount: StrictStr = Amount
    fee: StrictStr = "0"


class ReleaseEscrowBody(WriteBody):
    seller: StrictStr
    amount: StrictStr = Amount


class SettleEscrowBody(WriteBody):
    seller: StrictStr
    seller_amount: StrictStr = Amount


class RefundBody(WriteBody):
    agent_address: StrictStr
    amount: StrictStr = Amount
    reference: StrictStr


class CreditLimitBody(WriteBody):
    limit: StrictStr = Amount


class AssignSuspenseBody(Wire):
    agent_address: StrictStr


class ReturnSuspenseBody(Wire):
    tx_hash: StrictStr = Field(description="the on-chain transfer that sent the money back")


class ReverseBody(WriteBody):
    reason: StrictStr


class CapitalBody(Wire):
    amount: StrictStr = Amount
    reference: StrictStr = Field(description="once per reference (e.g. the share subscription)")
    memo: StrictStr | None = None


class OpeningBalanceBody(Wire):
    account: StrictStr = Field(description="Platform:Treasury, another platform account, or Agent:<addr>:Available")
    amount: StrictStr = Amount
    reference: StrictStr


class NetworkFeeBody(Wire):
    amount: StrictStr = Amount
    tx_hash: StrictStr
    memo: StrictStr | None = None


class WriteOffBody(Wire):
    amount: StrictStr = Amount
    reason: StrictStr


class AdjustmentLine(Wire):
    account: StrictStr
    debit: StrictStr | None = None
    credit: StrictStr | None = None


class AdjustmentBody(Wire):
    postings: list[AdjustmentLine] = Field(min_length=2, max_length=100)
    reason: StrictStr


class ClosePeriodBody(Wire):
    end: StrictStr = Field(description="RFC 3339: income and expenses before it move to retained earnings")


class AgentProfileBody(Wire):
    display_name: StrictStr | None = Field(None, max_length=120)
    metadata: dict[str, StrictStr] = Field(default_factory=dict, max_length=20)


class NetSettlementBody(Wire):
    """Obligations to net (each ``{"from", "to", "amount"}``); ``execute: false`` only plans."""

    transfers: list[dict[str, Any]] = Field(max_length=10_000)
    reference: StrictStr
    execute: StrictBool = True


class ReversalBody(Wire):
    """The original's ``POST /admin/reversals`` body."""

    transaction_id: StrictStr
    reason: StrictStr


class BatchBody(WriteBody):
    operations: list[dict[str, Any]] = Field(
        description='each {"op": "deposit", ...fields in camelCase or snake_case}', max_length=10_000
    )


class TreasuryBalanceBody(Wire):
    address: StrictStr
    amount: StrictStr = Amount
    block: StrictInt


class ReconcileBody(Wire):
    transfers: list[dict[str, Any]] = Field(max_length=100_000, description=(
        "log objects as eth_getLogs returns them, or normalised records as in the transfer file"))
    treasury: list[StrictStr] = Field(min_length=1, max_length=100)
    token: StrictStr | None = Field(None, description="the USDC contract; other tokens are ignored and counted")
    chain_id: StrictInt = Field(0, description="the chain of log objects (0: any)")
    decimals: StrictInt = Field(6, ge=0, le=36)
    from_block: StrictInt | None = None
    to_block: StrictInt | None = None
    confirmations: StrictInt | None = Field(None, ge=1, description="with headBlock: cut at the last final block")
    head_block: StrictInt | None = None
    start: StrictStr | None = Field(None, alias="from", description="window start by chain time, RFC 3339")
    end: StrictStr | None = Field(None, alias="to", description="window end by chain time, RFC 3339")
    treasury_balances: list[TreasuryBalanceBody] = Field(default_factory=list, max_length=100)
    record: bool = False


class ApiKeyBody(Wire):
    role: StrictStr = Field(description="agent or accountant")
    agent_address: StrictStr | None = None


# --- responses ------------------------------------------------------------------------

class ErrorOut(BaseModel):
    error: str = Field(description="stable machine-readable code")
    message: str
    details: dict[str, Any] | None = None


class BalanceFields(Wire):
    agent_addr: str
    available: str
    pending: str
    escrowed: str
    credit_limit: str
    credit_used: str
    total_in: str
    total_out: str
    updated_at: str | None
    as_of_seq: int


class BalanceOut(Wire):
    balance: BalanceFields


class EntryOut(Wire):
    id: str
    seq: int
    agent_addr: str
    type: str
    amount: str
    tx_hash: str | None = None
    reference: str | None = None
    description: str | None = None
    counterparty: str | None = None
    created_at: str


class HistoryOut(Wire):
    entries: list[EntryOut]
    next_cursor: int | None
    has_more: bool


class CreditOut(Wire):
    address: str
    limit: str
    used: str
    available: str


class PostingOut(Wire):
    account: str
    amount: str
    currency: str
    reference: str | None = None


class PlannedOut(Wire):
    """A transaction a dry run would record (sequence, id, time and hash come only when recording)."""

    kind: str
    agent: str | None
    counterparty: str | None
    amount: str
    reference: str | None
    tx_hash: str | None
    memo: str | None
    postings: list[PostingOut]
    credit_limit: str | None
    reverses_seq: int | None
    metadata: dict[str, Any]


class TransactionOut(PlannedOut):
    """A recorded transaction: its draft's fields, and its place in the journal and the hash chain."""

    id: str
    seq: int
    occurred_at: str
    prev_hash: str
    hash: str


class TransactionEnvelope(Wire):
    transaction: TransactionOut


class PayoutRecordOut(Wire):
    agent: str
    client_ref: str
    to: str
    amount: str
    state: str = Field(description="requested, held, signed, submitted, confirmed; refused; failed, released")
    hold_ref: str
    chain_id: int | None = None
    nonce: int | None = None
    tx_hash: str | None = None
    log_index: int | None = None
    error: str | None = None


class PayoutOut(Wire):
    payout: PayoutRecordOut
    transaction: TransactionOut | None = None


def payout_out(p: Any) -> PayoutRecordOut:
    return PayoutRecordOut(agent=p.agent, client_ref=p.client_ref, to=p.destination, amount=micros_text(p.amount_micros),
                           state=p.state, hold_ref=p.hold_reference, chain_id=p.chain_id, nonce=p.nonce,
                           tx_hash=p.tx_hash, log_index=p.log_index, error=p.error)


class WithdrawOut(Wire):
    hold_ref: str
    status: str = "pending"
    transaction: TransactionOut


class NetSettlementOut(Wire):
    transfers: list[dict[str, str]]
    count: int
    transactions: list[TransactionOut]


class BatchOut(Wire):
    transactions: list[TransactionOut]


class DryRunOut(Wire):
    """``?dryRun=true``: what the call would record now; nothing was written and no key claimed."""

    dry_run: bool = True
    transactions: list[PlannedOut]
    balances: list[BalanceFields] = Field(description="each involved agent after the transactions")
    as_of_seq: int = Field(description="the journal head the plan was made against")
    replayed: bool = Field(False, description="the idempotency key already has this answer")


class TransactionsOut(Wire):
    transactions: list[TransactionOut]
    next_cursor: int | None
    has_more: bool


class JournalOut(Wire):
    transactions: list[TransactionOut]
    next_after_seq: int
    has_more: bool


class AccountBalanceOut(Wire):
    account: str
    balance: str = Field(description="beancount sign: liabilities and income are negative")
    as_of_seq: int | None = None


class AccountsOut(Wire):
    prefix: str
    accounts: list[AccountBalanceOut]
    total: str


class HoldOut(Wire):
    kind: str
    agent: str
    reference: str
    amount: str
    remaining: str
    credit: str
    confirmed: str
    released: str
    expires_at: str | None
    created_seq: int


class HoldsOut(Wire):
    holds: list[HoldOut]


class ApiKeyOut(Wire):
    key_id: str
    api_key: str = Field(description="shown once; store it now")
    role: str
    agent_address: str | None


# --- domain → wire ------------------------------------------------------------------

def micros_text(micros: int) -> str:
    return format_micros(micros)


def decimal_text(value: Any) -> str:
    return f"{value:.6f}"


def time_text(moment: Any) -> str | None:
    return canonical_time(moment) if moment is not None else None


def balance_fields(b: Balance) -> BalanceFields:
    return BalanceFields(
        agent_addr=b.agent_addr, available=decimal_text(b.available), pending=decimal_text(b.pending),
        escrowed=decimal_text(b.escrowed), credit_limit=decimal_text(b.credit_limit),
        credit_used=decimal_text(b.credit_used), total_in=decimal_text(b.total_in),
        total_out=decimal_text(b.total_out), updated_at=time_text(b.updated_at), as_of_seq=b.as_of_seq,
    )


def balance_out(b: Balance) -> BalanceOut:
    return BalanceOut(balance=balance_fields(b))


def entry_out(e: Entry) -> EntryOut:
    return EntryOut(id=e.id, seq=e.seq, agent_addr=e.agent_addr, type=e.type, amount=decimal_text(e.amount),
                    tx_hash=e.tx_hash, reference=e.reference, description=e.description,
                    counterparty=e.counterparty, created_at=time_text(e.created_at) or "")


def _draft_fields(t: Transaction | TransactionDraft) -> dict[str, Any]:
    """The fields a recorded transaction shares with its draft, on the wire."""
    return dict(
        kind=t.kind.value, agent=t.agent, counterparty=t.counterparty, amount=micros_text(t.amount_micros),
        reference=t.reference, tx_hash=t.tx_hash, memo=t.memo,
        postings=[PostingOut(account=p.account, amount=micros_text(p.amount_micros), currency=p.currency,
                             reference=p.reference) for p in t.postings],
        credit_limit=micros_text(t.credit_limit_micros) if t.credit_limit_micros is not None else None,
        reverses_seq=t.reverses_seq, metadata=dict(t.metadata),
    )


def transaction_out(t: Transaction) -> TransactionOut:
    return TransactionOut(id=t.id, seq=t.seq, occurred_at=time_text(t.occurred_at) or "", prev_hash=t.prev_hash,
                          hash=t.hash, **_draft_fields(t))


def dry_run_out(plan: DryRun) -> DryRunOut:
    return DryRunOut(transactions=[PlannedOut(**_draft_fields(d)) for d in plan.drafts],
                     balances=[balance_fields(b) for b in plan.balances.values()], as_of_seq=plan.as_of_seq,
                     replayed=plan.replayed)


def hold_out(h: HoldState) -> HoldOut:
    return HoldOut(kind=h.kind.value, agent=h.agent, reference=h.reference, amount=micros_text(h.amount_micros),
                   remaining=micros_text(h.remaining_micros), credit=micros_text(h.credit_micros),
                   confirmed=micros_text(h.confirmed_micros), released=micros_text(h.released_micros),
                   expires_at=time_text(h.expires_at), created_seq=h.created_seq)
