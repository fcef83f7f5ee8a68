"""Reads of the books on one open connection, and the row shapes the write path shares.

Balances are read from the caches at the head and summed from postings in the
past; the journal is read by sequence. Writes live in ``write_path``: agent
rows guard everything that belongs to the agent (its balances, holds and
escrows), so a writer's guards read a state nobody else can change until
commit.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from ..domain import accounts as acct
from ..domain.model import (
    AgentFlow,
    AgentState,
    HoldEffect,
    HoldKind,
    HoldState,
    Kind,
    Posting,
    Transaction,
    TransactionFilter,
)
from ..domain.operations import HoldKey
from .tables import (
    PLATFORM_STRIPES,
    accounts,
    agent_entries,
    agent_state_history,
    agents,
    balances,
    holds,
    journal,
    journal_head,
    postings,
    transaction_metadata,
)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_us(moment: datetime) -> int:
    delta = moment.astimezone(timezone.utc) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _insert(conn: Connection, table):  # type: ignore[no-untyped-def]
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def stripe_for(agent: str | None) -> int:
    """Which platform balance row a transaction for ``agent`` updates."""
    return zlib.crc32(agent.encode()) % PLATFORM_STRIPES if agent else 0


# Statements every read of the API runs, built once: building a Core statement
# costs more Python time than SQLite takes to run it. The write path's own
# statements are driver SQL (``driver_sql``, ``write_path``).

_AGENT_ROWS = select(agents).where(agents.c.address.in_(bindparam("addresses", expanding=True)))
_BALANCE_ROWS = select(balances.c.account, balances.c.balance_micros).where(
    balances.c.account.in_(bindparam("accounts", expanding=True))
)
_HOLDS_OF = select(holds).where(
    tuple_(holds.c.kind, holds.c.agent, holds.c.reference).in_(bindparam("keys", expanding=True))
)


# --- agent state --------------------------------------------------------------


def insert_missing_agents(conn: Connection, missing: Iterable[str]) -> None:
    """Create agents' rows, accounts and zero balance rows (a no-op for rows a concurrent writer created)."""
    missing = sorted(missing)
    if not missing:
        return
    conn.execute(
        _insert(conn, agents).on_conflict_do_nothing(),
        [
            {"address": a, "total_in_micros": 0, "total_out_micros": 0, "credit_limit_micros": 0,
             "last_seq": None, "updated_at_us": None}
            for a in missing
        ],
    )
    rows_accounts, rows_balances = [], []
    for a in missing:
        for bucket, name in acct.agent_accounts(a).items():
            kind = acct.AccountType.ASSET if bucket is acct.AgentBucket.CREDIT else acct.AccountType.LIABILITY
            rows_accounts.append({"name": name, "account_type": kind.value, "agent": a})
            rows_balances.append({"account": name, "stripe": 0, "balance_micros": 0})
    conn.execute(_insert(conn, accounts).on_conflict_do_nothing(), rows_accounts)
    conn.execute(_insert(conn, balances).on_conflict_do_nothing(), rows_balances)


def read_agents(conn: Connection, addresses: Sequence[str]) -> dict[str, AgentState]:
    """The agents' current state without locking; unknown agents read as all zero."""
    rows = {r.address: r for r in conn.execute(_AGENT_ROWS, {"addresses": list(addresses)})}
    states = _with_balances(conn, rows)
    return {a: states.get(a, AgentState(a)) for a in addresses}


def _with_balances(conn: Connection, rows: dict[str, Any]) -> dict[str, AgentState]:
    """Agents' rows plus their balance rows (callers read both inside one transaction or lock)."""
    names = {name: (a, bucket) for a in rows for bucket, name in acct.agent_accounts(a).items()}
    sums: dict[str, dict[acct.AgentBucket, int]] = defaultdict(lambda: defaultdict(int))
    if names:
        for account, amount in conn.execute(_BALANCE_ROWS, {"accounts": list(names)}):
            owner, bucket = names[account]
            sums[owner][bucket] += amount
    return {a: agent_state_from_row(a, sums[a], r.credit_limit_micros, r.total_in_micros, r.total_out_micros)
            for a, r in rows.items()}


