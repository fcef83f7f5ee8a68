"""Matching on-chain transfers against the ledger's deposits, withdrawals and confirmed holds.

Transfers into a treasury address are deposits, out of one payouts
(withdrawals and confirmed holds, to the recorded destination or the
agent's own address). Each side is keyed on (chain id, tx hash, log index);
chain id 0 (not said) matches any chain. Matching goes from the surest to
the loosest link, so a batched payout (one tx, several logs) pairs each log
with its own withdrawal:

1. the same (tx hash, log index), counterparty and amount: ``matched``
   (``relocated`` when the recorded block or block hash differs);
2. the same tx hash, counterparty and amount at another log index or block
   (re-mined after a reorg, recorded with log index 0, an export without log
   indexes): ``relocated``, one linked item saying what differs (``matched``
   when the source has no log index and nothing known differs);
3. the same (tx hash, log index) but another amount or counterparty:
   ``amount_mismatch`` / ``agent_mismatch``;
4. what is left: on chain, ``chain_only`` (from a known agent: a missed
   deposit) or ``unknown_sender`` (from no agent: an exchange, a stranger);
   in the ledger, ``reorged`` (its only log was removed by a reorg),
   ``duplicate`` (the transfer is already matched to another entry) or
   ``ledger_only``.

Readable input that is no USDC money is counted, never added:
``other_token``, ``ignored_zero`` (zero-value, address-poisoning transfers),
``duplicate_input`` (the same log twice, overlapping pages), ``removed``
(logs a reorg took back), ``not_transfer`` (other events).

Windows are by block (``from_block``/``to_block``) or by chain time, applied
to both sides: the ledger is cut through the block each entry recorded
(``chain_refs``, indexed). The treasury control is independent of the items:
``Platform:Treasury`` at the cut-off block against the treasury's on-chain
balance there (read from the token contract, not summed from the file), the
difference explained item by item and by the ledger movements no transfer
explains; ``unexplained`` is what remains.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

from ..domain.errors import InvalidArgument
from ..domain.money import format_micros
from ..ledger import Ledger
from ..storage.chain_store import ChainRow, chain_rows, last_run, record_run, treasury_at_cut
from ..storage.journal_store import known_agents
from .transfers import ChainTransfer

DIFFERENCES = ("amount_mismatch", "agent_mismatch", "ledger_only", "chain_only", "unknown_sender", "reorged",
               "duplicate")
AGREEING = ("matched", "relocated")
IGNORED = ("other_token", "ignored_zero", "duplicate_input", "removed", "not_transfer")
CLASSES = AGREEING + DIFFERENCES + IGNORED
MAX_LISTED_CHANGES = 1000


@dataclass(frozen=True)
class Window:
    """Which part of the chain (and so of the ledger) a run covers; every bound optional."""

    from_block: int | None = None
    to_block: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"fromBlock": self.from_block, "toBlock": self.to_block,
                "from": self.start.isoformat() if self.start else None,
                "to": self.end.isoformat() if self.end else None}

    def has_blocks(self) -> bool:
        return self.from_block is not None or self.to_block is not None

    def covers(self, t: ChainTransfer) -> bool:
        if self.has_blocks():
            if t.block_number is None:
                raise InvalidArgument(f"record {t.line} has no block number for a window by block",
                                      field="fromBlock")
            if (self.from_block is not None and t.block_number < self.from_block) or (
                    self.to_block is not None and t.block_number > self.to_block):
                return False
        if self.start or self.end:
            if t.timestamp is None:
                raise InvalidArgument(f"record {t.line} has no time for a window by time: give the blocks' "
                                      "times (--blocks) or a window by block", field="from")
            if (self.start and t.timestamp < self.start) or (self.end and t.timestamp > self.end):
                return False
        return True


def final_block(head_block: int, confirmations: int) -> int:
    """The last block with ``confirmations`` blocks on top of it (the head counts as one)."""
    if confirmations < 1 or head_block < 0:
        raise InvalidArgument("confirmations must be at least 1 and the head block given", field="confirmations")
    return head_block - confirmations + 1


@dataclass(frozen=True)
class TreasuryBalance:
    """The treasury's on-chain token balance at a block (``ADDRESS=AMOUNT@BLOCK``)."""

    address: str
    amount_micros: int
    block: int


