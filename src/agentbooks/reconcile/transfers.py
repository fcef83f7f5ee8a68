"""Reading on-chain transfers as a node or an explorer gives them, all or nothing.

The format is recognised from the content:

- an ``eth_getLogs`` JSON-RPC response (``{"jsonrpc": "2.0", "result": [...]}``),
  a JSON array of log objects, or JSON lines of log objects (as a
  subscription delivers them, ``removed`` included): ``Transfer`` logs are
  decoded with eth-abi, addresses normalised with eth-utils;
- an explorer's token-transfer CSV export (Etherscan's header:
  ``Transaction Hash``, ``Blockno``, ``UnixTimestamp``, ``From``, ``To``,
  ``TokenValue``, ``ContractAddress``…), which has no log index;
- the normalised CSV or JSON lines (``chain_id``, ``tx_hash``, ``log_index``,
  ``from``, ``to``, ``amount`` or ``amount_micros``, ``block_number``,
  ``timestamp``, optional ``token``, ``block_hash`` and ``removed``).

Every record is read before anything is matched; the first unreadable one is
reported by its line (or its position in a JSON array) and nothing is
half-applied. What is readable but no USDC movement (another token, another
event, a zero value) is kept, marked, for the matcher to count.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Iterator

from functools import lru_cache

from ..domain.addresses import normalize_address
from ..domain.errors import LedgerError
from ..domain.money import MICROS_PER_UNIT, check_micros, parse_amount

MAX_TRANSFERS = 5_000_000
REQUIRED_FIELDS = ("chain_id", "tx_hash", "log_index", "from", "to", "block_number", "timestamp")
EXPLORER_HEADER = ("Transaction Hash", "Blockno", "From", "To", "TokenValue")


@lru_cache(maxsize=1)
def _eth() -> tuple[Any, Any, Any, str]:
    """eth-abi's decoder, eth-utils' hex and checksum helpers and the Transfer topic, loaded on first use
    (they cost the CLI's and the server's start-up otherwise)."""
    from eth_abi import decode
    from eth_utils import event_signature_to_log_topic, to_bytes, to_checksum_address

    return decode, to_bytes, to_checksum_address, "0x" + event_signature_to_log_topic(
        "Transfer(address,address,uint256)").hex()


class TransferFileError(LedgerError):
    code = "invalid_transfer_file"

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}", line=line)
        self.line = line


@dataclass(frozen=True)
class ReadOptions:
    """How to read raw chain data: which token is USDC, on which chain, with how many decimals."""

    token: str | None = None  # the USDC contract; None: every transfer is taken as USDC
    chain_id: int = 0  # for records that do not say (logs, explorer CSV); 0: any chain
    decimals: int = 6
    block_times: dict[int, datetime] | None = None  # from --blocks (eth_getBlockByNumber results)


@dataclass(frozen=True)
class ChainTransfer:
    line: int
    chain_id: int
    tx_hash: str
    log_index: int | None  # None: the source has no log index (an explorer export)
    sender: str
    recipient: str
    amount_micros: int
    block_number: int | None
    timestamp: datetime | None
    block_hash: str | None = None
    token: str | None = None
    removed: bool = False  # a log a reorg took back: never money
    ignored: str | None = None  # "other_token", "not_transfer", "ignored_zero": readable, not USDC money

    @property
    def identity(self) -> tuple[Any, ...]:
        """What makes two records the same transfer (overlapping pages repeat it)."""
        if self.log_index is not None:
            return (self.chain_id, self.tx_hash, self.log_index, self.block_hash, self.removed)
        return (self.chain_id, self.tx_hash, self.sender, self.recipient, self.amount_micros, self.token)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        result = int(value.strip())
    elif isinstance(value, str) and value.strip().lower().startswith("0x"):
        result = int(value.strip(), 16)  # ValueError when it is not hex
    else:
        raise ValueError(f"{name} must be a non-negative integer, got {str(value)[:40]!r}")
    if not 0 <= result < 2**63:
        raise ValueError(f"{name} is out of range")
    return result


def _time(value: Any) -> datetime:
    if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    if isinstance(value, str) and value.lower().startswith("0x"):
        return datetime.fromtimestamp(_int(value, "timestamp"), tz=timezone.utc)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset")
        return parsed.astimezone(timezone.utc)
    raise ValueError("timestamp must be unix seconds or RFC 3339")


def _hash(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value.lower()


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", ""):
        return value.lower() in ("true", "1")
    raise ValueError("removed must be true or false")


def _token_micros(raw: int, decimals: int) -> int:
    """A token's raw integer amount in micro-units; exact or refused."""
    if decimals <= 6:
        return raw * 10 ** (6 - decimals)
    whole, rest = divmod(raw, 10 ** (decimals - 6))
    if rest:
        raise ValueError(f"amount {raw} has more than 6 decimal places")
    return whole


