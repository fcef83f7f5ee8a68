"""Whole-book reports: trial balance, balance sheet, income statement, general journal.

Every report is as of a boundary and, where it covers a period, from one
(``period.py`` says what they mean); its label is the boundary asked for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain import accounts as acct
from ..domain.errors import InvalidArgument
from ..domain.model import Kind
from ..ledger import Ledger
from ..storage import journal_store as store
from .model import Chart, Column, Report
from .period import Boundary, period, split_period, zone

MAX_CHART_POINTS = 200


def _time_of(ledger: Ledger, seq: int) -> datetime | None:
    if seq == 0:
        return None
    return ledger.service.read(lambda c: store.transactions_between(c, seq, seq))[0].occurred_at


def _balances(ledger: Ledger, seq: int) -> dict[str, int]:
    """Every account's balance at ``seq``: from the caches at the head, summed from postings before it."""
    def read(conn):  # type: ignore[no-untyped-def]
        at_head = store.head(conn)[0] == seq
        return store.balances_by_prefix(conn, "", as_of_seq=None if at_head else seq)

    return {account: micros for account, micros in ledger.service.read(read).items() if micros}


def _movements(ledger: Ledger, first: Boundary, last: Boundary) -> dict[str, tuple[int, int]]:
    return ledger.service.read(lambda c: store.movements(c, first.seq, last.seq))


def trial_balance(ledger: Ledger, as_of: Any = None, start: Any = None, *, tz: str | None = None) -> Report:
    """Every account: opening balance, the period's debits and credits, closing debit or credit balance."""
    zone_info = zone(tz)
    first, last = period(ledger, start, as_of, zone_info)
    opening, closing = _balances(ledger, first.seq), _balances(ledger, last.seq)
    moved = _movements(ledger, first, last)
    rows, sums = [], dict.fromkeys(("debits", "credits", "debit", "credit"), 0)
    rolls_forward = True
    for name in sorted(set(opening) | set(closing) | set(moved)):
        before, after = opening.get(name, 0), closing.get(name, 0)
        debits, credits = moved.get(name, (0, 0))
        rolls_forward &= before + debits - credits == after
        row = {"account": name, "type": acct.parse_account(name).type.value, "opening": before,
               "debits": debits, "credits": credits, "debit": max(after, 0), "credit": max(-after, 0)}
        for key in sums:
            sums[key] += row[key]
        rows.append(row)
    return Report(
        name="trial-balance", title="Trial balance", as_of_seq=last.seq, as_of=last.at,
        columns=(Column("account", "Account"), Column("type", "Type"),
                 Column("opening", "Opening (debit +)", "money"), Column("debits", "Period debits", "money"),
                 Column("credits", "Period credits", "money"), Column("debit", "Closing debit", "money"),
                 Column("credit", "Closing credit", "money")),
        rows=tuple(rows), totals={"account": "Total", "opening": sum(opening.values()), **sums},
        checks={"debits equal credits": sums["debit"] == sums["credit"],
                "period debits equal period credits": sums["debits"] == sums["credits"],
                "opening + debits - credits = closing, every account": rolls_forward},
        period=(first.at, last.at), tz=zone_info.key,
        chart=obligations_chart(ledger, last.seq),
    )


_SECTIONS = (
    ("Assets", "Platform:Treasury (USDC on chain)", lambda n, i: n == acct.TREASURY, 1),
    ("Assets", "Platform:Credit:* (credit drawn by agents)", lambda n, i: i.bucket is acct.AgentBucket.CREDIT, 1),
    ("Liabilities", "Agent:*:Available", lambda n, i: i.bucket is acct.AgentBucket.AVAILABLE, -1),
    ("Liabilities", "Agent:*:Pending (in-flight transfers)", lambda n, i: i.bucket is acct.AgentBucket.PENDING, -1),
    ("Liabilities", "Agent:*:Escrowed (buyer protection)", lambda n, i: i.bucket is acct.AgentBucket.ESCROWED, -1),
)


