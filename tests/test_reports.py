"""Reports: the books' identities hold, totals match the ledger, every format renders, samples reproduce."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from agentbooks import Ledger
from agentbooks.demo import ScriptedClock, run_demo_day
from agentbooks.render import RENDERERS, render
from agentbooks.reports import REPORTS, build_report
from agentbooks.samples import SAMPLE_EXPORT, write_samples
from conftest import ALICE, BOB, StepClock
from random_books import AGENTS, fill_random
from test_export_beancount import small_scenario

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"


def micros(d: Decimal) -> int:
    return int(d.scaleb(6))


@pytest.mark.parametrize("seed", [4, 5])
def test_identities_hold_and_totals_match_the_ledger(tmp_path, seed):
    with Ledger.open(f"sqlite:///{tmp_path / 'books.db'}", clock=StepClock()) as ledger:
        fill_random(ledger, seed, operations=200)
        trial = build_report(ledger, "trial-balance")
        assert trial.checks == {"debits equal credits": True}
        assert trial.totals["debit"] == trial.totals["credit"] > 0
        sheet = build_report(ledger, "balance-sheet")
        assert all(sheet.checks.values()) and sheet.totals["amount"] == 0
        lines = {r["line"]: r["amount"] for r in sheet.rows}
        assert lines["Platform:Treasury (USDC on chain)"] == micros(ledger.get_account_balance("Platform:Treasury"))
        owed = sum(micros(b.available + b.pending + b.escrowed) for b in map(ledger.get_balance, ledger.agents()))
        assert lines["Total obligations to agents"] == owed
        exposure = build_report(ledger, "credit-exposure")
        for row in exposure.rows:
            b = ledger.get_balance(row["agent"])
            assert (row["limit"], row["used"]) == (micros(b.credit_limit), micros(b.credit_used))
        for agent in AGENTS:
            statement = build_report(ledger, "agent-statement", agent=agent)
            assert all(statement.checks.values())
        journal = build_report(ledger, "journal")
        assert journal.checks == {"debits equal credits": True}
        holds = build_report(ledger, "open-holds")
        assert sum(r["remaining"] for r in holds.rows) == sum(
            micros(ledger.get_balance(a).pending + ledger.get_balance(a).escrowed) for a in ledger.agents())


def test_report_as_of_the_past(ledger):
    small_scenario(ledger)
    trial = build_report(ledger, "trial-balance", as_of=1)
    assert {r["account"]: (r["debit"], r["credit"]) for r in trial.rows} == {
        "Platform:Treasury": (10_000_000, 0), f"Agent:{ALICE}:Available": (0, 10_000_000)}
    income = build_report(ledger, "income-statement", start=0, as_of=1)
    assert income.totals["amount"] == 0


def test_agent_statement_runs_from_opening_to_closing(ledger):
    small_scenario(ledger)
    statement = build_report(ledger, "agent-statement", agent=ALICE, start=2)
    available = [r for r in statement.rows if r["sub_account"] == "Available"]
    assert available[0]["kind"] == "opening balance" and available[0]["balance"] == 10_000_000
    assert available[-1]["kind"] == "closing balance" and available[-1]["balance"] == micros(
        ledger.get_balance(ALICE).available)
    assert [r["change"] for r in available[1:-1]] == [-10_000_000, 3_000_000, -1_500_000]


@pytest.mark.parametrize("name", sorted(REPORTS))
@pytest.mark.parametrize("fmt", ["csv", "json", "html"])
def test_golden_report_text(ledger, name, fmt):
    small_scenario(ledger)
    body = render(build_report(ledger, name, agent=ALICE), fmt)
    assert body.decode() == (GOLDEN / f"{name}.{fmt}").read_text()


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_golden_report_xlsx_cells(ledger, name):
    small_scenario(ledger)
    report = build_report(ledger, name, agent=ALICE)
    sheet = load_workbook(io.BytesIO(render(report, "xlsx"))).active
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    header_row = next(i for i, row in enumerate(sheet.iter_rows(values_only=True), start=1)
                      if row and row[0] == report.columns[0].title)
    data = list(sheet.iter_rows(min_row=header_row + 1, values_only=True))
    assert len(data) == len(golden["rows"]) + (1 if golden["totals"] else 0)
    for row, expected in zip(data, golden["rows"]):
        for column, value in zip(report.columns, row):
            text = expected[column.key]
            if column.kind == "money":
                assert value == Decimal(text), (column.key, value, text)  # a number, exact to the micro
            elif column.kind == "int":
                assert str(value) == text
            else:
                assert (value or "") == text


def test_html_report_has_a_chart():
    with Ledger.open("sqlite://", clock=StepClock()) as ledger:
        small_scenario(ledger)
        page = render(build_report(ledger, "balance-sheet"), "html").decode()
    assert "<svg" in page and "<polyline" in page and "Treasury vs. obligations" in page
    assert "<script" not in page


def test_demo_samples_are_reproducible_and_committed(tmp_path):
    outputs = []
    for run in ("a", "b"):
        with Ledger.open(f"sqlite:///{tmp_path / run}.db", clock=ScriptedClock()) as ledger:
            run_demo_day(ledger)
            outputs.append(write_samples(ledger, tmp_path / run / "ledgers", tmp_path / run / "reports"))
    for first, second in zip(*outputs):
        committed = (ROOT / "ledgers" / first.name) if first.name == SAMPLE_EXPORT else ROOT / "reports" / first.name
        if first.suffix == ".xlsx":
            rows = [list(load_workbook(p).active.iter_rows(values_only=True)) for p in (first, second, committed)]
            assert rows[0] == rows[1] == rows[2], first.name
        else:
            assert first.read_bytes() == second.read_bytes() == committed.read_bytes(), first.name
    assert len(outputs[0]) == 1 + len(REPORTS) * len(RENDERERS)


def test_cli_report_writes_every_format(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "books.db"
    with Ledger.open(f"sqlite:///{db}", clock=StepClock()) as ledger:
        small_scenario(ledger)
    for fmt in RENDERERS:
        out = tmp_path / f"tb.{fmt}"
        run = subprocess.run([sys.executable, "-m", "agentbooks.cli", "report", "trial-balance", "--format", fmt,
                              "--out", str(out), "--database-url", f"sqlite:///{db}"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert out.stat().st_size > 100
    run = subprocess.run([sys.executable, "-m", "agentbooks.cli", "report", "agent-statement",
                          "--database-url", f"sqlite:///{db}", "--out", str(tmp_path / "x.csv")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "invalid_argument" in run.stderr
