"""The publisher: the journal, in sequence order, out to a broker; at least once, never reordered.

Each round reads one page after the stored position (one read snapshot, no lock a writer waits
for), publishes its transactions and monitor crossings through the sink, and only once the broker
has confirmed them all stores the new position, together with the webhook calls the crossings
asked for, in one small transaction of its own tables. A crash or a broker outage anywhere in
between leaves the position where it was, so the page goes out again: the broker drops what it
already stored (message ids), consumers drop anything older than what they have seen (sequences).
Writers never wait for any of this: it runs after their commits, in its own thread or process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError

from ..domain.errors import LedgerError
from ..service import LedgerService
from ..storage import events_store
from .changes import Page, changes, read_page
from .messages import crossing_body, crossing_message, encode, transaction_message
from .metrics import EventMetrics
from .sinks import DEFAULT_SUBJECT_PREFIX, EventSink, OutboundMessage, SinkUnavailable

log = logging.getLogger("agentbooks.events")

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 10_000


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass


@dataclass
class Outgoing:
    messages: list[OutboundMessage] = field(default_factory=list)
    deliveries: list[tuple[str, int, str]] = field(default_factory=list)  # (monitor id, seq, body)
    crossings: int = 0


class Publisher:
    def __init__(self, service: LedgerService, sink: EventSink, *, name: str = "nats",
                 subject_prefix: str = DEFAULT_SUBJECT_PREFIX, page_size: int = DEFAULT_PAGE_SIZE,
                 poll_seconds: float = 0.2, max_backoff_seconds: float = 5.0,
                 metrics: EventMetrics | None = None, clock: Callable[[], float] = time.time) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.service = service
        self.sink = sink
        self.name = name
        self.subject_prefix = subject_prefix
        self.page_size = page_size
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.metrics = metrics or EventMetrics()
        self.clock = clock
        self.position: int | None = None  # loaded from the database on the first round

    def _read(self, after_seq: int) -> Page:
        return self.service.read(lambda conn: read_page(conn, after_seq, self.page_size))

    def _store(self, last_seq: int, deliveries: list[tuple[str, int, str]]) -> None:
        at_us = int(self.clock() * 1_000_000)

        def store(conn) -> None:  # type: ignore[no-untyped-def]
            events_store.enqueue_deliveries(conn, deliveries, at_us)
            events_store.save_position(conn, self.name, last_seq, at_us)

        self.service.write(store)

    def build(self, page: Page) -> Outgoing:
        """The page's messages in journal order (each transaction, then its crossings), and its webhook calls."""
        out = Outgoing()
        messages, deliveries = out.messages, out.deliveries
        for change in changes(page):
            messages.append(transaction_message(self.subject_prefix, change))
            for crossing in change.crossings:
                out.crossings += 1
                messages.append(crossing_message(self.subject_prefix, change, crossing))
                if crossing.monitor.webhook_url:
                    deliveries.append((crossing.monitor.id, change.transaction.seq,
                                       encode(crossing_body(change, crossing)).decode()))
        return out

    async def publish_page(self) -> int:
        """Publish the next page; the number of journal transactions it held (0: caught up)."""
        if self.position is None:
            self.position = await asyncio.to_thread(
                self.service.read, lambda conn: events_store.read_position(conn, self.name))
        page = await asyncio.to_thread(self._read, self.position)
        self.metrics.lag.labels(self.name).set(page.head_seq - self.position)
        if not page.transactions:
            return 0
        out = self.build(page)
        await self.sink.publish(out.messages)
        last = page.transactions[-1].seq
        await asyncio.to_thread(self._store, last, out.deliveries)
        self.position = last
        self.metrics.published.labels(self.name, "transaction").inc(len(page.transactions))
        self.metrics.published.labels(self.name, "balance_monitor").inc(out.crossings)
        self.metrics.position.labels(self.name).set(last)
        self.metrics.lag.labels(self.name).set(max(0, page.head_seq - last))
        return len(page.transactions)

    async def catch_up(self) -> int:
        """Publish pages until the head as it is now; the number of transactions published."""
        total = 0
        while (count := await self.publish_page()) > 0:
            total += count
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set, riding out broker and database outages with back-off."""
        backoff = self.poll_seconds
        while not stop.is_set():
            try:
                published = await self.publish_page()
            except SinkUnavailable:
                self.metrics.broker_failures.labels(self.name).inc()
            except (SQLAlchemyError, LedgerError):
                log.warning("publisher %s: reading or storing the position failed; retrying", self.name,
                            exc_info=True)
                self.position = None  # read it again: the store may not have happened
            else:
                backoff = self.poll_seconds
                if published == 0:
                    await wait_or_stop(stop, self.poll_seconds)
                continue
            await wait_or_stop(stop, backoff)
            backoff = min(self.max_backoff_seconds, backoff * 2)
