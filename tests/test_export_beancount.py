"""The beancount export: bean-check accepts it, and beancount's own arithmetic agrees with the ledger."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from beancount import loader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from beancount.core import realization

from agentbooks import Ledger
from agentbooks.domain.accounts import ledger_name
from agentbooks.export.beancount import export_directory, export_file
from agentbooks.reports import build_report
from agentbooks.verify.offline import verify_export
from conftest import ALICE, BOB, StepClock
from random_books import fill_random

GOLDEN = Path(__file__).parent / "golden"


def beancount_balances(path: Path) -> dict[str, Decimal]:
    """Load with beancount (every check on) and let it compute each account's balance."""
    entries, errors, _ = loader.load_file(str(path))
    assert errors == [], [e.message for e in errors][:5]
    real = realization.realize(entries)
    out = {}
    for node in realization.iter_children(real):
        if node.txn_postings:
            position = node.balance.get_currency_units("USDC")
            out[ledger_name(node.account)] = position.number  # Assets:Platform:Treasury → Platform:Treasury
    return out


def nonzero(balances: dict[str, Decimal]) -> dict[str, Decimal]:
    return {k: v for k, v in balances.items() if v}


def ledger_balances(ledger: Ledger, as_of=None) -> dict[str, Decimal]:  # type: ignore[no-untyped-def]
    return nonzero(ledger.rollup("", as_of=as_of))


def small_scenario(ledger: Ledger) -> None:
    ledger.deposit(ALICE, "10", "0xd1")
    ledger.set_credit_limit(ALICE, "5")
    ledger.hold(ALICE, "12", "h-1")
    ledger.confirm_hold(ALICE, "7", "h-1", tx_hash="0xout")
    ledger.release_hold(ALICE, "5", "h-1", reason='rpc "timeout"')
    ledger.transfer(ALICE, BOB, "1.5", "inv-1")
    deposit = ledger.deposit(BOB, "2", "0xd2")
    ledger.reverse(deposit.id, "wrong agent")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_ledgers_round_trip_through_beancount(tmp_path, seed):
    with Ledger.open(f"sqlite:///{tmp_path / 'books.db'}", clock=StepClock()) as ledger:
        assert fill_random(ledger, seed, operations=250) > 50
        summary = export_file(ledger, tmp_path / "books.beancount")
        computed = beancount_balances(summary.path)
        expected = ledger_balances(ledger)
    assert summary.transactions == summary.last_seq
    assert nonzero(computed) == expected  # to the micro-unit, for every account


def test_round_trip_on_both_engines_with_the_same_text(any_url, tmp_path):
    with Ledger.open(any_url, clock=StepClock()) as ledger:
        fill_random(ledger, seed=11, operations=120)
        summary = export_file(ledger, tmp_path / "books.beancount", title="engines")
        assert nonzero(beancount_balances(summary.path)) == ledger_balances(ledger)
    with Ledger.open(f"sqlite:///{tmp_path / 'twin.db'}", clock=StepClock()) as twin:
        fill_random(twin, seed=11, operations=120)
        same = export_file(twin, tmp_path / "twin.beancount", title="engines")
    assert summary.path.read_text() == same.path.read_text()  # PostgreSQL and SQLite write the same books


def test_export_as_of_a_past_sequence(ledger, tmp_path):
    small_scenario(ledger)
    summary = export_file(ledger, tmp_path / "past.beancount", as_of=3)
    assert summary.last_seq == 3
    assert nonzero(beancount_balances(summary.path)) == ledger_balances(ledger, as_of=3)


def test_exact_balance_assertions_catch_a_one_micro_edit(ledger, tmp_path):
    small_scenario(ledger)
    path = export_file(ledger, tmp_path / "books.beancount").path
    text = path.read_text()
    tampered = tmp_path / "tampered.beancount"
    tampered.write_text(text.replace("Platform:Treasury  10.000000 USDC", "Platform:Treasury  10.000001 USDC", 1)
                        .replace(f"Agent:{ALICE}:Available  -10.000000 USDC", f"Agent:{ALICE}:Available  -10.000001 USDC", 1))
    _, errors, _ = loader.load_file(str(tampered))
    assert any("Balance failed" in e.message for e in errors)


