"""Platform routes (``/v1/admin/…``): deposits, hold and escrow outcomes, credit, corrections, keys.

All need the admin secret (``X-Admin-Secret``); with no secret configured
the server refuses them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from .. import audit_runs as audit
from ..audit import DEFAULT_AUDIT_LIMIT, audit_entries
from ..api_keys import create_key
from ..domain.addresses import normalize_address
from ..ledger import Ledger, plan_net_settlement
from ..reconcile.runs import build_window, inputs_digest, parse_treasury_balance
from ..reconcile.transfers import ReadOptions, parse_records
from ..verify.database import verify_database
from ..verify.per_agent import MAX_AGENTS, per_agent
from . import schemas as s
from .deps import WriteCall, get_ledger, idempotency_key, require_admin, write_call
from .respond import as_caller, write

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])
ERRORS = {code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 422)}
WRITE_ERRORS = {**ERRORS, 200: {"model": s.DryRunOut, "description": "dryRun=true: what the call would record"}}


def _one(tx: Any) -> s.TransactionEnvelope:
    return s.TransactionEnvelope(transaction=s.transaction_out(tx))


@router.post("/deposits", status_code=201, response_model=s.TransactionEnvelope, responses=WRITE_ERRORS)
def record_deposit(body: s.DepositBody, request: Request, ledger: Ledger = Depends(get_ledger),
                   call: WriteCall = Depends(write_call)):
    """Record an on-chain USDC deposit; a repeated (chainId, txHash, logIndex) is 409 duplicate_deposit."""
    return write(request, "deposit", lambda: ledger.deposit(
        body.agent_address, body.amount, body.tx_hash, chain_id=body.chain_id, log_index=body.log_index,
        block_number=body.block_number, block_hash=body.block_hash, **call.options(body)), _one, 201)


@router.post("/suspense/{transaction_id}/assign", response_model=s.TransactionEnvelope, responses=ERRORS)
def assign_suspense(transaction_id: str, body: s.AssignSuspenseBody, request: Request,
                    ledger: Ledger = Depends(get_ledger), idem: str | None = Depends(idempotency_key)):
    """A suspense receipt (USDC from no known agent) is this agent's: credit it; once per receipt."""
    return write(request, "assign_suspense", lambda: ledger.assign_suspense(
        transaction_id, body.agent_address, idempotency_key=idem), _one)


@router.post("/suspense/{transaction_id}/return", response_model=s.TransactionEnvelope, responses=ERRORS)
def return_suspense(transaction_id: str, body: s.ReturnSuspenseBody, request: Request,
                    ledger: Ledger = Depends(get_ledger), idem: str | None = Depends(idempotency_key)):
    """A suspense receipt was sent back to its sender on chain; once per receipt."""
    return write(request, "return_suspense", lambda: ledger.return_suspense(
        transaction_id, body.tx_hash, idempotency_key=idem), _one)


@router.post("/withdrawals", status_code=201, response_model=s.TransactionEnvelope, responses=WRITE_ERRORS)
def record_withdrawal(body: s.AdminWithdrawBody, request: Request, ledger: Ledger = Depends(get_ledger),
                      call: WriteCall = Depends(write_call)):
    """Record a withdrawal already sent on chain (own funds only); a repeated (chainId, txHash, logIndex) is 409."""
    return write(request, "withdraw", lambda: ledger.withdraw(
        body.agent_address, body.amount, body.tx_hash, chain_id=body.chain_id, log_index=body.log_index,
        destination=body.destination, block_number=body.block_number, block_hash=body.block_hash,
        **call.options(body)), _one, 201)


