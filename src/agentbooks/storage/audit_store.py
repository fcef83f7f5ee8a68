"""SQL of the audit trail: the administrative-action record and the journal read by agent and time."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Select, or_, select

from ..domain.model import Transaction
from .journal_store import _transactions
from .tables import admin_actions, agent_entries, journal


def _window(query: Select, column: Any, from_us: int | None, to_us: int | None) -> Select:
    """``query`` limited to ``from_us <= column <= to_us`` (either bound optional)."""
    if from_us is not None:
        query = query.where(column >= from_us)
    if to_us is not None:
        query = query.where(column <= to_us)
    return query


def insert_action(conn: Connection, *, occurred_at_us: int, action: str, initiator: str,
                  request_id: str | None, agent: str | None, details: dict[str, Any]) -> None:
    conn.execute(admin_actions.insert(), {
        "occurred_at_us": occurred_at_us, "action": action, "initiator": initiator, "request_id": request_id,
        "agent": agent, "details_json": json.dumps(details, sort_keys=True, default=str)})


def actions_of(conn: Connection, agent: str, *, from_us: int | None, to_us: int | None,
               action: str | None, limit: int) -> list[dict[str, Any]]:
    """The agent's administrative actions and the book-wide ones (no agent), newest first, at most ``limit``."""
    query = _window(select(admin_actions).where(or_(admin_actions.c.agent == agent, admin_actions.c.agent.is_(None))),
                    admin_actions.c.occurred_at_us, from_us, to_us)
    if action is not None:
        query = query.where(admin_actions.c.action == action)
    rows = conn.execute(query.order_by(admin_actions.c.occurred_at_us.desc(), admin_actions.c.id.desc())
                        .limit(limit)).all()
    return [{**r._asdict(), "details": json.loads(r.details_json)} for r in rows]


def transactions_of(conn: Connection, agent: str, *, from_us: int | None, to_us: int | None,
                    kind: str | None, limit: int) -> list[Transaction]:
    """The journal transactions involving the agent, newest first, at most ``limit``."""
    query = _window(select(agent_entries.c.seq).join(journal, journal.c.seq == agent_entries.c.seq)
                    .where(agent_entries.c.agent == agent), journal.c.occurred_at_us, from_us, to_us)
    if kind is not None:
        query = query.where(journal.c.kind == kind)
    seqs = list(conn.execute(query.order_by(agent_entries.c.seq.desc()).limit(limit)).scalars())
    return _transactions(conn, journal.c.seq.in_(seqs), order_desc=True) if seqs else []
