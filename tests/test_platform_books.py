"""The platform's own books: capital, opening balances, network fees, bad debt, adjustments, period closes."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from agentbooks import Ledger, LedgerError
from agentbooks.export.beancount import export_file
from agentbooks.reports import build_report
from agentbooks.verify.database import verify_database
from agentbooks.verify.offline import verify_export
from conftest import ALICE, BOB, StepClock
from random_books import fill_random
from test_export_beancount import beancount_balances, ledger_balances, nonzero


def micros(d: Decimal) -> int:
    return int(d.scaleb(6))


def books_are_sound(ledger: Ledger, folder) -> None:  # type: ignore[no-untyped-def]
    """bean-check clean with beancount's balances = ours, verify and verify-export clean, identities hold."""
    summary = export_file(ledger, folder / "books.beancount")
    assert nonzero(beancount_balances(summary.path)) == ledger_balances(ledger)
    assert verify_database(ledger).violation_count == 0
    assert verify_export(summary.path, expect_head=ledger.head()[1]).violation_count == 0
    for name in ("trial-balance", "balance-sheet"):
        report = build_report(ledger, name)
        assert all(report.checks.values()), (name, report.checks)


def test_owner_capital_funds_the_credit_an_agent_draws(ledger, tmp_path):
    ledger.contribute_capital("1000", "seed-round", memo="founders")
    ledger.set_credit_limit(ALICE, "50")
    ledger.spend(ALICE, "30", "sk-1")  # drawn on credit: paid out of the treasury the owners funded
    sheet = {r["line"]: r["amount"] for r in build_report(ledger, "balance-sheet").rows}
    assert sheet["Equity:Capital"] == 1000_000_000
    assert sheet["Platform:Treasury (USDC on chain)"] == 970_000_000
    assert sheet["Platform:Credit:* (credit drawn by agents)"] == 30_000_000
    with pytest.raises(LedgerError) as again:
        ledger.contribute_capital("1", "seed-round")
    assert again.value.code == "duplicate_entry"
    books_are_sound(ledger, tmp_path)


def test_opening_balances_bring_over_an_existing_ledger_against_equity_opening(ledger, tmp_path):
    ledger.record_opening_balance("Platform:Treasury", "500", "import-2026")
    ledger.record_opening_balance(f"Agent:{ALICE}:Available", "420", "import-2026")
    alice = ledger.get_balance(ALICE)
    assert (alice.available, alice.total_in) == (Decimal("420.000000"), Decimal("420.000000"))
    assert ledger.get_account_balance("Equity:Opening") == Decimal("-80.000000")  # the owners' part
    for account in (f"Agent:{ALICE}:Pending", f"Platform:Credit:{ALICE}", "Equity:Opening"):
        with pytest.raises(LedgerError):
            ledger.record_opening_balance(account, "1", "import-2026b")
    books_are_sound(ledger, tmp_path)


def test_network_fees_are_an_expense_paid_from_the_treasury_once_per_tx(ledger):
    ledger.contribute_capital("10", "cap")
    ledger.pay_network_fee("0.021", "0xabc", memo="paymaster")
    assert ledger.get_account_balance("Expenses:Network-Fees") == Decimal("0.021000")
    assert ledger.get_account_balance("Platform:Treasury") == Decimal("9.979000")
    with pytest.raises(LedgerError) as again:
        ledger.pay_network_fee("0.021", "0xABC")
    assert again.value.code == "duplicate_entry"


def test_writing_off_bad_debt_reduces_the_credit_used_and_keeps_the_agent_identity(ledger, tmp_path):
    ledger.contribute_capital("100", "cap")
    ledger.set_credit_limit(BOB, "30")
    ledger.spend(BOB, "25", "sk-1")
    ledger.write_off_credit(BOB, "10", "counterparty insolvent")
    bob = ledger.get_balance(BOB)
    assert (bob.credit_used, bob.total_in, bob.total_out) == (Decimal("15.000000"), Decimal("10.000000"),
                                                              Decimal("25.000000"))
    assert bob.available + bob.pending + bob.escrowed == bob.total_in - bob.total_out + bob.credit_used
    assert ledger.get_account_balance("Expenses:Bad-Debt") == Decimal("10.000000")
    with pytest.raises(LedgerError):
        ledger.write_off_credit(BOB, "15.000001", "more than owed")
    with pytest.raises(LedgerError) as nothing_owed:
        ledger.write_off_credit(ALICE, "1", "never borrowed")
    assert nothing_owed.value.code == "no_outstanding_credit"
    ledger.deposit(BOB, "15", "0xd1")  # what is left is still repaid first
    assert ledger.get_balance(BOB).credit_used == 0
    books_are_sound(ledger, tmp_path)