def agent_state_from_row(agent: str, sums: dict[acct.AgentBucket, int], limit: int, total_in: int, total_out: int) -> AgentState:
    return AgentState(
        agent=agent,
        available_micros=-sums[acct.AgentBucket.AVAILABLE],
        pending_micros=-sums[acct.AgentBucket.PENDING],
        escrowed_micros=-sums[acct.AgentBucket.ESCROWED],
        credit_used_micros=sums[acct.AgentBucket.CREDIT],
        credit_limit_micros=limit,
        total_in_micros=total_in,
        total_out_micros=total_out,
    )


_BALANCE_SNAPSHOT = (
    select(
        journal_head.c.last_seq.label("head_seq"),
        agents.c.total_in_micros, agents.c.total_out_micros, agents.c.credit_limit_micros, agents.c.updated_at_us,
        balances.c.account, balances.c.balance_micros,
    )
    .select_from(journal_head)
    .outerjoin(agents, agents.c.address == bindparam("agent"))
    .outerjoin(balances, balances.c.account.in_(bindparam("accounts", expanding=True)))
    .where(journal_head.c.id == 1)
)


def balance_snapshot(conn: Connection, agent: str) -> tuple[AgentState, datetime | None, int]:
    """The agent's state, when it last changed, and the journal sequence it is as of.

    One statement, so it is one consistent snapshot on either engine even
    outside an explicit transaction: the hot read of the API.
    """
    names = {name: bucket for bucket, name in acct.agent_accounts(agent).items()}
    rows = conn.execute(_BALANCE_SNAPSHOT, {"agent": agent, "accounts": list(names)}).all()
    first = rows[0]
    if first.total_in_micros is None:  # no such agent yet: all zero
        return AgentState(agent), None, first.head_seq
    sums: dict[acct.AgentBucket, int] = defaultdict(int)
    for r in rows:
        if r.account is not None:
            sums[names[r.account]] += r.balance_micros
    state = agent_state_from_row(agent, sums, first.credit_limit_micros, first.total_in_micros, first.total_out_micros)
    updated_at = from_us(first.updated_at_us) if first.updated_at_us is not None else None
    return state, updated_at, first.head_seq


_LAST_STATE = (
    select(agent_entries.c.seq, journal.c.occurred_at_us,
           *[agent_state_history.c[name] for name in (
               "available_micros", "pending_micros", "escrowed_micros", "credit_used_micros", "credit_limit_micros",
               "total_in_micros", "total_out_micros")])
    .join(journal, journal.c.seq == agent_entries.c.seq)
    .outerjoin(agent_state_history, and_(agent_state_history.c.agent == agent_entries.c.agent,
                                         agent_state_history.c.seq == agent_entries.c.seq))
    .where(agent_entries.c.agent == bindparam("agent"), agent_entries.c.seq <= bindparam("seq"))
    .order_by(agent_entries.c.seq.desc())
    .limit(1)
)


def agent_state_at(conn: Connection, agent: str, seq: int) -> tuple[AgentState, datetime | None]:
    """The agent's state after journal sequence ``seq``: the state its last transaction up to ``seq``
    left (``agent_state_history``, one index step), or, for a transaction recorded before that table
    existed, summed from the journal."""
    last = conn.execute(_LAST_STATE, {"agent": agent, "seq": seq}).first()
    if last is None:
        return AgentState(agent), None
    if last.available_micros is not None:
        return AgentState(agent, *last[2:]), from_us(last.occurred_at_us)
    return summed_agent_state_at(conn, agent, seq)


