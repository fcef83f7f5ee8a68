"""Edge input → validated domain operations.

The Python API, the HTTP API and batch files all describe operations with
decimal strings and addresses; this module is the single place that turns
them into micro-units and normalised addresses (or raises a typed error), so
every entry point accepts exactly the same grammar.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from .domain import operations as ops
from .domain.accounts import parse_account
from .domain.addresses import check_reference, normalize_address
from .domain.errors import InvalidArgument, InvalidTimestamp, LedgerError
from .domain.model import Kind, TransactionFilter
from .domain.model import AgentProfile
from .domain.money import parse_amount
from .domain.netting import Obligation


MAX_METADATA_ENTRIES = 16
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 256
_METADATA_KEY = re.compile(r"[A-Za-z0-9_-]{1,%d}" % MAX_METADATA_KEY_LENGTH)


def check_client_metadata(value: object) -> ops.ClientMetadata:
    """A caller's own metadata: at most 16 string pairs; keys 1-64 of ``A-Z a-z 0-9 _ -`` (so each
    exports as a beancount metadata key, ``client-<key>``), values printable, at most 256 characters."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InvalidArgument("metadata must be an object of string keys and string values", field="metadata")
    if len(value) > MAX_METADATA_ENTRIES:
        raise InvalidArgument(f"metadata holds at most {MAX_METADATA_ENTRIES} entries", field="metadata")
    for key, text in value.items():
        if not isinstance(key, str) or not _METADATA_KEY.fullmatch(key):
            raise InvalidArgument(f"a metadata key is 1-{MAX_METADATA_KEY_LENGTH} characters of A-Z, a-z, 0-9, "
                                  f"'_' and '-'; got {str(key)[:80]!r}", field="metadata")
        if not isinstance(text, str) or len(text) > MAX_METADATA_VALUE_LENGTH or not text.isprintable():
            raise InvalidArgument(f"metadata {key!r}: a value is printable text of at most "
                                  f"{MAX_METADATA_VALUE_LENGTH} characters", field="metadata")
    return tuple(sorted(value.items()))


def with_client_metadata(op: ops.Operation, metadata: object) -> ops.Operation:
    """``op`` carrying the caller's metadata (validated); unchanged without any."""
    pairs = check_client_metadata(metadata)
    return replace(op, client_metadata=pairs) if pairs else op


def transaction_filter(*, agent: Any = None, kind: Any = None, reference: Any = None, tx_hash: Any = None,
                       from_seq: Any = None, to_seq: Any = None, from_time: Any = None, to_time: Any = None,
                       min_amount: Any = None, max_amount: Any = None, meta_key: Any = None,
                       meta_value: Any = None) -> TransactionFilter:
    """The transaction listing's filters, validated as the writes validate the same fields."""
    if kind is not None and kind not in {k.value for k in Kind}:
        raise InvalidArgument(f"kind must be one of {sorted(k.value for k in Kind)}", field="kind")
    if meta_key is not None and not _METADATA_KEY.fullmatch(str(meta_key)):
        raise InvalidArgument("metaKey is a metadata key (1-64 of A-Z a-z 0-9 _ -)", field="meta_key")
    if meta_value is not None and (meta_key is None or not isinstance(meta_value, str)
                                   or len(meta_value) > MAX_METADATA_VALUE_LENGTH):
        raise InvalidArgument("metaValue needs metaKey and is at most 256 characters", field="meta_value")

    def amount(value: Any, field: str) -> int | None:
        return parse_amount(value, allow_zero=True, field=field) if value is not None else None

    def moment(value: Any, field: str) -> datetime | None:
        return parse_time(value, field=field) if value is not None else None

    return TransactionFilter(
        agent=normalize_address(agent, field="agent") if agent is not None else None,
        kind=kind, reference=check_reference(reference) if reference is not None else None,
        tx_hash=_hash(tx_hash) if tx_hash is not None else None,
        from_seq=_int(from_seq, "from_seq") if from_seq is not None else None,
        to_seq=_int(to_seq, "to_seq") if to_seq is not None else None,
        from_time=moment(from_time, "from"), to_time=moment(to_time, "to"),
        min_amount_micros=amount(min_amount, "min_amount"), max_amount_micros=amount(max_amount, "max_amount"),
        meta_key=meta_key, meta_value=meta_value,
    )


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


