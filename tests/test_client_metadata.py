"""A caller's own metadata: bounded, recorded inside the hash chain, returned, exported, fingerprinted."""

from __future__ import annotations

import sqlite3
from typing import Iterator

import pytest

from agentbooks import Ledger
from agentbooks.domain.errors import IdempotencyConflict, InvalidArgument
from agentbooks.domain.hashing import recorded_hash
from agentbooks.export.beancount import transaction_text
from agentbooks.verify.database import verify_database
from api_support import Api, make_api
from conftest import ALICE, BOB, StepClock

ORDER = {"orderId": "ord-42", "service": "search-api"}


def test_metadata_is_recorded_under_client_and_hashed(any_ledger):
    tx = any_ledger.deposit(ALICE, "10", "0xd1", metadata=ORDER)
    assert tx.metadata["client"] == ORDER
    assert any_ledger.get_transaction(tx.id).metadata["client"] == ORDER
    assert recorded_hash(any_ledger.get_transaction(tx.id)) == tx.hash


def test_every_write_and_batch_item_carries_its_own(ledger):
    ledger.deposit(ALICE, "10", "0xd1")
    spent = ledger.spend(ALICE, "1", "sk-1", metadata={"session": "s-9"})
    held = ledger.hold(ALICE, "2", "h-1", metadata={"invoice": "inv-7"})
    txs = ledger.batch([{"op": "confirm_hold", "agent": ALICE, "amount": "2", "reference": "h-1",
                         "metadata": {"payout": "p-1"}},
                        {"op": "transfer", "from_agent": ALICE, "to_agent": BOB, "amount": "1", "reference": "t-1"}],
                       metadata={"batch": "b-1"})
    assert spent.metadata["client"] == {"session": "s-9"} and held.metadata["client"] == {"invoice": "inv-7"}
    assert [t.metadata["client"] for t in txs] == [{"payout": "p-1"}, {"batch": "b-1"}]
    assert "client" not in ledger.reverse(spent.id, "mistake").metadata  # none given, none recorded


@pytest.mark.parametrize("bad", [
    {f"k{i}": "v" for i in range(17)},           # too many entries
    {"k" * 65: "v"},                             # key too long
    {"has space": "v"},                          # key outside A-Z a-z 0-9 _ -
    {"orderId": "x" * 257},                      # value too long
    {"orderId": 42},                             # not a string
    {"orderId": "line\nbreak"},                  # not printable
    ["orderId", "ord-42"],                       # not an object
])
def test_metadata_out_of_bounds_is_refused_before_anything_is_written(ledger, bad):
    with pytest.raises(InvalidArgument) as caught:
        ledger.deposit(ALICE, "10", "0xd1", metadata=bad)
    assert caught.value.details["field"] == "metadata"
    assert ledger.head()[0] == 0


def test_the_same_key_with_other_metadata_is_an_idempotency_conflict(ledger):
    first = ledger.deposit(ALICE, "10", "0xd1", idempotency_key="k1", metadata=ORDER)
    assert ledger.deposit(ALICE, "10", "0xd1", idempotency_key="k1", metadata=dict(ORDER)).replayed
    with pytest.raises(IdempotencyConflict):
        ledger.deposit(ALICE, "10", "0xd1", idempotency_key="k1", metadata={"orderId": "ord-43"})
    with pytest.raises(IdempotencyConflict):
        ledger.deposit(ALICE, "10", "0xd1", idempotency_key="k1")
    assert ledger.head()[0] == first.seq


def test_verify_catches_an_edited_metadata_value(tmp_path):
    db = tmp_path / "books.db"
    with Ledger.open(f"sqlite:///{db}", clock=StepClock()) as ledger:
        ledger.deposit(ALICE, "10", "0xd1", metadata=ORDER)
        assert verify_database(ledger).clean
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE journal SET metadata_json = replace(metadata_json, 'ord-42', 'ord-99') WHERE seq = 1")
    with Ledger.open(f"sqlite:///{db}") as ledger:
        report = verify_database(ledger)
    assert ("hash_mismatch", 1) in {(v.code, v.seq) for v in report.violations}


def test_export_writes_each_pair_as_beancount_metadata(ledger):
    text = transaction_text(ledger.deposit(ALICE, "10", "0xd1", metadata=ORDER))
    assert '  client-orderId: "ord-42"\n' in text and '  client-service: "search-api"\n' in text


@pytest.fixture
def api(sqlite_url) -> Iterator[Api]:
    books = make_api(sqlite_url)
    yield books
    books.ledger.close()


def test_metadata_round_trips_through_the_api(api):
    r = api.client.post("/v1/admin/deposits", headers=api.admin,
                        json={"agentAddress": ALICE, "amount": "10", "txHash": "0xd1", "metadata": ORDER})
    assert r.status_code == 201, r.text
    tx = r.json()["transaction"]
    assert tx["metadata"]["client"] == ORDER
    r = api.client.post(f"/v1/agents/{ALICE}/spend", headers=api.alice,
                        json={"amount": "1", "sessionKeyId": "sk-1", "metadata": {"session": "s-1"}})
    assert r.status_code == 200 and r.json()["transaction"]["metadata"]["client"] == {"session": "s-1"}
    fetched = api.client.get(f"/v1/transactions/{tx['id']}", headers=api.accountant).json()["transaction"]
    assert fetched["metadata"]["client"] == ORDER


@pytest.mark.parametrize("bad", [{"a b": "v"}, {"k": 1}, {f"k{i}": "v" for i in range(17)}, "text"])
def test_bad_metadata_is_a_4xx_naming_the_field(api, bad):
    r = api.client.post("/v1/admin/deposits", headers=api.admin,
                        json={"agentAddress": ALICE, "amount": "10", "txHash": "0xd1", "metadata": bad})
    assert r.status_code in (400, 422) and "metadata" in r.text
    assert api.ledger.head()[0] == 0
