"""``agentbooks serve`` and ``agentbooks api-key``: run the HTTP API, issue keys."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

from ..api_keys import Role, create_key, revoke_key
from ..config import ADMIN_SECRET_ENV, DATABASE_URL_ENV, PAYOUTS_ENV, database_url
from ..events.sinks import DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX
from ..ledger import Ledger
from . import app
from .common import DatabaseUrl, console, open_ledger

api_key_app = typer.Typer(help="Issue and revoke API keys for agents and accountants.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to bind"),
    port: int = typer.Option(8000, help="port to bind"),
    url: str | None = DatabaseUrl,
    admin_secret: str | None = typer.Option(None, "--admin-secret", envvar=ADMIN_SECRET_ENV,
                                            help="enables the admin routes (X-Admin-Secret)"),
    demo: bool = typer.Option(False, "--demo", help="serve a fresh SQLite ledger loaded with the demo day"),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="worker processes (each opens its own pool)"),
    nats: str | None = typer.Option(None, "--nats", help="also publish the journal to this NATS server "
                                    "(as agentbooks publish, in a thread beside the API)"),
    nats_stream: str = typer.Option(DEFAULT_STREAM, "--nats-stream", help="the JetStream stream"),
    nats_subject_prefix: str = typer.Option(DEFAULT_SUBJECT_PREFIX, "--nats-subject-prefix"),
    payouts: bool = typer.Option(False, "--payouts", envvar=PAYOUTS_ENV,
                                 help="a payout executor runs (agentbooks payouts): withdrawals become payouts"),
) -> None:
    """Serve the HTTP API with uvicorn (JSON logs on stderr, metrics at /metrics)."""
    import uvicorn

    from ..api import create_app
    from ..api.observability import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("agentbooks").handlers[:] = [handler]
    logging.getLogger("agentbooks").setLevel(logging.INFO)

    resolved = database_url(url)
    if demo:
        from ..demo import ScriptedClock, run_demo_day

        path = Path("agentbooks-demo.db")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        resolved = f"sqlite:///{path}"
        with Ledger.open(resolved, clock=ScriptedClock()) as ledger:
            run_demo_day(ledger)
        console.print(f"demo ledger loaded into {path}")
    if workers == 1:
        api = create_app(resolved, admin_secret, payouts=payouts)
        events = None
        if nats:
            from ..events.metrics import EventMetrics
            from ..events.runner import EventsThread

            events = EventsThread(api.state.ledger.service, nats, stream=nats_stream,
                                  subject_prefix=nats_subject_prefix,
                                  metrics=EventMetrics(api.state.metrics.registry)).start()
        try:
            uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)
        finally:
            if events is not None:
                events.stop()
        return
    if nats:
        console.print("[red]error[/red] --nats runs beside one worker; with --workers run agentbooks publish")
        raise typer.Exit(2)
    # Several processes need an importable factory; it reads the same settings from the environment.
    os.environ[DATABASE_URL_ENV] = resolved
    if admin_secret:
        os.environ[ADMIN_SECRET_ENV] = admin_secret
    os.environ[PAYOUTS_ENV] = "1" if payouts else "0"
    Ledger.open(resolved).close()  # migrate once, before the workers race to
    uvicorn.run("agentbooks.api.app:create_app_from_env", factory=True, workers=workers, host=host, port=port,
                log_level="warning", access_log=False)


@api_key_app.command("create")
def api_key_create(
    agent: str | None = typer.Argument(None, help="the agent's address (omit for an accountant key)"),
    accountant: bool = typer.Option(False, "--accountant", help="a read-only key for the whole books"),
    url: str | None = DatabaseUrl,
) -> None:
    """Issue a key; it is printed once and stored only as a hash."""
    with open_ledger(url) as ledger:
        issued = create_key(ledger.service, Role.ACCOUNTANT if accountant else Role.AGENT, agent)
    console.print(f"key id  {issued.key_id}\nrole    {issued.role.value}\nagent   {issued.agent or '-'}")
    console.print(f"api key {issued.secret}", highlight=False)


@api_key_app.command("revoke")
def api_key_revoke(key_id: str, url: str | None = DatabaseUrl) -> None:
    """Revoke a key by its id."""
    with open_ledger(url) as ledger:
        revoke_key(ledger.service, key_id)
    console.print(f"revoked {key_id}")
