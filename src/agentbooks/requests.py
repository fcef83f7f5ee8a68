"""Edge input → validated domain operations.

The Python API, the HTTP API and batch files all describe operations with
decimal strings and addresses; this module is the single place that turns
them into micro-units and normalised addresses (or raises a typed error), so
every entry point accepts exactly the same grammar.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from .domain import operations as ops
from .domain.accounts import parse_account
from .domain.addresses import check_reference, normalize_address
from .domain.errors import InvalidArgument, InvalidTimestamp, LedgerError
from .domain.model import AgentProfile
from .domain.money import parse_amount


def parse_time(value: object, *, field: str = "at") -> datetime:
    """An aware datetime or an RFC 3339 string; naive times are refused, not guessed."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidTimestamp(f"{field} must be an RFC 3339 timestamp, got {value[:40]!r}", field=field) from None
    if not isinstance(value, datetime):
        raise InvalidTimestamp(f"{field} must be a timestamp", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTimestamp(f"{field} needs a UTC offset (for example 2026-01-01T00:00:00Z)", field=field)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 has no UTC equivalent
        raise InvalidTimestamp(f"{field} is out of range", field=field) from None


MAX_SEQ = 2**62


def check_seq(value: object, *, field: str) -> int:
    """A journal sequence number: a non-negative int that fits a BIGINT."""
    return _int(value, field, high=MAX_SEQ)


def _hash(value: object, field: str = "tx_hash") -> str:
    text = check_reference(value, field=field)
    return text.lower() if text.startswith(("0x", "0X")) else text


def _int(value: object, field: str, *, low: int = 0, high: int = 2**62) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{field} must be an integer in [{low}, {high}]", field=field)
    return value


def deposit(agent: Any, amount: Any, tx_hash: Any, chain_id: Any = 0, log_index: Any = 0) -> ops.Deposit:
    return ops.Deposit(normalize_address(agent), parse_amount(amount), _hash(tx_hash),
                       _int(chain_id, "chain_id"), _int(log_index, "log_index"))


def withdraw(agent: Any, amount: Any, tx_hash: Any) -> ops.Withdraw:
    return ops.Withdraw(normalize_address(agent), parse_amount(amount), _hash(tx_hash))


def spend(agent: Any, amount: Any, session_key_id: Any) -> ops.Spend:
    return ops.Spend(normalize_address(agent), parse_amount(amount), check_reference(session_key_id, field="session_key_id"))


def hold(agent: Any, amount: Any, reference: Any, expires_at: Any = None, allow_credit: Any = True) -> ops.Hold:
    expiry = parse_time(expires_at, field="expires_at") if expires_at is not None else None
    if not isinstance(allow_credit, bool):
        raise InvalidArgument("allow_credit must be true or false", field="allow_credit")
    return ops.Hold(normalize_address(agent), parse_amount(amount), check_reference(reference), expiry, allow_credit)


def confirm_hold(agent: Any, amount: Any, reference: Any, tx_hash: Any = None) -> ops.ConfirmHold:
    return ops.ConfirmHold(normalize_address(agent), parse_amount(amount), check_reference(reference),
                           _hash(tx_hash) if tx_hash is not None else None)


def release_hold(agent: Any, amount: Any, reference: Any, reason: Any = None) -> ops.ReleaseHold:
    return ops.ReleaseHold(normalize_address(agent), parse_amount(amount), check_reference(reference),
                           _memo(reason))


def settle_hold(buyer: Any, seller: Any, amount: Any, reference: Any, fee: Any = "0") -> ops.SettleHold:
    return ops.SettleHold(normalize_address(buyer, field="buyer"), normalize_address(seller, field="seller"),
                          parse_amount(amount), check_reference(reference),
                          parse_amount(fee, allow_zero=True, field="fee"))


def escrow_lock(agent: Any, amount: Any, reference: Any) -> ops.EscrowLock:
    return ops.EscrowLock(normalize_address(agent), parse_amount(amount), check_reference(reference))


def release_escrow(buyer: Any, seller: Any, amount: Any, reference: Any) -> ops.ReleaseEscrow:
    return ops.ReleaseEscrow(normalize_address(buyer, field="buyer"), normalize_address(seller, field="seller"),
                             parse_amount(amount), check_reference(reference))


def refund_escrow(agent: Any, amount: Any, reference: Any) -> ops.RefundEscrow:
    return ops.RefundEscrow(normalize_address(agent), parse_amount(amount), check_reference(reference))


def settle_escrow(buyer: Any, seller: Any, seller_amount: Any, reference: Any) -> ops.SettleEscrow:
    return ops.SettleEscrow(normalize_address(buyer, field="buyer"), normalize_address(seller, field="seller"),
                            parse_amount(seller_amount, allow_zero=True, field="seller_amount"),
                            check_reference(reference))


def refund(agent: Any, amount: Any, reference: Any) -> ops.Refund:
    return ops.Refund(normalize_address(agent), parse_amount(amount), check_reference(reference))


def set_credit_limit(agent: Any, limit: Any) -> ops.SetCreditLimit:
    return ops.SetCreditLimit(normalize_address(agent), parse_amount(limit, allow_zero=True, field="limit"))


def use_credit(agent: Any, amount: Any) -> ops.UseCredit:
    return ops.UseCredit(normalize_address(agent), parse_amount(amount))


def repay_credit(agent: Any, amount: Any) -> ops.RepayCredit:
    return ops.RepayCredit(normalize_address(agent), parse_amount(amount))


def transfer(from_agent: Any, to_agent: Any, amount: Any, reference: Any) -> ops.Transfer:
    return ops.Transfer(normalize_address(from_agent, field="from_agent"), normalize_address(to_agent, field="to_agent"),
                        parse_amount(amount), check_reference(reference))


def reverse(transaction_id: Any, reason: Any) -> ops.Reverse:
    if not isinstance(transaction_id, str) or not 1 <= len(transaction_id) <= 64:
        raise InvalidArgument("transaction_id must be a transaction id string", field="transaction_id")
    memo = _memo(reason)
    if not memo:
        raise InvalidArgument("a reversal needs a reason", field="reason")
    return ops.Reverse(transaction_id, memo)


def _reason(value: Any) -> str:
    memo = _memo(value)
    if not memo:
        raise InvalidArgument("this entry needs a reason", field="reason")
    return memo


def contribute_capital(amount: Any, reference: Any, memo: Any = None) -> ops.ContributeCapital:
    return ops.ContributeCapital(parse_amount(amount), check_reference(reference), _memo(memo))


def opening_balance(account: Any, amount: Any, reference: Any) -> ops.OpeningBalance:
    op = ops.OpeningBalance(_account(account), parse_amount(amount), check_reference(reference))
    op.involved_agents()  # an account that cannot be opened is refused here, before any lock
    return op


def pay_network_fee(amount: Any, tx_hash: Any, memo: Any = None) -> ops.PayNetworkFee:
    return ops.PayNetworkFee(parse_amount(amount), _hash(tx_hash), _memo(memo))


def write_off_credit(agent: Any, amount: Any, reason: Any) -> ops.WriteOffCredit:
    return ops.WriteOffCredit(normalize_address(agent), parse_amount(amount), _reason(reason))


def adjust(postings: Any, reason: Any) -> ops.Adjust:
    """``[{"account": "Income:Fees", "debit": "1.5"}, {"account": "Equity:Capital", "credit": "1.5"}]``."""
    if not isinstance(postings, (list, tuple)) or not 2 <= len(postings) <= ops.MAX_ADJUSTMENT_POSTINGS:
        raise InvalidArgument(f"an adjustment has 2 to {ops.MAX_ADJUSTMENT_POSTINGS} postings", field="postings")
    lines = []
    for item in postings:
        if not isinstance(item, Mapping) or set(item) not in ({"account", "debit"}, {"account", "credit"}):
            raise InvalidArgument('each posting is {"account": …, "debit": …} or {"account": …, "credit": …}',
                                  field="postings")
        side = "debit" if "debit" in item else "credit"
        micros = parse_amount(item[side], field=side)
        lines.append((_account(item["account"]), micros if side == "debit" else -micros))
    return ops.Adjust(tuple(lines), _reason(reason))


def _account(value: Any) -> str:
    return parse_account(value).name  # an account of the chart, addresses in lower case


def _memo(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 500 or not value.isprintable():
        # Printable only: a reason is copied verbatim into exports and logs.
        raise InvalidArgument("a reason is printable text of at most 500 characters", field="reason")
    return value


BUILDERS: Mapping[str, Callable[..., ops.Operation]] = {
    "deposit": deposit,
    "withdraw": withdraw,
    "spend": spend,
    "hold": hold,
    "confirm_hold": confirm_hold,
    "release_hold": release_hold,
    "settle_hold": settle_hold,
    "escrow_lock": escrow_lock,
    "release_escrow": release_escrow,
    "refund_escrow": refund_escrow,
    "settle_escrow": settle_escrow,
    "refund": refund,
    "set_credit_limit": set_credit_limit,
    "use_credit": use_credit,
    "repay_credit": repay_credit,
    "transfer": transfer,
    "reverse": reverse,
    "contribute_capital": contribute_capital,
    "opening_balance": opening_balance,
    "pay_network_fee": pay_network_fee,
    "write_off_credit": write_off_credit,
    "adjust": adjust,
}


def parse_operation(item: Mapping[str, Any]) -> ops.Operation:
    """``{"op": "deposit", "agent": ..., "amount": "1.5", "tx_hash": ...}`` → an Operation."""
    if isinstance(item, ops.Operation):
        return item
    if not isinstance(item, Mapping) or not isinstance(item.get("op"), str):
        raise InvalidArgument('each batch item needs an "op" naming the operation', field="op")
    builder = BUILDERS.get(item["op"])
    if builder is None:
        raise InvalidArgument(f"unknown operation {item['op'][:40]!r}; one of {sorted(BUILDERS)}", field="op")
    args = {k: v for k, v in item.items() if k != "op"}
    try:
        return builder(**args)
    except LedgerError:
        raise
    except TypeError as exc:  # missing or unexpected field names
        raise InvalidArgument(f"{item['op']}: {exc}", field="op") from None


_META_KEY = re.compile(r"[a-z][a-z0-9-]{0,31}")
MAX_PROFILE_METADATA = 20


def agent_profile(agent: Any, display_name: Any = None, metadata: Any = None) -> AgentProfile:
    """A display name (printable, at most 120 characters) and up to 20 ``key: value`` strings; keys are
    lower-case beancount metadata keys (``[a-z][a-z0-9-]*``), values printable, at most 200 characters."""
    address = normalize_address(agent)
    if display_name is not None and (not isinstance(display_name, str) or not 1 <= len(display_name) <= 120
                                     or not display_name.isprintable()):
        raise InvalidArgument("a display name is 1-120 printable characters", field="display_name")
    metadata = dict(metadata or {})
    if len(metadata) > MAX_PROFILE_METADATA:
        raise InvalidArgument(f"at most {MAX_PROFILE_METADATA} metadata entries", field="metadata")
    for key, value in metadata.items():
        if not isinstance(key, str) or not _META_KEY.fullmatch(key) or key in RESERVED_PROFILE_KEYS:
            raise InvalidArgument(f"metadata key {str(key)[:40]!r}: lower-case letters, digits and '-', "
                                  f"not one of {sorted(RESERVED_PROFILE_KEYS)}", field="metadata")
        if not isinstance(value, str) or len(value) > 200 or not value.isprintable():
            raise InvalidArgument(f"metadata {key}: a printable string of at most 200 characters", field="metadata")
    return AgentProfile(address, display_name, metadata)


RESERVED_PROFILE_KEYS = frozenset({"agent", "display-name"})  # the export writes these itself
