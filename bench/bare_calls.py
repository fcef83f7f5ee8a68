"""The group-commit baselines: a ledger call's transaction shape with the bare driver, no head row.

``BareWriter.call`` writes what the ledger writes for one of the workloads'
calls (``workload.mixed_calls``, ``workload.metering_calls``), one durable
commit per call: lock the agents' rows (address order), read their balance
rows (and the hold), insert the journal row, its postings, the agent entries,
the deposit's unique key, insert or update the hold, update the agents' totals
and balance rows, the platform's striped row last, COMMIT. No chain head: the
sequence number comes from a PostgreSQL SEQUENCE (SQLite, one writer: a
counter) and nothing is hash-chained, so nothing serialises the writers but
the rows they share. This is the best a writer that does not group its
commits can reach, the figure group commit is measured against.

``BareWriter.minimal_transfer`` is the smallest transfer one durable commit
can hold: insert a transaction row, two postings, upsert the payee's balance
row and update the payer's, COMMIT; the lone caller's baseline.

The rows land in the ledger's own tables (created by its migrations) under
sequence numbers far above the ledger's, so a run keeps the ledger's
statements, indexes and row sizes; run them after the ledger's measurements
on that database (they move balances the journal does not explain).
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import psycopg

from agentbooks.domain import accounts as acct
from agentbooks.domain.money import parse_amount

from .workload import Call

SEQUENCE = "bench_bare_seq"
FIRST_BARE_SEQ = 10**12  # far above any sequence number the ledger hands out in a run
PLATFORM_STRIPES = 16


_INSERT_HOLD = ("INSERT INTO holds (kind, agent, reference, amount_micros, remaining_micros, credit_micros, "
                "confirmed_micros, released_micros, expires_at_us, created_seq, updated_seq) "
                "VALUES ('hold', ?, ?, ?, ?, 0, 0, 0, NULL, ?, ?)")


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class Shape:
    """The rows one call writes."""

    kind: str
    agent: str
    amount: int
    agents: list[str]
    postings: list[tuple[str, int]]  # (account, amount): agent accounts first, at most one platform posting last
    entries: list[tuple[str, int, int]]  # (agent, in, out)
    counterparty: str | None = None
    reference: str | None = None
    tx_hash: str | None = None
    hold_insert: int = 0  # amount of a new hold
    hold_take: int = 0  # amount a confirm, release or settlement takes from the hold
    platform_posting: tuple[str, int] | None = None


def shape_of(call: Call) -> Shape:
    name, args, kw = call
    if name == "settle_hold":
        buyer, seller, amount, ref = args
        a, fee = parse_amount(amount), parse_amount(kw.get("fee", "0"))
        return Shape(name, buyer, a, sorted({buyer, seller}), [(acct.pending(buyer), a), (acct.available(seller), fee - a)],
                     [(buyer, 0, a), (seller, a - fee, 0)], counterparty=seller, reference=ref, hold_take=a,
                     platform_posting=(acct.FEES, -fee))
    agent, amount, third = args
    a = parse_amount(amount)
    if name == "deposit":
        return Shape(name, agent, a, [agent], [(acct.available(agent), -a)], [(agent, a, 0)], tx_hash=third,
                     platform_posting=(acct.TREASURY, a))
    if name == "spend":
        return Shape(name, agent, a, [agent], [(acct.available(agent), a)], [(agent, 0, a)],
                     platform_posting=(acct.TREASURY, -a))
    if name == "hold":
        return Shape(name, agent, a, [agent], [(acct.available(agent), a), (acct.pending(agent), -a)], [(agent, 0, 0)],
                     reference=third, hold_insert=a)
    if name == "confirm_hold":
        return Shape(name, agent, a, [agent], [(acct.pending(agent), a)], [(agent, 0, a)], reference=third,
                     hold_take=a, platform_posting=(acct.TREASURY, -a))
    if name == "release_hold":
        return Shape(name, agent, a, [agent], [(acct.pending(agent), a), (acct.available(agent), -a)],
                     [(agent, 0, 0)], reference=third, hold_take=a)
    raise ValueError(f"no bare shape for {name}")


class BareWriter:
    """One client of the bare driver (``sqlite3`` or ``psycopg``) on a ledger database."""

    def __init__(self, url: str) -> None:
        """``url``: the ledger's database URL (``sqlite:///file.db`` or ``postgresql+psycopg://…``)."""
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            # BEGIN and COMMIT are sent as written: no implicit transaction around them.
            self.conn: Any = psycopg.connect(_libpq_url(url), autocommit=True)
            self.p = "%s"
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.p = "?"
            top = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0]
            self._seqs = itertools.count(max(top + 1, FIRST_BARE_SEQ))

    @staticmethod
    def prepare_postgres(url: str) -> None:
        """Create the SEQUENCE the PostgreSQL clients number their rows from."""
        with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
            conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} START {FIRST_BARE_SEQ}")

    def close(self) -> None:
        self.conn.close()

    def _sql(self, text: str) -> str:
        return text.replace("?", self.p)

    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")

    def _journal(self, cur: Any, kind: str, agent: str, amount: int, *, counterparty: str | None = None,
                 reference: str | None = None, tx_hash: str | None = None) -> int:
        """Insert the transaction row; its sequence number from the SEQUENCE (PostgreSQL) or the counter."""
        now_us = time.time_ns() // 1000
        digest = hashlib.sha256(f"{kind}:{agent}:{counterparty}:{amount}:{reference}:{tx_hash}:{now_us}".encode()).hexdigest()
        values = (str(uuid.uuid4()), kind, now_us, agent, counterparty, amount, reference, tx_hash, digest)
        columns = "id, kind, occurred_at_us, agent, counterparty, amount_micros, reference, tx_hash, metadata_json, prev_hash, hash"
        if self.postgres:
            cur.execute(f"INSERT INTO journal (seq, {columns}) VALUES (nextval('{SEQUENCE}'), %s, %s, %s, %s, %s, %s, "
                        "%s, %s, '{}', '', %s) RETURNING seq", values)
            return cur.fetchone()[0]
        seq = next(self._seqs)
        cur.execute(f"INSERT INTO journal (seq, {columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{{}}', '', ?)",
                    (seq, *values))
        return seq

    def _postings(self, cur: Any, seq: int, postings: list[tuple[str, int]], reference: str | None = None) -> None:
        cur.executemany(self._sql("INSERT INTO postings (seq, idx, account, amount_micros, currency, reference) "
                                  "VALUES (?, ?, ?, ?, 'USDC', ?)"),
                        [(seq, i, account, amount, reference) for i, (account, amount) in enumerate(postings)])

    def call(self, call: Call) -> None:
        """Write ``call``'s rows in one durable commit."""
        s = shape_of(call)
        p, lock = self.p, " FOR UPDATE" if self.postgres else ""
        cur = self.conn.cursor()
        self._begin(cur)
        marks = ", ".join(p for _ in s.agents)
        cur.execute(f"SELECT address, total_in_micros, total_out_micros, credit_limit_micros FROM agents "
                    f"WHERE address IN ({marks}) ORDER BY address{lock}", s.agents)
        cur.fetchall()
        accounts = [name for a in s.agents for name in acct.agent_accounts(a).values()]
        cur.execute(f"SELECT account, balance_micros FROM balances WHERE account IN ({', '.join(p for _ in accounts)})",
                    accounts)
        cur.fetchall()
        if s.hold_take:
            cur.execute(self._sql("SELECT remaining_micros FROM holds WHERE kind = 'hold' AND agent = ? AND reference = ?"),
                        (s.agent, s.reference))
            cur.fetchall()
        postings = s.postings + ([s.platform_posting] if s.platform_posting else [])
        seq = self._journal(cur, s.kind, s.agent, s.amount, counterparty=s.counterparty, reference=s.reference,
                            tx_hash=s.tx_hash)
        self._postings(cur, seq, postings, s.reference)
        cur.executemany(self._sql("INSERT INTO agent_entries (agent, seq, total_in_delta_micros, total_out_delta_micros) "
                                  "VALUES (?, ?, ?, ?)"),
                        [(agent, seq, d_in, d_out) for agent, d_in, d_out in s.entries])
        if s.tx_hash:
            cur.execute(self._sql("INSERT INTO unique_keys (scope, key, first_seq, last_seq, fingerprint) "
                                  "VALUES ('deposit', ?, ?, ?, '')"), (f"bare:{s.tx_hash}", seq, seq))
        if s.hold_insert:
            cur.execute(self._sql(_INSERT_HOLD), (s.agent, s.reference, s.hold_insert, s.hold_insert, seq, seq))
        if s.hold_take:
            cur.execute(self._sql("UPDATE holds SET remaining_micros = remaining_micros - ?, "
                                  "confirmed_micros = confirmed_micros + ?, updated_seq = ? "
                                  "WHERE kind = 'hold' AND agent = ? AND reference = ?"),
                        (s.hold_take, s.hold_take, seq, s.agent, s.reference))
        now_us = time.time_ns() // 1000
        cur.executemany(self._sql("UPDATE agents SET total_in_micros = total_in_micros + ?, "
                                  "total_out_micros = total_out_micros + ?, last_seq = ?, updated_at_us = ? "
                                  "WHERE address = ?"),
                        [(d_in, d_out, seq, now_us, agent) for agent, d_in, d_out in s.entries])
        update = self._sql("UPDATE balances SET balance_micros = balance_micros + ? WHERE account = ? AND stripe = ?")
        cur.executemany(update, [(amount, account, 0) for account, amount in s.postings])
        if s.platform_posting:  # the one row other writers share: updated last, held only until the commit
            account, amount = s.platform_posting
            cur.execute(update, (amount, account, zlib.crc32(s.agent.encode()) % PLATFORM_STRIPES))
        cur.execute("COMMIT")

    def open_bare_hold(self, agent: str, reference: str, amount: int) -> None:
        """The hold row a bare metering run settles against."""
        cur = self.conn.cursor()
        self._begin(cur)
        cur.execute(self._sql(_INSERT_HOLD), (agent, reference, amount, amount, 0, 0))
        cur.execute("COMMIT")

    def minimal_transfer(self, payer: str, payee: str, amount: int) -> None:
        """BEGIN; a transaction row; two postings; upsert the payee's balance row, update the payer's; COMMIT."""
        cur = self.conn.cursor()
        self._begin(cur)
        seq = self._journal(cur, "transfer", payer, amount, counterparty=payee)
        self._postings(cur, seq, [(acct.available(payer), amount), (acct.available(payee), -amount)])
        cur.execute(self._sql("INSERT INTO balances (account, stripe, balance_micros) VALUES (?, 0, ?) "
                              "ON CONFLICT (account, stripe) DO UPDATE "
                              "SET balance_micros = balances.balance_micros + excluded.balance_micros"),
                    (acct.available(payee), -amount))
        cur.execute(self._sql("UPDATE balances SET balance_micros = balance_micros + ? WHERE account = ? AND stripe = 0"),
                    (amount, acct.available(payer)))
        cur.execute("COMMIT")
