"""Reports: the books' identities hold, totals match the ledger, every format renders, samples reproduce."""

from __future__ import annotations

import csv
import io
import re
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from agentbooks import Ledger
from agentbooks.demo import ScriptedClock, run_demo_day
from agentbooks.render import RENDERERS, render
from agentbooks.reports import REPORTS, build_report
from agentbooks.reports.agents import holds_as_of
from agentbooks.reports.books import general_journal
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
        assert all(trial.checks.values()) and "debits equal credits" in trial.checks
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
        stored = {(h.kind, h.agent, h.reference): h.remaining_micros for h in ledger.open_holds()}
        replayed = {(h.kind, h.agent, h.reference): h.remaining_micros
                    for h in holds_as_of(ledger, ledger.head()[0])}
        assert replayed == stored  # the journal's hold effects replay to the holds table


def test_report_as_of_the_past(ledger):
    small_scenario(ledger)
    trial = build_report(ledger, "trial-balance", as_of=1)
    assert {r["account"]: (r["debit"], r["credit"]) for r in trial.rows if r["debit"] or r["credit"]} == {
        "Platform:Treasury": (10_000_000, 0), f"Agent:{ALICE}:Available": (0, 10_000_000)}
    income = build_report(ledger, "income-statement", start=0, as_of=1)
    assert income.totals["amount"] == 0


def test_open_holds_as_of_a_past_moment_with_their_age():
    start = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    clock = StepClock(start)
    with Ledger.open("sqlite://", clock=clock) as ledger:
        ledger.deposit(ALICE, "100", "0xd1")                      # 09:00:01
        ledger.hold(ALICE, "30", "api-call")                      # 09:00:02
        ledger.escrow_lock(ALICE, "20", "order-7")                # 09:00:03
        ledger.confirm_hold(ALICE, "10", "api-call", tx_hash="0xo")  # 09:00:04
        clock.now += timedelta(hours=5)
        ledger.confirm_hold(ALICE, "20", "api-call", tx_hash="0xp")  # 14:00:05: the hold is used up
        at_noon = build_report(ledger, "open-holds", as_of="2026-03-01T12:00:02Z")
        now = build_report(ledger, "open-holds", as_of="2026-03-01T15:00:03Z")
    assert [(r["kind"], r["reference"], r["remaining"], r["age_hours"]) for r in at_noon.rows] == [
        ("hold", "api-call", 20_000_000, Decimal("3.00")), ("escrow", "order-7", 20_000_000, Decimal("3.00"))]
    assert at_noon.as_of_seq == 4 and at_noon.totals["remaining"] == 40_000_000
    assert [(r["reference"], r["age_hours"]) for r in now.rows] == [("order-7", Decimal("6.00"))]


def test_credit_utilisation_is_an_exact_percentage(ledger):
    ledger.set_credit_limit(ALICE, "3")
    ledger.use_credit(ALICE, "1")
    row = build_report(ledger, "credit-exposure").rows[0]
    assert (row["used"], row["headroom"], row["utilisation"]) == (1_000_000, 2_000_000, Decimal("33.33"))


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
                assert Decimal(str(value)) == Decimal(text), (column.key, value, text)  # a number, to the micro
            elif column.kind == "int":
                assert str(value) == text
            elif column.kind == "time":
                expected_time = datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None) if text else None
                assert value == expected_time, (value, text)  # a date-time cell (UTC), not text
            elif column.kind == "date":  # a date-time cell; the text form is for people, to the minute
                assert value is None if not text else text == f"{value.day} {value:%b %Y %H:%M} UTC", (value, text)
            elif column.kind in ("percent", "decimal"):
                assert Decimal(str(value)) == Decimal(text)  # a number a spreadsheet can sort and pivot
            else:
                assert (value or "") == text


def test_html_report_has_a_chart():
    with Ledger.open("sqlite://", clock=StepClock()) as ledger:
        small_scenario(ledger)
        page = render(build_report(ledger, "balance-sheet"), "html").decode()
        statement = render(build_report(ledger, "agent-statement", agent=ALICE), "html").decode()
    for html in (page, statement):
        assert "<svg" in html and "<polyline" in html
        assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "Treasury vs. obligations" in page and "Running balances by sub-account" in statement


def test_demo_samples_are_reproducible_and_committed(tmp_path):
    outputs = []
    for run in ("a", "b"):
        with Ledger.open(f"sqlite:///{tmp_path / run}.db", clock=ScriptedClock()) as ledger:
            run_demo_day(ledger)
            outputs.append(write_samples(ledger, tmp_path / run / "ledgers", tmp_path / run / "reports"))
    for first, second in zip(*outputs):
        committed = (ROOT / "ledgers" / first.name) if first.name == SAMPLE_EXPORT else ROOT / "reports" / first.name
        assert first.read_bytes() == second.read_bytes() == committed.read_bytes(), first.name  # XLSX too
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


