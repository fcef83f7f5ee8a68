"""Reconciliation against a real local chain: every case a script meets, from the node's and an explorer's own output.

On an in-process EVM (eth-tester on py-evm) a 6-decimal ERC-20 and a
treasury contract that pays out in batches are deployed; agents deposit, the
treasury pays two agents in one transaction and one agent to its own
external wallet, an exchange sends USDC, another token and a zero-value
transfer arrive, and a reorg takes back two deposits the ledger had
credited, one of which is mined again at another block and log index. The
node's ``eth_getLogs`` response, a subscription's log lines (with the
``removed`` logs) and an explorer-style CSV go to ``reconcile`` as they are.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from agentbooks import Ledger
from agentbooks.reconcile.match import reconcile
from agentbooks.reconcile.runs import build_window, parse_treasury_balance, run_reconciliation
from agentbooks.reconcile.transfers import ReadOptions, read_transfers_text
from conftest import StepClock
from evm_support import TestChain, Wallet, compiled_token

PAYOUTS_SOURCE = Path(__file__).with_name("contracts") / "payouts.vy"


@lru_cache(maxsize=1)
def compiled_payouts() -> tuple[list[dict[str, Any]], str]:
    from vyper.compiler import compile_code

    out = compile_code(PAYOUTS_SOURCE.read_text(), output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


def lower(address: str) -> str:
    return address.lower()


@dataclass
class Scenario:
    chain_id: int
    token: str
    treasury: str
    agents: dict[str, str]
    ledger_ops: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    logs_response: dict[str, Any] = field(default_factory=dict)  # eth_getLogs as the node answered
    removed_logs: list[dict[str, Any]] = field(default_factory=list)  # what a subscription re-sends, removed
    block_times: dict[int, int] = field(default_factory=dict)
    head: int = 0
    late_block: int = 0  # the block of the last deposit, past finality at the head
    treasury_at: dict[int, int] = field(default_factory=dict)  # block -> on-chain balance (micro-units)
    txs: dict[str, str] = field(default_factory=dict)

    def record_into(self, ledger: Ledger) -> None:
        for op, args in self.ledger_ops:
            getattr(ledger, op)(**args)


def _logs_of(chain: TestChain, tx_hash: str) -> list[dict[str, Any]]:
    return [dict(log) for log in chain.w3.eth.get_transaction_receipt(tx_hash)["logs"]]


def _wire(log: dict[str, Any]) -> dict[str, Any]:
    """A log as a node sends it over JSON-RPC: hex quantities, hex data."""
    def hexed(v: Any) -> Any:
        return v.to_0x_hex() if hasattr(v, "to_0x_hex") else v
    return {"address": log["address"], "topics": [hexed(t) for t in log["topics"]], "data": hexed(log["data"]),
            "blockNumber": hex(log["blockNumber"]), "blockHash": hexed(log["blockHash"]),
            "transactionHash": hexed(log["transactionHash"]), "transactionIndex": hex(log["transactionIndex"]),
            "logIndex": hex(log["logIndex"]), "removed": bool(log.get("removed", False))}


def _signed_transfer(chain: TestChain, token: Any, sender: Wallet, to: str, units: int) -> bytes:
    fn = token.functions.transfer(Web3.to_checksum_address(to), units)
    tx = fn.build_transaction({"from": sender.address, "gas": 100_000,
                               "nonce": chain.w3.eth.get_transaction_count(sender.address)})
    return bytes(Account.sign_transaction(tx, sender.key).raw_transaction)


@lru_cache(maxsize=1)
def scenario() -> Scenario:
    chain = TestChain()
    w3 = chain.w3
    abi, bytecode = compiled_payouts()
    deployed = w3.eth.contract(abi=abi, bytecode=bytecode).constructor().transact({"from": chain.minter})
    vault = w3.eth.contract(address=w3.eth.wait_for_transaction_receipt(deployed)["contractAddress"], abi=abi)
    token_abi, token_code = compiled_token()
    other_tx = w3.eth.contract(abi=token_abi, bytecode=token_code).constructor().transact({"from": chain.minter})
    other = w3.eth.contract(address=w3.eth.wait_for_transaction_receipt(other_tx)["contractAddress"], abi=token_abi)
    alice, bob, carol, exchange = (chain.new_wallet() for _ in range(4))
    alice_external = chain.new_wallet().address  # Alice's own wallet elsewhere: a payout destination
    s = Scenario(chain.chain_id, lower(chain.token.address), lower(vault.address),
                 {"alice": lower(alice.address), "bob": lower(bob.address), "carol": lower(carol.address),
                  "exchange": lower(exchange.address), "alice_external": lower(alice_external)})
    for wallet in (alice, bob, carol, exchange):
        chain.mint(wallet.address, 1_000_000_000)
    other.functions.mint(alice.address, 5_000_000).transact({"from": chain.minter})

    def deposit(name: str, wallet: Wallet, units: int) -> str:
        tx_hash, _ = chain.send(wallet, vault.address, units)
        (log,) = _logs_of(chain, tx_hash)
        s.ledger_ops.append(("deposit", {"agent": wallet.address, "amount": str(units / 10**6), "tx_hash": tx_hash,
                                         "chain_id": s.chain_id, "log_index": log["logIndex"],
                                         "block_number": log["blockNumber"],
                                         "block_hash": log["blockHash"].to_0x_hex()}))
        s.txs[name] = tx_hash
        return tx_hash

    deposit("alice", alice, 100_000_000)
    deposit("bob", bob, 50_000_000)
    s.txs["exchange"], _ = chain.send(exchange, vault.address, 30_000_000)  # no agent: never credited
    other_raw = _signed_transfer(chain, other, alice, vault.address, 5_000_000)  # another 6-decimal token
    s.txs["other"] = w3.eth.send_raw_transaction(other_raw).to_0x_hex()
    s.txs["zero"], _ = chain.send(exchange, vault.address, 0)  # address poisoning

    batch = vault.functions.pay(chain.token.address, [alice.address, bob.address], [10_000_000, 20_000_000])
    s.txs["batch"] = batch.transact({"from": chain.minter}).to_0x_hex()
    for log, agent, amount in zip(_logs_of(chain, s.txs["batch"]), (alice, bob), ("10", "20")):
        s.ledger_ops.append(("withdraw", {"agent": agent.address, "amount": amount,
                                          "tx_hash": s.txs["batch"], "chain_id": s.chain_id,
                                          "log_index": log["logIndex"], "block_number": log["blockNumber"]}))
    own = vault.functions.pay(chain.token.address, [alice_external], [7_000_000])
    s.txs["own"] = own.transact({"from": chain.minter}).to_0x_hex()
    s.ledger_ops.append(("withdraw", {"agent": alice.address, "amount": "7", "tx_hash": s.txs["own"],
                                      "chain_id": s.chain_id, "destination": alice_external}))

    # A reorg: two credited deposits are taken back; Alice's is mined again later, after another transfer.
    fork = chain.snapshot()
    deposit("carol_reorged", carol, 40_000_000)
    remined_raw = _signed_transfer(chain, chain.token, alice, vault.address, 25_000_000)
    s.txs["alice_remined"] = w3.eth.send_raw_transaction(remined_raw).to_0x_hex()
    (log,) = _logs_of(chain, s.txs["alice_remined"])
    s.ledger_ops.append(("deposit", {"agent": alice.address, "amount": "25", "tx_hash": s.txs["alice_remined"],
                                     "chain_id": s.chain_id, "log_index": log["logIndex"],
                                     "block_number": log["blockNumber"], "block_hash": log["blockHash"].to_0x_hex()}))
    for name in ("carol_reorged", "alice_remined"):
        s.removed_logs += [{**_wire(log), "removed": True} for log in _logs_of(chain, s.txs[name])]
    chain.tester.revert_to_snapshot(fork)
    chain.tester.time_travel(w3.eth.get_block("latest")["timestamp"] + 1000)
    chain.mine(2)  # the other branch is longer: the re-mined deposit lands at another height
    chain.tester.disable_auto_mine_transactions()
    w3.eth.send_raw_transaction(_signed_transfer(chain, chain.token, exchange, "0x" + "22" * 20, 1))  # first in block
    w3.eth.send_raw_transaction(remined_raw)
    chain.tester.mine_blocks(1)
    chain.tester.enable_auto_mine_transactions()
    chain.mine(3)
    cut = chain.head
    deposit("bob_late", bob, 15_000_000)  # after the finality cut
    s.late_block = chain.head
    chain.mine(1)
    s.head = chain.head

    s.logs_response = chain.w3.manager._make_request("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest"}])
    s.logs_response = json.loads(json.dumps(s.logs_response, default=dict))
    s.block_times = {n: w3.eth.get_block(n)["timestamp"] for n in range(s.head + 1)}
    for block in (cut, s.head):
        s.treasury_at[block] = chain.token.functions.balanceOf(vault.address).call(block_identifier=block)
    return s


def subscription_lines(s: Scenario) -> str:
    """The logs as a subscription delivers them: each reorged log as it came, then again removed, then the rest."""
    live = [_wire({**log, "topics": log["topics"]}) for log in s.logs_response["result"]]
    delivered = [{**log, "removed": False} for log in s.removed_logs]
    return "".join(json.dumps(line) + "\n" for line in delivered + s.removed_logs + live)


def explorer_csv(s: Scenario) -> str:
    """An Etherscan-style token-transfer export of the canonical logs (no log index, thousands separators)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(["Transaction Hash", "Blockno", "UnixTimestamp", "DateTime (UTC)", "From", "To", "TokenValue",
                     "USDValueDayOfTx", "ContractAddress", "TokenName", "TokenSymbol"])
    for log in s.logs_response["result"]:
        if len(log["topics"]) != 3:
            continue
        at = s.block_times[log["blockNumber"]]
        value = int(log["data"], 16)
        writer.writerow([log["transactionHash"], log["blockNumber"], at,
                         datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                         "0x" + log["topics"][1][-40:], "0x" + log["topics"][2][-40:], f"{value / 10**6:,.6f}",
                         "$0.00", log["address"], "Test USD Coin", "USDC"])
    return out.getvalue()


