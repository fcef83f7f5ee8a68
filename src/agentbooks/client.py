"""``agentbooks.client``: a typed client for the HTTP API (httpx), sync (``Client``) and async (``AsyncClient``).

Its methods are the in-process ``Ledger``'s, with the same results (``Transaction``, ``DryRun``,
``Balance``, ``TransactionPage``; a transaction read off the wire has no ``flows`` or
``hold_effects``, which the API does not send) and the same errors: a refusal raises the
``LedgerError`` subclass of its code (``LedgerError.from_dict``).

Retries are safe because every write carries an idempotency key, made once per call before the
first send (or given by the caller) and sent again on every retry: a lost response, a 503
``commit_outcome_unknown`` or a 429 is retried with jittered exponential back-off (a 429's
``Retry-After`` honoured), and the server answers a retry of a recorded write with the recorded
result. The routes and body fields are ``ROUTES``; a test checks them against the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Awaitable, Callable, Mapping, TypeVar
from urllib.parse import quote

import httpx

from .domain.errors import LedgerError
from .domain.model import (
    Balance,
    DryRun,
    Kind,
    Posting,
    Transaction,
    TransactionDraft,
    TransactionPage,
)

T = TypeVar("T")

# name -> (HTTP method, path template); path parameters are named as in the OpenAPI document.
ROUTES: Mapping[str, tuple[str, str]] = {
    "deposit": ("POST", "/v1/admin/deposits"),
    "withdraw": ("POST", "/v1/admin/withdrawals"),
    "spend": ("POST", "/v1/agents/{address}/spend"),
    "hold": ("POST", "/v1/agents/{address}/holds"),
    "confirm_hold": ("POST", "/v1/admin/holds/{address}/{reference}/confirm"),
    "release_hold": ("POST", "/v1/admin/holds/{address}/{reference}/release"),
    "settle_hold": ("POST", "/v1/admin/holds/{address}/{reference}/settle"),
    "escrow_lock": ("POST", "/v1/agents/{address}/escrows"),
    "release_escrow": ("POST", "/v1/admin/escrows/{address}/{reference}/release"),
    "refund_escrow": ("POST", "/v1/admin/escrows/{address}/{reference}/refund"),
    "settle_escrow": ("POST", "/v1/admin/escrows/{address}/{reference}/settle"),
    "refund": ("POST", "/v1/admin/refunds"),
    "set_credit_limit": ("PUT", "/v1/admin/agents/{address}/credit-limit"),
    "use_credit": ("POST", "/v1/agents/{address}/credit/use"),
    "repay_credit": ("POST", "/v1/agents/{address}/credit/repay"),
    "transfer": ("POST", "/v1/agents/{address}/transfers"),
    "reverse": ("POST", "/v1/admin/transactions/{transaction_id}/reverse"),
    "batch": ("POST", "/v1/admin/batch"),
    "get_balance": ("GET", "/v1/agents/{address}/balance"),
    "get_transaction": ("GET", "/v1/transactions/{transaction_id}"),
    "find_transactions": ("GET", "/v1/transactions"),
}
RETRIED_STATUSES = {429, 503}  # 503 only with commit_outcome_unknown or no body of ours: see ``_retry_after``


@dataclass(frozen=True)
class Call:
    """One API call: a route of ``ROUTES``, its path parameters, query and JSON body, and how to read the answer."""

    name: str
    path: Mapping[str, str]
    body: Mapping[str, Any] | None
    query: Mapping[str, Any]
    parse: Callable[[Any], Any]
    idempotency_key: str | None = None

    @property
    def method(self) -> str:
        return ROUTES[self.name][0]

    @property
    def url(self) -> str:
        return ROUTES[self.name][1].format(**{k: quote(v, safe="") for k, v in self.path.items()})


# --- wire -> domain ---------------------------------------------------------------------------


def _micros(text: str | None) -> int | None:
    return None if text is None else int(Decimal(text).scaleb(6))  # the wire's 6-decimal strings, exactly


def _postings(items: list[dict[str, Any]]) -> tuple[Posting, ...]:
    return tuple(Posting(p["account"], _micros(p["amount"]), p["currency"], p.get("reference")) for p in items)


def transaction_from_wire(t: dict[str, Any], replayed: bool = False) -> Transaction:
    return Transaction(
        seq=t["seq"], id=t["id"], occurred_at=datetime.fromisoformat(t["occurredAt"].replace("Z", "+00:00")),
        kind=Kind(t["kind"]), agent=t["agent"], counterparty=t["counterparty"], amount_micros=_micros(t["amount"]),
        reference=t["reference"], tx_hash=t["txHash"], memo=t["memo"], postings=_postings(t["postings"]),
        flows=(), hold_effects=(), credit_limit_micros=_micros(t["creditLimit"]),
        reverses_seq=t["reversesSeq"], metadata=t["metadata"], prev_hash=t["prevHash"], hash=t["hash"],
        replayed=replayed,
    )


def balance_from_wire(b: dict[str, Any]) -> Balance:
    updated = b.get("updatedAt")
    return Balance(
        agent_addr=b["agentAddr"], available=Decimal(b["available"]), pending=Decimal(b["pending"]),
        escrowed=Decimal(b["escrowed"]), credit_limit=Decimal(b["creditLimit"]), credit_used=Decimal(b["creditUsed"]),
        total_in=Decimal(b["totalIn"]), total_out=Decimal(b["totalOut"]),
        updated_at=datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None, as_of_seq=b["asOfSeq"],
    )


def dry_run_from_wire(body: dict[str, Any]) -> DryRun:
    drafts = tuple(TransactionDraft(
        kind=Kind(d["kind"]), agent=d["agent"], amount_micros=_micros(d["amount"]), postings=_postings(d["postings"]),
        counterparty=d["counterparty"], reference=d["reference"], tx_hash=d["txHash"], memo=d["memo"],
        credit_limit_micros=_micros(d["creditLimit"]), reverses_seq=d["reversesSeq"], metadata=d["metadata"],
    ) for d in body["transactions"])
    balances = {b["agentAddr"]: balance_from_wire(b) for b in body["balances"]}
    return DryRun(drafts, balances, body["asOfSeq"], replayed=body["replayed"])


def _answer(response: httpx.Response, parse: Callable[..., Any]) -> Any:
    try:
        body = response.json()
    except ValueError:  # not the API's answer (a proxy's error page)
        body = {"error": "http_error", "message": f"HTTP {response.status_code}: {response.text[:200]}"}
    if response.is_error:
        if not (isinstance(body, dict) and "error" in body and "message" in body):
            body = {"error": "http_error", "message": f"HTTP {response.status_code}"}
        raise LedgerError.from_dict(body)
    if isinstance(body, dict) and body.get("dryRun"):
        return dry_run_from_wire(body)
    return parse(body) if response.headers.get("Idempotent-Replay") != "true" else parse(body, True)


def _one(body: dict[str, Any], replayed: bool = False) -> Transaction:
    return transaction_from_wire(body["transaction"], replayed)


def _many(body: dict[str, Any], replayed: bool = False) -> list[Transaction]:
    return [transaction_from_wire(t, replayed) for t in body["transactions"]]


def _page(body: dict[str, Any], replayed: bool = False) -> TransactionPage:
    return TransactionPage(_many(body), body["nextCursor"])


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before retrying this answer, or None when it is final."""
    if response.status_code not in RETRIED_STATUSES:
        return None
    if response.status_code == 503:
        try:
            code = response.json().get("error")
        except ValueError:
            code = None
        if code not in (None, "commit_outcome_unknown"):
            return None
    # Retry-After is delay-seconds, a whole number (RFC 9110); an HTTP-date or anything else gives no hint.
    header = response.headers.get("Retry-After", "").strip()
    return int(header) if header.isdigit() else 0


