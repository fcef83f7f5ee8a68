"""The whole on-chain round trip through the HTTP API, then the books checked against the chain itself.

Alice sends USDC to the treasury on chain; the watcher credits it; she asks
for a payout and a withdrawal over HTTP; the executor sends both from the
treasury's hot wallet. Afterwards ``verify`` is clean and ``reconcile`` of the
chain's own Transfer logs against the books finds every transfer matched.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient

from agentbooks import Ledger
from agentbooks.api import create_app
from agentbooks.api_keys import Role, create_key
from agentbooks.chain.executor import HotWallet, PayoutExecutor
from agentbooks.chain.watcher import DepositWatcher, WatchConfig
from agentbooks.reconcile.match import reconcile
from agentbooks.reconcile.transfers import parse_transfer
from agentbooks.verify.database import verify_database
from evm_support import TestChain

CONFIRMATIONS = 2


def chain_transfers(chain: TestChain) -> list:
    """Every Transfer log of the token, as reconcile reads transfer records."""
    logs = chain.token.events.Transfer().get_logs(from_block=0)
    return [parse_transfer(i + 1, {
        "chain_id": chain.chain_id, "tx_hash": log["transactionHash"].to_0x_hex(), "log_index": log["logIndex"],
        "from": log["args"]["sender"].lower(), "to": log["args"]["receiver"].lower(),
        "amount_micros": log["args"]["value"], "block_number": log["blockNumber"],
        "timestamp": chain.w3.eth.get_block(log["blockNumber"])["timestamp"]}) for i, log in enumerate(logs)]


def test_deposit_payout_and_withdrawal_round_trip(tmp_path):
    chain = TestChain()
    treasury = chain.new_wallet()  # the treasury address is the hot wallet too
    alice = chain.new_wallet()
    chain.mint(alice.address, 20_000_000)
    chain.send(alice, treasury.address, 20_000_000)
    chain.mine(CONFIRMATIONS)
    shop = "0x" + "5b" * 20

    with Ledger.open(f"sqlite:///{tmp_path / 'books.db'}") as ledger:
        watcher = DepositWatcher(ledger.service, chain.w3, WatchConfig(
            token=chain.token.address, treasuries=(treasury.address,), confirmations=CONFIRMATIONS))
        assert len(watcher.poll().credited) == 1
        client = TestClient(create_app(ledger=ledger, payouts=True))
        auth = {"Authorization": f"Bearer {create_key(ledger.service, Role.AGENT, alice.address.lower()).secret}"}
        base = f"/v1/agents/{alice.address.lower()}"

        paid = client.post(f"{base}/payouts", json={"to": shop, "amount": "5", "clientRef": "invoice-7"}, headers=auth)
        assert paid.status_code == 202, paid.text
        assert paid.json()["payout"]["state"] == "held"
        repeat = client.post(f"{base}/payouts", json={"to": shop, "amount": "5", "clientRef": "invoice-7"}, headers=auth)
        assert repeat.status_code == 202 and repeat.headers.get("Idempotent-Replay") == "true"
        bad = client.post(f"{base}/payouts", json={"to": "nowhere", "amount": "5", "clientRef": "x"}, headers=auth)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_address"
        withdrawn = client.post(f"{base}/withdraw", json={"amount": "3"}, headers={**auth, "Idempotency-Key": "w-1"})
        assert withdrawn.status_code == 202, withdrawn.text

        executor = PayoutExecutor(ledger.service, chain.w3, chain.token.address, HotWallet(treasury.key),
                                  confirmations=CONFIRMATIONS)
        executor.step()
        chain.mine(CONFIRMATIONS)
        assert executor.step() == {"confirmed": 2}
        status = client.get(f"{base}/payouts/invoice-7", headers=auth).json()["payout"]
        assert status["state"] == "confirmed" and status["txHash"].startswith("0x")
        assert client.get(f"{base}/payouts/nope", headers=auth).status_code == 404

        assert chain.balance(shop) == 5_000_000
        assert chain.balance(alice.address) == 3_000_000  # the withdrawal went to her own address
        assert ledger.get_balance(alice.address).available == Decimal("12")
        assert executor.metrics.payouts.labels("confirmed")._value.get() == 2

        report = verify_database(ledger)
        assert report.violations == []
        result = reconcile(ledger, chain_transfers(chain), {treasury.address.lower()})
        matched = [(i.direction, i.chain.amount_micros) for i in result.items if i.kind == "matched"]
        assert ("in", 20_000_000) in matched and ("out", 3_000_000) in matched
        # The payout to the shop: matched on (tx hash, amount). Main's reconcile still compares a payout's
        # recipient with the agent; issue 14's compares it with the destination the confirmation records.
        others = [i for i in result.items if i.kind != "matched"]
        assert all(i.kind == "agent_mismatch" and i.chain.recipient == shop and i.chain.amount_micros == 5_000_000
                   for i in others), [i.to_dict() for i in others]
        assert len(result.items) == 3 and result.unexplained_micros == 0
