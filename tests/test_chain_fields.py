"""Where on-chain transfers were mined and paid to: recorded, hashed, exported, and indexed in ``chain_refs``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agentbooks import Ledger
from agentbooks.domain.errors import DuplicateWithdrawal
from agentbooks.domain.hashing import recorded_hash
from agentbooks.export.beancount import transaction_text
from agentbooks.requests import deposit
from agentbooks.storage import tables
from conftest import ALICE, BOB, CAROL

BASE = 8453
BLOCK_HASH = "0x" + "ab" * 32


def chain_refs(ledger: Ledger) -> list[tuple]:
    return ledger.service.read(lambda c: [tuple(r) for r in c.execute(
        select(tables.chain_refs).order_by(tables.chain_refs.c.seq)).all()])


def test_a_deposit_records_its_block_in_the_hashed_metadata_and_the_export(any_ledger: Ledger) -> None:
    tx = any_ledger.deposit(ALICE, "100", "0xAA", chain_id=BASE, log_index=3, block_number=1200,
                            block_hash=BLOCK_HASH.upper().replace("0X", "0x"))
    assert tx.metadata == {"chain_id": BASE, "log_index": 3, "block_number": 1200, "block_hash": BLOCK_HASH}
    assert recorded_hash(tx) == tx.hash  # the block is inside the hash chain
    text = transaction_text(tx)
    assert 'block-number: "1200"' in text and f'block-hash: "{BLOCK_HASH}"' in text
    assert chain_refs(any_ledger) == [(tx.seq, "deposit", BASE, "0xaa", 3, 1200, BLOCK_HASH, None)]


def test_a_batched_payout_is_one_withdrawal_per_log(any_ledger: Ledger) -> None:
    any_ledger.deposit(ALICE, "100", "0xd1", chain_id=BASE)
    any_ledger.deposit(BOB, "100", "0xd2", chain_id=BASE)
    first = any_ledger.withdraw(ALICE, "10", "0xbatch", chain_id=BASE, log_index=0, block_number=1300)
    second = any_ledger.withdraw(BOB, "20", "0xbatch", chain_id=BASE, log_index=1, block_number=1300,
                                 destination=CAROL)  # Bob's own external wallet
    assert second.metadata["destination"] == CAROL
    with pytest.raises(DuplicateWithdrawal):
        any_ledger.withdraw(BOB, "20", "0xbatch", chain_id=BASE, log_index=1)
    refs = chain_refs(any_ledger)[2:]
    assert refs == [(first.seq, "withdraw", BASE, "0xbatch", 0, 1300, None, None),
                    (second.seq, "withdraw", BASE, "0xbatch", 1, 1300, None, CAROL)]


def test_a_confirmed_hold_can_say_where_the_payout_went(any_ledger: Ledger) -> None:
    any_ledger.deposit(ALICE, "100", "0xd1", chain_id=BASE)
    any_ledger.hold(ALICE, "30", "payout-7")
    tx = any_ledger.confirm_hold(ALICE, "30", "payout-7", tx_hash="0xc0", chain_id=BASE, log_index=2,
                                 destination=CAROL, block_number=1400)
    assert tx.metadata == {"chain_id": BASE, "log_index": 2, "block_number": 1400, "destination": CAROL}
    assert chain_refs(any_ledger)[-1] == (tx.seq, "confirm_hold", BASE, "0xc0", 2, 1400, None, CAROL)


def test_a_retry_of_a_request_from_before_the_block_fields_still_matches(ledger: Ledger) -> None:
    first = ledger.deposit(ALICE, "5", "0xd9", idempotency_key="k1")
    again = ledger.deposit(ALICE, "5", "0xd9", idempotency_key="k1")
    assert again.id == first.id
    assert "block_number" not in deposit(ALICE, "5", "0xd9").fingerprint()  # unset later fields stay out
