"""``verify``: check a live database against itself, streaming the journal.

Checks, each reported for every offender: transactions balance per
currency and post only to accounts of the chart; the sequence has no gaps
and the hash chain re-walks (an edited, deleted or reordered row is named by
its sequence); every cache (balances, agent totals and credit limits, holds
and escrows, the chain head) equals what the journal implies; every agent
keeps A + P + E = totalIn − totalOut + CU, nothing constrained is negative
and credit used never exceeds its limit; every hold and escrow keeps
held = confirmed + released + remaining. Expired holds are listed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select

from ..domain import accounts as acct
from ..domain.money import format_micros
from ..ledger import Ledger
from ..storage import journal_store as store
from ..storage.tables import accounts, agents, balances, holds, journal, journal_head
from .chain import ChainWalker
from .model import VerifyReport, Violation

PAGE = 1000


def verify_database(ledger: Ledger, *, now: datetime | None = None) -> VerifyReport:
    report = VerifyReport(source="database")
    service = ledger.service
    known = set(service.read(lambda c: c.execute(select(accounts.c.name)).scalars().all()))
    walker = ChainWalker(report, known_accounts=known)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    limits: dict[str, int] = {}
    hold_sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # amount, remaining, credit, confirmed, released
    reference_postings: dict[tuple[str, str, str], int] = defaultdict(int)
    # Stream raw rows (not the caches) page by page: memory stays bounded by accounts, agents and references.
    cursor = 0
    while True:
        page = service.read(lambda c: _raw_page(c, cursor))
        for tx in page:
            walker.feed(tx)
            for f in tx.flows:
                totals[f.agent][0] += f.total_in_micros
                totals[f.agent][1] += f.total_out_micros
            if tx.credit_limit_micros is not None and tx.agent:
                limits[tx.agent] = tx.credit_limit_micros
            for e in tx.hold_effects:
                s = hold_sums[(e.kind.value, e.agent, e.reference)]
                for i, v in enumerate((e.amount_micros, e.remaining_micros, e.credit_micros, e.confirmed_micros,
                                       e.released_micros)):
                    s[i] += v
            for p in tx.postings:
                if p.reference is not None:
                    info = acct.parse_account(p.account) if p.account in known else None
                    if info and info.bucket in (acct.AgentBucket.PENDING, acct.AgentBucket.ESCROWED):
                        kind = "hold" if info.bucket is acct.AgentBucket.PENDING else "escrow"
                        reference_postings[(kind, info.agent or "", p.reference)] -= p.amount_micros
        if len(page) < PAGE:
            break
        cursor = page[-1].seq
    _check_head(ledger, report)
    _check_balances(ledger, report, walker.sums)
    _check_agents(ledger, report, walker.sums, totals, limits)
    _check_holds(ledger, report, hold_sums, reference_postings, now or service.clock())
    return report


def _raw_page(conn, after_seq: int):  # type: ignore[no-untyped-def]
    return store.transactions_page(conn, after_seq=after_seq, limit=PAGE)


def _check_head(ledger: Ledger, report: VerifyReport) -> None:
    head = ledger.service.read(lambda c: c.execute(select(journal_head)).one())
    max_seq = ledger.service.read(lambda c: c.execute(select(func.coalesce(func.max(journal.c.seq), 0))).scalar())
    if head.last_seq != max_seq or (max_seq and head.last_hash != report.head_hash):
        report.add(Violation("head_mismatch", "the chain head does not point at the last journal row",
                             seq=head.last_seq, expected=f"{max_seq}:{report.head_hash}",
                             actual=f"{head.last_seq}:{head.last_hash}"))


def _check_balances(ledger: Ledger, report: VerifyReport, sums: dict[str, int]) -> None:
    cached: dict[str, int] = defaultdict(int)
    for account, micros in ledger.service.read(lambda c: c.execute(
            select(balances.c.account, balances.c.balance_micros)).all()):
        cached[account] += micros
    for account in sorted(set(cached) | set(sums)):
        if cached.get(account, 0) != sums.get(account, 0):
            report.add(Violation("balance_cache_mismatch", f"cached balance of {account} differs from its postings",
                                 account=account, expected=format_micros(sums.get(account, 0)),
                                 actual=format_micros(cached.get(account, 0))))


def _check_agents(ledger: Ledger, report: VerifyReport, sums: dict[str, int], totals: dict[str, list[int]],
                  limits: dict[str, int]) -> None:
    for row in ledger.service.read(lambda c: c.execute(select(agents)).all()):
        a = row.address
        names = acct.agent_accounts(a)
        available = -sums.get(names[acct.AgentBucket.AVAILABLE], 0)
        pending = -sums.get(names[acct.AgentBucket.PENDING], 0)
        escrowed = -sums.get(names[acct.AgentBucket.ESCROWED], 0)
        used = sums.get(names[acct.AgentBucket.CREDIT], 0)
        total_in, total_out = totals[a]
        limit = limits.get(a, 0)
        if (row.total_in_micros, row.total_out_micros) != (total_in, total_out):
            report.add(Violation("agent_totals_mismatch", f"cached totals of {a} differ from the journal", agent=a,
                                 expected=f"in {format_micros(total_in)} out {format_micros(total_out)}",
                                 actual=f"in {format_micros(row.total_in_micros)} out {format_micros(row.total_out_micros)}"))
        if row.credit_limit_micros != limit:
            report.add(Violation("credit_limit_mismatch", f"cached credit limit of {a} differs from its last event",
                                 agent=a, expected=format_micros(limit), actual=format_micros(row.credit_limit_micros)))
        if available + pending + escrowed != total_in - total_out + used:
            report.add(Violation("identity_violation", f"{a}: A + P + E != totalIn - totalOut + CU", agent=a,
                                 expected=format_micros(total_in - total_out + used),
                                 actual=format_micros(available + pending + escrowed)))
        for name, value in (("available", available), ("pending", pending), ("escrowed", escrowed), ("credit used", used)):
            if value < 0:
                report.add(Violation("negative_balance", f"{a} has negative {name}", agent=a, actual=format_micros(value)))
        if used > limit:
            report.add(Violation("credit_over_limit", f"{a} uses more credit than its limit", agent=a,
                                 expected=f"<= {format_micros(limit)}", actual=format_micros(used)))


def _check_holds(ledger: Ledger, report: VerifyReport, sums: dict, reference_postings: dict, now: datetime) -> None:
    rows = {(r.kind, r.agent, r.reference): r for r in ledger.service.read(lambda c: c.execute(select(holds)).all())}
    for key in sorted(set(rows) | set(sums)):
        kind, agent, reference = key
        derived = sums.get(key, [0, 0, 0, 0, 0])
        row = rows.get(key)
        cached = [row.amount_micros, row.remaining_micros, row.credit_micros, row.confirmed_micros,
                  row.released_micros] if row else None
        if cached != derived:
            report.add(Violation("hold_cache_mismatch", f"{kind} {reference!r} of {agent} differs from the journal",
                                 agent=agent, reference=reference, expected=str(derived), actual=str(cached)))
        amount, remaining, credit, confirmed, released = derived
        if amount != confirmed + released + remaining:
            report.add(Violation("hold_arithmetic", f"{kind} {reference!r}: held != confirmed + released + remaining",
                                 agent=agent, reference=reference, expected=format_micros(amount),
                                 actual=format_micros(confirmed + released + remaining)))
        if reference_postings.get(key, 0) != remaining:
            report.add(Violation("hold_postings_mismatch", f"{kind} {reference!r}: its postings hold "
                                 f"{format_micros(reference_postings.get(key, 0))}, its state {format_micros(remaining)}",
                                 agent=agent, reference=reference))
        if row is not None and row.expires_at_us is not None and remaining > 0 and \
                row.expires_at_us <= store.to_us(now):
            report.expired_holds.append({"agent": agent, "reference": reference, "remaining": format_micros(remaining),
                                         "expiresAt": store.from_us(row.expires_at_us).isoformat()})
