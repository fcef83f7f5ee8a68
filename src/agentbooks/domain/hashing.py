"""Tamper evidence: each journal transaction hashes its canonical form and its predecessor.

The canonical form is deliberately small and explicit (sorted-key JSON of
integers and strings) so an auditor can re-walk the chain from the database,
the API's journal stream or a beancount export without this code.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from json.encoder import encode_basestring_ascii as _quote  # json.dumps's own quoting (C)
from typing import Any, Iterable, Mapping

GENESIS_HASH = "0" * 64


def canonical_time(moment: datetime) -> str:
    """UTC, microsecond precision, always the same spelling."""
    t = moment.astimezone(timezone.utc)
    if t.year < 1000:  # strftime does not zero-pad such years; keep its spelling
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The strftime spelling, formatted directly: strftime costs as much as the rest of a hash.
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            f".{t.microsecond:06d}Z")


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def _number(value: int | None) -> str:
    return "null" if value is None else int.__repr__(value)


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
    memo: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> bytes:
    """``json.dumps(body, sort_keys=True, separators=(",", ":"))`` of the transaction, byte for byte.

    Written out by hand with the keys in sorted order and json's own string
    quoting (the write path hashes every transaction, and the generic encoder
    was a fifth of a batch's time). ``tests/test_hashing.py`` proves it equal
    to json.dumps of the same body for arbitrary values.

    ``meta`` is the transaction's metadata (strings, integers and nested
    mappings of them: what the operation and the call recorded beside the
    postings), ``memo`` its free text: both are shown by the API and the
    export, so both are inside the chain.
    """
    meta_text = json.dumps(meta, sort_keys=True, separators=(",", ":")) if meta else "{}"
    lines = ",".join(f"[{_text(a)},{_number(m)},{_text(c)},{_text(r)}]" for a, m, c, r in postings)
    return (
        f'{{"agent":{_text(agent)},"amount":{_number(amount_micros)},"at":{_quote(canonical_time(occurred_at))},'
        f'"counterparty":{_text(counterparty)},"credit_limit":{_number(credit_limit_micros)},'
        f'"id":{_quote(transaction_id)},"kind":{_quote(kind)},"memo":{_text(memo)},"meta":{meta_text},'
        f'"postings":[{lines}],"prev":{_quote(prev_hash)},'
        f'"reference":{_text(reference)},"reverses":{_number(reverses_seq)},"seq":{_number(seq)},'
        f'"tx_hash":{_text(tx_hash)}}}'
    ).encode()


def transaction_hash(**fields: Any) -> str:
    return hashlib.sha256(canonical_form(**fields)).hexdigest()


def recorded_hash(tx: Any) -> str:
    """The hash a recorded ``Transaction`` should carry, recomputed from its own fields."""
    return transaction_hash(
        seq=tx.seq, transaction_id=tx.id, occurred_at=tx.occurred_at, kind=tx.kind.value, agent=tx.agent,
        counterparty=tx.counterparty, amount_micros=tx.amount_micros, reference=tx.reference, tx_hash=tx.tx_hash,
        postings=[(p.account, p.amount_micros, p.currency, p.reference) for p in tx.postings],
        credit_limit_micros=tx.credit_limit_micros, reverses_seq=tx.reverses_seq, prev_hash=tx.prev_hash,
        memo=tx.memo, meta=tx.metadata,
    )
