"""Dry runs: the same validation and planning as the real call, nothing written, no key claimed."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterator

import pytest
from sqlalchemy import select

from agentbooks import Ledger
from agentbooks.domain.errors import InsufficientBalance, LedgerError, UnknownHold
from agentbooks.domain.model import AgentFlow, DryRun, TransactionDraft, draft_of
from agentbooks.storage import tables
from api_support import Api, make_api
from conftest import ALICE, BOB, CAROL


def every_table(ledger: Ledger) -> dict[str, list[tuple]]:
    def dump(conn):  # type: ignore[no-untyped-def]
        return {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr) for t in tables.metadata.sorted_tables}
    return ledger.service.read(dump)


def books_with_history(ledger: Ledger) -> None:
    ledger.deposit(ALICE, "100", "0xd1")
    ledger.set_credit_limit(ALICE, "20")
    ledger.hold(ALICE, "30", "h-1")
    ledger.escrow_lock(ALICE, "10", "e-1")
    ledger.transfer(ALICE, BOB, "5", "t-1")


# Each call as a function of (ledger, dry_run): the dry run's answer is compared with the real one.
CALLS: list[Callable[[Ledger, bool], object]] = [
    lambda l, d: l.deposit(CAROL, "7.25", "0xd2", metadata={"orderId": "o-1"}, dry_run=d),
    lambda l, d: l.spend(ALICE, "70", "sk-1", dry_run=d),  # draws on credit
    lambda l, d: l.settle_hold(ALICE, BOB, "30", "h-1", fee="1", dry_run=d),
    lambda l, d: l.release_hold(ALICE, "12", "h-1", reason="failed", dry_run=d),
    lambda l, d: l.settle_escrow(ALICE, CAROL, "4", "e-1", dry_run=d),
    lambda l, d: l.use_credit(ALICE, "3", dry_run=d),
    lambda l, d: l.reverse(l.get_history(ALICE, 1)[0].id, "mistake", dry_run=d),
    lambda l, d: l.batch([{"op": "deposit", "agent": BOB, "amount": "2", "tx_hash": "0xd3"},
                          {"op": "transfer", "from_agent": BOB, "to_agent": CAROL, "amount": "6", "reference": "t-2"}],
                         dry_run=d),
    lambda l, d: l.spend(BOB, "1000", "sk-2", dry_run=d),       # refused: insufficient balance
    lambda l, d: l.confirm_hold(ALICE, "1", "nope", dry_run=d),  # refused: unknown hold
]


def recorded_form(draft: TransactionDraft) -> TransactionDraft:
    """The draft with its agent flows summed per agent, in address order, as the journal stores them."""
    totals: dict[str, tuple[int, int]] = {}
    for f in draft.flows:
        i, o = totals.get(f.agent, (0, 0))
        totals[f.agent] = (i + f.total_in_micros, o + f.total_out_micros)
    return replace(draft, flows=tuple(AgentFlow(a, i, o) for a, (i, o) in sorted(totals.items())))


def outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except LedgerError as exc:
        return (type(exc), exc.code, exc.details)


@pytest.mark.parametrize("call", CALLS)
def test_a_dry_run_writes_nothing_and_predicts_the_real_call(any_ledger, call):
    books_with_history(any_ledger)
    head, before = any_ledger.head(), every_table(any_ledger)
    predicted = outcome(lambda: call(any_ledger, True))
    assert any_ledger.head() == head and every_table(any_ledger) == before
    real = outcome(lambda: call(any_ledger, False))
    if isinstance(predicted, tuple):  # a refusal, predicted exactly
        assert predicted == real
        return
    assert isinstance(predicted, DryRun) and predicted.as_of_seq == head[0]
    recorded = real if isinstance(real, list) else [real]
    assert [recorded_form(d) for d in predicted.drafts] == [draft_of(t) for t in recorded]
    for agent, after in predicted.balances.items():
        now = any_ledger.get_balance(agent)
        assert (after.available, after.pending, after.escrowed, after.credit_used, after.credit_limit,
                after.total_in, after.total_out) == (now.available, now.pending, now.escrowed, now.credit_used,
                                                     now.credit_limit, now.total_in, now.total_out)


def test_a_dry_run_claims_no_idempotency_key(ledger):
    ledger.deposit(ALICE, "10", "0xd1")
    plan = ledger.spend(ALICE, "4", "sk-1", idempotency_key="k1", dry_run=True)
    assert isinstance(plan, DryRun) and not plan.replayed
    with pytest.raises(InsufficientBalance):  # the key stays free: another request may use it
        ledger.spend(ALICE, "40", "sk-1", idempotency_key="k1", dry_run=True)
    tx = ledger.spend(ALICE, "4", "sk-1", idempotency_key="k1")
    again = ledger.spend(ALICE, "4", "sk-1", idempotency_key="k1", dry_run=True)
    assert again.replayed and list(again.drafts) == [draft_of(tx)]  # the key's answer is the recorded one


def test_a_refusal_names_the_same_error_and_writes_no_agent_row(ledger):
    with pytest.raises(UnknownHold):
        ledger.confirm_hold(CAROL, "1", "h-x", dry_run=True)
    assert ledger.agents() == []


@pytest.fixture
def api(sqlite_url) -> Iterator[Api]:
    books = make_api(sqlite_url)
    yield books
    books.ledger.close()


def test_dry_run_over_http(api):
    body = {"agentAddress": ALICE, "amount": "10", "txHash": "0xd1", "metadata": {"orderId": "o-1"}}
    r = api.client.post("/v1/admin/deposits?dryRun=true", headers={**api.admin, "Idempotency-Key": "d-1"}, json=body)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["dryRun"] is True and plan["asOfSeq"] == 0
    assert [(p["account"], p["amount"]) for p in plan["transactions"][0]["postings"]] == [
        ("Platform:Treasury", "10.000000"), (f"Agent:{ALICE}:Available", "-10.000000")]
    assert plan["balances"] == [{**plan["balances"][0], "agentAddr": ALICE, "available": "10.000000"}]
    assert api.ledger.head()[0] == 0
    r = api.client.post("/v1/admin/deposits", headers={**api.admin, "Idempotency-Key": "d-1"}, json=body)
    assert r.status_code == 201 and r.json()["transaction"]["postings"] == plan["transactions"][0]["postings"]
    r = api.client.post(f"/v1/agents/{ALICE}/spend?dryRun=true", headers=api.alice,
                        json={"amount": "11", "sessionKeyId": "sk-1"})
    assert r.status_code == 422 and r.json()["error"] == "insufficient_balance"
