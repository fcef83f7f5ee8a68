"""CSV (metadata comment lines, one header row, data rows, a totals row) and JSON (report, rows, totals, checks).

The CSV starts with the report's header as comment lines, ``# key: value``
(report, as of journal seq, as of, period, time zone, every check as ``ok``
or ``FAILED``, notes), then the column header row: ``pandas.read_csv(path,
comment="#")`` or any reader that skips ``#`` lines gets the plain table.
"""

from __future__ import annotations

import csv
import io
import json

from ..reports.model import Report
from .cells import cell_text, header_lines


def render_csv(report: Report) -> bytes:
    out = io.StringIO()
    for label, value in header_lines(report):
        out.write(f"# {label}: {' '.join(value.split())}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.title for c in report.columns])
    for row in report.rows:
        writer.writerow([cell_text(c, row.get(c.key), report.tz) for c in report.columns])
    if report.totals:
        writer.writerow([cell_text(c, report.totals.get(c.key), report.tz) for c in report.columns])
    return out.getvalue().encode()


def render_json(report: Report) -> bytes:
    body = {
        "report": report.name,
        "title": report.title,
        "asOfSeq": report.as_of_seq,
        "meta": dict(header_lines(report)),
        "columns": [{"key": c.key, "title": c.title, "kind": c.kind} for c in report.columns],
        "rows": [{c.key: cell_text(c, row.get(c.key), report.tz) for c in report.columns} for row in report.rows],
        "totals": ({c.key: cell_text(c, report.totals.get(c.key), report.tz) for c in report.columns}
                   if report.totals else None),
        "checks": report.checks,
    }
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()
