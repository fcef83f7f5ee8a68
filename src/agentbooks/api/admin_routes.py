"""Platform routes (``/v1/admin/…``): deposits, hold and escrow outcomes, credit, corrections, keys.

All need the admin secret (``X-Admin-Secret``); with no secret configured
the server refuses them.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request

from ..api_keys import create_key
from ..reconcile.match import reconcile as run_reconcile
from ..reconcile.transfers import parse_transfer
from ..verify.database import verify_database
from ..ledger import Ledger
from . import schemas as s
from .deps import get_ledger, idempotency_key, require_admin
from .respond import write

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])
ERRORS = {code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 422)}


def _one(tx: Any) -> s.TransactionEnvelope:
    return s.TransactionEnvelope(transaction=s.transaction_out(tx))


@router.post("/deposits", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def record_deposit(body: s.DepositBody, request: Request, ledger: Ledger = Depends(get_ledger),
                   idem: str | None = Depends(idempotency_key)):
    """Record an on-chain USDC deposit; a repeated (chainId, txHash, logIndex) is 409 duplicate_deposit."""
    return write(request, "deposit", lambda: ledger.deposit(
        body.agent_address, body.amount, body.tx_hash, chain_id=body.chain_id, log_index=body.log_index,
        idempotency_key=idem), _one, 201)


@router.post("/withdrawals", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def record_withdrawal(body: s.AdminWithdrawBody, request: Request, ledger: Ledger = Depends(get_ledger),
                      idem: str | None = Depends(idempotency_key)):
    """Record a withdrawal already sent on chain (own funds only)."""
    return write(request, "withdraw", lambda: ledger.withdraw(body.agent_address, body.amount, body.tx_hash,
                                                              idempotency_key=idem), _one, 201)


@router.post("/holds/{address}/{reference}/confirm", response_model=s.TransactionEnvelope, responses=ERRORS)
def confirm_hold(address: str, reference: str, body: s.ConfirmBody, request: Request,
                 ledger: Ledger = Depends(get_ledger), idem: str | None = Depends(idempotency_key)):
    """The held transfer went out on chain: the money leaves the platform."""
    return write(request, "confirm_hold", lambda: ledger.confirm_hold(
        address, body.amount, reference, tx_hash=body.tx_hash, idempotency_key=idem), _one)


@router.post("/holds/{address}/{reference}/release", response_model=s.TransactionEnvelope, responses=ERRORS)
def release_hold(address: str, reference: str, body: s.ReleaseBody, request: Request,
                 ledger: Ledger = Depends(get_ledger), idem: str | None = Depends(idempotency_key)):
    """The held transfer failed: the money returns (credit first)."""
    return write(request, "release_hold", lambda: ledger.release_hold(
        address, body.amount, reference, reason=body.reason, idempotency_key=idem), _one)


@router.post("/holds/{address}/{reference}/settle", response_model=s.TransactionEnvelope, responses=ERRORS)
def settle_hold(address: str, reference: str, body: s.SettleHoldBody, request: Request,
                ledger: Ledger = Depends(get_ledger), idem: str | None = Depends(idempotency_key)):
    """Pay a seller from the buyer's hold, keeping an optional platform fee."""
    return write(request, "settle_hold", lambda: ledger.settle_hold(
        address, body.seller, body.amount, reference, fee=body.fee, idempotency_key=idem), _one)


@router.post("/holds/sweep", response_model=s.BatchOut, responses=ERRORS)
def sweep_expired_holds(request: Request, ledger: Ledger = Depends(get_ledger)):
    """Release what is left of every expired hold."""
    return write(request, "sweep", ledger.sweep_expired_holds,
                 lambda txs: s.BatchOut(transactions=[s.transaction_out(t) for t in txs]))


