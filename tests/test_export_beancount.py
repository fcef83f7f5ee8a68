"""The beancount export: bean-check accepts it, and beancount's own arithmetic agrees with the ledger."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from beancount import loader
from beancount.core import realization

from agentbooks import Ledger
from agentbooks.export.beancount import export_directory, export_file
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
            out[node.account] = position.number
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
        fava.wait(timeout=15)