@dataclass(frozen=True)
class Item:
    kind: str  # one of CLASSES
    direction: str  # "in" (deposit) or "out" (withdrawal / confirmed hold)
    chain: ChainTransfer | None
    ledger: ChainRow | None
    differs: dict[str, list[Any]] | None = None

    @property
    def key(self) -> str:
        """A stable name for the item across runs (what changed since the last recorded one)."""
        c, m = self.chain, self.ledger
        return ":".join(str(v) for v in (self.kind, self.direction, c.tx_hash if c else "", c.log_index if c else "",
                                         m.seq if m else ""))

    @property
    def treasury_gap(self) -> int:
        """What this item contributes to the difference between the ledger's treasury and the chain's."""
        if self.kind in IGNORED:
            return 0
        ledger = self.ledger.treasury_micros if self.ledger else 0
        chain = 0
        if self.chain and not self.chain.removed:
            chain = self.chain.amount_micros if self.direction == "in" else -self.chain.amount_micros
        return ledger - chain

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class": self.kind, "direction": self.direction}
        if self.chain:
            c = self.chain
            out["chain"] = {"line": c.line, "chainId": c.chain_id, "blockNumber": c.block_number,
                            "blockHash": c.block_hash, "txHash": c.tx_hash, "logIndex": c.log_index,
                            "from": c.sender, "to": c.recipient, "amount": format_micros(c.amount_micros),
                            "token": c.token, "removed": c.removed,
                            "timestamp": c.timestamp.isoformat() if c.timestamp else None}
        if self.ledger:
            m = self.ledger
            out["ledger"] = {"seq": m.seq, "transactionId": m.transaction_id, "kind": m.kind, "agent": m.agent,
                             "amount": format_micros(m.amount_micros), "chainId": m.chain_id,
                             "blockNumber": m.block_number, "blockHash": m.block_hash, "txHash": m.tx_hash,
                             "logIndex": m.log_index, "destination": m.destination}
        if self.differs:
            out["differs"] = self.differs
        return out


@dataclass
class Reconciliation:
    window: Window = field(default_factory=Window)
    items: list[Item] = field(default_factory=list)
    chain_net_micros: int = 0
    ledger_movement_micros: int = 0
    unrelated_transfers: int = 0
    control: dict[str, int] | None = None  # the independent treasury control, when a balance was given
    since_last_run: dict[str, Any] | None = None

    def counts(self) -> dict[str, int]:
        counts = {k: 0 for k in CLASSES}
        for item in self.items:
            counts[item.kind] += 1
        return counts

    @property
    def explained_micros(self) -> int:
        return sum(i.treasury_gap for i in self.items)

    @property
    def unexplained_micros(self) -> int:
        if self.control is not None:
            return self.control["unexplained"]
        return (self.ledger_movement_micros - self.chain_net_micros) - self.explained_micros

    @property
    def clean(self) -> bool:
        return all(i.kind not in DIFFERENCES for i in self.items) and self.unexplained_micros == 0

    def to_dict(self) -> dict[str, Any]:
        treasury: dict[str, Any] = {
            "chainNetFlow": format_micros(self.chain_net_micros),
            "ledgerNetFlow": format_micros(self.ledger_movement_micros),
            "flowDifference": format_micros(self.ledger_movement_micros - self.chain_net_micros),
            "explainedByItems": format_micros(self.explained_micros),
        }
        if self.control is not None:
            treasury["control"] = {name: (v if name == "block" else format_micros(v))
                                   for name, v in self.control.items()}
        treasury["unexplained"] = format_micros(self.unexplained_micros)
        body: dict[str, Any] = {
            "clean": self.clean,
            "window": self.window.to_dict(),
            "counts": self.counts(),
            "treasury": treasury,
            "unrelatedTransfers": self.unrelated_transfers,
            "matched": [i.to_dict() for i in self.items if i.kind in AGREEING],
            "differences": [i.to_dict() for i in self.items if i.kind in DIFFERENCES],
            "ignored": [i.to_dict() for i in self.items if i.kind in IGNORED and i.kind != "not_transfer"],
        }
        if self.since_last_run is not None:
            body["sinceLastRun"] = self.since_last_run
        return body


def _party(m: ChainRow) -> str:
    return m.agent if m.kind == "deposit" else (m.destination or m.agent)


def _same_chain(t: ChainTransfer, m: ChainRow) -> bool:
    return t.chain_id == 0 or m.chain_id == 0 or t.chain_id == m.chain_id


def _differs(t: ChainTransfer, m: ChainRow) -> dict[str, list[Any]]:
    out = {}
    for name, chain_value, ledger_value in (("logIndex", t.log_index, m.log_index),
                                            ("blockNumber", t.block_number, m.block_number),
                                            ("blockHash", t.block_hash, m.block_hash)):
        if chain_value is not None and ledger_value is not None and chain_value != ledger_value:
            out[name] = [ledger_value, chain_value]  # [recorded, on chain]
    return out


