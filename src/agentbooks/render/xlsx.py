"""XLSX via openpyxl: typed cells (money numbers with a 6-decimal format, UTC date-times, percentages
and ages as numbers), so a spreadsheet can sum, sort, filter and pivot them.

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

from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from ..domain.money import to_decimal
from ..reports.model import Column, Report
from .cells import cell_text, header_items, utc_naive

MONEY_FORMAT = "#,##0.000000"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DECIMAL_FORMAT = "0.00"
FORMATS = {"money": MONEY_FORMAT, "time": TIME_FORMAT, "date": TIME_FORMAT, "percent": DECIMAL_FORMAT,
           "decimal": DECIMAL_FORMAT}
MIN_WIDTH, MAX_WIDTH = 8, 60


def _value(column: Column, value: Any) -> Any:
    """A typed cell: money a Decimal, times UTC date-times, percentages and ages Decimals, sequences ints."""
    if value is None or value == "":
        return None
    if column.kind == "money" and isinstance(value, int):
        return to_decimal(value)  # Decimal in, never a float from our side
    if column.kind == "int" and isinstance(value, int):
        return value
    if column.kind in ("time", "date") and isinstance(value, datetime):
        return utc_naive(value)
    if column.kind in ("percent", "decimal") and isinstance(value, Decimal):
        return value
    return cell_text(column, value)


def _header_value(value: Any) -> Any:
    return utc_naive(value) if isinstance(value, datetime) else value


def render_xlsx(report: Report) -> bytes:
    """One sheet: the header (typed), the table with a frozen, filtered header row, printed to the page width."""
    book = Workbook()
    sheet = book.active
    sheet.title = report.name[:31]
    for label, value in header_items(report):
        sheet.append([f"{label} (UTC)" if isinstance(value, datetime) else label, _header_value(value)])
        if isinstance(value, datetime):
            sheet.cell(sheet.max_row, 2).number_format = TIME_FORMAT
        elif isinstance(value, Decimal):
            sheet.cell(sheet.max_row, 2).number_format = MONEY_FORMAT
    sheet.append([])
    sheet.append([c.title for c in report.columns])
    header_row = sheet.max_row
    for cell in sheet[header_row]:
        cell.font = Font(bold=True)
    widths = [len(c.title) for c in report.columns]
    rows = list(report.rows) + ([report.totals] if report.totals else [])
    for row in rows:
        sheet.append([_value(c, row.get(c.key)) for c in report.columns])
        for i, (column, cell) in enumerate(zip(report.columns, sheet[sheet.max_row])):
            if column.kind in FORMATS and not isinstance(cell.value, str) and cell.value is not None:
                cell.number_format = FORMATS[column.kind]
            widths[i] = max(widths[i], len(cell_text(column, row.get(column.key))))
    if report.totals:
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
    last_column = get_column_letter(len(report.columns))
    last_data_row = header_row + len(report.rows)
    sheet.freeze_panes = f"A{header_row + 1}"
    sheet.auto_filter.ref = f"A{header_row}:{last_column}{max(last_data_row, header_row)}"
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(MAX_WIDTH, max(MIN_WIDTH, width + 2))
    sheet.column_dimensions["A"].width = max(sheet.column_dimensions["A"].width, 20)
    _fit_to_page_width(sheet, header_row)
    book.properties.creator = "agentbooks"
    out = io.BytesIO()
    book.save(out)
    return _stamped(out.getvalue(), report.as_of or EPOCH)


def _fit_to_page_width(sheet: Any, header_row: int) -> None:
    """Landscape A4, every column on one page width (as many pages down as needed), header repeated."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{header_row}:{header_row}"


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
