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


def test_the_cli_writes_a_print_ready_statement_pdf(tmp_path):
    import subprocess
    import sys

    from agentbooks import Ledger
    from agentbooks.render.pdf import pdf_text
    from conftest import StepClock

    db = tmp_path / "books.db"
    with Ledger.open(f"sqlite:///{db}", clock=StepClock()) as ledger:
        small_scenario(ledger)
        ledger.set_agent_profile(ALICE, display_name="research-bot")
    out = tmp_path / "statement.pdf"
    run = subprocess.run([sys.executable, "-m", "agentbooks.cli", "report", "agent-statement", "--agent", ALICE,
                          "--from", "2026-01-01", "--format", "pdf", "--out", str(out),
                          "--database-url", f"sqlite:///{db}"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    text = " ".join(pdf_text(out.read_bytes()).split())
    assert "Statement of research-bot" in text and "closing balance" in text and "On-chain tx" in text
