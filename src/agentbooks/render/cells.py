"""How one report cell is written as text, by column kind."""

from __future__ import annotations

from typing import Any

from ..domain.hashing import canonical_time
from ..domain.money import format_micros
from ..reports.model import Column


def cell_text(column: Column, value: Any) -> str:
    if value is None or value == "":
        return ""
    if column.kind == "money" and isinstance(value, int):
        return format_micros(value)
    if column.kind == "time" and hasattr(value, "astimezone"):
        return canonical_time(value)
    return str(value)


def header_lines(report) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    lines = [("report", report.title), ("as of journal seq", str(report.as_of_seq)),
             ("as of", canonical_time(report.as_of) if report.as_of else "start of the books")]
    if report.period:
        start, end = report.period
        lines.append(("period", f"{canonical_time(start) if start else 'start'} to {canonical_time(end) if end else 'start'}"))
    lines += [(f"check: {name}", "ok" if ok else "FAILED") for name, ok in report.checks.items()]
    lines += [("note", note) for note in report.notes]
    return lines