def test_golden_export_of_a_small_scenario(ledger, tmp_path):
    small_scenario(ledger)
    text = export_file(ledger, tmp_path / "small.beancount", title="golden").path.read_text()
    assert text == (GOLDEN / "small.beancount").read_text()


def test_monthly_directory_export_appends_only_what_is_new(ledger, tmp_path):
    small_scenario(ledger)
    first = export_directory(ledger, tmp_path / "books", as_of=4)
    assert (first.first_seq, first.last_seq, first.transactions) == (1, 4, 4)
    assert nonzero(beancount_balances(first.path)) == ledger_balances(ledger, as_of=4)
    second = export_directory(ledger, tmp_path / "books")
    assert (second.first_seq, second.last_seq) == (5, ledger.head()[0])
    assert export_directory(ledger, tmp_path / "books").transactions == 0  # nothing new: nothing appended
    full = export_file(ledger, tmp_path / "full.beancount")
    assert beancount_balances(second.path) == beancount_balances(full.path)
    with pytest.raises(ValueError):
        export_directory(ledger, tmp_path / "books", since_seq=2)  # would duplicate transactions


def test_monthly_export_refuses_to_append_other_books(ledger, tmp_path):
    small_scenario(ledger)
    export_directory(ledger, tmp_path / "books", as_of=4)
    before = {p.name: p.read_bytes() for p in (tmp_path / "books").iterdir()}
    with Ledger.open(f"sqlite:///{tmp_path / 'other.db'}", clock=StepClock()) as other:
        fill_random(other, seed=3, operations=40)
        with pytest.raises(ValueError, match="not the same books"):
            export_directory(other, tmp_path / "books")
    assert {p.name: p.read_bytes() for p in (tmp_path / "books").iterdir()} == before  # nothing touched


