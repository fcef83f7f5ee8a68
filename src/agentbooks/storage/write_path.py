"""The write path: load what a call needs under lock, then append its transactions and update every cache.

A call is one database transaction and costs a fixed number of round trips
whatever the number of operations in it:

1. ``load_for_write``: lock the involved agents (address order), read their
   balances, their holds and escrows, and the unique keys the call would use
   (one pipeline on PostgreSQL);
2. ``record_many``: lock the chain head, compute the hash chain, then write
   the balance deltas, the head, the journal rows, postings, agent entries,
   agent rows, holds and unique keys (``driver_sql.write_tables``: on
   PostgreSQL one statement, sent with the COMMIT).

Lock order, the same for every writer so writers cannot deadlock on each
other's rows: the agents' rows, then the single ``journal_head`` row, then
the balance rows. An agent's balance rows are guarded by its agent lock and
the platform's striped rows are only written under the head, so they are
never contended. The statements are driver SQL (``driver_sql``); the caller
holds the transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Connection

from ..domain import accounts as acct
from ..domain.hashing import transaction_hash
from ..domain.model import AgentFlow, AgentState, HoldEffect, HoldState, Transaction, TransactionDraft
from ..domain.operations import CLIENT_METADATA_KEY, HoldKey, UniqueKey, project_agent
from ..domain.errors import InvariantViolation
from .driver_sql import DriverSql, raw_connection, sql_for, write_tables
from .journal_store import agent_state_from_row, hold_state_from_row, insert_missing_agents, stripe_for, to_us, from_us

_AGENT_PREFIXES = ("Agent:", acct.CREDIT_PREFIX + ":")  # balance rows guarded by an agent lock, never striped
_ID_NAMESPACE_BYTES = bytes.fromhex("5b0f3c1e7a434d7c9a550c7be1a6f2d1")

Claim = tuple[UniqueKey, int, int, str]  # key, index of the first and last draft it covers, request fingerprint
Refusal = tuple[UniqueKey, str, str]  # an idempotency key, its request's fingerprint, the refusal (error JSON)
UsedKey = tuple[int, int, str, str | None]  # first seq, last seq, fingerprint, refusal JSON of a recorded key


def advisory_lock_id(key: UniqueKey) -> int:
    """A stable signed 64-bit number for a key: the same in every process and on every host."""
    digest = hashlib.blake2b(f"{key.scope}\x00{key.key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def transaction_id(seq: int, prev_hash: str) -> str:
    """``uuid5(namespace, f"{seq}:{prev_hash}")``, spelled out: ``uuid.uuid5`` costs as much as the hash chain."""
    digest = bytearray(hashlib.sha1(_ID_NAMESPACE_BYTES + f"{seq}:{prev_hash}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --- 1. what a call needs, under lock --------------------------------------------------------


def load_for_write(
    conn: Connection, addresses: Sequence[str], hold_keys: Sequence[HoldKey], unique: Sequence[UniqueKey],
    request_keys: Sequence[UniqueKey] = (),
) -> tuple[dict[str, AgentState], dict[HoldKey, HoldState | None], dict[tuple[str, str], UsedKey], set[str]]:
    """Lock the request keys and the agents (creating the new ones); read their state, references and used keys.

    ``request_keys`` (idempotency keys) are locked first, in one order
    (PostgreSQL advisory locks, held to the end of the transaction; SQLite's
    write lock already serialises writers), so a concurrent request with the
    same key, in any process, waits here until this one's answer is
    committed, then reads it. Every read comes after the locks, so under READ
    COMMITTED each one sees what the previous holder committed. Returns the
    state, the holds, the used keys and the agents this call created.
    """
    sql, raw = sql_for(conn), raw_connection(conn)
    ordered = sorted(set(addresses))
    lock_ids = sorted({advisory_lock_id(k) for k in request_keys}) if sql.postgres else []
    states, holds, used = _load(raw, sql, ordered, hold_keys, unique, lock_ids)
    created = set(ordered) - states.keys()
    if created:
        insert_missing_agents(conn, created)
        states, holds, used = _load(raw, sql, ordered, hold_keys, unique, [])
    return states, holds, used, created


def _load(raw: Any, sql: DriverSql, ordered: list[str], hold_keys: Sequence[HoldKey],
          unique: Sequence[UniqueKey], lock_ids: Sequence[int]) -> tuple[
              dict[str, AgentState], dict[HoldKey, HoldState | None], dict[tuple[str, str], UsedKey]]:
    names = {name: (a, bucket) for a in ordered for name, bucket in acct.account_buckets(a).items()}
    hold_params = [(k.value, a, r) for k, a, r in hold_keys]
    unique_params = [(k.scope, k.key) for k in unique]
    with sql.pipelined(raw):
        agents_cur, balances_cur, holds_cur, unique_cur = (raw.cursor() for _ in range(4))
        for lock_id in lock_ids:
            raw.cursor().execute(sql.lock_request_key, (lock_id,))
        agents_cur.execute(sql.lock_agents, sql.values(ordered))
        balances_cur.execute(sql.balances_of, sql.values(list(names)))
        if hold_keys:
            holds_cur.execute(sql.holds_of, sql.rows(hold_params, 3))
        if unique:
            unique_cur.execute(sql.unique_keys_of, sql.rows(unique_params, 2))
    agent_rows = agents_cur.fetchall()
    balance_rows = balances_cur.fetchall()
    hold_rows = holds_cur.fetchall() if hold_keys else []
    unique_rows = unique_cur.fetchall() if unique else []
    sums: dict[str, dict[acct.AgentBucket, int]] = defaultdict(lambda: defaultdict(int))
    for account, amount in balance_rows:
        owner, bucket = names[account]
        sums[owner][bucket] += amount
    states = {row[0]: agent_state_from_row(row[0], sums[row[0]], row[3], row[1], row[2]) for row in agent_rows}
    holds: dict[HoldKey, HoldState | None] = {k: None for k in hold_keys}
    for row in hold_rows:
        state = hold_state_from_row(*row)
        holds[(state.kind, state.agent, state.reference)] = state
    return states, holds, _used_keys(unique_rows)


def find_used(conn: Connection, keys: Sequence[UniqueKey]) -> dict[tuple[str, str], UsedKey]:
    """The recorded unique keys among ``keys``, read without locking anything."""
    sql, raw = sql_for(conn), raw_connection(conn)
    return _used_keys(raw.cursor().execute(sql.unique_keys_of, sql.rows([(k.scope, k.key) for k in keys], 2)).fetchall())


def _used_keys(rows: Sequence[Sequence[Any]]) -> dict[tuple[str, str], UsedKey]:
    return {(scope, key): (first, last, fp, refusal) for scope, key, first, last, fp, refusal in rows}


# --- 2. appending the transactions ------------------------------------------------------------


def record_many(
    conn: Connection, drafts: Sequence[TransactionDraft], now: datetime, *,
    claims: Sequence[Claim] = (), refusals: Sequence[Refusal] = (), freed_seqs: Iterable[int] = (),
    forgotten_agents: Iterable[str] = (), agent_states: Mapping[str, AgentState] | None = None,
    side_rows: Mapping[str, Sequence[tuple[Any, ...]]] | None = None,
    commit: bool = False,
) -> list[Transaction]:
    """Append drafts to the journal, in order, and update every cache, in the caller's transaction.

    The caller holds the involved agents' locks and has checked the drafts
    against their state. ``claims`` are the unique keys the drafts use;
    ``refusals`` the idempotency keys of refused requests, stored with their
    answer; ``freed_seqs`` the reversed transactions whose natural keys are
    free again; ``forgotten_agents`` agents ``load_for_write`` created for
    requests that were all refused (their empty rows are removed); ``agent_states``
    the involved agents' committed state, from which each agent's state after
    each draft is written (``agent_state_history``). ``commit``
    commits the caller's transaction with the writes, so it must be the call's
    last write (on PostgreSQL the COMMIT rides with the writes). Without
    drafts the chain head is not touched. ``side_rows`` (tables of
    ``driver_sql.SIDE_TABLES``) are the callers' own rows, written with the rest.
    """
    sql, raw = sql_for(conn), raw_connection(conn)
    forgotten = sorted(forgotten_agents)
    forget_rows = {
        "forgotten_agents": [(a,) for a in forgotten],
        "forgotten_balances": [(name,) for a in forgotten for name in acct.agent_accounts(a).values()],
        "forgotten_accounts": [(name,) for a in forgotten for name in acct.agent_accounts(a).values()],
        "unique_keys": [(key.scope, key.key, 0, 0, fp, refusal) for key, fp, refusal in refusals],
        **(side_rows or {}),
    }
    if not drafts:
        write_tables(raw, sql, forget_rows, commit=commit)
        return []
    deltas: dict[tuple[str, int], int] = defaultdict(int)
    for draft in drafts:
        stripe = stripe_for(draft.agent)
        for p in draft.postings:
            deltas[(p.account, 0 if p.account.startswith(_AGENT_PREFIXES) else stripe)] += p.amount_micros
    seq, prev_hash, at_us = raw.cursor().execute(sql.head_for_update).fetchone()

    first_seq = seq + 1
    at_us = max(to_us(now), at_us)  # times never run backwards along the chain
    occurred_at = from_us(at_us)
    journal_rows, posting_rows, entry_rows, meta_rows, history_rows, chain_rows, recorded = [], [], [], [], [], [], []
    running = dict(agent_states or {})
    agent_totals: dict[str, list[int]] = {}  # agent -> [in, out, last seq]
    limits: dict[str, int] = {}
    hold_rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for draft in drafts:
        seq += 1
        tx_id = transaction_id(seq, prev_hash)
        rows = [(p.account, p.amount_micros, p.currency, p.reference) for p in draft.postings]
        digest = transaction_hash(
            seq=seq, transaction_id=tx_id, occurred_at=occurred_at, kind=draft.kind.value,
            agent=draft.agent, counterparty=draft.counterparty, amount_micros=draft.amount_micros,
            reference=draft.reference, tx_hash=draft.tx_hash, postings=rows,
            credit_limit_micros=draft.credit_limit_micros, reverses_seq=draft.reverses_seq, prev_hash=prev_hash,
            memo=draft.memo, meta=draft.metadata,
        )
        journal_rows.append((
            seq, tx_id, draft.kind.value, at_us, draft.agent, draft.counterparty, draft.amount_micros,
            draft.reference, draft.tx_hash, draft.memo, draft.credit_limit_micros, draft.reverses_seq,
            _dump_metadata(draft.metadata, draft.hold_effects), prev_hash, digest,
        ))
        posting_rows += [(seq, i, *row) for i, row in enumerate(rows)]
        meta_rows += [(seq, key, value) for key, value in draft.metadata.get(CLIENT_METADATA_KEY, {}).items()]
        if draft.tx_hash is not None:
            chain_rows.append(_chain_ref_row(seq, draft))
        flows = _merge_flows(draft.flows)
        for f in flows:
            entry_rows.append((f.agent, seq, f.total_in_micros, f.total_out_micros))
            after = running[f.agent] = project_agent(running.get(f.agent) or AgentState(f.agent), draft)
            history_rows.append((f.agent, seq, *after.amounts()))
            totals = agent_totals.setdefault(f.agent, [0, 0, seq])
            totals[0] += f.total_in_micros
            totals[1] += f.total_out_micros
            totals[2] = seq
        if draft.credit_limit_micros is not None and draft.agent is not None:
            limits[draft.agent] = draft.credit_limit_micros
        for e in draft.hold_effects:
            _merge_hold_effect(hold_rows, e, seq)
        recorded.append(Transaction(
            seq=seq, id=tx_id, occurred_at=occurred_at, kind=draft.kind, agent=draft.agent,
            counterparty=draft.counterparty, amount_micros=draft.amount_micros, reference=draft.reference,
            tx_hash=draft.tx_hash, memo=draft.memo, postings=draft.postings, flows=flows,
            hold_effects=draft.hold_effects, credit_limit_micros=draft.credit_limit_micros,
            reverses_seq=draft.reverses_seq, metadata=dict(draft.metadata), prev_hash=prev_hash, hash=digest,
        ))
        prev_hash = digest

    if limits.keys() - agent_totals.keys():
        raise InvariantViolation("a credit limit was set for an agent the transaction does not involve")
    inserts = [r for r in hold_rows.values() if r["creates"]]
    updates = [r for r in hold_rows.values() if not r["creates"]]
    table_rows = {
        "balances": [(d, account, stripe) for (account, stripe), d in sorted(deltas.items()) if d],
        "journal_head": [(seq, prev_hash, at_us)],
        "journal": journal_rows,
        "postings": posting_rows,
        "agent_entries": entry_rows,
        "transaction_metadata": meta_rows,
        "agent_state_history": history_rows,
        "chain_refs": chain_rows,
        "agents": [(i, o, last, at_us, limits.get(a), a) for a, (i, o, last) in sorted(agent_totals.items())],
        "holds": [(r["kind"], r["agent"], r["reference"], *(r[f] for f in _HOLD_FIELDS), r["expires_at_us"],
                   r["created_seq"], r["updated_seq"]) for r in inserts],
        "hold_updates": [(*(r[f] for f in _HOLD_FIELDS), r["updated_seq"], r["kind"], r["agent"], r["reference"])
                         for r in updates],
        "freed_keys": [(freed,) for freed in freed_seqs],
        **forget_rows,
        "unique_keys": [(key.scope, key.key, first_seq + first, first_seq + last, fp, None)
                        for key, first, last, fp in claims] + forget_rows["unique_keys"],
    }
    write_tables(raw, sql, table_rows, commit=commit)
    return recorded


def _chain_ref_row(seq: int, draft: TransactionDraft) -> tuple[Any, ...]:
    """The ``chain_refs`` row of a draft that records an on-chain transfer (chain 0: not said)."""
    meta = draft.metadata
    return (seq, draft.kind.value, meta.get("chain_id", 0), draft.tx_hash, meta.get("log_index", 0),
            meta.get("block_number"),
            meta.get("block_hash"), meta.get("destination"))


def _merge_flows(flows: Iterable[AgentFlow]) -> tuple[AgentFlow, ...]:
    flows = tuple(flows)
    if len(flows) == 1:
        return flows
    merged: dict[str, list[int]] = {}
    for f in flows:
        acc = merged.setdefault(f.agent, [0, 0])
        acc[0] += f.total_in_micros
        acc[1] += f.total_out_micros
    return tuple(AgentFlow(a, i, o) for a, (i, o) in sorted(merged.items()))


_HOLD_FIELDS = ("amount_micros", "remaining_micros", "credit_micros", "confirmed_micros", "released_micros")


def _merge_hold_effect(pending: dict[tuple[str, str, str], dict[str, Any]], e: HoldEffect, seq: int) -> None:
    """Sum a batch's effects per reference; a reference created in the batch is inserted once, whole."""
    key = (e.kind.value, e.agent, e.reference)
    row = pending.setdefault(key, {"kind": e.kind.value, "agent": e.agent, "reference": e.reference,
                                   "creates": False, "expires_at_us": None, "created_seq": seq,
                                   **{f: 0 for f in _HOLD_FIELDS}})
    if e.creates:
        row.update(creates=True, created_seq=seq, expires_at_us=to_us(e.expires_at) if e.expires_at else None)
    for field_name, delta in zip(_HOLD_FIELDS, (e.amount_micros, e.remaining_micros, e.credit_micros,
                                                e.confirmed_micros, e.released_micros)):
        row[field_name] += delta
    row["updated_seq"] = seq


def _dump_metadata(meta: Any, effects: Sequence[HoldEffect]) -> str:
    if not meta and not effects:
        return '{"holds":[],"meta":{}}'  # what json.dumps writes for the empty case, without the call
    return json.dumps({"meta": dict(meta), "holds": [e.to_json() for e in effects]}, sort_keys=True,
                      separators=(",", ":"))
