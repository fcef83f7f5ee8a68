"""The Ledger end to end, on SQLite and on PostgreSQL: the seed's scenarios and its bugs' fixes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from agentbooks import Ledger, errors
from conftest import ALICE, BOB, CAROL


def D(text: str) -> Decimal:
    return Decimal(text).quantize(Decimal("0.000001"))


def balance_fields(ledger: Ledger, agent: str) -> dict[str, Decimal]:
    b = ledger.get_balance(agent)
    return {"available": b.available, "pending": b.pending, "escrowed": b.escrowed,
            "credit_used": b.credit_used, "credit_limit": b.credit_limit}


def test_seed_scenario_hold_on_credit_then_release(any_ledger):
    any_ledger.deposit(ALICE, "3", "0xd1")
    any_ledger.set_credit_limit(ALICE, "10")
    any_ledger.hold(ALICE, "5", "transfer-1")
    assert balance_fields(any_ledger, ALICE) == {
        "available": D("0"), "pending": D("5"), "escrowed": D("0"), "credit_used": D("2"), "credit_limit": D("10")}
    any_ledger.release_hold(ALICE, "5", "transfer-1")
    assert balance_fields(any_ledger, ALICE) == {
        "available": D("3"), "pending": D("0"), "escrowed": D("0"), "credit_used": D("0"), "credit_limit": D("10")}


def test_partial_release_never_drives_available_negative(any_ledger):
    any_ledger.deposit(ALICE, "3", "0xd1")
    any_ledger.set_credit_limit(ALICE, "10")
    any_ledger.hold(ALICE, "5", "h")
    any_ledger.spend(ALICE, "8", "sk-1")  # all credit now: used 10, available 0
    any_ledger.release_hold(ALICE, "1", "h")
    b = any_ledger.get_balance(ALICE)
    assert b.available >= 0 and b.credit_used == D("9") and b.pending == D("4")


def test_repay_credit_moves_money_from_available(any_ledger):
    any_ledger.set_credit_limit(ALICE, "10")
    any_ledger.use_credit(ALICE, "4")
    any_ledger.deposit(BOB, "1", "0xd2")
    assert any_ledger.get_credit_info(ALICE) == (D("10"), D("4"))
    assert any_ledger.get_balance(ALICE).available == D("4")
    any_ledger.repay_credit(ALICE, "3")
    assert any_ledger.get_credit_info(ALICE) == (D("10"), D("1"))
    assert any_ledger.get_balance(ALICE).available == D("1")
    assert any_ledger.get_account_balance(f"Platform:Credit:{ALICE}") == D("1")


def test_refunds_and_reversals_never_create_money(any_ledger):
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.spend(ALICE, "4", "sk")
    with pytest.raises(errors.RefundExceedsPaid):
        any_ledger.refund(ALICE, "5", "failed-1")
    any_ledger.refund(ALICE, "4", "failed-1")
    with pytest.raises(errors.DuplicateRefund):
        any_ledger.refund(ALICE, "4", "failed-1")
    deposit = any_ledger.deposit(BOB, "7", "0xd2")
    any_ledger.spend(BOB, "5", "sk")
    with pytest.raises(errors.InsufficientBalance):  # the money is already spent
        any_ledger.reverse(deposit.id, "wrong agent")
    treasury_before = any_ledger.get_account_balance("Platform:Treasury")
    any_ledger.deposit(BOB, "5", "0xd3")
    reversal = any_ledger.reverse(deposit.id, "wrong agent")
    assert reversal.reverses_seq == deposit.seq
    assert [p.amount_micros for p in reversal.postings] == [-p.amount_micros for p in deposit.postings]
    # Treasury: + the new 5 deposit − the 7 the reversal takes back.
    assert any_ledger.get_account_balance("Platform:Treasury") == treasury_before + D("5") - D("7")
    with pytest.raises(errors.AlreadyReversed):
        any_ledger.reverse(deposit.id, "again")
    with pytest.raises(errors.NotReversible):
        any_ledger.reverse(reversal.id, "undo the undo")
    b = any_ledger.get_balance(BOB)
    assert b.total_in - b.total_out == b.available + b.pending + b.escrowed - b.credit_used


def test_a_reversed_deposit_can_be_credited_again_to_the_right_agent(any_ledger):
    wrong = any_ledger.deposit(ALICE, "5", "0xfeed")
    any_ledger.reverse(wrong.id, "credited to the wrong agent")
    any_ledger.deposit(BOB, "5", "0xfeed")
    with pytest.raises(errors.DuplicateDeposit):
        any_ledger.deposit(BOB, "5", "0xfeed")
    assert any_ledger.get_balance(ALICE).total_in == D("0")
    assert any_ledger.get_balance(BOB).available == D("5")


def test_a_failed_operation_writes_nothing(any_ledger):
    any_ledger.deposit(ALICE, "10", "0xd1")
    before = any_ledger.head()
    attempts = [
        lambda: any_ledger.withdraw(ALICE, "11", "0xw1"),
        lambda: any_ledger.spend(ALICE, "1.0000001", "sk"),
        lambda: any_ledger.spend("0xnot-an-address", "1", "sk"),
        lambda: any_ledger.confirm_hold(ALICE, "1", "no-such-hold"),
        lambda: any_ledger.deposit(ALICE, "1", "0xd1"),
        lambda: any_ledger.set_credit_limit(ALICE, "-1"),
        lambda: any_ledger.use_credit(ALICE, "1"),
        lambda: any_ledger.hold(ALICE, "1", "bad reference with spaces"),
        lambda: any_ledger.reverse("no-such-transaction", "x"),
        lambda: any_ledger.release_hold(ALICE, "1", "h", reason="line one\nline two"),  # control characters
        lambda: any_ledger.batch([
            {"op": "spend", "agent": ALICE, "amount": "6", "session_key_id": "sk"},
            {"op": "spend", "agent": ALICE, "amount": "6", "session_key_id": "sk"},  # overdraws: all undone
        ]),
    ]
    for attempt in attempts:
        with pytest.raises(errors.LedgerError):
            attempt()
    assert any_ledger.head() == before
    assert any_ledger.get_balance(ALICE).available == D("10")
    assert any_ledger.get_balance(BOB).available == D("0")  # an unknown agent reads as all zero


def test_batch_is_all_or_nothing_and_in_order(any_ledger):
    txs = any_ledger.batch([
        {"op": "deposit", "agent": ALICE, "amount": "10", "tx_hash": "0xd1"},
        {"op": "transfer", "from_agent": ALICE, "to_agent": BOB, "amount": "4", "reference": "inv-1"},
        {"op": "escrow_lock", "agent": BOB, "amount": "4", "reference": "order-1"},
    ])
    assert [t.seq for t in txs] == [1, 2, 3]
    assert any_ledger.get_balance(BOB).escrowed == D("4")
    with pytest.raises(errors.InvalidArgument):
        any_ledger.batch([{"op": "mint", "agent": ALICE}])
    with pytest.raises(errors.InvalidArgument):
        any_ledger.batch([])


def test_idempotency_key_replays_and_conflicts(any_ledger):
    first = any_ledger.deposit(ALICE, "10", "0xd1", idempotency_key="req-1")
    again = any_ledger.deposit(ALICE, "10", "0xd1", idempotency_key="req-1")
    assert again.replayed and again.id == first.id and again.hash == first.hash
    with pytest.raises(errors.IdempotencyConflict):
        any_ledger.deposit(ALICE, "11", "0xd1", idempotency_key="req-1")
    spend = any_ledger.spend(ALICE, "1", "sk", idempotency_key="req-2")
    assert any_ledger.spend(ALICE, "1", "sk", idempotency_key="req-2").seq == spend.seq
    assert any_ledger.get_balance(ALICE).available == D("9")


def test_deposits_are_keyed_on_chain_tx_and_log_index(any_ledger):
    any_ledger.deposit(ALICE, "1", "0xAB", log_index=0)
    any_ledger.deposit(ALICE, "2", "0xab", log_index=1)  # two USDC transfers in one transaction
    any_ledger.deposit(ALICE, "4", "0xab", chain_id=8453, log_index=0)  # same hash on another chain
    with pytest.raises(errors.DuplicateDeposit):
        any_ledger.deposit(BOB, "1", "0xab", log_index=0)
    assert any_ledger.has_deposit("0xAB") and not any_ledger.has_deposit("0xcd")
    assert any_ledger.get_balance(ALICE).total_in == D("7")


def test_holds_track_each_reference(any_ledger):
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.hold(ALICE, "6", "h1")
    any_ledger.hold(ALICE, "4", "h2")
    with pytest.raises(errors.ReferenceInUse):
        any_ledger.hold(ALICE, "1", "h1")
    any_ledger.confirm_hold(ALICE, "2", "h1")
    any_ledger.release_hold(ALICE, "1", "h1")
    with pytest.raises(errors.HoldExceeded):  # h1 has 3 left, even though 7 is pending in all
        any_ledger.confirm_hold(ALICE, "4", "h1")
    hold = any_ledger.get_hold(ALICE, "h1")
    assert (hold.amount_micros, hold.remaining_micros, hold.confirmed_micros, hold.released_micros) == (
        6_000_000, 3_000_000, 2_000_000, 1_000_000)
    assert any_ledger.get_balance(ALICE).pending == D("7")


def test_settle_hold_pays_seller_and_fee(any_ledger):
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.hold(ALICE, "10", "order-1")
    any_ledger.settle_hold(ALICE, BOB, "10", "order-1", fee="0.25")
    assert any_ledger.get_balance(BOB).available == D("9.75")
    assert any_ledger.get_account_balance("Income:Fees") == D("-0.25")
    assert any_ledger.get_balance(ALICE).total_out == D("10")


def test_escrow_release_to_seller_with_debt_and_partial_settle(any_ledger):
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.set_credit_limit(BOB, "5")
    any_ledger.use_credit(BOB, "3")
    any_ledger.escrow_lock(ALICE, "6", "e1")
    any_ledger.release_escrow(ALICE, BOB, "4", "e1")
    assert balance_fields(any_ledger, BOB)["credit_used"] == D("0")
    assert any_ledger.get_balance(BOB).available == D("4")  # 3 drawn + 4 received − 3 repaid
    any_ledger.settle_escrow(ALICE, CAROL, "1.5", "e1")
    assert any_ledger.get_balance(CAROL).available == D("1.5")
    assert any_ledger.get_balance(ALICE).available == D("4.5")
    assert any_ledger.get_balance(ALICE).escrowed == D("0")
    with pytest.raises(errors.EscrowExceeded):
        any_ledger.refund_escrow(ALICE, "0.1", "e1")


def test_credit_limit_cannot_drop_below_credit_in_use(any_ledger):
    any_ledger.set_credit_limit(ALICE, "10")
    any_ledger.spend(ALICE, "6", "sk")
    with pytest.raises(errors.CreditLimitBelowUsed):
        any_ledger.set_credit_limit(ALICE, "5")
    any_ledger.set_credit_limit(ALICE, "6")
    assert not any_ledger.can_spend(ALICE, "0.000001")
    any_ledger.deposit(ALICE, "1", "0xd1")
    assert any_ledger.can_spend(ALICE, "1") and not any_ledger.can_spend(ALICE, "1.000001")


def test_balance_as_of_a_sequence_or_a_time(any_ledger):
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.set_credit_limit(ALICE, "5")
    mid = any_ledger.spend(ALICE, "12", "sk")
    any_ledger.deposit(ALICE, "20", "0xd2")
    past = any_ledger.get_balance(ALICE, as_of=mid.seq)
    assert (past.available, past.credit_used, past.credit_limit, past.total_out) == (D("0"), D("2"), D("5"), D("12"))
    assert past.updated_at == mid.occurred_at
    by_time = any_ledger.get_balance(ALICE, as_of=mid.occurred_at + timedelta(microseconds=1))
    assert by_time == past
    assert any_ledger.get_balance(ALICE, as_of=datetime(2000, 1, 1, tzinfo=timezone.utc)).available == D("0")
    assert any_ledger.get_balance(ALICE).available == D("18")
    with pytest.raises(errors.InvalidTimestamp):
        any_ledger.get_balance(ALICE, as_of="yesterday")
    assert any_ledger.get_account_balance(f"Agent:{ALICE}:Available", as_of=mid.seq) == D("0")


def test_history_is_newest_first_and_pages_by_sequence(any_ledger):
    for i in range(5):
        any_ledger.deposit(ALICE, "1", f"0xd{i}")
    any_ledger.transfer(ALICE, BOB, "2", "inv-1")
    page = any_ledger.get_history(ALICE, limit=4)
    assert [e.seq for e in page] == [6, 5, 4, 3]
    assert page[0].type == "transfer" and page[0].counterparty == BOB
    assert [e.seq for e in any_ledger.get_history(ALICE, limit=4, before_seq=3)] == [2, 1]
    assert [e.type for e in any_ledger.get_history(BOB)] == ["transfer"]
    # The original's default: a limit of 0 or less means 50.
    assert len(any_ledger.get_history(ALICE, 0)) == len(any_ledger.get_history(ALICE, -1)) == 6
    with pytest.raises(errors.InvalidArgument):
        any_ledger.get_history(ALICE, limit=10**9)


def test_history_limit_below_one_is_the_originals_default_of_fifty(ledger):
    for i in range(55):
        ledger.deposit(ALICE, "1", f"0xd{i}")
    assert len(ledger.get_history(ALICE, 0)) == len(ledger.get_history(ALICE, -1)) == 50
    assert len(ledger.get_history(ALICE, 55)) == 55


def test_each_party_sees_its_own_movement_in_its_history(any_ledger):
    """The original's inputs: a 5.00 hold settled with a 0.50 fee; a 4 USDC escrow settled 1.5 to the seller."""
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.hold(ALICE, "5.00", "h")
    any_ledger.settle_hold(ALICE, BOB, "5.00", "h", fee="0.50")
    any_ledger.escrow_lock(ALICE, "4", "e")
    any_ledger.settle_escrow(ALICE, CAROL, "1.5", "e")
    assert any_ledger.get_history(BOB)[0].amount == D("4.50")
    assert any_ledger.get_history(CAROL)[0].amount == D("1.5")
    buyer = {e.type: e.amount for e in any_ledger.get_history(ALICE)}
    assert buyer["settle_hold"] == D("5.00") and buyer["settle_escrow"] == D("4")
    reversal = any_ledger.reverse(any_ledger.get_history(BOB)[0].id, "disputed")
    assert any_ledger.get_history(BOB)[0].id == reversal.id and any_ledger.get_history(BOB)[0].amount == D("4.50")


