"""Running the publisher and the webhook dispatcher together: in the foreground (``agentbooks
publish``) or in a thread of its own beside the API (``agentbooks serve --nats``)."""

from __future__ import annotations

import asyncio
import logging
import threading

from ..service import LedgerService
from .metrics import EventMetrics
from .publisher import Publisher
from .sinks import DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, NatsJetStreamSink
from .webhooks import WebhookDispatcher

log = logging.getLogger("agentbooks.events")


def publisher_name(stream: str) -> str:
    """The position's key: one position per stream the journal goes to."""
    return f"nats:{stream}"[:64]


async def run_events(service: LedgerService, nats_url: str, stop: asyncio.Event, *, stream: str = DEFAULT_STREAM,
                     subject_prefix: str = DEFAULT_SUBJECT_PREFIX, page_size: int = 500,
                     metrics: EventMetrics | None = None) -> None:
    metrics = metrics or EventMetrics()
    sink = NatsJetStreamSink(nats_url, stream=stream, subject_prefix=subject_prefix)
    publisher = Publisher(service, sink, name=publisher_name(stream), subject_prefix=subject_prefix,
                          page_size=page_size, metrics=metrics)
    dispatcher = WebhookDispatcher(service, metrics=metrics)
    try:
        await asyncio.gather(publisher.run(stop), dispatcher.run(stop))
    finally:
        await sink.close()


class EventsThread:
    """``run_events`` on its own event loop in a daemon thread; ``stop()`` ends it."""

    def __init__(self, service: LedgerService, nats_url: str, **options) -> None:  # type: ignore[no-untyped-def]
        self._service, self._url, self._options = service, nats_url, options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="agentbooks-events", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await run_events(self._service, self._url, self._stop, **self._options)

        try:
            asyncio.run(main())
        except Exception:  # a bug: the API keeps serving; the lag metric shows publishing stopped
            log.exception("the events thread stopped")

    def start(self) -> "EventsThread":
        self._thread.start()
        self._ready.wait()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
