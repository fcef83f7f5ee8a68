"""Net settlement (the original's NetSettle): obligations netted into the fewest transfers, exactly,
deterministically, and executed as one atomic batch."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterator

import pytest
from hypothesis import given, settings, strategies as st

from agentbooks import errors
from agentbooks.domain.netting import Obligation, net_positions, net_settle
from api_support import Api, make_api
from conftest import ALICE, BOB, CAROL

DAVE = "0x" + "d" * 40
ERIN = "0x" + "e" * 40
USDC = 1_000_000


def O(a: str, b: str, usdc: str) -> Obligation:  # noqa: E743 - reads like the table
    return Obligation(a, b, int(Decimal(usdc) * USDC))


@pytest.mark.parametrize("obligations, expected", [
    pytest.param([], [], id="nothing owed"),
    pytest.param([O(ALICE, ALICE, "5")], [], id="a self-transfer is dropped"),
    pytest.param([O(ALICE, BOB, "5"), O(BOB, ALICE, "5")], [], id="mutual debts cancel"),
    pytest.param([O(ALICE, BOB, "10"), O(BOB, ALICE, "4")], [O(ALICE, BOB, "6")], id="two directions net to one"),
    pytest.param([O(ALICE, BOB, "10"), O(BOB, CAROL, "10")], [O(ALICE, CAROL, "10")], id="a chain collapses"),
    pytest.param([O(ALICE, BOB, "10"), O(BOB, CAROL, "10"), O(CAROL, ALICE, "10")], [], id="a cycle vanishes"),
    pytest.param([O(ALICE, BOB, "0.000001"), O(BOB, CAROL, "0.000001")], [O(ALICE, CAROL, "0.000001")],
                 id="one micro-unit is kept exactly"),
    pytest.param([O(ALICE.upper().replace("0X", "0x"), BOB, "3"), O(ALICE, BOB, "2")], [O(ALICE, BOB, "5")],
                 id="addresses are normalised"),
    # ALICE -7, BOB -4, ERIN -4, CAROL +8, DAVE +7: four obligations settle in three transfers.
    pytest.param([O(ALICE, CAROL, "7"), O(BOB, DAVE, "3"), O(BOB, CAROL, "1"), O(ERIN, DAVE, "4")],
                 [O(ALICE, DAVE, "7"), O(BOB, CAROL, "4"), O(ERIN, CAROL, "4")], id="fewer than the input"),
    # ALICE -8, CAROL -8, BOB +10, DAVE +6: no equal positions, so the largest debtor pays the
    # largest creditor (CAROL, 0x1eff…, before ALICE, 0x5aed…: ties go by address).
    pytest.param([O(ALICE, BOB, "5"), O(CAROL, DAVE, "3"), O(ALICE, DAVE, "3"), O(CAROL, BOB, "5")],
                 [O(CAROL, BOB, "8"), O(ALICE, BOB, "2"), O(ALICE, DAVE, "6")], id="largest pays largest"),
])
def test_net_settle(obligations, expected):
    assert net_settle(obligations) == expected


def test_equal_positions_are_paired_first():
    # ALICE -6, BOB -5; CAROL +5, DAVE +4, ERIN +2. Largest-first alone takes four transfers
    # (ALICE->CAROL 5, BOB->DAVE 4, ALICE->ERIN 1, BOB->ERIN 1); pairing BOB with CAROL takes three.
    obligations = [O(ALICE, DAVE, "4"), O(ALICE, ERIN, "2"), O(BOB, CAROL, "5")]
    assert net_settle(obligations) == sorted(obligations)


def test_the_order_is_deterministic_whatever_the_input_order():
    obligations = [O(ALICE, BOB, "4"), O(CAROL, DAVE, "2"), O(ERIN, BOB, "1"), O(DAVE, ALICE, "9")]
    assert net_settle(obligations) == net_settle(list(reversed(obligations)))


def test_bad_input_is_refused():
    with pytest.raises(errors.InvalidAddress):
        net_settle([Obligation("alice", BOB, 1)])
    with pytest.raises(errors.InvalidAmount):
        net_settle([Obligation(ALICE, BOB, 0)])


agents = st.sampled_from([ALICE, BOB, CAROL, DAVE, ERIN])
obligations = st.lists(st.builds(Obligation, agents, agents, st.integers(1, 10**12)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(obligations)
def test_net_positions_are_preserved_with_few_transfers(items):
    result = net_settle(items)
    assert net_positions(result) == net_positions(items)
    assert all(o.from_agent != o.to_agent and o.amount_micros > 0 for o in result)
    payers, payees = {o.from_agent for o in result}, {o.to_agent for o in result}
    assert not payers & payees  # nobody both pays and is paid
    assert len(result) <= max(0, len(net_positions(items)) - 1)
    assert result == sorted(result) == net_settle(list(reversed(items)))


# --- executed ---------------------------------------------------------------


@pytest.fixture
def api(sqlite_url) -> Iterator[Api]:
    books = make_api(sqlite_url)
    yield books
    books.ledger.close()


def test_net_settlement_runs_as_one_atomic_batch(any_ledger):
    any_ledger.deposit(ALICE, "10", "0xd1")
    any_ledger.deposit(BOB, "1", "0xd2")
    txs = any_ledger.net_settle([{"from": ALICE, "to": BOB, "amount": "10"}, {"from": BOB, "to": CAROL, "amount": "4"},
                                 (CAROL, CAROL, "1")], "net-2026-12-01")
    assert [(t.agent, t.counterparty, t.amount_micros, t.reference) for t in txs] == [
        (ALICE, CAROL, 4 * USDC, "net-2026-12-01-1"), (ALICE, BOB, 6 * USDC, "net-2026-12-01-2")]
    assert [any_ledger.get_balance(a).available for a in (ALICE, BOB, CAROL)] == [Decimal("0"), Decimal("7"),
                                                                                 Decimal("4")]
    head = any_ledger.head()
    with pytest.raises(errors.InsufficientBalance):  # BOB cannot pay its net 5: nothing is recorded
        any_ledger.net_settle([{"from": CAROL, "to": ALICE, "amount": "1"}, {"from": BOB, "to": ALICE, "amount": "8"}],
                              "net-2")
    assert any_ledger.head() == head
    assert any_ledger.net_settle([(ALICE, BOB, "1"), (BOB, ALICE, "1")], "net-3") == []


def test_net_settlement_route(api):
    api.ledger.deposit(ALICE, "10", "0xd1")
    body = {"transfers": [{"from": ALICE, "to": BOB, "amount": "10"}, {"from": BOB, "to": CAROL, "amount": "10"}],
            "reference": "net-1"}
    plan = api.client.post("/v1/admin/net-settlements", json={**body, "execute": False}, headers=api.admin).json()
    assert plan == {"transfers": [{"from": ALICE, "to": CAROL, "amount": "10.000000"}], "count": 1, "transactions": []}
    r = api.client.post("/v1/admin/net-settlements", json=body, headers=api.admin)
    assert r.status_code == 200, r.text
    assert [t["reference"] for t in r.json()["transactions"]] == ["net-1-1"]
    assert api.ledger.get_balance(CAROL).available == Decimal("10")
    bad = api.client.post("/v1/admin/net-settlements", json={**body, "transfers": [{"from": ALICE}]}, headers=api.admin)
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_argument")
    assert api.client.post("/v1/admin/net-settlements", json=body, headers=api.alice).status_code == 403
