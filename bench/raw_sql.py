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


def raw_sqlite_batches(path: str, agents: list[str], count: int, per_commit: int, first_seq: int) -> float:
    """Operations per second for deposits written ``per_commit`` to a transaction, one ``executemany``
    per table: the same rows the ledger's batch writes (journal row, two postings, agent entry, the
    balance, agent and chain-head updates), with nothing but tuples and a sha256 per row in Python."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    rows = _rows(count, agents)
    started = time.perf_counter()
    for start in range(0, count, per_commit):
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        last_seq, last_hash = cur.execute("SELECT last_seq, last_hash FROM journal_head WHERE id = 1").fetchone()
        now_us = time.time_ns() // 1000
        journal, postings, entries, deltas = [], [], [], {}
        for n, (agent, amount) in enumerate(rows[start:start + per_commit]):
            seq = last_seq + 1
            digest = hashlib.sha256(f"{seq}:{last_hash}:{agent}:{amount}".encode()).hexdigest()
            journal.append((seq, f"rawb-{seq}-{first_seq}", now_us, agent, amount, f"0xrawb{first_seq + start + n}",
                            last_hash, digest))
            postings += [(seq, 0, "Platform:Treasury", amount), (seq, 1, f"Agent:{agent}:Available", -amount)]
            entries.append((agent, seq, amount))
            for key, delta in (((f"Agent:{agent}:Available", 0), -amount),
                               (("Platform:Treasury", zlib.crc32(agent.encode()) % 16), amount)):
                deltas[key] = deltas.get(key, 0) + delta
            last_seq, last_hash = seq, digest
        cur.executemany("UPDATE balances SET balance_micros = balance_micros + ? WHERE account = ? AND stripe = ?",
                        [(d, a, s) for (a, s), d in sorted(deltas.items())])
        cur.execute("UPDATE journal_head SET last_seq = ?, last_hash = ?, last_at_us = ? WHERE id = 1",
                    (last_seq, last_hash, now_us))
        cur.executemany("INSERT INTO journal (seq, id, kind, occurred_at_us, agent, amount_micros, tx_hash, "
                        "metadata_json, prev_hash, hash) VALUES (?, ?, 'deposit', ?, ?, ?, ?, '{}', ?, ?)", journal)
        cur.executemany("INSERT INTO postings (seq, idx, account, amount_micros, currency) VALUES (?, ?, ?, ?, 'USDC')",
                        postings)
        cur.executemany("INSERT INTO agent_entries VALUES (?, ?, ?, 0)", entries)
        cur.executemany("UPDATE agents SET total_in_micros = total_in_micros + ?, last_seq = ?, updated_at_us = ? "
                        "WHERE address = ?", [(amount, seq, now_us, agent) for agent, seq, amount in entries])
        cur.execute("COMMIT")
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
