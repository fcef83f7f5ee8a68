"""The FastAPI application factory: a thin layer over the same service the CLI uses."""

from __future__ import annotations

import os

from fastapi import FastAPI

from ..config import ADMIN_SECRET_ENV, DATABASE_URL_ENV, PAYOUTS_ENV
from ..config import database_url as resolve_database_url
from ..ledger import Ledger
from ..credit import CreditScorer, ledger_history_score
from . import admin_routes, agent_routes, book_routes, credit_routes, monitor_routes
from .errors import install_error_handlers
from .observability import Metrics, install_observability

DESCRIPTION = """
Double-entry books for AI agents holding USDC. Amounts are strings with at
most 6 decimals (responses always carry exactly 6). Every failure answers
`{"error": <stable code>, "message": …}`. Mutating routes accept an
`Idempotency-Key` header: the same key and body replay the first response
(`Idempotent-Replay: true`); the same key with another body is 409
`idempotency_conflict`.

Auth: agents send their API key (`Authorization: Bearer …` or `X-API-Key`)
and read or move only their own money; accountant keys read everything and
move nothing; `X-Admin-Secret` opens the admin routes.
"""


def create_app(database_url: str | None = None, admin_secret: str | None = None, *,
               ledger: Ledger | None = None, credit_scorer: CreditScorer | None = None,
               payouts: bool = False) -> FastAPI:
    """An app over ``ledger``, or over a ledger opened at ``database_url`` (migrated on open).

    ``credit_scorer`` scores credit applications (default: ``credit.ledger_history_score``).
    ``payouts``: a payout executor runs against this database (``agentbooks payouts``), so a
    withdrawal becomes a payout to the agent's own address instead of a hold an admin settles.
    """
    app = FastAPI(title="agentbooks", version="0.1.0", description=DESCRIPTION)
    app.state.ledger = ledger or Ledger.open(resolve_database_url(database_url))
    app.state.admin_secret = admin_secret or None
    app.state.credit_scorer = credit_scorer or ledger_history_score
    app.state.payouts = payouts
    app.state.metrics = Metrics()
    install_error_handlers(app)
    install_observability(app, app.state.metrics)
    for module in (agent_routes, credit_routes, admin_routes, book_routes, monitor_routes):
        app.include_router(module.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, object]:
        seq, tip = app.state.ledger.head()
        return {"status": "ok", "journalSeq": seq, "head": tip}

    return app


def create_app_from_env() -> FastAPI:
    """The app as ``agentbooks serve`` configures it (database URL and admin secret from the environment),
    for process managers that import an app factory (``uvicorn --factory``, several workers)."""
    return create_app(os.environ.get(DATABASE_URL_ENV), os.environ.get(ADMIN_SECRET_ENV),
                      payouts=os.environ.get(PAYOUTS_ENV) == "1")
