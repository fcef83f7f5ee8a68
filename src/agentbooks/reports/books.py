"""Whole-book reports: trial balance, balance sheet, income statement, general journal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain import accounts as acct
from ..ledger import Ledger
from ..storage import journal_store as store
from .model import Chart, Column, Report

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


def trial_balance(ledger: Ledger, as_of: Any = None) -> Report:
    """Every account with its debit or credit balance; the two columns are equal."""
    seq = ledger.resolve_as_of(as_of)
    rows, debit_total, credit_total = [], 0, 0
    for name, micros in _balances(ledger, seq).items():
        if micros == 0:
            continue
        info = acct.parse_account(name)
        debit, credit = (micros, 0) if micros > 0 else (0, -micros)
        debit_total += debit
        credit_total += credit
        rows.append({"account": name, "type": info.type.value, "debit": debit, "credit": credit})
    return Report(
        name="trial-balance", title="Trial balance", as_of_seq=seq, as_of=_time_of(ledger, seq),
        columns=(Column("account", "Account"), Column("type", "Type"), Column("debit", "Debit", "money"),
                 Column("credit", "Credit", "money")),
        rows=tuple(rows), totals={"account": "Total", "debit": debit_total, "credit": credit_total},
        checks={"debits equal credits": debit_total == credit_total},
        chart=obligations_chart(ledger, seq),
    )


def _group(balances: dict[str, int]) -> dict[str, int]:
    groups = {"treasury": 0, "credit receivables": 0, "agents available": 0, "agents pending": 0,
              "agents escrowed": 0, "fees": 0, "equity": 0}
    for name, micros in balances.items():
        info = acct.parse_account(name)
        if name == acct.TREASURY:
            groups["treasury"] += micros
        elif info.bucket is acct.AgentBucket.CREDIT:
            groups["credit receivables"] += micros
        elif info.bucket is not None:
            groups[f"agents {info.bucket.value.lower()}"] -= micros
        elif info.type is acct.AccountType.INCOME:
            groups["fees"] -= micros
        else:
            groups["equity"] -= micros
    return groups


def balance_sheet(ledger: Ledger, as_of: Any = None) -> Report:
    """What the platform holds (treasury, credit receivables) against what it owes agents, plus equity and fees."""
    seq = ledger.resolve_as_of(as_of)
    g = _group(_balances(ledger, seq))
    assets = g["treasury"] + g["credit receivables"]
    liabilities = g["agents available"] + g["agents pending"] + g["agents escrowed"]
    lines = [
        ("Assets", "Platform:Treasury (USDC on chain)", g["treasury"]),
        ("Assets", "Platform:Credit:* (credit drawn by agents)", g["credit receivables"]),
        ("Assets", "Total assets", assets),
        ("Liabilities", "Agent:*:Available", g["agents available"]),
        ("Liabilities", "Agent:*:Pending (in-flight transfers)", g["agents pending"]),
        ("Liabilities", "Agent:*:Escrowed (buyer protection)", g["agents escrowed"]),
        ("Liabilities", "Total obligations to agents", liabilities),
        ("Equity", "Equity:*", g["equity"]),
        ("Income", "Income:Fees (retained)", g["fees"]),
    ]
    return Report(
        name="balance-sheet", title="Balance sheet", as_of_seq=seq, as_of=_time_of(ledger, seq),
        columns=(Column("section", "Section"), Column("line", "Line"), Column("amount", "Amount", "money")),
        rows=tuple({"section": s, "line": line, "amount": m} for s, line, m in lines),
        totals={"section": "Check", "line": "Assets − (liabilities + equity + income)",
                "amount": assets - liabilities - g["equity"] - g["fees"]},
        checks={"assets = liabilities + equity + income": assets == liabilities + g["equity"] + g["fees"]},
        chart=obligations_chart(ledger, seq),
    )


def income_statement(ledger: Ledger, start: Any = None, end: Any = None) -> Report:
    """Fees earned in the period (the platform's only income account today)."""
    first = ledger.resolve_as_of(start) if start is not None else 0
    last = ledger.resolve_as_of(end)
    rows = []
    opening, closing = _balances(ledger, first), _balances(ledger, last)
    names = sorted(n for n in set(opening) | set(closing) if acct.parse_account(n).type is acct.AccountType.INCOME)
    total = 0
    for name in names:
        earned = -(closing.get(name, 0) - opening.get(name, 0))
        total += earned
        rows.append({"account": name, "amount": earned})
    return Report(
        name="income-statement", title="Income statement", as_of_seq=last, as_of=_time_of(ledger, last),
        columns=(Column("account", "Account"), Column("amount", "Earned", "money")),
        rows=tuple(rows), totals={"account": "Net income", "amount": total},
        period=(_time_of(ledger, first), _time_of(ledger, last)),
        notes=(f"journal sequences {first + 1} to {last}",),
    )


def general_journal(ledger: Ledger, start: Any = None, end: Any = None, *, max_rows: int = 100_000) -> Report:
    """Every posting of every transaction in the period, in journal order."""
    first = ledger.resolve_as_of(start) if start is not None else 0
    last = ledger.resolve_as_of(end)
    rows: list[dict[str, Any]] = []
    cut_at: int | None = None
    for tx in ledger.transactions(after_seq=first, upto_seq=last):
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
        name="journal", title="General journal", as_of_seq=last, as_of=_time_of(ledger, last),
        columns=(Column("time", "Time", "time"), Column("seq", "Seq", "int"), Column("transaction", "Transaction"),
                 Column("kind", "Kind"), Column("account", "Account"), Column("debit", "Debit", "money"),
                 Column("credit", "Credit", "money"), Column("reference", "Reference")),
        rows=tuple(rows), totals={"time": "Total", "debit": debit, "credit": credit},
        checks={"debits equal credits": debit == credit},
        period=(_time_of(ledger, first), _time_of(ledger, last)),
        notes=(f"cut at {max_rows} rows: continue with --from {cut_at - 1}",) if cut_at else (),
    )


def obligations_chart(ledger: Ledger, upto_seq: int) -> Chart:
    """Treasury against what is owed to agents over time (sampled to a few hundred points, in SQL)."""
    points = ledger.service.read(lambda c: store.treasury_and_obligations(c, upto_seq, MAX_CHART_POINTS))
    return Chart("Treasury vs. obligations to agents (USDC)", {
        "Platform:Treasury": [(t, treasury) for t, treasury, _ in points],
        "Owed to agents": [(t, owed) for t, _, owed in points],
    })
