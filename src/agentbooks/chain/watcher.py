"""The deposit watcher: the token's Transfer logs to the treasury, credited once they are confirmed.

One ``poll`` (``agentbooks watch --once``):

1. Reorgs first. Every log credited in the last ``reorg_window`` blocks
   below the checkpoint is checked against the canonical chain: a log none of
   whose recorded blocks is canonical any more (a reorg deeper than the
   confirmations) has its credit reversed through the ledger's own reversal,
   reported and counted. A checkpoint whose block is no longer canonical is
   moved back to the start of the window, which is scanned again.
2. Then pages of at most ``page_size`` blocks from the checkpoint up to the
   head less ``confirmations``. A page is read only while its first block's
   parent is the checkpoint's block and its last block's hash is the same
   before and after the log query, so no log of a block that left the chain
   is credited. Its deposits (keyed on chain id, tx hash, log index), the
   record of their blocks (``chain_credits``) and the checkpoint's move are
   one ledger request (``LedgerService.execute``'s side rows): one database
   transaction. The checkpoint moves by compare-and-set and every log's key is
   claimed once, so a second watcher on the same page is refused as a whole
   and carries on from where the first one left the checkpoint.

A sender that is no agent yet is credited as a new agent (``credit``, the
original's behaviour) or held in ``Agent:Suspense`` (``suspense``). Zero-value
transfers, other tokens' logs and amounts beyond the ledger's range are
counted and ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from web3 import Web3
from web3.types import LogReceipt

from ..domain.addresses import normalize_address
from ..domain.errors import DuplicateDeposit, InvalidArgument, InvariantViolation, LedgerError
from ..domain.model import Transaction
from ..domain.money import MAX_AMOUNT_MICROS
from ..domain.operations import Deposit, Operation, ReceiveUnidentified, Reverse, UniqueKey, deposit_key
from ..service import LedgerService
from ..storage import chain_watch_store as chain_store
from ..storage import journal_store as store
from ..storage import write_path as writes
from ..storage.journal_store import to_us
from .erc20 import hex_hash, token_contract
from .metrics import ChainMetrics, run_every

log = logging.getLogger("agentbooks.watch")

UNKNOWN_SENDER_MODES = ("credit", "suspense")
MAX_PAGE_BLOCKS = 10_000
MAX_PAGES_PER_POLL = 100
MAX_CREDITS_CHECKED = 10_000  # credits re-checked per poll (the reorg window's, oldest first)
NO_BLOCK_HASH = "0x" + "0" * 64  # the checkpoint "before block 0"


@dataclass
class WatchReport:
    """What one poll did."""

    credited: list[Transaction] = field(default_factory=list)
    reversed: list[Transaction] = field(default_factory=list)
    reversal_refused: list[tuple[str, int, str]] = field(default_factory=list)  # (tx hash, log index, error)
    ignored: dict[str, int] = field(default_factory=dict)
    checkpoint: tuple[int, str] | None = None
    head: int = 0
    rewound: bool = False

    @property
    def lag_blocks(self) -> int:
        return self.head - self.checkpoint[0] if self.checkpoint else self.head


class ChainMoved(Exception):
    """The chain changed under a page being read; the next poll reads it again."""


@dataclass(frozen=True)
class WatchConfig:
    token: str
    treasuries: tuple[str, ...]
    confirmations: int
    unknown_senders: str = "credit"
    page_size: int = 1000
    reorg_window: int = 128
    from_block: int = 0

    def __post_init__(self) -> None:
        if not self.treasuries:
            raise InvalidArgument("at least one treasury address", field="treasury")
        if self.unknown_senders not in UNKNOWN_SENDER_MODES:
            raise InvalidArgument(f"unknown senders are one of {UNKNOWN_SENDER_MODES}", field="unknown_senders")
        for name, value, low, high in (("confirmations", self.confirmations, 0, 10_000),
                                       ("page_size", self.page_size, 1, MAX_PAGE_BLOCKS),
                                       ("reorg_window", self.reorg_window, 0, 100_000),
                                       ("from_block", self.from_block, 0, 2**62)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidArgument(f"{name} must be an integer in [{low}, {high}]", field=name)


class DepositWatcher:
    def __init__(self, service: LedgerService, w3: Web3, config: WatchConfig, *,
                 metrics: ChainMetrics | None = None) -> None:
        self.service = service
        self.w3 = w3
        self.config = config
        self.metrics = metrics or ChainMetrics()
        self.token = token_contract(w3, config.token)
        self.chain_id = int(w3.eth.chain_id)
        self.watcher_id = f"{self.chain_id}:{self.token.address.lower()}"
        self.treasuries = {normalize_address(a, field="treasury") for a in config.treasuries}
        self._transfer = self.token.events.Transfer()
        self._transfer_topic = hex_hash(Web3.keccak(text="Transfer(address,address,uint256)"))
        self._treasury_topics = [hex_hash(w3.codec.encode(["address"], [Web3.to_checksum_address(a)]))
                                 for a in sorted(self.treasuries)]

    # --- the loop ------------------------------------------------------------------------------

    def run(self, *, interval: float = 5.0, stop: Callable[[], bool] = lambda: False) -> None:
        """Poll until ``stop()``."""
        run_every(interval, self.poll, log, stop=stop)

    def poll(self) -> WatchReport:
        report = WatchReport(head=self.w3.eth.block_number)
        checkpoint = self._checkpoint()
        checkpoint = self._check_reorgs(checkpoint, report)
        safe = report.head - self.config.confirmations
        try:
            for _ in range(MAX_PAGES_PER_POLL):
                if checkpoint[0] >= safe:
                    break
                checkpoint = self._page(checkpoint, min(safe, checkpoint[0] + self.config.page_size), report)
        except ChainMoved as moved:
            log.warning("the chain moved while reading a page (%s); the next poll reads it again", moved)
        report.checkpoint = checkpoint
        self.metrics.watcher_lag.set(report.lag_blocks)
        log.info("watched to block %s (lag %s): %s credited, %s reversed", checkpoint[0], report.lag_blocks,
                 len(report.credited), len(report.reversed))
        return report

    # --- checkpoint and reorgs -----------------------------------------------------------------

    def _checkpoint(self) -> tuple[int, str]:
        start = self.config.from_block - 1
        at = (start, self._block_hash(start) if start >= 0 else NO_BLOCK_HASH)
        now = to_us(self.service.clock())
        return self.service.write(lambda c: chain_store.start_checkpoint(c, self.watcher_id, at, now))

    def _block_hash(self, number: int) -> str:
        return hex_hash(self.w3.eth.get_block(number)["hash"])

    def _canonical(self, number: int, cache: dict[int, str | None]) -> str | None:
        """The canonical chain's hash at ``number`` (None above the head)."""
        if number not in cache:
            try:
                cache[number] = self._block_hash(number) if number >= 0 else NO_BLOCK_HASH
            except Exception:  # noqa: BLE001 - web3 raises BlockNotFound above the head
                cache[number] = None
        return cache[number]

    def _check_reorgs(self, checkpoint: tuple[int, str], report: WatchReport) -> tuple[int, str]:
        window_start = max(0, checkpoint[0] - self.config.reorg_window)
        hashes: dict[int, str | None] = {}
        credits = self.service.read(lambda c: chain_store.credits_from(
            c, self.watcher_id, window_start, limit=MAX_CREDITS_CHECKED))
        by_log: dict[tuple[str, int], list[chain_store.Credit]] = {}
        for credit in credits:
            by_log.setdefault((credit.tx_hash, credit.log_index), []).append(credit)
        for (tx_hash, log_index), rows in by_log.items():
            if any(self._canonical(r.block_number, hashes) == r.block_hash for r in rows):
                continue
            self._reverse(tx_hash, log_index, report)
        if self._canonical(checkpoint[0], hashes) == checkpoint[1]:
            return checkpoint
        back = window_start - 1
        rewound = (back, self._canonical(back, hashes) or NO_BLOCK_HASH)
        now = to_us(self.service.clock())
        log.warning("block %s (the checkpoint) left the chain: scanning again from block %s", checkpoint[0],
                    window_start)
        report.rewound = True
        moved = self.service.write(lambda c: chain_store.move_checkpoint(c, self.watcher_id, checkpoint, rewound, now))
        return rewound if moved else self._checkpoint()

    def _reverse(self, tx_hash: str, log_index: int, report: WatchReport) -> None:
        """Reverse the live credit of a log whose block left the chain (nothing when already reversed)."""
        key = UniqueKey("deposit", deposit_key(self.chain_id, tx_hash, log_index))
        used = self.service.read(lambda c: writes.find_used(c, [key])).get((key.scope, key.key))
        if used is None:
            return  # reversed already (a reversal frees the deposit's key)
        original = self.service.read(lambda c: store.transactions_between(c, used[0], used[0]))[0]
        reason = f"reorg: the block of {tx_hash} log {log_index} left the chain"
        try:
            done = self.service.execute([Reverse(original.id, reason)],
                                        idempotency_key=f"reorg:{original.id}")
        except LedgerError as exc:
            log.error("could not reverse deposit %s log %s after a reorg: %s", tx_hash, log_index, exc)
            self.metrics.deposits_reversed.labels("refused").inc()
            report.reversal_refused.append((tx_hash, log_index, exc.code))
            return
        log.warning("reversed deposit %s log %s (%s micro-USDC): its block left the chain", tx_hash, log_index,
                    original.amount_micros)
        self.metrics.deposits_reversed.labels("reversed").inc()
        report.reversed.extend(done)

    # --- pages ---------------------------------------------------------------------------------

    def _page(self, checkpoint: tuple[int, str], last: int, report: WatchReport) -> tuple[int, str]:
        first = checkpoint[0] + 1
        first_block = self.w3.eth.get_block(first)
        if first > 0 and hex_hash(first_block["parentHash"]) != checkpoint[1]:
            raise ChainMoved(f"block {first} does not follow the checkpoint")
        last_hash = self._block_hash(last)
        logs = self.w3.eth.get_logs({"fromBlock": first, "toBlock": last,
                                     "topics": [self._transfer_topic, None, self._treasury_topics]})
        hashes: dict[int, str | None] = {last: last_hash}
        for entry in logs:
            if hex_hash(entry["blockHash"]) != self._canonical(entry["blockNumber"], hashes):
                raise ChainMoved(f"a log of block {entry['blockNumber']} is not on the canonical chain")
        if self._block_hash(last) != last_hash:
            raise ChainMoved(f"block {last} changed while its logs were read")
        ops, credits = self._operations(logs, report)
        target = (last, last_hash)
        now = to_us(self.service.clock())
        if not ops:
            moved = self.service.write(lambda c: chain_store.move_checkpoint(c, self.watcher_id, checkpoint, target, now))
            return target if moved else self._checkpoint()
        side_rows = {"chain_credits": credits,
                     "chain_checkpoint_moves": [chain_store.checkpoint_move_row(self.watcher_id, checkpoint, target, now)]}
        try:
            recorded = self.service.execute(ops, annotations={"initiator": "deposit-watcher"}, side_rows=side_rows)
        except (DuplicateDeposit, InvariantViolation) as exc:
            # Another watcher credited these logs (their keys are taken) or moved the checkpoint first
            # (its compare-and-set found no row): nothing of this page was written; carry on from there.
            found = self._checkpoint()
            if found == checkpoint:
                raise  # not a concurrent watcher after all
            log.info("another watcher moved the checkpoint (%s); continuing from block %s", exc.code, found[0])
            return found
        for t in recorded:
            self.metrics.deposits_credited.labels("agent" if t.agent else "suspense").inc()
        report.credited.extend(recorded)
        return target

    def _operations(self, logs: Sequence[LogReceipt], report: WatchReport) -> tuple[list[Operation], list[tuple]]:
        """The page's new deposits (logs already credited are skipped) and their chain_credits rows."""
        candidates: list[tuple[Operation, tuple[Any, ...]]] = []
        senders: set[str] = set()
        decoded = []
        for entry in logs:
            if entry["address"].lower() != self.token.address.lower():
                self._ignore("other_token", report)
                continue
            event = self._transfer.process_log(entry)
            value = int(event["args"]["value"])
            if value == 0:
                self._ignore("zero_value", report)
                continue
            if value > MAX_AMOUNT_MICROS:
                self._ignore("out_of_range", report)
                continue
            sender = normalize_address(event["args"]["from"], field="from")
            senders.add(sender)
            decoded.append((entry, sender, value))
        known = (self.service.read(lambda c: chain_store.known_agents_among(c, sorted(senders)))
                 if self.config.unknown_senders == "suspense" else senders)
        for entry, sender, value in decoded:
            tx_hash, log_index = hex_hash(entry["transactionHash"]), int(entry["logIndex"])
            block = {"chain_id": self.chain_id, "log_index": log_index, "block_number": int(entry["blockNumber"]),
                     "block_hash": hex_hash(entry["blockHash"])}
            op: Operation
            if sender in known:
                op = Deposit(sender, value, tx_hash, **block)
            else:
                op = ReceiveUnidentified(sender, value, tx_hash, **block)
            row = chain_store.credit_row(self.watcher_id, tx_hash, log_index, block["block_number"],
                                         block["block_hash"])
            candidates.append((op, row))
        keys = [op.unique_key() for op, _ in candidates]
        used = self.service.read(lambda c: writes.find_used(c, keys)) if keys else {}
        fresh = [(op, row) for (op, row), key in zip(candidates, keys) if (key.scope, key.key) not in used]
        return [op for op, _ in fresh], [row for _, row in fresh]

    def _ignore(self, reason: str, report: WatchReport) -> None:
        report.ignored[reason] = report.ignored.get(reason, 0) + 1
        self.metrics.logs_ignored.labels(reason).inc()
