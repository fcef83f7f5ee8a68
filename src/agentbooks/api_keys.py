"""API keys: who may call the HTTP API, as which role.

A key is shown once, at creation; only its sha256 is stored. Roles:
``agent`` (reads and moves only its own agent's money) and ``accountant``
(reads everything, moves nothing). The admin is not a key: it is the
server's admin secret.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from . import audit
from .storage import audit_store
from .domain.addresses import normalize_address
from .domain.errors import InvalidArgument, NotFound
from .service import LedgerService
from .storage.journal_store import to_us
from .storage.tables import api_keys

KEY_PREFIX = "abk_"


class Role(str, enum.Enum):
    ADMIN = "admin"
    AGENT = "agent"
    ACCOUNTANT = "accountant"


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    agent: str | None = None
    key_id: str | None = None

    @property
    def initiator(self) -> str:
        """How the audit trail names this caller: ``admin`` or ``api-key:<id>:<role>``."""
        return f"api-key:{self.key_id}:{self.role.value}" if self.key_id else self.role.value

    @property
    def name(self) -> str:
        """Stable identity, used to scope idempotency keys per caller."""
        return self.key_id or self.role.value


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    secret: str  # shown once
    role: Role
    agent: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(service: LedgerService, role: Role | str, agent: str | None = None) -> IssuedKey:
    try:
        role = Role(role)
    except ValueError:
        raise InvalidArgument("role must be agent or accountant", field="role") from None
    if role is Role.ADMIN:
        raise InvalidArgument("the admin is the server's admin secret, not a key", field="role")
    if role is Role.AGENT:
        if agent is None:
            raise InvalidArgument("an agent key needs the agent's address", field="agentAddress")
        agent = normalize_address(agent, field="agentAddress")
    elif agent is not None:
        raise InvalidArgument("an accountant key belongs to no agent", field="agentAddress")
    key_id = secrets.token_hex(8)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = service.clock()
    row = {"key_id": key_id, "key_hash": _digest(secret), "role": role.value, "agent": agent,
           "created_at_us": to_us(now), "revoked_at_us": None}
    action = audit.action_row(service, audit.API_KEY_CREATED, agent, {"key_id": key_id, "role": role.value}, at=now)

    def insert(conn: Connection) -> None:
        conn.execute(api_keys.insert(), row)
        audit_store.insert_action(conn, **action)

    service.write(insert)
    return IssuedKey(key_id, secret, role, agent)


def find_principal(service: LedgerService, secret: str) -> Principal | None:
    """The key's principal, or None for an unknown or revoked key."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    row = service.read(lambda conn: conn.execute(
        select(api_keys.c.key_id, api_keys.c.role, api_keys.c.agent)
        .where(api_keys.c.key_hash == _digest(secret), api_keys.c.revoked_at_us.is_(None))
    ).first(), single_statement=True)
    return Principal(Role(row.role), row.agent, row.key_id) if row else None


def revoke_key(service: LedgerService, key_id: str) -> None:
    now = service.clock()

    def revoke(conn: Connection) -> int:
        revoked = conn.execute(
            update(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at_us.is_(None))
            .values(revoked_at_us=to_us(now))
        ).rowcount
        if revoked == 1:
            agent = conn.execute(select(api_keys.c.agent).where(api_keys.c.key_id == key_id)).scalar()
            audit_store.insert_action(conn, **audit.action_row(service, audit.API_KEY_REVOKED, agent,
                                                               {"key_id": key_id}, at=now))
        return revoked

    if service.write(revoke) != 1:
        raise NotFound(f"no active API key {key_id!r}", key_id=key_id)
