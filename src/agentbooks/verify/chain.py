"""Re-walking a journal: balance per currency, gap-free sequence, hash chain, running sums.

Shared by the database verifier and the offline (export) verifier, so both
judge a journal by exactly the same rules.
"""

from __future__ import annotations

from collections import defaultdict

from ..domain.accounts import parse_account
from ..domain.errors import InvalidAccount
from ..domain.hashing import GENESIS_HASH, recorded_hash
from ..domain.model import Transaction
from .model import VerifyReport, Violation


class ChainWalker:
    """Feed transactions in sequence order; it records every violation and keeps account sums."""

    def __init__(self, report: VerifyReport, known_accounts: set[str] | None = None) -> None:
        self.report = report
        self.known_accounts = known_accounts
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.sums: dict[str, int] = defaultdict(int)

    def feed(self, tx: Transaction) -> None:
        report = self.report
        report.transactions += 1
        report.postings += len(tx.postings)
        if tx.seq != self.expected_seq:
            what = "missing" if tx.seq > self.expected_seq else "repeated or out of order"
            report.add(Violation("sequence_gap", f"journal sequence {what}: expected {self.expected_seq}, found {tx.seq}",
                                 seq=tx.seq, expected=str(self.expected_seq), actual=str(tx.seq)))
        if tx.prev_hash != self.prev_hash:
            report.add(Violation("chain_broken", f"seq {tx.seq} does not link to its predecessor's hash",
                                 seq=tx.seq, expected=self.prev_hash, actual=tx.prev_hash))
        recomputed = recorded_hash(tx)
        if recomputed != tx.hash:
            report.add(Violation("hash_mismatch", f"seq {tx.seq} was changed after it was recorded",
                                 seq=tx.seq, expected=tx.hash, actual=recomputed))
        per_currency: dict[str, int] = defaultdict(int)
        for p in tx.postings:
            per_currency[p.currency] += p.amount_micros
            self.sums[p.account] += p.amount_micros
            if not self._known(p.account):
                report.add(Violation("unknown_account", f"seq {tx.seq} posts to {p.account!r}, not in the chart",
                                     seq=tx.seq, account=p.account))
        for currency, total in per_currency.items():
            if total:
                report.add(Violation("unbalanced_transaction", f"seq {tx.seq} does not sum to zero in {currency}",
                                     seq=tx.seq, expected="0", actual=str(total)))
        self.expected_seq = max(self.expected_seq, tx.seq) + 1
        self.prev_hash = tx.hash
        report.last_seq, report.head_hash = tx.seq, tx.hash

    def _known(self, account: str) -> bool:
        if self.known_accounts is not None:
            return account in self.known_accounts
        try:
            parse_account(account)
        except InvalidAccount:
            return False
        return True
