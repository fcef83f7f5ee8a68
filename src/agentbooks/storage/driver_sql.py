"""The write path's statements as driver SQL, rendered once per engine and run on the DBAPI cursor.

Why not SQLAlchemy Core here: a write runs about ten statements, and through
Core each one costs more Python time (cache key, parameter processing, result
wrapping) than SQLite takes to run it. The bare cursor with pre-rendered
text costs a few microseconds. On PostgreSQL the reads that do not wait on
each other go out in one pipeline (one round trip), and a call's writes are
one statement sent with the COMMIT, which shortens the time the chain head is
held. The SQL is plain and standard; the engines differ in the placeholder,
row locks and how a list travels as one parameter (a JSON array for SQLite,
arrays for PostgreSQL), so each read has one text whatever the number of
rows; PostgreSQL's one write statement has a text per shape (which tables,
how many rows), cached. Reads and rare writes stay on SQLAlchemy Core.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ContextManager, Mapping, Sequence

import psycopg
from sqlalchemy import BigInteger, Connection, Integer, SmallInteger, Table
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..domain.errors import CommitOutcomeUnknown, InvariantViolation
from . import tables

# Errors the bare drivers raise; the service treats them like SQLAlchemy's wrapped ones.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, sqlite3.Error, psycopg.Error)
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


def is_retryable(exc: BaseException) -> bool:
    """A failure another attempt can cure: a lost connection, a lock, or a key a concurrent writer took first."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, IntegrityError):
            return True
        exc = exc.orig  # type: ignore[assignment]
    if isinstance(exc, (sqlite3.IntegrityError, psycopg.IntegrityError)):
        return True  # a concurrent writer claimed the same key first: retry into the typed error
    if isinstance(exc, psycopg.OperationalError) and connection_lost(exc):
        return True  # the server dropped the connection before anything was committed
    if getattr(exc, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


_LOST = ("server closed the connection", "connection is closed", "terminating connection", "connection is lost",
         "consuming input failed", "sending query failed", "connection refused", "the connection is bad")


# The server ended the session: an administrator terminated the backend, the server is shutting down
# or crashed, or it refuses connections. The connection is gone as surely as a dropped socket.
_SESSION_ENDED_SQLSTATES = {"57P01", "57P02", "57P03"}


def connection_lost(exc: BaseException) -> bool:
    """psycopg's word that the connection itself is gone (not a statement's error, not a pipeline misuse)."""
    if not isinstance(exc, psycopg.OperationalError) or isinstance(exc, psycopg.errors.PipelineAborted):
        return False
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in _SESSION_ENDED_SQLSTATES or (sqlstate or "").startswith("08"):  # class 08: connection exception
        return True
    return sqlstate is None and any(text in str(exc).lower() for text in _LOST)


_AGENT_COLUMNS = "address, total_in_micros, total_out_micros, credit_limit_micros"
HOLD_COLUMNS = ("kind, agent, reference, amount_micros, remaining_micros, credit_micros, confirmed_micros, "
                "released_micros, expires_at_us, created_seq")
UNIQUE_KEY_COLUMNS = "scope, key, first_seq, last_seq, fingerprint, refusal_json"


@dataclass(frozen=True)
class DriverSql:
    """Statement texts for one engine, and how its lists travel as parameters."""

    postgres: bool
    lock_agents: str
    balances_of: str
    holds_of: str
    unique_keys_of: str
    head_for_update: str
    # PostgreSQL: one transaction-scoped advisory lock per idempotency key, taken before anything
    # else, so a second request with the key waits for the first one's commit instead of running.
    lock_request_key: str

    @classmethod
    def render(cls, postgres: bool) -> "DriverSql":
        def one_list(column: str) -> str:
            return f"{column} = ANY(?)" if postgres else f"{column} IN (SELECT value FROM json_each(?))"

        def row_list(columns: Sequence[str]) -> str:
            if postgres:
                arrays = ", ".join("?::text[]" for _ in columns)
                return f"({', '.join(columns)}) IN (SELECT * FROM unnest({arrays}))"
            picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
            return f"({', '.join(columns)}) IN (SELECT {picks} FROM json_each(?))"

        lock = " FOR UPDATE" if postgres else ""  # SQLite: BEGIN IMMEDIATE already holds the write lock
        texts = {
            "lock_agents": f"SELECT {_AGENT_COLUMNS} FROM agents WHERE {one_list('address')} ORDER BY address{lock}",
            # The reads below are statements of their own, run after the lock: under READ
            # COMMITTED a statement that waited for a lock still reads other tables as they were
            # when it started (a locking join returns stale joined rows).
            "balances_of": f"SELECT account, balance_micros FROM balances WHERE {one_list('account')}",
            "holds_of": f"SELECT {HOLD_COLUMNS} FROM holds WHERE {row_list(('kind', 'agent', 'reference'))}",
            "unique_keys_of": f"SELECT {UNIQUE_KEY_COLUMNS} FROM unique_keys WHERE {row_list(('scope', 'key'))}",
            "head_for_update": f"SELECT last_seq, last_hash, last_at_us FROM journal_head WHERE id = 1{lock}",
            "lock_request_key": "SELECT pg_advisory_xact_lock(?)" if postgres else "",
        }
        if postgres:  # psycopg's placeholder; no statement contains a literal "?" or "%"
            texts = {name: sql.replace("?", "%s") for name, sql in texts.items()}
        return cls(postgres=postgres, **texts)

    def values(self, items: Sequence[Any]) -> tuple[Any, ...]:
        """Parameters for ``one_list``: the whole list as one value."""
        return (list(items),) if self.postgres else (json.dumps(list(items)),)

    def rows(self, rows: Sequence[Sequence[Any]], width: int) -> tuple[Any, ...]:
        """Parameters for ``row_list``: one array per column (PostgreSQL) or one JSON array of rows."""
        if self.postgres:
            return tuple([r[i] for r in rows] for i in range(width))
        return (json.dumps([list(r) for r in rows]),)

    def pipelined(self, raw: Any) -> ContextManager[Any]:
        """Around statements that do not wait on each other: one round trip for all on PostgreSQL.

        Read results only after the block: a fetch inside a pipeline costs a round trip of its own.
        """
        return raw.pipeline() if self.postgres else contextlib.nullcontext()


@dataclass(frozen=True)
class TableWrite:
    """One table's part of a call's writes.

    ``columns`` are "name:postgres-type" in row order. ``row_sql`` writes one
    row ("?" placeholders in column order; empty: a plain insert), run for
    every row. ``set_sql`` (PostgreSQL) writes all of them at once from
    ``{rows}``, a VALUES list aliased ``u``.
    """

    name: str
    columns: tuple[str, ...]
    row_sql: str = ""
    set_sql: str = ""

    @property
    def names(self) -> str:
        return ", ".join(c.split(":")[0] for c in self.columns)

    def sql(self, postgres: bool) -> str:
        text = self.row_sql or f"INSERT INTO {self.name} ({self.names}) VALUES ({', '.join('?' for _ in self.columns)})"
        return text.replace("?", "%s") if postgres else text

    def all_rows_sql(self, count: int) -> str:
        row = "(" + ", ".join(f"%s::{c.split(':')[1]}" for c in self.columns) + ")"
        values = ", ".join([row] * count)
        if not self.set_sql:
            return f"INSERT INTO {self.name} ({self.names}) VALUES {values}"
        return self.set_sql.format(rows=f"(VALUES {values}) AS u({self.names})")


def _columns(spec: str) -> tuple[str, ...]:
    return tuple(spec.split())


def _postgres_type(column: Any) -> str:
    for sql_type, name in ((SmallInteger, "smallint"), (BigInteger, "bigint"), (Integer, "integer")):
        if isinstance(column.type, sql_type):
            return name
    return "text"


def appended(table: Table) -> TableWrite:
    """A plain insert into ``table``: its columns, in the order ``tables.py`` describes them.

    Rows for it are tuples in that order; ``write_tables`` refuses a row of another width, and
    ``tests/test_write_path.py`` reads every column back on both engines.
    """
    return TableWrite(table.name, tuple(f"{c.name}:{_postgres_type(c)}" for c in table.columns))


_ACTIVE_AGENTS = "(SELECT address FROM agents WHERE last_seq IS NOT NULL)"
_ACTIVE_ACCOUNTS = f"(SELECT name FROM accounts WHERE agent IN {_ACTIVE_AGENTS})"
_FREE_KEYS = "scope NOT IN ('idempotency', 'reversal')"  # request idempotency keys describe the request: they stay

# In this order: the balances, the chain head (both locked by now), the books, then the caches.
# Writers update balance rows only while they hold the chain head, so the platform's stripes are
# never contended and need no lock order among themselves.
TABLE_WRITES: tuple[TableWrite, ...] = (
    TableWrite("balances", _columns("delta:bigint account:text stripe:smallint"),
               "UPDATE balances SET balance_micros = balance_micros + ? WHERE account = ? AND stripe = ?",
               "UPDATE balances SET balance_micros = balances.balance_micros + u.delta FROM {rows} "
               "WHERE balances.account = u.account AND balances.stripe = u.stripe RETURNING 1"),
    TableWrite("journal_head", _columns("last_seq:bigint last_hash:text last_at_us:bigint"),
               "UPDATE journal_head SET last_seq = ?, last_hash = ?, last_at_us = ? WHERE id = 1",
               "UPDATE journal_head SET last_seq = u.last_seq, last_hash = u.last_hash, last_at_us = u.last_at_us "
               "FROM {rows} WHERE journal_head.id = 1"),
    appended(tables.journal),
    appended(tables.postings),
    appended(tables.agent_entries),
    appended(tables.transaction_metadata),
    appended(tables.agent_state_history),
    appended(tables.chain_refs),
    # One update of each agent's row (totals, and the credit limit when the call set one): one
    # statement must not update the same row twice (PostgreSQL would apply only one of them).
    TableWrite("agents", _columns("d_in:bigint d_out:bigint last_seq:bigint at_us:bigint credit_limit:bigint "
                                  "address:text"),
               "UPDATE agents SET total_in_micros = total_in_micros + ?, total_out_micros = total_out_micros + ?, "
               "last_seq = ?, updated_at_us = ?, credit_limit_micros = COALESCE(?, credit_limit_micros) "
               "WHERE address = ?",
               "UPDATE agents SET total_in_micros = agents.total_in_micros + u.d_in, "
               "total_out_micros = agents.total_out_micros + u.d_out, last_seq = u.last_seq, "
               "updated_at_us = u.at_us, credit_limit_micros = COALESCE(u.credit_limit, agents.credit_limit_micros) "
               "FROM {rows} WHERE agents.address = u.address"),
    appended(tables.holds),
    TableWrite("hold_updates", _columns("d_amount:bigint d_remaining:bigint d_credit:bigint d_confirmed:bigint "
                                        "d_released:bigint updated_seq:bigint kind:text agent:text reference:text"),
               "UPDATE holds SET amount_micros = amount_micros + ?, remaining_micros = remaining_micros + ?, "
               "credit_micros = credit_micros + ?, confirmed_micros = confirmed_micros + ?, "
               "released_micros = released_micros + ?, updated_seq = ? WHERE kind = ? AND agent = ? AND reference = ?",
               "UPDATE holds SET amount_micros = holds.amount_micros + u.d_amount, "
               "remaining_micros = holds.remaining_micros + u.d_remaining, "
               "credit_micros = holds.credit_micros + u.d_credit, "
               "confirmed_micros = holds.confirmed_micros + u.d_confirmed, "
               "released_micros = holds.released_micros + u.d_released, updated_seq = u.updated_seq "
               "FROM {rows} WHERE holds.kind = u.kind AND holds.agent = u.agent AND holds.reference = u.reference "
               "RETURNING 1"),
    # A reversed transaction's natural keys are free again.
    TableWrite("freed_keys", _columns("seq:bigint"),
               f"DELETE FROM unique_keys WHERE first_seq = ? AND {_FREE_KEYS}",
               f"DELETE FROM unique_keys USING {{rows}} WHERE unique_keys.first_seq = u.seq AND unique_keys.{_FREE_KEYS}"),
    # Agents created for a group's refused requests only: a refused request leaves no row behind.
    TableWrite("forgotten_agents", _columns("address:text"),
               "DELETE FROM agents WHERE address = ? AND last_seq IS NULL",
               "DELETE FROM agents USING {rows} WHERE agents.address = u.address AND agents.last_seq IS NULL"),
    # Never the rows of an agent a concurrent writer has meanwhile given a transaction ("created"
    # means "not there when this call first looked"; that writer committed before this one could
    # lock the row): only agents still without a transaction lose them.
    TableWrite("forgotten_balances", _columns("account:text"),
               f"DELETE FROM balances WHERE account = ? AND balance_micros = 0 AND account NOT IN {_ACTIVE_ACCOUNTS}",
               "DELETE FROM balances USING {rows} WHERE balances.account = u.account AND balances.balance_micros = 0 "
               f"AND balances.account NOT IN {_ACTIVE_ACCOUNTS}"),
    TableWrite("forgotten_accounts", _columns("name:text"),
               f"DELETE FROM accounts WHERE name = ? AND agent NOT IN {_ACTIVE_AGENTS}",
               f"DELETE FROM accounts USING {{rows}} WHERE accounts.name = u.name AND accounts.agent NOT IN {_ACTIVE_AGENTS}"),
    appended(tables.unique_keys),
    # Side rows (``SIDE_TABLES``): the deposit watcher's, written with the deposits they describe.
    appended(tables.chain_credits),
    # Compare-and-set: the checkpoint moves only from where the writer read it (else nothing commits).
    TableWrite("chain_checkpoint_moves", _columns("block_number:bigint block_hash:text updated_at_us:bigint "
                                                  "watcher:text from_number:bigint from_hash:text"),
               "UPDATE chain_checkpoints SET block_number = ?, block_hash = ?, updated_at_us = ? "
               "WHERE watcher = ? AND block_number = ? AND block_hash = ?",
               "UPDATE chain_checkpoints SET block_number = u.block_number, block_hash = u.block_hash, "
               "updated_at_us = u.updated_at_us FROM {rows} WHERE chain_checkpoints.watcher = u.watcher "
               "AND chain_checkpoints.block_number = u.from_number AND chain_checkpoints.block_hash = u.from_hash "
               "RETURNING 1"),
)
# Tables a caller of ``LedgerService.execute`` may add rows to (``side_rows``): facts outside the
# journal that must commit with the request's transactions or not at all.
SIDE_TABLES = frozenset({"chain_credits", "chain_checkpoint_moves"})
COUNTED = ("balances", "hold_updates", "chain_checkpoint_moves")  # updates whose every row must already exist
_WRITE_SQL = {flag: {w.name: w.sql(flag) for w in TABLE_WRITES} for flag in (False, True)}
_BY_NAME = {w.name: w for w in TABLE_WRITES}
# One statement for a call's writes up to this many rows in a table (single operations and small
# batches): past it, one executemany per table, so statement shapes stay few and bounded.
MAX_ROWS_IN_ONE_STATEMENT = 64
_MISSING = "agentbooks: a cache row to update is missing"


@lru_cache(maxsize=512)
def write_all_statement(shape: tuple[tuple[str, int], ...]) -> str:
    """PostgreSQL: the tables of ``shape`` (name, row count) written by one statement, a CTE each.

    PostgreSQL runs every data-modifying CTE exactly once. The main query
    fails the statement (so the transaction can not commit) unless every
    cache row of ``COUNTED`` it had to update was there: the text cast is
    not constant, so it is evaluated only when a count is short.
    """
    parts = ",\n".join(f"w_{name} AS ({_BY_NAME[name].all_rows_sql(count)})" for name, count in shape)
    counted = [(name, count) for name, count in shape if name in COUNTED]
    if not counted:
        return f"WITH {parts}\nSELECT 0"
    checks = " AND ".join(f"(SELECT count(*) FROM w_{name}) = {count}" for name, count in counted)
    found = " || ".join(f"' {name} ' || (SELECT count(*) FROM w_{name}) || '/{count}'" for name, count in counted)
    return f"WITH {parts}\nSELECT CASE WHEN {checks} THEN 0 ELSE ('{_MISSING}:' || {found})::int END"


def write_tables(raw: Any, sql: DriverSql, rows: Mapping[str, Sequence[Sequence[Any]]], *, commit: bool) -> None:
    """Run every table write of ``TABLE_WRITES`` (``rows`` by table name), then commit if asked.

    A missing cache row (a balance or hold row an update expected) raises
    ``InvariantViolation`` before anything commits. SQLite: one
    ``executemany`` per table. PostgreSQL: for a small call one statement and
    the COMMIT in one round trip, so the chain head is released as soon as
    the server has made the transaction durable, without waiting for this
    process to be scheduled again; for a large one, one pipeline of
    ``executemany`` and then the COMMIT.
    """
    present = [(w.name, len(rows[w.name])) for w in TABLE_WRITES if rows.get(w.name)]
    if not present:
        if commit:
            raw.commit()
        return
    for name, _ in present:
        if len(rows[name][0]) != len(_BY_NAME[name].columns):
            raise InvariantViolation(f"a {name} row has {len(rows[name][0])} values for "
                                     f"{len(_BY_NAME[name].columns)} columns")
    if sql.postgres and max(count for _, count in present) <= MAX_ROWS_IN_ONE_STATEMENT:
        params = [value for name, _ in present for row in rows[name] for value in row]
        committed = False
        try:
            with raw.pipeline():
                raw.cursor().execute(write_all_statement(tuple(present)), params)
                if commit:
                    raw.commit()
                    committed = True
        except psycopg.errors.InvalidTextRepresentation as exc:
            if _MISSING in str(exc):
                raise InvariantViolation("a posting or hold effect names a row that does not exist") from exc
            raise
        except psycopg.OperationalError as exc:
            if committed:
                return  # the server acknowledged the COMMIT; only leaving the pipeline failed
            if commit and connection_lost(exc):
                raise CommitOutcomeUnknown(_UNKNOWN) from exc
            raise
        return
    texts = _WRITE_SQL[sql.postgres]
    cursors = {}
    with sql.pipelined(raw):
        for name, _ in present:
            cursors[name] = cur = raw.cursor()
            cur.executemany(texts[name], rows[name])
    for name in COUNTED:
        if name in cursors and cursors[name].rowcount not in (-1, len(rows[name])):
            raise InvariantViolation(f"a {name} row to update does not exist")
    if commit:
        try:
            raw.commit()
        except psycopg.OperationalError as exc:
            if connection_lost(exc):
                raise CommitOutcomeUnknown(_UNKNOWN) from exc
            raise


_UNKNOWN = ("the connection to the database was lost while the call was committing: it may or may not have "
            "been recorded; repeat it with the same idempotency key to learn which, or look it up")


_RENDERED = {flag: DriverSql.render(flag) for flag in (False, True)}


def sql_for(conn: Connection) -> DriverSql:
    return _RENDERED[conn.dialect.name == "postgresql"]


def raw_connection(conn: Connection) -> Any:
    """The DBAPI connection under ``conn``, inside the transaction SQLAlchemy began."""
    return conn.connection.driver_connection


