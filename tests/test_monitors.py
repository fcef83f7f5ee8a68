"""Balance monitor rules (pure) and the admin routes that define them (SQLite, no broker)."""

from __future__ import annotations

import pytest

from agentbooks.domain.errors import InvalidAccount, InvalidAddress, InvalidAmount, InvalidArgument
from agentbooks.domain.model import AgentState
from agentbooks.domain.money import parse_amount
from agentbooks.domain.monitors import credit_use_percent, crossed, define_condition, holds
from api_support import make_api
from conftest import ALICE


def agent(available="0", credit_used="0", credit_limit="0") -> AgentState:  # type: ignore[no-untyped-def]
    def micros(text: str) -> int:
        return parse_amount(text, allow_zero=True)

    return AgentState(ALICE, available_micros=micros(available), credit_used_micros=micros(credit_used),
                      credit_limit_micros=micros(credit_limit))


LOW = define_condition("agent", ALICE, "available", "below", "5")
CREDIT = define_condition("agent", ALICE, "credit_use_percent", "above", "80")
TREASURY = define_condition("account", "Platform:Treasury", "balance", "above", "100")
FEES_OWED = define_condition("account", "Income:Fees", "balance", "below", "-2.5")


@pytest.mark.parametrize("condition, before, after, fires", [
    (LOW, agent("10"), agent("4.999999"), True),       # crossed
    (LOW, agent("4"), agent("3"), False),             # already below: no second event
    (LOW, agent("4"), agent("10"), False),            # back above
    (LOW, agent("10"), agent("5"), False),            # at the threshold is not below it
    (CREDIT, agent(credit_used="8", credit_limit="10"), agent(credit_used="8.000001", credit_limit="10"), True),
    (CREDIT, agent(credit_used="8", credit_limit="10"), agent(credit_used="8", credit_limit="9"), True),
    (CREDIT, agent(credit_used="9", credit_limit="10"), agent(credit_used="9.5", credit_limit="10"), False),
    (CREDIT, agent(), agent(credit_used="1", credit_limit="0"), True),   # credit in use with no limit left
    (TREASURY, 100_000_000, 100_000_001, True),
    (FEES_OWED, -2_500_000, -2_500_001, True),        # Income is negative in beancount's signs
])
def test_a_monitor_fires_on_a_crossing_only(condition, before, after, fires):
    assert crossed(condition, before, after) is fires


def test_credit_use_is_compared_exactly_and_shown_to_six_places():
    one_third = agent(credit_used="1", credit_limit="3")
    assert holds(define_condition("agent", ALICE, "credit_use_percent", "above", "33.333333"), one_third)
    assert not holds(define_condition("agent", ALICE, "credit_use_percent", "above", "33.333334"), one_third)
    assert str(credit_use_percent(one_third)) == "33.333333"
    assert credit_use_percent(agent()) is None


@pytest.mark.parametrize("args, error", [
    (("robot", ALICE, "available", "below", "5"), InvalidArgument),
    (("agent", "0xnope", "available", "below", "5"), InvalidAddress),
    (("agent", ALICE, "balance", "below", "5"), InvalidArgument),
    (("agent", ALICE, "available", "under", "5"), InvalidArgument),
    (("agent", ALICE, "available", "below", "-5"), InvalidArgument),
    (("agent", ALICE, "available", "below", "5.0000001"), InvalidAmount),
    (("account", "Platform:Nowhere", "balance", "below", "5"), InvalidAccount),
    (("account", "Platform:Treasury", "available", "below", "5"), InvalidArgument),
])
def test_a_bad_definition_is_refused_with_the_field_named(args, error):
    with pytest.raises(error):
        define_condition(*args)


def test_admins_define_list_and_delete_monitors(sqlite_url):
    api = make_api(sqlite_url)
    client, admin = api.client, api.admin
    api.ledger.deposit(ALICE, "10", "0xm1")
    body = {"targetKind": "agent", "target": ALICE.upper().replace("0X", "0x"), "metric": "available",
            "comparison": "below", "threshold": "5", "webhookUrl": "https://hooks.example/ledger"}
    created = client.post("/v1/admin/monitors", json=body, headers=admin)
    assert created.status_code == 201
    monitor = created.json()
    assert (monitor["target"], monitor["threshold"], monitor["afterSeq"]) == (ALICE, "5.000000", 1)
    assert len(monitor["webhookSecret"]) >= 32  # generated, shown once

    listed = client.get("/v1/admin/monitors", headers=admin).json()["monitors"]
    assert [(m["id"], m["webhookSecret"]) for m in listed] == [(monitor["id"], None)]
    assert client.get(f"/v1/admin/monitors/{monitor['id']}/deliveries", headers=admin).json() == {"deliveries": []}
    assert client.get("/v1/admin/monitors", headers=api.alice).status_code == 403

    assert client.delete(f"/v1/admin/monitors/{monitor['id']}", headers=admin).status_code == 204
    assert client.delete(f"/v1/admin/monitors/{monitor['id']}", headers=admin).json()["error"] == "not_found"
    assert client.get("/v1/admin/monitors", headers=admin).json() == {"monitors": []}


@pytest.mark.parametrize("change, field, status", [
    ({"metric": "balance"}, "metric", 400),
    ({"threshold": 5}, "threshold", 422),             # a JSON number is refused, as for every amount
    ({"threshold": "5.5.5"}, "threshold", 400),
    ({"webhookUrl": "ftp://hooks.example/x"}, "webhookUrl", 400),
    ({"webhookUrl": "http://[::1/x"}, "webhookUrl", 400),
    ({"webhookSecret": "short"}, "webhookSecret", 400),
])
def test_a_bad_monitor_is_a_clear_4xx_naming_the_field(sqlite_url, change, field, status):
    api = make_api(sqlite_url)
    body = {"targetKind": "agent", "target": ALICE, "metric": "available", "comparison": "below",
            "threshold": "5", "webhookUrl": "https://hooks.example/ledger", **change}
    answer = api.client.post("/v1/admin/monitors", json=body, headers=api.admin)
    assert answer.status_code == status
    assert field in answer.text
