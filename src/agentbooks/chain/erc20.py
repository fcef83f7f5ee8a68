"""The ERC-20 surface the watcher and the executor use, and how a node is reached (web3.py)."""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.contract import Contract

from ..domain.errors import InvalidArgument

# The standard's own names (``from``, ``to``, ``value``): any ERC-20's logs decode with them.
ERC20_ABI: list[dict[str, Any]] = [
    {"type": "event", "name": "Transfer", "anonymous": False, "inputs": [
        {"name": "from", "type": "address", "indexed": True},
        {"name": "to", "type": "address", "indexed": True},
        {"name": "value", "type": "uint256", "indexed": False}]},
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
]
USDC_DECIMALS = 6  # micro-units are the token's own units: nothing is rounded between chain and books


def connect(rpc_url: str) -> Web3:
    """A web3 client for an HTTP(S) or WebSocket JSON-RPC endpoint."""
    if rpc_url.startswith(("ws://", "wss://")):
        from web3 import LegacyWebSocketProvider

        return Web3(LegacyWebSocketProvider(rpc_url))
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))


def token_contract(w3: Web3, address: str) -> Contract:
    """The token at ``address``; refused unless it has 6 decimals like USDC."""
    if not Web3.is_address(address):
        raise InvalidArgument(f"{address[:60]!r} is not a token address", field="token")
    token = w3.eth.contract(address=Web3.to_checksum_address(address), abi=ERC20_ABI)
    decimals = token.functions.decimals().call()
    if decimals != USDC_DECIMALS:
        raise InvalidArgument(f"the token has {decimals} decimals; agentbooks books USDC's {USDC_DECIMALS}",
                              field="token")
    return token


def hex_hash(value: Any) -> str:
    """A block or transaction hash as 0x + 64 lower-case hex digits."""
    return Web3.to_hex(value).lower()
