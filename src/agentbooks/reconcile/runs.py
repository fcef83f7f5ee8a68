"""One reconciliation run as the CLI and the API ask for it: the window from its options, the result, the record."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

from ..domain.addresses import normalize_address
from ..domain.errors import InvalidArgument
from ..domain.money import parse_amount
from ..ledger import Ledger
from ..requests import parse_time
from .match import TreasuryBalance, Window, compare_and_record, final_block, reconcile
from .transfers import ChainTransfer


def _block(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidArgument(f"{field} must be a block number", field=field)
    return value


def build_window(*, from_block: int | None = None, to_block: int | None = None, start: Any = None,
                 end: Any = None, confirmations: int | None = None, head_block: int | None = None) -> Window:
    """The window a run covers; ``confirmations`` with ``head_block`` cuts it at the last final block."""
    to_block = _block(to_block, "toBlock")
    if (confirmations is None) != (head_block is None):
        raise InvalidArgument("confirmations and the head block go together", field="confirmations")
    if confirmations is not None:
        final = final_block(_block(head_block, "headBlock"), _block(confirmations, "confirmations"))
        to_block = final if to_block is None else min(to_block, final)
    window = Window(_block(from_block, "fromBlock"), to_block,
                    parse_time(start, field="from") if start is not None else None,
                    parse_time(end, field="to") if end is not None else None)
    if window.from_block is not None and window.to_block is not None and window.from_block > window.to_block:
        raise InvalidArgument("the window's first block is after its last", field="fromBlock")
    return window


def parse_treasury_balance(text: str) -> TreasuryBalance:
    """``ADDRESS=AMOUNT@BLOCK``: the treasury's on-chain balance (USDC, decimal) at a block."""
    try:
        address, rest = text.split("=", 1)
        amount, block = rest.rsplit("@", 1)
        number = int(block)
    except ValueError:
        raise InvalidArgument(f"a treasury balance is ADDRESS=AMOUNT@BLOCK, got {text[:80]!r}",
                              field="treasuryBalance") from None
    return TreasuryBalance(normalize_address(address.strip(), field="treasuryBalance"),
                           parse_amount(amount.strip(), allow_zero=True, field="treasuryBalance"),
                           _block(number, "treasuryBalance"))


def inputs_digest(data: bytes, options: dict[str, Any]) -> str:
    """What was reconciled: the input's bytes and the options that read it."""
    digest = hashlib.sha256(data)
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def run_reconciliation(ledger: Ledger, transfers: Sequence[ChainTransfer], treasury: Sequence[str], *,
                       window: Window, balances: Sequence[TreasuryBalance] = (), digest: str,
                       record: bool = False) -> tuple[bool, dict[str, Any]]:
    """(clean, the JSON body) of one run; recorded when asked, with what changed since the last recorded one."""
    result = reconcile(ledger, transfers, {normalize_address(t, field="treasury") for t in treasury},
                       window=window, treasury_balances=balances)
    run_id = compare_and_record(ledger, result, digest, record=record)
    body = result.to_dict()
    body["inputsDigest"] = digest
    if run_id is not None:
        body["recordedRun"] = run_id
    return result.clean, body
