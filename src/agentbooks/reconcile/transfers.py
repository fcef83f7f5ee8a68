"""Reading on-chain transfer records (CSV with a header, or JSON lines), all or nothing.

Every line is validated before anything is matched; the first malformed
line is reported with its line number and nothing is half-applied. Amounts
come as ``amount_micros`` (an integer of micro-units) or ``amount`` (a
decimal string): the field name says which, the value is never guessed.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..domain.addresses import normalize_address
from ..domain.errors import LedgerError
from ..domain.money import check_micros, parse_amount

MAX_TRANSFERS = 5_000_000
REQUIRED_FIELDS = ("chain_id", "tx_hash", "log_index", "from", "to", "block_number", "timestamp")


class TransferFileError(LedgerError):
    code = "invalid_transfer_file"

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}", line=line)
        self.line = line


@dataclass(frozen=True)
class ChainTransfer:
    line: int
    chain_id: int
    tx_hash: str
    log_index: int
    sender: str
    recipient: str
    amount_micros: int
    block_number: int
    timestamp: datetime


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        result = int(value.strip())
    else:
        raise ValueError(f"{name} must be a non-negative integer, got {str(value)[:40]!r}")
    if not 0 <= result < 2**63:
        raise ValueError(f"{name} is out of range")
    return result


def _time(value: Any) -> datetime:
    if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset")
        return parsed.astimezone(timezone.utc)
    raise ValueError("timestamp must be unix seconds or RFC 3339")


def parse_transfer(line: int, raw: dict[str, Any]) -> ChainTransfer:
    """One transfer record, validated; TransferFileError names the line."""
    missing = [name for name in REQUIRED_FIELDS if name not in raw]
    if missing:
        raise TransferFileError(line, f"missing field {missing[0]!r}")
    try:
        if ("amount" in raw) == ("amount_micros" in raw):
            raise ValueError("give exactly one of amount (decimal string) or amount_micros (integer)")
        if "amount_micros" in raw:
            micros = check_micros(_int(raw["amount_micros"], "amount_micros"))
        else:
            if not isinstance(raw["amount"], str):
                raise ValueError("amount must be a decimal string")
            micros = parse_amount(raw["amount"])
        tx_hash = raw["tx_hash"]
        if not isinstance(tx_hash, str) or not tx_hash:
            raise ValueError("tx_hash must be a non-empty string")
        return ChainTransfer(
            line=line, chain_id=_int(raw["chain_id"], "chain_id"), tx_hash=tx_hash.lower(),
            log_index=_int(raw["log_index"], "log_index"),
            sender=normalize_address(raw["from"], field="from"), recipient=normalize_address(raw["to"], field="to"),
            amount_micros=micros, block_number=_int(raw["block_number"], "block_number"),
            timestamp=_time(raw["timestamp"]),
        )
    except KeyError as exc:
        raise TransferFileError(line, f"missing field {exc.args[0]!r}") from None
    except (ValueError, LedgerError) as exc:
        raise TransferFileError(line, getattr(exc, "message", None) or str(exc)) from None


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        if first.lstrip().startswith("{"):
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    item = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise TransferFileError(number, f"not JSON: {exc.msg}") from None
                if not isinstance(item, dict):
                    raise TransferFileError(number, "each line must be a JSON object")
                yield number, item
        else:
            reader = csv.DictReader(handle)
            for row in reader:
                if None in row or None in row.values():
                    raise TransferFileError(reader.line_num, "wrong number of columns")
                yield reader.line_num, {k: v for k, v in row.items() if v != ""}


def read_transfers(path: Path) -> list[ChainTransfer]:
    """Parse and validate the whole file; raise TransferFileError naming the first bad line."""
    transfers = []
    for number, raw in _rows(path):
        transfers.append(parse_transfer(number, raw))
        if len(transfers) > MAX_TRANSFERS:
            raise TransferFileError(number, f"more than {MAX_TRANSFERS} transfers; split the file")
    return transfers
