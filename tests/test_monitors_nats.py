"""Balance monitors against a real NATS server: one event per crossing, webhook calls signed and retried.

Each test publishes to a stream and subjects of its own on the shared server (AGENTBOOKS_TEST_NATS_URL).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentbooks.events.metrics import EventMetrics
from agentbooks.events.monitors import create_monitor, delete_monitor, monitor_deliveries
from agentbooks.events.publisher import Publisher
from agentbooks.events.runner import EventsThread, publisher_name
from agentbooks.events.sinks import NatsJetStreamSink
from agentbooks.events.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDispatcher,
    verify_signature,
)
from agentbooks.storage import events_store
from conftest import ALICE, BOB, CAROL
from nats_support import delete_stream, read_subject, unique_names

pytestmark = pytest.mark.nats

SECRET = "monitor-secret-0123456789"


@pytest.fixture
def names(nats_url):  # type: ignore[no-untyped-def]
    stream, prefix = unique_names()
    yield stream, prefix
    delete_stream(nats_url, stream)


def make_publisher(ledger, nats_url, names, metrics=None) -> Publisher:  # type: ignore[no-untyped-def]
    stream, prefix = names
    return Publisher(ledger.service, NatsJetStreamSink(nats_url, stream=stream, subject_prefix=prefix),
                     name=publisher_name(stream), subject_prefix=prefix, page_size=3, metrics=metrics)


def publish_all(publisher: Publisher) -> int:
    async def run() -> int:
        try:
            return await publisher.catch_up()
        finally:
            await publisher.sink.close()
    return asyncio.run(run())


def monitor_events(nats_url, names) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    stream, prefix = names
    fired: dict[str, list[int]] = defaultdict(list)
    for _, body in read_subject(nats_url, stream, f"{prefix}.monitors.*"):
        fired[body["monitorId"]].append(body["seq"])
    return fired


def agent_monitor(ledger, agent, metric, comparison, threshold, **webhook):  # type: ignore[no-untyped-def]
    return create_monitor(ledger.service, target_kind="agent", target=agent, metric=metric, comparison=comparison,
                          threshold=threshold, **webhook)


def test_a_monitor_fires_once_per_crossing_and_never_again_when_a_page_is_published_twice(ledger, nats_url, names):
    ledger.deposit(ALICE, "10", "0xa1")                                   # before the monitors: not watched
    low = agent_monitor(ledger, ALICE, "available", "below", "5")
    credit = agent_monitor(ledger, BOB, "credit_use_percent", "above", "80")
    treasury = create_monitor(ledger.service, target_kind="account", target="Platform:Treasury", metric="balance",
                              comparison="above", threshold="100")
    first_low = ledger.spend(ALICE, "6", "sk-1").seq                      # 4 < 5: crossed
    ledger.spend(ALICE, "1", "sk-1")                                      # 3: still below, no event
    ledger.deposit(ALICE, "10", "0xa2")                                   # 13: above again
    second_low = ledger.spend(ALICE, "9", "sk-1").seq                     # 4: crossed again
    ledger.set_credit_limit(BOB, "10")
    ledger.use_credit(BOB, "8")                                           # exactly 80 %: not above
    first_credit = ledger.use_credit(BOB, "1").seq                        # 90 %: crossed
    ledger.set_credit_limit(BOB, "20")                                    # 45 %
    second_credit = ledger.set_credit_limit(BOB, "10").seq                # 90 % again, by a lower limit
    rich = ledger.deposit(CAROL, "200", "0xc1").seq               # treasury 204 > 100: crossed
    ledger.deposit(CAROL, "1", "0xc2")                            # still above

    metrics = EventMetrics()
    publisher = make_publisher(ledger, nats_url, names, metrics)
    head = ledger.head()[0]
    assert publish_all(publisher) == head
    expected = {low.id: [first_low, second_low], credit.id: [first_credit, second_credit], treasury.id: [rich]}
    assert monitor_events(nats_url, names) == expected
    name = publisher_name(names[0])
    assert metrics.registry.get_sample_value("agentbooks_publisher_lag_sequences", {"publisher": name}) == 0
    assert metrics.registry.get_sample_value(
        "agentbooks_publisher_messages_total", {"publisher": name, "type": "transaction"}) == head
    assert metrics.registry.get_sample_value(
        "agentbooks_publisher_messages_total", {"publisher": name, "type": "balance_monitor"}) == 5

    # A crash between the broker's confirmation and the stored position: the pages go out again,
    # and JetStream drops every message it already has (same message ids).
    again = make_publisher(ledger, nats_url, names)
    again.position = 0
    assert publish_all(again) == head
    assert monitor_events(nats_url, names) == expected
    assert len(read_subject(nats_url, names[0], f"{names[1]}.journal")) == head

    # The event says what crossed, exactly.
    stream, prefix = names
    event = next(b for _, b in read_subject(nats_url, stream, f"{prefix}.monitors.{credit.id}")
                 if b["seq"] == first_credit)
    assert (event["threshold"], event["before"], event["value"]) == ("80.000000", "80.000000", "90.000000")
    assert event["agent"]["creditUsed"] == "9.000000"


def test_the_lag_is_what_is_committed_but_not_yet_published(ledger, nats_url, names):
    for i in range(7):
        ledger.deposit(ALICE, "1", f"0xlag{i}")
    metrics = EventMetrics()
    publisher = make_publisher(ledger, nats_url, names, metrics)
    name = publisher_name(names[0])

    async def one_page() -> int:
        try:
            return await publisher.publish_page()
        finally:
            await publisher.sink.close()

    assert asyncio.run(one_page()) == 3
    assert metrics.registry.get_sample_value("agentbooks_publisher_lag_sequences", {"publisher": name}) == 4
    assert ledger.service.read(lambda conn: events_store.read_position(conn, name)) == 3


class Receiver:
    """A webhook endpoint on 127.0.0.1 (a free port) that refuses the first ``failures`` calls of each delivery."""

    def __init__(self, failures: int) -> None:
        self.calls: dict[str, list[tuple[dict, bytes]]] = defaultdict(list)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                delivery = self.headers[DELIVERY_HEADER]
                receiver.calls[delivery].append((dict(self.headers), body))
                self.send_response(503 if len(receiver.calls[delivery]) <= failures else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/balance"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def deliver_until_settled(ledger, dispatcher: WebhookDispatcher, monitor_id: str, expected: int) -> list:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while True:
        asyncio.run(dispatcher.deliver_due())
        calls = monitor_deliveries(ledger.service, monitor_id)
        if len(calls) == expected and all(c.state != "pending" for c in calls):
            return calls
        assert time.monotonic() < deadline, f"webhook calls still pending: {calls}"
        time.sleep(0.02)


def test_a_webhook_receiver_gets_signed_deliveries_retried_with_back_off(ledger, nats_url, names):
    ledger.deposit(ALICE, "10", "0xw1")
    with Receiver(failures=2) as receiver:
        monitor = agent_monitor(ledger, ALICE, "available", "below", "5", webhook_url=receiver.url,
                                webhook_secret=SECRET)
        first = ledger.spend(ALICE, "6", "sk-w").seq
        ledger.deposit(ALICE, "10", "0xw2")
        second = ledger.spend(ALICE, "10", "sk-w").seq
        publisher = make_publisher(ledger, nats_url, names)
        publish_all(publisher)
        metrics = EventMetrics()
        dispatcher = WebhookDispatcher(ledger.service, metrics=metrics, base_delay_seconds=0.01,
                                       max_delay_seconds=0.05)
        calls = deliver_until_settled(ledger, dispatcher, monitor.id, expected=2)

        assert [(c.seq, c.state, c.attempts) for c in calls] == [(first, "delivered", 3), (second, "delivered", 3)]
        assert sorted(receiver.calls) == [f"{monitor.id}.{first}", f"{monitor.id}.{second}"]
        for delivery, attempts in receiver.calls.items():
            assert len(attempts) == 3
            assert len({body for _, body in attempts}) == 1  # a retry sends the same body
            for headers, body in attempts:
                assert verify_signature(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
                assert not verify_signature("another-secret-0123456789", headers[TIMESTAMP_HEADER], body,
                                            headers[SIGNATURE_HEADER])
            event = json.loads(attempts[0][1])
            assert (event["monitorId"], event["seq"], event["value"]) == (monitor.id, int(delivery.split(".")[1]),
                                                                          event["agent"]["available"])
        assert metrics.registry.get_sample_value("agentbooks_webhook_failures_total", {"final": "false"}) == 4
        assert metrics.registry.get_sample_value("agentbooks_webhook_deliveries_total") == 2

        # Publishing the same pages again (a crash before the position was stored) queues no second call.
        again = make_publisher(ledger, nats_url, names)
        again.position = 0
        publish_all(again)
        assert asyncio.run(dispatcher.deliver_due()) == 0
        assert len(monitor_deliveries(ledger.service, monitor.id)) == 2


def test_a_webhook_that_keeps_failing_is_given_up_after_the_last_attempt(ledger, nats_url, names):
    ledger.deposit(ALICE, "10", "0xg1")
    with Receiver(failures=1_000) as receiver:
        monitor = agent_monitor(ledger, ALICE, "available", "below", "5", webhook_url=receiver.url)
        ledger.spend(ALICE, "6", "sk-g")
        publish_all(make_publisher(ledger, nats_url, names))
        metrics = EventMetrics()
        dispatcher = WebhookDispatcher(ledger.service, metrics=metrics, max_attempts=3, base_delay_seconds=0.01,
                                       max_delay_seconds=0.02)
        [call] = deliver_until_settled(ledger, dispatcher, monitor.id, expected=1)
        assert (call.state, call.attempts, call.last_error) == ("failed", 3, "HTTP 503")
        assert sum(len(c) for c in receiver.calls.values()) == 3
        assert metrics.registry.get_sample_value("agentbooks_webhook_failures_total", {"final": "true"}) == 1
        assert asyncio.run(dispatcher.deliver_due()) == 0
        # The generated secret signed the calls.
        headers, body = next(iter(receiver.calls.values()))[0]
        assert verify_signature(monitor.webhook_secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
        delete_monitor(ledger.service, monitor.id)


def test_serve_runs_the_publisher_in_a_thread_beside_the_api(ledger, nats_url, names):
    stream, prefix = names
    events = EventsThread(ledger.service, nats_url, stream=stream, subject_prefix=prefix).start()
    try:
        for i in range(3):
            ledger.deposit(ALICE, "1", f"0xs{i}")
        deadline = time.monotonic() + 60
        while ledger.service.read(lambda c: events_store.read_position(c, publisher_name(stream))) < 3:
            assert time.monotonic() < deadline, "the publisher thread did not publish"
            time.sleep(0.05)
    finally:
        events.stop()
    assert [b["seq"] for _, b in read_subject(nats_url, stream, f"{prefix}.journal")] == [1, 2, 3]
