"""Options and error handling every CLI command shares."""

from __future__ import annotations

import getpass
import sys
import uuid
from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console

from ..config import database_url
from ..context import calling
from ..domain.errors import LedgerError
from ..ledger import Ledger

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)

DatabaseUrl = typer.Option(None, "--database-url", envvar="AGENTBOOKS_DATABASE_URL",
                           help="sqlite:///file.db (default sqlite:///agentbooks.db) or postgresql+psycopg://…")


def cli_user() -> str:
    """The OS user running the command, as the audit trail names it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no LOGNAME/USER
        return "unknown"


@contextmanager
def open_ledger(url: str | None) -> Iterator[Ledger]:
    """Open the ledger; a LedgerError becomes a one-line message and exit status 2."""
    try:
        with calling(f"cli:{cli_user()}", uuid.uuid4().hex), Ledger.open(database_url(url)) as ledger:
            yield ledger
    except LedgerError as exc:
        err_console.print(f"[red]error[/red] {exc.code}: {exc.message}")
        sys.exit(2)
