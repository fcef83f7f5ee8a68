"""Money in and out on chain, through any Ethereum JSON-RPC node (web3.py).

- ``watcher``: credits the token's ``Transfer`` logs to the treasury once confirmed, survives
  restarts, concurrent watchers and reorganisations of the chain;
- ``payouts``: records a payout's intent, signs and broadcasts the ERC-20 ``transfer`` with the
  hot wallet, and confirms or releases its hold, sending each payout at most once.
"""
