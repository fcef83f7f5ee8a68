"""Defining, listing and deleting balance monitors (the admin API and tests call these)."""

from __future__ import annotations

import re
import secrets
import uuid
from urllib.parse import urlsplit

from ..domain.errors import InvalidArgument, NotFound
from ..domain.monitors import BalanceMonitor, define_condition
from ..service import LedgerService
from ..storage import events_store
from ..storage import journal_store as store

MAX_MONITORS = 1000
MAX_URL_LENGTH = 2048
MAX_DELIVERIES_LISTED = 1000
_MONITOR_ID = re.compile(r"[0-9a-f]{32}")


def _check_webhook(url: str | None, secret: str | None) -> tuple[str | None, str | None]:
    if url is None:
        if secret is not None:
            raise InvalidArgument("a webhook secret needs a webhook URL", field="webhookSecret")
        return None, None
    try:
        plain = isinstance(url, str) and len(url) <= MAX_URL_LENGTH and url.isprintable() and " " not in url
        parts = urlsplit(url) if plain else None
        host = parts.hostname if parts is not None else None
    except ValueError:  # an unbalanced [IPv6] bracket, a bad port
        parts = host = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise InvalidArgument(f"webhookUrl must be an http(s) URL of at most {MAX_URL_LENGTH} characters",
                              field="webhookUrl")
    if secret is None:
        secret = secrets.token_urlsafe(32)
    elif not 16 <= len(secret) <= 128 or not secret.isprintable():
        raise InvalidArgument("webhookSecret must be 16-128 printable characters", field="webhookSecret")
    return url, secret


def create_monitor(service: LedgerService, *, target_kind: str, target: str, metric: str, comparison: str,
                   threshold: str, webhook_url: str | None = None,
                   webhook_secret: str | None = None) -> BalanceMonitor:
    """Store a monitor; it watches the transactions committed after this moment's head.

    With a webhook URL and no secret, a secret is generated; it is in the returned monitor (show
    it once) and never listed afterwards.
    """
    condition = define_condition(target_kind, target, metric, comparison, threshold)
    url, secret = _check_webhook(webhook_url, webhook_secret)
    now_us = store.to_us(service.clock())

    def insert(conn) -> BalanceMonitor:  # type: ignore[no-untyped-def]
        if events_store.count_monitors(conn) >= MAX_MONITORS:
            raise InvalidArgument(f"at most {MAX_MONITORS} monitors; delete one first")
        monitor = BalanceMonitor(uuid.uuid4().hex, condition, store.head(conn)[0], now_us, url, secret)
        events_store.insert_monitor(conn, monitor)
        return monitor

    return service.write(insert)


def list_monitors(service: LedgerService) -> list[BalanceMonitor]:
    return service.read(events_store.list_monitors)


def _not_found(monitor_id: str) -> NotFound:
    return NotFound(f"no monitor {monitor_id[:40]!r}", monitor_id=monitor_id[:40])


def delete_monitor(service: LedgerService, monitor_id: str) -> None:
    if not _MONITOR_ID.fullmatch(monitor_id) or not service.write(
            lambda conn: events_store.delete_monitor(conn, monitor_id)):
        raise _not_found(monitor_id)


def monitor_deliveries(service: LedgerService, monitor_id: str) -> list[events_store.Delivery]:
    """The monitor's webhook calls (pending, delivered or failed), oldest first."""
    if not any(m.id == monitor_id for m in list_monitors(service)):
        raise _not_found(monitor_id)
    return service.read(lambda conn: events_store.monitor_deliveries_of(conn, monitor_id, MAX_DELIVERIES_LISTED))
