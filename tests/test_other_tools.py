"""Other accounting tools read the export as agentbooks does: hledger (through beancount2ledger) and fava.

The export puts the ledger's accounts under the standard roots (``Assets:Platform:…``,
``Liabilities:Agent:…``), so hledger classifies them with no declarations.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from agentbooks import Ledger
from agentbooks.domain.accounts import ledger_name
from agentbooks.export.beancount import export_file
from agentbooks.reports import build_report
from conftest import StepClock
from random_books import fill_random

CONVERTER = Path(sys.executable).with_name("beancount2ledger")
pytestmark = pytest.mark.skipif(shutil.which("hledger") is None or not CONVERTER.exists(),
                                reason="needs hledger (apt-get install hledger) and beancount2ledger (pip)")


def hledger_balance_sheet(beancount_file: Path) -> dict[str, Decimal]:
    """``hledger bse`` on the converted export: account (the ledger's name) → amount as hledger shows it."""
    converted = beancount_file.with_suffix(".hledger")
    converted.write_text(subprocess.run([str(CONVERTER), "-f", "hledger", str(beancount_file)], check=True,
                                        capture_output=True, text=True, timeout=300).stdout)
    out = subprocess.run(["hledger", "-f", str(converted), "bse", "--flat", "-N", "-O", "csv"], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    rows = {}
    for account, amount, *_ in list(csv.reader(out.splitlines()))[2:]:
        if amount:
            rows[ledger_name(account)] = Decimal(amount.split()[0])
    return rows


@pytest.mark.parametrize("seed", [3, 8])
def test_hledger_shows_the_same_balance_sheet_as_agentbooks(tmp_path, seed):
    with Ledger.open("sqlite://", clock=StepClock()) as ledger:
        fill_random(ledger, seed, operations=150, platform_books=True)
        path = export_file(ledger, tmp_path / "books.beancount").path
        ours = {name: amount for name, amount in ledger.rollup("").items() if amount}
        sheet = {r["line"]: r["amount"] for r in build_report(ledger, "balance-sheet").rows}
    theirs = hledger_balance_sheet(path)
    for name, amount in ours.items():
        root = name.split(":", 1)[0]
        if root in ("Platform", "Agent", "Equity"):  # hledger shows liabilities and equity positive
            assert theirs.pop(name) == (amount if root == "Platform" else -amount), name
    assert theirs == {}  # nothing in hledger's balance sheet that agentbooks does not have
    assets = sum(a for n, a in ours.items() if n.startswith("Platform"))
    owed = -sum(a for n, a in ours.items() if n.startswith("Agent"))
    assert (int(assets.scaleb(6)), int(owed.scaleb(6))) == (sheet["Total assets"], sheet["Total obligations to agents"])
