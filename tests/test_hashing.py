"""The hash chain's canonical form is sorted-key JSON: the hand-written encoder must equal json.dumps."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from agentbooks.domain.hashing import canonical_form, canonical_time
from agentbooks.storage.write_path import transaction_id

_ID_NAMESPACE = uuid.UUID("5b0f3c1e-7a43-4d7c-9a55-0c7be1a6f2d1")

texts = st.text(max_size=40)  # any unicode: quotes, backslashes, control characters, astral planes
maybe_text = st.none() | texts
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
times = st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(timezone.utc))


def reference_form(**f) -> bytes:  # type: ignore[no-untyped-def]
    """The specification: what an auditor re-walking the chain computes."""
    body = {
        "seq": f["seq"], "id": f["transaction_id"], "at": f["occurred_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "kind": f["kind"], "agent": f["agent"], "counterparty": f["counterparty"], "amount": f["amount_micros"],
        "reference": f["reference"], "tx_hash": f["tx_hash"], "postings": [list(p) for p in f["postings"]],
        "credit_limit": f["credit_limit_micros"], "reverses": f["reverses_seq"], "prev": f["prev_hash"],
        "memo": f["memo"], "meta": f["meta"],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@settings(max_examples=300, deadline=None)
@given(
    seq=ints, transaction_id=texts, occurred_at=times, kind=texts, agent=maybe_text, counterparty=maybe_text,
    amount_micros=ints, reference=maybe_text, tx_hash=maybe_text,
    postings=st.lists(st.tuples(texts, ints, texts, maybe_text), max_size=4),
    credit_limit_micros=st.none() | ints, reverses_seq=st.none() | ints, prev_hash=texts, memo=maybe_text,
    meta=st.dictionaries(texts, ints | texts | st.dictionaries(texts, texts, max_size=3), max_size=4),
)
def test_canonical_form_is_sorted_key_json(**fields) -> None:  # type: ignore[no-untyped-def]
    assert canonical_form(**fields) == reference_form(**fields)


@given(times)
def test_canonical_time_is_strftimes_spelling(moment: datetime) -> None:
    assert canonical_time(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_canonical_time_converts_to_utc() -> None:
    moment = datetime(2026, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    assert canonical_time(moment) == "2026-12-01T07:30:00.000000Z"


@given(seq=st.integers(min_value=1, max_value=2**62), prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_transaction_ids_are_uuid5_of_sequence_and_predecessor(seq: int, prev: str) -> None:
    assert transaction_id(seq, prev) == str(uuid.uuid5(_ID_NAMESPACE, f"{seq}:{prev}"))
