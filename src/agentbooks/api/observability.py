"""Request ids, structured logs and Prometheus metrics for the API."""

from __future__ import annotations

import json
import re
import logging
import time
import uuid
from typing import Callable, TypeVar

from fastapi import FastAPI, Request, Response
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


def install_observability(app: FastAPI, metrics: Metrics) -> None:
    @app.middleware("http")
    async def request_context(request: Request, call_next):  # type: ignore[no-untyped-def]
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.state.request_id = request_id
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # a bug: still answered in our shape, with the request id, and counted
            response = internal_error(request_id)
        elapsed = time.perf_counter() - started
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, template, str(response.status_code)).observe(elapsed)
        response.headers["X-Request-ID"] = request_id
        log.info("request", extra={"request_id": request_id, "method": request.method, "path": template,
                                   "status": response.status_code, "duration_ms": round(elapsed * 1000, 3)})
        return response

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
