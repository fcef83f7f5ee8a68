"""A past balance read from the state history equals the balance summed from the journal itself."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from agentbooks.storage import journal_store as store
from agentbooks.storage import tables
from random_books import AGENTS, fill_random


@pytest.mark.parametrize("seed", [1, 2])
def test_every_past_balance_equals_the_journals_sum(any_ledger, seed):
    fill_random(any_ledger, seed, operations=80)
    head = any_ledger.head()[0]

    def compare(conn):  # type: ignore[no-untyped-def]
        for seq in range(0, head + 1):
            for agent in AGENTS:
                assert store.agent_state_at(conn, agent, seq) == store.summed_agent_state_at(conn, agent, seq)

    any_ledger.service.read(compare)


def test_a_time_between_transactions_reads_the_state_before_it(ledger):
    first = ledger.deposit(AGENTS[0], "10", "0xd1")
    ledger.spend(AGENTS[0], "4", "sk-1")
    assert ledger.get_balance(AGENTS[0], as_of=first.occurred_at).available == 10
    assert ledger.get_balance(AGENTS[0], as_of=first.seq).as_of_seq == first.seq


def test_history_recorded_before_the_table_existed_is_summed(ledger):
    ledger.deposit(AGENTS[0], "10", "0xd1")
    ledger.spend(AGENTS[0], "4", "sk-1")
    ledger.service.write(lambda conn: conn.execute(delete(tables.agent_state_history)))  # as an upgraded database
    assert ledger.get_balance(AGENTS[0], as_of=1).available == 10
    assert ledger.get_balance(AGENTS[0], as_of=2).available == 6
