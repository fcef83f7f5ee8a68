"""Group commit: concurrent calls share one database transaction, and each is accepted or refused on its own.

The committer's rules are checked with a fake commit (deterministic groups);
the ledger's with a real one, on both engines: a group is held open at its
first commit so that the next calls queue behind it and form one group.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from agentbooks import Ledger, LedgerError
from agentbooks.group_commit import GroupCommitter
from agentbooks.verify.database import verify_database
from conftest import ALICE, BOB, CAROL, StepClock
from concurrency_workload import EXPECTED_REFUSALS, HOT_AGENT, hammer_from_threads
from test_concurrency_pg import _check_against_serial_replay, _fund

DAVE = "0x9a8b7c6d5e4f30211203948576abcdef01234567"


# --- the committer alone ----------------------------------------------------------------


class HeldCommit:
    """A fake commit that records its groups and holds the first one until released."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, group) -> None:  # type: ignore[no-untyped-def]
        self.groups.append([p.request for p in group])
        if len(self.groups) == 1:
            self.first_started.set()
            self.release.wait(10)
        for p in group:
            if p.request == "boom":
                p.fail(ValueError("refused"))
            else:
                p.answer(p.request.upper())


def queue_behind_first(committer: GroupCommitter, held: HeldCommit, first: str, rest: list[tuple[str, tuple | None]]):
    """Submit ``first``, wait until its commit runs, queue ``rest`` behind it, then let it finish."""
    with futures.ThreadPoolExecutor(len(rest) + 1) as pool:
        jobs = {first: pool.submit(committer.submit, first)}
        assert held.first_started.wait(10)
        for request, key in rest:
            jobs[request] = pool.submit(committer.submit, request, exclusive_key=key)
        deadline = time.monotonic() + 10
        while len(committer._queue) < len(rest) and time.monotonic() < deadline:
            time.sleep(0.001)
        held.release.set()
        outcomes = {}
        for request, job in jobs.items():
            try:
                outcomes[request] = job.result(10)
            except ValueError as exc:
                outcomes[request] = exc
    return outcomes


def test_a_lone_caller_commits_alone_at_once():
    held = HeldCommit()
    held.release.set()
    committer = GroupCommitter(held)
    assert committer.submit("a") == "A"
    assert committer.submit("b") == "B"
    assert held.groups == [["a"], ["b"]]


def test_calls_queued_during_a_commit_form_the_next_group_and_each_gets_its_own_answer():
    held = HeldCommit()
    committer = GroupCommitter(held)
    outcomes = queue_behind_first(committer, held, "first", [("x", None), ("boom", None), ("y", None)])
    assert held.groups[0] == ["first"]
    assert sorted(held.groups[1]) == ["boom", "x", "y"]  # one group after the first
    assert outcomes["x"] == "X" and outcomes["y"] == "Y" and outcomes["first"] == "FIRST"
    assert isinstance(outcomes["boom"], ValueError)  # the refusal is that call's alone
    assert committer.stats().largest_group == 3


def test_two_calls_with_one_idempotency_key_never_share_a_group():
    held = HeldCommit()
    committer = GroupCommitter(held)
    key = ("idempotency", "k")
    queue_behind_first(committer, held, "first", [("p", key), ("q", key), ("r", None)])
    groups_with_key = [g for g in held.groups if "p" in g or "q" in g]
    assert all(not ("p" in g and "q" in g) for g in groups_with_key)
    assert len(held.groups) == 3


def test_a_group_is_bounded():
    held = HeldCommit()
    committer = GroupCommitter(held, max_requests=2)
    queue_behind_first(committer, held, "first", [(f"r{i}", None) for i in range(5)])
    assert max(len(g) for g in held.groups) == 2
    assert sum(len(g) for g in held.groups) == 6


def test_a_commit_that_fails_fails_its_group_only():
    calls = []

    def commit(group):  # type: ignore[no-untyped-def]
        calls.append(len(group))
        if len(calls) == 1:
            raise RuntimeError("database on fire")
        for p in group:
            p.answer("ok")

    committer = GroupCommitter(commit)
    with pytest.raises(RuntimeError):
        committer.submit("a")
    assert committer.submit("b") == "ok"  # the lead was passed on: the committer still works


