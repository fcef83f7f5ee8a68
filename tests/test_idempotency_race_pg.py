"""The race an attack on the API found: a refused retry, then the original committing the spend after all.

On PostgreSQL, deterministically: another session holds the agent's row
lock; the original spend waits behind it; its connection is terminated, so
the server retries it (nothing had committed); the client's retry with the
same key is refused for lack of funds; a deposit arrives; then the server's
own retry of the original runs. The refusal the client was given must stay
the key's answer: the original must not spend now.
"""

from __future__ import annotations

import concurrent.futures as futures
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from agentbooks import Ledger, LedgerError
import agentbooks.service as service_module
from conftest import ALICE

pytestmark = pytest.mark.postgres


def wait_for(predicate, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_a_refusal_given_to_the_retry_is_final_for_the_original_too(pg_url, monkeypatch):
    database = pg_url.rsplit("/", 1)[1]
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    original_backed_off = threading.Event()
    resume_original = threading.Event()

    def back_off(attempt: int) -> None:  # the server's retry of the original waits for the test's cue
        original_backed_off.set()
        assert resume_original.wait(30)

    monkeypatch.setattr(service_module, "back_off", back_off)

    def waiting_on_a_lock() -> list[int]:
        with admin.connect() as conn:
            return [row[0] for row in conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock'"), {"db": database})]

    with Ledger.open(pg_url) as server, Ledger.open(pg_url) as other_host, futures.ThreadPoolExecutor(2) as pool:
        server.set_credit_limit(ALICE, "0")  # ALICE exists, with nothing to spend
        locker = create_engine(pg_url)  # a transaction of its own (the admin engine autocommits)
        blocker = locker.connect()
        locking = blocker.begin()
        blocker.execute(text("SELECT 1 FROM agents WHERE address = :a FOR UPDATE"), {"a": ALICE})

        original = pool.submit(server.spend, ALICE, "5", "sk-1", idempotency_key="call-1")
        wait_for(lambda: len(waiting_on_a_lock()) == 1, "the original to wait for the agent's row lock")
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": waiting_on_a_lock()[0]})
        assert original_backed_off.wait(20), "the server should retry the original: nothing had committed"

        retry = pool.submit(other_host.spend, ALICE, "5", "sk-1", idempotency_key="call-1")
        wait_for(lambda: len(waiting_on_a_lock()) == 1, "the client's retry to wait for the agent's row lock")
        locking.rollback()
        blocker.close()
        locker.dispose()
        with pytest.raises(LedgerError) as refused:
            retry.result(30)
        assert refused.value.code == "insufficient_balance"  # what the client is told, and trusts

        other_host.deposit(ALICE, "10", tx_hash="0xlate")
        resume_original.set()
        with pytest.raises(LedgerError) as answer:
            original.result(30)
        assert (answer.value.code, answer.value.replayed) == ("insufficient_balance", True)
        assert server.get_balance(ALICE).available == Decimal("10")  # the spend never happened
        assert [t.kind.value for t in server.transactions()] == ["set_credit_limit", "deposit"]
    admin.dispose()
