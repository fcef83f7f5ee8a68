"""One error shape for every failure: ``{"error": code, "message": ..., "details"?}``.

The status of a ledger error comes from its class (``LedgerError.http_status``),
so the mapping lives in one place. Validation errors name the field. Anything
unexpected is logged with the request id and answered 500 without internals.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException  # the base class: also body-parsing and routing errors

from ..domain.errors import LedgerError
from .respond import REPLAY_HEADER

log = logging.getLogger("agentbooks.api")


def _body(code: str, message: str, details: dict | None = None) -> dict:
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        # An idempotency key's stored refusal is replayed like a stored success: same body, marked.
        headers = {REPLAY_HEADER: "true"} if exc.replayed else None
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
            problems.append(f"{where}: {err.get('msg')}")
        message = "; ".join(problems)[:1000] or "invalid request"
        return JSONResponse(_body("invalid_request", message, {"fields": [p.split(":")[0] for p in problems]}),
                            status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict) and "error" in exc.detail:
            body = exc.detail
        else:
            body = _body({400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(
                exc.status_code, "http_error"), str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))



def internal_error(request_id: str) -> JSONResponse:
    """A bug, not bad input: logged with the request id, answered without internals."""
    log.exception("unhandled error", extra={"request_id": request_id})
    return JSONResponse(_body("internal_error", "internal error; quote the X-Request-ID header when reporting it"),
                        status_code=500)