def _next_wait(call: Call, attempt: int, client: "_Operations", response: httpx.Response | None) -> float | None:
    """Seconds to wait before sending ``call`` again, or None to answer now.

    ``response`` None: the send failed (no answer: the server may have recorded it); retried when
    the call is a read or carries an idempotency key, as every write of these clients does.
    """
    if attempt == client.max_attempts - 1:
        return None
    backoff = random.uniform(0, client.backoff * 2**attempt)
    if response is None:
        return backoff if call.idempotency_key is not None or call.method == "GET" else None
    wait = _retry_after(response)
    return None if wait is None else max(wait, backoff)


# --- the operations, once for both clients ------------------------------------------------------


class _Operations:
    """Every call as a ``Call``; ``_run`` (sync or async) sends it."""

    max_attempts: int
    backoff: float

    def _run(self, call: Call) -> Any:
        raise NotImplementedError

    def _write(self, name: str, path: Mapping[str, str], body: dict[str, Any], parse: Callable[..., Any], *,
               idempotency_key: str | None, metadata: Mapping[str, str] | None, dry_run: bool) -> Any:
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self._run(Call(name, path, body, {"dryRun": "true"} if dry_run else {}, parse,
                              idempotency_key or uuid.uuid4().hex))

    def deposit(self, agent: str, amount: Any, tx_hash: str, *, chain_id: int = 0, log_index: int = 0,
                idempotency_key: str | None = None, metadata: Mapping[str, str] | None = None,
                dry_run: bool = False) -> Any:
        return self._write("deposit", {}, {"agentAddress": agent, "amount": str(amount), "txHash": tx_hash,
                                           "chainId": chain_id, "logIndex": log_index}, _one,
                           idempotency_key=idempotency_key, metadata=metadata, dry_run=dry_run)

    def withdraw(self, agent: str, amount: Any, tx_hash: str, **options: Any) -> Any:
        return self._write("withdraw", {}, {"agentAddress": agent, "amount": str(amount), "txHash": tx_hash}, _one,
                           **_options(options))

    def spend(self, agent: str, amount: Any, session_key_id: str, **options: Any) -> Any:
        return self._write("spend", {"address": agent}, {"amount": str(amount), "sessionKeyId": session_key_id},
                           _one, **_options(options))

    def hold(self, agent: str, amount: Any, reference: str, *, expires_at: datetime | str | None = None,
             **options: Any) -> Any:
        body: dict[str, Any] = {"amount": str(amount), "reference": reference}
        if expires_at is not None:
            body["expiresAt"] = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
        return self._write("hold", {"address": agent}, body, _one, **_options(options))

    def confirm_hold(self, agent: str, amount: Any, reference: str, *, tx_hash: str | None = None,
                     **options: Any) -> Any:
        return self._write("confirm_hold", {"address": agent, "reference": reference},
                           {"amount": str(amount), "txHash": tx_hash}, _one, **_options(options))

    def release_hold(self, agent: str, amount: Any, reference: str, *, reason: str | None = None,
                     **options: Any) -> Any:
        return self._write("release_hold", {"address": agent, "reference": reference},
                           {"amount": str(amount), "reason": reason}, _one, **_options(options))

    def settle_hold(self, buyer: str, seller: str, amount: Any, reference: str, *, fee: Any = "0",
                    **options: Any) -> Any:
        return self._write("settle_hold", {"address": buyer, "reference": reference},
                           {"seller": seller, "amount": str(amount), "fee": str(fee)}, _one, **_options(options))

    def escrow_lock(self, agent: str, amount: Any, reference: str, **options: Any) -> Any:
        return self._write("escrow_lock", {"address": agent}, {"amount": str(amount), "reference": reference}, _one,
                           **_options(options))

    def release_escrow(self, buyer: str, seller: str, amount: Any, reference: str, **options: Any) -> Any:
        return self._write("release_escrow", {"address": buyer, "reference": reference},
                           {"seller": seller, "amount": str(amount)}, _one, **_options(options))

    def refund_escrow(self, agent: str, amount: Any, reference: str, **options: Any) -> Any:
        return self._write("refund_escrow", {"address": agent, "reference": reference}, {"amount": str(amount)},
                           _one, **_options(options))

    def settle_escrow(self, buyer: str, seller: str, seller_amount: Any, reference: str, **options: Any) -> Any:
        return self._write("settle_escrow", {"address": buyer, "reference": reference},
                           {"seller": seller, "sellerAmount": str(seller_amount)}, _one, **_options(options))

    def refund(self, agent: str, amount: Any, reference: str, **options: Any) -> Any:
        return self._write("refund", {}, {"agentAddress": agent, "amount": str(amount), "reference": reference},
                           _one, **_options(options))

    def set_credit_limit(self, agent: str, limit: Any, **options: Any) -> Any:
        return self._write("set_credit_limit", {"address": agent}, {"limit": str(limit)}, _one, **_options(options))

    def use_credit(self, agent: str, amount: Any, **options: Any) -> Any:
        return self._write("use_credit", {"address": agent}, {"amount": str(amount)}, _one, **_options(options))

    def repay_credit(self, agent: str, amount: Any, **options: Any) -> Any:
        return self._write("repay_credit", {"address": agent}, {"amount": str(amount)}, _one, **_options(options))

    def transfer(self, from_agent: str, to_agent: str, amount: Any, reference: str, **options: Any) -> Any:
        return self._write("transfer", {"address": from_agent},
                           {"toAgent": to_agent, "amount": str(amount), "reference": reference}, _one,
                           **_options(options))

    def reverse(self, transaction_id: str, reason: str, **options: Any) -> Any:
        return self._write("reverse", {"transaction_id": transaction_id}, {"reason": reason}, _one,
                           **_options(options))

    def batch(self, operations: list[Mapping[str, Any]], **options: Any) -> Any:
        return self._write("batch", {}, {"operations": [dict(o) for o in operations]}, _many, **_options(options))

    def get_balance(self, agent: str, *, at: datetime | str | None = None) -> Any:
        query = {"at": at.isoformat() if isinstance(at, datetime) else at} if at is not None else {}
        return self._run(Call("get_balance", {"address": agent}, None, query, lambda b, *_: balance_from_wire(b["balance"])))

    def get_transaction(self, transaction_id: str) -> Any:
        return self._run(Call("get_transaction", {"transaction_id": transaction_id}, None, {}, _one))

    def find_transactions(self, **filters: Any) -> Any:
        """The listing's filters in snake_case (as ``Ledger.find_transactions``); sent in the API's names."""
        names = {"tx_hash": "txHash", "from_seq": "fromSeq", "to_seq": "toSeq", "from_time": "from", "to_time": "to",
                 "min_amount": "minAmount", "max_amount": "maxAmount", "meta_key": "metaKey", "meta_value": "metaValue"}
        query = {names.get(k, k): (v.isoformat() if isinstance(v, datetime) else v)
                 for k, v in filters.items() if v is not None}
        return self._run(Call("find_transactions", {}, None, query, _page))


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = options.keys() - {"idempotency_key", "metadata", "dry_run"}
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
    return {"idempotency_key": options.get("idempotency_key"), "metadata": options.get("metadata"),
            "dry_run": bool(options.get("dry_run", False))}


