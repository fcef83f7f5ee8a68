"""The filtered transaction listing: exactly the model's answer on random ledgers, stable pages under writes."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentbooks import Ledger
from agentbooks.domain.errors import InvalidAddress, LedgerError
from agentbooks.domain.model import Transaction
from agentbooks.domain.money import to_decimal
from api_support import Api, make_api
from conftest import ALICE, BOB, CAROL, StepClock

AGENTS = [ALICE, BOB, CAROL]

operation = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(AGENTS), st.integers(1, 50), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("spend"), st.sampled_from(AGENTS), st.integers(1, 20), st.sampled_from(["sk-1", "sk-2"])),
    st.tuples(st.just("transfer"), st.sampled_from(AGENTS), st.integers(1, 20), st.sampled_from(["a", "b"])),
)


def build(ledger: Ledger, steps: list[tuple]) -> None:
    for i, (name, agent, amount, tag) in enumerate(steps):
        meta = {"tag": tag} if i % 3 else None
        try:
            if name == "deposit":
                ledger.deposit(agent, amount, f"0x{i:04x}", metadata=meta)
            elif name == "spend":
                ledger.spend(agent, amount, tag, metadata=meta)
            else:
                ledger.transfer(agent, AGENTS[(AGENTS.index(agent) + 1) % 3], amount, f"t-{i}", metadata=meta)
        except LedgerError:
            pass  # refused (not enough money): not in the journal


def matches(t: Transaction, f: dict) -> bool:
    """The model: the filters' meaning, read off the transaction itself."""
    client = t.metadata.get("client", {})
    return all([
        f.get("agent") is None or f["agent"] in {fl.agent for fl in t.flows},
        f.get("kind") is None or t.kind.value == f["kind"],
        f.get("reference") is None or t.reference == f["reference"],
        f.get("from_seq") is None or t.seq >= f["from_seq"],
        f.get("to_seq") is None or t.seq <= f["to_seq"],
        f.get("from_time") is None or t.occurred_at >= f["from_time"],
        f.get("to_time") is None or t.occurred_at <= f["to_time"],
        f.get("min_amount") is None or to_decimal(t.amount_micros) >= Decimal(f["min_amount"]),
        f.get("max_amount") is None or to_decimal(t.amount_micros) <= Decimal(f["max_amount"]),
        f.get("meta_key") is None or (f["meta_key"] in client
                                      and f.get("meta_value") in (None, client[f["meta_key"]])),
    ])


def every_page(ledger: Ledger, limit: int, **filters) -> list[Transaction]:
    out, cursor = [], None
    while True:
        page = ledger.find_transactions(limit=limit, cursor=cursor, **filters)
        out += page.transactions
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


filters = st.fixed_dictionaries({}, optional={
    "agent": st.sampled_from(AGENTS), "kind": st.sampled_from(["deposit", "spend", "transfer"]),
    "reference": st.sampled_from(["sk-1", "t-3", "t-4"]), "from_seq": st.integers(0, 30),
    "to_seq": st.integers(0, 30), "min_amount": st.sampled_from(["0", "5", "10.5"]),
    "max_amount": st.sampled_from(["5", "20", "49.999999"]), "meta_key": st.just("tag"),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operation, min_size=1, max_size=30), wanted=st.lists(filters, min_size=1, max_size=6),
       value=st.sampled_from([None, "a", "b"]), limit=st.integers(1, 7))
def test_queries_equal_the_models_answer_on_random_ledgers(tmp_path_factory, steps, wanted, value, limit):
    url = f"sqlite:///{tmp_path_factory.mktemp('q') / 'books.db'}"
    with Ledger.open(url, clock=StepClock()) as ledger:
        build(ledger, steps)
        journal = list(ledger.transactions())
        middle = journal[len(journal) // 2].occurred_at if journal else None
        for f in wanted:
            if "meta_key" in f and value is not None:
                f = {**f, "meta_value": value}
            for timed in ({}, {"from_time": middle}, {"to_time": middle}):
                query = {**f, **timed}
                expected = [t.seq for t in journal if matches(t, query)]
                assert [t.seq for t in every_page(ledger, limit, **query)] == expected, query


@pytest.mark.postgres
def test_pages_neither_skip_nor_repeat_while_writers_run(pg_url):
    with Ledger.open(pg_url) as ledger:
        for i in range(20):
            ledger.deposit(AGENTS[i % 3], "1", f"0xa{i}")
        head_at_start = ledger.head()[0]
        stop = threading.Event()

        def writer(w: int) -> None:
            i = 0
            while not stop.is_set() and i < 300:
                ledger.deposit(AGENTS[i % 3], "1", f"0xw{w}-{i}", metadata={"writer": str(w)})
                ledger.spend(AGENTS[i % 3], "1", "sk")
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
        for t in threads:
            t.start()
        try:
            seen = every_page(ledger, 3, kind="deposit")
        finally:
            stop.set()
            for t in threads:
                t.join()
        seqs = [t.seq for t in seen]
        assert seqs == sorted(set(seqs))  # increasing: nothing repeated
        final = [t.seq for t in ledger.transactions() if t.kind.value == "deposit" and t.seq <= seqs[-1]]
        assert seqs == final and seqs[-1] >= head_at_start  # nothing skipped


def test_bad_filters_are_refused(ledger):
    for bad in ({"kind": "gift"}, {"meta_value": "x"}, {"meta_key": "a b"}, {"min_amount": "1.0000001"},
                {"from_time": "yesterday"}, {"limit": 0}, {"cursor": -1}):
        with pytest.raises(LedgerError):
            ledger.find_transactions(**bad)
    with pytest.raises(InvalidAddress):
        ledger.find_transactions(agent="not-an-address")


@pytest.fixture
def api(sqlite_url) -> Iterator[Api]:
    books = make_api(sqlite_url)
    yield books
    books.ledger.close()


def test_the_listing_over_http(api):
    for i, order in enumerate(["o-1", "o-2", "o-1"]):
        api.ledger.deposit(ALICE, str(i + 1), f"0xd{i}", metadata={"orderId": order})
    api.ledger.spend(ALICE, "1", "sk-1")
    r = api.client.get("/v1/transactions", headers=api.accountant,
                       params={"metaKey": "orderId", "metaValue": "o-1", "limit": 1})
    assert r.status_code == 200, r.text
    first = r.json()
    assert [t["seq"] for t in first["transactions"]] == [1] and first["hasMore"] and first["nextCursor"] == 1
    second = api.client.get("/v1/transactions", headers=api.accountant, params={
        "metaKey": "orderId", "metaValue": "o-1", "limit": 1, "cursor": first["nextCursor"]}).json()
    assert [t["seq"] for t in second["transactions"]] == [3] and not second["hasMore"]
    r = api.client.get("/v1/transactions", headers=api.accountant,
                       params={"agent": ALICE, "kind": "spend", "minAmount": "1", "maxAmount": "1"})
    assert [t["kind"] for t in r.json()["transactions"]] == ["spend"]
    assert api.client.get("/v1/transactions", headers=api.accountant, params={"kind": "gift"}).status_code == 400
    assert api.client.get("/v1/transactions", headers=api.alice).status_code == 403
