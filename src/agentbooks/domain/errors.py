"""Typed ledger errors with stable machine-readable codes.

Every failure the ledger can report is one of these classes. The ``code`` is
part of the public contract (API clients and reconciliation scripts switch on
it), so codes are never renamed; ``http_status`` lives here so the mapping to
HTTP is made in exactly one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LedgerError(Exception):
    """Base class of every ledger failure; nothing was written when raised (but see CommitOutcomeUnknown)."""

    code: ClassVar[str] = "ledger_error"
    http_status: ClassVar[int] = 400
    # A final error is the request's answer, stored under its idempotency key and replayed for the
    # key's lifetime. Failures that say nothing about the request itself (the retries ran out, the
    # commit's outcome is unknown, a broken invariant) are not final: another attempt may succeed.
    final: ClassVar[bool] = True

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.replayed = False  # True when this is an idempotency key's stored first answer

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> "LedgerError":
        """The error ``to_dict`` described (an idempotency key's stored refusal), as its own class."""
        error_class = _BY_CODE.get(body["error"], LedgerError)
        error = error_class(body["message"], **body.get("details", {}))
        if error_class is LedgerError:
            error.code = body["error"]  # type: ignore[misc]  # a code this version no longer has: kept verbatim
        return error

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidAmount(LedgerError, TypeError):
    code = "invalid_amount"


class InvalidAddress(LedgerError):
    code = "invalid_address"


class InvalidReference(LedgerError):
    code = "invalid_reference"


class InvalidTimestamp(LedgerError):
    code = "invalid_timestamp"


class InvalidAccount(LedgerError):
    code = "invalid_account"


class InvalidArgument(LedgerError):
    code = "invalid_argument"


class InsufficientBalance(LedgerError):
    code = "insufficient_balance"
    http_status = 422


class CreditLimitExceeded(LedgerError):
    code = "credit_limit_exceeded"
    http_status = 422


class CreditLimitBelowUsed(LedgerError):
    code = "credit_limit_below_used"
    http_status = 422


class NoOutstandingCredit(LedgerError):
    code = "no_outstanding_credit"
    http_status = 422


class UnknownHold(LedgerError):
    code = "unknown_hold"
    http_status = 404


class UnknownEscrow(LedgerError):
    code = "unknown_escrow"
    http_status = 404


class HoldExceeded(LedgerError):
    code = "hold_exceeded"
    http_status = 422


class EscrowExceeded(LedgerError):
    code = "escrow_exceeded"
    http_status = 422


class HoldExpired(LedgerError):
    code = "hold_expired"
    http_status = 422


class ReferenceInUse(LedgerError):
    code = "reference_in_use"
    http_status = 409


class DuplicateDeposit(LedgerError):
    code = "duplicate_deposit"
    http_status = 409


class DuplicateWithdrawal(LedgerError):
    code = "duplicate_withdrawal"
    http_status = 409


class DuplicateRefund(LedgerError):
    code = "duplicate_refund"
    http_status = 409


class RefundExceedsPaid(LedgerError):
    code = "refund_exceeds_paid"
    http_status = 422


class SuspenseSettled(LedgerError):
    """A suspense receipt was already assigned to an agent or returned on chain."""

    code = "suspense_settled"
    http_status = 409


class PayoutNotFound(LedgerError):
    code = "payout_not_found"
    http_status = 404


class IdempotencyConflict(LedgerError):
    code = "idempotency_conflict"
    http_status = 409


class AlreadyReversed(LedgerError):
    code = "already_reversed"
    http_status = 409


class NotReversible(LedgerError):
    code = "not_reversible"
    http_status = 422


class DuplicateEntry(LedgerError):
    """A platform entry (capital, opening balance, network fee) with a reference already recorded."""

    code = "duplicate_entry"
    http_status = 409


class AgentAccountNotAdjustable(LedgerError):
    """An adjusting entry may not move an agent's money: only that money's own operations do."""

    code = "agent_account_not_adjustable"
    http_status = 422


class PeriodAlreadyClosed(LedgerError):
    code = "period_already_closed"
    http_status = 409


class PeriodNotComplete(LedgerError):
    """A period is closed only once the journal has moved past its end (nothing can still land in it)."""

    code = "period_not_complete"
    http_status = 422


class NotFound(LedgerError):
    code = "not_found"
    http_status = 404


class ConcurrencyConflict(LedgerError):
    """Retries of a serialization failure or deadlock were exhausted."""

    code = "concurrency_conflict"
    http_status = 503
    final = False


class CommitOutcomeUnknown(LedgerError):
    """The one failure after which the call may have been recorded: the connection to the
    database dropped while the commit was under way. Never retried blindly (that could record
    it twice); the caller repeats it with the same idempotency key, which replays it if it
    was recorded and records it if it was not."""

    code = "commit_outcome_unknown"
    http_status = 503
    final = False


class InvariantViolation(LedgerError):
    """A posting set would break a ledger invariant (a bug, never user input)."""

    code = "invariant_violation"
    http_status = 500
    final = False


ALL_ERRORS: tuple[type[LedgerError], ...] = tuple(
    cls for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, LedgerError)
)
_BY_CODE = {cls.code: cls for cls in ALL_ERRORS}
