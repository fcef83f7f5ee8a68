"""The offline verifier: check the books from a beancount export alone, with no database.

It reads the exporter's own format with a small streaming line parser
(beancount itself stays a dependency of the exporter's tests only), re-walks
the hash chain from the exported metadata with the same rules as the
database verifier, recomputes every balance and compares it with the
export's balance assertions and, if given, with a head hash the platform
published.
"""

from __future__ import annotations

import json

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

from ..domain.accounts import ledger_name
from ..domain.model import Kind, Posting, Transaction
from ..domain.money import MICROS_PER_UNIT, format_micros
from .chain import ChainWalker
from .model import VerifyReport, Violation

_TX = re.compile(r'^(\d{4}-\d{2}-\d{2}) \* "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*" \^tx-(\S+)$')
_META = re.compile(r'^  (?:; )?([a-z][a-z0-9_-]*): "((?:[^"\\]|\\.)*)"$')  # metadata, or chain fields in comments
_POSTING = re.compile(r"^  ([A-Z][A-Za-z0-9:-]+)  (-?\d+\.\d{6}) ([A-Z]+)$")
_POSTING_META = re.compile(r'^    reference: "((?:[^"\\]|\\.)*)"$')
_BALANCE = re.compile(r"^(\d{4}-\d{2}-\d{2}) balance ([A-Z][A-Za-z0-9:-]+) (-?\d+\.\d{6}) ~ 0 ([A-Z]+)$")
_INCLUDE = re.compile(r'^include "([^"]+)"$')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _micros(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    return sign * (int(whole) * MICROS_PER_UNIT + int(frac))


@dataclass
class _Pending:
    line: int
    tx_id: str
    meta: dict[str, str] = field(default_factory=dict)
    postings: list[Posting] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple[Path, int, str]]:
    """Every line of the file, following ``include`` directives in order."""
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if m := _INCLUDE.match(line):
                yield from _lines(path.parent / m.group(1))
            else:
                yield path, number, line


def verify_export(path: Path, *, expect_head: str | None = None) -> VerifyReport:
    report = VerifyReport(source=str(path))
    walker = ChainWalker(report)
    assertions: dict[str, int] = {}
    pending: _Pending | None = None

    def finish() -> None:
        if pending is None:
            return
        try:
            tx = _transaction(pending)
        except (KeyError, ValueError) as exc:
            report.add(Violation("malformed_export", f"transaction at line {pending.line}: {exc}",
                                 reference=pending.tx_id))
            return
        walker.feed(tx)

    for source, number, line in _lines(path):
        if m := _TX.match(line):
            finish()
            pending = _Pending(number, m.group(2))
        elif pending is not None and (m := _META.match(line)):
            pending.meta[m.group(1)] = _unquote(m.group(2))
        elif pending is not None and (m := _POSTING.match(line)):
            pending.postings.append(Posting(ledger_name(m.group(1)), _micros(m.group(2)), m.group(3)))
        elif pending is not None and pending.postings and (m := _POSTING_META.match(line)):
            last = pending.postings[-1]
            pending.postings[-1] = Posting(last.account, last.amount_micros, last.currency, _unquote(m.group(1)))
        elif m := _BALANCE.match(line):
            finish()
            pending = None
            assertions[ledger_name(m.group(2))] = _micros(m.group(3))
        elif pending is None and _META.match(line):
            continue  # an open directive's metadata (the agent, its display name)
        elif line.strip() == "" or line.startswith(("option ", ";")) or " open " in line or " custom " in line:
            if line.strip() == "" or not line.startswith(" "):
                finish()
                pending = None
        else:
            report.add(Violation("malformed_export", f"{source.name}:{number}: unexpected line {line[:80]!r}"))
    finish()

    for account in sorted(set(assertions) | {a for a, v in walker.sums.items() if v}):
        expected, actual = assertions.get(account), walker.sums.get(account, 0)
        if expected is None:
            report.add(Violation("balance_assertion_missing", f"{account} has no balance assertion", account=account,
                                 actual=format_micros(actual)))
        elif expected != actual:
            report.add(Violation("balance_assertion_failed", f"{account}: the transactions do not add up to the "
                                 "asserted balance", account=account, expected=format_micros(expected),
                                 actual=format_micros(actual)))
    if expect_head is not None and expect_head != report.head_hash:
        report.add(Violation("head_mismatch", "the export does not end at the published head hash",
                             seq=report.last_seq, expected=expect_head, actual=report.head_hash))
    return report


def _transaction(p: _Pending) -> Transaction:
    m = p.meta
    if m["id"] != p.tx_id:
        raise ValueError(f"link ^tx-{p.tx_id} does not match id {m['id']}")
    return Transaction(
        seq=int(m["seq"]), id=m["id"], occurred_at=datetime.fromisoformat(m["at"].replace("Z", "+00:00")),
        kind=Kind(m["kind"]), agent=m.get("agent"), counterparty=m.get("counterparty"),
        amount_micros=int(m["amount-micros"]), reference=m.get("reference"), tx_hash=m.get("tx-hash"),
        memo=m.get("memo"), postings=tuple(p.postings), flows=(), hold_effects=(),
        credit_limit_micros=int(m["credit-limit-micros"]) if "credit-limit-micros" in m else None,
        reverses_seq=int(m["reverses-seq"]) if "reverses-seq" in m else None,
        metadata=json.loads(m["details"]) if "details" in m else {},
        prev_hash=m["prev-hash"], hash=m["hash"],
    )
