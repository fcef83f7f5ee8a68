"""Every committed transaction reaches a NATS JetStream consumer exactly once (after deduplication),
in order, with the balances it changed, though the publisher is killed mid-page and the broker
restarts while the books keep moving. Runs against a real nats-server of the test's own."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from agentbooks import Ledger
from agentbooks.domain.money import format_micros
from agentbooks.events.messages import HASH_HEADER, SEQ_HEADER
from agentbooks.events.runner import publisher_name
from agentbooks.storage import events_store
from conftest import StepClock
from nats_support import read_subject, unique_names
from random_books import fill_random

pytestmark = [pytest.mark.nats, pytest.mark.slow]

CRASHING_PUBLISHER = Path(__file__).with_name("crashing_publisher.py")
CRASH_EXIT_CODE = 17
PAGE = 10


def stored_position(ledger: Ledger, stream: str) -> int:
    return ledger.service.read(lambda conn: events_store.read_position(conn, publisher_name(stream)))


def wait_until_published(ledger: Ledger, stream: str, head: int, publisher: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while stored_position(ledger, stream) < head:
        assert publisher.poll() is None, "the publisher died"
        assert time.monotonic() < deadline, "the publisher did not catch up"
        time.sleep(0.2)


def consume_deduplicated(url: str, stream: str, subject: str) -> tuple[list[dict], int]:
    """What a consumer keeps: messages whose sequence follows the last one it kept; and the duplicates it dropped."""
    kept: list[dict] = []
    dropped = 0
    for headers, body in read_subject(url, stream, subject):
        assert headers[SEQ_HEADER] == str(body["seq"]) and headers[HASH_HEADER] == body["hash"]
        last = kept[-1]["seq"] if kept else 0
        if body["seq"] <= last:
            dropped += 1
            continue
        assert body["seq"] == last + 1, f"gap: {last} then {body['seq']}"
        assert body["prevHash"] == (kept[-1]["hash"] if kept else "0" * 64)
        kept.append(body)
    return kept, dropped


def test_every_transaction_reaches_the_consumer_once_in_order_through_a_crash_and_a_broker_restart(
        any_url, private_nats):
    stream, prefix = unique_names()
    with Ledger.open(any_url, clock=StepClock()) as ledger:
        fill_random(ledger, seed=18, operations=120)
        first_head = ledger.head()[0]
        assert first_head > 3 * PAGE

        # A publisher dies after the broker confirmed 2.5 pages: the third page's position is never stored.
        crashed = subprocess.run([sys.executable, str(CRASHING_PUBLISHER), any_url, private_nats.url, stream, prefix,
                                  str(2 * PAGE + PAGE // 2), str(PAGE)], timeout=120)
        assert crashed.returncode == CRASH_EXIT_CODE
        assert stored_position(ledger, stream) == 2 * PAGE
        assert len(read_subject(private_nats.url, stream, f"{prefix}.journal")) == 2 * PAGE + PAGE // 2

        # The real command takes over from the stored position while the books keep moving.
        publisher = subprocess.Popen(
            [sys.executable, "-m", "agentbooks.cli", "publish", "--nats", private_nats.url, "--stream", stream,
             "--subject-prefix", prefix, "--page-size", str(PAGE), "--database-url", any_url],
            stdout=subprocess.DEVNULL)
        try:
            fill_random(ledger, seed=19, operations=60)
            wait_until_published(ledger, stream, ledger.head()[0], publisher)

            # The broker goes away: writes go on as before, nothing is lost.
            private_nats.stop()
            fill_random(ledger, seed=20, operations=60)
            outage_head = ledger.head()[0]
            assert stored_position(ledger, stream) < outage_head
            private_nats.start()
            fill_random(ledger, seed=21, operations=30)
            head = ledger.head()[0]
            wait_until_published(ledger, stream, head, publisher)
        finally:
            publisher.send_signal(signal.SIGTERM)
            assert publisher.wait(timeout=60) == 0

        kept, _ = consume_deduplicated(private_nats.url, stream, f"{prefix}.journal")
        journal = list(ledger.transactions())
        assert [m["seq"] for m in kept] == [t.seq for t in journal] == list(range(1, head + 1))
        assert [m["hash"] for m in kept] == [t.hash for t in journal]
        assert [[(p["account"], p["amount"]) for p in m["postings"]] for m in kept] == \
            [[(p.account, format_micros(p.amount_micros)) for p in t.postings] for t in journal]

        # Each message carries the balances the transaction left, as the ledger computes them at its sequence.
        last_seen: dict[str, str] = {}
        for message in kept[:: max(1, len(kept) // 15)]:
            for line in message["balances"]:
                assert line["balance"] == format_micros(
                    int(ledger.get_account_balance(line["account"], as_of=message["seq"]) * 1_000_000))
        for message in kept:
            last_seen.update({line["account"]: line["balance"] for line in message["balances"]})
        assert last_seen == {a: format_micros(int(v * 1_000_000)) for a, v in ledger.rollup("").items()
                             if a in last_seen}
        agents_last: dict[str, dict] = defaultdict(dict)
        for message in kept:
            agents_last.update({a["address"]: a for a in message["agents"]})
        for address, state in agents_last.items():
            balance = ledger.get_balance(address)
            assert (state["available"], state["creditUsed"], state["creditLimit"]) == (
                f"{balance.available:.6f}", f"{balance.credit_used:.6f}", f"{balance.credit_limit:.6f}")
