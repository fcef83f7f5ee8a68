"""Report names, for the CLI and the API."""

from __future__ import annotations

from typing import Any, Callable

from ..domain.errors import InvalidArgument
from ..ledger import Ledger
from .agents import agent_statement, credit_exposure, open_holds
from .books import balance_sheet, general_journal, income_statement, trial_balance
from .model import Report

REPORTS: dict[str, str] = {
    "trial-balance": "every account: opening, the period's debits and credits, closing debit or credit",
    "balance-sheet": "assets against obligations to agents and equity (comparative column with --from)",
    "income-statement": "income less expenses in a period (--interval month|quarter for columns)",
    "agent-statement": "one agent's opening balance, transactions with running balances, closing balance",
    "journal": "every posting in a period (general ledger)",
    "credit-exposure": "limits, credit used and headroom per agent",
    "open-holds": "open holds and escrows with their age",
}


def build_report(ledger: Ledger, name: str, *, as_of: Any = None, start: Any = None, agent: str | None = None,
                 tz: str | None = None, interval: str | None = None) -> Report:
    """``as_of`` ends the report (``--as-of``/``--to``), ``start`` opens its period (``--from``): see
    ``reports.period`` for what a boundary means; ``tz`` is the reporting time zone."""
    builders: dict[str, Callable[[], Report]] = {
        "trial-balance": lambda: trial_balance(ledger, as_of, start, tz=tz),
        "balance-sheet": lambda: balance_sheet(ledger, as_of, start, tz=tz),
        "income-statement": lambda: income_statement(ledger, start, as_of, tz=tz, interval=interval),
        "journal": lambda: general_journal(ledger, start, as_of, tz=tz),
        "credit-exposure": lambda: credit_exposure(ledger, as_of, tz=tz),
        "open-holds": lambda: open_holds(ledger, as_of, tz=tz),
        "agent-statement": lambda: agent_statement(ledger, _need(agent), start, as_of, tz=tz),
    }
    if name not in builders:
        raise InvalidArgument(f"unknown report {name[:40]!r}; one of {sorted(REPORTS)}", field="name")
    return builders[name]()


def _need(agent: str | None) -> str:
    if not agent:
        raise InvalidArgument("the agent statement needs an agent address", field="agent")
    return agent
