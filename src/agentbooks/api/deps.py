"""Request dependencies: the ledger, the caller (auth), the idempotency key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Header, HTTPException, Query, Request

from ..api_keys import Principal, Role, find_principal
from ..domain.addresses import normalize_address
from ..ledger import Ledger

MAX_IDEMPOTENCY_KEY_LENGTH = 200
MAX_SEQ = 2**62  # journal sequences are BIGINT; larger query values are refused, not overflowed


class AuthError(HTTPException):
    """401/403 with the API's error shape (see errors.py)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(status_code=status_code, detail={"error": code, "message": message})


def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger


def get_principal(
    request: Request,
    authorization: str | None = Header(None, description="Bearer <agent or accountant API key>"),
    x_api_key: str | None = Header(None, description="an agent or accountant API key"),
    x_admin_secret: str | None = Header(None, description="the server's admin secret"),
) -> Principal:
    admin_secret: str | None = request.app.state.admin_secret
    if x_admin_secret is not None:
        if not admin_secret:
            raise AuthError(403, "admin_disabled", "admin routes are disabled: the server has no admin secret")
        if not hmac.compare_digest(x_admin_secret.encode(), admin_secret.encode()):
            raise AuthError(401, "unauthorized", "wrong admin secret")
        request.state.principal = Principal(Role.ADMIN)
        return request.state.principal
    secret = x_api_key
    if secret is None and authorization is not None:
        scheme, _, token = authorization.partition(" ")
        secret = token.strip() if scheme.lower() == "bearer" else None
    if not secret:
        raise AuthError(401, "unauthorized", "send an API key (Authorization: Bearer … or X-API-Key)")
    principal = find_principal(request.app.state.ledger.service, secret)
    if principal is None:
        raise AuthError(401, "unauthorized", "unknown or revoked API key")
    request.state.principal = principal  # the audit trail's initiator (see respond.as_caller)
    return principal


def require_admin(principal: Principal = Depends(get_principal)) -> Principal:
    if principal.role is not Role.ADMIN:
        raise AuthError(403, "forbidden", "this route needs the admin secret")
    return principal


def require_reader(principal: Principal = Depends(get_principal)) -> Principal:
    """Admins and accountants read the whole books."""
    if principal.role not in (Role.ADMIN, Role.ACCOUNTANT):
        raise AuthError(403, "forbidden", "this route needs an accountant key or the admin secret")
    return principal


def agent_reader(address: str, principal: Principal = Depends(get_principal)) -> str:
    """The path's agent, if the caller may read it (itself, an accountant or the admin)."""
    agent = normalize_address(address, field="address")
    if principal.role is Role.AGENT and principal.agent != agent:
        raise AuthError(403, "forbidden", "an agent key reads only its own agent")
    return agent


def agent_mover(address: str, principal: Principal = Depends(get_principal)) -> str:
    """The path's agent, if the caller may move its money (itself or the admin; never an accountant)."""
    agent = normalize_address(address, field="address")
    if principal.role is Role.ACCOUNTANT:
        raise AuthError(403, "forbidden", "an accountant key is read-only")
    if principal.role is Role.AGENT and principal.agent != agent:
        raise AuthError(403, "forbidden", "an agent key moves only its own agent's money")
    return agent


def idempotency_key(
    principal: Principal = Depends(get_principal),
    key: str | None = Header(None, alias="Idempotency-Key",
                             description="retry-safe key: the same key and body replay the first response"),
) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise AuthError(400, "invalid_idempotency_key", f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return f"{principal.name}:{key}"  # scoped per caller: two clients never collide


@dataclass(frozen=True)
class WriteCall:
    """A mutating call's options: its idempotency key, whether it is a dry run, and (``options``) the body's metadata."""

    idempotency_key: str | None
    dry_run: bool

    def options(self, body: Any) -> dict[str, Any]:
        return {"idempotency_key": self.idempotency_key, "dry_run": self.dry_run, "metadata": body.metadata}


def write_call(
    idem: str | None = Depends(idempotency_key),
    dry_run: bool = Query(False, alias="dryRun", description="validate and plan only: answer what the call would "
                          "record and the balances after; nothing is written and no idempotency key is claimed"),
) -> WriteCall:
    return WriteCall(idem, dry_run)