def summed_agent_state_at(conn: Connection, agent: str, seq: int) -> tuple[AgentState, datetime | None]:
    """The agent's state after journal sequence ``seq``, summed from the journal itself."""
    names = {name: bucket for bucket, name in acct.agent_accounts(agent).items()}
    sums: dict[acct.AgentBucket, int] = defaultdict(int)
    for account, amount in conn.execute(
        select(postings.c.account, func.sum(postings.c.amount_micros))
        .where(postings.c.account.in_(list(names)), postings.c.seq <= seq)
        .group_by(postings.c.account)
    ):
        sums[names[account]] += int(amount)
    totals = conn.execute(
        select(
            func.coalesce(func.sum(agent_entries.c.total_in_delta_micros), 0),
            func.coalesce(func.sum(agent_entries.c.total_out_delta_micros), 0),
            func.max(agent_entries.c.seq),
        ).where(agent_entries.c.agent == agent, agent_entries.c.seq <= seq)
    ).one()
    limit = conn.execute(
        select(journal.c.credit_limit_micros)
        .where(journal.c.agent == agent, journal.c.kind == Kind.SET_CREDIT_LIMIT.value, journal.c.seq <= seq)
        .order_by(journal.c.seq.desc())
        .limit(1)
    ).scalar()
    updated_at = None
    if totals[2] is not None:
        updated_at = from_us(conn.execute(select(journal.c.occurred_at_us).where(journal.c.seq == totals[2])).scalar_one())
    return agent_state_from_row(agent, sums, limit or 0, int(totals[0]), int(totals[1])), updated_at


# --- holds and escrows --------------------------------------------------------


def hold_state_from_row(kind: str, agent: str, reference: str, amount_micros: int, remaining_micros: int,
                        credit_micros: int, confirmed_micros: int, released_micros: int,
                        expires_at_us: int | None, created_seq: int) -> HoldState:
    return HoldState(
        kind=HoldKind(kind), agent=agent, reference=reference, amount_micros=amount_micros,
        remaining_micros=remaining_micros, credit_micros=credit_micros,
        confirmed_micros=confirmed_micros, released_micros=released_micros,
        expires_at=from_us(expires_at_us) if expires_at_us is not None else None,
        created_seq=created_seq,
    )


def _hold_state(r: Any) -> HoldState:
    return hold_state_from_row(r.kind, r.agent, r.reference, r.amount_micros, r.remaining_micros, r.credit_micros,
                               r.confirmed_micros, r.released_micros, r.expires_at_us, r.created_seq)


def read_holds(conn: Connection, keys: Sequence[HoldKey]) -> dict[HoldKey, HoldState | None]:
    found: dict[HoldKey, HoldState | None] = {k: None for k in keys}
    if keys:
        wanted = [(k.value, a, r) for k, a, r in keys]
        for r in conn.execute(_HOLDS_OF, {"keys": wanted}):
            found[(HoldKind(r.kind), r.agent, r.reference)] = _hold_state(r)
    return found


def list_holds(
    conn: Connection, *, agent: str | None = None, kind: HoldKind | None = None,
    open_only: bool = True, expired_before: datetime | None = None, limit: int = 1000,
) -> list[HoldState]:
    query = select(holds).order_by(holds.c.created_seq).limit(limit)
    if agent:
        query = query.where(holds.c.agent == agent)
    if kind:
        query = query.where(holds.c.kind == kind.value)
    if open_only:
        query = query.where(holds.c.remaining_micros > 0)
    if expired_before is not None:
        query = query.where(holds.c.expires_at_us.is_not(None), holds.c.expires_at_us <= to_us(expired_before))
    return [_hold_state(r) for r in conn.execute(query)]


# --- reading the journal ------------------------------------------------------------


