"""Running a ledger write for a route: metrics, idempotent-replay header, JSON body."""

from __future__ import annotations

from typing import Callable, ContextManager, Sequence

from fastapi import Request
from fastapi.responses import JSONResponse

from ..context import CallContext, calling
from ..domain.model import DryRun, Transaction
from .schemas import Wire, dry_run_out

REPLAY_HEADER = "Idempotent-Replay"


def as_caller(request: Request) -> ContextManager[CallContext]:
    """The route's calls run as its authenticated caller, with the request's id (the audit trail).

    Set here, on the thread that runs the route: a dependency runs on another thread, and a
    context variable it set would not reach the route.
    """
    principal = getattr(request.state, "principal", None)
    return calling(principal.initiator if principal else "anonymous", getattr(request.state, "request_id", None))


def write(request: Request, kind: str, work: Callable[[], Transaction | Sequence[Transaction] | DryRun],
          render: Callable[[Transaction | Sequence[Transaction]], Wire], status_code: int = 200) -> JSONResponse:
    """Run ``work`` as the caller and answer with ``render`` of its transactions, or the plan of a dry run (200)."""
    with as_caller(request):
        result = request.app.state.metrics.observe(kind, work)
    if isinstance(result, DryRun):
        return JSONResponse(dry_run_out(result).model_dump(by_alias=True, mode="json"), status_code=200)
    txs = result if isinstance(result, (list, tuple)) else [result]
    headers = {REPLAY_HEADER: "true"} if any(t.replayed for t in txs) else {}
    return JSONResponse(render(result).model_dump(by_alias=True, mode="json"), status_code=status_code,
                        headers=headers)
