"""Crash safety: a writer killed with SIGKILL at random moments loses nothing it acknowledged.

After every kill the books verify clean (journal, chain, caches) and every
operation the writer acknowledged (printed only after its commit returned)
is in the journal, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentbooks import Ledger
from agentbooks.verify.database import verify_database

WRITER = Path(__file__).parent / "crash_writer.py"
KILLS = 3


def crash_repeatedly(url: str, threads: int = 1) -> list[str]:
    """Start the writer, let it commit, SIGKILL it at a random moment; three times. The acknowledged ids."""
    rng = random.Random(7)
    acknowledged: list[str] = []
    for round_number in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(WRITER), url, str(round_number * 100_000), "100000",
                                 str(threads)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # wait for the first commit, however slow the start-up
        time.sleep(rng.uniform(0.2, 1.0))  # then kill it somewhere in the writes
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acknowledged += [line.split()[1] for line in (first + out).splitlines() if line.startswith("ACK ")]
    return acknowledged


def check_after_restart(url: str, acknowledged: list[str]) -> None:
    assert len(acknowledged) > 10, "the writer should have committed work before each kill"
    with Ledger.open(url) as ledger:
        report = verify_database(ledger)
        assert report.clean, report.violations[:5]
        for tx_id in acknowledged:
            ledger.get_transaction(tx_id)  # raises NotFound if an acknowledged write was lost
        assert report.transactions >= len(acknowledged)


def test_sigkill_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'books.db'}"
    check_after_restart(url, crash_repeatedly(url))


@pytest.mark.postgres
def test_sigkill_on_postgresql(pg_url):
    check_after_restart(pg_url, crash_repeatedly(pg_url))


def test_sigkill_during_group_commits_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'books.db'}"
    check_after_restart(url, crash_repeatedly(url, threads=6))


@pytest.mark.postgres
def test_sigkill_during_group_commits_on_postgresql(pg_url):
    check_after_restart(pg_url, crash_repeatedly(pg_url, threads=6))
