"""``agentbooks.client`` against a live server: the OpenAPI contract, typed results and errors, and
retries under injected failures that record every operation exactly once."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any, Iterator

import httpx
import pytest
import uvicorn

from agentbooks import Ledger
from agentbooks.api import create_app
from agentbooks.client import ROUTES, AsyncClient, Call, Client
from agentbooks.domain.errors import DuplicateDeposit, InsufficientBalance
from agentbooks.domain.model import DryRun, Transaction
from api_support import ADMIN_SECRET
from conftest import ALICE, BOB, StepClock


@pytest.fixture
def server(sqlite_url) -> Iterator[tuple[str, Ledger]]:
    """The API on 127.0.0.1, a port the system picks, for the test's duration."""
    ledger = Ledger.open(sqlite_url, clock=StepClock())
    config = uvicorn.Config(create_app(ledger=ledger, admin_secret=ADMIN_SECRET), host="127.0.0.1", port=0,
                            log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        thread.join(0.01)
    port = running.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", ledger
    running.should_exit = True
    thread.join(10)
    ledger.close()


class Recorder(Client):
    def __init__(self) -> None:
        self.calls: list[Call] = []

    def _run(self, call: Call) -> Any:
        self.calls.append(call)


def every_call() -> list[Call]:
    c = Recorder()
    opts = {"metadata": {"k": "v"}, "dry_run": True}
    c.deposit(ALICE, "1", "0x1", **opts), c.withdraw(ALICE, "1", "0x2", **opts), c.spend(ALICE, "1", "sk", **opts)
    c.hold(ALICE, "1", "h", expires_at="2030-01-01T00:00:00Z", **opts), c.confirm_hold(ALICE, "1", "h", tx_hash="0x3")
    c.release_hold(ALICE, "1", "h", reason="r"), c.settle_hold(ALICE, BOB, "1", "h", fee="0.1")
    c.escrow_lock(ALICE, "1", "e"), c.release_escrow(ALICE, BOB, "1", "e"), c.refund_escrow(ALICE, "1", "e")
    c.settle_escrow(ALICE, BOB, "1", "e"), c.refund(ALICE, "1", "r"), c.set_credit_limit(ALICE, "5")
    c.use_credit(ALICE, "1"), c.repay_credit(ALICE, "1"), c.transfer(ALICE, BOB, "1", "t")
    c.reverse("tx-id", "why"), c.batch([{"op": "deposit"}]), c.get_balance(ALICE, at="2030-01-01T00:00:00Z")
    c.get_transaction("tx-id")
    c.find_transactions(agent=ALICE, kind="spend", reference="r", tx_hash="0x1", from_seq=1, to_seq=2,
                        from_time="2030-01-01T00:00:00Z", to_time="2030-01-02T00:00:00Z", min_amount="1",
                        max_amount="2", meta_key="k", meta_value="v", limit=5, cursor=1)
    return c.calls


def test_every_call_of_the_client_is_in_the_openapi_document(sqlite_url):
    with Ledger.open(sqlite_url) as ledger:
        document = create_app(ledger=ledger, admin_secret=ADMIN_SECRET).openapi()
    schemas = document["components"]["schemas"]
    calls = every_call()
    assert {c.name for c in calls} == set(ROUTES)
    for call in calls:
        method, template = ROUTES[call.name]
        operation = document["paths"][template][method.lower()]
        parameters = {p["name"]: p["in"] for p in operation.get("parameters", [])}
        assert {name: "path" for name in call.path} == {n: w for n, w in parameters.items() if w == "path"}
        assert set(call.query) <= {n for n, w in parameters.items() if w == "query"}, call.name
        if call.body is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert set(call.body) <= set(schemas[ref.rsplit("/", 1)[1]]["properties"]), call.name
        if call.idempotency_key is not None:
            assert parameters.get("Idempotency-Key") == "header"


class Flaky(httpx.BaseTransport):
    """Each write's first send reaches the server but its answer is lost; the second is answered 429
    (Retry-After: 0) without reaching it, or 503 commit_outcome_unknown after it; the third goes through."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sends: dict[str, int] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self.inner.handle_request(request)
        n = self.sends[key] = self.sends.get(key, 0) + 1
        if n == 2 and len(self.sends) % 2:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "rate_limited", "message": "slow"})
        response = self.inner.handle_request(request)
        response.read()
        if n == 1:
            raise httpx.ReadError("connection reset after the server processed the request", request=request)
        if n == 2:
            return httpx.Response(503, json={"error": "commit_outcome_unknown", "message": "lost"})
        return response


def test_retries_under_injected_failures_record_every_operation_once(server):
    url, ledger = server
    flaky = Flaky()
    with Client(url, admin_secret=ADMIN_SECRET, transport=flaky, backoff=0.001) as client:
        first = client.deposit(ALICE, "10", "0xd1", metadata={"orderId": "o-1"})
        assert isinstance(first, Transaction) and first.replayed and first.metadata["client"] == {"orderId": "o-1"}
        client.spend(ALICE, "2", "sk-1")
        client.hold(ALICE, "3", "h-1")
        client.settle_hold(ALICE, BOB, "3", "h-1", fee="0.5")
        client.transfer(BOB, ALICE, "1", "t-1")
        client.batch([{"op": "deposit", "agent": BOB, "amount": "4", "txHash": "0xd2"},
                      {"op": "spend", "agent": BOB, "amount": "1", "sessionKeyId": "sk-2"}])
        with pytest.raises(InsufficientBalance):  # a refusal survives the retries as its own error
            client.spend(BOB, "100", "sk-3")
        with pytest.raises(DuplicateDeposit):
            client.deposit(ALICE, "10", "0xd1")
        balance = client.get_balance(ALICE)
    assert all(n >= 2 for n in flaky.sends.values())  # every write was sent again
    assert [t.kind.value for t in ledger.transactions()] == [
        "deposit", "spend", "hold", "settle_hold", "transfer", "deposit", "spend"]  # each exactly once
    assert balance.available == Decimal("6.000000") and ledger.get_balance(ALICE).available == balance.available


def test_dry_runs_and_queries_through_the_client(server):
    url, ledger = server
    with Client(url, admin_secret=ADMIN_SECRET) as client:
        plan = client.deposit(ALICE, "10", "0xd1", dry_run=True)
        assert isinstance(plan, DryRun) and plan.balances[ALICE].available == Decimal("10") and ledger.head()[0] == 0
        tx = client.deposit(ALICE, "10", "0xd1", metadata={"orderId": "o-1"})
        page = client.find_transactions(meta_key="orderId", meta_value="o-1")
        assert [t.id for t in page.transactions] == [tx.id] and page.next_cursor is None
        assert client.get_transaction(tx.id).hash == ledger.get_transaction(tx.id).hash


class AsyncFlaky(httpx.AsyncBaseTransport):
    """The async twin of ``Flaky``'s first failure: each write's first answer is lost."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sends: dict[str, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            self.sends[key] = self.sends.get(key, 0) + 1
            if self.sends[key] == 1:
                await response.aread()
                raise httpx.ReadError("lost", request=request)
        return response


def test_the_async_client_retries_the_same_way(server):
    url, ledger = server

    async def run() -> list[Transaction]:
        async with AsyncClient(url, admin_secret=ADMIN_SECRET, transport=AsyncFlaky(), backoff=0.001) as client:
            await client.deposit(ALICE, "10", "0xd1")
            return await asyncio.gather(*(client.spend(ALICE, "1", f"sk-{i}") for i in range(5)))

    spent = asyncio.run(run())
    assert all(t.replayed for t in spent)
    assert [t.kind.value for t in ledger.transactions()] == ["deposit"] + ["spend"] * 5
    assert ledger.get_balance(ALICE).available == Decimal("5.000000")