def _match(chain: list[ChainTransfer], ledger: list[ChainRow], direction: str, agents: set[str],
           removed: list[ChainTransfer]) -> list[Item]:
    counterparty = (lambda t: t.sender) if direction == "in" else (lambda t: t.recipient)
    by_log: dict[tuple[str, int], list[ChainRow]] = defaultdict(list)
    by_tx: dict[str, list[ChainRow]] = defaultdict(list)
    for m in ledger:
        by_log[(m.tx_hash, m.log_index)].append(m)
        by_tx[m.tx_hash].append(m)
    taken: set[int] = set()
    items: list[Item] = []
    left = list(chain)

    def take(t: ChainTransfer, candidates: Iterable[ChainRow], agree: bool) -> ChainRow | None:
        for m in candidates:
            if m.seq in taken or not _same_chain(t, m):
                continue
            if agree != (m.amount_micros == t.amount_micros and _party(m) == counterparty(t)):
                continue
            taken.add(m.seq)
            return m
        return None

    def agreeing(t: ChainTransfer, m: ChainRow) -> Item:
        differs = _differs(t, m)
        return Item("relocated" if differs else "matched", direction, t, m, differs or None)

    for exact in (True, False):  # 1: the same log; 2: the same transaction
        rest = []
        for t in left:
            pool = by_log.get((t.tx_hash, t.log_index), []) if exact else by_tx.get(t.tx_hash, [])
            m = take(t, pool, agree=True) if (t.log_index is not None or not exact) else None
            if m is None:
                rest.append(t)
            else:
                items.append(agreeing(t, m))
        left = rest
    rest = []
    for t in left:  # 3: the same log (or, without log indexes, the same transaction), other facts
        pool = by_log.get((t.tx_hash, t.log_index), []) if t.log_index is not None else by_tx.get(t.tx_hash, [])
        m = take(t, pool, agree=False)
        if m is None:
            rest.append(t)
        else:
            kind = "amount_mismatch" if m.amount_micros != t.amount_micros else "agent_mismatch"
            items.append(Item(kind, direction, t, m))
    for t in rest:  # 4: what is left
        unknown = direction == "in" and t.sender not in agents
        items.append(Item("unknown_sender" if unknown else "chain_only", direction, t, None))
    matched_hashes = {i.chain.tx_hash for i in items if i.chain and i.ledger}
    live_hashes = {t.tx_hash for t in chain}
    removed_logs = {(t.tx_hash, t.log_index): t for t in removed}
    removed_hashes = {t.tx_hash: t for t in removed}
    for m in ledger:
        if m.seq in taken:
            continue
        gone = removed_logs.get((m.tx_hash, m.log_index)) or removed_hashes.get(m.tx_hash)
        if gone is not None and m.tx_hash not in live_hashes:
            items.append(Item("reorged", direction, gone, m))
        elif m.tx_hash in matched_hashes:
            items.append(Item("duplicate", direction, None, m))
        else:
            items.append(Item("ledger_only", direction, None, m))
    return items


def reconcile(ledger: Ledger, transfers: Sequence[ChainTransfer], treasury: set[str], *,
              window: Window = Window(), treasury_balances: Sequence[TreasuryBalance] = ()) -> Reconciliation:
    """Match ``transfers`` (already read) against the ledger over ``window``."""
    treasury = {t.lower() for t in treasury}
    result = Reconciliation(window=_resolved(window, transfers))
    window = result.window
    seen: set[tuple[Any, ...]] = set()
    # A subscription delivers a log, then the same log again with removed: true when a reorg takes it back.
    taken_back = {t.identity[:4] for t in transfers if t.removed and t.log_index is not None}
    flows: dict[str, list[ChainTransfer]] = {"in": [], "out": []}
    removed: dict[str, list[ChainTransfer]] = {"in": [], "out": []}
    for t in transfers:
        if not window.covers(t):
            continue
        direction = ("in" if t.recipient in treasury and t.sender not in treasury else
                     "out" if t.sender in treasury and t.recipient not in treasury else None)
        if t.ignored == "not_transfer":
            result.items.append(Item("not_transfer", "in", t, None))
            continue
        if direction is None:
            result.unrelated_transfers += 1
            continue
        if t.identity in seen:
            result.items.append(Item("duplicate_input", direction, t, None))
            continue
        seen.add(t.identity)
        if not t.removed and t.log_index is not None and t.identity[:4] in taken_back:
            continue  # delivered before its removal: never money, counted once as the removed log
        if t.ignored:
            result.items.append(Item(t.ignored, direction, t, None))
        elif t.removed:
            removed[direction].append(t)
        else:
            flows[direction].append(t)
    result.chain_net_micros = (sum(t.amount_micros for t in flows["in"])
                               - sum(t.amount_micros for t in flows["out"]))
    hashes = [t.tx_hash for d in ("in", "out") for t in flows[d] + removed[d]] if window.has_blocks() else []
    rows, agents = ledger.service.read(lambda conn: (
        chain_rows(conn, from_block=window.from_block, to_block=window.to_block, start=window.start,
                   end=window.end, unplaced_hashes=hashes),
        set(known_agents(conn))))
    live = [r for r in rows if not r.reversed]  # a reversed entry and its reversal no longer count
    result.ledger_movement_micros = sum(r.treasury_micros for r in live)
    for direction in ("in", "out"):
        side = [r for r in live if (r.kind == "deposit") == (direction == "in")]
        result.items += _match(flows[direction], side, direction, agents, removed[direction])
        used = {i.chain.identity for i in result.items if i.kind == "reorged" and i.chain}
        result.items += [Item("removed", direction, t, None) for t in removed[direction] if t.identity not in used]
    if treasury_balances:
        result.control = _control(ledger, treasury_balances, window, result.explained_micros)
    return result


