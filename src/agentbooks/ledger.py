"""``Ledger``: the public Python API, the seed's Go ``Ledger`` in snake_case.

Amounts go in as ``str``/``Decimal`` and come out as ``Decimal`` quantized to
6 places. Every write returns the recorded ``Transaction`` and every failure
raises a ``LedgerError`` subclass with a stable ``.code``. Account balances
(``get_account_balance``, ``rollup``) use beancount's signs: liabilities and
income are negative; ``get_balance`` shows an agent the signs a person expects.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from . import audit
from . import requests as req
from .requests import check_seq
from .domain import accounts as acct
from .domain.addresses import check_reference, normalize_address
from .domain import operations as ops
from .domain.errors import InvalidArgument, NotFound, PeriodNotComplete
from .domain.model import AgentProfile, Balance, DryRun, Entry, HoldKind, HoldState, Kind, Transaction, TransactionPage
from .domain.money import format_micros, parse_amount, to_decimal
from .domain.netting import MAX_OBLIGATIONS, Obligation, net_settle
from .domain.operations import AssignSuspense, Operation, ReturnSuspense
from .service import LedgerService, utc_now
from .storage import journal_store as store
from .storage import profiles

MAX_HISTORY_LIMIT = 1000
DEFAULT_HISTORY_LIMIT = 50  # the original's: a limit <= 0 means this
# A write's options, the same on every write method: ``idempotency_key``; ``metadata``, the caller's own
# string pairs (``requests.check_client_metadata``), recorded under ``metadata["client"]`` in the hash
# chain; ``dry_run=True`` returns the ``DryRun`` the call would record now and writes nothing.
Metadata = Optional[Mapping[str, str]]
MAX_OPEN_HOLDS = 1_000_000


def plan_net_settlement(obligations: Iterable[Any]) -> list[Obligation]:
    """The netted transfers for edge input (mappings or tuples with decimal amounts), not executed."""
    items = []
    for i, item in enumerate(obligations):
        if i >= MAX_OBLIGATIONS:
            raise InvalidArgument(f"net settlement takes at most {MAX_OBLIGATIONS} obligations", field="transfers")
        items.append(req.obligation(item))
    return net_settle(items)


class Ledger:
    def __init__(self, service: LedgerService) -> None:
        self.service = service

    @classmethod
    def open(cls, url: str = "sqlite:///agentbooks.db", *, clock: Callable[[], datetime] = utc_now) -> "Ledger":
        """Open (and migrate) the ledger at ``url``: ``sqlite:///file.db`` or ``postgresql+psycopg://…``."""
        return cls(LedgerService.open(url, clock=clock))

    def close(self) -> None:
        self.service.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _one(self, op: Operation, idempotency_key: str | None, metadata: Metadata = None,
             dry_run: bool = False) -> Transaction | DryRun:
        ops = [req.with_client_metadata(op, metadata)]
        if dry_run:
            return self.service.dry_run(ops, idempotency_key=idempotency_key)
        return self.service.execute(ops, idempotency_key=idempotency_key)[0]

    # --- the seed's operations -------------------------------------------------------

    def deposit(self, agent: str, amount: Any, tx_hash: str, *, chain_id: int = 0, log_index: int = 0,
                block_number: int | None = None, block_hash: str | None = None,
                idempotency_key: str | None = None,
                metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        """Credit an on-chain deposit, once per (chain id, tx hash, log index); where it was mined, when known."""
        return self._one(req.deposit(agent, amount, tx_hash, chain_id, log_index, block_number, block_hash),
                         idempotency_key, metadata, dry_run)

    def withdraw(self, agent: str, amount: Any, tx_hash: str, *, chain_id: int = 0, log_index: int = 0,
                 destination: str | None = None, block_number: int | None = None, block_hash: str | None = None,
                 idempotency_key: str | None = None,
                 metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        """A payout sent on chain, once per (chain id, tx hash, log index): a batched payout is one per log."""
        return self._one(req.withdraw(agent, amount, tx_hash, chain_id, log_index, destination, block_number,
                                      block_hash), idempotency_key, metadata, dry_run)

    def spend(self, agent: str, amount: Any, session_key_id: str, *, idempotency_key: str | None = None,
              metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.spend(agent, amount, session_key_id), idempotency_key, metadata, dry_run)

    def hold(self, agent: str, amount: Any, reference: str, *, expires_at: datetime | str | None = None,
             allow_credit: bool = True, idempotency_key: str | None = None,
             metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        """Move funds to Pending for an in-flight transfer; ``allow_credit=False`` holds own funds only."""
        return self._one(req.hold(agent, amount, reference, expires_at, allow_credit), idempotency_key, metadata, dry_run)

    def confirm_hold(self, agent: str, amount: Any, reference: str, *, tx_hash: str | None = None,
                     chain_id: int | None = None, log_index: int | None = None, destination: str | None = None,
                     block_number: int | None = None, block_hash: str | None = None,
                     idempotency_key: str | None = None,
                     metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.confirm_hold(agent, amount, reference, tx_hash, chain_id, log_index, destination,
                                          block_number, block_hash), idempotency_key, metadata, dry_run)

    def release_hold(self, agent: str, amount: Any, reference: str, *, reason: str | None = None,
                     idempotency_key: str | None = None,
                     metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.release_hold(agent, amount, reference, reason), idempotency_key, metadata, dry_run)

    def escrow_lock(self, agent: str, amount: Any, reference: str, *, idempotency_key: str | None = None,
                    metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.escrow_lock(agent, amount, reference), idempotency_key, metadata, dry_run)

    def release_escrow(self, buyer: str, seller: str, amount: Any, reference: str, *,
                       idempotency_key: str | None = None,
                       metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.release_escrow(buyer, seller, amount, reference), idempotency_key, metadata, dry_run)

    def refund_escrow(self, agent: str, amount: Any, reference: str, *, idempotency_key: str | None = None,
                      metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.refund_escrow(agent, amount, reference), idempotency_key, metadata, dry_run)

    def refund(self, agent: str, amount: Any, reference: str, *, idempotency_key: str | None = None,
               metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.refund(agent, amount, reference), idempotency_key, metadata, dry_run)

    def set_credit_limit(self, agent: str, limit: Any, *, idempotency_key: str | None = None,
                         metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        """Set the credit limit (a journal event), also recorded as an administrative action."""
        op = req.set_credit_limit(agent, limit)
        if dry_run:  # nothing happens, so nothing is audited
            return self._one(op, idempotency_key, metadata, dry_run)
        return audit.audited(self.service, audit.CREDIT_LIMIT_SET, op.agent, {"limit": format_micros(op.limit_micros)},
                             lambda: self._one(op, idempotency_key, metadata, False))

    def use_credit(self, agent: str, amount: Any, *, idempotency_key: str | None = None,
                   metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.use_credit(agent, amount), idempotency_key, metadata, dry_run)

    def repay_credit(self, agent: str, amount: Any, *, idempotency_key: str | None = None,
                     metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.repay_credit(agent, amount), idempotency_key, metadata, dry_run)

    # --- beyond the seed ------------------------------------------------------------------

    def settle_hold(self, buyer: str, seller: str, amount: Any, reference: str, *, fee: Any = "0",
                    idempotency_key: str | None = None,
                    metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.settle_hold(buyer, seller, amount, reference, fee), idempotency_key, metadata, dry_run)

    def settle_escrow(self, buyer: str, seller: str, seller_amount: Any, reference: str, *,
                      idempotency_key: str | None = None,
                      metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        """Release ``seller_amount`` of the escrow to the seller and refund the rest to the buyer."""
        return self._one(req.settle_escrow(buyer, seller, seller_amount, reference), idempotency_key, metadata, dry_run)

    def transfer(self, from_agent: str, to_agent: str, amount: Any, reference: str, *,
                 idempotency_key: str | None = None,
                 metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        return self._one(req.transfer(from_agent, to_agent, amount, reference), idempotency_key, metadata, dry_run)

    def reverse(self, transaction_id: str, reason: str, *, idempotency_key: str | None = None,
                metadata: Metadata = None, dry_run: bool = False) -> Transaction | DryRun:
        """Record the negation of a transaction; the request (refused or not) is an administrative action."""
        op = req.reverse(transaction_id, reason)
        if dry_run:  # nothing happens, so nothing is audited
            return self._one(op, idempotency_key, metadata, dry_run)
        original = self.service.read(lambda c: store.transaction_by_id(c, op.transaction_id))
        return audit.audited(self.service, audit.REVERSAL_REQUESTED, original.agent if original else None,
                             {"transaction_id": op.transaction_id, "reason": op.reason},
                             lambda: self._one(op, idempotency_key, metadata, False))

    # --- Agent:Suspense (USDC from senders who are no known agent) --------------------------

    def _suspense_receipt(self, transaction_id: str) -> Transaction:
        receipt = self.get_transaction(transaction_id)
        if receipt.kind is not Kind.RECEIVE_UNIDENTIFIED:
            raise InvalidArgument(f"transaction {transaction_id!r} is no suspense receipt", field="transaction_id")
        return receipt

    def assign_suspense(self, receipt_id: str, agent: str, *, idempotency_key: str | None = None) -> Transaction:
        """The suspense receipt ``receipt_id`` is ``agent``'s money: credit it (outstanding credit repaid first)."""
        receipt = self._suspense_receipt(receipt_id)
        return self._one(AssignSuspense(normalize_address(agent), receipt.amount_micros, receipt.id), idempotency_key,
                         None, False)

    def return_suspense(self, receipt_id: str, tx_hash: str, *, idempotency_key: str | None = None) -> Transaction:
        """The suspense receipt was sent back to its sender on chain in ``tx_hash``."""
        receipt = self._suspense_receipt(receipt_id)
        op = ReturnSuspense(receipt.amount_micros, receipt.id, req.tx_hash(tx_hash), receipt.counterparty or "")
        return self._one(op, idempotency_key, None, False)

    # --- the platform's own books ---------------------------------------------------------

    def contribute_capital(self, amount: Any, reference: str, *, memo: str | None = None,
                           idempotency_key: str | None = None) -> Transaction:
        """Owners' capital into the treasury (Treasury +a, Equity:Capital −a), once per reference."""
        return self._one(req.contribute_capital(amount, reference, memo), idempotency_key)

    def record_opening_balance(self, account: str, amount: Any, reference: str, *,
                               idempotency_key: str | None = None) -> Transaction:
        """A balance brought over from an existing ledger, against Equity:Opening."""
        return self._one(req.opening_balance(account, amount, reference), idempotency_key)

    def pay_network_fee(self, amount: Any, tx_hash: str, *, memo: str | None = None,
                        idempotency_key: str | None = None) -> Transaction:
        """USDC the platform paid for an on-chain transfer (Expenses:Network-Fees +a, Treasury −a)."""
        return self._one(req.pay_network_fee(amount, tx_hash, memo), idempotency_key)

    def write_off_credit(self, agent: str, amount: Any, reason: str, *,
                         idempotency_key: str | None = None) -> Transaction:
        """Credit the agent will not repay becomes Expenses:Bad-Debt (its credit used falls by ``amount``)."""
        return self._one(req.write_off_credit(agent, amount, reason), idempotency_key)

    def adjust(self, postings: Iterable[Mapping[str, Any]], reason: str, *,
               idempotency_key: str | None = None) -> Transaction:
        """A balanced adjusting entry between platform accounts (never an agent's), with a reason."""
        return self._one(req.adjust(list(postings), reason), idempotency_key)

    def close_period(self, end: datetime | str, *, idempotency_key: str | None = None) -> Transaction:
        """Close the books up to ``end``: income and expenses before it move to Equity:Retained-Earnings.

        Refused until the journal has a transaction at or after ``end`` (times never run backwards
        along the chain, so nothing can be recorded in the closed period afterwards), and for an
        ``end`` at or before the previous close.
        """
        moment = req.parse_time(end, field="end")

        def read(conn: Any) -> Operation:
            _, _, head_at = store.head(conn)
            if head_at is None or head_at < moment:
                raise PeriodNotComplete(
                    f"the journal has not reached {moment.isoformat()} yet: record the period's last "
                    "transactions first (a close needs a transaction at or after the end)", field="end")
            previous = store.last_close(conn)
            previous_end = datetime.fromisoformat(previous.metadata["period_end"]) if previous else None
            earnings = tuple(sorted(store.unclosed_earnings(conn, moment).items()))
            return ops.ClosePeriod(moment, earnings, previous_end)

        return self._one(self.service.read(read), idempotency_key)

    def batch(self, operations: Iterable[Mapping[str, Any] | Operation], *,
              idempotency_key: str | None = None, metadata: Metadata = None,
              dry_run: bool = False) -> list[Transaction] | DryRun:
        """Run many operations in one database transaction: all of them, or none.

        An item's own ``"metadata"`` is its transaction's; ``metadata`` goes to the items without any.
        """
        ops = [req.parse_operation(o) for o in operations]
        ops = [op if op.client_metadata else req.with_client_metadata(op, metadata) for op in ops]
        if dry_run:
            return self.service.dry_run(ops, idempotency_key=idempotency_key)
        return self.service.execute(ops, idempotency_key=idempotency_key)

    def net_settle(self, obligations: Iterable[Any], reference: str, *,
                   idempotency_key: str | None = None) -> list[Transaction]:
        """Net agent-to-agent obligations (``{"from", "to", "amount"}``) into the fewest transfers
        (``domain.netting.net_settle``) and record them as one atomic batch: all, or none.

        The n-th transfer's reference is ``<reference>-<n>`` (1-based, in the netted order).
        """
        netted = plan_net_settlement(obligations)
        check_reference(reference)
        if not netted:
            return []
        return self.service.execute(
            [req.transfer(o.from_agent, o.to_agent, to_decimal(o.amount_micros), f"{reference}-{n}")
             for n, o in enumerate(netted, 1)], idempotency_key=idempotency_key)

    def sweep_expired_holds(self, *, now: datetime | None = None) -> list[Transaction]:
        return self.service.sweep_expired_holds(now=now)

    # --- reads ---------------------------------------------------------------------------

    def _as_of_seq(self, conn: Any, as_of: datetime | int | str | None) -> int | None:
        if as_of is None:
            return None
        if isinstance(as_of, bool):
            raise InvalidArgument("as_of must be a time or a journal sequence", field="as_of")
        if isinstance(as_of, int):
            return check_seq(as_of, field="as_of")
        return store.seq_at(conn, req.parse_time(as_of, field="as_of"))

    def resolve_as_of(self, as_of: datetime | int | str | None) -> int:
        """The journal sequence a report "as of" a time or sequence means (the head for None)."""
        if as_of is None:
            return self.head()[0]
        seq = self.service.read(lambda conn: self._as_of_seq(conn, as_of))
        return min(seq, self.head()[0]) if seq is not None else self.head()[0]

    def get_balance(self, agent: str, *, as_of: datetime | int | str | None = None) -> Balance:
        address = normalize_address(agent)
        if as_of is None:
            state, updated_at, seq = self.service.read(
                lambda conn: store.balance_snapshot(conn, address), single_statement=True
            )
            return self._balance(address, state, updated_at, seq)

        def read(conn: Any) -> Balance:
            seq = self._as_of_seq(conn, as_of)
            assert seq is not None
            state, updated_at = store.agent_state_at(conn, address, seq)
            return self._balance(address, state, updated_at, seq)

        return self.service.read(read)

    @staticmethod
    def _balance(address: str, state: Any, updated_at: datetime | None, seq: int) -> Balance:
        return Balance.of(state, updated_at, seq)

    def get_credit_info(self, agent: str) -> tuple[Decimal, Decimal]:
        balance = self.get_balance(agent)
        return balance.credit_limit, balance.credit_used

    def can_spend(self, agent: str, amount: Any) -> bool:
        wanted = parse_amount(amount)
        address = normalize_address(agent)
        state = self.service.read(lambda c: store.read_agents(c, [address])[address])
        return state.spendable_micros >= wanted

    def get_history(self, agent: str, limit: int = DEFAULT_HISTORY_LIMIT, *,
                    before_seq: int | None = None) -> list[Entry]:
        """The agent's transactions, newest first (``before_seq`` pages further back).

        A ``limit`` of 0 or less means the original's default of 50. Each entry's amount is
        the agent's own movement (``Transaction.movement_micros``).
        """
        address = normalize_address(agent)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit > MAX_HISTORY_LIMIT:
            raise InvalidArgument(f"limit must be an integer up to {MAX_HISTORY_LIMIT}", field="limit")
        if limit <= 0:
            limit = DEFAULT_HISTORY_LIMIT
        if before_seq is not None:
            check_seq(before_seq, field="before_seq")
        txs = self.service.read(lambda c: store.agent_history(c, address, limit=limit, before_seq=before_seq))
        return [
            Entry(
                id=t.id, seq=t.seq, agent_addr=address, type=t.kind.value, amount=to_decimal(t.movement_micros(address)),
                tx_hash=t.tx_hash, reference=t.reference, description=t.memo, created_at=t.occurred_at,
                counterparty=t.counterparty if t.agent == address else t.agent,
            )
            for t in txs
        ]

    def has_deposit(self, tx_hash: str) -> bool:
        return self.service.read(lambda c: store.has_deposit(c, req._hash(tx_hash)))

    def get_account_balance(self, name: str, *, as_of: datetime | int | str | None = None) -> Decimal:
        """One account's balance with beancount's sign (liabilities negative)."""
        account = acct.parse_account(name).name
        return self.service.read(
            lambda c: to_decimal(store.account_balance(c, account, as_of_seq=self._as_of_seq(c, as_of)))
        )

    def rollup(self, prefix: str, *, as_of: datetime | int | str | None = None) -> dict[str, Decimal]:
        """Every account under ``prefix`` (``Agent:<addr>``, ``Platform``, …), beancount-signed."""
        normalized = acct.normalize_prefix(prefix)
        sums = self.service.read(
            lambda c: store.balances_by_prefix(c, normalized, as_of_seq=self._as_of_seq(c, as_of))
        )
        return {name: to_decimal(v) for name, v in sums.items()}

    def get_transaction(self, transaction_id: str) -> Transaction:
        found = self.service.read(lambda c: store.transaction_by_id(c, transaction_id))
        if found is None:
            raise NotFound(f"no transaction {transaction_id!r}", transaction_id=transaction_id)
        return found

    def find_transactions(self, *, agent: str | None = None, kind: str | None = None, reference: str | None = None,
                          tx_hash: str | None = None, from_seq: int | None = None, to_seq: int | None = None,
                          from_time: datetime | str | None = None, to_time: datetime | str | None = None,
                          min_amount: Any = None, max_amount: Any = None, meta_key: str | None = None,
                          meta_value: str | None = None, limit: int = 100,
                          cursor: int | None = None) -> TransactionPage:
        """Transactions matching every filter given, in sequence order, a page of at most ``limit``.

        ``agent``: involving it; sequence and time bounds inclusive; amounts as decimal strings;
        ``meta_key``/``meta_value``: a pair of the callers' metadata. ``cursor`` is the previous
        page's ``next_cursor`` (a journal sequence): pages neither skip nor repeat while writes go on.
        """
        where = req.transaction_filter(
            agent=agent, kind=kind, reference=reference, tx_hash=tx_hash, from_seq=from_seq, to_seq=to_seq,
            from_time=from_time, to_time=to_time, min_amount=min_amount, max_amount=max_amount,
            meta_key=meta_key, meta_value=meta_value)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise InvalidArgument(f"limit must be 1..{MAX_HISTORY_LIMIT}", field="limit")
        after = check_seq(cursor, field="cursor") if cursor is not None else 0
        found = self.service.read(lambda c: store.find_transactions(c, where, after_seq=after, limit=limit + 1))
        page = found[:limit]
        return TransactionPage(page, page[-1].seq if len(found) > limit else None)

    def transactions(self, *, after_seq: int = 0, upto_seq: int | None = None, page_size: int = 1000) -> Iterator[Transaction]:
        """Stream the journal in sequence order (exporters and reconciliation read this)."""
        check_seq(after_seq, field="after_seq")
        if upto_seq is not None:
            check_seq(upto_seq, field="upto_seq")
        return self.service.stream(after_seq=after_seq, upto_seq=upto_seq, page_size=page_size)

    def head(self) -> tuple[int, str]:
        """The last journal sequence and the hash chain's tip."""
        seq, digest, _ = self.service.read(store.head)
        return seq, digest

    def get_hold(self, agent: str, reference: str, *, escrow: bool = False) -> HoldState:
        kind = HoldKind.ESCROW if escrow else HoldKind.HOLD
        found = self.service.hold(kind, normalize_address(agent), reference)
        if found is None:
            raise NotFound(f"no {kind.value} {reference!r} for {agent}", reference=reference)
        return found

    def open_holds(self, *, agent: str | None = None, limit: int = MAX_OPEN_HOLDS) -> list[HoldState]:
        """Open holds and escrows, oldest first, at most ``limit`` (bounded: ask for fewer, not more)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_OPEN_HOLDS:
            raise InvalidArgument(f"limit must be 1..{MAX_OPEN_HOLDS}", field="limit")
        address = normalize_address(agent) if agent else None
        return self.service.read(lambda c: store.list_holds(c, agent=address, open_only=True, limit=limit))

    def set_agent_profile(self, agent: str, *, display_name: str | None = None,
                          metadata: Mapping[str, str] | None = None) -> AgentProfile:
        """Give an agent a display name and metadata (replacing the previous ones); not a journal entry."""
        profile = req.agent_profile(agent, display_name, metadata)
        at_us = store.to_us(self.service.clock())
        self.service.write(lambda c: profiles.upsert_profile(c, profile.agent_addr, profile.display_name,
                                                              profile.metadata, at_us))
        return profile

    def agent_profiles(self, agents: Iterable[str] | None = None) -> dict[str, AgentProfile]:
        """Every agent's profile (or the given agents'); agents without one are left out."""
        wanted = [normalize_address(a) for a in agents] if agents is not None else None
        rows = self.service.read(lambda c: profiles.read_profiles(c, wanted))
        return {a: AgentProfile(a, name, meta) for a, (name, meta) in rows.items()}

    def agent_profile(self, agent: str) -> AgentProfile:
        address = normalize_address(agent)
        return self.agent_profiles([address]).get(address) or AgentProfile(address)

    def agents(self) -> list[str]:
        return self.service.read(store.known_agents)
