"""Tamper evidence: each journal transaction hashes its canonical form and its predecessor.

The canonical form is deliberately small and explicit (sorted-key JSON of
integers and strings) so an auditor can re-walk the chain from the database,
the API's journal stream or a beancount export without this code.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

GENESIS_HASH = "0" * 64


def canonical_time(moment: datetime) -> str:
    """UTC, microsecond precision, always the same spelling."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_form(
    *,
    seq: int,
    transaction_id: str,
    occurred_at: datetime,
    kind: str,
    agent: str | None,
    counterparty: str | None,
    amount_micros: int,
    reference: str | None,
    tx_hash: str | None,
    postings: Iterable[tuple[str, int, str, str | None]],
    credit_limit_micros: int | None,
    reverses_seq: int | None,
    prev_hash: str,
) -> bytes:
    body: Mapping[str, Any] = {
        "seq": seq,
        "id": transaction_id,
        "at": canonical_time(occurred_at),
        "kind": kind,
        "agent": agent,
        "counterparty": counterparty,
        "amount": amount_micros,
        "reference": reference,
        "tx_hash": tx_hash,
        "postings": [list(p) for p in postings],
        "credit_limit": credit_limit_micros,
        "reverses": reverses_seq,
        "prev": prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def transaction_hash(**fields: Any) -> str:
    return hashlib.sha256(canonical_form(**fields)).hexdigest()
