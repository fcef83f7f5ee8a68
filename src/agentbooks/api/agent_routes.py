"""Routes an agent uses on its own money (``/v1/agents/{address}/…``)."""

from __future__ import annotations

import hashlib
import secrets

from fastapi import APIRouter, Depends, Query, Request

from ..chain.payouts import PayoutAnswer, request_payout
from ..domain.errors import PayoutNotFound
from ..domain.money import parse_amount, to_decimal
from ..storage import chain_watch_store as chain_store
from ..requests import parse_time
from ..ledger import DEFAULT_HISTORY_LIMIT, Ledger
from . import schemas as s
from .deps import MAX_SEQ, agent_mover, agent_reader, WriteCall, get_ledger, write_call
from .respond import write

router = APIRouter(prefix="/v1/agents/{address}", tags=["agents"])
ERRORS = {code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 422)}
WRITE_ERRORS = {**ERRORS, 200: {"model": s.DryRunOut, "description": "dryRun=true: what the call would record"}}


@router.get("/balance", response_model=s.BalanceOut, responses=ERRORS)
def get_balance(agent: str = Depends(agent_reader), ledger: Ledger = Depends(get_ledger),
                at: str | None = Query(None, description="RFC 3339: the balance as it was then")) -> s.BalanceOut:
    """The agent's balance now, or at a past time (every field, credit included)."""
    return s.balance_out(ledger.get_balance(agent, as_of=parse_time(at, field="at") if at is not None else None))


@router.get("/ledger", response_model=s.HistoryOut, responses=ERRORS)
def get_history(agent: str = Depends(agent_reader), ledger: Ledger = Depends(get_ledger),
                limit: int | None = Query(None, le=500, description="entries per page; missing or <= 0 means 50"),
                cursor: int | None = Query(None, ge=1, le=MAX_SEQ, description="nextCursor of the previous page")) -> s.HistoryOut:
    """The agent's entries, newest first; the cursor is a journal sequence, stable under concurrent writes.

    Each entry's amount is the agent's own movement (a seller sees what it received)."""
    limit = limit if limit is not None and limit > 0 else DEFAULT_HISTORY_LIMIT
    entries = ledger.get_history(agent, limit + 1, before_seq=cursor)
    page = entries[:limit]
    has_more = len(entries) > limit
    return s.HistoryOut(entries=[s.entry_out(e) for e in page],
                        next_cursor=page[-1].seq if has_more else None, has_more=has_more)


@router.get("/credit", response_model=s.CreditOut, responses=ERRORS)
def get_credit(agent: str = Depends(agent_reader), ledger: Ledger = Depends(get_ledger)) -> s.CreditOut:
    limit, used = ledger.get_credit_info(agent)
    return s.CreditOut(address=agent, limit=s.decimal_text(limit), used=s.decimal_text(used),
                       available=s.decimal_text(max(limit - used, to_decimal(0))))


@router.get("/holds", response_model=s.HoldsOut, responses=ERRORS)
def get_open_holds(agent: str = Depends(agent_reader), ledger: Ledger = Depends(get_ledger),
                   limit: int = Query(1000, ge=1, le=100_000)) -> s.HoldsOut:
    """Open holds and escrows of the agent, oldest first, with what each still holds."""
    return s.HoldsOut(holds=[s.hold_out(h) for h in ledger.open_holds(agent=agent, limit=limit)])


