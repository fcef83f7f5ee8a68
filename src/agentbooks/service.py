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
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar, Union

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from .domain.errors import (
    CommitOutcomeUnknown,
    ConcurrencyConflict,
    HoldExceeded,
    IdempotencyConflict,
    LedgerError,
    InvalidArgument,
    NotFound,
    UnknownHold,
)
from .domain.model import (AgentState, Balance, DryRun, HoldKind, HoldState, Transaction, TransactionDraft,
                           draft_of)
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
from . import context as call_context
from .group_commit import GroupCommitter, GroupStats, Pending
from .storage import journal_store as store
from .storage import write_path as writes
from .storage.driver_sql import DRIVER_ERRORS, SIDE_TABLES, is_retryable
from .storage.engine import SINGLE_STATEMENT, WRITE, make_engine, migrate

T = TypeVar("T")

MAX_BATCH_OPERATIONS = 10_000
MAX_SWEEP_PAGES = 1000  # one sweep releases at most this many pages of expired holds
MAX_ATTEMPTS = 25
# A group commits at most this many requests (and MAX_BATCH_OPERATIONS operations): beyond a few
# hundred the commit is no longer what a request waits for, and a group's rows stay bounded.
MAX_GROUP_REQUESTS = 256


def back_off(attempt: int) -> None:
    """Jittered exponential backoff, capped: colliding writers spread out."""
    time.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))


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


@dataclass(frozen=True)
class WriteRequest:
    """One caller's request as the committer sees it: all of its operations commit, or none."""

    ops: tuple[Operation, ...]
    idem: UniqueKey | None
    fingerprint: str | None
    annotations: Mapping[str, Any]
    side_rows: Mapping[str, Sequence[tuple[Any, ...]]] = field(default_factory=dict)


Answer = Union[list[Transaction], BaseException]