# --- the ledger -------------------------------------------------------------------------


def hold_first_commit(ledger: Ledger):
    """Make the ledger's next group wait at its start until released (returns started, release)."""
    service = ledger.service
    original = service._plan_and_record
    started, release = threading.Event(), threading.Event()
    state = {"first": True}

    def plan_and_record(conn, group, answers):  # type: ignore[no-untyped-def]
        if state["first"]:
            state["first"] = False
            started.set()
            release.wait(10)
        return original(conn, group, answers)

    service._plan_and_record = plan_and_record  # type: ignore[method-assign]
    return started, release


def run_as_one_group(ledger: Ledger, first, calls, *, groups: int = 2):  # type: ignore[no-untyped-def]
    """Run ``first``, then ``calls`` queued behind it: they commit as one group. Returns each call's outcome.

    ``groups``: how many groups the whole takes (calls that share an idempotency key take one each).
    """
    started, release = hold_first_commit(ledger)
    before = ledger.service.group_stats()
    with futures.ThreadPoolExecutor(len(calls) + 1) as pool:
        head = pool.submit(first)
        assert started.wait(10)
        jobs = [pool.submit(call) for call in calls]
        deadline = time.monotonic() + 10
        while len(ledger.service._committer._queue) < len(calls) and time.monotonic() < deadline:
            time.sleep(0.001)
        release.set()
        head.result(10)
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(job.result(10))
            except LedgerError as exc:
                outcomes.append(exc)
    after = ledger.service.group_stats()
    assert after.groups - before.groups == groups, "the queued calls should have committed as one group"
    return outcomes


def rows_naming(books: Ledger, agent: str) -> tuple[int, int, int]:
    """How many agents, accounts and balance rows name ``agent``."""
    def count(conn):  # type: ignore[no-untyped-def]
        return tuple(conn.execute(text(sql), {"a": agent, "like": f"%{agent}%"}).scalar_one() for sql in (
            "SELECT count(*) FROM agents WHERE address = :a", "SELECT count(*) FROM accounts WHERE name LIKE :like",
            "SELECT count(*) FROM balances WHERE account LIKE :like"))
    return books.service.read(count)


def test_a_refusal_inside_a_group_leaves_the_others_intact(any_ledger):
    books = any_ledger
    books.deposit(ALICE, "10", tx_hash="0xa")
    head_before = books.head()[0]
    spend, overdraft, new_agent_refused, deposit, duplicate = run_as_one_group(books, lambda: books.deposit(BOB, "1", "0xb"), [
        lambda: books.spend(ALICE, "4", "sk-1"),
        lambda: books.spend(ALICE, "7", "sk-1"),  # 10 - 4 leaves 6: refused
        lambda: books.spend(DAVE, "1", "sk-9"),  # an agent nobody knows, with no money: refused
        lambda: books.deposit(CAROL, "2.5", "0xc"),
        lambda: books.deposit(CAROL, "2.5", "0xc"),  # the same deposit again, in the same group
    ])
    assert spend.kind.value == "spend" and deposit.kind.value == "deposit"
    assert overdraft.code == "insufficient_balance"
    assert new_agent_refused.code == "insufficient_balance"
    assert duplicate.code == "duplicate_deposit"
    journal = list(books.transactions(after_seq=head_before))
    assert sorted(t.kind.value for t in journal) == ["deposit", "deposit", "spend"]  # BOB's, CAROL's, ALICE's
    assert books.get_balance(ALICE).available == Decimal("6")
    assert books.get_balance(CAROL).available == Decimal("2.5")
    assert rows_naming(books, DAVE) == (0, 0, 0)  # the refused call left no row behind
    assert verify_database(books).clean


def test_a_batch_in_a_group_is_still_all_or_nothing(any_ledger):
    books = any_ledger
    books.deposit(ALICE, "5", tx_hash="0xa")
    batch, spend = run_as_one_group(books, lambda: books.deposit(BOB, "1", "0xb"), [
        lambda: books.batch([{"op": "spend", "agent": ALICE, "amount": "3", "session_key_id": "s"},
                             {"op": "spend", "agent": ALICE, "amount": "3", "session_key_id": "s"}]),
        lambda: books.spend(ALICE, "2", "s"),
    ])
    assert batch.code == "insufficient_balance"  # the batch's second spend fails, so neither is recorded
    assert spend.amount_micros == 2_000_000
    assert books.get_balance(ALICE).available == Decimal("3")
    assert verify_database(books).clean


