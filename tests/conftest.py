"""Shared fixtures: a fresh SQLite ledger, and a fresh PostgreSQL database per test.

PostgreSQL tests need ``AGENTBOOKS_TEST_DATABASE_URL`` (for example
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``). Without it they
skip with that reason; ``.ci/run`` sets it and turns any such skip into a
failure. Each test gets its own throw-away database, so parallel runs and
helpers never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from agentbooks import Ledger

PG_ENV = "AGENTBOOKS_TEST_DATABASE_URL"
PG_SKIP_REASON = f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)"

ALICE = "0x5aeda56215b167893e80b4fe645ba6d5bab767de"
BOB = "0x6813eb9362372eef6200f3b1dbc3f819671cba69"
CAROL = "0x1eff47bc3a10a45d4b230b5d10e37751fe6aa718"


class StepClock:
    """A deterministic clock: one second per call, from a fixed start."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'books.db'}"


@pytest.fixture
def ledger(sqlite_url) -> Iterator[Ledger]:
    with Ledger.open(sqlite_url, clock=StepClock()) as books:
        yield books


def service_url(variable: str, reason: str, required_by: str) -> str:
    """A test service's URL from ``variable``; without it the test skips, or fails when ``required_by`` is 1."""
    url = os.environ.get(variable)
    if not url:
        if os.environ.get(required_by) == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


def _admin_url() -> str:
    return service_url(PG_ENV, PG_SKIP_REASON, "AGENTBOOKS_REQUIRE_POSTGRES")


@pytest.fixture
def pg_database_factory() -> Iterator[Callable[[], str]]:
    """Create throw-away PostgreSQL databases; all are dropped after the test."""
    admin = make_url(_admin_url()).set(drivername="postgresql+psycopg")
    engine = create_engine(admin.set(database="postgres"), isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def make() -> str:
        name = f"agentbooks_test_{uuid.uuid4().hex[:12]}"
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return admin.set(database=name).render_as_string(hide_password=False)

    yield make
    with engine.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def pg_url(pg_database_factory) -> str:
    return pg_database_factory()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_url(request, tmp_path) -> str:
    """The same test on both engines."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'books.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def any_ledger(any_url) -> Iterator[Ledger]:
    with Ledger.open(any_url, clock=StepClock()) as books:
        yield books


# --- NATS (JetStream) -------------------------------------------------------------------

NATS_ENV = "AGENTBOOKS_TEST_NATS_URL"
NATS_SKIP_REASON = f"NATS tests need {NATS_ENV} (e.g. nats://127.0.0.1:4222, a server run with -js)"


@pytest.fixture
def nats_url() -> str:
    """The shared NATS server; each test publishes to a stream and subjects of its own."""
    return service_url(NATS_ENV, NATS_SKIP_REASON, "AGENTBOOKS_REQUIRE_NATS")


@pytest.fixture
def private_nats(nats_url, tmp_path):  # type: ignore[no-untyped-def]
    """A nats-server of this test's own (a free port, a temporary store), so the test may restart it."""
    from nats_support import PrivateNatsServer

    server = PrivateNatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


# --- CI: PostgreSQL and NATS tests must run, not skip ---------------------------------------

REQUIRE_POSTGRES = os.environ.get("AGENTBOOKS_REQUIRE_POSTGRES") == "1"
REQUIRED_SERVICES = {"postgres": ("AGENTBOOKS_REQUIRE_POSTGRES", REQUIRE_POSTGRES),
                     "nats": ("AGENTBOOKS_REQUIRE_NATS", os.environ.get("AGENTBOOKS_REQUIRE_NATS") == "1")}
_postgres_passed = 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    global _postgres_passed
    outcome = yield
    report = outcome.get_result()
    for marker, (variable, required) in REQUIRED_SERVICES.items():
        if marker in item.keywords and report.skipped and required:
            report.outcome = "failed"
            report.longrepr = f"{marker} test skipped but {variable}=1: {report.longrepr}"
    if "postgres" in item.keywords and report.when == "call" and report.passed:
        _postgres_passed += 1


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    if REQUIRE_POSTGRES and exitstatus == 0 and _postgres_passed == 0:
        session.exitstatus = 1
        print("\nAGENTBOOKS_REQUIRE_POSTGRES=1 but no PostgreSQL test passed")
