"""The write path's own guarantees, on both engines: one call writes all of it or nothing.

The driver-SQL write path (``storage/write_path``, ``storage/driver_sql``)
sends a call's writes as one statement or pipeline and commits with them; a
cache row that should exist and does not must stop the commit, and a batch
large enough to take the executemany route must record the same books.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from agentbooks import Ledger
from agentbooks.domain.errors import CommitOutcomeUnknown, InvalidArgument, InvariantViolation
from agentbooks.storage.driver_sql import MAX_ROWS_IN_ONE_STATEMENT
from agentbooks.verify.database import verify_database
from conftest import ALICE, BOB


def _count(ledger: Ledger, table: str) -> int:
    return ledger.service.read(lambda c: c.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_a_missing_balance_row_stops_the_commit(any_ledger: Ledger) -> None:
    any_ledger.deposit(ALICE, "10", tx_hash="0xfirst")
    # Damage the cache behind the ledger's back: the next deposit's update finds no row.
    any_ledger.service.write(lambda c: c.execute(
        text("DELETE FROM balances WHERE account = :a"), {"a": f"Agent:{ALICE}:Available"}))
    before = (any_ledger.head(), _count(any_ledger, "journal"), _count(any_ledger, "postings"),
              _count(any_ledger, "unique_keys"))
    with pytest.raises(InvariantViolation) as caught:
        any_ledger.deposit(ALICE, "5", tx_hash="0xsecond")
    assert caught.value.code == "invariant_violation"
    after = (any_ledger.head(), _count(any_ledger, "journal"), _count(any_ledger, "postings"),
             _count(any_ledger, "unique_keys"))
    assert after == before  # nothing of the refused call was written
    assert not any_ledger.has_deposit("0xsecond")


def test_small_and_large_batches_record_the_same_books(any_url: str, tmp_path) -> None:
    """A batch past MAX_ROWS_IN_ONE_STATEMENT takes the executemany route; the books must not differ."""
    size = MAX_ROWS_IN_ONE_STATEMENT + 7
    ops = [{"op": "deposit", "agent": ALICE if i % 2 else BOB, "amount": f"{i + 1}.25", "tx_hash": f"0xd{i}"}
           for i in range(size)]
    ops += [{"op": "hold", "agent": ALICE, "amount": "1", "reference": f"h{i}"} for i in range(3)]
    ops += [{"op": "confirm_hold", "agent": ALICE, "amount": "1", "reference": "h0"},
            {"op": "release_hold", "agent": ALICE, "amount": "1", "reference": "h1"}]
    with Ledger.open(any_url) as large, Ledger.open(f"sqlite:///{tmp_path / 'one_by_one.db'}") as small:
        large.batch(ops)
        for op in ops:
            small.batch([op])
        for agent in (ALICE, BOB):
            got, expected = large.get_balance(agent), small.get_balance(agent)
            assert (got.available, got.pending, got.total_in, got.total_out) == (
                expected.available, expected.pending, expected.total_in, expected.total_out)
        assert large.rollup("") == small.rollup("")
        assert large.head()[0] == small.head()[0] == len(ops)
        report = verify_database(large)
        assert report.violations == [] and report.transactions == len(ops)


def test_a_credit_limit_and_money_in_one_call_keep_every_agent_total(any_ledger: Ledger) -> None:
    """One statement writes each agent row once: the limit and the totals of the same call both land."""
    any_ledger.batch([
        {"op": "set_credit_limit", "agent": ALICE, "limit": "50"},
        {"op": "deposit", "agent": ALICE, "amount": "10", "tx_hash": "0xc1"},
        {"op": "use_credit", "agent": ALICE, "amount": "5"},
        {"op": "transfer", "from_agent": ALICE, "to_agent": BOB, "amount": "12", "reference": "t1"},
    ])
    alice = any_ledger.get_balance(ALICE)
    assert (alice.credit_limit, alice.credit_used, alice.total_in, alice.total_out) == (50, 5, 10, 12)
    assert any_ledger.get_balance(BOB).total_in == 12
    any_ledger.set_credit_limit(ALICE, "60")
    last_seq = any_ledger.service.read(lambda c: c.execute(
        text("SELECT last_seq FROM agents WHERE address = :a"), {"a": ALICE}).scalar_one())
    assert last_seq == any_ledger.head()[0] == 5  # the limit change is the agent's latest transaction
    assert verify_database(any_ledger).violations == []


@pytest.mark.parametrize("key", ["", "a\x00b", "tab\there", "x" * 257])
def test_idempotency_keys_are_printable_and_bounded(ledger: Ledger, key: str) -> None:
    with pytest.raises(InvalidArgument):
        ledger.deposit(ALICE, "1", tx_hash="0xk", idempotency_key=key)
    assert ledger.head()[0] == 0


@pytest.mark.postgres
def test_a_connection_lost_while_committing_is_reported_not_retried(pg_url: str, monkeypatch) -> None:
    """Retrying a call whose COMMIT may have landed could record it twice: the caller is told instead."""
    import psycopg

    with Ledger.open(pg_url) as books:
        books.deposit(ALICE, "10", tx_hash="0xbefore")
        commits = []

        def lost(self):  # type: ignore[no-untyped-def]
            commits.append(1)
            self.close()  # the server rolls back what it had not committed
            raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")

        monkeypatch.setattr(psycopg.Connection, "commit", lost)
        with pytest.raises(CommitOutcomeUnknown) as caught:
            books.spend(ALICE, "1", session_key_id="sk")
        monkeypatch.undo()
        assert caught.value.code == "commit_outcome_unknown" and caught.value.http_status == 503
        assert len(commits) == 1  # not retried
        assert books.get_balance(ALICE).available == 10  # this time it had not landed
        books.spend(ALICE, "1", session_key_id="sk")  # the pool hands out a working connection again
        assert books.get_balance(ALICE).available == 9


@pytest.mark.postgres
def test_a_connection_lost_just_after_the_commit_is_not_a_failure(pg_url: str, monkeypatch) -> None:
    """The server acknowledged the COMMIT, then the connection dropped: the call succeeded, exactly once."""
    import psycopg

    with Ledger.open(pg_url) as books:
        books.deposit(ALICE, "10", tx_hash="0xbefore")
        commit, commits = psycopg.Connection.commit, []

        def committed_then_lost(self):  # type: ignore[no-untyped-def]
            if self.closed:
                raise psycopg.OperationalError("the connection is closed")
            commit(self)
            commits.append(1)
            self.close()

        monkeypatch.setattr(psycopg.Connection, "commit", committed_then_lost)
        tx = books.spend(ALICE, "1", session_key_id="sk")
        monkeypatch.undo()
        assert len(commits) == 1
        assert books.get_transaction(tx.id).seq == tx.seq
        assert books.get_balance(ALICE).available == 9  # recorded once, not retried into a second spend


def test_threads_share_sqlites_one_writer_connection_without_losing_a_write(sqlite_url: str) -> None:
    """SQLite writers of a process take turns on one kept-open connection: every write lands, once."""
    import threading

    with Ledger.open(sqlite_url) as books:
        errors: list[BaseException] = []

        def deposits(worker: int) -> None:
            try:
                for i in range(25):
                    books.deposit(ALICE if i % 2 else BOB, "1", tx_hash=f"0xw{worker}-{i}")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=deposits, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert books.head()[0] == 200
        assert books.get_balance(ALICE).available + books.get_balance(BOB).available == 200
        report = verify_database(books)
        assert report.violations == [] and report.transactions == 200


# --- one description of the schema ---------------------------------------------------------------


def test_the_write_paths_statements_name_the_tables_columns() -> None:
    """Inserts are the table's columns in order; updates and deletes name only columns the table has."""
    import re

    from agentbooks.storage import tables
    from agentbooks.storage.driver_sql import TABLE_WRITES

    for write in TABLE_WRITES:
        if not write.row_sql:
            table = tables.metadata.tables[write.name]
            assert [c.split(":")[0] for c in write.columns] == list(table.columns.keys()), write.name
            continue
        target = re.match(r"(?:UPDATE|DELETE FROM) (\w+)", write.row_sql)
        assert target is not None, write.row_sql
        columns = set(tables.metadata.tables[target.group(1)].columns.keys())
        named = set(re.findall(r"(\w+)\s*=", write.row_sql))
        assert named and named <= columns, (write.name, named - columns)


