"""``agentbooks publish``: every committed journal transaction out to NATS JetStream, and monitor webhooks."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import typer

from ..events.sinks import DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX
from . import app
from .common import DatabaseUrl, console, open_ledger

NatsUrl = typer.Option(..., "--nats", envvar="AGENTBOOKS_NATS_URL", help="the NATS server, e.g. nats://127.0.0.1:4222")
Stream = typer.Option(DEFAULT_STREAM, "--stream", help="the JetStream stream (created if missing)")
SubjectPrefix = typer.Option(DEFAULT_SUBJECT_PREFIX, "--subject-prefix",
                             help="subjects: <prefix>.journal and <prefix>.monitors.<id>")


def json_logs() -> None:
    from ..api.observability import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("agentbooks").handlers[:] = [handler]
    logging.getLogger("agentbooks").setLevel(logging.INFO)


@app.command()
def publish(
    nats: str = NatsUrl,
    stream: str = Stream,
    subject_prefix: str = SubjectPrefix,
    page_size: int = typer.Option(500, "--page-size", min=1, max=10_000, help="journal transactions per round"),
    metrics_port: int | None = typer.Option(None, "--metrics-port", min=0, max=65535,
                                            help="serve Prometheus metrics on 127.0.0.1:PORT"),
    url: str | None = DatabaseUrl,
) -> None:
    """Publish the journal to NATS JetStream from the stored position on, until interrupted.

    At least once and in order; the position is stored once the broker confirmed a page.

    Also sends the balance monitors' webhook calls.
    """
    from ..events.metrics import EventMetrics
    from ..events.runner import run_events

    json_logs()
    metrics = EventMetrics()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
    with open_ledger(url) as ledger:
        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run_events(ledger.service, nats, stop, stream=stream, subject_prefix=subject_prefix,
                             page_size=page_size, metrics=metrics)

        console.print(f"publishing the journal to {nats} (stream {stream}, subjects {subject_prefix}.>)")
        asyncio.run(main())
