"""What a verification finds: every violation as typed data, never just the first."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Violation:
    code: str  # stable: unbalanced_transaction, hash_mismatch, chain_broken, sequence_gap, ...
    message: str
    seq: int | None = None
    account: str | None = None
    agent: str | None = None
    reference: str | None = None
    expected: str | None = None
    actual: str | None = None


@dataclass
class VerifyReport:
    source: str
    transactions: int = 0
    postings: int = 0
    last_seq: int = 0
    head_hash: str = ""
    violations: list[Violation] = field(default_factory=list)
    expired_holds: list[dict[str, Any]] = field(default_factory=list)

    MAX_VIOLATIONS = 10_000  # bound the report; the count stays exact

    violation_count: int = 0

    def add(self, violation: Violation) -> None:
        self.violation_count += 1
        if len(self.violations) < self.MAX_VIOLATIONS:
            self.violations.append(violation)

    @property
    def clean(self) -> bool:
        return self.violation_count == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "clean": self.clean, "transactions": self.transactions,
            "postings": self.postings, "lastSeq": self.last_seq, "headHash": self.head_hash,
            "violationCount": self.violation_count,
            "violations": [{k: v for k, v in asdict(x).items() if v is not None} for x in self.violations],
            "expiredHolds": self.expired_holds,
        }
