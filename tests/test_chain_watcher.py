"""The deposit watcher on a real (in-process) EVM: confirmed Transfer logs to the treasury credited once.

Each test is a small story on chain: a sender's USDC reaches the treasury,
blocks are mined on top (or the chain is reorganised), the watcher polls, and
the books say what an accountant expects. ``verify`` is clean after each.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from agentbooks import Ledger
from agentbooks.chain.watcher import DepositWatcher, WatchConfig
from agentbooks.domain.accounts import SUSPENSE, TREASURY
from agentbooks.verify.database import verify_database
from evm_support import TestChain

CONFIRMATIONS = 3


@pytest.fixture
def chain() -> TestChain:
    return TestChain()


@pytest.fixture
def treasury(chain) -> str:
    return chain.new_wallet().address.lower()


def watcher(ledger: Ledger, chain: TestChain, treasury: str, **options) -> DepositWatcher:
    config = WatchConfig(token=chain.token.address, treasuries=(treasury,), confirmations=CONFIRMATIONS,
                         page_size=options.pop("page_size", 4), **options)
    return DepositWatcher(ledger.service, chain.w3, config)


def funded_sender(chain: TestChain, units: int = 50_000_000):
    sender = chain.new_wallet()
    chain.mint(sender.address, units)
    return sender


def assert_clean(ledger: Ledger) -> None:
    report = verify_database(ledger)
    assert report.violations == [] and report.transactions > 0


def test_a_deposit_is_credited_once_it_has_n_confirmations(any_ledger, chain, treasury):
    alice = funded_sender(chain)
    tx_hash, block = chain.send(alice, treasury, 12_500_000)  # 12.5 USDC
    w = watcher(any_ledger, chain, treasury)

    chain.mine(CONFIRMATIONS - 1)  # not yet: N-1 blocks on top
    assert w.poll().credited == []
    assert any_ledger.get_balance(alice.address).available == 0

    chain.mine(1)
    report = w.poll()
    assert [(t.kind.value, t.tx_hash, t.amount_micros) for t in report.credited] == [("deposit", tx_hash, 12_500_000)]
    assert any_ledger.get_balance(alice.address).available == Decimal("12.5")
    assert report.checkpoint[0] == chain.head - CONFIRMATIONS

    chain.mine(10)
    assert w.poll().credited == []  # polled again: nothing new
    assert any_ledger.get_balance(alice.address).available == Decimal("12.5")
    assert w.metrics.deposits_credited.labels("agent")._value.get() == 1
    assert w.metrics.watcher_lag._value.get() == CONFIRMATIONS
    assert_clean(any_ledger)


def test_a_restart_and_a_second_watcher_credit_nothing_twice(any_url, chain, treasury):
    alice, bob = funded_sender(chain), funded_sender(chain)
    for _ in range(3):
        chain.send(alice, treasury, 1_000_000)
        chain.send(bob, treasury, 2_000_000)
    chain.mine(CONFIRMATIONS)
    with Ledger.open(any_url) as first, Ledger.open(any_url) as second:
        a, b = watcher(first, chain, treasury), watcher(second, chain, treasury)
        reports = []
        threads = [threading.Thread(target=lambda w=w: reports.append(w.poll())) for w in (a, b)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        restarted = watcher(first, chain, treasury)
        assert restarted.poll().credited == []
        assert sum(len(r.credited) for r in reports) == 6
        assert first.get_balance(alice.address).available == Decimal("3")
        assert first.get_balance(bob.address).available == Decimal("6")
        assert first.get_account_balance(TREASURY) == Decimal("9")
        assert_clean(first)


def test_a_reorg_shallower_than_n_credits_only_the_canonical_log(any_ledger, chain, treasury):
    alice, bob = funded_sender(chain), funded_sender(chain)
    w = watcher(any_ledger, chain, treasury)
    fork = chain.snapshot()
    chain.send(alice, treasury, 5_000_000)  # on the branch that will be dropped
    w.poll()  # sees it, but it is not confirmed
    chain.reorg(fork, new_blocks=0)
    chain.send(bob, treasury, 7_000_000)  # the canonical branch pays from bob instead
    chain.mine(CONFIRMATIONS + 2)
    report = w.poll()
    assert [t.agent for t in report.credited] == [bob.address.lower()]
    assert any_ledger.get_balance(alice.address).available == 0
    assert any_ledger.get_balance(bob.address).available == Decimal("7")
    assert_clean(any_ledger)


def test_a_reorg_deeper_than_n_reverses_the_credited_deposit(any_ledger, chain, treasury):
    alice = funded_sender(chain)
    w = watcher(any_ledger, chain, treasury)
    fork = chain.snapshot()
    tx_hash, _ = chain.send(alice, treasury, 5_000_000)
    chain.mine(CONFIRMATIONS)
    assert len(w.poll().credited) == 1
    assert any_ledger.get_balance(alice.address).available == Decimal("5")

    chain.reorg(fork, new_blocks=CONFIRMATIONS + 3)  # a longer branch without alice's transfer
    report = w.poll()
    assert report.rewound
    assert [(t.kind.value, t.amount_micros) for t in report.reversed] == [("reversal", 5_000_000)]
    assert report.credited == []
    assert any_ledger.get_balance(alice.address).available == 0
    assert any_ledger.get_account_balance(TREASURY) == 0
    assert w.metrics.deposits_reversed.labels("reversed")._value.get() == 1
    assert w.poll().reversed == []  # reported once
    assert_clean(any_ledger)


def test_a_transfer_re_mined_in_another_block_after_a_deep_reorg_is_reversed_and_credited_again(any_ledger, chain,
                                                                                                 treasury):
    alice = funded_sender(chain)
    w = watcher(any_ledger, chain, treasury)
    fork = chain.snapshot()
    transfer = chain.signed_transfer(alice, treasury, 5_000_000)
    tx_hash, first_block = chain.broadcast(transfer)
    chain.mine(CONFIRMATIONS)
    [credited] = w.poll().credited
    chain.reorg(fork, new_blocks=2)  # the new branch mines the same transaction later
    _, second_block = chain.broadcast(transfer)
    chain.mine(CONFIRMATIONS)
    report = w.poll()
    assert [t.metadata["reverses"] for t in report.reversed] == [credited.id]
    [again] = report.credited
    assert (again.tx_hash, again.metadata["block_number"]) == (tx_hash, second_block) and second_block > first_block
    assert any_ledger.get_balance(alice.address).available == Decimal("5")
    assert w.poll().credited == [] and w.poll().reversed == []
    assert_clean(any_ledger)


def test_unknown_senders_wait_in_suspense_until_an_admin_assigns_them(any_ledger, chain, treasury):
    exchange = funded_sender(chain)
    alice = funded_sender(chain)
    any_ledger.deposit(alice.address, "1", "0x" + "ab" * 32)  # alice is a known agent
    chain.send(exchange, treasury, 4_000_000)
    chain.send(alice, treasury, 1_000_000)
    chain.mint(treasury, 0)  # a zero-value transfer (a mint of nothing) to the treasury: ignored
    chain.mine(CONFIRMATIONS)
    report = watcher(any_ledger, chain, treasury, unknown_senders="suspense").poll()
    assert sorted(t.kind.value for t in report.credited) == ["deposit", "receive_unidentified"]
    assert report.ignored == {"zero_value": 1}
    assert any_ledger.get_account_balance(SUSPENSE) == Decimal("-4")  # a liability: owed to someone
    receipt = next(t for t in report.credited if t.kind.value == "receive_unidentified")

    assigned = any_ledger.assign_suspense(receipt.id, alice.address)
    assert assigned.amount_micros == 4_000_000
    assert any_ledger.get_account_balance(SUSPENSE) == 0
    assert any_ledger.get_balance(alice.address).available == Decimal("6")
    with pytest.raises(Exception) as refused:
        any_ledger.assign_suspense(receipt.id, alice.address)
    assert getattr(refused.value, "code", None) == "suspense_settled"
    assert_clean(any_ledger)


def test_other_tokens_are_ignored_and_counted(any_ledger, chain, treasury):
    other = TestChain.__new__(TestChain)  # a second token on the same chain
    other.tester, other.w3, other.minter, other._wallets = chain.tester, chain.w3, chain.minter, 100
    from evm_support import compiled_token

    abi, bytecode = compiled_token()
    tx = chain.w3.eth.contract(abi=abi, bytecode=bytecode).constructor().transact({"from": chain.minter})
    other.token = chain.w3.eth.contract(address=chain.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"],
                                        abi=abi)
    other.mint(treasury, 3_000_000)
    chain.mine(CONFIRMATIONS)
    report = watcher(any_ledger, chain, treasury).poll()
    assert report.credited == []
    assert report.ignored == {"other_token": 1}