@router.post("/holds/{address}/{reference}/confirm",
             response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def confirm_hold(address: str, reference: str, body: s.ConfirmBody, request: Request,
                 ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """The held transfer went out on chain: the money leaves the platform."""
    return write(request, "confirm_hold", lambda: ledger.confirm_hold(
        address, body.amount, reference, tx_hash=body.tx_hash, chain_id=body.chain_id, log_index=body.log_index,
        destination=body.destination, block_number=body.block_number, block_hash=body.block_hash,
        **call.options(body)), _one)


@router.post("/holds/{address}/{reference}/release",
             response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def release_hold(address: str, reference: str, body: s.ReleaseBody, request: Request,
                 ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """The held transfer failed: the money returns (credit first)."""
    return write(request, "release_hold", lambda: ledger.release_hold(
        address, body.amount, reference, reason=body.reason, **call.options(body)), _one)


@router.post("/holds/{address}/{reference}/settle",
             response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def settle_hold(address: str, reference: str, body: s.SettleHoldBody, request: Request,
                ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """Pay a seller from the buyer's hold, keeping an optional platform fee."""
    return write(request, "settle_hold", lambda: ledger.settle_hold(
        address, body.seller, body.amount, reference, fee=body.fee, **call.options(body)), _one)


@router.post("/holds/sweep", response_model=s.BatchOut, responses=ERRORS)
def sweep_expired_holds(request: Request, ledger: Ledger = Depends(get_ledger)):
    """Release what is left of every expired hold."""
    return write(request, "sweep", ledger.sweep_expired_holds,
                 lambda txs: s.BatchOut(transactions=[s.transaction_out(t) for t in txs]))


@router.post("/escrows/{address}/{reference}/release",
             response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def release_escrow(address: str, reference: str, body: s.ReleaseEscrowBody, request: Request,
                   ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    return write(request, "release_escrow", lambda: ledger.release_escrow(
        address, body.seller, body.amount, reference, **call.options(body)), _one)


@router.post("/escrows/{address}/{reference}/refund",
             response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def refund_escrow(address: str, reference: str, body: s.AmountBody, request: Request,
                  ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """A dispute went the buyer's way: the escrow returns to it."""
    return write(request, "refund_escrow", lambda: ledger.refund_escrow(
        address, body.amount, reference, **call.options(body)), _one)


@router.post("/escrows/{address}/{reference}/settle",
             response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def settle_escrow(address: str, reference: str, body: s.SettleEscrowBody, request: Request,
                  ledger: Ledger = Depends(get_ledger), call: WriteCall = Depends(write_call)):
    """Partial delivery: pay the seller part and refund the buyer the rest."""
    return write(request, "settle_escrow", lambda: ledger.settle_escrow(
        address, body.seller, body.seller_amount, reference, **call.options(body)), _one)


@router.post("/refunds", status_code=201, response_model=s.TransactionEnvelope, responses=WRITE_ERRORS)
def refund(body: s.RefundBody, request: Request, ledger: Ledger = Depends(get_ledger),
           call: WriteCall = Depends(write_call)):
    """Credit back a failed transfer (once per agent and reference, never more than paid out)."""
    return write(request, "refund", lambda: ledger.refund(body.agent_address, body.amount, body.reference,
                                                          **call.options(body)), _one, 201)


@router.put("/agents/{address}/credit-limit", response_model=s.TransactionEnvelope | s.DryRunOut, responses=ERRORS)
def set_credit_limit(address: str, body: s.CreditLimitBody, request: Request, ledger: Ledger = Depends(get_ledger),
                     call: WriteCall = Depends(write_call)):
    return write(request, "set_credit_limit", lambda: ledger.set_credit_limit(address, body.limit,
                                                                              **call.options(body)), _one)


@router.post("/transactions/{transaction_id}/reverse", status_code=201, response_model=s.TransactionEnvelope,
             responses=WRITE_ERRORS)
def reverse(transaction_id: str, body: s.ReverseBody, request: Request, ledger: Ledger = Depends(get_ledger),
            call: WriteCall = Depends(write_call)):
    """Record the exact negation of a transaction (at most once)."""
    return write(request, "reversal", lambda: ledger.reverse(transaction_id, body.reason, **call.options(body)),
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


@router.post("/batch", status_code=201, response_model=s.BatchOut, responses=WRITE_ERRORS)
def batch(body: s.BatchBody, request: Request, ledger: Ledger = Depends(get_ledger),
          call: WriteCall = Depends(write_call)):
    """Many operations in one database transaction: all of them, or none."""
    return write(request, "batch", lambda: ledger.batch([_snake_keys(o) for o in body.operations],
                                                        **call.options(body)),
                 lambda txs: s.BatchOut(transactions=[s.transaction_out(t) for t in txs]), 201)


@router.get("/verify", responses=ERRORS)
def verify(request: Request, ledger: Ledger = Depends(get_ledger)) -> dict[str, Any]:
    """Check the books against themselves (as ``agentbooks verify``); every violation is listed."""
    with as_caller(request):
        return audit.verified(ledger).to_dict()


@router.post("/reconcile", responses=ERRORS)
def reconcile(body: s.ReconcileBody, request: Request, ledger: Ledger = Depends(get_ledger)) -> dict[str, Any]:
    """Match chain data against the ledger (as ``agentbooks reconcile``, with its options in camelCase)."""
    options = ReadOptions(token=normalize_address(body.token, field="token") if body.token else None,
                          chain_id=body.chain_id, decimals=body.decimals)
    transfers = parse_records(body.transfers, options)
    window = build_window(from_block=body.from_block, to_block=body.to_block, start=body.start, end=body.end,
                          confirmations=body.confirmations, head_block=body.head_block)
    balances = [parse_treasury_balance(f"{b.address}={b.amount}@{b.block}") for b in body.treasury_balances]
    digest = inputs_digest(json.dumps(body.transfers, sort_keys=True).encode(),
                           {"token": options.token, "chainId": body.chain_id, "decimals": body.decimals,
                            "treasury": sorted(body.treasury)})
    with as_caller(request):
        _, result = audit.reconciled(ledger, transfers, body.treasury, window=window, balances=balances,
                                     digest=digest, record=body.record)
    return result


@router.post("/api-keys", status_code=201, response_model=s.ApiKeyOut, responses=ERRORS)
def issue_api_key(body: s.ApiKeyBody, request: Request, ledger: Ledger = Depends(get_ledger)) -> s.ApiKeyOut:
    """Issue an agent or accountant key; the key is shown only in this response."""
    with as_caller(request):
        issued = create_key(ledger.service, body.role, body.agent_address)
    return s.ApiKeyOut(key_id=issued.key_id, api_key=issued.secret, role=issued.role.value,
                       agent_address=issued.agent)


@router.get("/audit", responses=ERRORS)
def audit_trail(agent: str = Query(..., description="the agent whose trail to show"),
                start: str | None = Query(None, alias="from", description="RFC 3339, inclusive"),
                end: str | None = Query(None, alias="to", description="RFC 3339, inclusive"),
                operation: str | None = Query(None, description="a transaction kind or an administrative action"),
                limit: int = Query(DEFAULT_AUDIT_LIMIT, le=1000, description="at most this many; <= 0 means 100"),
                ledger: Ledger = Depends(get_ledger)) -> dict[str, Any]:
    """Who did what to the agent's books, newest first: its journal transactions (initiator and request
    id inside the hash chain) and the administrative actions that move no money (the original's shape)."""
    entries = audit_entries(ledger.service, agent, start=start, end=end, operation=operation, limit=limit)
    return {"entries": [{**e, "timestamp": s.time_text(e["timestamp"])} for e in entries], "count": len(entries)}


@router.get("/reconcile", responses=ERRORS)
def reconcile_agents(request: Request, ledger: Ledger = Depends(get_ledger),
                     limit: int = Query(1000, ge=1, le=MAX_AGENTS)) -> dict[str, Any]:
    """The original's per-agent comparison of balances with the journal: one ``verify`` run, each
    agent's balances beside the violations that name it (recorded as a verification run)."""
    with as_caller(request):
        return per_agent(ledger, audit.verified(ledger), limit=limit)


@router.post("/reversals", status_code=201, response_model=s.TransactionEnvelope, responses=ERRORS)
def request_reversal(body: s.ReversalBody, request: Request, ledger: Ledger = Depends(get_ledger),
                     idem: str | None = Depends(idempotency_key)):
    """The original's reversal request: the same operation as ``POST /transactions/{id}/reverse``."""
    return write(request, "reversal", lambda: ledger.reverse(body.transaction_id, body.reason, idempotency_key=idem),
                 _one, 201)


@router.post("/net-settlements", responses=ERRORS)
def net_settlement(body: s.NetSettlementBody, request: Request, ledger: Ledger = Depends(get_ledger),
                   idem: str | None = Depends(idempotency_key)):
    """Net the obligations into the fewest transfers (the original's NetSettle, in a deterministic
    order) and, unless ``execute`` is false, record them as one atomic batch."""
    netted = [{"from": o.from_agent, "to": o.to_agent, "amount": s.micros_text(o.amount_micros)}
              for o in plan_net_settlement(body.transfers)]
    if not body.execute:
        return {"transfers": netted, "count": len(netted), "transactions": []}
    return write(request, "net_settlement",
                 lambda: ledger.net_settle(body.transfers, body.reference, idempotency_key=idem),
                 lambda txs: s.NetSettlementOut(transfers=netted, count=len(netted),
                                                transactions=[s.transaction_out(t) for t in txs]))
