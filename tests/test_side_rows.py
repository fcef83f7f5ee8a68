"""``execute``'s side rows commit with the request's transactions, and not at all when it is refused."""

from __future__ import annotations

import pytest

from agentbooks.domain.errors import DuplicateDeposit, InvalidArgument, InvariantViolation
from agentbooks.domain.operations import Deposit
from agentbooks.storage import chain_watch_store as chain_store
from conftest import ALICE

WATCHER = "1:0x" + "cc" * 20
GENESIS = (-1, "0x" + "0" * 64)
BLOCK_7 = (7, "0x" + "77" * 32)


def credit(tx: str) -> tuple:
    return chain_store.credit_row(WATCHER, tx, 0, 7, BLOCK_7[1])


def test_side_rows_are_written_with_an_accepted_request_only(any_ledger):
    service = any_ledger.service
    service.write(lambda c: chain_store.start_checkpoint(c, WATCHER, GENESIS, 0))
    tx = "0x" + "01" * 32
    service.execute([Deposit(ALICE, 5_000_000, tx, chain_id=1)], side_rows={
        "chain_credits": [credit(tx)],
        "chain_checkpoint_moves": [chain_store.checkpoint_move_row(WATCHER, GENESIS, BLOCK_7, 1)]})
    assert service.read(lambda c: chain_store.read_checkpoint(c, WATCHER)) == BLOCK_7
    assert [c.tx_hash for c in service.read(lambda c: chain_store.credits_from(c, WATCHER, 0, limit=10))] == [tx]

    with pytest.raises(DuplicateDeposit):  # refused: its rows are not written either
        service.execute([Deposit(ALICE, 5_000_000, tx, chain_id=1)], side_rows={
            "chain_credits": [chain_store.credit_row(WATCHER, tx, 0, 8, "0x" + "88" * 32)]})
    assert len(service.read(lambda c: chain_store.credits_from(c, WATCHER, 0, limit=10))) == 1


def test_a_checkpoint_moved_by_someone_else_refuses_the_whole_request(any_ledger):
    service = any_ledger.service
    service.write(lambda c: chain_store.start_checkpoint(c, WATCHER, BLOCK_7, 0))
    tx = "0x" + "02" * 32
    with pytest.raises(InvariantViolation):  # the checkpoint is not where this writer read it
        service.execute([Deposit(ALICE, 1_000_000, tx, chain_id=1)], side_rows={
            "chain_checkpoint_moves": [chain_store.checkpoint_move_row(WATCHER, GENESIS, (9, "0x" + "99" * 32), 1)]})
    assert any_ledger.get_balance(ALICE).available == 0
    assert service.read(lambda c: chain_store.read_checkpoint(c, WATCHER)) == BLOCK_7


def test_side_rows_go_to_the_side_tables_only(any_ledger):
    with pytest.raises(InvalidArgument):
        any_ledger.service.execute([Deposit(ALICE, 1, "0x" + "03" * 32)], side_rows={"journal": [()]})