def test_every_report_is_the_same_on_both_engines(any_url, tmp_path):
    bodies = []
    for url in (any_url, f"sqlite:///{tmp_path / 'twin.db'}"):
        with Ledger.open(url, clock=StepClock()) as ledger:
            fill_random(ledger, seed=12, operations=120)
            head = ledger.head()[0]
            bodies.append([render(build_report(ledger, name, as_of=head, agent=AGENTS[0]), "json")
                           for name in sorted(REPORTS)])
    assert bodies[0] == bodies[1]


def test_a_long_journal_is_cut_at_a_transaction_boundary_and_says_where_to_continue(ledger):
    small_scenario(ledger)
    whole = general_journal(ledger)
    first = general_journal(ledger, max_rows=5)
    assert first.checks == {"debits equal credits": True}  # never half a transaction
    continue_after = int(first.notes[0].rsplit(" ", 1)[1])
    rest = general_journal(ledger, start=continue_after)
    assert first.rows + rest.rows == whole.rows and whole.notes == ()


def test_a_long_agent_statement_closes_where_it_is_cut_and_still_adds_up(monkeypatch):
    import agentbooks.reports.agents as statements

    monkeypatch.setattr(statements, "PAGE", 5)
    monkeypatch.setattr(statements, "MAX_STATEMENT_TRANSACTIONS", 30)
    with Ledger.open("sqlite://", clock=StepClock()) as ledger:
        fill_random(ledger, seed=4, operations=200)
        first = build_report(ledger, "agent-statement", agent=AGENTS[0])
        assert first.as_of_seq < ledger.head()[0] and all(first.checks.values())
        rest = build_report(ledger, "agent-statement", agent=AGENTS[0], start=first.as_of_seq)
        assert all(rest.checks.values()) and rest.as_of_seq == ledger.head()[0]
    assert f"continue with --from {first.as_of_seq}" in first.notes[-1]
    closing = [r["balance"] for r in first.rows[-4:]]
    assert [r["balance"] for r in rest.rows[:4]] == closing  # the next statement opens where this one closed


def test_the_chart_is_sampled_to_a_bounded_number_of_points(ledger):
    from agentbooks.reports.books import MAX_CHART_POINTS, obligations_chart

    ledger.batch([{"op": "deposit", "agent": ALICE, "amount": "1", "tx_hash": f"0x{i}"} for i in range(450)])
    chart = obligations_chart(ledger, ledger.head()[0])
    treasury = chart.series["Platform:Treasury"]
    assert 100 <= len(treasury) <= MAX_CHART_POINTS
    assert treasury[-1][1] == 450_000_000 and [v for _, v in treasury] == sorted(v for _, v in treasury)


def test_every_report_is_labelled_with_the_boundaries_asked_for():
    clock = StepClock(datetime(2026, 9, 30, 23, 46, 3, tzinfo=timezone.utc))
    with Ledger.open("sqlite://", clock=clock) as ledger:
        ledger.deposit(ALICE, "100", "0xd1")                          # 2026-09-30T23:46:04Z
        clock.now = datetime(2026, 10, 15, tzinfo=timezone.utc)
        ledger.hold(ALICE, "30", "api-call")                          # in October
        clock.now = datetime(2026, 11, 2, tzinfo=timezone.utc)
        ledger.spend(ALICE, "1", "sk-1")                              # in November
        start, end = "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"
        october = (datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc))
        for name in REPORTS:
            report = build_report(ledger, name, start=start, as_of=end, agent=ALICE)
            assert report.as_of == october[1], name
            assert report.as_of_seq == 2, name  # the November spend is after the period
            if report.period is not None:
                assert report.period == october, name
            assert json.loads(render(report, "json"))["meta"]["as of"] == "2026-11-01T00:00:00.000000Z", name
        plain = build_report(ledger, "journal", start="2026-10-01", as_of="2026-11-01", tz="Europe/Berlin")
        assert plain.period == (datetime(2026, 9, 30, 22, tzinfo=timezone.utc),
                                datetime(2026, 10, 31, 23, tzinfo=timezone.utc))
        # 23:46 UTC on 30 September is already 1 October in Berlin
        assert [r["kind"] for r in plain.rows] == ["deposit", "deposit", "hold", "hold"]
        meta = json.loads(render(plain, "json"))["meta"]
        assert meta["period"] == "2026-10-01T00:00:00+02:00 to 2026-11-01T00:00:00+01:00"
        assert meta["time zone"] == "Europe/Berlin"