@router.post("/escrows/{address}/{reference}/release", response_model=s.TransactionEnvelope, responses=ERRORS)
def release_escrow(address: str, reference: str, body: s.ReleaseEscrowBody, request: Request,
                   ledger: Ledger = Depends(get_ledger), idem: str | None = Depends(idempotency_key)):
    return write(request, "release_escrow", lambda: ledger.release_escrow(
        address, body.seller, body.amount, reference, idempotency_key=idem), _one)


@router.post("/escrows/{address}/{reference}/refund", response_model=s.TransactionEnvelope, responses=ERRORS)
def refund_escrow(address: str, reference: str, body: s.AmountBody, request: Request,
                  ledger: Ledger = Depends(get_ledger), idem: str | None = Depends(idempotency_key)):
    """A dispute went the buyer's way: the escrow returns to it."""
    return write(request, "refund_escrow", lambda: ledger.refund_escrow(
        address, body.amount, reference, idempotency_key=idem), _one)


@router.post("/escrows/{address}/{reference}/settle", response_model=s.TransactionEnvelope, responses=ERRORS)
def settle_escrow(address: str, reference: str, body: s.SettleEscrowBody, request: Request,
                  ledger: Ledger = Depends(get_ledger), idem: str | None = Depends(idempotency_key)):
    """Partial delivery: pay the seller part and refund the buyer the rest."""
    return write(request, "settle_escrow", lambda: ledger.settle_escrow(
        address, body.seller, body.seller_amount, reference, idempotency_key=idem), _one)