def _transactions(conn: Connection, where: Any, *, order_desc: bool = False, limit: int | None = None) -> list[Transaction]:
    query = select(journal).where(where).order_by(journal.c.seq.desc() if order_desc else journal.c.seq)
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    if not rows:
        return []
    seqs = [r.seq for r in rows]
    posts: dict[int, list[Posting]] = defaultdict(list)
    for p in conn.execute(select(postings).where(postings.c.seq.in_(seqs)).order_by(postings.c.seq, postings.c.idx)):
        posts[p.seq].append(Posting(p.account, p.amount_micros, p.currency, p.reference))
    flows: dict[int, list[AgentFlow]] = defaultdict(list)
    for f in conn.execute(select(agent_entries).where(agent_entries.c.seq.in_(seqs)).order_by(agent_entries.c.agent)):
        flows[f.seq].append(AgentFlow(f.agent, f.total_in_delta_micros, f.total_out_delta_micros))
    out = []
    for r in rows:
        stored = json.loads(r.metadata_json)
        out.append(Transaction(
            seq=r.seq, id=r.id, occurred_at=from_us(r.occurred_at_us), kind=Kind(r.kind), agent=r.agent,
            counterparty=r.counterparty, amount_micros=r.amount_micros, reference=r.reference,
            tx_hash=r.tx_hash, memo=r.memo, postings=tuple(posts[r.seq]), flows=tuple(flows[r.seq]),
            hold_effects=tuple(HoldEffect.from_json(h) for h in stored.get("holds", [])),
            credit_limit_micros=r.credit_limit_micros, reverses_seq=r.reverses_seq,
            metadata=stored.get("meta", {}), prev_hash=r.prev_hash, hash=r.hash,
        ))
    return out


def transaction_by_id(conn: Connection, tx_id: str) -> Transaction | None:
    found = _transactions(conn, journal.c.id == tx_id)
    return found[0] if found else None


def transactions_between(conn: Connection, first_seq: int, last_seq: int) -> list[Transaction]:
    return _transactions(conn, and_(journal.c.seq >= first_seq, journal.c.seq <= last_seq))


def transactions_page(conn: Connection, *, after_seq: int = 0, upto_seq: int | None = None,
                      limit: int = 1000) -> list[Transaction]:
    """Up to ``limit`` transactions after ``after_seq``, in sequence order."""
    where = journal.c.seq > after_seq
    if upto_seq is not None:
        where = and_(where, journal.c.seq <= upto_seq)
    return _transactions(conn, where, limit=limit)


def agent_history(conn: Connection, agent: str, *, limit: int, before_seq: int | None = None) -> list[Transaction]:
    query = select(agent_entries.c.seq).where(agent_entries.c.agent == agent)
    if before_seq is not None:
        query = query.where(agent_entries.c.seq < before_seq)
    seqs = list(conn.execute(query.order_by(agent_entries.c.seq.desc()).limit(limit)).scalars())
    if not seqs:
        return []
    return _transactions(conn, journal.c.seq.in_(seqs), order_desc=True)


def agent_transactions(conn: Connection, agent: str, *, after_seq: int, upto_seq: int,
                       limit: int = 1000) -> list[Transaction]:
    """The agent's transactions with ``after_seq < seq <= upto_seq``, oldest first, at most ``limit``."""
    seqs = list(conn.execute(
        select(agent_entries.c.seq)
        .where(agent_entries.c.agent == agent, agent_entries.c.seq > after_seq, agent_entries.c.seq <= upto_seq)
        .order_by(agent_entries.c.seq).limit(limit)
    ).scalars())
    return _transactions(conn, journal.c.seq.in_(seqs)) if seqs else []


def find_transactions(conn: Connection, where: TransactionFilter, *, after_seq: int, limit: int) -> list[Transaction]:
    """Up to ``limit`` transactions matching ``where`` with ``seq > after_seq``, in sequence order.

    Each filter has an index in sequence order (agent: ``agent_entries``; metadata:
    ``transaction_metadata``; kind, reference, amount, tx hash: the journal's), so the database walks
    the matches from the cursor on and stops after ``limit``; a time range becomes a sequence range
    (times never run backwards along the chain).
    """
    seq = journal.c.seq
    query = select(seq)
    conditions = [seq > after_seq]
    if where.agent is not None:
        query = query.join(agent_entries, and_(agent_entries.c.seq == seq, agent_entries.c.agent == where.agent))
    if where.meta_key is not None:
        on = [transaction_metadata.c.seq == seq, transaction_metadata.c.key == where.meta_key]
        if where.meta_value is not None:
            on.append(transaction_metadata.c.value == where.meta_value)
        query = query.join(transaction_metadata, and_(*on))
    for column, value in ((journal.c.kind, where.kind), (journal.c.reference, where.reference),
                          (journal.c.tx_hash, where.tx_hash)):
        if value is not None:
            conditions.append(column == value)
    if where.from_seq is not None:
        conditions.append(seq >= where.from_seq)
    if where.to_seq is not None:
        conditions.append(seq <= where.to_seq)
    if where.from_time is not None:
        conditions.append(seq > _last_seq_before(conn, to_us(where.from_time)))
    if where.to_time is not None:
        conditions.append(seq <= _last_seq_before(conn, to_us(where.to_time) + 1))
    if where.min_amount_micros is not None:
        conditions.append(journal.c.amount_micros >= where.min_amount_micros)
    if where.max_amount_micros is not None:
        conditions.append(journal.c.amount_micros <= where.max_amount_micros)
    seqs = list(conn.execute(query.where(*conditions).order_by(seq).limit(limit)).scalars())
    return _transactions(conn, seq.in_(seqs)) if seqs else []


