"""A live ``agentbooks serve`` on PostgreSQL, many HTTP clients on one agent at once.

Sixteen client threads withdraw, hold and spend from a single agent over
real HTTP (uvicorn on 127.0.0.1). No answer is a 5xx, the agent never goes
negative nor past its credit line, and the final balance is exactly the sum
of the requests the server accepted.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from conftest import ALICE

pytestmark = pytest.mark.postgres
ADMIN = {"X-Admin-Secret": "live-test-secret"}
CLIENTS, REQUESTS_EACH = 16, 15


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(pg_url):
    port = _free_port()
    env = {**os.environ, "AGENTBOOKS_ADMIN_SECRET": ADMIN["X-Admin-Secret"], "AGENTBOOKS_DATABASE_URL": pg_url}
    proc = subprocess.Popen([sys.executable, "-m", "agentbooks.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"server did not start: {proc.stderr.read(4000) if proc.poll() is not None else ''}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_many_clients_withdraw_hold_and_spend_from_one_agent(live_server):
    admin = httpx.Client(base_url=live_server, headers=ADMIN, timeout=30)
    key = admin.post("/v1/admin/api-keys", json={"role": "agent", "agentAddress": ALICE}).json()["apiKey"]
    assert admin.post("/v1/admin/deposits", json={"agentAddress": ALICE, "amount": "100", "txHash": "0xd"}).status_code == 201
    assert admin.put(f"/v1/admin/agents/{ALICE}/credit-limit", json={"limit": "20"}).status_code == 200

    results: list[tuple[str, Decimal, int, str | None]] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        rng = random.Random(number)
        with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            for i in range(REQUESTS_EACH):
                kind, amount = rng.choice(["withdraw", "hold", "spend"]), rng.choice(["1", "2.5", "5", "7.25"])
                if kind == "withdraw":
                    r = http.post(f"/v1/agents/{ALICE}/withdraw", json={"amount": amount})
                elif kind == "hold":
                    r = http.post(f"/v1/agents/{ALICE}/holds", json={"amount": amount, "reference": f"h-{number}-{i}"})
                else:
                    r = http.post(f"/v1/agents/{ALICE}/spend", json={"amount": amount, "sessionKeyId": f"sk-{number}"})
                with lock:
                    results.append((kind, Decimal(amount), r.status_code, r.json().get("error")))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    outcomes = Counter((status, error) for _, _, status, error in results)
    assert len(results) == CLIENTS * REQUESTS_EACH
    assert all(status < 500 for status, _ in outcomes), outcomes
    assert set(outcomes) <= {(200, None), (201, None), (202, None), (422, "insufficient_balance"),
                             (422, "credit_limit_exceeded")}, outcomes
    accepted = [(kind, amount) for kind, amount, status, _ in results if status < 300]
    refused = len(results) - len(accepted)
    assert accepted and refused, "the load should both succeed and run into the limits"

    b = admin.get(f"/v1/agents/{ALICE}/balance").json()["balance"]
    held = sum((a for k, a in accepted if k in ("withdraw", "hold")), Decimal(0))
    spent = sum((a for k, a in accepted if k == "spend"), Decimal(0))
    assert Decimal(b["available"]) >= 0 and Decimal(b["creditUsed"]) <= Decimal(b["creditLimit"])
    assert Decimal(b["pending"]) == held
    assert Decimal(b["totalOut"]) == spent
    assert Decimal(b["available"]) + Decimal(b["pending"]) == Decimal(100) - spent + Decimal(b["creditUsed"])
    journal = admin.get("/v1/journal", params={"limit": 1000}).json()
    assert len(journal["transactions"]) == 2 + len(accepted)  # the deposit, the limit, every accepted request
