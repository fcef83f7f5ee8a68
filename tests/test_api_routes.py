"""The HTTP API route by route: success, each error code, auth, idempotency, pagination."""

from __future__ import annotations

from typing import Iterator

import pytest

from api_support import Api, make_api
from conftest import ALICE, BOB, CAROL


@pytest.fixture
def api(sqlite_url) -> Iterator[Api]:
    books = make_api(sqlite_url)
    yield books
    books.ledger.close()


def deposit(api: Api, agent: str, amount: str, tx_hash: str) -> dict:
    r = api.client.post("/v1/admin/deposits", json={"agentAddress": agent, "amount": amount, "txHash": tx_hash},
                        headers=api.admin)
    assert r.status_code == 201, r.text
    return r.json()["transaction"]


def balance(api: Api, agent: str, headers: dict) -> dict:
    r = api.client.get(f"/v1/agents/{agent}/balance", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["balance"]


def test_deposit_then_balance_in_the_seeds_shape(api):
    tx = deposit(api, ALICE, "10.5", "0xd1")
    assert [(p["account"], p["amount"]) for p in tx["postings"]] == [
        ("Platform:Treasury", "10.500000"), (f"Agent:{ALICE}:Available", "-10.500000")]
    b = balance(api, ALICE, api.alice)
    assert {k: b[k] for k in ("agentAddr", "available", "pending", "escrowed", "creditLimit", "creditUsed",
                              "totalIn", "totalOut")} == {
        "agentAddr": ALICE, "available": "10.500000", "pending": "0.000000", "escrowed": "0.000000",
        "creditLimit": "0.000000", "creditUsed": "0.000000", "totalIn": "10.500000", "totalOut": "0.000000"}
    assert b["updatedAt"].endswith("Z")


def test_repeated_deposit_is_409_and_credited_once(api):
    deposit(api, ALICE, "5", "0xd1")
    r = api.client.post("/v1/admin/deposits", json={"agentAddress": ALICE, "amount": "5", "txHash": "0xd1"},
                        headers=api.admin)
    assert (r.status_code, r.json()["error"]) == (409, "duplicate_deposit")
    assert balance(api, ALICE, api.alice)["available"] == "5.000000"


def test_balance_at_a_past_time(api):
    first = deposit(api, ALICE, "5", "0xd1")
    deposit(api, ALICE, "7", "0xd2")
    r = api.client.get(f"/v1/agents/{ALICE}/balance", params={"at": first["occurredAt"]}, headers=api.alice)
    assert r.json()["balance"]["available"] == "5.000000"
    r = api.client.get(f"/v1/agents/{ALICE}/balance", params={"at": "last tuesday"}, headers=api.alice)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_timestamp")


def test_history_pages_stay_stable_under_concurrent_writes(api):
    for i in range(5):
        deposit(api, ALICE, "1", f"0xd{i}")
    first = api.client.get(f"/v1/agents/{ALICE}/ledger", params={"limit": 2}, headers=api.alice).json()
    assert [e["seq"] for e in first["entries"]] == [5, 4] and first["hasMore"]
    deposit(api, ALICE, "1", "0xlate")  # a write between two page reads
    second = api.client.get(f"/v1/agents/{ALICE}/ledger", params={"limit": 2, "cursor": first["nextCursor"]},
                            headers=api.alice).json()
    third = api.client.get(f"/v1/agents/{ALICE}/ledger", params={"limit": 2, "cursor": second["nextCursor"]},
                           headers=api.alice).json()
    assert [e["seq"] for e in second["entries"]] == [3, 2]
    assert [e["seq"] for e in third["entries"]] == [1] and not third["hasMore"] and third["nextCursor"] is None
    assert first["entries"][0]["type"] == "deposit" and first["entries"][0]["amount"] == "1.000000"


def test_history_route_shows_the_sellers_own_amount_and_defaults_to_fifty(api):
    deposit(api, ALICE, "10", "0xd1")
    api.ledger.hold(ALICE, "5.00", "h")
    r = api.client.post(f"/v1/admin/holds/{ALICE}/h/settle", json={"seller": BOB, "amount": "5.00", "fee": "0.50"},
                        headers=api.admin)
    assert r.status_code == 200, r.text
    bob = api.client.get(f"/v1/agents/{BOB}/ledger", headers=api.bob).json()
    assert [(e["type"], e["amount"]) for e in bob["entries"]] == [("settle_hold", "4.500000")]
    for i in range(60):
        api.ledger.deposit(ALICE, "1", f"0xmany{i}")
    for params in ({}, {"limit": 0}, {"limit": -1}):
        page = api.client.get(f"/v1/agents/{ALICE}/ledger", params=params, headers=api.alice).json()
        assert len(page["entries"]) == 50 and page["hasMore"]


def test_withdraw_holds_own_funds_then_the_platform_confirms(api):
    deposit(api, ALICE, "10", "0xd1")
    api.client.put(f"/v1/admin/agents/{ALICE}/credit-limit", json={"limit": "100"}, headers=api.admin)
    r = api.client.post(f"/v1/agents/{ALICE}/withdraw", json={"amount": "11"}, headers=api.alice)
    assert (r.status_code, r.json()["error"]) == (422, "insufficient_balance")  # never from credit
    r = api.client.post(f"/v1/agents/{ALICE}/withdraw", json={"amount": "6"}, headers=api.alice)
    assert r.status_code == 202
    hold_ref = r.json()["holdRef"]
    assert balance(api, ALICE, api.alice)["pending"] == "6.000000"
    r = api.client.post(f"/v1/admin/holds/{ALICE}/{hold_ref}/confirm", json={"amount": "6", "txHash": "0xout"},
                        headers=api.admin)
    assert r.status_code == 200
    b = balance(api, ALICE, api.alice)
    assert (b["available"], b["pending"], b["totalOut"]) == ("4.000000", "0.000000", "6.000000")


def test_every_agent_route(api):
    deposit(api, ALICE, "100", "0xd1")
    api.client.put(f"/v1/admin/agents/{ALICE}/credit-limit", json={"limit": "20"}, headers=api.admin)
    calls = [
        ("post", f"/v1/agents/{ALICE}/spend", {"amount": "1", "sessionKeyId": "sk-1"}, 200),
        ("post", f"/v1/agents/{ALICE}/holds", {"amount": "5", "reference": "h1",
                                                 "expiresAt": "2999-01-01T00:00:00Z"}, 201),
        ("post", f"/v1/agents/{ALICE}/escrows", {"amount": "10", "reference": "e1"}, 201),
        ("post", f"/v1/agents/{ALICE}/escrows/e1/release", {"seller": BOB, "amount": "4"}, 200),
        ("post", f"/v1/agents/{ALICE}/transfers", {"toAgent": BOB, "amount": "2", "reference": "inv-1"}, 200),
        ("post", f"/v1/agents/{ALICE}/credit/use", {"amount": "3"}, 200),
        ("post", f"/v1/agents/{ALICE}/credit/repay", {"amount": "3"}, 200),
    ]
    for method, path, body, status in calls:
        r = getattr(api.client, method)(path, json=body, headers=api.alice)
        assert r.status_code == status, (path, r.text)
        assert r.json()["transaction"]["seq"] > 0
    credit = api.client.get(f"/v1/agents/{ALICE}/credit", headers=api.alice).json()
    assert credit == {"address": ALICE, "limit": "20.000000", "used": "0.000000", "available": "20.000000"}
    holds = api.client.get(f"/v1/agents/{ALICE}/holds", headers=api.alice).json()["holds"]
    assert {(h["kind"], h["reference"], h["remaining"]) for h in holds} == {("hold", "h1", "5.000000"),
                                                                             ("escrow", "e1", "6.000000")}
    assert balance(api, BOB, api.bob)["available"] == "6.000000"


def test_every_admin_route(api):
    deposit(api, ALICE, "100", "0xd1")
    a = api.client
    assert a.post("/v1/admin/withdrawals", json={"agentAddress": ALICE, "amount": "1", "txHash": "0xw1"},
                  headers=api.admin).status_code == 201
    for ref in ("h1", "h2", "h3"):
        assert a.post(f"/v1/agents/{ALICE}/holds", json={"amount": "5", "reference": ref}, headers=api.alice).status_code == 201
    assert a.post(f"/v1/admin/holds/{ALICE}/h1/release", json={"amount": "5", "reason": "rpc failed"},
                  headers=api.admin).status_code == 200
    assert a.post(f"/v1/admin/holds/{ALICE}/h2/settle", json={"seller": BOB, "amount": "5", "fee": "0.5"},
                  headers=api.admin).status_code == 200
    for ref in ("e1", "e2"):
        a.post(f"/v1/agents/{ALICE}/escrows", json={"amount": "4", "reference": ref}, headers=api.alice)
    assert a.post(f"/v1/admin/escrows/{ALICE}/e1/refund", json={"amount": "4"}, headers=api.admin).status_code == 200
    assert a.post(f"/v1/admin/escrows/{ALICE}/e2/settle", json={"seller": CAROL, "sellerAmount": "1"},
                  headers=api.admin).status_code == 200
    a.post(f"/v1/agents/{ALICE}/spend", json={"amount": "3", "sessionKeyId": "sk"}, headers=api.alice)
    refund = a.post("/v1/admin/refunds", json={"agentAddress": ALICE, "amount": "3", "reference": "f-1"},
                    headers=api.admin)
    assert refund.status_code == 201
    r = a.post(f"/v1/admin/transactions/{refund.json()['transaction']['id']}/reverse", json={"reason": "typo"},
               headers=api.admin)
    assert r.status_code == 201 and r.json()["transaction"]["kind"] == "reversal"
    r = a.post("/v1/admin/batch", headers=api.admin, json={"operations": [
        {"op": "deposit", "agent": CAROL, "amount": "2", "txHash": "0xb1"},
        {"op": "transfer", "fromAgent": CAROL, "toAgent": BOB, "amount": "1", "reference": "b-1"}]})
    assert r.status_code == 201 and [t["kind"] for t in r.json()["transactions"]] == ["deposit", "transfer"]
    assert a.post("/v1/admin/holds/sweep", headers=api.admin).json() == {"transactions": []}
    r = a.post("/v1/admin/api-keys", json={"role": "accountant"}, headers=api.admin)
    assert r.status_code == 201 and r.json()["apiKey"].startswith("abk_")
    assert balance(api, BOB, api.bob)["available"] == "5.500000"
    assert balance(api, CAROL, api.admin)["available"] == "2.000000"


def test_books_routes_for_accountants(api):
    tx = deposit(api, ALICE, "10", "0xd1")
    a, acc = api.client, api.accountant
    accounts = a.get("/v1/accounts", headers=acc).json()
    assert accounts["total"] == "0.000000"
    assert {x["account"]: x["balance"] for x in accounts["accounts"]}["Platform:Treasury"] == "10.000000"
    assert a.get("/v1/accounts", params={"prefix": f"Agent:{ALICE}", "at": "0"}, headers=acc).json()["total"] == "0.000000"
    assert a.get(f"/v1/accounts/Agent:{ALICE}:Available", headers=acc).json()["balance"] == "-10.000000"
    assert a.get(f"/v1/transactions/{tx['id']}", headers=acc).json()["transaction"]["hash"] == tx["hash"]
    journal = a.get("/v1/journal", params={"afterSeq": 0, "limit": 1}, headers=acc).json()
    assert [t["seq"] for t in journal["transactions"]] == [1] and not journal["hasMore"]
    assert a.get("/v1/holds", headers=acc).json() == {"holds": []}
    assert a.get(f"/v1/agents/{ALICE}/balance", headers=acc).status_code == 200
    assert a.get("/healthz").json()["journalSeq"] == 1
    trial = a.get("/v1/reports/trial-balance", headers=acc).json()
    assert trial["checks"]["debits equal credits"] and all(trial["checks"].values()) and trial["totals"]["debit"] == "10.000000"
    sheet_csv = a.get("/v1/reports/balance-sheet", params={"format": "csv"}, headers=acc).text
    assert sheet_csv.startswith("# report: Balance sheet\n") and "\nSection,Line," in sheet_csv
    assert a.get("/v1/reports/nope", headers=acc).json()["error"] == "invalid_argument"
    assert "agentbooks_operations_total" in a.get("/metrics").text


@pytest.mark.parametrize("method, path, body, status, code", [
    ("post", f"/v1/agents/{ALICE}/spend", {"amount": "1.0000001", "sessionKeyId": "sk"}, 400, "invalid_amount"),
    ("post", f"/v1/agents/{ALICE}/spend", {"amount": "-1", "sessionKeyId": "sk"}, 400, "invalid_amount"),
    ("post", f"/v1/agents/{ALICE}/spend", {"amount": 1.5, "sessionKeyId": "sk"}, 422, "invalid_request"),
    ("post", f"/v1/agents/{ALICE}/spend", {"sessionKeyId": "sk"}, 422, "invalid_request"),
    ("post", f"/v1/agents/{ALICE}/spend", {"amount": "99", "sessionKeyId": "sk"}, 422, "insufficient_balance"),
    ("post", f"/v1/agents/{ALICE}/holds", {"amount": "1", "reference": "has space"}, 400, "invalid_reference"),
    ("post", f"/v1/agents/{ALICE}/holds", {"amount": "1", "reference": "h", "expiresAt": "soon"}, 400,
     "invalid_timestamp"),
    ("post", f"/v1/agents/{ALICE}/credit/use", {"amount": "1"}, 422, "credit_limit_exceeded"),
    ("post", f"/v1/agents/{ALICE}/credit/repay", {"amount": "1"}, 422, "no_outstanding_credit"),
    ("post", f"/v1/agents/{ALICE}/transfers", {"toAgent": "0x123", "amount": "1", "reference": "x"}, 400,
     "invalid_address"),
    ("post", f"/v1/admin/holds/{ALICE}/nope/confirm", {"amount": "1"}, 404, "unknown_hold"),
    ("post", f"/v1/admin/escrows/{ALICE}/nope/refund", {"amount": "1"}, 404, "unknown_escrow"),
    ("post", "/v1/admin/refunds", {"agentAddress": ALICE, "amount": "1", "reference": "r"}, 422, "refund_exceeds_paid"),
    ("post", "/v1/admin/transactions/nope/reverse", {"reason": "x"}, 404, "not_found"),
    ("put", f"/v1/admin/agents/{ALICE}/credit-limit", {"limit": "1", "extra": 1}, 422, "invalid_request"),
    ("post", "/v1/admin/batch", {"operations": [{"op": "mint"}]}, 400, "invalid_argument"),
    ("post", "/v1/admin/api-keys", {"role": "admin"}, 400, "invalid_argument"),
])
def test_errors_have_one_shape_and_a_stable_code(api, method, path, body, status, code):
    deposit(api, ALICE, "5", "0xd1")
    headers = api.admin if "/admin/" in path else api.alice
    before = api.ledger.head()
    r = getattr(api.client, method)(path, json=body, headers=headers)
    assert (r.status_code, r.json()["error"]) == (status, code), r.text
    assert r.json()["message"]
    assert api.ledger.head() == before  # nothing written


def test_conflicts_on_reused_references(api):
    deposit(api, ALICE, "50", "0xd1")
    post = api.client.post
    post(f"/v1/agents/{ALICE}/holds", json={"amount": "5", "reference": "h1"}, headers=api.alice)
    r = post(f"/v1/agents/{ALICE}/holds", json={"amount": "5", "reference": "h1"}, headers=api.alice)
    assert (r.status_code, r.json()["error"]) == (409, "reference_in_use")
    r = post(f"/v1/admin/holds/{ALICE}/h1/release", json={"amount": "6"}, headers=api.admin)
    assert (r.status_code, r.json()["error"]) == (422, "hold_exceeded")
    post(f"/v1/agents/{ALICE}/spend", json={"amount": "5", "sessionKeyId": "sk"}, headers=api.alice)
    refund = {"agentAddress": ALICE, "amount": "1", "reference": "f1"}
    assert post("/v1/admin/refunds", json=refund, headers=api.admin).status_code == 201
    r = post("/v1/admin/refunds", json=refund, headers=api.admin)
    assert (r.status_code, r.json()["error"]) == (409, "duplicate_refund")
    tx_id = post("/v1/admin/deposits", json={"agentAddress": BOB, "amount": "1", "txHash": "0xb"},
                     headers=api.admin).json()["transaction"]["id"]
    assert post(f"/v1/admin/transactions/{tx_id}/reverse", json={"reason": "x"}, headers=api.admin).status_code == 201
    r = post(f"/v1/admin/transactions/{tx_id}/reverse", json={"reason": "x"}, headers=api.admin)
    assert (r.status_code, r.json()["error"]) == (409, "already_reversed")


def test_auth_rules(api, sqlite_url):
    deposit(api, ALICE, "5", "0xd1")
    get, post = api.client.get, api.client.post
    path = f"/v1/agents/{ALICE}/balance"
    assert (get(path).status_code, get(path).json()["error"]) == (401, "unauthorized")
    assert get(path, headers={"Authorization": "Bearer abk_nope"}).status_code == 401
    assert get(path, headers={"X-Admin-Secret": "wrong"}).status_code == 401
    assert get(path, headers=api.bob).status_code == 403  # another agent's money
    assert post(f"/v1/agents/{ALICE}/spend", json={"amount": "1", "sessionKeyId": "s"}, headers=api.bob).status_code == 403
    assert get(path, headers=api.accountant).status_code == 200  # accountants read everything
    r = post(f"/v1/agents/{ALICE}/spend", json={"amount": "1", "sessionKeyId": "s"}, headers=api.accountant)
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")  # and move nothing
    assert get("/v1/accounts", headers=api.alice).status_code == 403
    assert post("/v1/admin/deposits", json={"agentAddress": ALICE, "amount": "1", "txHash": "0x9"},
                headers=api.alice).status_code == 403
    no_admin = make_api(sqlite_url.replace("books.db", "other.db"), admin_secret=None)
    r = no_admin.client.post("/v1/admin/deposits", json={"agentAddress": ALICE, "amount": "1", "txHash": "0x9"},
                             headers={"X-Admin-Secret": "anything"})
    assert (r.status_code, r.json()["error"]) == (403, "admin_disabled")
    no_admin.ledger.close()


def test_idempotent_replay_and_conflict(api):
    deposit(api, ALICE, "20", "0xd1")
    body = {"amount": "3", "sessionKeyId": "sk"}
    headers = {**api.alice, "Idempotency-Key": "order-77"}
    first = api.client.post(f"/v1/agents/{ALICE}/spend", json=body, headers=headers)
    again = api.client.post(f"/v1/agents/{ALICE}/spend", json=body, headers=headers)
    assert first.json() == again.json() and again.headers["Idempotent-Replay"] == "true"
    assert "Idempotent-Replay" not in first.headers
    assert balance(api, ALICE, api.alice)["available"] == "17.000000"
    r = api.client.post(f"/v1/agents/{ALICE}/spend", json={**body, "amount": "4"}, headers=headers)
    assert (r.status_code, r.json()["error"]) == (409, "idempotency_conflict")
    # Keys are per caller: Bob's "order-77" is a different request.
    deposit(api, BOB, "5", "0xd2")
    r = api.client.post(f"/v1/agents/{BOB}/spend", json=body, headers={**api.bob, "Idempotency-Key": "order-77"})
    assert r.status_code == 200 and "Idempotent-Replay" not in r.headers


def test_a_refused_request_keeps_its_refusal_under_its_key(api):
    """A client that trusted a 422 must never be charged by retrying the same key later."""
    body = {"amount": "3", "sessionKeyId": "sk"}
    headers = {**api.alice, "Idempotency-Key": "call-9"}
    first = api.client.post(f"/v1/agents/{ALICE}/spend", json=body, headers=headers)
    assert (first.status_code, first.json()["error"]) == (422, "insufficient_balance")
    assert "Idempotent-Replay" not in first.headers
    deposit(api, ALICE, "20", "0xd9")
    again = api.client.post(f"/v1/agents/{ALICE}/spend", json=body, headers=headers)
    assert (again.status_code, again.json()) == (422, first.json())
    assert again.headers["Idempotent-Replay"] == "true"
    assert balance(api, ALICE, api.alice)["available"] == "20.000000"


def test_request_id_on_every_response(api):
    assert api.client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    assert len(api.client.get("/v1/accounts").headers["X-Request-ID"]) == 32


def test_openapi_documents_every_route_and_error(api):
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    assert len(paths) >= 30
    for path, methods in paths.items():
        for method, op in methods.items():
            if path.startswith("/v1/"):
                assert {"401", "403", "422"} <= set(op["responses"]), (method, path)


@pytest.mark.parametrize("method, path, body, status, code", [
    ("get", "/v1/accounts?at=\u00b2", None, 400, "invalid_timestamp"),  # isdigit() is true for "²"
    ("get", f"/v1/journal?afterSeq={2**70}", None, 422, "invalid_request"),
    ("get", f"/v1/agents/{ALICE}/ledger?cursor={2**63}", None, 422, "invalid_request"),
    ("get", f"/v1/accounts?at={10**17}", None, 200, None),  # a sequence beyond the head: the books as of now
    ("get", f"/v1/agents/{ALICE}/balance?at=0001-01-01T00:00:00%2B14:00", None, 400, "invalid_timestamp"),
    ("get", f"/v1/agents/{ALICE}/balance?at=9999-12-31T23:59:59-14:00", None, 400, "invalid_timestamp"),
    ("post", f"/v1/agents/{ALICE}/holds", {"amount": "1", "reference": "h", "expiresAt": "9999-12-31T23:59:59-14:00"},
     400, "invalid_timestamp"),
    ("post", f"/v1/agents/{ALICE}/spend", {"amount": "9" * 5000, "sessionKeyId": "sk"}, 400, "invalid_amount"),
])
def test_hostile_inputs_get_a_clear_4xx_never_a_500(api, method, path, body, status, code):
    headers = {**api.admin, "X-Request-ID": "\xff\xfe".encode("latin-1")}
    r = api.client.request(method.upper(), path, json=body, headers=headers)
    assert r.status_code == status, r.text
    if code:
        assert r.json()["error"] == code
    assert len(r.headers["X-Request-ID"]) == 32  # a non-ASCII request id is replaced, not echoed


def test_a_bug_still_answers_in_the_error_shape_with_a_request_id(api, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(api.ledger, "get_balance", broken)
    r = api.client.get(f"/v1/agents/{ALICE}/balance", headers={**api.alice, "X-Request-ID": "req-42"})
    assert (r.status_code, r.json()["error"], r.headers["X-Request-ID"]) == (500, "internal_error", "req-42")
    assert "simulated" not in r.text
    assert 'status="500"' in api.client.get("/metrics").text
