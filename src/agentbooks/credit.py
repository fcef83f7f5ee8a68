"""Credit applications: score an agent, grant a limit from the score (the original's rule).

The original scored an agent: a score below 50 is denied, otherwise the limit is
``(score - 50) * 1.8 + 10`` USDC. Here the arithmetic is exact ``Decimal`` (the original used a float), and the scorer
is pluggable: any ``CreditScorer`` (``create_app(credit_scorer=...)``). The default,
``ledger_history_score``, reads only the agent's own ledger history:

| part | points |
|---|---|
| any recorded transaction at all | 20 (an agent with none scores 0) |
| activity: transactions involving the agent | 1 each, at most 30 |
| funding: USDC received in total (``totalIn``) | 1 per whole 10 USDC, at most 30 |
| tenure: whole days from its first transaction to the journal's latest | 1 per day, at most 20 |
| corrections: reversals of its transactions | minus 10 each |

clamped to 0..100. So 100 is the most, worth a 100 USDC limit; 50 is the least granted, 10 USDC.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Union

from . import audit
from .domain.addresses import normalize_address
from .domain.errors import InvalidArgument
from .domain.model import Transaction
from .domain.money import to_decimal
from .ledger import Ledger
from .storage import credit_store
from .storage import journal_store as store

MICRO = Decimal("0.000001")
MIN_SCORE = 50
MAX_SCORE = 100
SLOPE = Decimal("1.8")
BASE_LIMIT = Decimal("10")
MAX_ACTIVE_CREDIT_LINES = 10_000

Score = Union[int, Decimal]
CreditScorer = Callable[[Ledger, str], Score]  # (ledger, normalised address) -> 0..100


def limit_for_score(score: Score) -> Decimal | None:
    """The limit a score earns: None below 50, else (score - 50) x 1.8 + 10 USDC, exact."""
    if isinstance(score, bool) or not isinstance(score, (int, Decimal)) or not 0 <= score <= MAX_SCORE:
        raise InvalidArgument(f"a credit score is a number from 0 to {MAX_SCORE}", field="score")
    if score < MIN_SCORE:
        return None
    return ((Decimal(score) - MIN_SCORE) * SLOPE + BASE_LIMIT).quantize(MICRO)


def ledger_history_score(ledger: Ledger, agent: str) -> int:
    """The default scorer (see the module's table): the agent's own history, nothing else."""
    def read(conn):  # type: ignore[no-untyped-def]
        count, first_at, reversals = credit_store.agent_activity(conn, agent)
        _, _, last_at = store.head(conn)
        total_in = store.read_agents(conn, [agent])[agent].total_in_micros
        return count, first_at, last_at, reversals, total_in

    count, first_at, last_at, reversals, total_in_micros = ledger.service.read(read)
    if count == 0:
        return 0
    tenure_days = (last_at - first_at).days if first_at and last_at else 0
    score = (20 + min(30, count) + min(30, total_in_micros // 10_000_000) + min(20, tenure_days)
             - 10 * reversals)
    return max(0, min(MAX_SCORE, score))


@dataclass(frozen=True)
class CreditDecision:
    agent: str
    score: Score
    approved: bool
    credit_limit: Decimal | None  # granted limit; None when denied
    reason: str
    transaction: Transaction | None  # the set_credit_limit event when approved


def apply_for_credit(ledger: Ledger, agent: str, scorer: CreditScorer = ledger_history_score) -> CreditDecision:
    """Score the agent; when it earns a limit, set it (a journal event). Recorded as ``credit_applied``."""
    address = normalize_address(agent)
    score = scorer(ledger, address)
    limit = limit_for_score(score)
    if limit is None:
        decision = CreditDecision(address, score, False, None, f"score {score} is below {MIN_SCORE}", None)
    else:
        tx = ledger.set_credit_limit(address, limit)
        decision = CreditDecision(address, score, True, limit, f"score {score} earns {limit} USDC", tx)
    audit.record_action(ledger.service, audit.CREDIT_APPLIED, agent=address, score=str(score),
                        approved=decision.approved, credit_limit=str(limit) if limit is not None else None,
                        at=decision.transaction.occurred_at if decision.transaction else None)
    return decision


def active_credit_lines(ledger: Ledger, *, limit: int = MAX_ACTIVE_CREDIT_LINES) -> list[tuple[str, Decimal, Decimal]]:
    """(agent, credit limit, credit used) of every agent with a limit above zero, by address."""
    states = ledger.service.read(lambda c: credit_store.agents_with_credit(c, limit=limit))
    return [(s.agent, to_decimal(s.credit_limit_micros), to_decimal(s.credit_used_micros)) for s in states]
