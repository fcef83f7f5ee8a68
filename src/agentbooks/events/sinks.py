"""Where published events go: a small interface, and NATS JetStream behind it.

A sink publishes a page of messages in order and returns only once the broker has stored every one
of them; otherwise it raises ``SinkUnavailable`` and the publisher sends the same page again later.
Each message carries an id (JetStream's ``Nats-Msg-Id``), so the broker drops a re-sent message it
already stored within its duplicate window, and the journal sequence, so a consumer drops any
duplicate the window missed. Another broker (RabbitMQ over AMQP, with publisher confirms) fits the
same two methods.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

log = logging.getLogger("agentbooks.events")

DEFAULT_STREAM = "AGENTBOOKS"
DEFAULT_SUBJECT_PREFIX = "agentbooks"
DUPLICATE_WINDOW_SECONDS = 120.0


async def _log_error(exc: Exception) -> None:
    log.warning("NATS: %s", exc or type(exc).__name__)


class SinkUnavailable(Exception):
    """The broker did not confirm a message: nothing after it was sent; retry the page."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    subject: str
    msg_id: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class EventSink(Protocol):
    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        """Publish ``messages`` in order; return once the broker has stored all, else raise SinkUnavailable."""

    async def close(self) -> None: ...


class NatsJetStreamSink:
    """Publishes to a JetStream stream (created on first use) over ``subject_prefix.>``.

    Messages go one at a time, each awaited until JetStream acknowledges it: a message is never
    stored before the one ahead of it. The client reconnects by itself; while the server is away a
    publish times out, and the page is sent again once it is back.
    """

    def __init__(self, url: str, *, stream: str = DEFAULT_STREAM, subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
                 ack_timeout: float = 5.0, duplicate_window: float = DUPLICATE_WINDOW_SECONDS) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.ack_timeout = ack_timeout
        self.duplicate_window = duplicate_window
        self._nc = None  # type: ignore[var-annotated]
        self._js = None  # type: ignore[var-annotated]

    async def _connect(self):  # type: ignore[no-untyped-def]
        import nats
        from nats.js.errors import NotFoundError

        if self._nc is not None and not self._nc.is_closed:
            return self._js
        # No reconnecting inside the client: a lost connection closes it, the page in flight fails,
        # and the next round connects afresh (with the publisher's back-off), the same path as a
        # broker that was down at start.
        # (max_reconnect_attempts=1 bounds the first connect to two tries: with 0 the client tries forever.)
        nc = await nats.connect(self.url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1,
                                reconnect_time_wait=0.2, error_cb=_log_error, name="agentbooks-publisher")
        js = nc.jetstream(timeout=self.ack_timeout)
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(name=self.stream, subjects=[f"{self.subject_prefix}.>"],
                                duplicate_window=self.duplicate_window)
        self._nc, self._js = nc, js
        return js

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        import nats.errors
        import nats.js.errors

        try:
            js = await self._connect()
            for message in messages:
                await js.publish(message.subject, message.body, timeout=self.ack_timeout,
                                 headers={"Nats-Msg-Id": message.msg_id, **message.headers})
        except (OSError, asyncio.TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
            log.warning("NATS publish failed: %s", exc or type(exc).__name__)
            if isinstance(exc, nats.js.errors.Error):  # the stream itself may be gone: look again on reconnect
                await self.close()
            raise SinkUnavailable(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception:  # closing a broken connection: nothing left to save
                log.debug("closing the NATS connection failed", exc_info=True)
