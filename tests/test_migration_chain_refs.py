"""Migration 0005_chain_refs on books recorded before it: old transfers get their ``chain_refs`` rows, old withdrawal keys
the (chain id, tx hash, log index) form, so a repeated old payout is still refused."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select

from agentbooks import Ledger
from agentbooks.domain.errors import DuplicateWithdrawal
from agentbooks.storage import tables
from agentbooks.storage.engine import _alembic_config, make_engine
from conftest import ALICE, StepClock


def test_books_from_before_the_migration_are_indexed_and_keep_their_keys(any_url: str) -> None:
    with Ledger.open(any_url, clock=StepClock()) as ledger:
        deposit = ledger.deposit(ALICE, "50", "0xd1", chain_id=8453, log_index=2)
        payout = ledger.withdraw(ALICE, "5", "0xw1")
    engine = make_engine(any_url)
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004_events")
        assert conn.execute(select(tables.unique_keys.c.key).where(tables.unique_keys.c.scope == "withdraw")
                            ).scalars().all() == ["0xw1"]
        command.upgrade(config, "head")
    engine.dispose()
    with Ledger.open(any_url, clock=StepClock()) as ledger:
        refs = ledger.service.read(lambda c: [tuple(r) for r in c.execute(
            select(tables.chain_refs).order_by(tables.chain_refs.c.seq))])
        assert refs == [(deposit.seq, "deposit", 8453, "0xd1", 2, None, None, None),
                        (payout.seq, "withdraw", 0, "0xw1", 0, None, None, None)]
        with pytest.raises(DuplicateWithdrawal):
            ledger.withdraw(ALICE, "5", "0xw1")
