"""The chart of accounts: names, types, and which balances may not go negative.

Account names are identical in the database, the API and the beancount
export. Signs follow beancount: a posting is positive when it debits the
account, so liability (``Agent:``) and income balances are negative sums.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

from .addresses import normalize_address
from .errors import InvalidAccount

TREASURY = "Platform:Treasury"
FEES = "Income:Fees"
OPENING = "Equity:Opening"
CAPITAL = "Equity:Capital"
RETAINED_EARNINGS = "Equity:Retained-Earnings"
NETWORK_FEES = "Expenses:Network-Fees"
BAD_DEBT = "Expenses:Bad-Debt"
CREDIT_PREFIX = "Platform:Credit"
# USDC received from a sender who is no known agent: owed to someone until an admin assigns it
# to an agent or returns it on chain (model.md, section 5).
SUSPENSE = "Agent:Suspense"


class AccountType(str, enum.Enum):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EQUITY = "equity"
    EXPENSE = "expense"

    @property
    def is_earnings(self) -> bool:
        """Income and expenses: the accounts a period close moves to retained earnings."""
        return self in (AccountType.INCOME, AccountType.EXPENSE)


class AgentBucket(str, enum.Enum):
    """The per-agent accounts; the value is the account name's last segment."""

    AVAILABLE = "Available"
    PENDING = "Pending"
    ESCROWED = "Escrowed"
    CREDIT = "Credit"  # Platform:Credit:<addr>, the agent's drawn credit


def available(agent: str) -> str:
    return f"Agent:{agent}:Available"


def pending(agent: str) -> str:
    return f"Agent:{agent}:Pending"


def escrowed(agent: str) -> str:
    return f"Agent:{agent}:Escrowed"


def credit(agent: str) -> str:
    return f"{CREDIT_PREFIX}:{agent}"


def agent_accounts(agent: str) -> dict[AgentBucket, str]:
    return {
        AgentBucket.AVAILABLE: available(agent),
        AgentBucket.PENDING: pending(agent),
        AgentBucket.ESCROWED: escrowed(agent),
        AgentBucket.CREDIT: credit(agent),
    }


@lru_cache(maxsize=16_384)
def account_buckets(agent: str) -> Mapping[str, AgentBucket]:
    """An agent's account names → buckets, read-only and cached: every write and projection asks."""
    return MappingProxyType({name: bucket for bucket, name in agent_accounts(agent).items()})


@dataclass(frozen=True, slots=True)
class AccountInfo:
    name: str
    type: AccountType
    agent: str | None = None
    bucket: AgentBucket | None = None

    @property
    def display_sign(self) -> int:
        """Multiply a beancount-signed sum by this to get what a person expects."""
        return -1 if self.type in (AccountType.LIABILITY, AccountType.INCOME, AccountType.EQUITY) else 1


_AGENT_RE = re.compile(r"Agent:(0x[0-9a-f]{40}):(Available|Pending|Escrowed)")
_CREDIT_RE = re.compile(r"Platform:Credit:(0x[0-9a-f]{40})")
_FIXED = {
    TREASURY: AccountType.ASSET,
    FEES: AccountType.INCOME,
    OPENING: AccountType.EQUITY,
    SUSPENSE: AccountType.LIABILITY,
    CAPITAL: AccountType.EQUITY,
    RETAINED_EARNINGS: AccountType.EQUITY,
    NETWORK_FEES: AccountType.EXPENSE,
    BAD_DEBT: AccountType.EXPENSE,
}
PLATFORM_ACCOUNTS = MappingProxyType(_FIXED)  # the platform's own accounts (no agent's), name → type


def parse_account(name: str) -> AccountInfo:
    """Classify an account name, or raise InvalidAccount for a name not in the chart."""
    if not isinstance(name, str):
        raise InvalidAccount("account name must be a string")
    if name in _FIXED:
        return AccountInfo(name, _FIXED[name])
    if m := _AGENT_RE.fullmatch(name):
        return AccountInfo(name, AccountType.LIABILITY, m.group(1), AgentBucket(m.group(2)))
    if m := _CREDIT_RE.fullmatch(name):
        return AccountInfo(name, AccountType.ASSET, m.group(1), AgentBucket.CREDIT)
    raise InvalidAccount(f"{name[:100]!r} is not an account of the chart", account=name[:100])


_PREFIX_RE = re.compile(r"(Agent|Platform|Income|Equity|Expenses)(:[A-Za-z0-9-]+)*")


def normalize_prefix(prefix: str) -> str:
    """Validate a rollup prefix such as ``Agent:<addr>`` (addresses lower-cased); "" means all."""
    if prefix == "":
        return ""
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise InvalidAccount(f"{str(prefix)[:100]!r} is not an account prefix", account=str(prefix)[:100])
    parts = prefix.split(":")
    return ":".join(normalize_address(p) if p.lower().startswith("0x") else p for p in parts)


# Exports put the ledger's roots under the standard ones every accounting tool knows.
EXPORT_ROOTS = {"Platform": "Assets", "Agent": "Liabilities"}
_EXPORTED_PREFIXES = tuple(f"{root}:{ours}:" for ours, root in EXPORT_ROOTS.items())


def exported_name(account: str) -> str:
    """``Platform:Treasury`` → ``Assets:Platform:Treasury``; ``Income:``/``Expenses:``/``Equity:`` unchanged."""
    root = EXPORT_ROOTS.get(account.split(":", 1)[0])
    return f"{root}:{account}" if root else account


def ledger_name(exported: str) -> str:
    """The inverse of ``exported_name`` (names from exports made before the mapping pass unchanged)."""
    return exported.split(":", 1)[1] if exported.startswith(_EXPORTED_PREFIXES) else exported