def test_cli_export_and_bean_check(tmp_path):
    db = tmp_path / "books.db"
    with Ledger.open(f"sqlite:///{db}", clock=StepClock()) as ledger:
        small_scenario(ledger)
    out = tmp_path / "cli.beancount"
    run = subprocess.run([sys.executable, "-m", "agentbooks.cli", "export", "beancount", "--out", str(out),
                          "--database-url", f"sqlite:///{db}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    check = subprocess.run(["bean-check", str(out)], capture_output=True, text=True, timeout=120)
    assert (check.returncode, check.stdout + check.stderr) == (0, "")
    books = tmp_path / "monthly"
    cli = [sys.executable, "-m", "agentbooks.cli", "export", "beancount", "--monthly", "--out", str(books),
           "--database-url", f"sqlite:///{db}"]
    assert subprocess.run(cli + ["--as-of", "3"], capture_output=True, timeout=120).returncode == 0
    skipped = subprocess.run(cli + ["--since", "5"], capture_output=True, text=True, timeout=120)
    assert skipped.returncode == 2 and "up to seq 3, not 5" in skipped.stderr  # would leave a gap: refused
    assert subprocess.run(cli + ["--since", "3"], capture_output=True, timeout=120).returncode == 0
    check = subprocess.run(["bean-check", str(books / "main.beancount")], capture_output=True, text=True, timeout=120)
    assert (check.returncode, check.stdout + check.stderr) == (0, "")


def test_fava_opens_the_export_and_shows_the_balance_sheet(ledger, tmp_path):
    small_scenario(ledger)
    path = export_file(ledger, tmp_path / "books.beancount", title="fava check").path
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fava = subprocess.Popen([sys.executable, "-m", "fava.cli", "--host", "127.0.0.1", "--port", str(port), str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        page = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and fava.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/fava-check/balance_sheet/", timeout=5, follow_redirects=True)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert page is not None, fava.stderr.read(2000) if fava.poll() is not None else "fava did not answer"
        assert page.status_code == 200
        assert "Platform:Treasury" in page.text or "Treasury" in page.text
    finally:
        fava.terminate()
        try:
            fava.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fava.kill()
            fava.wait(timeout=10)


class HourlyClock:
    """Seven hours and a bit per write: a few hundred operations span months and cross many midnights."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 30, 20, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(hours=7, minutes=13, microseconds=1)
        return self.now


def test_months_of_books_export_incrementally_and_re_walk_offline(tmp_path):
    with Ledger.open(f"sqlite:///{tmp_path / 'books.db'}", clock=HourlyClock()) as ledger:
        fill_random(ledger, seed=7, operations=300)
        head_seq, head_hash = ledger.head()
        cuts = [head_seq // 3, 2 * head_seq // 3, head_seq]
        for cut in cuts:  # three runs of the same command, each appending what is new
            summary = export_directory(ledger, tmp_path / "books", as_of=cut)
            assert summary.last_seq == cut
            assert nonzero(beancount_balances(summary.path)) == ledger_balances(ledger, as_of=cut)
        single = export_file(ledger, tmp_path / "single.beancount")
        assert nonzero(beancount_balances(single.path)) == ledger_balances(ledger)
    months = sorted(p.stem for p in (tmp_path / "books").glob("2026-*.beancount"))
    assert len(months) >= 3, months
    dated = 0
    for month in months:  # each transaction sits in its own month, dated by its UTC day, exact time kept
        text = (tmp_path / "books" / f"{month}.beancount").read_text()
        for date, at in re.findall(r'^(\d{4}-\d{2}-\d{2}) \*.*\n(?:  .*\n)*?  at: "([^"]+)"', text, re.M):
            assert at.startswith(date + "T") and date.startswith(month)
            dated += 1
    assert dated == head_seq  # nothing lost or doubled by the three appends
    for path in (tmp_path / "books" / "main.beancount", single.path):
        offline = verify_export(path, expect_head=head_hash)
        assert (offline.violation_count, offline.last_seq, offline.head_hash) == (0, head_seq, head_hash)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), operations=st.integers(1, 120))
def test_generated_books_pass_bean_check_and_keep_the_identities(tmp_path_factory, seed, operations):
    """For any generated ledger: bean-check clean, beancount's balances = the ledger's, trial balance and
    balance sheet identities hold."""
    folder = tmp_path_factory.mktemp("gen")
    with Ledger.open("sqlite://", clock=StepClock()) as ledger:
        fill_random(ledger, seed, operations=operations)
        summary = export_file(ledger, folder / "books.beancount")
        assert nonzero(beancount_balances(summary.path)) == ledger_balances(ledger)
        assert all(build_report(ledger, "trial-balance").checks.values())
        sheet = build_report(ledger, "balance-sheet")
        assert all(sheet.checks.values()) and sheet.totals["amount"] == 0


def test_agents_names_are_account_metadata_and_payees(ledger, tmp_path):
    small_scenario(ledger)
    ledger.set_agent_profile(ALICE, display_name="research-bot", metadata={"team": "research", "tier": "gold"})
    text = export_file(ledger, tmp_path / "books.beancount").path.read_text()
    assert (f"open Liabilities:Agent:{ALICE}:Available USDC\n  agent: \"{ALICE}\"\n"
            '  display-name: "research-bot"\n  team: "research"\n  tier: "gold"\n') in text
    assert '* "research-bot" "deposit 10.000000 USDC agent research-bot (0x5aeda' in text
    assert f'* "{BOB}" "transfer 1.500000 USDC agent research-bot' in text  # the payee is who was paid
    entries, errors, _ = loader.load_file(str(tmp_path / "books.beancount"))
    assert errors == []
    opened = {e.account: e.meta for e in entries if type(e).__name__ == "Open"}
    assert opened[f"Liabilities:Agent:{ALICE}:Available"]["display-name"] == "research-bot"


def test_the_hash_chain_can_stay_out_of_favas_way_and_still_verifies(ledger, tmp_path):
    small_scenario(ledger)
    path = export_file(ledger, tmp_path / "books.beancount", chain="comments").path
    text = path.read_text()
    assert '\n  ; prev-hash: "' in text and '\n  prev-hash: "' not in text and '\n  kind: "deposit"' in text
    entries, errors, _ = loader.load_file(str(path))
    assert errors == [] and all("hash" not in e.meta for e in entries if type(e).__name__ == "Transaction")
    report = verify_export(path, expect_head=ledger.head()[1])
    assert (report.violation_count, report.transactions) == (0, ledger.head()[0])
    tampered = tmp_path / "tampered.beancount"
    tampered.write_text(text.replace("Assets:Platform:Treasury  10.000000 USDC", "Assets:Platform:Treasury  10.000001 USDC", 1))
    assert {v.code for v in verify_export(tampered).violations} >= {"hash_mismatch"}
