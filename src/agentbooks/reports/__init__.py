"""Accountants' reports as data (``Report``), built from the ledger as of a time or journal sequence.

Rendering (CSV, JSON, XLSX, HTML) is separate: see ``agentbooks.render``.
"""

from .model import Chart, Column, Report
from .catalog import REPORTS, build_report

__all__ = ["Chart", "Column", "Report", "REPORTS", "build_report"]