def test_release_escrow_to_the_buyer_itself_returns_it_to_available(any_ledger):
    """As the original: the escrow goes back to Available and counts as paid out and received."""
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.escrow_lock(ALICE, "4", "e")
    tx = any_ledger.release_escrow(ALICE, ALICE, "4", "e")
    assert tx.counterparty == ALICE
    b = any_ledger.get_balance(ALICE)
    assert (b.available, b.escrowed, b.total_in, b.total_out) == (D("10"), D("0"), D("14"), D("4"))


def test_rollups_and_trial_balance(any_ledger):
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.hold(ALICE, "3", "h1")
    rollup = any_ledger.rollup(f"Agent:{ALICE.upper().replace('0X', '0x')}")
    assert rollup == {f"Agent:{ALICE}:Available": D("-7"), f"Agent:{ALICE}:Pending": D("-3"),
                      f"Agent:{ALICE}:Escrowed": D("0")}
    assert sum(any_ledger.rollup("").values()) == 0
    with pytest.raises(errors.InvalidAccount):
        any_ledger.get_account_balance("Assets:Cash")


def test_expired_holds_are_swept(ledger):
    ledger.deposit(ALICE, "10", "0xd1")
    clock_now = ledger.service.clock.now
    ledger.hold(ALICE, "4", "h1", expires_at=clock_now + timedelta(seconds=30))
    ledger.hold(ALICE, "2", "h2", expires_at=clock_now + timedelta(days=1))
    assert ledger.sweep_expired_holds(now=clock_now + timedelta(seconds=10)) == []
    swept = ledger.sweep_expired_holds(now=clock_now + timedelta(minutes=5))
    assert [(t.reference, t.amount_micros, t.memo) for t in swept] == [("h1", 4_000_000, "expired")]
    assert ledger.get_balance(ALICE).available == D("8")
    with pytest.raises(errors.InvalidTimestamp):
        ledger.hold(ALICE, "1", "h3", expires_at="2020-01-01T00:00:00Z")


def test_the_hash_chain_links_every_transaction(any_ledger):
    from agentbooks.domain.hashing import GENESIS_HASH

    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.set_credit_limit(ALICE, "5")
    any_ledger.spend(ALICE, "11", "sk")
    txs = list(any_ledger.transactions())
    assert txs[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(txs, txs[1:]))
    assert any_ledger.head() == (3, txs[-1].hash)
    assert [t.seq for t in any_ledger.transactions(after_seq=1)] == [2, 3]


def test_demo_day_balances(tmp_path):
    from agentbooks.demo import AGENTS, ScriptedClock, run_demo_day

    with Ledger.open(f"sqlite:///{tmp_path / 'demo.db'}", clock=ScriptedClock()) as books:
        log = run_demo_day(books)
        assert any(line.startswith("refused") for line in log)
        assert any("expired hold job-99" in line for line in log)
        assert sum(books.rollup("").values()) == 0
        kinds = {t.kind.value for t in books.transactions()}
        assert len(kinds) == 19  # every agent operation kind appears, and capital and a network fee
        for address in AGENTS.values():
            b = books.get_balance(address)
            assert b.available + b.pending + b.escrowed == b.total_in - b.total_out + b.credit_used