def _classify(transfer: ChainTransfer, options: ReadOptions) -> ChainTransfer:
    if transfer.ignored:
        return transfer
    if options.token and transfer.token and transfer.token != options.token:
        return replace(transfer, ignored="other_token")
    if transfer.amount_micros == 0:
        return replace(transfer, ignored="ignored_zero")
    return transfer


def parse_log(line: int, raw: dict[str, Any], options: ReadOptions) -> ChainTransfer:
    """One log object (``eth_getLogs``/subscription shape): a Transfer decoded, anything else marked."""
    abi_decode, to_bytes, to_checksum_address, transfer_topic = _eth()
    try:
        token = normalize_address(raw["address"], field="address")
        topics = raw["topics"]
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise ValueError("topics must be a list of hex strings")
        block = _int(raw["blockNumber"], "blockNumber") if raw.get("blockNumber") is not None else None
        when = raw.get("blockTimestamp") or raw.get("timeStamp")
        timestamp = _time(when) if when else (options.block_times or {}).get(block) if block is not None else None
        common = dict(line=line, chain_id=options.chain_id, tx_hash=_hash(raw["transactionHash"], "transactionHash"),
                      log_index=_int(raw["logIndex"], "logIndex"), block_number=block, timestamp=timestamp,
                      block_hash=_hash(raw["blockHash"], "blockHash") if raw.get("blockHash") else None,
                      token=token, removed=_flag(raw.get("removed", False)))
        if len(topics) != 3 or topics[0].lower() != transfer_topic:
            zero = "0x" + "0" * 40  # another event (or an ERC-721 Transfer): not a USDC movement
            return ChainTransfer(sender=zero, recipient=zero, amount_micros=0, ignored="not_transfer", **common)
        (sender,) = abi_decode(["address"], to_bytes(hexstr=topics[1]))
        (recipient,) = abi_decode(["address"], to_bytes(hexstr=topics[2]))
        (value,) = abi_decode(["uint256"], to_bytes(hexstr=raw["data"]))
        other = options.token is not None and token != options.token
        micros = 0 if other else check_micros(_token_micros(value, options.decimals), allow_zero=True)
        transfer = ChainTransfer(sender=normalize_address(to_checksum_address(sender)),
                                 recipient=normalize_address(to_checksum_address(recipient)),
                                 amount_micros=micros, ignored="other_token" if other else None, **common)
        return _classify(transfer, options)
    except KeyError as exc:
        raise TransferFileError(line, f"missing field {exc.args[0]!r}") from None
    except (ValueError, TypeError, LedgerError) as exc:
        raise TransferFileError(line, getattr(exc, "message", None) or str(exc)) from None
    except Exception as exc:  # eth-abi's decoding errors (a short data field, a bad topic)
        raise TransferFileError(line, f"not a decodable Transfer log: {exc}") from None


def parse_transfer(line: int, raw: dict[str, Any], options: ReadOptions = ReadOptions()) -> ChainTransfer:
    """One normalised transfer record (or a log object), validated; TransferFileError names the line."""
    if not isinstance(raw, dict):
        raise TransferFileError(line, "each record must be a JSON object")
    if "topics" in raw:
        return parse_log(line, raw, options)
    missing = [name for name in REQUIRED_FIELDS if name not in raw]
    if missing:
        raise TransferFileError(line, f"missing field {missing[0]!r}")
    try:
        if ("amount" in raw) == ("amount_micros" in raw):
            raise ValueError("give exactly one of amount (decimal string) or amount_micros (integer)")
        if "amount_micros" in raw:
            micros = check_micros(_int(raw["amount_micros"], "amount_micros"), allow_zero=True)
        else:
            if not isinstance(raw["amount"], str):
                raise ValueError("amount must be a decimal string")
            micros = parse_amount(raw["amount"], allow_zero=True)
        transfer = ChainTransfer(
            line=line, chain_id=_int(raw["chain_id"], "chain_id"), tx_hash=_hash(raw["tx_hash"], "tx_hash"),
            log_index=_int(raw["log_index"], "log_index"),
            sender=normalize_address(raw["from"], field="from"), recipient=normalize_address(raw["to"], field="to"),
            amount_micros=micros, block_number=_int(raw["block_number"], "block_number"),
            timestamp=_time(raw["timestamp"]),
            block_hash=_hash(raw["block_hash"], "block_hash") if raw.get("block_hash") else None,
            token=normalize_address(raw["token"], field="token") if raw.get("token") else None,
            removed=_flag(raw.get("removed", False)),
        )
        return _classify(transfer, options)
    except KeyError as exc:
        raise TransferFileError(line, f"missing field {exc.args[0]!r}") from None
    except (ValueError, LedgerError) as exc:
        raise TransferFileError(line, getattr(exc, "message", None) or str(exc)) from None


