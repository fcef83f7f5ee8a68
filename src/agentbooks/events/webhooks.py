"""Webhook calls of balance monitors: signed with HMAC-SHA256, retried with back-off, off the write path.

The publisher queues a call in the database in the same transaction that moves its position, so
a call is neither lost nor queued twice; this dispatcher sends the calls that are due and records
each attempt. A receiver checks ``X-Agentbooks-Signature`` (``sha256=<hex>``, the HMAC of
``<timestamp>.<body>`` with the monitor's secret) and the timestamp's age (``verify_signature``);
``X-Agentbooks-Delivery`` (``<monitor id>.<seq>``) is the same on every retry of one call, so a
receiver that saw it already answers 2xx and does nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
import urllib.error
import urllib.request
from typing import Callable, Mapping

from ..service import LedgerService
from ..storage import events_store
from ..storage.events_store import DELIVERED, FAILED, PENDING, Delivery
from .metrics import EventMetrics
from .publisher import wait_or_stop

log = logging.getLogger("agentbooks.events")

SIGNATURE_HEADER = "X-Agentbooks-Signature"
TIMESTAMP_HEADER = "X-Agentbooks-Timestamp"
DELIVERY_HEADER = "X-Agentbooks-Delivery"
EVENT_HEADER = "X-Agentbooks-Event"
SIGNATURE_TOLERANCE_SECONDS = 300


class WebhookFailed(Exception):
    pass


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, received: str, *, now: float | None = None,
                     tolerance: float = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """What a receiver checks: the signature (in constant time) and that the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(signature(secret, timestamp, body), received)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST ``body``; any answer but 2xx (or no answer) raises WebhookFailed."""
    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise WebhookFailed(f"HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise WebhookFailed(str(exc) or type(exc).__name__) from exc


class WebhookDispatcher:
    def __init__(self, service: LedgerService, *, metrics: EventMetrics | None = None,
                 send: Callable[[str, bytes, Mapping[str, str], float], None] = post, max_attempts: int = 10,
                 base_delay_seconds: float = 1.0, max_delay_seconds: float = 600.0, timeout_seconds: float = 5.0,
                 poll_seconds: float = 0.5, batch: int = 100, concurrency: int = 8,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.metrics = metrics or EventMetrics()
        self.send = send
        self.max_attempts = max_attempts
        self.base_delay_seconds = base_delay_seconds
        self.max_delay_seconds = max_delay_seconds
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)

    def retry_delay(self, attempts_made: int) -> float:
        """Exponential back-off with jitter: about base, 2 base, 4 base, … capped."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempts_made - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _attempt(self, delivery: Delivery) -> None:
        body = delivery.body.encode()
        timestamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json", EVENT_HEADER: "balance_monitor",
                   DELIVERY_HEADER: f"{delivery.monitor_id}.{delivery.seq}", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: signature(delivery.secret or "", timestamp, body)}
        made = delivery.attempts + 1
        try:
            self.send(delivery.url or "", body, headers, self.timeout_seconds)
        except WebhookFailed as exc:
            final = made >= self.max_attempts
            self.metrics.webhook_failures.labels(str(final).lower()).inc()
            log.warning("webhook %s.%s attempt %d failed: %s", delivery.monitor_id, delivery.seq, made, exc)
            next_at = self.clock() + self.retry_delay(made)
            self.service.write(lambda conn: events_store.record_attempt(
                conn, delivery, state=FAILED if final else PENDING,
                next_attempt_at_us=int(next_at * 1_000_000), error=str(exc)))
            return
        self.metrics.webhook_deliveries.inc()
        self.service.write(lambda conn: events_store.record_attempt(
            conn, delivery, state=DELIVERED, next_attempt_at_us=delivery.next_attempt_at_us, error=None))

    async def _attempt_in_slot(self, delivery: Delivery) -> None:
        async with self._slots:
            await asyncio.to_thread(self._attempt, delivery)

    async def deliver_due(self) -> int:
        """Attempt every call that is due now (a bounded batch); how many were attempted."""
        now_us = int(self.clock() * 1_000_000)
        due = await asyncio.to_thread(self.service.read,
                                      lambda conn: events_store.due_deliveries(conn, now_us, self.batch))
        await asyncio.gather(*(self._attempt_in_slot(d) for d in due))
        return len(due)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                attempted = await self.deliver_due()
            except Exception:  # the database is away: try again after a pause, never crash the loop
                log.warning("webhook dispatcher: reading due calls failed", exc_info=True)
                attempted = 0
            if attempted < self.batch:
                await wait_or_stop(stop, self.poll_seconds)
