"""Verification and reconciliation runs, each recorded in the audit trail with its result.

(Apart from ``audit`` because these checks read through the ``Ledger``, which itself records
administrative actions through ``audit``.)
"""

from __future__ import annotations

from typing import Any, Sequence

from . import audit
from .ledger import Ledger
from .reconcile.runs import run_reconciliation
from .verify.database import verify_database
from .verify.model import VerifyReport


def verified(ledger: Ledger) -> VerifyReport:
    """``verify_database``, recorded as a ``verification_run``."""
    report = verify_database(ledger)
    audit.record_action(ledger.service, audit.VERIFICATION_RUN, clean=report.clean,
                        violations=report.violation_count, last_seq=report.last_seq, head_hash=report.head_hash)
    return report


def reconciled(ledger: Ledger, transfers: Sequence[Any], treasury: Sequence[str], **options: Any) -> tuple[bool, dict[str, Any]]:
    """``run_reconciliation`` (window, balances, digest, record), recorded as a ``reconciliation_run``."""
    clean, body = run_reconciliation(ledger, transfers, treasury, **options)
    audit.record_action(ledger.service, audit.RECONCILIATION_RUN, clean=clean, counts=body.get("counts"))
    return clean, body