def test_open_holds_means_as_of_what_the_other_reports_mean(ledger):
    ledger.deposit(ALICE, "10", "0xd1")
    ledger.hold(ALICE, "4", "h-1")
    ledger.service.clock.now += timedelta(hours=2)  # the wall clock moves on; the books do not
    holds, trial = build_report(ledger, "open-holds"), build_report(ledger, "trial-balance")
    last_transaction = list(ledger.transactions())[-1]
    assert holds.as_of == trial.as_of == last_transaction.occurred_at
    assert holds.rows[0]["age_hours"] == Decimal("0.00")


def test_csv_starts_with_its_as_of_period_and_checks_as_comment_lines(ledger):
    small_scenario(ledger)
    text = render(build_report(ledger, "journal", start=1), "csv").decode()
    comments = [line for line in text.splitlines() if line.startswith("# ")]
    assert comments[:4] == ["# report: General journal", "# as of journal seq: 8",
                            "# as of: 2026-01-01T00:00:08.000000Z",
                            "# period: 2026-01-01T00:00:01.000000Z to 2026-01-01T00:00:08.000000Z"]
    assert "# check: debits equal credits: ok" in comments
    table = list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))
    assert table[0][:3] == ["Time", "Seq", "Transaction"] and table[-1][0] == "Total"


def test_xlsx_has_typed_cells_a_frozen_filtered_header_and_prints_to_the_page_width(ledger):
    small_scenario(ledger)
    ledger.hold(ALICE, "1", "open-one")
    for name in ("journal", "open-holds", "credit-exposure", "trial-balance"):
        report = build_report(ledger, name, agent=ALICE)
        sheet = load_workbook(io.BytesIO(render(report, "xlsx"))).active
        labels = {row[0]: row[1] for row in sheet.iter_rows(max_row=4, values_only=True) if row and row[0]}
        assert labels["as of journal seq"] == report.as_of_seq  # a number
        assert isinstance(labels["as of (UTC)"], datetime)
        header_row = next(i for i, row in enumerate(sheet.iter_rows(values_only=True), start=1)
                          if row and row[0] == report.columns[0].title)
        assert sheet.freeze_panes == f"A{header_row + 1}"
        assert sheet.auto_filter.ref.startswith(f"A{header_row}:")
        assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.fitToWidth == 1
        assert sheet.page_setup.fitToHeight == 0 and sheet.sheet_properties.pageSetUpPr.fitToPage
        first = [c.value for c in sheet[header_row + 1]]
        for column, value in zip(report.columns, first):
            if column.kind == "time" and value is not None:
                assert isinstance(value, datetime), name
            if column.kind in ("percent", "decimal", "int", "money"):
                assert isinstance(value, (int, float)), (name, column.key, value)


def test_the_chart_draws_both_lines_distinguishably_with_readable_axes(ledger):
    small_scenario(ledger)
    page = render(build_report(ledger, "balance-sheet"), "html").decode()
    lines = re.findall(r"<polyline [^>]*>", page)
    assert len(lines) == 2 and len({re.search(r'stroke-width="(\d+)"', p).group(1) for p in lines}) == 2
    assert "stroke-dasharray" in lines[1]
    assert "000000<" not in page.split("<svg", 1)[1].split("</svg>")[0]  # amounts like 145,322, not 145322.000000
    assert re.search(r">01-01 00:0\d<", page)  # a time axis


def test_an_agent_statement_you_can_send(ledger):
    small_scenario(ledger)
    ledger.set_agent_profile(ALICE, display_name="research-bot")
    ledger.set_agent_profile(BOB, display_name="travel-agent")
    ledger.hold(BOB, "0.5", "mkt-1")
    ledger.settle_hold(BOB, ALICE, "0.5", "mkt-1", fee="0.1")
    statement = build_report(ledger, "agent-statement", agent=ALICE, start=1)
    assert statement.title == f"Statement of research-bot ({ALICE})"
    summary = dict(statement.summary)
    assert summary["opening balance (available + pending + escrowed - credit used)"] == 10_000_000
    assert (summary["out: confirm hold"], summary["out: transfer"], summary["in: settle hold"]) == (
        7_000_000, 1_500_000, 400_000)
    balance = ledger.get_balance(ALICE)
    assert summary["closing balance"] == micros(balance.available + balance.pending + balance.escrowed
                                                - balance.credit_used)
    assert all(statement.checks.values()) and "opening + in - out = closing" in statement.checks
    moves = {r["kind"]: r for r in statement.rows}
    assert moves["transfer"]["counterparty"] == "travel-agent"
    assert moves["confirm_hold"]["tx_hash"] == "0xout"
    text = render(statement, "csv").decode()
    assert "1 Jan 2026 00:00 UTC" in text and "# closing balance: " in text
    buyer = dict(build_report(ledger, "agent-statement", agent=BOB).summary)
    assert buyer["fees paid (included in out)"] == 100_000
