"""The audit trail: who did what, from the journal (every transaction records its initiator and
request id inside the hash chain) and from the record of administrative actions that move no money.

``record_action`` appends one administrative action, with the current call context
(``agentbooks.context``) as its initiator. ``audit_entries`` merges both halves for one agent,
newest first: what ``GET /v1/admin/audit`` serves. A book-wide action (a verification or
reconciliation run) has no agent and appears in every agent's trail: it covered their books too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from . import context as call_context
from .domain.addresses import normalize_address
from .domain.errors import InvalidArgument, LedgerError
from .domain.model import Transaction
from .domain.money import format_micros
from .requests import parse_time
from .service import LedgerService
from .storage import audit_store
from .storage.journal_store import from_us, to_us

DEFAULT_AUDIT_LIMIT = 100  # the original's
MAX_AUDIT_LIMIT = 1000

API_KEY_CREATED = "api_key_created"
API_KEY_REVOKED = "api_key_revoked"
CREDIT_LIMIT_SET = "credit_limit_set"
CREDIT_APPLIED = "credit_applied"
REVERSAL_REQUESTED = "reversal_requested"
VERIFICATION_RUN = "verification_run"
RECONCILIATION_RUN = "reconciliation_run"
ACTIONS = (API_KEY_CREATED, API_KEY_REVOKED, CREDIT_LIMIT_SET, CREDIT_APPLIED, REVERSAL_REQUESTED,
           VERIFICATION_RUN, RECONCILIATION_RUN)


def action_row(service: LedgerService, action: str, agent: str | None, details: dict[str, Any], *,
               at: datetime | None = None) -> dict[str, Any]:
    """The row ``record_action`` writes (for callers that write it inside their own transaction)."""
    caller = call_context.current()
    return {"occurred_at_us": to_us(at or service.clock()), "action": action, "initiator": caller.initiator,
            "request_id": caller.request_id, "agent": agent, "details": details}


def record_action(service: LedgerService, action: str, *, agent: str | None = None, at: datetime | None = None,
                  **details: Any) -> None:
    row = action_row(service, action, agent, details, at=at)
    service.write(lambda conn: audit_store.insert_action(conn, **row))


def audited(service: LedgerService, action: str, agent: str | None, details: dict[str, Any],
            work: Callable[[], Transaction]) -> Transaction:
    """Run an administrative request and record it with its outcome ("ok" or the error code).

    An accepted request is recorded at its transaction's time, with the transaction's id.
    """
    try:
        tx = work()
    except LedgerError as exc:
        record_action(service, action, agent=agent, **details, outcome=exc.code)
        raise
    record_action(service, action, agent=agent, at=tx.occurred_at, **details, recorded_id=tx.id, outcome="ok")
    return tx


def _entry_of_transaction(tx: Transaction, agent: str) -> dict[str, Any]:
    meta = dict(tx.metadata)
    return {"id": tx.id, "timestamp": tx.occurred_at, "agentAddr": agent, "operation": tx.kind.value,
            "actor": meta.get("initiator"), "requestId": meta.get("request_id"), "source": "journal",
            "seq": tx.seq, "amount": format_micros(tx.movement_micros(agent)), "reference": tx.reference,
            "counterparty": tx.counterparty if tx.agent == agent else tx.agent, "hash": tx.hash}


def _entry_of_action(row: dict[str, Any], agent: str) -> dict[str, Any]:
    return {"id": f"action-{row['id']}", "timestamp": from_us(row["occurred_at_us"]), "agentAddr": agent,
            "operation": row["action"], "actor": row["initiator"], "requestId": row["request_id"],
            "source": "admin", "details": row["details"]}


def audit_entries(service: LedgerService, agent: str, *, start: datetime | str | None = None,
                  end: datetime | str | None = None, operation: str | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """The agent's audit trail, newest first: journal transactions and administrative actions."""
    address = normalize_address(agent, field="agent")
    if limit is None or (isinstance(limit, int) and not isinstance(limit, bool) and limit <= 0):
        limit = DEFAULT_AUDIT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit > MAX_AUDIT_LIMIT:
        raise InvalidArgument(f"limit must be an integer up to {MAX_AUDIT_LIMIT}", field="limit")
    if operation is not None and (not isinstance(operation, str) or len(operation) > 32):
        raise InvalidArgument("operation is a transaction kind or an administrative action", field="operation")
    from_us = to_us(parse_time(start, field="from")) if start is not None else None
    to_us_ = to_us(parse_time(end, field="to")) if end is not None else None
    # An operation names either administrative actions or transaction kinds ("-" matches nothing).
    kind, action = (None, None) if operation is None else ("-", operation) if operation in ACTIONS else (operation, "-")

    def read(conn: Any) -> list[dict[str, Any]]:
        txs = audit_store.transactions_of(conn, address, from_us=from_us, to_us=to_us_, kind=kind, limit=limit)
        actions = audit_store.actions_of(conn, address, from_us=from_us, to_us=to_us_,
                                         action=action, limit=limit)
        return [_entry_of_transaction(t, address) for t in txs] + [_entry_of_action(a, address) for a in actions]

    entries = service.read(read)
    entries.sort(key=lambda e: e["timestamp"], reverse=True)
    return entries[:limit]
