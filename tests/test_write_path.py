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
from agentbooks.domain.errors import InvariantViolation
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
