"""SQL of the events publisher: its position in the journal, balance monitors, webhook deliveries,
and the balances as of a journal sequence that a page of published transactions starts from.

The publisher only reads the books (and writes its own three tables), so it never takes a lock a
ledger writer waits for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import Connection, and_, delete, func, select, update

from ..domain.model import Kind
from ..domain.monitors import BalanceMonitor, Comparison, Metric, MonitorCondition, TargetKind
from .journal_store import _insert
from .tables import balance_monitors, balances, journal, monitor_deliveries, postings, publisher_positions

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


# --- the publisher's position -----------------------------------------------------------


def read_position(conn: Connection, name: str) -> int:
    """The last journal sequence the publisher ``name`` has published (0 before the first)."""
    found = conn.execute(select(publisher_positions.c.last_seq).where(publisher_positions.c.name == name)).scalar()
    return int(found or 0)


def save_position(conn: Connection, name: str, last_seq: int, at_us: int) -> None:
    """Move the position forward (never back: a late, slower twin can not rewind it)."""
    conn.execute(_insert(conn, publisher_positions).on_conflict_do_nothing(),
                 {"name": name, "last_seq": 0, "updated_at_us": at_us})
    conn.execute(update(publisher_positions)
                 .where(publisher_positions.c.name == name, publisher_positions.c.last_seq < last_seq)
                 .values(last_seq=last_seq, updated_at_us=at_us))


# --- balances as of a sequence ------------------------------------------------------------


def balances_as_of(conn: Connection, accounts: Iterable[str], seq: int) -> dict[str, int]:
    """Beancount-signed balances after journal sequence ``seq``: the cache minus what came later.

    Cheap when the publisher keeps up (it sums only the postings after ``seq``); run it in the
    same read snapshot as the page it starts, so the cache and the postings agree.
    """
    names = sorted(set(accounts))
    if not names:
        return {}
    found = {a: 0 for a in names}
    for account, total in conn.execute(
        select(balances.c.account, func.sum(balances.c.balance_micros))
        .where(balances.c.account.in_(names)).group_by(balances.c.account)
    ):
        found[account] = int(total)
    for account, later in conn.execute(
        select(postings.c.account, func.sum(postings.c.amount_micros))
        .where(postings.c.account.in_(names), postings.c.seq > seq).group_by(postings.c.account)
    ):
        found[account] -= int(later)
    return found


def credit_limits_as_of(conn: Connection, agents: Iterable[str], seq: int) -> dict[str, int]:
    """Each agent's credit limit after journal sequence ``seq`` (0 if never set)."""
    wanted = sorted(set(agents))
    if not wanted:
        return {}
    last = (
        select(journal.c.agent, func.max(journal.c.seq).label("seq"))
        .where(journal.c.agent.in_(wanted), journal.c.kind == Kind.SET_CREDIT_LIMIT.value, journal.c.seq <= seq)
        .group_by(journal.c.agent)
        .subquery()
    )
    limits = dict(conn.execute(
        select(journal.c.agent, journal.c.credit_limit_micros).join(last, journal.c.seq == last.c.seq)
    ).all())
    return {a: int(limits.get(a) or 0) for a in wanted}


# --- monitors -------------------------------------------------------------------------------


def _monitor(r) -> BalanceMonitor:  # type: ignore[no-untyped-def]
    condition = MonitorCondition(TargetKind(r.target_kind), r.target, Metric(r.metric), Comparison(r.comparison),
                                 r.threshold_micros)
    return BalanceMonitor(r.id, condition, r.after_seq, r.created_at_us, r.webhook_url, r.webhook_secret)


def insert_monitor(conn: Connection, monitor: BalanceMonitor) -> None:
    c = monitor.condition
    conn.execute(balance_monitors.insert(), {
        "id": monitor.id, "target_kind": c.target_kind.value, "target": c.target, "metric": c.metric.value,
        "comparison": c.comparison.value, "threshold_micros": c.threshold_micros,
        "webhook_url": monitor.webhook_url, "webhook_secret": monitor.webhook_secret,
        "after_seq": monitor.after_seq, "created_at_us": monitor.created_at_us,
    })


def count_monitors(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(balance_monitors)).scalar_one())


def list_monitors(conn: Connection) -> list[BalanceMonitor]:
    return [_monitor(r) for r in conn.execute(select(balance_monitors).order_by(balance_monitors.c.created_at_us,
                                                                                   balance_monitors.c.id))]


def delete_monitor(conn: Connection, monitor_id: str) -> bool:
    """Remove a monitor and its undelivered webhook calls; False when there was none."""
    conn.execute(delete(monitor_deliveries).where(monitor_deliveries.c.monitor_id == monitor_id))
    return conn.execute(delete(balance_monitors).where(balance_monitors.c.id == monitor_id)).rowcount == 1


# --- webhook deliveries -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    monitor_id: str
    seq: int
    body: str
    state: str
    attempts: int
    next_attempt_at_us: int
    last_error: str | None
    url: str | None = None
    secret: str | None = None


def enqueue_deliveries(conn: Connection, rows: Sequence[tuple[str, int, str]], at_us: int) -> None:
    """Queue (monitor id, seq, body) webhook calls; a row already queued (a re-published page) stays,
    and a monitor deleted since the page was read gets none."""
    if not rows:
        return
    alive = set(conn.execute(select(balance_monitors.c.id).where(
        balance_monitors.c.id.in_(sorted({m for m, _, _ in rows})))).scalars())
    wanted = [{"monitor_id": m, "seq": seq, "body": body, "state": PENDING, "attempts": 0,
               "next_attempt_at_us": at_us, "last_error": None}
              for m, seq, body in rows if m in alive]
    if wanted:
        conn.execute(_insert(conn, monitor_deliveries).on_conflict_do_nothing(), wanted)


def due_deliveries(conn: Connection, now_us: int, limit: int) -> list[Delivery]:
    """Pending calls whose time has come, oldest first, with their monitor's URL and secret."""
    rows = conn.execute(
        select(monitor_deliveries, balance_monitors.c.webhook_url, balance_monitors.c.webhook_secret)
        .join(balance_monitors, balance_monitors.c.id == monitor_deliveries.c.monitor_id)
        .where(monitor_deliveries.c.state == PENDING, monitor_deliveries.c.next_attempt_at_us <= now_us)
        .order_by(monitor_deliveries.c.next_attempt_at_us, monitor_deliveries.c.seq)
        .limit(limit)
    )
    return [Delivery(r.monitor_id, r.seq, r.body, r.state, r.attempts, r.next_attempt_at_us, r.last_error,
                     r.webhook_url, r.webhook_secret) for r in rows]


def record_attempt(conn: Connection, delivery: Delivery, *, state: str, next_attempt_at_us: int,
                   error: str | None) -> None:
    conn.execute(
        update(monitor_deliveries)
        .where(and_(monitor_deliveries.c.monitor_id == delivery.monitor_id, monitor_deliveries.c.seq == delivery.seq))
        .values(state=state, attempts=delivery.attempts + 1, next_attempt_at_us=next_attempt_at_us,
                last_error=error[:500] if error else None)
    )


def monitor_deliveries_of(conn: Connection, monitor_id: str, limit: int) -> list[Delivery]:
    rows = conn.execute(select(monitor_deliveries).where(monitor_deliveries.c.monitor_id == monitor_id)
                        .order_by(monitor_deliveries.c.seq).limit(limit))
    return [Delivery(r.monitor_id, r.seq, r.body, r.state, r.attempts, r.next_attempt_at_us, r.last_error)
            for r in rows]