def _last_seq_before(conn: Connection, at_us: int) -> int:
    """The last journal sequence recorded before ``at_us`` (0 if none): one step down the time index
    (times never run backwards along the chain, so the latest time holds the highest sequence)."""
    found = conn.execute(select(journal.c.seq).where(journal.c.occurred_at_us < at_us)
                         .order_by(journal.c.occurred_at_us.desc(), journal.c.seq.desc()).limit(1)).scalar()
    return int(found or 0)


def reversal_of(conn: Connection, seq: int) -> int | None:
    return conn.execute(select(journal.c.seq).where(journal.c.reverses_seq == seq)).scalar()


def has_deposit(conn: Connection, tx_hash: str) -> bool:
    return conn.execute(
        select(journal.c.seq).where(journal.c.tx_hash == tx_hash, journal.c.kind == Kind.DEPOSIT.value).limit(1)
    ).first() is not None


# --- balances and the journal's position ------------------------------------------------


_HEAD = select(journal_head).where(journal_head.c.id == 1)


def head(conn: Connection) -> tuple[int, str, datetime | None]:
    row = conn.execute(_HEAD).one()
    return row.last_seq, row.last_hash, from_us(row.last_at_us) if row.last_seq else None


def seq_at(conn: Connection, moment: datetime) -> int:
    """The last journal sequence recorded at or before ``moment`` (0 before the first)."""
    return _last_seq_before(conn, to_us(moment) + 1)


def seq_before(conn: Connection, moment: datetime) -> int:
    """The last journal sequence recorded strictly before ``moment``: a period ``[from, to)`` ends there."""
    found = conn.execute(select(func.max(journal.c.seq)).where(journal.c.occurred_at_us < to_us(moment))).scalar()
    return int(found or 0)


def movements(conn: Connection, after_seq: int, upto_seq: int, *,
              exclude_kinds: Sequence[str] = ()) -> dict[str, tuple[int, int]]:
    """Each account's (debits, credits) posted in ``(after_seq, upto_seq]``, both as positive micro-units,
    leaving out the transactions of ``exclude_kinds``."""
    debit = func.sum(case((postings.c.amount_micros > 0, postings.c.amount_micros), else_=0))
    credit = func.sum(case((postings.c.amount_micros < 0, -postings.c.amount_micros), else_=0))
    query = (select(postings.c.account, debit, credit)
             .where(postings.c.seq > after_seq, postings.c.seq <= upto_seq)
             .group_by(postings.c.account).order_by(postings.c.account))
    if exclude_kinds:
        query = query.join(journal, journal.c.seq == postings.c.seq).where(journal.c.kind.not_in(list(exclude_kinds)))
    rows = conn.execute(query)
    return {account: (int(d), int(c)) for account, d, c in rows}


def last_close(conn: Connection) -> Transaction | None:
    """The most recent period close, or None before the first."""
    found = _transactions(conn, journal.c.kind == Kind.CLOSE_PERIOD.value, order_desc=True, limit=1)
    return found[0] if found else None