def test_idempotent_retries_inside_one_group_replay_the_first(any_ledger):
    books = any_ledger
    books.deposit(ALICE, "5", tx_hash="0xa")
    first, again = run_as_one_group(books, lambda: books.deposit(BOB, "1", "0xb"), [
        lambda: books.spend(ALICE, "2", "s", idempotency_key="pay-1"),
        lambda: books.spend(ALICE, "2", "s", idempotency_key="pay-1"),
    ], groups=3)  # the second waits for the next group, where it reads the first one's answer
    assert {first.replayed, again.replayed} == {False, True}
    assert first.id == again.id
    assert books.get_balance(ALICE).available == Decimal("3")


# --- an idempotency key's first answer is final -------------------------------------------------


def test_a_refusal_is_the_keys_answer_even_after_a_deposit(any_ledger):
    books = any_ledger
    with pytest.raises(LedgerError) as first:
        books.spend(ALICE, "5", "sk-1", idempotency_key="call-1")
    assert first.value.code == "insufficient_balance" and not first.value.replayed
    books.deposit(ALICE, "10", tx_hash="0xa")
    with pytest.raises(LedgerError) as again:  # the same request: the same answer, marked as a replay
        books.spend(ALICE, "5", "sk-1", idempotency_key="call-1")
    assert again.value.code == "insufficient_balance" and again.value.replayed
    assert again.value.details == first.value.details
    with pytest.raises(LedgerError) as other:  # another request under the key
        books.spend(ALICE, "6", "sk-1", idempotency_key="call-1")
    assert other.value.code == "idempotency_conflict"
    assert books.get_balance(ALICE).available == Decimal("10")  # nothing was spent
    assert books.spend(ALICE, "5", "sk-1", idempotency_key="call-2").amount_micros == 5_000_000


def test_transient_failures_are_not_stored_as_answers():
    assert not LedgerError.from_dict({"error": "concurrency_conflict", "message": "x"}).final
    assert not LedgerError.from_dict({"error": "commit_outcome_unknown", "message": "x"}).final
    assert LedgerError.from_dict({"error": "insufficient_balance", "message": "x"}).final


# --- many callers -------------------------------------------------------------------------------


def test_sqlite_threads_sharing_one_ledger_group_and_match_a_serial_replay(tmp_path):
    url, replay_url = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    _fund(url)
    accepted, refused, largest = hammer_from_threads(url, threads=12, operations=25, seed=100)
    assert largest > 1, "concurrent callers of one ledger should have shared a commit"
    assert set(refused) <= EXPECTED_REFUSALS
    _check_against_serial_replay(url, replay_url, [(accepted, refused)])


@pytest.mark.postgres
def test_postgres_threads_sharing_one_ledger_group_and_match_a_serial_replay(pg_database_factory):
    url, replay_url = pg_database_factory(), pg_database_factory()
    _fund(url)
    accepted, refused, largest = hammer_from_threads(url, threads=16, operations=25, seed=200)
    assert largest > 1, "concurrent callers of one ledger should have shared a commit"
    _check_against_serial_replay(url, replay_url, [(accepted, refused)])


@pytest.mark.postgres
def test_postgres_processes_each_group_committing(pg_database_factory):
    """Three processes, each with eight threads on one ledger: groups from different processes interleave."""
    url, replay_url = pg_database_factory(), pg_database_factory()
    _fund(url)
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(3, mp_context=context) as pool:
        jobs = [pool.submit(hammer_from_threads, url, 8, 15, 1000 * (p + 1)) for p in range(3)]
        results = [job.result(timeout=300) for job in jobs]
    assert max(r[2] for r in results) > 1
    _check_against_serial_replay(url, replay_url, [(r[0], r[1]) for r in results])
    with Ledger.open(url) as books:
        assert verify_database(books).clean
        assert books.get_balance(HOT_AGENT).as_of_seq == len(list(books.transactions()))
