"""Settings shared by the CLI and the server, read from the environment."""

from __future__ import annotations

import os

DEFAULT_DATABASE_URL = "sqlite:///agentbooks.db"
DATABASE_URL_ENV = "AGENTBOOKS_DATABASE_URL"
ADMIN_SECRET_ENV = "AGENTBOOKS_ADMIN_SECRET"
PAYOUTS_ENV = "AGENTBOOKS_PAYOUTS"  # "1": a payout executor runs; withdrawals become payouts


def database_url(explicit: str | None = None) -> str:
    """An explicit URL wins, then $AGENTBOOKS_DATABASE_URL, then the embedded SQLite file."""
    return explicit or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
