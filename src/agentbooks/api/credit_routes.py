"""The original's credit routes: an agent applies for a credit line; readers list the active ones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ..api_keys import Principal
from ..credit import MAX_ACTIVE_CREDIT_LINES, active_credit_lines, apply_for_credit
from ..domain.money import to_decimal
from ..ledger import Ledger
from . import schemas as s
from .deps import agent_mover, get_ledger, require_reader
from .respond import as_caller

router = APIRouter(prefix="/v1", tags=["credit"])
ERRORS = {code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 422)}


@router.post("/agents/{address}/credit/apply", responses=ERRORS)
def apply(request: Request, agent: str = Depends(agent_mover), ledger: Ledger = Depends(get_ledger)) -> dict[str, Any]:
    """Score the agent (the server's pluggable scorer; by default its own ledger history) and, from a
    score of 50, set its credit limit to (score - 50) x 1.8 + 10 USDC; below 50 the application is denied."""
    with as_caller(request):
        decision = apply_for_credit(ledger, agent, request.app.state.credit_scorer)
    return {"agentAddr": decision.agent, "approved": decision.approved, "score": str(decision.score),
            "creditLimit": s.decimal_text(decision.credit_limit) if decision.credit_limit is not None else None,
            "reason": decision.reason,
            "transaction": s.transaction_out(decision.transaction).model_dump(by_alias=True, mode="json")
            if decision.transaction else None}


@router.get("/credit/active", responses=ERRORS)
def active(ledger: Ledger = Depends(get_ledger), _: Principal = Depends(require_reader),
           limit: int = Query(1000, ge=1, le=MAX_ACTIVE_CREDIT_LINES)) -> dict[str, Any]:
    """Agents with a credit line (limit above zero), by address, and how much of it each uses."""
    lines = [{"agentAddr": agent, "creditLimit": s.decimal_text(limit_), "creditUsed": s.decimal_text(used),
              "available": s.decimal_text(max(limit_ - used, to_decimal(0)))}
             for agent, limit_, used in active_credit_lines(ledger, limit=limit)]
    return {"credits": lines, "count": len(lines)}
