"""Reads of the whole books, for accountants, reconciliation and the admin."""

from __future__ import annotations

import re
from itertools import islice

from fastapi import APIRouter, Depends, Query, Response

from ..domain.money import format_micros
from ..ledger import Ledger
from ..render import render
from ..reports import build_report
from . import schemas as s
from .deps import MAX_SEQ, get_ledger, require_reader

router = APIRouter(prefix="/v1", tags=["books"], dependencies=[Depends(require_reader)])
ERRORS = {code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 422)}
AT = Query(None, description="RFC 3339 time or a journal sequence number")


_SEQUENCE = re.compile(r"[0-9]{1,18}")


def _as_of(at: str | None) -> str | int | None:
    """A journal sequence if ``at`` is plain ASCII digits, else an RFC 3339 time."""
    return int(at) if at is not None and _SEQUENCE.fullmatch(at) else at


@router.get("/accounts", response_model=s.AccountsOut, responses=ERRORS)
def rollup(ledger: Ledger = Depends(get_ledger), prefix: str = Query("", max_length=120), at: str | None = AT):
    """Every account under a prefix (``Agent:<addr>``, ``Platform``, … or all), beancount-signed."""
    balances = ledger.rollup(prefix, as_of=_as_of(at))
    total = sum(int(v.scaleb(6)) for v in balances.values())
    return s.AccountsOut(prefix=prefix, total=format_micros(total), accounts=[
        s.AccountBalanceOut(account=name, balance=s.decimal_text(v)) for name, v in balances.items()])


@router.get("/accounts/{name}", response_model=s.AccountBalanceOut, responses=ERRORS)
def account_balance(name: str, ledger: Ledger = Depends(get_ledger), at: str | None = AT):
    return s.AccountBalanceOut(account=name, balance=s.decimal_text(ledger.get_account_balance(name, as_of=_as_of(at))))


@router.get("/transactions", response_model=s.TransactionsOut, responses=ERRORS)
def find_transactions(
    ledger: Ledger = Depends(get_ledger),
    agent: str | None = Query(None, description="transactions involving this agent"),
    kind: str | None = Query(None, max_length=32), reference: str | None = Query(None, max_length=128),
    tx_hash: str | None = Query(None, alias="txHash", max_length=128),
    from_seq: int | None = Query(None, alias="fromSeq", ge=0, le=MAX_SEQ),
    to_seq: int | None = Query(None, alias="toSeq", ge=0, le=MAX_SEQ),
    start: str | None = Query(None, alias="from", description="RFC 3339, inclusive"),
    end: str | None = Query(None, alias="to", description="RFC 3339, inclusive"),
    min_amount: str | None = Query(None, alias="minAmount", max_length=40),
    max_amount: str | None = Query(None, alias="maxAmount", max_length=40),
    meta_key: str | None = Query(None, alias="metaKey", max_length=64),
    meta_value: str | None = Query(None, alias="metaValue", max_length=256),
    limit: int = Query(100, ge=1, le=1000),
    cursor: int | None = Query(None, ge=0, le=MAX_SEQ, description="nextCursor of the previous page"),
):
    """Transactions matching every filter given, in sequence order; the cursor is a journal sequence,
    so pages neither skip nor repeat while writes go on. Each filter is indexed: a page costs what it returns."""
    page = ledger.find_transactions(
        agent=agent, kind=kind, reference=reference, tx_hash=tx_hash, from_seq=from_seq, to_seq=to_seq,
        from_time=start, to_time=end, min_amount=min_amount, max_amount=max_amount, meta_key=meta_key,
        meta_value=meta_value, limit=limit, cursor=cursor)
    return s.TransactionsOut(transactions=[s.transaction_out(t) for t in page.transactions],
                             next_cursor=page.next_cursor, has_more=page.next_cursor is not None)


@router.get("/transactions/{transaction_id}", response_model=s.TransactionEnvelope, responses=ERRORS)
def transaction(transaction_id: str, ledger: Ledger = Depends(get_ledger)):
    return s.TransactionEnvelope(transaction=s.transaction_out(ledger.get_transaction(transaction_id)))


@router.get("/journal", response_model=s.JournalOut, responses=ERRORS)
def journal(ledger: Ledger = Depends(get_ledger), after_seq: int = Query(0, ge=0, le=MAX_SEQ, alias="afterSeq"),
            limit: int = Query(100, ge=1, le=1000)):
    """The journal in sequence order after ``afterSeq``: what exporters and reconciliation stream."""
    page = list(islice(ledger.transactions(after_seq=after_seq, page_size=limit + 1), limit + 1))
    has_more = len(page) > limit
    page = page[:limit]
    return s.JournalOut(transactions=[s.transaction_out(t) for t in page],
                        next_after_seq=page[-1].seq if page else after_seq, has_more=has_more)


@router.get("/holds", response_model=s.HoldsOut, responses=ERRORS)
def open_holds(ledger: Ledger = Depends(get_ledger), limit: int = Query(1000, ge=1, le=100_000)):
    """Open holds and escrows, oldest first, at most ``limit``."""
    return s.HoldsOut(holds=[s.hold_out(h) for h in ledger.open_holds(limit=limit)])


MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "html": "text/html; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@router.get("/reports/{name}", responses={**ERRORS, 200: {"content": {t: {} for t in MEDIA_TYPES.values()},
                                                         "description": "the rendered report"}})
def report(name: str, ledger: Ledger = Depends(get_ledger),
           format: str = Query("json", pattern="^(csv|json|html|xlsx)$"),
           at: str | None = AT, start: str | None = Query(None, alias="from", description="period start"),
           agent: str | None = Query(None, description="the agent, for agent-statement"),
           tz: str | None = Query(None, max_length=64, description="reporting time zone, e.g. Europe/Berlin"),
           interval: str | None = Query(None, pattern="^(month|quarter)$",
                                        description="income-statement columns")) -> Response:
    """The same reports as ``agentbooks report`` (trial-balance, balance-sheet, income-statement,
    agent-statement, journal, credit-exposure, open-holds), rendered as JSON, CSV, HTML or XLSX."""
    data = build_report(ledger, name, as_of=_as_of(at), start=_as_of(start), agent=agent, tz=tz, interval=interval)
    return Response(render(data, format), media_type=MEDIA_TYPES[format])
