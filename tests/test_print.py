"""Printed reports keep every column: HTML pages printed to PDF by headless Chromium, read back with pdftotext."""

from __future__ import annotations

import shutil

import pytest

from agentbooks.render import render
from agentbooks.render.pdf import browser, column_titles, html_to_pdf, missing_columns
from agentbooks.reports import build_report
from conftest import ALICE
from test_export_beancount import small_scenario

pytestmark = pytest.mark.skipif(browser() is None or shutil.which("pdftotext") is None,
                                reason="needs chromium and pdftotext (apt-get install chromium poppler-utils)")


@pytest.mark.parametrize("name", ["journal", "agent-statement"])
def test_the_widest_reports_print_every_column_on_a_landscape_page(ledger, name):
    small_scenario(ledger)
    html = render(build_report(ledger, name, agent=ALICE), "html")
    pdf = html_to_pdf(html)
    assert pdf.startswith(b"%PDF")
    assert len(column_titles(html)) >= 7
    assert missing_columns(html, pdf) == []
