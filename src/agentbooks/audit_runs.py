"""Verification and reconciliation runs, each recorded in the audit trail with its result.

(Apart from ``audit`` because these checks read through the ``Ledger``, which itself records
administrative actions through ``audit``.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from . import audit
from .ledger import Ledger
from .reconcile.match import reconcile
from .verify.database import verify_database
from .verify.model import VerifyReport


def verified(ledger: Ledger) -> VerifyReport:
    """``verify_database``, recorded as a ``verification_run``."""
    report = verify_database(ledger)
    audit.record_action(ledger.service, audit.VERIFICATION_RUN, clean=report.clean,
                        violations=report.violation_count, last_seq=report.last_seq, head_hash=report.head_hash)
    return report


def reconciled(ledger: Ledger, transfers: Iterable[Any], treasury: set[str], *,
               start: datetime | None = None, end: datetime | None = None) -> Any:
    """``reconcile``, recorded as a ``reconciliation_run``."""
    result = reconcile(ledger, list(transfers), treasury, start=start, end=end)
    audit.record_action(ledger.service, audit.RECONCILIATION_RUN, clean=result.clean, counts=result.counts())
    return result