@pytest.fixture
def books(any_url):
    with Ledger.open(any_url, clock=StepClock()) as ledger:
        scenario().record_into(ledger)
        yield ledger


def run(books: Ledger, text: str, **window: Any) -> dict[str, Any]:
    s = scenario()
    options = ReadOptions(token=s.token, chain_id=s.chain_id)
    balances = [parse_treasury_balance(b) for b in window.pop("balances", [])]
    _, body = run_reconciliation(books, read_transfers_text(text, options), [s.treasury],
                                 window=build_window(**window), balances=balances, digest="test")
    return body


def by_class(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [i for i in body["matched"] + body["differences"] + body["ignored"] if i["class"] == kind]


def test_the_nodes_logs_and_a_subscriptions_lines_give_every_case_its_class(books):
    s = scenario()
    for text, says_removed in ((json.dumps(s.logs_response), False), (subscription_lines(s), True)):
        body = run(books, text, confirmations=3, head_block=s.head)
        counts = {k: v for k, v in body["counts"].items() if v}
        assert body["window"]["toBlock"] == s.head - 2
        # Deposits of Alice and Bob, the batched payout's two logs, the payout to Alice's own wallet.
        assert counts["matched"] == 5, body
        batch = [i for i in by_class(body, "matched") if i["chain"]["txHash"] == s.txs["batch"]]
        assert sorted((i["ledger"]["logIndex"], i["chain"]["logIndex"]) for i in batch) == [(0, 0), (1, 1)]
        assert [i["chain"]["to"] for i in by_class(body, "matched") if i["chain"]["txHash"] == s.txs["own"]] \
            == [s.agents["alice_external"]]
        (remined,) = by_class(body, "relocated")
        assert remined["chain"]["txHash"] == s.txs["alice_remined"]
        # (eth-tester numbers logs within their transaction, so the log index stays 0 here)
        assert set(remined["differs"]) == {"blockNumber", "blockHash"}
        (stranger,) = by_class(body, "unknown_sender")
        assert stranger["chain"]["from"] == s.agents["exchange"] and stranger["chain"]["amount"] == "30.000000"
        assert [i["chain"]["txHash"] for i in by_class(body, "other_token")] == [s.txs["other"]]
        assert [i["chain"]["txHash"] for i in by_class(body, "ignored_zero")] == [s.txs["zero"]]
        late = [i for i in body["matched"] + body["differences"]
                if (i.get("ledger") or i["chain"])["txHash"] == s.txs["bob_late"]]
        assert late == []  # past the finality cut, on both sides
        assert "chain_only" not in counts and "agent_mismatch" not in counts and "amount_mismatch" not in counts
        if not says_removed:  # the node's answer no longer has the reorged log at all
            (gone,) = by_class(body, "ledger_only")
            assert gone["ledger"]["txHash"] == s.txs["carol_reorged"] and "reorged" not in counts
        else:  # the subscription said it was removed
            (gone,) = by_class(body, "reorged")
            assert gone["ledger"]["txHash"] == s.txs["carol_reorged"] and gone["chain"]["removed"]
            assert counts["removed"] == 1 and "ledger_only" not in counts  # the re-mined deposit's first log
        assert not body["clean"]


def test_the_treasury_control_is_independent_of_the_file(books):
    s = scenario()
    cut = s.head - 2
    logs = json.dumps(s.logs_response)
    body = run(books, logs, to_block=cut, balances=[f"{s.treasury}={s.treasury_at[cut] / 10**6}@{cut}"])
    control = body["treasury"]["control"]
    # The ledger holds Carol's reorged 40 that the chain does not; the exchange's 30 is on chain only.
    assert control["difference"] == "10.000000"
    assert control["unexplained"] == "0.000000"
    page_lost = json.dumps({**s.logs_response, "result": [log for log in s.logs_response["result"]
                                                          if log["transactionHash"] != s.txs["exchange"]]})
    body = run(books, page_lost, to_block=cut, balances=[f"{s.treasury}={s.treasury_at[cut] / 10**6}@{cut}"])
    assert body["treasury"]["control"]["unexplained"] == "-30.000000"  # a lost page shows, it is not hidden
    assert not body["clean"]


def test_an_explorer_export_without_log_indexes_matches_the_same_transfers(books):
    s = scenario()
    body = run(books, explorer_csv(s), to_block=s.head - 2)
    counts = {k: v for k, v in body["counts"].items() if v}
    assert counts["matched"] == 5 and counts["unknown_sender"] == 1 and counts["ignored_zero"] == 1
    assert counts["relocated"] == 1 and counts["ledger_only"] == 1  # an explorer cannot say what a reorg removed
    assert counts["other_token"] == 1


def test_windows_by_block_split_the_books_where_the_chain_splits(books):
    s = scenario()
    batch_block = next(log["blockNumber"] for log in s.logs_response["result"]
                       if log["transactionHash"] == s.txs["batch"])
    logs = json.dumps(s.logs_response)
    before = run(books, logs, to_block=batch_block - 1)
    after = run(books, logs, from_block=batch_block, to_block=s.head - 2)
    assert {i["ledger"]["kind"] for i in before["matched"]} == {"deposit"}
    assert sorted(i["ledger"]["kind"] for i in after["matched"] if i["class"] == "matched") == ["withdraw"] * 3
    assert before["counts"]["ledger_only"] == 0 and after["counts"]["chain_only"] == 0


def test_the_same_log_twice_is_counted_once(books):
    s = scenario()
    result = s.logs_response["result"]
    once = run(books, json.dumps(s.logs_response), to_block=s.head - 2)
    twice = run(books, json.dumps({**s.logs_response, "result": result + result}), to_block=s.head - 2)
    related = sum(once["counts"][k] for k in ("matched", "relocated", "unknown_sender", "other_token",
                                              "ignored_zero"))
    assert twice["counts"]["duplicate_input"] == related
    assert {k: v for k, v in twice["counts"].items() if k != "duplicate_input"} == \
        {k: v for k, v in once["counts"].items() if k != "duplicate_input"}
    assert twice["treasury"] == once["treasury"]


def test_the_cli_reads_the_nodes_file_as_it_is_and_records_runs(books, tmp_path):
    s = scenario()
    url = str(books.service.engine.url.render_as_string(hide_password=False))
    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps(s.logs_response))

    def cli(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentbooks.cli", "reconcile", "--transfers", str(logs),
                               "--treasury", s.treasury, "--token", s.token, "--chain-id", str(s.chain_id),
                               "--json", "--database-url", url, *extra], capture_output=True, text=True, timeout=300)

    first = cli("--confirmations", "3", "--head-block", str(s.head), "--record")
    assert first.returncode == 1, first.stderr  # the reorged deposit and the exchange's money need a person
    assert json.loads(first.stdout)["recordedRun"] >= 1
    second = cli("--confirmations", "3", "--head-block", str(s.head + 5))  # the late deposit is final now
    body = json.loads(second.stdout)
    assert body["sinceLastRun"]["sameInputs"] is True
    assert body["sinceLastRun"]["new"] == [] and body["window"]["toBlock"] == s.head + 3
    bad = cli("--from-block", "9", "--to-block", "3")
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"] == "invalid_argument"


def test_the_api_takes_the_same_options_in_camel_case(books):
    from fastapi.testclient import TestClient

    from agentbooks.api.app import create_app

    s = scenario()
    app = create_app(admin_secret="s3cret", ledger=books)
    with TestClient(app) as client:
        answer = client.post("/v1/admin/reconcile", headers={"X-Admin-Secret": "s3cret"}, json={
            "transfers": s.logs_response["result"], "treasury": [s.treasury], "token": s.token,
            "chainId": s.chain_id, "confirmations": 3, "headBlock": s.head})
        assert answer.status_code == 200, answer.text
        assert answer.json()["counts"]["matched"] == 5
        bad = client.post("/v1/admin/reconcile", headers={"X-Admin-Secret": "s3cret"}, json={
            "transfers": [{"topics": []}], "treasury": [s.treasury]})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_transfer_file"
