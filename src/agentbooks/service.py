"""The one write path: every operation runs here, inside one database transaction.

The ``Ledger`` facade, the HTTP API and the CLI all call this service. A
write either commits completely (journal row, postings, every cache) or
raises and leaves nothing behind. Serialization failures, deadlocks and
unique-key races are retried a bounded number of times; when the retries run
out the caller gets ``ConcurrencyConflict``, never a half-applied write.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Iterator, Sequence, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from .domain.errors import (
    CommitOutcomeUnknown,
    ConcurrencyConflict,
    HoldExceeded,
    IdempotencyConflict,
    InvalidArgument,
    NotFound,
    UnknownHold,
)
from .domain.model import AgentState, HoldKind, HoldState, Transaction
from .domain.operations import (
    Operation,
    PlanContext,
    ReleaseHold,
    Reverse,
    UniqueKey,
    check_agent,
    check_hold,
    project_agent,
    project_hold,
)
from .storage import journal_store as store
from .storage import write_path as writes
from .storage.driver_sql import DRIVER_ERRORS, is_retryable
from .storage.engine import WRITE, make_engine, migrate

T = TypeVar("T")

MAX_BATCH_OPERATIONS = 10_000
MAX_SWEEP_PAGES = 1000  # one sweep releases at most this many pages of expired holds
MAX_ATTEMPTS = 25


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


MAX_IDEMPOTENCY_KEY_LENGTH = 256  # the unique_keys.key column


def check_idempotency_key(key: object) -> str:
    """1-256 printable characters: the key is stored, compared and shown back verbatim."""
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise InvalidArgument(f"an idempotency key is 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable characters",
                              field="idempotency_key")
    return key


def fingerprint(ops: Sequence[Operation]) -> str:
    body = json.dumps([op.fingerprint() for op in ops], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class LedgerService:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        # SQLite takes one writer at a time whatever we do: its writers share one connection, kept
        # open, behind a lock. No pool checkout and check-in per call, and a process's threads
        # queue here instead of spinning in SQLite's busy handler. PostgreSQL writers each take a
        # pooled connection.
        url = engine.url
        file_sqlite = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        self._sqlite_writer_lock = threading.Lock() if file_sqlite else None
        self._sqlite_writer: Connection | None = None

    @classmethod
    def open(cls, url: str, *, clock: Callable[[], datetime] = utc_now) -> "LedgerService":
        engine = make_engine(url)
        migrate(engine)
        return cls(engine, clock=clock)

    def close(self) -> None:
        if self._sqlite_writer_lock is not None:
            with self._sqlite_writer_lock:
                if self._sqlite_writer is not None:
                    self._sqlite_writer.close()
                    self._sqlite_writer = None
        self.engine.dispose()

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        """The connection one write transaction runs on (see ``__init__``)."""
        if self._sqlite_writer_lock is None:
            with self.engine.connect().execution_options(**{WRITE: True}) as conn:
                yield conn
            return
        with self._sqlite_writer_lock:
            if self._sqlite_writer is None or self._sqlite_writer.closed or self._sqlite_writer.invalidated:
                self._sqlite_writer = self.engine.connect().execution_options(**{WRITE: True})
            yield self._sqlite_writer

    # --- writes ------------------------------------------------------------------

    def execute(self, ops: Sequence[Operation], *, idempotency_key: str | None = None) -> list[Transaction]:
        """Run ``ops`` atomically, in order; return their recorded transactions."""
        if not ops:
            raise InvalidArgument("a batch needs at least one operation")
        if len(ops) > MAX_BATCH_OPERATIONS:
            raise InvalidArgument(f"a batch holds at most {MAX_BATCH_OPERATIONS} operations")
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        # The request's fingerprint is compared on an idempotent retry; without a key nobody reads it.
        request_fp = fingerprint(ops) if idempotency_key is not None else None
        return self._with_retries(lambda conn: self._execute_once(conn, ops, idempotency_key, request_fp),
                                  commits_itself=True)

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run a write that is not a journal operation (API keys) in one retried transaction."""
        return self._with_retries(work)

    def _with_retries(self, work: Callable[[Connection], T], *, commits_itself: bool = False) -> T:
        """Run ``work`` in one write transaction, retrying what another attempt can cure.

        ``commits_itself``: the work's last act commits (``record_many(commit=True)``), so once it
        returns the call is durable and SQLAlchemy's own commit is a formality whose failure (a
        connection lost just after) must not make the call run again.
        """
        for attempt in range(MAX_ATTEMPTS):
            unknown: CommitOutcomeUnknown | None = None
            try:
                with self._write_connection() as conn:
                    transaction = conn.begin()
                    try:
                        result = work(conn)
                    except CommitOutcomeUnknown as exc:
                        # The connection is gone: no rollback on it (its error would hide this one).
                        unknown = exc
                        conn.invalidate()
                        raise
                    except BaseException:
                        transaction.rollback()
                        raise
                    try:
                        transaction.commit()
                    except DRIVER_ERRORS:
                        if not commits_itself:
                            raise
                        conn.invalidate()  # already durable; the connection is not reused
                    return result
            except DRIVER_ERRORS as exc:
                if unknown is not None:
                    raise unknown from exc  # never retried: the call may have been recorded
                if not is_retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                    if is_retryable(exc):
                        raise ConcurrencyConflict("the write kept colliding with concurrent writers; retry") from exc
                    raise
                # Jittered exponential backoff, capped: colliding writers spread out.
                time.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
        raise AssertionError("unreachable")

    def _execute_once(
        self, conn: Connection, ops: Sequence[Operation], idempotency_key: str | None, request_fp: str | None
    ) -> list[Transaction]:
        idem = UniqueKey("idempotency", idempotency_key, IdempotencyConflict) if idempotency_key is not None else None
        if idem is not None:  # a replay needs no lock: look first, before reversals and agents
            replay = self._replay(conn, writes.find_used(conn, [idem]), idem, request_fp)
            if replay is not None:
                return replay
        ops, originals = self._resolve_reversals(conn, ops)
        keys = [op.unique_key() for op in ops]
        wanted = [k for k in keys if k is not None] + ([idem] if idem is not None else [])
        # Lock every involved agent once, in address order, reading their state, references and
        # the keys the call would use; then plan the whole batch in memory: each operation sees
        # the state the previous ones left.
        states, hold_states, used = writes.load_for_write(
            conn, [a for op in ops for a in op.involved_agents()],
            sorted({k for op in ops for k in op.hold_keys()}, key=str), wanted)
        if idem is not None:  # claimed by a concurrent call since the first look
            replay = self._replay(conn, used, idem, request_fp)
            if replay is not None:
                return replay
        self._check_keys_unused(keys, used)
        now = self.clock()
        drafts = []
        for op in ops:
            original = originals.get(op.original_seq) if isinstance(op, Reverse) else None
            draft = op.plan(PlanContext(now=now, agents=states, holds=hold_states, original=original))
            self._check_and_project(draft, states, hold_states)
            drafts.append(draft)
        claims = [(key, i, i, fingerprint([op])) for i, (op, key) in enumerate(zip(ops, keys)) if key]
        if idem is not None:
            claims.append((idem, 0, len(drafts) - 1, request_fp))
        # The call's last write: the commit goes with it (see ``write_path.record_many``).
        return writes.record_many(conn, drafts, now, claims=claims, freed_seqs=list(originals), commit=True)

    @staticmethod
    def _replay(conn: Connection, used: dict, idem: UniqueKey, request_fp: str | None) -> list[Transaction] | None:
        """The first result of an idempotency key already used, or None when it is new."""
        found = used.get((idem.scope, idem.key))
        if found is None:
            return None
        first_seq, last_seq, stored_fp = found
        if stored_fp != request_fp:
            raise IdempotencyConflict("this idempotency key was used with a different request")
        return [replace(t, replayed=True) for t in store.transactions_between(conn, first_seq, last_seq)]

    def _resolve_reversals(self, conn: Connection, ops: Sequence[Operation]) -> tuple[list[Operation], dict]:
        """Load each reversal's original and fill in what it touches (agents, references, key)."""
        resolved, originals = [], {}
        for op in ops:
            if isinstance(op, Reverse):
                original = store.transaction_by_id(conn, op.transaction_id)
                if original is None:
                    raise NotFound(f"no transaction {op.transaction_id!r}", transaction_id=op.transaction_id)
                originals[original.seq] = original
                op = replace(
                    op,
                    original_agents=tuple(f.agent for f in original.flows),
                    original_holds=tuple((e.kind, e.agent, e.reference) for e in original.hold_effects),
                    original_seq=original.seq,
                )
            resolved.append(op)
        return resolved, originals

    @staticmethod
    def _check_keys_unused(keys: Sequence[UniqueKey | None], used: dict[tuple[str, str], object]) -> None:
        seen: set[tuple[str, str]] = set()
        for key in keys:
            if key is None:
                continue
            if (key.scope, key.key) in seen or (key.scope, key.key) in used:
                raise key.error(f"{key.scope} {key.key!r} was already recorded", key=key.key)
            seen.add((key.scope, key.key))

    @staticmethod
    def _check_and_project(draft, states: dict[str, AgentState], hold_states: dict) -> None:  # type: ignore[no-untyped-def]
        """Every result keeps the rules, whatever the operation decided (defence in depth);
        the batch's next operation then plans against the new state."""
        for agent in draft.agents():
            after = project_agent(states.get(agent) or AgentState(agent), draft)
            check_agent(after)
            states[agent] = after
        for e in draft.hold_effects:
            key = (e.kind, e.agent, e.reference)
            after = project_hold(hold_states.get(key), e)
            check_hold(after)
            hold_states[key] = after

    def sweep_expired_holds(self, *, now: datetime | None = None, limit: int = 1000) -> list[Transaction]:
        """Release what is left of every hold whose expiry has passed; one transaction each."""
        moment = now or self.clock()
        released = []
        for _ in range(MAX_SWEEP_PAGES):
            page = self.read(lambda c: store.list_holds(c, kind=HoldKind.HOLD, expired_before=moment, limit=limit))
            for hold in page:
                op = ReleaseHold(hold.agent, hold.remaining_micros, hold.reference, reason="expired")
                try:
                    released.extend(self.execute([op]))
                except (HoldExceeded, UnknownHold):
                    continue  # confirmed or released concurrently; the next sweep sees the new state
            if len(page) < limit:
                break
        return released

    # --- reads -------------------------------------------------------------------

    def read(self, work: Callable[[Connection], T], *, single_statement: bool = False) -> T:
        """Run ``work`` in one consistent read snapshot.

        ``single_statement`` reads (one SELECT sees one snapshot by itself)
        skip the BEGIN/COMMIT round trips on PostgreSQL.
        """
        for attempt in range(2):
            try:
                with self.engine.connect() as conn:
                    if conn.dialect.name == "postgresql":
                        conn = conn.execution_options(
                            isolation_level="AUTOCOMMIT" if single_statement else "REPEATABLE READ"
                        )
                    with conn.begin():
                        return work(conn)
            except DBAPIError as exc:
                if not exc.connection_invalidated or attempt:
                    raise  # only a connection the server dropped (restart, idle timeout) is retried
        raise AssertionError("unreachable")

    def stream(self, *, after_seq: int = 0, upto_seq: int | None = None, page_size: int = 1000) -> Iterator[Transaction]:
        """The journal in sequence order; each page is its own short read."""
        cursor = after_seq
        while True:
            page = self.read(lambda c: store.transactions_page(
                c, after_seq=cursor, upto_seq=upto_seq, limit=page_size))
            yield from page
            if len(page) < page_size:
                return
            cursor = page[-1].seq

    def hold(self, kind: HoldKind, agent: str, reference: str) -> HoldState | None:
        return self.read(lambda c: store.read_holds(c, [(kind, agent, reference)])[(kind, agent, reference)])