def unclosed_earnings(conn: Connection, end: datetime) -> dict[str, int]:
    """Income and expense balances of transactions before ``end``, less what earlier closes moved.

    Each close moves exactly the earnings dated before its own end, which is
    before ``end``; adding every close's postings leaves what is still open.
    """
    earnings = or_(postings.c.account.like("Income:%"), postings.c.account.like("Expenses:%"))
    in_scope = or_(journal.c.occurred_at_us < to_us(end), journal.c.kind == Kind.CLOSE_PERIOD.value)
    rows = conn.execute(
        select(postings.c.account, func.sum(postings.c.amount_micros))
        .join(journal, journal.c.seq == postings.c.seq).where(earnings, in_scope)
        .group_by(postings.c.account).order_by(postings.c.account)
    )
    return {account: int(total) for account, total in rows if total}


def account_balance(conn: Connection, account: str, *, as_of_seq: int | None = None) -> int:
    """The beancount-signed sum of one account (cached, or summed from postings at a past seq)."""
    if as_of_seq is None:
        total = conn.execute(select(func.sum(balances.c.balance_micros)).where(balances.c.account == account)).scalar()
    else:
        total = conn.execute(
            select(func.sum(postings.c.amount_micros)).where(postings.c.account == account, postings.c.seq <= as_of_seq)
        ).scalar()
    return int(total or 0)


def balances_by_prefix(conn: Connection, prefix: str, *, as_of_seq: int | None = None) -> dict[str, int]:
    """Every account equal to or under ``prefix`` with its beancount-signed balance."""
    if as_of_seq is None:
        col_account, col_amount, source = balances.c.account, balances.c.balance_micros, None
    else:
        col_account, col_amount, source = postings.c.account, postings.c.amount_micros, postings.c.seq <= as_of_seq
    query = select(col_account, func.sum(col_amount)).group_by(col_account).order_by(col_account)
    if prefix:
        query = query.where(or_(col_account == prefix, col_account.like(prefix.replace("_", r"\_") + ":%", escape="\\")))
    if source is not None:
        query = query.where(source)
    return {a: int(s) for a, s in conn.execute(query)}


def accounts_first_used(conn: Connection, *, upto_seq: int | None = None) -> dict[str, datetime]:
    """Each account with postings, and the time of its first posting (for ``open`` directives)."""
    first = select(postings.c.account, func.min(postings.c.seq).label("seq")).group_by(postings.c.account)
    if upto_seq is not None:
        first = first.where(postings.c.seq <= upto_seq)
    sub = first.subquery()
    rows = conn.execute(
        select(sub.c.account, journal.c.occurred_at_us).join(journal, journal.c.seq == sub.c.seq)
        .order_by(sub.c.account)
    )
    return {account: from_us(at_us) for account, at_us in rows}


def treasury_and_obligations(conn: Connection, upto_seq: int, buckets: int) -> list[tuple[datetime, int, int]]:
    """Treasury and what is owed to agents at up to ``buckets`` evenly spaced points of the journal.

    One aggregate pass in SQL (not a walk of every transaction in Python):
    (time of the bucket's last transaction, treasury, owed to agents).
    """
    if upto_seq <= 0:
        return []
    stride = max(1, -(-upto_seq // buckets))
    bucket = (postings.c.seq - 1) // stride  # floor division: "/" would be true division in SQLAlchemy 2
    treasury = func.sum(case((postings.c.account == acct.TREASURY, postings.c.amount_micros), else_=0))
    owed = func.sum(case((postings.c.account.like("Agent:%"), -postings.c.amount_micros), else_=0))
    rows = conn.execute(
        select(bucket.label("b"), treasury, owed, func.max(postings.c.seq))
        .where(postings.c.seq <= upto_seq).group_by("b").order_by("b")
    ).all()
    times = dict(conn.execute(select(journal.c.seq, journal.c.occurred_at_us).where(
        journal.c.seq.in_([int(r[3]) for r in rows]))).all())
    series, running_treasury, running_owed = [], 0, 0
    for _, t, o, last in rows:
        running_treasury += int(t)
        running_owed += int(o)
        series.append((from_us(times[int(last)]), running_treasury, running_owed))
    return series


def known_agents(conn: Connection) -> list[str]:
    return list(conn.execute(select(agents.c.address).order_by(agents.c.address)).scalars())