@pytest.mark.parametrize("lines, code", [
    ([{"account": f"Agent:{ALICE}:Available", "debit": "1"}, {"account": "Equity:Capital", "credit": "1"}],
     "agent_account_not_adjustable"),
    ([{"account": f"Platform:Credit:{ALICE}", "debit": "1"}, {"account": "Income:Fees", "credit": "1"}],
     "agent_account_not_adjustable"),
    ([{"account": "Income:Fees", "debit": "1"}, {"account": "Equity:Capital", "credit": "0.5"}], "invalid_argument"),
    ([{"account": "Income:Fees", "debit": "1"}], "invalid_argument"),
    ([{"account": "Expenses:Lunch", "debit": "1"}, {"account": "Equity:Capital", "credit": "1"}], "invalid_account"),
])
def test_an_adjusting_entry_is_balanced_and_never_moves_an_agents_money(ledger, lines, code):
    ledger.deposit(ALICE, "5", "0xd1")
    with pytest.raises(LedgerError) as refused:
        ledger.adjust(lines, "year-end correction")
    assert refused.value.code == code
    assert ledger.head()[0] == 1  # nothing written


def test_an_adjusting_entry_between_platform_accounts_is_recorded_with_its_reason(ledger, tmp_path):
    ledger.contribute_capital("10", "cap")
    tx = ledger.adjust([{"account": "Expenses:Network-Fees", "debit": "0.5"},
                        {"account": "Equity:Capital", "credit": "0.5"}], "fee paid by a founder personally")
    assert tx.memo == "fee paid by a founder personally" and tx.agent is None
    with pytest.raises(LedgerError):
        ledger.adjust([{"account": "Income:Fees", "debit": "1"}, {"account": "Equity:Capital", "credit": "1"}], "")
    books_are_sound(ledger, tmp_path)


def test_closing_a_period_moves_its_earnings_to_retained_earnings(tmp_path):
    clock = StepClock(datetime(2026, 10, 31, 23, 59, tzinfo=timezone.utc))
    with Ledger.open(f"sqlite:///{tmp_path / 'books.db'}", clock=clock) as ledger:
        ledger.contribute_capital("100", "cap")
        ledger.deposit(ALICE, "50", "0xd1")
        ledger.hold(ALICE, "20", "h-1")
        ledger.settle_hold(ALICE, BOB, "20", "h-1", fee="2")          # October: 2 of fees
        ledger.pay_network_fee("0.5", "0xfee")                       # October: 0.5 of expenses
        end = "2026-11-01T00:00:00Z"
        with pytest.raises(LedgerError) as early:
            ledger.close_period(end)  # nothing recorded in November yet: October could still grow
        assert early.value.code == "period_not_complete"
        clock.now = datetime(2026, 11, 2, tzinfo=timezone.utc)
        ledger.hold(BOB, "10", "h-2")
        ledger.settle_hold(BOB, ALICE, "10", "h-2", fee="1")           # November: 1 of fees
        close = ledger.close_period(end)
        assert {p.account: p.amount_micros for p in close.postings} == {
            "Income:Fees": 2_000_000, "Expenses:Network-Fees": -500_000, "Equity:Retained-Earnings": -1_500_000}
        with pytest.raises(LedgerError) as twice:
            ledger.close_period(end)
        assert twice.value.code == "period_already_closed"
        with pytest.raises(LedgerError) as undo:
            ledger.reverse(close.id, "oops")
        assert undo.value.code == "not_reversible"
        october = build_report(ledger, "income-statement", start="2026-10-01", as_of=end)
        assert october.totals["amount"] == 1_500_000  # the close itself is not income or expense
        sheet = {r["line"]: r["amount"] for r in build_report(ledger, "balance-sheet").rows}
        assert sheet["Equity:Retained-Earnings"] == 1_500_000
        assert sheet["Current earnings (income - expenses not yet closed)"] == 1_000_000  # November's
        clock.now = datetime(2026, 12, 3, tzinfo=timezone.utc)
        ledger.spend(ALICE, "1", "sk-1")
        second = ledger.close_period("2026-12-01T00:00:00Z")  # only November's fee is left to close
        assert {p.account: p.amount_micros for p in second.postings} == {
            "Income:Fees": 1_000_000, "Equity:Retained-Earnings": -1_000_000}
        books_are_sound(ledger, tmp_path)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_books_with_platform_entries_pass_bean_check_verify_and_the_identities(tmp_path, seed):
    with Ledger.open("sqlite://", clock=StepClock()) as ledger:
        recorded = fill_random(ledger, seed, operations=160, platform_books=True)
        kinds = {t.kind.value for t in ledger.transactions()}
        assert recorded > 50 and {"contribute_capital", "adjust", "pay_network_fee"} <= kinds
        books_are_sound(ledger, tmp_path)


