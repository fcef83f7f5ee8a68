"""Period statements agree with bean-query over the same period, to the micro-unit, per account.

Transactions are exported dated by their UTC day, so a period between two UTC
midnights is the same set of transactions in both tools.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import beanquery
import pytest

from agentbooks import Ledger
from agentbooks.domain.accounts import ledger_name
from agentbooks.export.beancount import export_file
from agentbooks.reports import build_report
from random_books import fill_random
from test_export_beancount import HourlyClock

START, END = "2026-02-10", "2026-03-15"


def bean_query(path, where: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rows = beanquery.connect(f"beancount:{path}").execute(
        f"SELECT account, sum(number) AS n WHERE {where} GROUP BY account").fetchall()
    return {ledger_name(account): int(Decimal(n).scaleb(6)) for account, n in rows if n}


@pytest.mark.parametrize("seed", [5, 6])
def test_the_trial_balance_over_a_period_agrees_with_bean_query(tmp_path, seed):
    with Ledger.open("sqlite://", clock=HourlyClock()) as ledger:
        fill_random(ledger, seed, operations=220, platform_books=True)
        path = export_file(ledger, tmp_path / "books.beancount").path
        trial = build_report(ledger, "trial-balance", start=START, as_of=END)
        income = build_report(ledger, "income-statement", start=START, as_of=END, interval="month")
    assert trial.period == (datetime(2026, 2, 10, tzinfo=timezone.utc), datetime(2026, 3, 15, tzinfo=timezone.utc))
    assert all(trial.checks.values()), trial.checks
    in_period = f"date >= {START} AND date < {END}"
    opening = bean_query(path, f"date < {START}")
    debits = bean_query(path, f"{in_period} AND number > 0")
    credits = bean_query(path, f"{in_period} AND number < 0")
    closing = bean_query(path, f"date < {END}")
    rows = {r["account"]: r for r in trial.rows}
    assert set(rows) >= set(closing) | set(debits) | set(credits)
    for name, row in rows.items():
        assert row["opening"] == opening.get(name, 0), name
        assert (row["debits"], row["credits"]) == (debits.get(name, 0), -credits.get(name, 0)), name
        assert row["debit"] - row["credit"] == closing.get(name, 0) == row["opening"] + row["debits"] - row["credits"]
    earned = bean_query(path, f"{in_period} AND entry_meta('kind') != 'close_period'")
    net = -sum(v for n, v in earned.items() if n.startswith(("Income:", "Expenses:")))
    assert income.totals["amount"] == net
    assert [c.title for c in income.columns[2:]] == ["2026-02", "2026-03", "Total"]
    assert income.totals["p0"] + income.totals["p1"] == net and all(income.checks.values())


def test_the_balance_sheet_has_a_comparative_column_at_the_period_start(tmp_path):
    with Ledger.open("sqlite://", clock=HourlyClock()) as ledger:
        fill_random(ledger, 9, operations=200, platform_books=True)
        path = export_file(ledger, tmp_path / "books.beancount").path
        sheet = build_report(ledger, "balance-sheet", start=START, as_of=END)
    assert [c.key for c in sheet.columns] == ["section", "line", "amount", "comparative"]
    assert all(sheet.checks.values())
    lines = {r["line"]: r for r in sheet.rows}
    for boundary, key in ((START, "comparative"), (END, "amount")):
        balances = bean_query(path, f"date < {boundary}")
        assets = sum(v for n, v in balances.items() if n.startswith("Platform"))
        owed = -sum(v for n, v in balances.items() if n.startswith("Agent"))
        earnings = -sum(v for n, v in balances.items() if n.startswith(("Income", "Expenses")))
        assert lines["Total assets"][key] == assets
        assert lines["Total obligations to agents"][key] == owed
        assert lines["Current earnings (income - expenses not yet closed)"][key] == earnings
        assert lines["Equity:Capital"][key] == -balances.get("Equity:Capital", 0)
