"""Balance monitors: a condition on an agent's or an account's balance, and when it is crossed.

Pure rules. The publisher hands a monitor the balance before and after each
committed transaction that touches its target; the monitor fires on a
crossing (the condition was false before the transaction and is true after
it), not on every transaction that leaves it true. Thresholds are integer
micro-units; a credit-use threshold is a percentage in micro-units
(80 % is ``80_000_000``), compared exactly with integer arithmetic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from . import accounts as acct
from .addresses import normalize_address
from .errors import InvalidArgument
from .model import AgentState
from .money import MICROS_PER_UNIT, parse_amount


class TargetKind(str, enum.Enum):
    AGENT = "agent"
    ACCOUNT = "account"


class Metric(str, enum.Enum):
    """What a monitor measures. Agent metrics use the signs a person expects (as ``get_balance``);
    ``balance`` is an account's beancount-signed balance (as ``get_account_balance``)."""

    AVAILABLE = "available"
    PENDING = "pending"
    ESCROWED = "escrowed"
    CREDIT_USED = "credit_used"
    CREDIT_USE_PERCENT = "credit_use_percent"
    BALANCE = "balance"


AGENT_METRICS = frozenset(Metric) - {Metric.BALANCE}


class Comparison(str, enum.Enum):
    BELOW = "below"
    ABOVE = "above"


@dataclass(frozen=True, slots=True)
class MonitorCondition:
    target_kind: TargetKind
    target: str  # an agent's address or an account name
    metric: Metric
    comparison: Comparison
    threshold_micros: int


def define_condition(target_kind: str, target: str, metric: str, comparison: str, threshold: str) -> MonitorCondition:
    """Validate an admin's definition (edge strings) into a condition, or raise InvalidArgument."""
    kind = _choice(TargetKind, target_kind, "targetKind")
    measured = _choice(Metric, metric, "metric")
    compare = _choice(Comparison, comparison, "comparison")
    if kind is TargetKind.AGENT:
        target = normalize_address(target, field="target")
        if measured not in AGENT_METRICS:
            raise InvalidArgument("an agent monitor measures available, pending, escrowed, credit_used "
                                  "or credit_use_percent", field="metric")
    else:
        target = acct.parse_account(target).name
        if measured is not Metric.BALANCE:
            raise InvalidArgument("an account monitor measures its balance", field="metric")
    negative = isinstance(threshold, str) and threshold.startswith("-")
    if negative and kind is TargetKind.AGENT:
        raise InvalidArgument("an agent threshold is not negative", field="threshold")
    micros = parse_amount(threshold[1:] if negative else threshold, allow_zero=True, field="threshold")
    return MonitorCondition(kind, target, measured, compare, -micros if negative else micros)


def _choice(enum_type: type[enum.Enum], value: str, field: str):  # type: ignore[no-untyped-def]
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)
        raise InvalidArgument(f"{field} must be one of {allowed}", field=field) from None


def agent_measure(metric: Metric, state: AgentState) -> int:
    """An agent metric in micro-units (credit use: see ``holds``, it is a ratio)."""
    return {
        Metric.AVAILABLE: state.available_micros,
        Metric.PENDING: state.pending_micros,
        Metric.ESCROWED: state.escrowed_micros,
        Metric.CREDIT_USED: state.credit_used_micros,
    }[metric]


def holds(condition: MonitorCondition, value: AgentState | int) -> bool:
    """Whether the condition is true of an agent's state or an account's balance."""
    if condition.metric is Metric.CREDIT_USE_PERCENT:
        assert isinstance(value, AgentState)
        # used / limit * 100 compared with threshold / 10^6, without division: no rounding, and a
        # zero limit with credit still in use counts as above every percentage.
        left = value.credit_used_micros * 100 * MICROS_PER_UNIT
        right = condition.threshold_micros * value.credit_limit_micros
    else:
        left = value if isinstance(value, int) else agent_measure(condition.metric, value)
        right = condition.threshold_micros
    return left < right if condition.comparison is Comparison.BELOW else left > right


def crossed(condition: MonitorCondition, before: AgentState | int, after: AgentState | int) -> bool:
    """A crossing: false before the transaction, true after it."""
    return not holds(condition, before) and holds(condition, after)


def credit_use_percent(state: AgentState) -> Decimal | None:
    """Credit used as a percentage of the limit, 6 places, for display (None with no limit)."""
    if state.credit_limit_micros == 0:
        return None
    exact = Decimal(state.credit_used_micros * 100) / Decimal(state.credit_limit_micros)
    return exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class BalanceMonitor:
    """A stored monitor: it watches the transactions after ``after_seq`` (the head when it was created)."""

    id: str
    condition: MonitorCondition
    after_seq: int
    created_at_us: int
    webhook_url: str | None = None
    webhook_secret: str | None = None