def test_the_admin_api_records_the_platform_books(tmp_path):
    from api_support import make_api

    api = make_api(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        post = lambda path, body: api.client.post(f"/v1/admin/{path}", json=body, headers=api.admin)  # noqa: E731
        assert post("capital", {"amount": "100", "reference": "seed"}).status_code == 201
        assert post("capital", {"amount": "100", "reference": "seed"}).json()["error"] == "duplicate_entry"
        assert post("opening-balances", {"account": f"Agent:{ALICE}:Available", "amount": "5",
                                         "reference": "import"}).status_code == 201
        assert post("network-fees", {"amount": "0.01", "txHash": "0xfee"}).status_code == 201
        api.ledger.set_credit_limit(BOB, "10")
        api.ledger.spend(BOB, "4", "sk")
        written = post(f"agents/{BOB}/write-off", {"amount": "4", "reason": "gone"})
        assert written.status_code == 201 and written.json()["transaction"]["kind"] == "write_off_credit"
        refused = post("adjustments", {"postings": [{"account": f"Agent:{ALICE}:Available", "debit": "1"},
                                                    {"account": "Equity:Capital", "credit": "1"}], "reason": "x"})
        assert (refused.status_code, refused.json()["error"]) == (422, "agent_account_not_adjustable")
        assert post("adjustments", {"postings": [{"account": "Expenses:Network-Fees", "credit": "0.01"},
                                                 {"account": "Equity:Capital", "debit": "0.01"}],
                                    "reason": "refunded by the relayer"}).status_code == 201
        too_early = post("period-closes", {"end": "2030-01-01T00:00:00Z"})
        assert too_early.json()["error"] == "period_not_complete"
        assert api.ledger.get_balance(BOB).credit_used == 0
        assert api.client.get("/v1/admin/verify", headers=api.admin).json()["violations"] == []
    finally:
        api.ledger.close()


def test_an_admin_names_an_agent_and_bad_names_are_refused(tmp_path):
    from api_support import make_api

    api = make_api(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        path = f"/v1/admin/agents/{ALICE.upper().replace('0X', '0x')}/profile"
        named = api.client.put(path, json={"displayName": "research-bot", "metadata": {"team": "research"}},
                               headers=api.admin)
        assert named.status_code == 200 and named.json()["agentAddress"] == ALICE
        assert api.ledger.agent_profile(ALICE).label == "research-bot"
        for body in ({"displayName": "bad\nname"}, {"metadata": {"Bad Key": "x"}}, {"metadata": {"agent": "x"}}):
            refused = api.client.put(path, json=body, headers=api.admin)
            assert refused.status_code in (400, 422) and refused.json()["error"] in ("invalid_argument", "invalid_request"), body
        assert api.client.put(path, json={"displayName": "x"}).status_code in (401, 403)
    finally:
        api.ledger.close()


def test_report_time_zones_and_intervals_through_the_api(tmp_path):
    from api_support import make_api

    api = make_api(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        api.ledger.contribute_capital("1", "cap")
        ok = api.client.get("/v1/reports/income-statement", headers=api.accountant,
                            params={"from": "2026-01-01", "at": "2026-03-01", "tz": "Europe/Berlin",
                                    "interval": "month"})
        assert ok.status_code == 200 and [c["title"] for c in ok.json()["columns"]][2:] == [
            "2026-01", "2026-02", "Total"]
        bad = api.client.get("/v1/reports/trial-balance", headers=api.accountant, params={"tz": "Mars/Olympus"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_argument"
    finally:
        api.ledger.close()
