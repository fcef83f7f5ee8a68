"""Print-ready PDF: the HTML page printed by headless Chromium (its print CSS lays it out).

``python -m agentbooks.render.pdf reports/demo-*.html`` prints every page and
checks, with ``pdftotext``, that every column title of the table is on the
page (a column pushed off the paper would be missing). Chromium and pdftotext
are system tools (``apt-get install chromium poppler-utils``), not Python
dependencies: without them the PDF format is refused with a clear message.
PDFs are not among the byte-reproducible samples (Chromium stamps its own
creation time into them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from html import unescape
from pathlib import Path

from ..domain.errors import InvalidArgument

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
PRINT_TIMEOUT_SECONDS = 120


def browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def html_to_pdf(html: bytes) -> bytes:
    """The page as Chromium prints it (A4 landscape, from the page's own ``@page`` rule)."""
    chromium = browser()
    if chromium is None:
        raise InvalidArgument("PDF needs headless Chromium (apt-get install chromium)", field="format")
    with tempfile.TemporaryDirectory(prefix="agentbooks-pdf-") as work:
        page, pdf = Path(work) / "page.html", Path(work) / "page.pdf"
        page.write_bytes(html)
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
             f"--user-data-dir={work}/profile", f"--print-to-pdf={pdf}", page.as_uri()],
            check=True, capture_output=True, timeout=PRINT_TIMEOUT_SECONDS,
        )
        return pdf.read_bytes()


def pdf_text(pdf: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(pdf)
        handle.flush()
        return subprocess.run(["pdftotext", "-layout", handle.name, "-"], check=True, capture_output=True,
                              text=True, timeout=PRINT_TIMEOUT_SECONDS).stdout


def column_titles(html: bytes) -> list[str]:
    head = re.search(rb"<thead>(.*?)</thead>", html, re.S)
    return [unescape(t.decode()) for t in re.findall(rb"<th[^>]*>(.*?)</th>", head.group(1))] if head else []


def missing_columns(html: bytes, pdf: bytes) -> list[str]:
    """The table's column titles that the printed page does not show."""
    text = " ".join(pdf_text(pdf).split())
    return [title for title in column_titles(html) if title not in text]


def main(paths: list[str]) -> int:
    failed = 0
    for name in paths:
        html = Path(name).read_bytes()
        pdf = html_to_pdf(html)
        Path(name).with_suffix(".pdf").write_bytes(pdf)
        lost = missing_columns(html, pdf)
        failed += bool(lost)
        print(f"{name}: {'every column printed' if not lost else f'LOST columns {lost}'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