def _headers(api_key: str | None, admin_secret: str | None) -> dict[str, str]:
    headers = {}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    if admin_secret is not None:
        headers["X-Admin-Secret"] = admin_secret
    return headers


def _request_args(call: Call) -> dict[str, Any]:
    headers = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else {}
    return {"method": call.method, "url": call.url, "params": dict(call.query), "json": call.body,
            "headers": headers}


class Client(_Operations):
    """The API over a blocking ``httpx.Client``; ``max_attempts`` sends per call at most."""

    def __init__(self, base_url: str, *, api_key: str | None = None, admin_secret: str | None = None,
                 transport: httpx.BaseTransport | None = None, timeout: float = 10.0, max_attempts: int = 6,
                 backoff: float = 0.05, sleep: Callable[[float], None] = time.sleep) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key, admin_secret), transport=transport,
                                  timeout=timeout)
        self.max_attempts, self.backoff, self._sleep = max_attempts, backoff, sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, call: Call) -> Any:
        for attempt in range(self.max_attempts):
            try:
                response: httpx.Response | None = self._http.request(**_request_args(call))
            except httpx.TransportError:
                response = None
                if _next_wait(call, attempt, self, None) is None:
                    raise
            wait = _next_wait(call, attempt, self, response)
            if wait is None:
                return _answer(response, call.parse)
            self._sleep(wait)
        raise AssertionError("unreachable")


class AsyncClient(_Operations):
    """The API over an ``httpx.AsyncClient``: every method returns an awaitable of the sync client's result."""

    def __init__(self, base_url: str, *, api_key: str | None = None, admin_secret: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 10.0, max_attempts: int = 6,
                 backoff: float = 0.05, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key, admin_secret),
                                       transport=transport, timeout=timeout)
        self.max_attempts, self.backoff, self._sleep = max_attempts, backoff, sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, call: Call) -> Any:  # type: ignore[override]
        for attempt in range(self.max_attempts):
            try:
                response: httpx.Response | None = await self._http.request(**_request_args(call))
            except httpx.TransportError:
                response = None
                if _next_wait(call, attempt, self, None) is None:
                    raise
            wait = _next_wait(call, attempt, self, response)
            if wait is None:
                return _answer(response, call.parse)
            await self._sleep(wait)
        raise AssertionError("unreachable")
