"""Reconciliation of the ledger against on-chain USDC transfers."""
