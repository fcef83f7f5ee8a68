"""Renderers of ``Report`` data: CSV, JSON, XLSX and HTML (with an inline SVG chart).

Money is written with exactly 6 decimals (text in CSV/JSON/HTML, a 6-place
number format in XLSX); times in UTC. Output is deterministic, so the same
books give byte-identical CSV, JSON and HTML.
"""

from __future__ import annotations

from typing import Callable

from ..domain.errors import InvalidArgument
from ..reports.model import Report
from .html import render_html
from .tabular import render_csv, render_json
from .xlsx import render_xlsx

RENDERERS: dict[str, Callable[[Report], bytes]] = {
    "csv": render_csv,
    "json": render_json,
    "xlsx": render_xlsx,
    "html": render_html,
}


def render(report: Report, fmt: str) -> bytes:
    if fmt not in RENDERERS:
        raise InvalidArgument(f"unknown format {fmt[:20]!r}; one of {sorted(RENDERERS)}", field="format")
    return RENDERERS[fmt](report)
