"""How one report cell and the report's header are written as text, by column kind."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ..domain.hashing import canonical_time
from ..domain.money import format_micros, to_decimal
from ..reports.model import Column, Report


def moment_text(moment: datetime, tz: str = "UTC") -> str:
    """UTC in the journal's spelling; another reporting time zone with its offset (``2026-10-01T00:00:00+02:00``)."""
    if tz == "UTC":
        return canonical_time(moment)
    return moment.astimezone(ZoneInfo(tz)).isoformat()


def cell_text(column: Column, value: Any, tz: str = "UTC") -> str:
    if value is None or value == "":
        return ""
    if column.kind == "money" and isinstance(value, int):
        return format_micros(value)
    if column.kind == "time" and isinstance(value, datetime):
        return moment_text(value, tz)
    if column.kind == "date" and isinstance(value, datetime):
        return human_time(value, tz)
    return str(value)


def human_time(moment: datetime, tz: str = "UTC") -> str:
    """``24 Nov 2026 08:07 UTC``: the minute, in the reporting time zone, named."""
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local.day} {local.strftime('%b %Y %H:%M')} {local.tzname() if tz != 'UTC' else 'UTC'}"


def header_items(report: Report) -> list[tuple[str, Any]]:
    """The report's header, typed: the as-of sequence an int, the as-of moment an aware datetime."""
    items: list[tuple[str, Any]] = [("report", report.title), ("as of journal seq", report.as_of_seq),
                                    ("as of", report.as_of if report.as_of else "start of the books")]
    if report.period:
        start, end = report.period
        items.append(("period", f"{moment_text(start, report.tz) if start else 'start of the books'} to "
                                f"{moment_text(end, report.tz) if end else 'start of the books'}"))
    if report.tz != "UTC":
        items.append(("time zone", report.tz))
    items += [(label, to_decimal(micros)) for label, micros in report.summary]
    items += [(f"check: {name}", "ok" if ok else "FAILED") for name, ok in report.checks.items()]
    items += [("note", note) for note in report.notes]
    return items


def header_lines(report: Report) -> list[tuple[str, str]]:
    return [(label, moment_text(value, report.tz) if isinstance(value, datetime) else str(value))
            for label, value in header_items(report)]


def utc_naive(moment: datetime) -> datetime:
    """A spreadsheet has no time zones: its date-time cells hold UTC."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)