@router.post("/refunds", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def refund(body: s.RefundBody, request: Request, ledger: Ledger = Depends(get_ledger),
           idem: str | None = Depends(idempotency_key)):
    """Credit back a failed transfer (once per agent and reference, never more than paid out)."""
    return write(request, "refund", lambda: ledger.refund(body.agent_address, body.amount, body.reference,
                                                          idempotency_key=idem), _one, 201)


@router.put("/agents/{address}/credit-limit", response_model=s.TransactionEnvelope, responses=ERRORS)
def set_credit_limit(address: str, body: s.CreditLimitBody, request: Request, ledger: Ledger = Depends(get_ledger),
                     idem: str | None = Depends(idempotency_key)):
    return write(request, "set_credit_limit", lambda: ledger.set_credit_limit(address, body.limit,
                                                                              idempotency_key=idem), _one)


@router.post("/transactions/{transaction_id}/reverse", status_code=201, response_model=s.TransactionEnvelope,
             responses=ERRORS)
def reverse(transaction_id: str, body: s.ReverseBody, request: Request, ledger: Ledger = Depends(get_ledger),
            idem: str | None = Depends(idempotency_key)):
    """Record the exact negation of a transaction (at most once)."""
    return write(request, "reversal", lambda: ledger.reverse(transaction_id, body.reason, idempotency_key=idem),
                 _one, 201)


@router.post("/capital", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def contribute_capital(body: s.CapitalBody, request: Request, ledger: Ledger = Depends(get_ledger),
                       idem: str | None = Depends(idempotency_key)):
    """Owners' capital into the treasury (once per reference)."""
    return write(request, "contribute_capital", lambda: ledger.contribute_capital(
        body.amount, body.reference, memo=body.memo, idempotency_key=idem), _one, 201)


@router.post("/opening-balances", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def record_opening_balance(body: s.OpeningBalanceBody, request: Request, ledger: Ledger = Depends(get_ledger),
                           idem: str | None = Depends(idempotency_key)):
    """A balance brought over from an existing ledger, against Equity:Opening."""
    return write(request, "opening_balance", lambda: ledger.record_opening_balance(
        body.account, body.amount, body.reference, idempotency_key=idem), _one, 201)


@router.post("/network-fees", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def pay_network_fee(body: s.NetworkFeeBody, request: Request, ledger: Ledger = Depends(get_ledger),
                    idem: str | None = Depends(idempotency_key)):
    """USDC the platform paid for an on-chain transfer (once per tx hash)."""
    return write(request, "pay_network_fee", lambda: ledger.pay_network_fee(
        body.amount, body.tx_hash, memo=body.memo, idempotency_key=idem), _one, 201)


@router.post("/agents/{address}/write-off", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def write_off_credit(address: str, body: s.WriteOffBody, request: Request, ledger: Ledger = Depends(get_ledger),
                     idem: str | None = Depends(idempotency_key)):
    """Write off credit the agent will not repay (Platform:Credit:<addr> → Expenses:Bad-Debt)."""
    return write(request, "write_off_credit", lambda: ledger.write_off_credit(
        address, body.amount, body.reason, idempotency_key=idem), _one, 201)


@router.post("/adjustments", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def adjust(body: s.AdjustmentBody, request: Request, ledger: Ledger = Depends(get_ledger),
           idem: str | None = Depends(idempotency_key)):
    """A balanced adjusting entry between platform accounts (an agent's account is 422), with a reason."""
    lines = [line.model_dump(exclude_none=True) for line in body.postings]
    return write(request, "adjust", lambda: ledger.adjust(lines, body.reason, idempotency_key=idem), _one, 201)


@router.post("/period-closes", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def close_period(body: s.ClosePeriodBody, request: Request, ledger: Ledger = Depends(get_ledger),
                 idem: str | None = Depends(idempotency_key)):
    """Close the books up to ``end``: income and expenses move to Equity:Retained-Earnings."""
    return write(request, "close_period", lambda: ledger.close_period(body.end, idempotency_key=idem), _one, 201)


@router.put("/agents/{address}/profile", responses=ERRORS)
def set_agent_profile(address: str, body: s.AgentProfileBody, ledger: Ledger = Depends(get_ledger)) -> dict[str, Any]:
    """An agent's display name and metadata (shown on statements, exported as account metadata)."""
    profile = ledger.set_agent_profile(address, display_name=body.display_name, metadata=body.metadata)
    return {"agentAddress": profile.agent_addr, "displayName": profile.display_name,
            "metadata": dict(profile.metadata)}


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {_CAMEL.sub("_", k).lower(): v for k, v in item.items()} if isinstance(item, dict) else item


@router.post("/batch", status_code=201, response_model=s.BatchOut, responses=ERRORS)
def batch(body: s.BatchBody, request: Request, ledger: Ledger = Depends(get_ledger),
          idem: str | None = Depends(idempotency_key)):
    """Many operations in one database transaction: all of them, or none."""
    return write(request, "batch", lambda: ledger.batch([_snake_keys(o) for o in body.operations],
                                                        idempotency_key=idem),
                 lambda txs: s.BatchOut(transactions=[s.transaction_out(t) for t in txs]), 201)


@router.get("/verify", responses=ERRORS)
def verify(ledger: Ledger = Depends(get_ledger)) -> dict[str, Any]:
    """Check the books against themselves (as ``agentbooks verify``); every violation is listed."""
    return verify_database(ledger).to_dict()


@router.post("/reconcile", responses=ERRORS)
def reconcile(body: s.ReconcileBody, ledger: Ledger = Depends(get_ledger)) -> dict[str, Any]:
    """Match on-chain transfers against the ledger (as ``agentbooks reconcile``)."""
    transfers = [parse_transfer(i + 1, item) for i, item in enumerate(body.transfers)]
    return run_reconcile(ledger, transfers, set(body.treasury)).to_dict()


@router.post("/api-keys", status_code=201, response_model=s.ApiKeyOut, responses=ERRORS)
def issue_api_key(body: s.ApiKeyBody, ledger: Ledger = Depends(get_ledger)) -> s.ApiKeyOut:
    """Issue an agent or accountant key; the key is shown only in this response."""
    issued = create_key(ledger.service, body.role, body.agent_address)
    return s.ApiKeyOut(key_id=issued.key_id, api_key=issued.secret, role=issued.role.value,
                       agent_address=issued.agent)
