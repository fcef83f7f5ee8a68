"""Reconciliation against on-chain transfers: planted discrepancies of every kind, each found exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentbooks import Ledger
from agentbooks.reconcile.match import reconcile
from agentbooks.reconcile.transfers import ReadOptions, TransferFileError, read_transfers
from conftest import ALICE, BOB, CAROL, StepClock

TREASURY = "0x" + "7e" * 20
BASE = 8453


def chain(tx: str, log: int, sender: str, to: str, amount: str, block: int) -> dict:
    return {"chain_id": BASE, "tx_hash": tx, "log_index": log, "from": sender, "to": to, "amount": amount,
            "block_number": block, "timestamp": f"2026-01-01T00:{block:02d}:00Z"}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def books(tmp_path):
    with Ledger.open(f"sqlite:///{tmp_path / 'books.db'}", clock=StepClock()) as ledger:
        ledger.deposit(ALICE, "100", "0xaa", chain_id=BASE, log_index=0)
        ledger.deposit(BOB, "50", "0xaa", chain_id=BASE, log_index=1)  # two transfers in one transaction
        ledger.withdraw(ALICE, "10", "0xbb")
        ledger.hold(BOB, "5", "payout-1")
        ledger.confirm_hold(BOB, "5", "payout-1", tx_hash="0xcc")
        ledger.spend(ALICE, "1", "sk")  # moves the treasury, in no transfer file: explained as "other"
        yield ledger


CLEAN = [
    chain("0xaa", 0, ALICE, TREASURY, "100", 1),
    chain("0xaa", 1, BOB, TREASURY, "50", 1),
    chain("0xbb", 0, TREASURY, ALICE, "10", 2),
    chain("0xcc", 0, TREASURY, BOB, "5", 3),
    chain("0xee", 0, CAROL, BOB, "3", 4),  # not the platform's: unrelated
]


def test_a_clean_scenario_reports_clean(books):
    path = write_jsonl(Path(books.service.engine.url.database).with_suffix(".jsonl"), CLEAN)
    result = reconcile(books, read_transfers(path), {TREASURY})
    body = result.to_dict()
    assert result.clean, body
    assert body["counts"]["matched"] == 4 and body["unrelatedTransfers"] == 1
    assert body["treasury"]["flowDifference"] == "0.000000"  # the spend moves no chain transfer
    assert body["treasury"]["unexplained"] == "0.000000"


def test_every_kind_of_discrepancy_is_found_exactly_once(books, tmp_path):
    books.deposit(CAROL, "7", "0xdd", chain_id=BASE, log_index=0)  # in the ledger, not on chain
    books.deposit(ALICE, "100", "0xaa", log_index=5)  # the 0xaa/0 transfer credited a second time
    planted = [
        chain("0xaa", 0, ALICE, TREASURY, "100", 1),
        chain("0xaa", 1, CAROL, TREASURY, "50", 1),  # agent mismatch: the ledger credited Bob
        chain("0xbb", 0, TREASURY, ALICE, "10.5", 2),  # amount mismatch
        chain("0xcc", 0, TREASURY, BOB, "5", 3),
        chain("0xff", 0, BOB, TREASURY, "9", 5),  # on chain, never credited
    ]
    result = reconcile(books, read_transfers(write_jsonl(tmp_path / "t.jsonl", planted)), {TREASURY})
    body = result.to_dict()
    assert {k: v for k, v in body["counts"].items() if v} == {
        "matched": 2, "amount_mismatch": 1, "agent_mismatch": 1, "ledger_only": 1, "chain_only": 1, "duplicate": 1}
    by_class = {d["class"]: d for d in body["differences"]}
    assert by_class["ledger_only"]["ledger"]["txHash"] == "0xdd"
    assert by_class["chain_only"]["chain"]["txHash"] == "0xff"
    assert by_class["amount_mismatch"]["chain"]["txHash"] == "0xbb"
    assert by_class["agent_mismatch"]["ledger"]["agent"] == BOB
    assert by_class["duplicate"]["ledger"]["txHash"] == "0xaa"
    assert body["treasury"]["unexplained"] == "0.000000" and not result.clean


def test_a_reversed_deposit_is_not_a_discrepancy(books, tmp_path):
    wrong = books.deposit(CAROL, "3", "0x99", chain_id=BASE)
    books.reverse(wrong.id, "test credit")
    result = reconcile(books, read_transfers(write_jsonl(tmp_path / "t.jsonl", CLEAN)), {TREASURY})
    assert result.clean, result.to_dict()


def test_csv_with_amount_in_micro_units(books, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("chain_id,tx_hash,log_index,from,to,amount_micros,block_number,timestamp\n" + "".join(
        f"{r['chain_id']},{r['tx_hash']},{r['log_index']},{r['from']},{r['to']},"
        f"{int(r['amount']) * 1_000_000},{r['block_number']},1767225600\n"
        for r in CLEAN))
    assert reconcile(books, read_transfers(path), {TREASURY}).clean


@pytest.mark.parametrize("line, problem", [
    ('{"chain_id": 1}', "missing field"),
    ("not json", "not JSON"),
    (json.dumps({**chain("0x1", 0, ALICE, TREASURY, "1", 1), "amount_micros": 5}), "exactly one of"),
    (json.dumps(chain("0x1", 0, ALICE, TREASURY, "1.0000001", 1)), "amount"),
    (json.dumps(chain("0x1", 0, "0xnope", TREASURY, "1", 1)), "from"),
])
def test_a_malformed_line_is_named_and_nothing_applied(tmp_path, line, problem):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(CLEAN[0]) + "\n" + json.dumps(CLEAN[1]) + "\n" + line + "\n")
    with pytest.raises(TransferFileError) as raised:
        read_transfers(path)
    assert raised.value.line == 3 and problem in raised.value.message


def test_cli_exit_status(books, tmp_path):
    url = f"sqlite:///{books.service.engine.url.database}"
    good = write_jsonl(tmp_path / "good.jsonl", CLEAN)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(CLEAN[0]) + "\n{broken\n")
    short = write_jsonl(tmp_path / "short.jsonl", CLEAN[:2])

    def run(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentbooks.cli", "reconcile", "--transfers", str(path),
                               "--treasury", TREASURY, "--json", "--database-url", url],
                              capture_output=True, text=True, timeout=120)

    assert run(good).returncode == 0
    differences = run(short)
    assert differences.returncode == 1 and json.loads(differences.stdout)["counts"]["ledger_only"] == 2
    malformed = run(bad)
    assert malformed.returncode == 2  # under --json the error is JSON on stdout
    assert json.loads(malformed.stdout)["error"] == "invalid_transfer_file" and "line 2" in malformed.stdout


TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
USDC = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"


def log(tx: str, index: int, sender: str, to: str, micros: int, block: int, **extra) -> dict:
    """A log object as a node sends it: hex quantities, padded topics."""
    pad = lambda a: "0x" + "0" * 24 + a[2:]  # noqa: E731
    return {"address": USDC, "topics": [TRANSFER_TOPIC, pad(sender), pad(to)], "data": f"0x{micros:064x}",
            "blockNumber": hex(block), "blockHash": "0x" + f"{block:02x}" * 32, "transactionHash": tx,
            "transactionIndex": "0x0", "logIndex": hex(index), "removed": False, **extra}


def test_a_nodes_hex_logs_are_read_as_the_same_transfers(books, tmp_path):
    logs = [log("0xaa", 0, ALICE, TREASURY, 100_000_000, 1), log("0xaa", 1, BOB, TREASURY, 50_000_000, 1),
            log("0xbb", 0, TREASURY, ALICE, 10_000_000, 2), log("0xcc", 0, TREASURY, BOB, 5_000_000, 3)]
    path = tmp_path / "logs.json"
    for text in (json.dumps({"jsonrpc": "2.0", "id": 1, "result": logs}), json.dumps(logs),
                 "".join(json.dumps(entry) + "\n" for entry in logs)):
        path.write_text(text)
        transfers = read_transfers(path, ReadOptions(token=USDC, chain_id=BASE))
        assert [(t.tx_hash, t.log_index, t.amount_micros) for t in transfers] == [
            ("0xaa", 0, 100_000_000), ("0xaa", 1, 50_000_000), ("0xbb", 0, 10_000_000), ("0xcc", 0, 5_000_000)]
        assert reconcile(books, transfers, {TREASURY}).clean


def test_a_node_error_answer_is_bad_input_not_an_empty_chain(tmp_path):
    path = tmp_path / "logs.json"
    path.write_text(json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "too many logs"}}))
    with pytest.raises(TransferFileError, match="too many logs"):
        read_transfers(path)


def test_an_explorer_export_reads_thousands_separators(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('"Transaction Hash","Blockno","UnixTimestamp","DateTime (UTC)","From","To","TokenValue",'
                    '"USDValueDayOfTx","ContractAddress","TokenName","TokenSymbol"\n'
                    f'"0xaa","7","1767225600","2026-01-01 00:00:00","{ALICE}","{TREASURY}","1,234,567.5",'
                    f'"$1,234,567.50","{USDC}","USD Coin","USDC"\n')
    (t,) = read_transfers(path, ReadOptions(token=USDC, chain_id=BASE))
    assert (t.amount_micros, t.log_index, t.block_number, t.chain_id) == (1_234_567_500_000, None, 7, BASE)


def test_a_deposit_recorded_with_log_index_zero_is_linked_not_split(tmp_path):
    with Ledger.open(f"sqlite:///{tmp_path / 'b.db'}", clock=StepClock()) as ledger:
        ledger.deposit(ALICE, "100", "0xaa", chain_id=BASE)  # log index not given: 0
        body = reconcile(ledger, read_transfers(write_jsonl(tmp_path / "t.jsonl", [
            chain("0xaa", 3, ALICE, TREASURY, "100", 1)])), {TREASURY}).to_dict()
    (linked,) = body["matched"]
    assert linked["class"] == "relocated" and linked["differs"] == {"logIndex": [0, 3]}
    assert body["differences"] == [] and body["clean"]
