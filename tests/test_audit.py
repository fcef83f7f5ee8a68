"""The audit trail: every transaction names its initiator and request id inside the hash chain,
administrative actions that move no money are recorded, and GET /v1/admin/audit serves both."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import timedelta
from typing import Iterator

import pytest

from agentbooks import Ledger
from agentbooks.api_keys import Role, create_key, revoke_key
from agentbooks.audit import audit_entries
from agentbooks.context import calling
from agentbooks.demo import AGENTS, ScriptedClock, run_demo_day
from agentbooks.export.beancount import transaction_text
from agentbooks.verify.database import verify_database
from api_support import Api, make_api
from conftest import ALICE, BOB, StepClock


@pytest.fixture
def api(sqlite_url) -> Iterator[Api]:
    books = make_api(sqlite_url)
    yield books
    books.ledger.close()


def initiators(ledger: Ledger) -> list[tuple[str, str | None]]:
    return [(t.metadata.get("initiator"), t.metadata.get("request_id")) for t in ledger.transactions()]


def test_each_kind_of_initiator_is_recorded_with_the_request_id(api):
    r = api.client.post("/v1/admin/deposits", json={"agentAddress": ALICE, "amount": "10", "txHash": "0xd1"},
                        headers={**api.admin, "X-Request-Id": "req-deposit-1"})
    assert r.status_code == 201
    r = api.client.post(f"/v1/agents/{ALICE}/spend", json={"amount": "1", "sessionKeyId": "sk"},
                        headers={**api.alice, "X-Request-Id": "req-spend-1"})
    assert r.status_code == 200
    api.ledger.hold(ALICE, "1", "h", expires_at=api.ledger.service.clock.now + timedelta(seconds=2))
    api.ledger.sweep_expired_holds(now=api.ledger.service.clock.now + timedelta(hours=1))
    with calling("cli:alice-operator", "run-1"):
        api.ledger.deposit(BOB, "2", "0xd2")
    spend = api.ledger.get_transaction(api.ledger.get_history(ALICE)[-2].id)
    assert spend.metadata["initiator"].startswith("api-key:") and spend.metadata["initiator"].endswith(":agent")
    assert initiators(api.ledger) == [
        ("admin", "req-deposit-1"), (spend.metadata["initiator"], "req-spend-1"), ("library", None),
        ("job:sweep-expired-holds", None), ("cli:alice-operator", "run-1")]


def test_the_demo_names_itself(tmp_path):
    with Ledger.open(f"sqlite:///{tmp_path / 'demo.db'}", clock=ScriptedClock()) as ledger:
        run_demo_day(ledger)
        who = {t.metadata["initiator"] for t in ledger.transactions()}
        assert who == {"demo", "job:sweep-expired-holds"}
        assert all(t.metadata.get("request_id", "").startswith("demo-")
                   for t in ledger.transactions() if t.metadata["initiator"] == "demo")
        assert audit_entries(ledger.service, AGENTS["research-bot"], operation="credit_limit_set")[0]["actor"] == "demo"


def test_an_edited_initiator_is_caught_by_verify(tmp_path):
    db = tmp_path / "books.db"
    with Ledger.open(f"sqlite:///{db}", clock=StepClock()) as ledger:
        with calling("api-key:abc123:agent", "req-1"):
            ledger.deposit(ALICE, "10", "0xd1")
        ledger.deposit(BOB, "1", "0xd2")
        assert verify_database(ledger).clean
    with sqlite3.connect(db) as conn:
        stored = json.loads(conn.execute("SELECT metadata_json FROM journal WHERE seq = 1").fetchone()[0])
        stored["meta"]["initiator"] = "admin"  # someone blames the admin for an agent's request
        conn.execute("UPDATE journal SET metadata_json = ? WHERE seq = 1", (json.dumps(stored),))
    with Ledger.open(f"sqlite:///{db}") as ledger:
        report = verify_database(ledger)
    assert ("hash_mismatch", 1) in {(v.code, v.seq) for v in report.violations}


def test_the_export_shows_the_initiator(ledger):
    with calling("api-key:abc123:agent", "req-9"):
        tx = ledger.deposit(ALICE, "10", "0xd1")
    text = transaction_text(tx)
    assert '  initiator: "api-key:abc123:agent"' in text and '  request-id: "req-9"' in text


def test_administrative_actions_are_recorded(ledger):
    with calling("admin", "req-keys"):
        issued = create_key(ledger.service, Role.AGENT, ALICE)
        revoke_key(ledger.service, issued.key_id)
    ledger.deposit(ALICE, "10", "0xd1")
    deposit = ledger.get_history(ALICE)[0]
    ledger.set_credit_limit(ALICE, "25")
    ledger.reverse(deposit.id, "credited to the wrong agent")
    with pytest.raises(Exception):
        ledger.reverse(deposit.id, "again")
    trail = audit_entries(ledger.service, ALICE)
    admin = [(e["operation"], e["details"].get("outcome"), e["actor"]) for e in trail if e["source"] == "admin"]
    assert admin == [("reversal_requested", "already_reversed", "library"), ("reversal_requested", "ok", "library"),
                     ("credit_limit_set", "ok", "library"), ("api_key_revoked", None, "admin"),
                     ("api_key_created", None, "admin")]
    journal = [e["operation"] for e in trail if e["source"] == "journal"]
    assert journal == ["reversal", "set_credit_limit", "deposit"]
    assert [e["operation"] for e in audit_entries(ledger.service, ALICE, operation="deposit")] == ["deposit"]
    assert len(audit_entries(ledger.service, ALICE, limit=2)) == 2
    assert audit_entries(ledger.service, BOB) == []


def test_audit_route_in_the_originals_shape(api):
    api.client.post("/v1/admin/deposits", json={"agentAddress": ALICE, "amount": "10", "txHash": "0xd1"},
                    headers={**api.admin, "X-Request-Id": "req-1"})
    api.client.put(f"/v1/admin/agents/{ALICE}/credit-limit", json={"limit": "5"}, headers=api.admin)
    api.client.get("/v1/admin/verify", headers=api.admin)
    r = api.client.get("/v1/admin/audit", params={"agent": ALICE}, headers=api.admin)
    body = r.json()
    assert r.status_code == 200 and body["count"] == len(body["entries"])
    ops = [e["operation"] for e in body["entries"]]
    assert ops[:3] == ["verification_run", "set_credit_limit", "credit_limit_set"] and "deposit" in ops
    deposit = next(e for e in body["entries"] if e["operation"] == "deposit")
    assert (deposit["actor"], deposit["requestId"], deposit["amount"]) == ("admin", "req-1", "10.000000")
    window = api.client.get("/v1/admin/audit", params={"agent": ALICE, "from": deposit["timestamp"],
                                                       "to": deposit["timestamp"], "operation": "deposit"},
                            headers=api.admin).json()
    assert [e["id"] for e in window["entries"]] == [deposit["id"]] and window["count"] == 1
    assert api.client.get("/v1/admin/audit", headers=api.admin).status_code == 422  # agent is required
    assert api.client.get("/v1/admin/audit", params={"agent": "nope"}, headers=api.admin).json()["error"] == "invalid_address"
    assert api.client.get("/v1/admin/audit", params={"agent": ALICE}, headers=api.accountant).status_code == 403


def test_cli_runs_name_the_os_user(tmp_path):
    db = tmp_path / "books.db"
    Ledger.open(f"sqlite:///{db}").close()
    run = subprocess.run([sys.executable, "-m", "agentbooks.cli", "api-key", "create", ALICE,
                          "--database-url", f"sqlite:///{db}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with Ledger.open(f"sqlite:///{db}") as ledger:
        [created] = audit_entries(ledger.service, ALICE)
    assert created["operation"] == "api_key_created" and created["actor"].startswith("cli:")
