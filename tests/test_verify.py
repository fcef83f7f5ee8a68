"""verify catches tampering with the database and with an export, and names what it found."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
import subprocess
import sys
from pathlib import Path

import pytest

from agentbooks import Ledger
from agentbooks.export.beancount import export_file
from agentbooks.verify.database import verify_database
from agentbooks.verify.offline import verify_export
from conftest import ALICE, StepClock
from test_export_beancount import small_scenario

TREASURY = "Platform:Treasury"


@pytest.fixture
def books(tmp_path) -> Path:
    db = tmp_path / "books.db"
    with Ledger.open(f"sqlite:///{db}", clock=StepClock()) as ledger:
        small_scenario(ledger)
        ledger.hold(ALICE, "0.5", "h-open", expires_at=ledger.service.clock.now + timedelta(seconds=2))
    return db


def tamper_and_verify(db: Path, *statements: str):  # type: ignore[no-untyped-def]
    with sqlite3.connect(db) as conn:
        for sql in statements:
            conn.execute(sql)
    with Ledger.open(f"sqlite:///{db}") as ledger:
        return verify_database(ledger)


def found(report) -> set[tuple]:  # type: ignore[no-untyped-def]
    return {(v.code, v.seq, v.account) for v in report.violations}


def test_clean_books_verify_clean(books):
    with Ledger.open(f"sqlite:///{books}") as ledger:
        report = verify_database(ledger)
    assert report.clean and report.transactions == 9 and report.violations == []
    assert [h["reference"] for h in report.expired_holds] == ["h-open"]  # listed, not a violation


def test_an_edited_amount_is_caught_and_named(books):
    report = tamper_and_verify(books, "UPDATE postings SET amount_micros = amount_micros + 1 WHERE seq = 1 AND idx = 0")
    assert {("unbalanced_transaction", 1, None), ("hash_mismatch", 1, None),
            ("balance_cache_mismatch", None, TREASURY)} <= found(report)


def test_a_deleted_posting_is_caught(books):
    report = tamper_and_verify(books, "DELETE FROM postings WHERE seq = 6 AND idx = 1")
    assert {("unbalanced_transaction", 6, None), ("hash_mismatch", 6, None)} <= found(report)


def test_swapped_rows_are_caught(books):
    cols = "kind, occurred_at_us, agent, counterparty, amount_micros, reference, tx_hash, memo, metadata_json, prev_hash, hash, id"
    report = tamper_and_verify(
        books,
        f"CREATE TABLE t AS SELECT seq, {cols} FROM journal WHERE seq IN (6, 7)",
        "UPDATE journal SET id = 'x' || id WHERE seq IN (6, 7)",
        *[f"UPDATE journal SET {c} = (SELECT {c} FROM t WHERE t.seq = 13 - journal.seq) WHERE seq IN (6, 7)"
          for c in cols.split(", ")],
    )
    codes = found(report)
    assert ("chain_broken", 6, None) in codes or ("hash_mismatch", 6, None) in codes
    assert ("chain_broken", 7, None) in codes or ("hash_mismatch", 7, None) in codes


def test_a_deleted_journal_row_is_caught(books):
    report = tamper_and_verify(books, "DELETE FROM postings WHERE seq = 4", "DELETE FROM journal WHERE seq = 4")
    assert ("sequence_gap", 5, None) in found(report) and ("chain_broken", 5, None) in found(report)


def test_changed_caches_are_caught(books):
    report = tamper_and_verify(
        books,
        f"UPDATE balances SET balance_micros = balance_micros + 5 WHERE account = '{TREASURY}' AND stripe = 3",
        f"UPDATE agents SET total_in_micros = total_in_micros + 1 WHERE address = '{ALICE}'",
        "UPDATE holds SET remaining_micros = 0 WHERE reference = 'h-open'",
        "UPDATE journal_head SET last_seq = 3",
    )
    codes = {v.code for v in report.violations}
    assert {"balance_cache_mismatch", "agent_totals_mismatch", "hold_cache_mismatch", "head_mismatch"} <= codes
    assert not {"hash_mismatch", "chain_broken"} & codes  # the journal itself is intact


def test_cli_verify_exit_status(books):
    run = subprocess.run([sys.executable, "-m", "agentbooks.cli", "verify", "--json", "--database-url",
                          f"sqlite:///{books}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and '"clean": true' in run.stdout
    tamper_and_verify(books, "UPDATE postings SET amount_micros = 7 WHERE seq = 1 AND idx = 0")
    run = subprocess.run([sys.executable, "-m", "agentbooks.cli", "verify", "--json", "--database-url",
                          f"sqlite:///{books}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and '"hash_mismatch"' in run.stdout


@pytest.fixture
def export(books, tmp_path) -> tuple[Path, str]:
    with Ledger.open(f"sqlite:///{books}") as ledger:
        summary = export_file(ledger, tmp_path / "books.beancount")
    return summary.path, summary.head_hash


def test_offline_verifier_accepts_a_clean_export_and_its_published_head(export):
    path, head = export
    report = verify_export(path, expect_head=head)
    assert report.clean and report.transactions == 9


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_offline_verifier_catches_an_edited_amount(export):
    path, _ = export
    report = verify_export(edit(path, f"{TREASURY}  10.000000 USDC", f"{TREASURY}  10.000001 USDC"))
    assert {("unbalanced_transaction", 1, None), ("hash_mismatch", 1, None)} <= found(report)
    assert ("balance_assertion_failed", None, TREASURY) in found(report)


def test_offline_verifier_catches_an_edited_field_and_a_deleted_transaction(export):
    path, head = export
    edit(path, 'tx-hash: "0xout"', 'tx-hash: "0xattacker"')
    text = path.read_text()
    start = text.index('  seq: "6"')
    block_start = text.rfind("\n\n", 0, start) + 2
    block_end = text.index("\n\n", start) + 2
    path.write_text(text[:block_start] + text[block_end:])
    report = verify_export(path, expect_head=head)
    codes = found(report)
    assert ("hash_mismatch", 4, None) in codes  # the edited tx hash
    assert ("sequence_gap", 7, None) in codes and ("chain_broken", 7, None) in codes  # the deleted seq 6


def test_offline_verifier_compares_the_published_head(export):
    path, _ = export
    report = verify_export(path, expect_head="0" * 64)
    assert [v.code for v in report.violations] == ["head_mismatch"]