def parse_explorer_row(line: int, row: dict[str, str], options: ReadOptions) -> ChainTransfer:
    """One row of an explorer's token-transfer CSV: ``TokenValue`` is decimal with thousands separators."""
    try:
        text = row["TokenValue"].replace(",", "").strip()
        value = Decimal(text)
        if not value.is_finite() or value < 0:
            raise ValueError(f"TokenValue {text[:40]!r} is not an amount")
        token = normalize_address(row["ContractAddress"], field="ContractAddress") if row.get("ContractAddress") else None
        other = options.token is not None and token is not None and token != options.token
        micros = 0 if other else check_micros(_exact_micros(value), allow_zero=True)
        block = _int(row["Blockno"], "Blockno")
        when = row.get("UnixTimestamp")
        transfer = ChainTransfer(
            line=line, chain_id=options.chain_id, tx_hash=_hash(row["Transaction Hash"], "Transaction Hash"),
            log_index=_int(row["LogIndex"], "LogIndex") if row.get("LogIndex") else None,
            sender=normalize_address(row["From"], field="From"), recipient=normalize_address(row["To"], field="To"),
            amount_micros=micros, block_number=block,
            timestamp=_time(when) if when else (options.block_times or {}).get(block),
            token=token, ignored="other_token" if other else None,
        )
        return _classify(transfer, options)
    except KeyError as exc:
        raise TransferFileError(line, f"missing column {exc.args[0]!r}") from None
    except (ValueError, InvalidOperation, LedgerError) as exc:
        raise TransferFileError(line, getattr(exc, "message", None) or str(exc) or "bad value") from None


def _exact_micros(value: Decimal) -> int:
    micros = value * MICROS_PER_UNIT
    if micros != micros.to_integral_value():
        raise ValueError(f"amount {value} has more than 6 decimal places")
    return int(micros)


def _json_records(text: str) -> Iterator[tuple[int, Any]]:
    """A whole-file JSON document (RPC response, array, one log) or JSON lines."""
    stripped = text.lstrip()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        if stripped.startswith("["):
            raise TransferFileError(1, "not JSON: the array does not parse") from None
        document = None
    if document is not None:
        if isinstance(document, dict) and ("jsonrpc" in document or "result" in document or "error" in document):
            if "error" in document:
                raise TransferFileError(1, f"the node answered an error: {json.dumps(document['error'])[:200]}")
            document = document.get("result")
        if isinstance(document, dict):
            document = [document]
        if not isinstance(document, list):
            raise TransferFileError(1, "a JSON document of transfers must be a list of objects")
        yield from enumerate(document, start=1)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise TransferFileError(number, f"not JSON: {exc.msg}") from None


def _csv_rows(text: str, options: ReadOptions) -> Iterator[ChainTransfer]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    explorer = all(name in header for name in EXPLORER_HEADER)
    for row in reader:
        if None in row or None in row.values():
            raise TransferFileError(reader.line_num, "wrong number of columns")
        if explorer:
            yield parse_explorer_row(reader.line_num, row, options)
        else:
            yield parse_transfer(reader.line_num, {k: v for k, v in row.items() if v != ""}, options)


def parse_records(records: Iterable[Any], options: ReadOptions = ReadOptions()) -> list[ChainTransfer]:
    """Records already parsed as JSON (the API's body): log objects or normalised records."""
    return _bounded(parse_transfer(number, raw, options) for number, raw in enumerate(records, start=1))


def read_transfers_text(text: str, options: ReadOptions = ReadOptions()) -> list[ChainTransfer]:
    if text.lstrip().startswith(("{", "[")):
        return _bounded(parse_transfer(number, raw, options) for number, raw in _json_records(text))
    return _bounded(_csv_rows(text, options))


def read_transfers(path: Path, options: ReadOptions = ReadOptions()) -> list[ChainTransfer]:
    """Parse and validate the whole file; raise TransferFileError naming the first bad record."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise TransferFileError(1, "not UTF-8 text") from None
    return read_transfers_text(text, options)


def read_block_times(path: Path) -> dict[int, datetime]:
    """``--blocks``: ``eth_getBlockByNumber`` results (one response, an array, or JSON lines) → block times."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TransferFileError(1, "not UTF-8 text") from None
    times: dict[int, datetime] = {}
    for number, block in _json_records(text):
        if isinstance(block, dict) and "result" in block:
            block = block["result"]
        try:
            times[_int(block["number"], "number")] = _time(block["timestamp"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TransferFileError(number, f"not a block: {exc}") from None
    return times


def _bounded(items: Iterable[ChainTransfer]) -> list[ChainTransfer]:
    out: list[ChainTransfer] = []
    for item in items:
        out.append(item)
        if len(out) > MAX_TRANSFERS:
            raise TransferFileError(item.line, f"more than {MAX_TRANSFERS} transfers; split the file")
    return out