@router.post("/withdraw", status_code=202, response_model=s.WithdrawOut, responses=WRITE_ERRORS)
def request_withdrawal(body: s.WithdrawBody, request: Request, agent: str = Depends(agent_mover),
                       ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """Hold the amount from the agent's own funds (never credit) for an on-chain withdrawal.

    The platform confirms the hold (money left on chain) or releases it through the admin routes.
    """
    # A retry with the same Idempotency-Key must name the same hold to replay.
    idem = call.idempotency_key
    hold_ref = "withdraw-" + (hashlib.sha256(idem.encode()).hexdigest()[:16] if idem else secrets.token_hex(8))
    if request.app.state.payouts:  # the executor pays it out, to the agent's own address
        return write(request, "withdraw_request",
                     lambda: request_payout(ledger.service, agent, agent, parse_amount(body.amount), hold_ref,
                                            hold_reference=hold_ref).hold,  # type: ignore[arg-type,return-value]
                     lambda tx: s.WithdrawOut(hold_ref=tx.reference, transaction=s.transaction_out(tx)), 202)
    return write(request, "withdraw_request",
                 lambda: ledger.hold(agent, body.amount, hold_ref, allow_credit=False, **call.options(body)),
                 lambda tx: s.WithdrawOut(hold_ref=tx.reference, transaction=s.transaction_out(tx)), 202)


@router.post("/payouts", status_code=202, response_model=s.PayoutOut, responses=ERRORS)
def request_payout_route(body: s.PayoutBody, request: Request, agent: str = Depends(agent_mover),
                         ledger: Ledger = Depends(get_ledger)):
    """Send USDC on chain to ``to``: the amount is held from the agent's own funds (never credit) and the
    payout executor sends it. ``clientRef`` is the agent's own: a repeat returns the same payout."""
    answers: list[PayoutAnswer] = []

    def work():  # type: ignore[no-untyped-def]
        answers.append(request_payout(ledger.service, agent, body.to, parse_amount(body.amount), body.client_ref))
        return answers[0].hold

    return write(request, "payout_request", work,
                 lambda tx: s.PayoutOut(payout=s.payout_out(answers[0].payout), transaction=s.transaction_out(tx)), 202)


@router.get("/payouts/{client_ref}", response_model=s.PayoutOut, responses=ERRORS)
def get_payout(client_ref: str, agent: str = Depends(agent_reader), ledger: Ledger = Depends(get_ledger)) -> s.PayoutOut:
    """Where the agent's payout ``client_ref`` is: its state, nonce, transaction hash and log index."""
    record = ledger.service.read(lambda c: chain_store.get_payout(c, agent, client_ref))
    if record is None:
        raise PayoutNotFound(f"{agent} has no payout {client_ref[:100]!r}", client_ref=client_ref[:100])
    return s.PayoutOut(payout=s.payout_out(record))


@router.post("/spend", response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def spend(body: s.SpendBody, request: Request, agent: str = Depends(agent_mover),
          ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """Spend through a session key: available first, then the credit line."""
    return write(request, "spend", lambda: ledger.spend(agent, body.amount, body.session_key_id, **call.options(body)),
                 lambda tx: s.TransactionEnvelope(transaction=s.transaction_out(tx)))


@router.post("/holds", status_code=201, response_model=s.TransactionEnvelope, responses=WRITE_ERRORS)
def place_hold(body: s.HoldBody, request: Request, agent: str = Depends(agent_mover),
               ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """Hold funds for an in-flight transfer (available first, then credit)."""
    return write(request, "hold", lambda: ledger.hold(agent, body.amount, body.reference, expires_at=body.expires_at,
                                                      **call.options(body)),
                 lambda tx: s.TransactionEnvelope(transaction=s.transaction_out(tx)), 201)


@router.post("/escrows", status_code=201, response_model=s.TransactionEnvelope, responses=WRITE_ERRORS)
def lock_escrow(body: s.EscrowBody, request: Request, agent: str = Depends(agent_mover),
                ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """Lock own funds in escrow for buyer protection."""
    return write(request, "escrow_lock", lambda: ledger.escrow_lock(agent, body.amount, body.reference, **call.options(body)),
                 lambda tx: s.TransactionEnvelope(transaction=s.transaction_out(tx)), 201)


@router.post("/escrows/{reference}/release", response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def release_escrow(reference: str, body: s.ReleaseEscrowBody, request: Request, agent: str = Depends(agent_mover),
                   ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """The buyer confirms delivery: pay the seller from the escrow."""
    return write(request, "release_escrow",
                 lambda: ledger.release_escrow(agent, body.seller, body.amount, reference, **call.options(body)),
                 lambda tx: s.TransactionEnvelope(transaction=s.transaction_out(tx)))


@router.post("/transfers", response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def transfer(body: s.TransferBody, request: Request, agent: str = Depends(agent_mover),
             ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """Pay another agent inside the platform."""
    return write(request, "transfer",
                 lambda: ledger.transfer(agent, body.to_agent, body.amount, body.reference, **call.options(body)),
                 lambda tx: s.TransactionEnvelope(transaction=s.transaction_out(tx)))


@router.post("/credit/use", response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def use_credit(body: s.AmountBody, request: Request, agent: str = Depends(agent_mover),
               ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    return write(request, "use_credit", lambda: ledger.use_credit(agent, body.amount, **call.options(body)),
                 lambda tx: s.TransactionEnvelope(transaction=s.transaction_out(tx)))


@router.post("/credit/repay", response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def repay_credit(body: s.AmountBody, request: Request, agent: str = Depends(agent_mover),
                 ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    return write(request, "repay_credit", lambda: ledger.repay_credit(agent, body.amount, **call.options(body)),
                 lambda tx: s.TransactionEnvelope(transaction=s.transaction_out(tx)))
