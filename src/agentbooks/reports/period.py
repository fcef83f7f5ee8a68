"""What a report's boundaries mean: one rule for ``--as-of``, ``--from`` and ``--to`` in every report.

A boundary is a moment or a journal sequence. A moment ``T`` (an RFC 3339
time, or a plain date ``2026-10-01`` meaning midnight in the reporting time
zone) cuts the journal *before* ``T``: a period ``--from F --to T`` holds the
transactions with ``F <= time < T``, as hledger's and bean-query's date
ranges do, so consecutive periods share their boundary and no transaction
falls in two. A sequence ``N`` cuts after transaction ``N``. With no end the
report is as of the last transaction; with no start it opens at the start of
the books.

The label of a report is the boundary asked for (the time given, or the time
of the transaction a sequence names), never the time of whichever transaction
happens to come last before it. Times stay UTC inside; the time zone only
turns plain dates into moments and moments into labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..domain.errors import InvalidArgument, InvalidTimestamp
from ..ledger import Ledger
from ..requests import check_seq, parse_time
from ..storage import journal_store as store

_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")


@dataclass(frozen=True)
class Boundary:
    seq: int  # the last journal sequence on this side of the boundary (0: nothing yet)
    at: datetime | None  # the moment it stands for, in UTC (None: the start of the books)


def zone(name: str | None) -> ZoneInfo:
    """The reporting time zone (``UTC`` by default), or a typed error for an unknown name."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone {str(name)[:60]!r} (for example Europe/Berlin)", field="tz") from None


def parse_moment(value: Any, tz: ZoneInfo) -> datetime:
    """A plain date (midnight in ``tz``), a local date-time in ``tz``, or an RFC 3339 time; UTC out."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(), tz).astimezone(timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        try:
            if _PLAIN_DATE.fullmatch(text):
                return datetime.combine(date.fromisoformat(text), time(), tz).astimezone(timezone.utc)
            if _LOCAL_TIME.fullmatch(text):
                return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(timezone.utc)
        except ValueError:
            raise InvalidTimestamp(f"{text[:40]!r} is not a date", field="from/to") from None
    return parse_time(value, field="from/to")


def _time_of_seq(ledger: Ledger, seq: int) -> datetime | None:
    if seq == 0:
        return None
    return ledger.service.read(lambda c: store.transactions_between(c, seq, seq))[0].occurred_at


def end_boundary(ledger: Ledger, value: Any, tz: ZoneInfo) -> Boundary:
    """Where a report ends (``--as-of``/``--to``): the head when not given."""
    head = ledger.head()[0]
    if value is None:
        return Boundary(head, _time_of_seq(ledger, head))
    if isinstance(value, int) and not isinstance(value, bool):
        seq = min(check_seq(value, field="as_of"), head)
        return Boundary(seq, _time_of_seq(ledger, seq))
    moment = parse_moment(value, tz)
    return Boundary(ledger.service.read(lambda c: store.seq_before(c, moment)), moment)


def start_boundary(ledger: Ledger, value: Any, tz: ZoneInfo) -> Boundary:
    """Where a period starts (``--from``): the start of the books when not given."""
    if value is None:
        return Boundary(0, None)
    return end_boundary(ledger, value, tz)


def period(ledger: Ledger, start: Any, end: Any, tz: ZoneInfo) -> tuple[Boundary, Boundary]:
    first, last = start_boundary(ledger, start, tz), end_boundary(ledger, end, tz)
    if first.seq > last.seq or (first.at and last.at and first.at > last.at):
        raise InvalidArgument("the period starts after it ends", field="from")
    return first, last


MAX_COLUMNS = 120  # ten years of months


def split_period(start: datetime, end: datetime, interval: str, tz: ZoneInfo) -> Iterator[tuple[str, datetime, datetime]]:
    """``[start, end)`` cut at calendar months or quarters in ``tz``: (label, from, to) per column."""
    local = start.astimezone(tz)
    step = 1 if interval == "month" else 3
    year, month = local.year, (local.month - 1) // step * step + 1
    lo = start
    for _ in range(MAX_COLUMNS):
        label = f"{year}-{month:02d}" if step == 1 else f"{year}-Q{(month - 1) // 3 + 1}"
        month += step
        if month > 12:
            year, month = year + 1, month - 12
        hi = datetime(year, month, 1, tzinfo=tz).astimezone(timezone.utc)
        yield label, lo, min(hi, end)
        if hi >= end:
            return
        lo = hi
    raise InvalidArgument(f"at most {MAX_COLUMNS} columns: choose a shorter period or a longer interval",
                          field="interval")