def _balance_sheet_lines(balances: dict[str, int]) -> list[tuple[str, str, int]]:
    """Sections and lines (display signs), equity account by account and the earnings not yet closed."""
    infos = {name: acct.parse_account(name) for name in balances}
    lines: list[tuple[str, str, int]] = []
    totals = {"Assets": 0, "Liabilities": 0, "Equity": 0}
    for section, label, belongs, sign in _SECTIONS:
        amount = sign * sum(m for n, m in balances.items() if belongs(n, infos[n]))
        lines.append((section, label, amount))
        totals[section] += amount
        if label.startswith("Platform:Credit"):
            lines.append(("Assets", "Total assets", totals["Assets"]))
    lines.append(("Liabilities", "Total obligations to agents", totals["Liabilities"]))
    for name in sorted(set(acct.PLATFORM_ACCOUNTS) | set(balances)):
        info = infos.get(name) or acct.parse_account(name)
        if info.type is acct.AccountType.EQUITY:
            lines.append(("Equity", name, -balances.get(name, 0)))
            totals["Equity"] += -balances.get(name, 0)
    earnings = -sum(m for n, m in balances.items() if infos[n].type.is_earnings)
    lines.append(("Equity", "Current earnings (income - expenses not yet closed)", earnings))
    totals["Equity"] += earnings
    lines.append(("Equity", "Total equity", totals["Equity"]))
    lines.append(("Total", "Total liabilities and equity", totals["Liabilities"] + totals["Equity"]))
    return lines


def balance_sheet(ledger: Ledger, as_of: Any = None, start: Any = None, *, tz: str | None = None) -> Report:
    """Assets against obligations to agents and equity (current earnings included), with a comparative
    column at the start of the period when one is given."""
    zone_info = zone(tz)
    first, last = period(ledger, start, as_of, zone_info)
    now_lines = _balance_sheet_lines(_balances(ledger, last.seq))
    then_lines = _balance_sheet_lines(_balances(ledger, first.seq)) if start is not None else None
    then_by_line = {(s, line): m for s, line, m in then_lines} if then_lines else {}
    rows = []
    for section, line, amount in now_lines:
        row = {"section": section, "line": line, "amount": amount}
        if then_lines is not None:
            row["comparative"] = then_by_line.get((section, line), 0)
        rows.append(row)
    value = {line: m for _, line, m in now_lines}
    difference = value["Total assets"] - value["Total liabilities and equity"]
    columns = [Column("section", "Section"), Column("line", "Line"), Column("amount", "Amount", "money")]
    totals: dict[str, Any] = {"section": "Check", "line": "Assets - (liabilities + equity)", "amount": difference}
    checks = {"assets = liabilities + equity": difference == 0}
    if then_lines is not None:
        columns.append(Column("comparative", "At period start", "money"))
        then = {line: m for _, line, m in then_lines}
        totals["comparative"] = then["Total assets"] - then["Total liabilities and equity"]
        checks["assets = liabilities + equity at the period start"] = totals["comparative"] == 0
    return Report(
        name="balance-sheet", title="Balance sheet", as_of_seq=last.seq, as_of=last.at,
        columns=tuple(columns), rows=tuple(rows), totals=totals, checks=checks,
        period=(first.at, last.at) if start is not None else None, tz=zone_info.key,
        chart=obligations_chart(ledger, last.seq),
    )


CLOSING_KINDS = (Kind.CLOSE_PERIOD.value,)


def _earnings(ledger: Ledger, first: Boundary, last: Boundary) -> dict[str, int]:
    """Income (positive: earned) and expenses (positive: spent) in the period, closing entries left out."""
    moved = ledger.service.read(lambda c: store.movements(c, first.seq, last.seq, exclude_kinds=CLOSING_KINDS))
    out = {}
    for name, (debits, credits) in moved.items():
        kind = acct.parse_account(name).type
        if kind is acct.AccountType.INCOME:
            out[name] = credits - debits
        elif kind is acct.AccountType.EXPENSE:
            out[name] = debits - credits
    return out