def test_every_journal_column_reads_back_what_the_ledger_returned(any_ledger: Ledger) -> None:
    """Positions tie to names: a value written into its neighbour's column would show here."""
    from sqlalchemy import select

    from agentbooks.storage import tables
    from agentbooks.storage.journal_store import to_us

    any_ledger.deposit(ALICE, "10", tx_hash="0xd", chain_id=8453, log_index=3)
    any_ledger.hold(ALICE, "4", reference="h-1")
    released = any_ledger.release_hold(ALICE, "1.5", reference="h-1", reason="partial cancel")
    rows = any_ledger.service.read(lambda c: c.execute(
        select(tables.journal).where(tables.journal.c.seq == released.seq)).mappings().one())
    assert dict(rows) | {"metadata_json": None} == {
        "seq": released.seq, "id": released.id, "kind": "release_hold", "occurred_at_us": to_us(released.occurred_at),
        "agent": ALICE, "counterparty": None, "amount_micros": 1_500_000, "reference": "h-1", "tx_hash": None,
        "memo": "partial cancel", "credit_limit_micros": None, "reverses_seq": None, "metadata_json": None,
        "prev_hash": released.prev_hash, "hash": released.hash,
    }
    hold = any_ledger.service.read(lambda c: c.execute(
        select(tables.holds).where(tables.holds.c.reference == "h-1")).mappings().one())
    assert (hold["amount_micros"], hold["remaining_micros"], hold["released_micros"], hold["confirmed_micros"],
            hold["updated_seq"]) == (4_000_000, 2_500_000, 1_500_000, 0, released.seq)
    postings = any_ledger.service.read(lambda c: c.execute(
        select(tables.postings).where(tables.postings.c.seq == released.seq).order_by(tables.postings.c.idx)).all())
    assert [(p.account, p.amount_micros, p.currency, p.reference) for p in postings] == [
        (p.account, p.amount_micros, p.currency, p.reference) for p in released.postings]


def test_a_row_of_the_wrong_width_is_refused_before_anything_is_written() -> None:
    from agentbooks.storage.driver_sql import write_tables, _RENDERED

    class NoConnection:
        def cursor(self):  # type: ignore[no-untyped-def]
            raise AssertionError("nothing may be sent")

    with pytest.raises(InvariantViolation, match="postings row has 5 values for 6 columns"):
        write_tables(NoConnection(), _RENDERED[False], {"postings": [(1, 0, "Platform:Treasury", 5, "USDC")]},
                     commit=True)