def _resolved(window: Window, transfers: Sequence[ChainTransfer]) -> Window:
    """A window by time also cuts by block, through the blocks' times the input gives."""
    if not (window.start or window.end) or window.has_blocks():
        return window
    times = {t.block_number: t.timestamp for t in transfers if t.block_number is not None and t.timestamp}
    inside = [b for b, at in times.items() if (not window.start or at >= window.start)
              and (not window.end or at <= window.end)]
    if not inside:
        return window
    return Window(min(inside) if window.start else None, max(inside) if window.end else None,
                  window.start, window.end)


def _control(ledger: Ledger, balances: Sequence[TreasuryBalance], window: Window, explained: int) -> dict[str, int]:
    blocks = {b.block for b in balances}
    if len(blocks) != 1:
        raise InvalidArgument("every treasury balance must be at the same block", field="treasuryBalance")
    (cut,) = blocks
    if window.to_block is not None and window.to_block != cut:
        raise InvalidArgument(f"the treasury balance is at block {cut}, the window ends at {window.to_block}",
                              field="treasuryBalance")
    ledger_at_cut, other = ledger.service.read(lambda conn: treasury_at_cut(conn, cut))
    on_chain = sum(b.amount_micros for b in balances)
    difference = ledger_at_cut - on_chain
    return {"block": cut, "ledgerTreasury": ledger_at_cut, "onChainBalance": on_chain, "difference": difference,
            "explainedByItems": explained, "explainedByOtherLedgerMovements": other,
            "unexplained": difference - explained - other}


def compare_and_record(ledger: Ledger, result: Reconciliation, inputs_digest: str, *, record: bool) -> int | None:
    """Say what changed since the last recorded run (in ``result``); record this one if asked (its id)."""
    previous = ledger.service.read(last_run)
    result.since_last_run = changes_since(previous, result, inputs_digest)
    if not record:
        return None
    summary, window = run_summary(result), result.window.to_dict()
    return ledger.service.write(lambda conn: record_run(conn, ledger.service.clock(), inputs_digest, window, summary))


def changes_since(previous: dict[str, Any] | None, result: Reconciliation, inputs_digest: str) -> dict[str, Any] | None:
    """What differs from the last recorded run: differences that appeared and that were resolved."""
    if previous is None:
        return None
    before = set(previous["result"].get("differenceKeys", []))
    now = {i.key for i in result.items if i.kind in DIFFERENCES}
    return {"runId": previous["id"], "recordedAt": previous["recordedAt"],
            "sameInputs": previous["inputsDigest"] == inputs_digest, "window": previous["window"],
            "new": sorted(now - before)[:MAX_LISTED_CHANGES], "resolved": sorted(before - now)[:MAX_LISTED_CHANGES],
            "countsBefore": previous["result"].get("counts")}


def run_summary(result: Reconciliation) -> dict[str, Any]:
    """What a recorded run keeps: the outcome and the differences' keys (bounded)."""
    body = result.to_dict()
    return {"clean": body["clean"], "counts": body["counts"], "treasury": body["treasury"],
            "differenceKeys": sorted(i.key for i in result.items if i.kind in DIFFERENCES)[:100_000]}
