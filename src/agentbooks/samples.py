"""The demo day's sample outputs: a beancount export in ``ledgers/`` and every report in ``reports/``.

They are committed, and a test regenerates them from the scripted demo and
compares byte for byte (XLSX included: workbooks are stamped with the
report's as-of time), so they are reproducible and never go stale.
"""

from __future__ import annotations

from pathlib import Path

from .demo import AGENTS
from .export.beancount import export_file
from .ledger import Ledger
from .render import RENDERERS, render
from .reports import REPORTS, build_report

SAMPLE_EXPORT = "demo.beancount"


def write_samples(ledger: Ledger, ledgers_dir: Path, reports_dir: Path) -> list[Path]:
    written = [export_file(ledger, ledgers_dir / SAMPLE_EXPORT, title="agentbooks demo day").path]
    reports_dir.mkdir(parents=True, exist_ok=True)
    for name in REPORTS:
        report = build_report(ledger, name, agent=AGENTS["research-bot"])
        for fmt in RENDERERS:
            path = reports_dir / f"demo-{name}.{fmt}"
            path.write_bytes(render(report, fmt))
            written.append(path)
    return written
