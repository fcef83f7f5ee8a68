"""The payout executor on a real (in-process) EVM: each payout's USDC leaves the hot wallet once.

The stories: a payout confirmed on chain and in the books; a transfer that
reverts releases its hold; an executor killed after signing, or after the
broadcast, and started again sends nothing twice; a transaction the chain
dropped is sent again with the very same bytes. ``verify`` is clean after each.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentbooks import Ledger
from agentbooks.chain.executor import HotWallet, PayoutExecutor
from agentbooks.chain.payouts import request_payout
from agentbooks.domain.errors import IdempotencyConflict, InsufficientBalance, InvalidArgument
from agentbooks.domain.model import Kind
from agentbooks.storage import chain_watch_store as chain_store
from agentbooks.verify.database import verify_database
from evm_support import TestChain

CONFIRMATIONS = 2
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
SHOP = "0x" + "5b" * 20  # where alice's payouts go


class Crash(Exception):
    """The executor process dies here."""


@pytest.fixture
def chain() -> TestChain:
    return TestChain()


@pytest.fixture
def hot_wallet(chain) -> HotWallet:
    wallet = chain.new_wallet()
    chain.mint(wallet.address, 100_000_000)  # 100 USDC in the platform's hot wallet
    return HotWallet(wallet.key)


def executor(ledger: Ledger, chain: TestChain, wallet: HotWallet, *, crash_at: str | None = None) -> PayoutExecutor:
    def hook(step: str, payout) -> None:  # type: ignore[no-untyped-def]
        if step == crash_at:
            raise Crash(step)

    return PayoutExecutor(ledger.service, chain.w3, chain.token.address, wallet, confirmations=CONFIRMATIONS,
                          hook=hook)


def payout(ledger: Ledger, agent: str, amount: int, ref: str, to: str = SHOP):
    return request_payout(ledger.service, agent, to, amount, ref)


def state(ledger: Ledger, agent: str, ref: str) -> str:
    return ledger.service.read(lambda c: chain_store.get_payout(c, agent, ref)).state


def confirmations_of(ledger: Ledger, agent: str) -> list:
    return [t for t in ledger.service.stream() if t.kind is Kind.CONFIRM_HOLD and t.agent == agent]


def assert_clean(ledger: Ledger) -> None:
    report = verify_database(ledger)
    assert report.violations == [] and report.transactions > 0


def test_a_payout_is_sent_and_confirmed_after_n_confirmations(any_ledger, chain, hot_wallet):
    any_ledger.deposit(ALICE, "10", "0x" + "0d" * 32)
    answer = payout(any_ledger, ALICE, 4_000_000, "rent-march")
    assert answer.payout.state == "held"
    assert any_ledger.get_balance(ALICE).pending == Decimal("4")

    ex = executor(any_ledger, chain, hot_wallet)
    ex.step()
    assert state(any_ledger, ALICE, "rent-march") == "submitted"
    assert chain.balance(SHOP) == 4_000_000
    chain.mine(CONFIRMATIONS)
    ex.step()
    record = any_ledger.service.read(lambda c: chain_store.get_payout(c, ALICE, "rent-march"))
    assert (record.state, record.nonce, record.log_index) == ("confirmed", 0, 0)
    [confirmed] = confirmations_of(any_ledger, ALICE)
    assert confirmed.tx_hash == record.tx_hash
    assert confirmed.metadata["destination"] == SHOP
    balance = any_ledger.get_balance(ALICE)
    assert (balance.available, balance.pending) == (Decimal("6"), 0)

    again = payout(any_ledger, ALICE, 4_000_000, "rent-march")  # the client retries: the same payout
    assert again.payout.state == "confirmed" and again.hold.replayed
    ex.step()
    assert len(chain.transfers_to(SHOP)) == 1
    assert_clean(any_ledger)


def test_client_refs_belong_to_their_agent(any_ledger, chain, hot_wallet):
    any_ledger.deposit(ALICE, "10", "0x" + "0d" * 32)
    any_ledger.deposit(BOB, "10", "0x" + "0e" * 32)
    payout(any_ledger, ALICE, 1_000_000, "r-1")
    payout(any_ledger, BOB, 2_000_000, "r-1")  # the same clientRef, another agent: another payout
    with pytest.raises(IdempotencyConflict):
        payout(any_ledger, ALICE, 3_000_000, "r-1")  # alice's r-1 was for 1 USDC
    executor(any_ledger, chain, hot_wallet).step()
    assert chain.balance(SHOP) == 3_000_000
    assert any_ledger.get_balance(ALICE).pending == Decimal("1")
    assert any_ledger.get_balance(BOB).pending == Decimal("2")


def test_a_payout_beyond_the_agents_own_funds_fails_without_a_hold(any_ledger, chain, hot_wallet):
    any_ledger.deposit(ALICE, "1", "0x" + "0d" * 32)
    with pytest.raises(InsufficientBalance):
        payout(any_ledger, ALICE, 5_000_000, "too-much")
    assert state(any_ledger, ALICE, "too-much") == "refused"
    executor(any_ledger, chain, hot_wallet).step()
    assert chain.balance(SHOP) == 0


def test_a_reverted_transfer_releases_the_hold(any_ledger, chain):
    poor = chain.new_wallet()
    chain.mint(poor.address, 1_000_000)  # the hot wallet holds 1 USDC only
    any_ledger.deposit(ALICE, "10", "0x" + "0d" * 32)
    payout(any_ledger, ALICE, 4_000_000, "big")
    executor(any_ledger, chain, HotWallet(poor.key)).step()
    record = any_ledger.service.read(lambda c: chain_store.get_payout(c, ALICE, "big"))
    assert (record.state, record.error) == ("released", "reverted on chain")
    balance = any_ledger.get_balance(ALICE)
    assert (balance.available, balance.pending) == (Decimal("10"), 0)
    assert chain.balance(SHOP) == 0
    assert_clean(any_ledger)


@pytest.mark.parametrize("crash_at", ["signed", "broadcast"])
def test_an_executor_killed_mid_payout_sends_it_once_after_a_restart(any_ledger, chain, hot_wallet, crash_at):
    any_ledger.deposit(ALICE, "10", "0x" + "0d" * 32)
    payout(any_ledger, ALICE, 4_000_000, "once")
    with pytest.raises(Crash):
        executor(any_ledger, chain, hot_wallet, crash_at=crash_at).step()
    assert state(any_ledger, ALICE, "once") == "signed"  # intent, nonce and hash were recorded first
    assert len(chain.transfers_to(SHOP)) == (1 if crash_at == "broadcast" else 0)

    restarted = executor(any_ledger, chain, hot_wallet)
    restarted.step()
    chain.mine(CONFIRMATIONS)
    restarted.step()
    restarted.step()
    assert len(chain.transfers_to(SHOP)) == 1
    assert chain.balance(SHOP) == 4_000_000
    assert len(confirmations_of(any_ledger, ALICE)) == 1
    assert state(any_ledger, ALICE, "once") == "confirmed"
    assert_clean(any_ledger)


def test_a_dropped_transaction_is_sent_again_with_the_same_bytes(any_ledger, chain, hot_wallet):
    any_ledger.deposit(ALICE, "10", "0x" + "0d" * 32)
    payout(any_ledger, ALICE, 4_000_000, "dropped")
    fork = chain.snapshot()
    ex = executor(any_ledger, chain, hot_wallet)
    ex.step()
    first_hash = any_ledger.service.read(lambda c: chain_store.get_payout(c, ALICE, "dropped")).tx_hash
    chain.reorg(fork, new_blocks=1)  # the block with the transfer is gone, and the transfer with it
    assert chain.balance(SHOP) == 0
    ex.step()  # nowhere on the node, nonce unused: the recorded bytes again
    chain.mine(CONFIRMATIONS)
    ex.step()
    record = any_ledger.service.read(lambda c: chain_store.get_payout(c, ALICE, "dropped"))
    assert (record.state, record.tx_hash) == ("confirmed", first_hash)
    assert len(chain.transfers_to(SHOP)) == 1
    assert_clean(any_ledger)


def test_the_hot_wallet_key_comes_from_a_file_or_the_environment_and_is_never_shown(tmp_path, monkeypatch):
    key = "0x" + "4f" * 32
    (tmp_path / "hot-wallet").write_text(key + "\n")
    from_file = HotWallet.from_file(tmp_path / "hot-wallet")
    monkeypatch.setenv("AGENTBOOKS_HOT_WALLET_KEY", key)
    assert HotWallet.from_env().address == from_file.address
    assert key[2:] not in repr(from_file) and from_file.address in repr(from_file)
    with pytest.raises(InvalidArgument) as bad:
        HotWallet("0x" + "zz" * 32)
    assert "zz" not in str(bad.value)
    monkeypatch.delenv("AGENTBOOKS_HOT_WALLET_KEY")
    with pytest.raises(InvalidArgument):
        HotWallet.from_env()
