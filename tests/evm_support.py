"""A local EVM for the tests: eth-tester on py-evm behind web3's own provider, with a real ERC-20.

The token (``tests/contracts/token.vy``, a 6-decimal stand-in for USDC whose
``transfer`` reverts when the sender lacks the balance) is compiled from its
source with vyper once per test session. ``TestChain`` wraps what the tests do
to the chain: mint and send tokens, mine blocks, and reorganise it (a
snapshot of an earlier block, reverted to, then a different branch mined on
top, so the blocks past the fork get other hashes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

TOKEN_SOURCE = Path(__file__).with_name("contracts") / "token.vy"


@lru_cache(maxsize=1)
def compiled_token() -> tuple[list[dict[str, Any]], str]:
    """(ABI, deployment bytecode) of the test token, compiled from its source."""
    from vyper.compiler import compile_code

    out = compile_code(TOKEN_SOURCE.read_text(), output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


@dataclass(frozen=True)
class Wallet:
    """A funded externally owned account whose private key the test knows."""

    address: str
    key: bytes


class TestChain:
    """One in-process chain with the token deployed by its first account (the minter)."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.tester = EthereumTester(PyEVMBackend())
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self.minter = self.w3.eth.accounts[0]
        abi, bytecode = compiled_token()
        tx = self.w3.eth.contract(abi=abi, bytecode=bytecode).constructor().transact({"from": self.minter})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        self.token = self.w3.eth.contract(address=receipt["contractAddress"], abi=abi)
        self._wallets = 0

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    @property
    def head(self) -> int:
        return self.w3.eth.block_number

    def new_wallet(self, *, eth: int = 10**18) -> Wallet:
        """A fresh account with ``eth`` wei for gas, its key known to the test."""
        self._wallets += 1
        account = Account.from_key((0x1000 + self._wallets).to_bytes(32, "big"))
        self.w3.eth.send_transaction({"from": self.minter, "to": account.address, "value": eth})
        return Wallet(account.address, bytes(account.key))

    def mint(self, to: str, units: int) -> str:
        """Mint ``units`` (micro-USDC) to ``to``; the transaction hash."""
        return self.token.functions.mint(Web3.to_checksum_address(to), units).transact({"from": self.minter}).to_0x_hex()

    def send(self, sender: Wallet, to: str, units: int) -> tuple[str, int]:
        """``sender`` transfers ``units`` of the token to ``to``: (tx hash, block number)."""
        return self.broadcast(self.signed_transfer(sender, to, units))

    def signed_transfer(self, sender: Wallet, to: str, units: int) -> bytes:
        """The signed bytes of ``sender``'s transfer, not sent (``broadcast`` sends them, again after a reorg)."""
        fn = self.token.functions.transfer(Web3.to_checksum_address(to), units)
        tx = fn.build_transaction({"from": sender.address, "nonce": self.w3.eth.get_transaction_count(sender.address),
                                   "gas": 100_000})
        return bytes(Account.sign_transaction(tx, sender.key).raw_transaction)

    def broadcast(self, raw: bytes) -> tuple[str, int]:
        """Send signed bytes and wait for them to be mined: (tx hash, block number)."""
        tx_hash = self.w3.eth.send_raw_transaction(raw)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, "the test's own transfer reverted"
        return tx_hash.to_0x_hex(), receipt["blockNumber"]

    def balance(self, address: str) -> int:
        return self.token.functions.balanceOf(Web3.to_checksum_address(address)).call()

    def mine(self, blocks: int = 1) -> None:
        self.tester.mine_blocks(blocks)

    def snapshot(self) -> Any:
        """A point to reorganise back to (the current head)."""
        return self.tester.take_snapshot()

    def reorg(self, snapshot: Any, *, new_blocks: int) -> None:
        """Drop every block after ``snapshot`` and mine ``new_blocks`` others in their place.

        The new branch's blocks are stamped later than the old ones, so each has another hash.
        """
        self.tester.revert_to_snapshot(snapshot)
        self.tester.time_travel(self.w3.eth.get_block("latest")["timestamp"] + 1000)
        self.tester.mine_blocks(new_blocks)

    def transfers_to(self, address: str) -> list[dict[str, Any]]:
        """Every token Transfer log to ``address`` on the canonical chain."""
        return list(self.token.events.Transfer().get_logs(
            from_block=0, argument_filters={"receiver": Web3.to_checksum_address(address)}))
