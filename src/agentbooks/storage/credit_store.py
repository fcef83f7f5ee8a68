"""SQL behind credit scoring and the list of active credit lines."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from ..domain.model import AgentState, Kind
from .journal_store import from_us, read_agents
from .tables import agent_entries, agents, journal


def agents_with_credit(conn: Connection, *, limit: int) -> list[AgentState]:
    """Agents whose credit limit is above zero, by address, at most ``limit``."""
    addresses = list(conn.execute(
        select(agents.c.address).where(agents.c.credit_limit_micros > 0).order_by(agents.c.address).limit(limit)
    ).scalars())
    states = read_agents(conn, addresses)
    return [states[a] for a in addresses]


def agent_activity(conn: Connection, agent: str) -> tuple[int, datetime | None, int]:
    """(transactions involving the agent, the first one's time, reversals of its transactions)."""
    count, first_seq = conn.execute(
        select(func.count(), func.min(agent_entries.c.seq)).where(agent_entries.c.agent == agent)).one()
    first_at = None
    if first_seq is not None:
        first_at = from_us(conn.execute(select(journal.c.occurred_at_us).where(journal.c.seq == first_seq)).scalar_one())
    reversals = conn.execute(
        select(func.count()).select_from(agent_entries.join(journal, journal.c.seq == agent_entries.c.seq))
        .where(agent_entries.c.agent == agent, journal.c.kind == Kind.REVERSAL.value)).scalar_one()
    return count, first_at, reversals
