"""XLSX via openpyxl: money cells are numbers with a 6-decimal format, so a spreadsheet can sum them.

The workbook is stamped with the report's as-of time instead of the wall
clock (in its properties and in the archive's entries), so the same books
give the same bytes, like the other formats.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timezone
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font

from ..domain.money import to_decimal
from ..reports.model import Report
from .cells import cell_text, header_lines

MONEY_FORMAT = "#,##0.000000"


def _value(column, value):  # type: ignore[no-untyped-def]
    if column.kind == "money" and isinstance(value, int):
        return to_decimal(value)  # Decimal in, never a float from our side
    if column.kind == "int" and isinstance(value, int):
        return value
    return cell_text(column, value)


def render_xlsx(report: Report) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = report.name[:31]
    for label, value in header_lines(report):
        sheet.append([label, value])
    sheet.append([])
    sheet.append([c.title for c in report.columns])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    rows = list(report.rows) + ([report.totals] if report.totals else [])
    for row in rows:
        sheet.append([_value(c, row.get(c.key)) for c in report.columns])
        for column, cell in zip(report.columns, sheet[sheet.max_row]):
            if column.kind == "money" and isinstance(cell.value, (Decimal, int)):
                cell.number_format = MONEY_FORMAT
    if report.totals:
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
    for index, column in enumerate(report.columns, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = 18 if column.kind != "text" else 44
    book.properties.creator = "agentbooks"
    out = io.BytesIO()
    book.save(out)
    return _stamped(out.getvalue(), report.as_of or EPOCH)


EPOCH = datetime(1980, 1, 1, tzinfo=timezone.utc)  # the earliest time a zip entry can carry
_W3CDTF = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def _stamped(archive: bytes, moment: datetime) -> bytes:
    """The same archive with every timestamp set to ``moment`` (openpyxl writes the wall clock)."""
    moment = max(moment.astimezone(timezone.utc), EPOCH)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            data = source.read(entry.filename)
            if entry.filename == "docProps/core.xml":
                data = _W3CDTF.sub(rb"\g<1>" + stamp + rb"\g<2>", data)
            target.writestr(zipfile.ZipInfo(entry.filename, moment.timetuple()[:6]), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()
