"""The payout executor: sends each held payout's ERC-20 ``transfer`` from the hot wallet, once.

Every step is recorded before the next one is taken, so a crash at any
point resumes where it stopped and never sends a payout twice:

- ``held`` → ``signed``: the nonce is chosen (the node's pending count, or
  one past the last this wallet signed, whichever is higher) and the
  transaction signed; the nonce, its hash and the signed bytes are recorded
  (unique per chain, wallet and nonce) before anything is broadcast;
- ``signed`` → ``submitted``: the recorded bytes are broadcast. After a crash
  the same bytes are broadcast again: one nonce, one hash, so at most one of
  them is ever mined;
- ``submitted`` → ``confirmed``: once the receipt has ``confirmations``
  blocks on top, the hold is confirmed with the chain id, tx hash, the
  Transfer log's index and the destination; a transaction that is nowhere
  is broadcast again while its nonce is unused;
- → ``failed`` → ``released``: a reverted transaction, or one whose nonce
  another transaction took (dropped), releases the hold.

The hot wallet's key comes from a key file or an environment variable and is
never logged or shown.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError

from ..domain.errors import InvalidArgument, LedgerError
from ..domain.operations import ConfirmHold, ReleaseHold
from ..service import LedgerService
from ..storage import chain_watch_store as chain_store
from ..storage.chain_watch_store import PayoutRecord
from ..storage.journal_store import to_us
from .erc20 import hex_hash, token_contract
from .metrics import ChainMetrics, run_every
from .payouts import hold_payout

log = logging.getLogger("agentbooks.payouts")

HOT_WALLET_KEY_ENV = "AGENTBOOKS_HOT_WALLET_KEY"
MAX_PAYOUTS_PER_STEP = 100
TRANSFER_GAS = 100_000  # an ERC-20 transfer; fixed, so a transfer that would revert is still sent and seen to fail


class HotWallet:
    """The platform's signing key (never in a repr, a log line or an error message)."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._account: LocalAccount = Account.from_key(key)
        except Exception:  # noqa: BLE001 - the message could quote the key
            raise InvalidArgument("the hot wallet key is not a valid private key", field="key") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "HotWallet":
        return cls(Path(path).read_text().strip())

    @classmethod
    def from_env(cls, name: str = HOT_WALLET_KEY_ENV) -> "HotWallet":
        value = os.environ.get(name)
        if not value:
            raise InvalidArgument(f"${name} is not set", field="key")
        return cls(value.strip())

    @property
    def address(self) -> str:
        return self._account.address

    def sign(self, tx: dict[str, Any]) -> tuple[str, str]:
        """(tx hash, raw signed transaction), both 0x-hex."""
        signed = self._account.sign_transaction(tx)
        return hex_hash(signed.hash), Web3.to_hex(signed.raw_transaction)

    def __repr__(self) -> str:
        return f"HotWallet({self.address})"


Hook = Callable[[str, PayoutRecord], None]