def annotate(draft: TransactionDraft, annotations: Mapping[str, Any]) -> TransactionDraft:
    """The draft with the call's annotations added to its metadata; a name the operation uses is refused."""
    if not annotations:
        return draft
    clash = annotations.keys() & draft.metadata.keys()
    if clash:
        raise InvalidArgument(f"annotation names {sorted(clash)} are the operation's own metadata", field="annotations")
    return replace(draft, metadata={**draft.metadata, **annotations})


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
        self._committer: GroupCommitter[list[Transaction]] = GroupCommitter(
            self._commit_group, max_requests=MAX_GROUP_REQUESTS, max_operations=MAX_BATCH_OPERATIONS)

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

    def execute(self, ops: Sequence[Operation], *, idempotency_key: str | None = None,
                annotations: Mapping[str, Any] | None = None,
                side_rows: Mapping[str, Sequence[tuple[Any, ...]]] | None = None) -> list[Transaction]:
        """Run ``ops`` atomically, in order; return their recorded transactions.

        The call joins whatever group of concurrent calls commits next (``group_commit``); it is
        accepted or refused on its own. ``idempotency_key``: the key's first answer, a recorded
        result or a refusal, is its answer forever (the same request replays it, marked
        ``replayed``; another request is ``idempotency_conflict``). ``annotations`` (call context:
        who asked, the request id, ...) are merged into every recorded transaction's metadata,
        inside the hash chain. They are not part of the request's fingerprint: a retry of the
        same request carries another request id. ``side_rows`` (by table, of
        ``driver_sql.SIDE_TABLES``: the deposit watcher's checkpoint and credits) are written in
        the same database transaction when the request is accepted, and not at all otherwise.
        """
        request = self._request(ops, idempotency_key, annotations, side_rows)
        idem = request.idem
        if idem is not None:  # a replay needs no lock and no group: look first
            replay = self.read(lambda c: self._answer_of(c, writes.find_used(c, [idem]), request))
            if replay is not None:
                return replay
        return self._committer.submit(request, operations=len(ops),
                                      exclusive_key=(idem.scope, idem.key) if idem is not None else None)

    @staticmethod
    def _request(ops: Sequence[Operation], idempotency_key: str | None, annotations: Mapping[str, Any] | None,
                 side_rows: Mapping[str, Sequence[tuple[Any, ...]]] | None = None) -> WriteRequest:
        if not ops:
            raise InvalidArgument("a batch needs at least one operation")
        if len(ops) > MAX_BATCH_OPERATIONS:
            raise InvalidArgument(f"a batch holds at most {MAX_BATCH_OPERATIONS} operations")
        idem = None
        if idempotency_key is not None:
            idem = UniqueKey("idempotency", check_idempotency_key(idempotency_key), IdempotencyConflict)
        # The request's fingerprint is compared on an idempotent retry; without a key nobody reads it.
        # The caller's context is read here, on its own thread: the commit runs on another.
        if side_rows and not side_rows.keys() <= SIDE_TABLES:
            raise InvalidArgument(f"side rows go to {sorted(SIDE_TABLES)} only", field="side_rows")
        return WriteRequest(tuple(ops), idem, fingerprint(ops) if idem is not None else None,
                            {**call_context.current().annotations(), **(annotations or {})}, dict(side_rows or {}))

    def dry_run(self, ops: Sequence[Operation], *, idempotency_key: str | None = None,
                annotations: Mapping[str, Any] | None = None) -> DryRun:
        """What ``execute`` would answer now, planned by the same code (``_plan_request``), in one read.

        Nothing is written, locked or claimed: the state is read in one snapshot without locks, so a
        concurrent write may change the answer of the real call. A refusal raises the error the call
        would raise; a key with an answer already gives that answer (``replayed``).
        """
        request = self._request(ops, idempotency_key, annotations)

        def plan(conn: Connection) -> DryRun:
            head_seq = store.head(conn)[0]
            if request.idem is not None:
                replay = self._answer_of(conn, writes.find_used(conn, [request.idem]), request)
                if replay is not None:
                    agents = sorted({f.agent for t in replay for f in t.flows})
                    states = store.read_agents(conn, agents) if agents else {}
                    return DryRun(tuple(draft_of(t) for t in replay),
                                  {a: Balance.of(states[a], None, head_seq) for a in agents}, head_seq, replayed=True)
            resolved, originals = self._resolve_reversals(conn, request.ops)
            agents = sorted({a for op in resolved for a in op.involved_agents()})
            hold_keys = sorted({k for op in resolved for k in op.hold_keys()}, key=str)
            natural = [k for op in resolved if (k := op.unique_key()) is not None]
            states = store.read_agents(conn, agents) if agents else {}
            hold_states = store.read_holds(conn, hold_keys)
            used = writes.find_used(conn, natural) if natural else {}
            drafts, _ = self._plan_request(request, resolved, originals, self.clock(), states, hold_states, used, set())
            return DryRun(tuple(drafts), {a: Balance.of(states[a], None, head_seq) for a in agents}, head_seq)

        return self.read(plan)

    # --- the group commit ----------------------------------------------------------

    def group_stats(self) -> GroupStats:
        return self._committer.stats()

    def _commit_group(self, group: Sequence[Pending[list[Transaction]]]) -> None:
        """Plan and record a group's requests in one database transaction; answer each.

        Serialization failures, deadlocks and unique-key races retry the whole group (it is
        planned again from what is committed by then). A connection lost during the commit gives
        every request ``commit_outcome_unknown``, never retried here. Any other failure of the
        group as a whole (a bug, a broken invariant) is isolated: each request then runs alone,
        so it lands on the request that caused it.
        """
        for attempt in range(MAX_ATTEMPTS):
            answers: dict[int, Answer] = {}
            try:
                with self._write_connection() as conn:
                    transaction = conn.begin()
                    try:
                        self._plan_and_record(conn, group, answers)
                    except CommitOutcomeUnknown:
                        conn.invalidate()  # the connection is gone: no rollback on it
                        raise
                    except BaseException:
                        transaction.rollback()
                        raise
                    try:
                        transaction.commit()  # a formality: record_many committed (or nothing was written)
                    except DRIVER_ERRORS:
                        conn.invalidate()  # already durable; the connection is not reused
            except CommitOutcomeUnknown as exc:
                for pending in group:
                    pending.fail(exc)
                return
            except DRIVER_ERRORS as exc:
                if is_retryable(exc) and attempt < MAX_ATTEMPTS - 1:
                    back_off(attempt)
                    continue
                if len(group) > 1:
                    return self._commit_alone(group)
                group[0].fail(ConcurrencyConflict("the write kept colliding with concurrent writers; retry")
                              if is_retryable(exc) else exc)
                return
            except Exception as exc:
                if len(group) > 1:
                    return self._commit_alone(group)
                group[0].fail(exc)
                return
            for i, pending in enumerate(group):
                answer = answers[i]
                if isinstance(answer, BaseException):
                    pending.fail(answer)
                else:
                    pending.answer(answer)
            return
        raise AssertionError("unreachable")

    def _commit_alone(self, group: Sequence[Pending[list[Transaction]]]) -> None:
        for pending in group:
            self._commit_group([pending])

    def _plan_and_record(self, conn: Connection, group: Sequence[Pending[list[Transaction]]],
                         answers: dict[int, "Answer"]) -> None:
        """Each request in order against the state the accepted ones before it left; then one write."""
        requests: list[tuple[int, WriteRequest, list[Operation], dict[int, Transaction]]] = []
        for i, pending in enumerate(group):
            request: WriteRequest = pending.request
            try:
                ops, originals = self._resolve_reversals(conn, request.ops)
            except LedgerError as exc:
                answers[i] = exc
                continue
            requests.append((i, request, ops, originals))
        idems = [r.idem for _, r, _, _ in requests if r.idem is not None]
        natural = [k for _, _, ops, _ in requests for op in ops if (k := op.unique_key()) is not None]
        states, hold_states, used, created = writes.load_for_write(
            conn, [a for _, _, ops, _ in requests for op in ops for a in op.involved_agents()],
            sorted({k for _, _, ops, _ in requests for op in ops for k in op.hold_keys()}, key=str),
            natural + idems, request_keys=idems)
        loaded = dict(states)  # as committed: planning projects ``states`` request by request
        now = self.clock()
        drafts: list[TransactionDraft] = []
        spans: dict[int, tuple[int, int]] = {}  # request index -> (first draft, draft count)
        claims: list[writes.Claim] = []
        refusals: list[writes.Refusal] = []
        freed: list[int] = []
        claimed: set[tuple[str, str]] = set()  # natural keys taken by this group's accepted requests
        involved: set[str] = set()
        side_rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for i, request, ops, originals in requests:
            if request.idem is not None:
                found = used.get((request.idem.scope, request.idem.key))
                if found is not None:  # answered while this one waited for the key's lock
                    try:
                        answers[i] = self._replay(conn, found, request)
                    except LedgerError as exc:
                        answers[i] = exc
                    continue
            try:
                planned, keys = self._plan_request(request, ops, originals, now, states, hold_states, used, claimed)
            except LedgerError as exc:
                if not exc.final:
                    raise
                answers[i] = exc
                if request.idem is not None:
                    refusals.append((request.idem, request.fingerprint or "", json.dumps(exc.to_dict(), default=str)))
                continue
            base = len(drafts)
            spans[i] = (base, len(planned))
            drafts.extend(planned)
            # A natural key's fingerprint is never compared (a reuse is an error whatever the request).
            claims += [(key, base + j, base + j, "") for j, key in keys]
            if request.idem is not None:
                claims.append((request.idem, base, base + len(planned) - 1, request.fingerprint or ""))
            claimed.update((key.scope, key.key) for _, key in keys)
            freed.extend(originals)
            involved.update(a for op in ops for a in op.involved_agents())
            for table, rows in request.side_rows.items():
                side_rows[table].extend(rows)
        # The call's last write: the commit goes with it (see ``write_path.record_many``).
        recorded = writes.record_many(conn, drafts, now, claims=claims, refusals=refusals, freed_seqs=freed,
                                      forgotten_agents=created - involved, agent_states=loaded, side_rows=side_rows,
                                      commit=True)
        for i, (base, count) in spans.items():
            answers[i] = recorded[base:base + count]

    def _plan_request(self, request: "WriteRequest", ops: Sequence[Operation], originals: dict[int, Transaction],
                      now: datetime, states: dict[str, AgentState], hold_states: dict,
                      used: dict, claimed: set[tuple[str, str]]) -> tuple[list[TransactionDraft], list]:
        """One request's drafts, projected onto ``states``; on a refusal the states are as they were."""
        saved_agents = {a: states.get(a) for op in ops for a in op.involved_agents()}
        saved_holds = {k: hold_states.get(k) for op in ops for k in op.hold_keys()}
        try:
            keys = [(j, key) for j, op in enumerate(ops) if (key := op.unique_key()) is not None]
            self._check_keys_unused([key for _, key in keys], used, claimed)
            planned = []
            for op in ops:
                original = originals.get(op.original_seq) if isinstance(op, Reverse) else None
                draft = op.planned(PlanContext(now=now, agents=states, holds=hold_states, original=original))
                self._check_and_project(draft, states, hold_states)
                planned.append(annotate(draft, request.annotations))
            return planned, keys
        except BaseException:
            for a, state in saved_agents.items():
                if state is None:
                    states.pop(a, None)
                else:
                    states[a] = state
            for k, hold in saved_holds.items():
                hold_states[k] = hold
            raise

    def _answer_of(self, conn: Connection, used: dict, request: "WriteRequest") -> list[Transaction] | None:
        """The stored first answer of the request's idempotency key, or None when the key is new."""
        assert request.idem is not None
        found = used.get((request.idem.scope, request.idem.key))
        return None if found is None else self._replay(conn, found, request)

    @staticmethod
    def _replay(conn: Connection, found: writes.UsedKey, request: "WriteRequest") -> list[Transaction]:
        """Replay a used idempotency key: its transactions, or its refusal raised again."""
        first_seq, last_seq, stored_fp, refusal = found
        if stored_fp != request.fingerprint:
            raise IdempotencyConflict("this idempotency key was used with a different request")
        if refusal is not None:
            error = LedgerError.from_dict(json.loads(refusal))
            error.replayed = True
            raise error
        return [replace(t, replayed=True) for t in store.transactions_between(conn, first_seq, last_seq)]

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run a write that is not a journal operation (API keys) in one retried transaction."""
        return self._with_retries(work)

    def _with_retries(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction, retrying what another attempt can cure."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self._write_connection() as conn:
                    with conn.begin():
                        return work(conn)
            except DRIVER_ERRORS as exc:
                if not is_retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                    if is_retryable(exc):
                        raise ConcurrencyConflict("the write kept colliding with concurrent writers; retry") from exc
                    raise
                back_off(attempt)
        raise AssertionError("unreachable")

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
    def _check_keys_unused(keys: Sequence[UniqueKey], used: dict[tuple[str, str], object],
                           claimed: set[tuple[str, str]]) -> None:
        seen: set[tuple[str, str]] = set()
        for key in keys:
            pair = (key.scope, key.key)
            if pair in seen or pair in used or pair in claimed:
                raise key.error(f"{key.scope} {key.key!r} was already recorded", key=key.key)
            seen.add(pair)

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
        with call_context.unless_called("job:sweep-expired-holds"):
            return self._sweep_expired_holds(now or self.clock(), limit)

    def _sweep_expired_holds(self, moment: datetime, limit: int) -> list[Transaction]:
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
        skip the BEGIN and COMMIT: round trips on PostgreSQL, statements on SQLite.
        """
        for attempt in range(2):
            try:
                with self.engine.connect() as conn:
                    if conn.dialect.name == "postgresql":
                        conn = conn.execution_options(
                            isolation_level="AUTOCOMMIT" if single_statement else "REPEATABLE READ"
                        )
                    elif single_statement:
                        conn = conn.execution_options(**{SINGLE_STATEMENT: True})
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
