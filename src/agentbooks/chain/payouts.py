"""Payout requests: an agent asks for USDC to be sent on chain; its money is held until it is.

A payout is keyed on (agent, clientRef): the same agent repeating a request
gets the same payout back, another agent's clientRef is another payout. Its
record (``payouts`` table) is written first (state ``requested``), then the
hold (``held``), under an idempotency key of its own, so a crash between the
two is finished by whoever looks next (a refused hold: ``refused``, final) (the executor does, on every step).
The executor (``chain.executor``) takes it from there. Nothing here talks to a
node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.addresses import check_reference, normalize_address
from ..domain.errors import IdempotencyConflict, InvalidArgument, LedgerError
from ..domain.model import Transaction
from ..domain.operations import Hold
from ..service import LedgerService
from ..storage import chain_watch_store as chain_store
from ..storage.chain_watch_store import PayoutRecord
from ..storage.journal_store import to_us

MAX_CLIENT_REF = 100  # the hold reference adds a prefix; references are at most 128 characters


@dataclass(frozen=True)
class PayoutAnswer:
    payout: PayoutRecord
    hold: Transaction | None  # the hold's transaction (replayed on a repeat); None when it was refused


def hold_key(payout: PayoutRecord) -> str:
    return f"payout-hold:{payout.agent}:{payout.client_ref}"


def request_payout(service: LedgerService, agent: str, destination: str, amount_micros: int, client_ref: str, *,
                   hold_reference: str | None = None) -> PayoutAnswer:
    """Record the payout and hold its amount from the agent's own funds (never credit).

    A refused hold (not enough available) leaves the payout ``refused`` (nothing held, nothing
    sent) and raises the refusal.
    """
    agent = normalize_address(agent)
    destination = normalize_address(destination, field="to")
    check_reference(client_ref, field="clientRef")
    if len(client_ref) > MAX_CLIENT_REF:
        raise InvalidArgument(f"clientRef is at most {MAX_CLIENT_REF} characters", field="clientRef")
    if isinstance(amount_micros, bool) or not isinstance(amount_micros, int) or amount_micros <= 0:
        raise InvalidArgument("a payout's amount is positive", field="amount")
    reference = hold_reference or f"payout-{client_ref}"
    now = to_us(service.clock())
    created = service.write(lambda c: chain_store.insert_payout(
        c, agent=agent, client_ref=client_ref, destination=destination, amount_micros=amount_micros,
        hold_reference=reference, now_us=now))
    payout = created or service.read(lambda c: chain_store.get_payout(c, agent, client_ref))
    assert payout is not None
    if (payout.destination, payout.amount_micros, payout.hold_reference) != (destination, amount_micros, reference):
        raise IdempotencyConflict(f"clientRef {client_ref!r} was used for another payout", key=client_ref)
    return PayoutAnswer(*hold_payout(service, payout))


def hold_payout(service: LedgerService, payout: PayoutRecord) -> tuple[PayoutRecord, Transaction | None]:
    """The payout's hold (placed now, or replayed); a requested payout becomes held, or failed."""
    op = Hold(payout.agent, payout.amount_micros, payout.hold_reference, allow_credit=False)
    now = to_us(service.clock())
    try:
        tx = service.execute([op], idempotency_key=hold_key(payout), annotations={"payout": payout.client_ref})[0]
    except LedgerError as exc:
        if exc.final and payout.state == "requested":
            service.write(lambda c: chain_store.advance_payout(c, payout, "refused", now, error=exc.code))
        raise
    if payout.state == "requested":
        service.write(lambda c: chain_store.advance_payout(c, payout, "held", now))
    return service.read(lambda c: chain_store.get_payout(c, payout.agent, payout.client_ref)), tx  # type: ignore[return-value]