def tx_hash(value: object) -> str:
    """A transaction hash as the ledger keeps it (hex lower-cased)."""
    return _hash(value)


def _int(value: object, field: str, *, low: int = 0, high: int = 2**62) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{field} must be an integer in [{low}, {high}]", field=field)
    return value


def _optional_int(value: Any, field: str) -> int | None:
    return None if value is None else _int(value, field)


def _block_hash(value: Any) -> str | None:
    return None if value is None else _hash(value, "block_hash")


def deposit(agent: Any, amount: Any, tx_hash: Any, chain_id: Any = 0, log_index: Any = 0,
            block_number: Any = None, block_hash: Any = None) -> ops.Deposit:
    return ops.Deposit(normalize_address(agent), parse_amount(amount), _hash(tx_hash),
                       _int(chain_id, "chain_id"), _int(log_index, "log_index"),
                       _optional_int(block_number, "block_number"), _block_hash(block_hash))


def withdraw(agent: Any, amount: Any, tx_hash: Any, chain_id: Any = 0, log_index: Any = 0,
             destination: Any = None, block_number: Any = None, block_hash: Any = None) -> ops.Withdraw:
    return ops.Withdraw(normalize_address(agent), parse_amount(amount), _hash(tx_hash),
                        _int(chain_id, "chain_id"), _int(log_index, "log_index"), _destination(destination),
                        _optional_int(block_number, "block_number"), _block_hash(block_hash))


def _destination(value: Any) -> str | None:
    return None if value is None else normalize_address(value, field="destination")


def spend(agent: Any, amount: Any, session_key_id: Any) -> ops.Spend:
    return ops.Spend(normalize_address(agent), parse_amount(amount), check_reference(session_key_id, field="session_key_id"))


def hold(agent: Any, amount: Any, reference: Any, expires_at: Any = None, allow_credit: Any = True) -> ops.Hold:
    expiry = parse_time(expires_at, field="expires_at") if expires_at is not None else None
    if not isinstance(allow_credit, bool):
        raise InvalidArgument("allow_credit must be true or false", field="allow_credit")
    return ops.Hold(normalize_address(agent), parse_amount(amount), check_reference(reference), expiry, allow_credit)


def confirm_hold(agent: Any, amount: Any, reference: Any, tx_hash: Any = None, chain_id: Any = None,
                 log_index: Any = None, destination: Any = None, block_number: Any = None,
                 block_hash: Any = None) -> ops.ConfirmHold:
    chain_facts = (chain_id, log_index, destination, block_number, block_hash)
    if tx_hash is None and any(v is not None for v in chain_facts):
        raise InvalidArgument("chain fields of a confirmation need its tx_hash", field="tx_hash")
    return ops.ConfirmHold(normalize_address(agent), parse_amount(amount), check_reference(reference),
                           _hash(tx_hash) if tx_hash is not None else None,
                           _optional_int(chain_id, "chain_id"), _optional_int(log_index, "log_index"),
                           _destination(destination), _optional_int(block_number, "block_number"),
                           _block_hash(block_hash))


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


def obligation(item: Any) -> Obligation:
    """``{"from": …, "to": …, "amount": "1.5"}`` (or a (from, to, amount) tuple) → an Obligation."""
    if isinstance(item, Obligation):
        return item
    if isinstance(item, Mapping):
        unknown = set(item) - {"from", "to", "amount"}
        if unknown or not {"from", "to", "amount"} <= set(item):
            raise InvalidArgument('each obligation is {"from", "to", "amount"}', field="transfers")
        item = (item["from"], item["to"], item["amount"])
    if not isinstance(item, (tuple, list)) or len(item) != 3:
        raise InvalidArgument('each obligation is {"from", "to", "amount"}', field="transfers")
    return Obligation(normalize_address(item[0], field="from"), normalize_address(item[1], field="to"),
                      parse_amount(item[2]))


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
    args = {k: v for k, v in item.items() if k not in ("op", "metadata")}
    try:
        return with_client_metadata(builder(**args), item.get("metadata"))
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
