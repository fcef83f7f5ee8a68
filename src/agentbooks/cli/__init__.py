"""The ``agentbooks`` command line (Typer). Each sub-module adds its commands to ``app``."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="agentbooks: double-entry books for AI agents holding USDC.")


@app.callback()
def _root() -> None:
    """agentbooks: double-entry books for AI agents holding USDC."""


# Importing a command module registers its commands on ``app``.
from . import books, chain, checks, demo, events, serve  # noqa: E402,F401


def main() -> None:
    app()
