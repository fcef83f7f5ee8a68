"""Reconciliation's reads (the ledger's on-chain transfers by block window, through ``chain_refs``) and its runs.

A window reads only the rows it covers: ``chain_refs`` is indexed by block
number (and by tx hash, for rows recorded without a block), and the journal
is joined by its primary key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator, Sequence

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.orm import aliased

from ..domain import accounts as acct
from .journal_store import account_balance, from_us, to_us
from .tables import chain_refs, journal, reconcile_runs

_OUTFLOWS = ("withdraw", "confirm_hold")
_HASH_CHUNK = 500


@dataclass(frozen=True)
class ChainRow:
    """One journal transaction that records an on-chain transfer, with where it was mined."""

    seq: int
    transaction_id: str
    kind: str
    agent: str
    amount_micros: int
    occurred_at: datetime
    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int | None
    block_hash: str | None
    destination: str | None
    reversed: bool

    @property
    def treasury_micros(self) -> int:
        """The signed effect on ``Platform:Treasury``: money in for a deposit, out for a payout."""
        return -self.amount_micros if self.kind in _OUTFLOWS else self.amount_micros


def _select() -> Any:
    reversal = aliased(journal)
    return (select(journal.c.seq, journal.c.id, journal.c.kind, journal.c.agent, journal.c.amount_micros,
                   journal.c.occurred_at_us, chain_refs.c.chain_id, chain_refs.c.tx_hash, chain_refs.c.log_index,
                   chain_refs.c.block_number, chain_refs.c.block_hash, chain_refs.c.destination,
                   reversal.c.seq.is_not(None))
            .select_from(chain_refs.join(journal, journal.c.seq == chain_refs.c.seq)
                         .outerjoin(reversal, reversal.c.reverses_seq == chain_refs.c.seq)))


def _rows(conn: Connection, statement: Any) -> Iterator[ChainRow]:
    for r in conn.execution_options(yield_per=5000).execute(statement.order_by(chain_refs.c.seq)):
        yield ChainRow(r[0], r[1], r[2], r[3] or "", r[4], from_us(r[5]), r[6], r[7], r[8], r[9], r[10], r[11],
                       bool(r[12]))


def chain_rows(conn: Connection, *, from_block: int | None = None, to_block: int | None = None,
               start: datetime | None = None, end: datetime | None = None,
               unplaced_hashes: Sequence[str] = ()) -> list[ChainRow]:
    """The ledger's on-chain transfers in a window: every one without bounds.

    With a block window, the rows mined in it (index range) and the rows
    recorded without a block whose journal time is in ``start``..``end``
    (when given) or whose tx hash is one of ``unplaced_hashes`` (the
    window's chain side).
    """
    if from_block is None and to_block is None and start is None and end is None:
        return list(_rows(conn, _select()))
    found: dict[int, ChainRow] = {}
    block = [chain_refs.c.block_number.is_not(None)]
    if from_block is not None:
        block.append(chain_refs.c.block_number >= from_block)
    if to_block is not None:
        block.append(chain_refs.c.block_number <= to_block)
    placed_by_time = []
    if start is not None:
        placed_by_time.append(journal.c.occurred_at_us >= to_us(start))
    if end is not None:
        placed_by_time.append(journal.c.occurred_at_us <= to_us(end))
    unplaced = chain_refs.c.block_number.is_(None)
    conditions = [and_(*block)]
    if placed_by_time:
        conditions.append(and_(unplaced, *placed_by_time))
    for row in _rows(conn, _select().where(or_(*conditions))):
        found[row.seq] = row
    hashes = sorted(set(unplaced_hashes))
    for i in range(0, len(hashes), _HASH_CHUNK):
        chunk = hashes[i:i + _HASH_CHUNK]
        for row in _rows(conn, _select().where(unplaced, chain_refs.c.tx_hash.in_(chunk))):
            found[row.seq] = row
    return sorted(found.values(), key=lambda r: r.seq)


def treasury_at_cut(conn: Connection, cut_block: int) -> tuple[int, int]:
    """(``Platform:Treasury`` less the chain rows mined after ``cut_block``, its movements no chain row explains)."""
    balance = account_balance(conn, acct.TREASURY)
    reversal = aliased(journal)

    def effect_sum(*where: Any) -> int:
        inflow = func.coalesce(func.sum(journal.c.amount_micros).filter(journal.c.kind.not_in(_OUTFLOWS)), 0)
        outflow = func.coalesce(func.sum(journal.c.amount_micros).filter(journal.c.kind.in_(_OUTFLOWS)), 0)
        row = conn.execute(
            select(inflow, outflow)
            .select_from(chain_refs.join(journal, journal.c.seq == chain_refs.c.seq)
                         .outerjoin(reversal, reversal.c.reverses_seq == chain_refs.c.seq))
            .where(reversal.c.seq.is_(None), *where)).one()
        return int(row[0]) - int(row[1])

    after_cut = effect_sum(chain_refs.c.block_number > cut_block)
    every = effect_sum()
    return balance - after_cut, balance - every


def record_run(conn: Connection, at: datetime, inputs_digest: str, window: dict[str, Any],
               result: dict[str, Any]) -> int:
    return int(conn.execute(reconcile_runs.insert().values(
        recorded_at_us=to_us(at), inputs_digest=inputs_digest,
        window_json=json.dumps(window, sort_keys=True), result_json=json.dumps(result, sort_keys=True))
    ).inserted_primary_key[0])


def last_run(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(reconcile_runs).order_by(reconcile_runs.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return {"id": row.id, "recordedAt": from_us(row.recorded_at_us).isoformat(), "inputsDigest": row.inputs_digest,
            "window": json.loads(row.window_json), "result": json.loads(row.result_json)}
