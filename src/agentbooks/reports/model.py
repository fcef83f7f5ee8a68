"""The shape every report shares, so one renderer per format serves them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ColumnKind = Literal["text", "money", "int", "time", "date", "percent", "decimal"]  # date: for people


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: ColumnKind = "text"


@dataclass(frozen=True)
class Chart:
    """A time series chart: each series is [(time, micro-units)], drawn where a person would rather look."""

    title: str
    series: dict[str, list[tuple[datetime, int]]]


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    as_of_seq: int
    as_of: datetime | None  # the boundary asked for (see ``period``); None: the books are empty
    columns: tuple[Column, ...]
    rows: tuple[dict[str, Any], ...]  # money as int micro-units, times as aware datetimes
    totals: dict[str, Any] | None = None
    checks: dict[str, bool] = field(default_factory=dict)  # e.g. {"nets to zero": True}
    notes: tuple[str, ...] = ()
    chart: Chart | None = None
    period: tuple[datetime | None, datetime | None] | None = None  # the boundaries asked for, [start, end)
    tz: str = "UTC"  # the reporting time zone: labels are written in it
    summary: tuple[tuple[str, int], ...] = ()  # headline amounts (micro-units), shown above the table
