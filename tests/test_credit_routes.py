"""The original's credit and admin routes: credit applications scored from the agent's own history,
active credit lines, per-agent reconciliation and reversal requests, with the original's shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from agentbooks import errors
from agentbooks.api import create_app
from agentbooks.credit import apply_for_credit, ledger_history_score, limit_for_score
from api_support import ADMIN_SECRET, Api, make_api
from conftest import ALICE, BOB, CAROL


@pytest.fixture
def api(sqlite_url) -> Iterator[Api]:
    books = make_api(sqlite_url)
    yield books
    books.ledger.close()


@pytest.mark.parametrize("score, limit", [
    (0, None), (49, None), (50, Decimal("10")), (51, Decimal("11.8")), (75, Decimal("55")),
    (100, Decimal("100")), (Decimal("50.5"), Decimal("10.9")),
])
def test_the_originals_limit_rule_in_exact_decimals(score, limit):
    assert limit_for_score(score) == limit


@pytest.mark.parametrize("score", [-1, 101, True, 50.0, "60"])
def test_a_score_outside_0_to_100_is_refused(score):
    with pytest.raises(errors.InvalidArgument):
        limit_for_score(score)


def test_the_default_score_comes_from_the_agents_own_history(ledger):
    assert ledger_history_score(ledger, ALICE) == 0  # nothing recorded: nothing to go on
    ledger.deposit(ALICE, "250", "0xd1")  # 20 for a history + 1 transaction + 25 for 250 USDC received
    assert ledger_history_score(ledger, ALICE) == 46
    for i in range(4):
        ledger.spend(ALICE, "1", f"sk-{i}")
    assert ledger_history_score(ledger, ALICE) == 50
    ledger.reverse(ledger.get_history(ALICE)[0].id, "charged twice")
    assert ledger_history_score(ledger, ALICE) == 41  # one more transaction, 10 off for the correction


def test_an_approved_application_sets_the_limit_a_denied_one_does_not(ledger):
    ledger.deposit(ALICE, "250", "0xd1")
    denied = apply_for_credit(ledger, ALICE)
    assert (denied.approved, denied.score, denied.credit_limit) == (False, 46, None)
    assert ledger.get_credit_info(ALICE) == (Decimal("0"), Decimal("0"))
    granted = apply_for_credit(ledger, ALICE, scorer=lambda _ledger, _agent: 75)
    assert (granted.approved, granted.credit_limit) == (True, Decimal("55"))
    assert ledger.get_credit_info(ALICE)[0] == Decimal("55")


def test_credit_apply_route_with_a_pluggable_scorer(sqlite_url):
    books = make_api(sqlite_url)
    client = TestClient(create_app(ledger=books.ledger, admin_secret=ADMIN_SECRET,
                                   credit_scorer=lambda _ledger, agent: 60 if agent == ALICE else 10))
    r = client.post(f"/v1/agents/{ALICE}/credit/apply", headers=books.alice)
    body = r.json()
    assert r.status_code == 200, r.text
    assert (body["approved"], body["score"], body["creditLimit"]) == (True, "60", "28.000000")
    assert body["transaction"]["kind"] == "set_credit_limit"
    r = client.post(f"/v1/agents/{BOB}/credit/apply", headers=books.admin)
    assert (r.json()["approved"], r.json()["creditLimit"], r.json()["transaction"]) == (False, None, None)
    assert client.post(f"/v1/agents/{BOB}/credit/apply", headers=books.alice).status_code == 403
    books.ledger.close()


def test_active_credit_lines_and_their_use(api):
    api.ledger.set_credit_limit(BOB, "20")
    api.ledger.set_credit_limit(ALICE, "10")
    api.ledger.use_credit(ALICE, "4")
    api.ledger.set_credit_limit(CAROL, "5")
    api.ledger.set_credit_limit(CAROL, "0")  # closed: no longer active
    r = api.client.get("/v1/credit/active", headers=api.accountant)
    assert r.status_code == 200
    assert r.json() == {"count": 2, "credits": [
        {"agentAddr": ALICE, "creditLimit": "10.000000", "creditUsed": "4.000000", "available": "6.000000"},
        {"agentAddr": BOB, "creditLimit": "20.000000", "creditUsed": "0.000000", "available": "20.000000"}]}
    assert api.client.get("/v1/credit/active", headers=api.alice).status_code == 403


def test_reconcile_route_compares_each_agent_with_the_journal(api):
    api.ledger.deposit(ALICE, "10", "0xd1")
    api.ledger.transfer(ALICE, BOB, "3", "inv-1")
    body = api.client.get("/v1/admin/reconcile", headers=api.admin).json()
    assert body["ok"] and body["agentsChecked"] == 2 and body["mismatchedAgents"] == 0
    assert sorted((r["agentAddr"], r["ok"], r["available"]) for r in body["results"]) == sorted([
        (ALICE, True, "7.000000"), (BOB, True, "3.000000")])
    with api.ledger.service.engine.begin() as conn:  # a cache edited behind the ledger's back
        conn.exec_driver_sql("UPDATE agents SET total_in_micros = total_in_micros + 1 WHERE address = ?", (BOB,))
    body = api.client.get("/v1/admin/reconcile", headers=api.admin).json()
    bob = next(r for r in body["results"] if r["agentAddr"] == BOB)
    assert not body["ok"] and body["mismatchedAgents"] == 1 and not bob["ok"]
    assert bob["mismatches"][0]["code"] == "agent_totals_mismatch"


def test_reversal_request_in_the_originals_body(api):
    tx = api.ledger.deposit(ALICE, "10", "0xd1")
    r = api.client.post("/v1/admin/reversals", json={"transactionId": tx.id, "reason": "wrong agent"},
                        headers=api.admin)
    assert r.status_code == 201, r.text
    assert r.json()["transaction"]["kind"] == "reversal"
    assert api.ledger.get_balance(ALICE).available == Decimal("0")
    again = api.client.post("/v1/admin/reversals", json={"transactionId": tx.id, "reason": "again"}, headers=api.admin)
    assert (again.status_code, again.json()["error"]) == (409, "already_reversed")
    missing = api.client.post("/v1/admin/reversals", json={"transactionId": "nope", "reason": "x"}, headers=api.admin)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
