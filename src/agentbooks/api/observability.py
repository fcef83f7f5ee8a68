"""Request ids, structured logs and Prometheus metrics for the API."""

from __future__ import annotations

import json
import re
import logging
import time
import uuid
from typing import Callable, TypeVar

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ..domain.errors import LedgerError
from .errors import internal_error

T = TypeVar("T")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")  # echoed back in a header: keep it plain ASCII
log = logging.getLogger("agentbooks.api")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers parse without configuration."""

    def format(self, record: logging.LogRecord) -> str:
        body = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        for key in ("request_id", "method", "path", "status", "duration_ms", "principal"):
            if hasattr(record, key):
                body[key] = getattr(record, key)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body)


class Metrics:
    """Per-app registry, so several apps (tests, mounted servers) never clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.operations = Counter("agentbooks_operations_total", "ledger operations by kind and outcome",
                                  ["kind", "outcome"], registry=self.registry)
        self.operation_seconds = Histogram("agentbooks_operation_seconds", "ledger operation latency",
                                           ["kind"], registry=self.registry)
        self.requests = Histogram("agentbooks_http_request_seconds", "HTTP request latency",
                                  ["method", "route", "status"], registry=self.registry)

    def observe(self, kind: str, work: Callable[[], T]) -> T:
        """Run one ledger operation, counting its outcome (ok or the error code)."""
        started = time.perf_counter()
        try:
            result = work()
        except LedgerError as exc:
            self.operations.labels(kind, exc.code).inc()
            raise
        self.operations.labels(kind, "ok").inc()
        self.operation_seconds.labels(kind).observe(time.perf_counter() - started)
        return result


class RequestContext:
    """Pure ASGI middleware: request id in and out, one metric and one log line per request.

    (Starlette's ``BaseHTTPMiddleware`` would cost a task and a stream per
    request: about a third of a balance read's time.)
    """

    def __init__(self, app, metrics: Metrics) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status, answered = 500, False

        async def send_with_id(message) -> None:  # type: ignore[no-untyped-def]
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # a bug: still answered in our shape, with the request id, and counted
            if answered:
                raise
            await internal_error(request_id)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(elapsed)
            log.info("request", extra={"request_id": request_id, "method": scope["method"], "path": template,
                                       "status": status, "duration_ms": round(elapsed * 1000, 3)})


def install_observability(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(RequestContext, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
