"""Many concurrent writers on one agent, on real PostgreSQL: no overdraft, no lost update.

Threads and separate processes hammer a single agent's holds, confirms,
releases, spends, deposits and withdrawals at once. Afterwards:
- the running balances along the journal never went negative (no overdraft
  ever happened, not just at the end);
- replaying the accepted operations serially, in journal order, on a fresh
  ledger accepts every one and ends in exactly the same balances (nothing
  lost, nothing double-counted);
- the caches equal the sums of the postings.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
from collections import defaultdict

import pytest

from agentbooks import Ledger
from concurrency_workload import EXPECTED_REFUSALS, HOT_AGENT, hammer



THREADS, PROCESSES, OPERATIONS_EACH = 8, 3, 40


def _fund(url: str) -> None:
    with Ledger.open(url) as ledger:
        ledger.deposit(HOT_AGENT, "60", "0xseed")
        ledger.set_credit_limit(HOT_AGENT, "25")


def _check_against_serial_replay(url: str, replay_url: str, results) -> None:  # type: ignore[no-untyped-def]
    accepted = sorted(item for batch, _ in results for item in batch)
    refused = [code for _, codes in results for code in codes]
    assert accepted and refused, "the workload should both succeed and hit the limits"
    assert set(refused) <= EXPECTED_REFUSALS, set(refused) - EXPECTED_REFUSALS

    with Ledger.open(url) as ledger:
        seqs = [seq for seq, _ in accepted]
        assert len(seqs) == len(set(seqs)), "two writers were given the same journal sequence"
        journal = list(ledger.transactions())
        assert [t.seq for t in journal] == list(range(1, len(journal) + 1)), "the journal has gaps"
        assert len(journal) == len(accepted) + 2  # plus the seed deposit and the credit limit

        # No overdraft at any moment: walk the journal keeping running sums.
        running: dict[str, int] = defaultdict(int)
        for tx in journal:
            for p in tx.postings:
                running[p.account] += p.amount_micros
            assert running[f"Agent:{HOT_AGENT}:Available"] <= 0, f"overdraft after seq {tx.seq}"
            assert running[f"Agent:{HOT_AGENT}:Pending"] <= 0
            assert 0 <= running[f"Platform:Credit:{HOT_AGENT}"] <= 25_000_000
        final = ledger.get_balance(HOT_AGENT)
        assert final == ledger.get_balance(HOT_AGENT, as_of=final.as_of_seq)  # caches == sums

    _fund(replay_url)
    with Ledger.open(replay_url) as replay:
        for _, op in accepted:
            replay.batch([op])  # raises if the serial order would have refused it
        serial = replay.get_balance(HOT_AGENT)
    fields = ("available", "pending", "escrowed", "credit_used", "credit_limit", "total_in", "total_out")
    assert {f: getattr(final, f) for f in fields} == {f: getattr(serial, f) for f in fields}


@pytest.mark.postgres
def test_threads_hammering_one_agent(pg_database_factory):
    url, replay_url = pg_database_factory(), pg_database_factory()
    _fund(url)
    with futures.ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda w: hammer(url, w, OPERATIONS_EACH, seed=w), range(THREADS)))
    _check_against_serial_replay(url, replay_url, results)


@pytest.mark.postgres
def test_processes_hammering_one_agent(pg_database_factory):
    url, replay_url = pg_database_factory(), pg_database_factory()
    _fund(url)
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        jobs = [pool.submit(hammer, url, w, OPERATIONS_EACH, 1000 + w) for w in range(PROCESSES)]
        results = [job.result(timeout=300) for job in jobs]
    _check_against_serial_replay(url, replay_url, results)


def test_sqlite_threads_hammering_one_agent(tmp_path):
    """The embedded engine keeps the same promises (one writer at a time, BEGIN IMMEDIATE)."""
    url, replay_url = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    _fund(url)
    with futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda w: hammer(url, w, 25, seed=w), range(4)))
    _check_against_serial_replay(url, replay_url, results)
