"""SQL of the on-chain workers: the deposit watcher's checkpoints and credits, the payout records.

The watcher's page writes go through ``LedgerService.execute`` as side rows
(``checkpoint_move_row``, ``credit_row``: tuples in the columns' order of
``driver_sql``), so they commit with the deposits; everything else here runs
in the caller's transaction (``LedgerService.read`` / ``write``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, func, insert, select, update

from . import tables as t

Checkpoint = tuple[int, str]  # (block number, block hash)


def read_checkpoint(conn: Connection, watcher: str) -> Checkpoint | None:
    row = conn.execute(select(t.chain_checkpoints.c.block_number, t.chain_checkpoints.c.block_hash)
                       .where(t.chain_checkpoints.c.watcher == watcher)).first()
    return None if row is None else (row[0], row[1])


def start_checkpoint(conn: Connection, watcher: str, at: Checkpoint, now_us: int) -> Checkpoint:
    """The watcher's checkpoint, created at ``at`` if it has none yet."""
    found = read_checkpoint(conn, watcher)
    if found is not None:
        return found
    conn.execute(insert(t.chain_checkpoints).values(watcher=watcher, block_number=at[0], block_hash=at[1],
                                                    updated_at_us=now_us))
    return at


def move_checkpoint(conn: Connection, watcher: str, frm: Checkpoint, to: Checkpoint, now_us: int) -> bool:
    """Compare-and-set: move the checkpoint from ``frm`` to ``to``; False when it was not at ``frm``."""
    c = t.chain_checkpoints.c
    done = conn.execute(update(t.chain_checkpoints)
                        .where(c.watcher == watcher, c.block_number == frm[0], c.block_hash == frm[1])
                        .values(block_number=to[0], block_hash=to[1], updated_at_us=now_us))
    return done.rowcount == 1


def checkpoint_move_row(watcher: str, frm: Checkpoint, to: Checkpoint, now_us: int) -> tuple[Any, ...]:
    """A ``chain_checkpoint_moves`` side row (the compare-and-set of ``move_checkpoint``)."""
    return (to[0], to[1], now_us, watcher, frm[0], frm[1])


def credit_row(watcher: str, tx_hash: str, log_index: int, block_number: int, block_hash: str) -> tuple[Any, ...]:
    """A ``chain_credits`` side row, in the table's column order."""
    return (watcher, tx_hash, log_index, block_number, block_hash)


@dataclass(frozen=True)
class Credit:
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str


def credits_from(conn: Connection, watcher: str, from_block: int, *, limit: int) -> list[Credit]:
    """The logs the watcher credited in blocks >= ``from_block``, oldest first, at most ``limit``."""
    c = t.chain_credits.c
    rows = conn.execute(select(c.tx_hash, c.log_index, c.block_number, c.block_hash)
                        .where(c.watcher == watcher, c.block_number >= from_block)
                        .order_by(c.block_number, c.tx_hash, c.log_index).limit(limit))
    return [Credit(*row) for row in rows]


# --- payouts ----------------------------------------------------------------------------------

PAYOUT_STATES = ("requested", "refused", "held", "signed", "submitted", "confirmed", "failed", "released")
OPEN_PAYOUT_STATES = ("requested", "held", "signed", "submitted")


@dataclass(frozen=True)
class PayoutRecord:
    agent: str
    client_ref: str
    destination: str
    amount_micros: int
    state: str
    hold_reference: str
    chain_id: int | None
    sender: str | None
    nonce: int | None
    tx_hash: str | None
    raw_tx: str | None
    log_index: int | None
    error: str | None
    created_at_us: int
    updated_at_us: int


def insert_payout(conn: Connection, *, agent: str, client_ref: str, destination: str, amount_micros: int,
                  hold_reference: str, now_us: int) -> PayoutRecord | None:
    """A new payout in state requested; None (nothing written) when the agent's client_ref exists."""
    if get_payout(conn, agent, client_ref) is not None:
        return None
    conn.execute(insert(t.payouts).values(
        agent=agent, client_ref=client_ref, destination=destination, amount_micros=amount_micros,
        state="requested", hold_reference=hold_reference, created_at_us=now_us, updated_at_us=now_us))
    return get_payout(conn, agent, client_ref)


def get_payout(conn: Connection, agent: str, client_ref: str) -> PayoutRecord | None:
    c = t.payouts.c
    row = conn.execute(select(t.payouts).where(c.agent == agent, c.client_ref == client_ref)).first()
    return None if row is None else PayoutRecord(*row)


def payouts_in(conn: Connection, states: Sequence[str], *, limit: int) -> list[PayoutRecord]:
    """Payouts in ``states``, by nonce (unsigned ones last) then age: the executor's work list."""
    c = t.payouts.c
    rows = conn.execute(select(t.payouts).where(c.state.in_(list(states)))
                        .order_by(c.nonce.is_(None), c.nonce, c.created_at_us, c.agent, c.client_ref).limit(limit))
    return [PayoutRecord(*row) for row in rows]


def advance_payout(conn: Connection, payout: PayoutRecord, to_state: str, now_us: int, **fields: Any) -> bool:
    """Compare-and-set the payout from its current state to ``to_state`` (and ``fields``)."""
    c = t.payouts.c
    done = conn.execute(update(t.payouts)
                        .where(c.agent == payout.agent, c.client_ref == payout.client_ref, c.state == payout.state)
                        .values(state=to_state, updated_at_us=now_us, **fields))
    return done.rowcount == 1


def last_nonce(conn: Connection, chain_id: int, sender: str) -> int | None:
    """The highest nonce any payout of ``sender`` on ``chain_id`` was signed with."""
    c = t.payouts.c
    return conn.execute(select(func.max(c.nonce)).where(c.chain_id == chain_id, c.sender == sender)).scalar()


def payout_counts(conn: Connection) -> dict[str, int]:
    rows: Iterable[Any] = conn.execute(select(t.payouts.c.state, func.count()).group_by(t.payouts.c.state))
    return {state: count for state, count in rows}


def known_agents_among(conn: Connection, addresses: Sequence[str]) -> set[str]:
    """The addresses that are agents with at least one recorded transaction."""
    if not addresses:
        return set()
    c = t.agents.c
    return set(conn.execute(select(c.address).where(c.address.in_(list(addresses)), c.last_seq.is_not(None))).scalars())
