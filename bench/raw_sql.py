"""The raw-SQL limit: the ledger's transaction shape written with the bare driver, no ledger logic.

Per operation, one database transaction: lock the agent row, the guarded
balance updates (agent account and a treasury stripe), the chain head read
and advance (with a sha256), one journal row, its two postings, the agent
entry and the agent's totals. Same schema (created by the ledger's own
migrations), same durability settings.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import zlib

import psycopg


def _rows(count: int, agents: list[str]) -> list[tuple[str, int]]:
    return [(agents[i % len(agents)], 1_000_000 + i) for i in range(count)]


def raw_sqlite(path: str, agents: list[str], count: int, first_seq: int) -> float:
    """Operations per second for ``count`` single-commit deposits on SQLite (WAL, synchronous=FULL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    started = time.perf_counter()
    for n, (agent, amount) in enumerate(_rows(count, agents)):
        _one(conn, "?", agent, amount, first_seq + n, f"0xraw{first_seq + n}", sqlite=True)
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def raw_postgres(url: str, agents: list[str], count: int, first_seq: int) -> float:
    conn = psycopg.connect(url)
    started = time.perf_counter()
    for n, (agent, amount) in enumerate(_rows(count, agents)):
        _one(conn, "%s", agent, amount, first_seq + n, f"0xraw{first_seq + n}", sqlite=False)
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def _one(conn, p: str, agent: str, amount: int, tag: int, tx_hash: str, *, sqlite: bool) -> None:  # type: ignore[no-untyped-def]
    lock = "" if sqlite else " FOR UPDATE"
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE" if sqlite else "BEGIN")
    cur.execute(f"SELECT address FROM agents WHERE address = {p}{lock}", (agent,))
    stripe = zlib.crc32(agent.encode()) % 16
    cur.execute(f"UPDATE balances SET balance_micros = balance_micros + {p} WHERE account = {p} AND stripe = 0 "
                f"AND balance_micros + {p} <= 0", (-amount, f"Agent:{agent}:Available", -amount))
    cur.execute(f"UPDATE balances SET balance_micros = balance_micros + {p} WHERE account = {p} AND stripe = {p}",
                (amount, "Platform:Treasury", stripe))
    cur.execute(f"SELECT last_seq, last_hash FROM journal_head WHERE id = 1{lock}")
    last_seq, last_hash = cur.fetchone()
    seq = last_seq + 1
    digest = hashlib.sha256(f"{seq}:{last_hash}:{agent}:{amount}".encode()).hexdigest()
    now_us = time.time_ns() // 1000
    cur.execute(f"UPDATE journal_head SET last_seq = {p}, last_hash = {p}, last_at_us = {p} WHERE id = 1",
                (seq, digest, now_us))
    cur.execute(f"INSERT INTO journal (seq, id, kind, occurred_at_us, agent, amount_micros, tx_hash, metadata_json, "
                f"prev_hash, hash) VALUES ({p}, {p}, 'deposit', {p}, {p}, {p}, {p}, '{{}}', {p}, {p})",
                (seq, f"raw-{seq}-{tag}", now_us, agent, amount, tx_hash, last_hash, digest))
    cur.executemany(f"INSERT INTO postings (seq, idx, account, amount_micros, currency) VALUES ({p}, {p}, {p}, {p}, 'USDC')",
                    [(seq, 0, "Platform:Treasury", amount), (seq, 1, f"Agent:{agent}:Available", -amount)])
    cur.execute(f"INSERT INTO agent_entries VALUES ({p}, {p}, {p}, 0)", (agent, seq, amount))
    cur.execute(f"UPDATE agents SET total_in_micros = total_in_micros + {p}, last_seq = {p}, updated_at_us = {p} "
                f"WHERE address = {p}", (amount, seq, now_us, agent))
    cur.execute("COMMIT")