def income_statement(ledger: Ledger, start: Any = None, end: Any = None, *, tz: str | None = None,
                     interval: str | None = None) -> Report:
    """Income less expenses in the period, optionally one column per month or quarter."""
    zone_info = zone(tz)
    first, last = period(ledger, start, end, zone_info)
    if interval is not None and interval not in ("month", "quarter"):
        raise InvalidArgument("interval is month or quarter", field="interval")
    columns_of: list[tuple[str, str, Boundary, Boundary]] = []
    if interval:
        begin = first.at or _time_of(ledger, 1)
        if begin is not None and last.at is not None:
            for label, lo, hi in split_period(begin, last.at, interval, zone_info):
                a, b = period(ledger, lo if lo > begin else start, hi if hi < last.at else end, zone_info)
                columns_of.append((f"p{len(columns_of)}", label, a, b))
    columns_of.append(("amount", "Total", first, last))
    figures = {key: _earnings(ledger, a, b) for key, _, a, b in columns_of}
    names = sorted({n for f in figures.values() for n in f}, key=lambda n: (acct.parse_account(n).type.value != "income", n))
    rows = []
    for section, kind in (("Income", acct.AccountType.INCOME), ("Expenses", acct.AccountType.EXPENSE)):
        members = [n for n in names if acct.parse_account(n).type is kind]
        for name in members:
            rows.append({"section": section, "account": name, **{k: figures[k].get(name, 0) for k, *_ in columns_of}})
        rows.append({"section": section, "account": f"Total {section.lower()}",
                     **{k: sum(figures[k].get(n, 0) for n in members) for k, *_ in columns_of}})
    income_rows = {r["account"]: r for r in rows}
    net = {k: income_rows["Total income"][k] - income_rows["Total expenses"][k] for k, *_ in columns_of}
    checks = {}
    if len(columns_of) > 1:
        checks["the columns add up to the period's total"] = sum(
            v for k, v in net.items() if k != "amount") == net["amount"]
    return Report(
        name="income-statement", title="Income statement", as_of_seq=last.seq, as_of=last.at,
        columns=(Column("section", "Section"), Column("account", "Account"),
                 *(Column(k, label, "money") for k, label, *_ in columns_of)),
        rows=tuple(rows), totals={"section": "Net income", **net}, checks=checks,
        period=(first.at, last.at), tz=zone_info.key,
        notes=(f"journal sequences {first.seq + 1} to {last.seq}; period-closing entries are left out",),
    )


def general_journal(ledger: Ledger, start: Any = None, end: Any = None, *, max_rows: int = 100_000,
                    tz: str | None = None) -> Report:
    """Every posting of every transaction in the period, in journal order."""
    zone_info = zone(tz)
    first, last = period(ledger, start, end, zone_info)
    rows: list[dict[str, Any]] = []
    cut_at: int | None = None
    for tx in ledger.transactions(after_seq=first.seq, upto_seq=last.seq):
        if len(rows) >= max_rows:
            cut_at = tx.seq
            break
        for p in tx.postings or ():
            rows.append({"time": tx.occurred_at, "seq": tx.seq, "transaction": tx.id, "kind": tx.kind.value,
                         "account": p.account, "debit": max(p.amount_micros, 0), "credit": max(-p.amount_micros, 0),
                         "reference": p.reference or tx.reference or ""})
        if not tx.postings:  # credit-limit events: shown, moving nothing
            rows.append({"time": tx.occurred_at, "seq": tx.seq, "transaction": tx.id, "kind": tx.kind.value,
                         "account": acct.credit(tx.agent or ""), "debit": 0, "credit": 0,
                         "reference": f"limit {tx.credit_limit_micros}"})
    debit = sum(r["debit"] for r in rows)
    credit = sum(r["credit"] for r in rows)
    return Report(
        name="journal", title="General journal", as_of_seq=last.seq, as_of=last.at,
        columns=(Column("time", "Time", "time"), Column("seq", "Seq", "int"), Column("transaction", "Transaction"),
                 Column("kind", "Kind"), Column("account", "Account"), Column("debit", "Debit", "money"),
                 Column("credit", "Credit", "money"), Column("reference", "Reference")),
        rows=tuple(rows), totals={"time": "Total", "debit": debit, "credit": credit},
        checks={"debits equal credits": debit == credit},
        period=(first.at, last.at), tz=zone_info.key,
        notes=(f"cut at {max_rows} rows: continue with --from {cut_at - 1}",) if cut_at else (),
    )


def obligations_chart(ledger: Ledger, upto_seq: int) -> Chart:
    """Treasury against what is owed to agents over time (sampled to a few hundred points, in SQL)."""
    points = ledger.service.read(lambda c: store.treasury_and_obligations(c, upto_seq, MAX_CHART_POINTS))
    return Chart("Treasury vs. obligations to agents (USDC)", {
        "Platform:Treasury": [(t, treasury) for t, treasury, _ in points],
        "Owed to agents": [(t, owed) for t, _, owed in points],
    })

