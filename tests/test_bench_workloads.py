"""The group-commit benchmark's workloads and baselines are what they claim to be (no timings here).

Concurrent callers' streams must stay valid in any interleaving (a refusal
would stop a benchmark run), the metering pattern must add up like the
platform's books, and the bare-driver baseline must write the same rows as
the ledger for every call it stands in for.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from sqlalchemy import text

from agentbooks import Ledger
from bench.bare_calls import BareWriter
from bench.suites import _seeded
from bench.workload import agent_address, metering_calls, mixed_calls

AGENTS = 30
SEED_FUNDS = 1000 * 10**6  # what ``_seeded`` deposits for every agent
TABLES = ("journal", "postings", "agent_entries", "holds", "unique_keys", "balances", "agents")


def call(ledger: Ledger, stream) -> str:  # type: ignore[no-untyped-def]
    name, args, kwargs = next(stream)
    getattr(ledger, name)(*args, **kwargs)
    return name


def test_four_callers_mixed_streams_interleaved_are_all_accepted(sqlite_url):
    _seeded(sqlite_url, AGENTS)
    streams = [mixed_calls(allowance_micros=SEED_FUNDS // 4, agents=AGENTS, hot_share=0.5, hot_agents=2, seed=n,
                           tag=f"c{n}-") for n in range(4)]
    with Ledger.open(sqlite_url) as ledger:
        before = ledger.head()[0]
        # Round robin: every caller's spends and holds land on agents the others also drain.
        made = [call(ledger, stream) for stream in itertools.islice(itertools.cycle(streams), 400)]
        assert ledger.head()[0] == before + 400  # every call recorded, none refused
    assert set(made) == {"deposit", "spend", "hold", "confirm_hold", "release_hold"}


def test_metering_settles_a_session_hold_to_sellers_and_the_platform_keeps_its_fees(sqlite_url):
    _seeded(sqlite_url, AGENTS)
    buyer = agent_address(AGENTS + 10)
    with Ledger.open(sqlite_url) as ledger:
        ledger.deposit(buyer, "10", "0xsession")
        ledger.hold(buyer, "10", "session-1")
        sellers_before = sum(ledger.get_balance(agent_address(i)).available for i in range(AGENTS))
        streams = [metering_calls(buyer, "session-1", sellers=AGENTS, seed=n) for n in range(3)]
        for stream in itertools.islice(itertools.cycle(streams), 60):
            call(ledger, stream)
        settled = Decimal(10) - ledger.get_hold(buyer, "session-1").remaining_micros / Decimal(10**6)
        ledger.release_hold(buyer, ledger.get_hold(buyer, "session-1").remaining_micros / Decimal(10**6), "session-1")

        sellers_got = sum(ledger.get_balance(agent_address(i)).available for i in range(AGENTS)) - sellers_before
        fees = -ledger.get_account_balance("Income:Fees")
        assert Decimal("0.06") <= settled <= Decimal("0.3")  # 60 paid requests at 0.001 to 0.005 USDC
        assert sellers_got + fees == settled
        assert ledger.get_balance(buyer).available == 10 - settled  # the rest came back with the release


def row_counts(url: str) -> dict[str, int]:
    with Ledger.open(url) as ledger:
        return {t: ledger.service.read(lambda c, t=t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar())
                for t in TABLES}


def test_the_bare_baseline_writes_the_rows_the_ledger_writes_for_each_call(tmp_path):
    ledger_url, bare_url = (f"sqlite:///{tmp_path / name}" for name in ("ledger.db", "bare.db"))
    for url in (ledger_url, bare_url):
        _seeded(url, AGENTS)
    a, b = agent_address(1), agent_address(2)
    calls = [("deposit", (a, "5", "0xd1"), {}), ("spend", (a, "1", "sk-1"), {}), ("hold", (a, "2", "r1"), {}),
             ("confirm_hold", (a, "2", "r1"), {}), ("hold", (a, "2", "r2"), {}), ("release_hold", (a, "2", "r2"), {}),
             ("hold", (a, "2", "r3"), {}), ("settle_hold", (a, b, "0.5", "r3"), {"fee": "0.05"})]
    with Ledger.open(ledger_url) as ledger:
        bare = BareWriter(bare_url)
        for name, args, kwargs in calls:
            ledger_before, bare_before = row_counts(ledger_url), row_counts(bare_url)
            getattr(ledger, name)(*args, **kwargs)
            bare.call((name, args, kwargs))
            ledger_rows = {t: n - ledger_before[t] for t, n in row_counts(ledger_url).items()}
            bare_rows = {t: n - bare_before[t] for t, n in row_counts(bare_url).items()}
            assert bare_rows == ledger_rows, name
        bare.close()
