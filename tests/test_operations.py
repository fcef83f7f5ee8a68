"""Operation → postings, as an accountant would write them down.

Each case: the agent's state before (display signs: available, pending,
escrowed, credit used/limit), the operation, and the exact postings the
journal must record (beancount signs: + debits, − credits). Amounts are in
whole micro-units via ``U`` (1 USDC = 1_000_000).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agentbooks.domain import errors
from agentbooks.domain import operations as ops
from agentbooks.domain.model import AgentState, HoldKind, HoldState, Posting

U = 1_000_000
A = "0x5aeda56215b167893e80b4fe645ba6d5bab767de"
B = "0x6813eb9362372eef6200f3b1dbc3f819671cba69"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

AV, PE, ES, CR = (f"Agent:{A}:Available", f"Agent:{A}:Pending", f"Agent:{A}:Escrowed", f"Platform:Credit:{A}")
B_AV, B_CR = f"Agent:{B}:Available", f"Platform:Credit:{B}"
TREASURY, FEES = "Platform:Treasury", "Income:Fees"


def agent(addr=A, available=0, pending=0, escrowed=0, used=0, limit=0, total_out=0) -> AgentState:
    return AgentState(addr, available * U, pending * U, escrowed * U, used * U, limit * U, 0, total_out * U)


def hold(remaining, credit=0, kind=HoldKind.HOLD, owner=A, ref="r1", expires_at=None) -> HoldState:
    return HoldState(kind, owner, ref, remaining * U, remaining * U, credit * U, 0, 0, expires_at, 1)


def P(account, units, ref=None) -> Posting:
    return Posting(account, round(units * U), reference=ref)


def ctx(*states, holds=None) -> ops.PlanContext:
    return ops.PlanContext(now=NOW, agents={s.agent: s for s in states}, holds=holds or {})


HK = (HoldKind.HOLD, A, "r1")
EK = (HoldKind.ESCROW, A, "r1")

CASES = [
    # (name, states, holds, operation, expected postings)
    ("deposit, no debt", [agent()], {}, ops.Deposit(A, 10 * U, "0x1"),
     [P(TREASURY, 10), P(AV, -10)]),
    ("deposit repays credit first", [agent(used=4, limit=10)], {}, ops.Deposit(A, 10 * U, "0x1"),
     [P(TREASURY, 10), P(CR, -4), P(AV, -6)]),
    ("deposit smaller than the debt", [agent(used=4, limit=10)], {}, ops.Deposit(A, 3 * U, "0x1"),
     [P(TREASURY, 3), P(CR, -3)]),
    ("withdraw own funds", [agent(available=10)], {}, ops.Withdraw(A, 7 * U, "0x2"),
     [P(AV, 7), P(TREASURY, -7)]),
    ("spend within available", [agent(available=10)], {}, ops.Spend(A, 4 * U, "sk"),
     [P(AV, 4), P(TREASURY, -4)]),
    ("spend draws the gap on credit", [agent(available=3, limit=10)], {}, ops.Spend(A, 5 * U, "sk"),
     [P(AV, 3), P(CR, 2), P(TREASURY, -5)]),
    ("spend entirely on credit", [agent(limit=10)], {}, ops.Spend(A, 5 * U, "sk"),
     [P(CR, 5), P(TREASURY, -5)]),
    ("hold: seed scenario, 3 own + 2 credit", [agent(available=3, limit=10)], {HK: None},
     ops.Hold(A, 5 * U, "r1"),
     [P(AV, 3), P(CR, 2), P(PE, -5, "r1")]),
    ("confirm part of a hold", [agent(pending=5, used=2, limit=10)], {HK: hold(5, credit=2)},
     ops.ConfirmHold(A, 2 * U, "r1"),
     [P(PE, 2, "r1"), P(TREASURY, -2)]),
    ("release a hold: seed scenario, credit back first", [agent(pending=5, used=2, limit=10)],
     {HK: hold(5, credit=2)}, ops.ReleaseHold(A, 5 * U, "r1"),
     [P(PE, 5, "r1"), P(CR, -2), P(AV, -3)]),
    ("partial release returns credit first, never debits available", [agent(pending=5, used=2, limit=10)],
     {HK: hold(5, credit=2)}, ops.ReleaseHold(A, 1 * U, "r1"),
     [P(PE, 1, "r1"), P(CR, -1)]),
    ("release after a deposit already repaid the hold's credit", [agent(available=1, pending=5, limit=10)],
     {HK: hold(5, credit=2)}, ops.ReleaseHold(A, 5 * U, "r1"),
     [P(PE, 5, "r1"), P(AV, -5)]),
    ("settle a hold to a seller with a fee", [agent(pending=10), agent(B)], {HK: hold(10)},
     ops.SettleHold(A, B, 10 * U, "r1", fee_micros=U // 2),
     [P(PE, 10, "r1"), P(B_AV, -9.5), P(FEES, -0.5)]),
    ("escrow lock", [agent(available=10)], {EK: None}, ops.EscrowLock(A, 6 * U, "r1"),
     [P(AV, 6), P(ES, -6, "r1")]),
    ("escrow release to a seller with debt repays the seller's credit", [agent(escrowed=6), agent(B, used=4, limit=5)],
     {EK: hold(6, kind=HoldKind.ESCROW)}, ops.ReleaseEscrow(A, B, 6 * U, "r1"),
     [P(ES, 6, "r1"), P(B_CR, -4), P(B_AV, -2)]),
    ("escrow refund", [agent(escrowed=6)], {EK: hold(6, kind=HoldKind.ESCROW)}, ops.RefundEscrow(A, 6 * U, "r1"),
     [P(ES, 6, "r1"), P(AV, -6)]),
    ("partial escrow settle: 4 to the seller, 2 back", [agent(escrowed=6), agent(B)],
     {EK: hold(6, kind=HoldKind.ESCROW)}, ops.SettleEscrow(A, B, 4 * U, "r1"),
     [P(ES, 6, "r1"), P(B_AV, -4), P(AV, -2)]),
    ("refund of a failed spend", [agent(total_out=5)], {}, ops.Refund(A, 5 * U, "failed-1"),
     [P(TREASURY, 5), P(AV, -5)]),
    ("refund repays credit first", [agent(used=3, limit=5, total_out=5)], {}, ops.Refund(A, 5 * U, "failed-1"),
     [P(TREASURY, 5), P(CR, -3), P(AV, -2)]),
    ("use credit", [agent(limit=10)], {}, ops.UseCredit(A, 4 * U),
     [P(CR, 4), P(AV, -4)]),
    ("repay credit moves money", [agent(available=10, used=4, limit=10)], {}, ops.RepayCredit(A, 4 * U),
     [P(AV, 4), P(CR, -4)]),
    ("repay more than owed repays only the debt", [agent(available=10, used=4, limit=10)], {}, ops.RepayCredit(A, 9 * U),
     [P(AV, 4), P(CR, -4)]),
    ("transfer between agents", [agent(available=10), agent(B)], {}, ops.Transfer(A, B, 3 * U, "inv-1"),
     [P(AV, 3), P(B_AV, -3)]),
    ("credit limit is an event, not a posting", [agent()], {}, ops.SetCreditLimit(A, 10 * U), []),
]


@pytest.mark.parametrize("name, states, holds, operation, expected", CASES, ids=[c[0] for c in CASES])
def test_operation_records_exact_postings(name, states, holds, operation, expected):
    draft = operation.plan(ctx(*states, holds=holds))
    assert list(draft.postings) == expected
    assert sum(p.amount_micros for p in draft.postings) == 0
    # The result keeps every rule the books promise.
    for state in states:
        ops.check_agent(ops.project_agent(state, draft))


REFUSALS = [
    ("withdraw never uses credit", [agent(available=3, limit=100)], {}, ops.Withdraw(A, 4 * U, "0x2"),
     errors.InsufficientBalance),
    ("spend beyond available and no credit line", [agent(available=3)], {}, ops.Spend(A, 4 * U, "sk"),
     errors.InsufficientBalance),
    ("a withdrawal hold never draws credit", [agent(available=3, limit=100)], {HK: None},
     ops.Hold(A, 4 * U, "r1", allow_credit=False), errors.InsufficientBalance),
    ("spend beyond the credit line", [agent(available=3, used=8, limit=10)], {}, ops.Spend(A, 6 * U, "sk"),
     errors.CreditLimitExceeded),
    ("hold on a reference already used", [agent(available=10)], {HK: hold(1)}, ops.Hold(A, 1 * U, "r1"),
     errors.ReferenceInUse),
    ("confirm an unknown hold", [agent()], {HK: None}, ops.ConfirmHold(A, 1 * U, "r1"), errors.UnknownHold),
    ("confirm more than the hold has left", [agent(pending=5)], {HK: hold(5)}, ops.ConfirmHold(A, 6 * U, "r1"),
     errors.HoldExceeded),
    ("release more than the hold has left", [agent(pending=5)], {HK: hold(5)}, ops.ReleaseHold(A, 6 * U, "r1"),
     errors.HoldExceeded),
    ("confirm an expired hold", [agent(pending=5)], {HK: hold(5, expires_at=NOW - timedelta(seconds=1))},
     ops.ConfirmHold(A, 1 * U, "r1"), errors.HoldExpired),
    ("escrow is never on credit", [agent(available=1, limit=100)], {EK: None}, ops.EscrowLock(A, 2 * U, "r1"),
     errors.InsufficientBalance),
    ("release an unknown escrow", [agent(), agent(B)], {EK: None}, ops.ReleaseEscrow(A, B, U, "r1"),
     errors.UnknownEscrow),
    ("release more than escrowed", [agent(escrowed=1), agent(B)], {EK: hold(1, kind=HoldKind.ESCROW)},
     ops.ReleaseEscrow(A, B, 2 * U, "r1"), errors.EscrowExceeded),
    ("refund more than ever paid out creates money", [agent(total_out=1)], {}, ops.Refund(A, 2 * U, "x"),
     errors.RefundExceedsPaid),
    ("credit limit below credit in use", [agent(used=5, limit=10)], {}, ops.SetCreditLimit(A, 4 * U),
     errors.CreditLimitBelowUsed),
    ("use credit over the limit", [agent(used=8, limit=10)], {}, ops.UseCredit(A, 3 * U), errors.CreditLimitExceeded),
    ("repay with nothing owed", [agent(available=5)], {}, ops.RepayCredit(A, U), errors.NoOutstandingCredit),
    ("repay without the money", [agent(available=1, used=4, limit=5)], {}, ops.RepayCredit(A, 2 * U),
     errors.InsufficientBalance),
    ("settle fee larger than the amount", [agent(pending=1), agent(B)], {HK: hold(1)},
     ops.SettleHold(A, B, U, "r1", fee_micros=2 * U), errors.InvalidArgument),
    ("transfer to oneself", [agent(available=5)], {}, ops.Transfer(A, A, U, "x"), errors.InvalidArgument),
]


@pytest.mark.parametrize("name, states, holds, operation, error", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_operation_refused_with_typed_error(name, states, holds, operation, error):
    with pytest.raises(error) as raised:
        operation.plan(ctx(*states, holds=holds))
    assert raised.value.code == error.code


def test_confirm_consumes_own_funds_before_credit():
    # Hold of 5 = 3 own + 2 credit. Confirming 3 uses only own funds, so the
    # 2 of credit still sits in the hold and a release would hand it back.
    effect = ops.ConfirmHold(A, 3 * U, "r1").plan(ctx(agent(pending=5, used=2, limit=10), holds={HK: hold(5, credit=2)}))
    assert effect.hold_effects[0].credit_micros == 0
    effect = ops.ConfirmHold(A, 4 * U, "r1").plan(ctx(agent(pending=5, used=2, limit=10), holds={HK: hold(5, credit=2)}))
    assert effect.hold_effects[0].credit_micros == -1 * U


def test_reversal_negates_every_posting_of_every_party():
    original = ops.Transfer(A, B, 3 * U, "inv-1").plan(ctx(agent(available=10), agent(B, used=1, limit=1)))
    from agentbooks.domain.model import Transaction

    recorded = Transaction(
        seq=7, id="t7", occurred_at=NOW, kind=original.kind, agent=A, counterparty=B, amount_micros=3 * U,
        reference="inv-1", tx_hash=None, memo=None, postings=original.postings, flows=original.flows,
        hold_effects=(), credit_limit_micros=None, reverses_seq=None, metadata={}, prev_hash="0", hash="1",
    )
    reversal = ops.Reverse("t7", "wrong payee").plan(
        ops.PlanContext(now=NOW, agents={}, original=recorded)
    )
    assert [p.amount_micros for p in reversal.postings] == [-p.amount_micros for p in original.postings]
    assert [p.account for p in reversal.postings] == [p.account for p in original.postings]
    assert reversal.reverses_seq == 7
    assert {f.agent: (f.total_in_micros, f.total_out_micros) for f in reversal.flows} == {A: (0, -3 * U), B: (-3 * U, 0)}