class PayoutExecutor:
    def __init__(self, service: LedgerService, w3: Web3, token: str, wallet: HotWallet, *, confirmations: int,
                 metrics: ChainMetrics | None = None, hook: Hook | None = None) -> None:
        if isinstance(confirmations, bool) or not isinstance(confirmations, int) or not 0 <= confirmations <= 10_000:
            raise InvalidArgument("confirmations must be an integer in [0, 10000]", field="confirmations")
        self.service = service
        self.w3 = w3
        self.token = token_contract(w3, token)
        self.wallet = wallet
        self.confirmations = confirmations
        self.metrics = metrics or ChainMetrics()
        self.chain_id = int(w3.eth.chain_id)
        self.sender = wallet.address.lower()
        # Called after a step is recorded and before the next (tests inject crashes here).
        self.hook = hook or (lambda step, payout: None)

    def run(self, *, interval: float = 5.0, stop: Callable[[], bool] = lambda: False) -> None:
        """Step until ``stop()``."""
        run_every(interval, self.step, log, stop=stop)

    def step(self) -> dict[str, int]:
        """Move every open payout as far as it can go now; how many of them are in each state."""
        work = self.service.read(lambda c: chain_store.payouts_in(
            c, ("requested", "held", "signed", "submitted", "failed"), limit=MAX_PAYOUTS_PER_STEP))
        for payout in work:
            self._advance(payout)
        return self.service.read(chain_store.payout_counts)

    def _advance(self, payout: PayoutRecord) -> None:
        if payout.state == "requested":
            try:
                payout, _ = hold_payout(self.service, payout)
            except LedgerError:
                return  # refused: the payout failed without a hold
        if payout.state == "held":
            payout = self._sign(payout)
            self.hook("signed", payout)
        if payout.state == "signed":
            payout = self._broadcast(payout)
        if payout.state == "submitted":
            payout = self._settle(payout)
        if payout.state == "failed":
            self._release(payout)

    # --- the steps -----------------------------------------------------------------------------

    def _move(self, payout: PayoutRecord, state: str, **fields: Any) -> PayoutRecord:
        now = to_us(self.service.clock())
        if not self.service.write(lambda c: chain_store.advance_payout(c, payout, state, now, **fields)):
            raise RuntimeError(f"payout {payout.client_ref!r} of {payout.agent} moved under this executor")
        self.metrics.payouts.labels(state).inc()
        return self.service.read(lambda c: chain_store.get_payout(c, payout.agent, payout.client_ref))  # type: ignore[return-value]

    def _sign(self, payout: PayoutRecord) -> PayoutRecord:
        pending = self.w3.eth.get_transaction_count(Web3.to_checksum_address(self.sender), "pending")
        fees = self._fees()
        now = to_us(self.service.clock())

        def record(conn):  # type: ignore[no-untyped-def]
            last = chain_store.last_nonce(conn, self.chain_id, self.sender)
            nonce = max(pending, -1 if last is None else last + 1)
            tx = self.token.functions.transfer(Web3.to_checksum_address(payout.destination),
                                               payout.amount_micros).build_transaction(
                {"from": Web3.to_checksum_address(self.sender), "nonce": nonce, "chainId": self.chain_id,
                 "gas": TRANSFER_GAS, **fees})
            tx_hash, raw = self.wallet.sign(tx)
            if not chain_store.advance_payout(conn, payout, "signed", now, chain_id=self.chain_id, sender=self.sender,
                                              nonce=nonce, tx_hash=tx_hash, raw_tx=raw):
                raise RuntimeError(f"payout {payout.client_ref!r} of {payout.agent} moved under this executor")
            return nonce

        nonce = self.service.write(record)
        self.metrics.payouts.labels("signed").inc()
        log.info("payout %s of %s signed with nonce %s", payout.client_ref, payout.agent, nonce)
        return self.service.read(lambda c: chain_store.get_payout(c, payout.agent, payout.client_ref))  # type: ignore[return-value]

    def _fees(self) -> dict[str, int]:
        latest = self.w3.eth.get_block("latest")
        base = latest.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": self.w3.eth.gas_price}
        tip = self.w3.eth.max_priority_fee
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def _broadcast(self, payout: PayoutRecord) -> PayoutRecord:
        assert payout.raw_tx is not None and payout.tx_hash is not None
        if self._find(payout.tx_hash) is None:
            try:
                self.w3.eth.send_raw_transaction(payout.raw_tx)
            except (Web3RPCError, ValueError) as exc:
                # "already known" / "nonce too low": look at what the chain has before deciding.
                if self._find(payout.tx_hash) is None:
                    if self._nonce_taken(payout):
                        return self._move(payout, "failed", error="dropped: its nonce was used by another transaction")
                    raise RuntimeError(f"broadcast of payout {payout.client_ref!r} failed: {exc}") from exc
        self.hook("broadcast", payout)
        log.info("payout %s of %s broadcast as %s", payout.client_ref, payout.agent, payout.tx_hash)
        return self._move(payout, "submitted")

    def _find(self, tx_hash: str) -> Any:
        try:
            return self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return None

    def _nonce_taken(self, payout: PayoutRecord) -> bool:
        mined = self.w3.eth.get_transaction_count(Web3.to_checksum_address(self.sender), "latest")
        return payout.nonce is not None and mined > payout.nonce

    def _settle(self, payout: PayoutRecord) -> PayoutRecord:
        assert payout.tx_hash is not None
        try:
            receipt = self.w3.eth.get_transaction_receipt(payout.tx_hash)
        except TransactionNotFound:
            receipt = None
        if receipt is None:
            if self._find(payout.tx_hash) is not None:
                return payout  # pending
            if self._nonce_taken(payout):
                return self._move(payout, "failed", error="dropped: its nonce was used by another transaction")
            assert payout.raw_tx is not None
            log.warning("payout %s of %s: %s is not on the node; broadcasting the same bytes again",
                        payout.client_ref, payout.agent, payout.tx_hash)
            self.w3.eth.send_raw_transaction(payout.raw_tx)
            return payout
        if receipt["status"] != 1:
            return self._move(payout, "failed", error="reverted on chain")
        if self.w3.eth.block_number - receipt["blockNumber"] < self.confirmations:
            return payout
        log_index = self._transfer_log_index(receipt, payout)
        op = ConfirmHold(payout.agent, payout.amount_micros, payout.hold_reference, tx_hash=payout.tx_hash,
                         chain_id=self.chain_id, log_index=log_index, destination=payout.destination,
                         block_number=int(receipt["blockNumber"]), block_hash=hex_hash(receipt["blockHash"]))
        self.service.execute([op], idempotency_key=f"payout-confirm:{payout.agent}:{payout.client_ref}",
                             annotations={"payout": payout.client_ref})
        log.info("payout %s of %s confirmed (%s log %s)", payout.client_ref, payout.agent, payout.tx_hash, log_index)
        return self._move(payout, "confirmed", log_index=log_index)

    def _transfer_log_index(self, receipt: Any, payout: PayoutRecord) -> int:
        for event in self.token.events.Transfer().process_receipt(receipt):
            if (event["address"].lower() == self.token.address.lower()
                    and event["args"]["to"].lower() == payout.destination
                    and int(event["args"]["value"]) == payout.amount_micros):
                return int(event["logIndex"])
        raise RuntimeError(f"payout {payout.client_ref!r}: {payout.tx_hash} has no matching Transfer log")

    def _release(self, payout: PayoutRecord) -> PayoutRecord:
        op = ReleaseHold(payout.agent, payout.amount_micros, payout.hold_reference,
                         reason=f"payout failed: {payout.error or 'unknown'}"[:200])
        self.service.execute([op], idempotency_key=f"payout-release:{payout.agent}:{payout.client_ref}",
                             annotations={"payout": payout.client_ref})
        log.warning("payout %s of %s failed (%s): hold released", payout.client_ref, payout.agent, payout.error)
        return self._move(payout, "released")
