"""Shared set-up for the HTTP API tests: an app on a fresh SQLite ledger and keys for each role."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from agentbooks.api import create_app
from agentbooks.api_keys import Role, create_key
from agentbooks.ledger import Ledger
from conftest import ALICE, BOB, StepClock

ADMIN_SECRET = "test-admin-secret"


@dataclass
class Api:
    client: TestClient
    ledger: Ledger
    admin: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    accountant: dict[str, str]


def make_api(url: str, admin_secret: str | None = ADMIN_SECRET) -> Api:
    ledger = Ledger.open(url, clock=StepClock())
    client = TestClient(create_app(ledger=ledger, admin_secret=admin_secret))

    def bearer(role: Role, agent: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_key(ledger.service, role, agent).secret}"}

    return Api(client, ledger, {"X-Admin-Secret": ADMIN_SECRET}, bearer(Role.AGENT, ALICE),
               {"X-API-Key": create_key(ledger.service, Role.AGENT, BOB).secret}, bearer(Role.ACCOUNTANT))
