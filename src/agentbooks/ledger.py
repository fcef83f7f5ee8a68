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
from typing import Any, Callable, Iterable, Iterator, Mapping

from . import requests as req
from .requests import check_seq
from .domain import accounts as acct
from .domain.addresses import normalize_address
from .domain import operations as ops
from .domain.errors import InvalidArgument, NotFound, PeriodNotComplete
from .domain.model import AgentProfile, Balance, Entry, HoldKind, HoldState, Transaction
from .domain.money import parse_amount, to_decimal
from .domain.operations import Operation
from .service import LedgerService, utc_now
from .storage import journal_store as store
from .storage import profiles

MAX_HISTORY_LIMIT = 1000
MAX_OPEN_HOLDS = 1_000_000


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

    def _one(self, op: Operation, idempotency_key: str | None) -> Transaction:
        return self.service.execute([op], idempotency_key=idempotency_key)[0]

    # --- the seed's operations -------------------------------------------------------

    def deposit(self, agent: str, amount: Any, tx_hash: str, *, chain_id: int = 0, log_index: int = 0,
                idempotency_key: str | None = None) -> Transaction:
        return self._one(req.deposit(agent, amount, tx_hash, chain_id, log_index), idempotency_key)

    def withdraw(self, agent: str, amount: Any, tx_hash: str, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.withdraw(agent, amount, tx_hash), idempotency_key)

    def spend(self, agent: str, amount: Any, session_key_id: str, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.spend(agent, amount, session_key_id), idempotency_key)

    def hold(self, agent: str, amount: Any, reference: str, *, expires_at: datetime | str | None = None,
             allow_credit: bool = True, idempotency_key: str | None = None) -> Transaction:
        """Move funds to Pending for an in-flight transfer; ``allow_credit=False`` holds own funds only."""
        return self._one(req.hold(agent, amount, reference, expires_at, allow_credit), idempotency_key)

    def confirm_hold(self, agent: str, amount: Any, reference: str, *, tx_hash: str | None = None,
                     idempotency_key: str | None = None) -> Transaction:
        return self._one(req.confirm_hold(agent, amount, reference, tx_hash), idempotency_key)

    def release_hold(self, agent: str, amount: Any, reference: str, *, reason: str | None = None,
                     idempotency_key: str | None = None) -> Transaction:
        return self._one(req.release_hold(agent, amount, reference, reason), idempotency_key)

    def escrow_lock(self, agent: str, amount: Any, reference: str, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.escrow_lock(agent, amount, reference), idempotency_key)

    def release_escrow(self, buyer: str, seller: str, amount: Any, reference: str, *,
                       idempotency_key: str | None = None) -> Transaction:
        return self._one(req.release_escrow(buyer, seller, amount, reference), idempotency_key)

    def refund_escrow(self, agent: str, amount: Any, reference: str, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.refund_escrow(agent, amount, reference), idempotency_key)

    def refund(self, agent: str, amount: Any, reference: str, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.refund(agent, amount, reference), idempotency_key)

    def set_credit_limit(self, agent: str, limit: Any, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.set_credit_limit(agent, limit), idempotency_key)

    def use_credit(self, agent: str, amount: Any, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.use_credit(agent, amount), idempotency_key)

    def repay_credit(self, agent: str, amount: Any, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.repay_credit(agent, amount), idempotency_key)

    # --- beyond the seed ------------------------------------------------------------------

    def settle_hold(self, buyer: str, seller: str, amount: Any, reference: str, *, fee: Any = "0",
                    idempotency_key: str | None = None) -> Transaction:
        return self._one(req.settle_hold(buyer, seller, amount, reference, fee), idempotency_key)

    def settle_escrow(self, buyer: str, seller: str, seller_amount: Any, reference: str, *,
                      idempotency_key: str | None = None) -> Transaction:
        """Release ``seller_amount`` of the escrow to the seller and refund the rest to the buyer."""
        return self._one(req.settle_escrow(buyer, seller, seller_amount, reference), idempotency_key)

    def transfer(self, from_agent: str, to_agent: str, amount: Any, reference: str, *,
                 idempotency_key: str | None = None) -> Transaction:
        return self._one(req.transfer(from_agent, to_agent, amount, reference), idempotency_key)

    def reverse(self, transaction_id: str, reason: str, *, idempotency_key: str | None = None) -> Transaction:
        return self._one(req.reverse(transaction_id, reason), idempotency_key)

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
              idempotency_key: str | None = None) -> list[Transaction]:
        """Run many operations in one database transaction: all of them, or none."""
        return self.service.execute([req.parse_operation(o) for o in operations], idempotency_key=idempotency_key)

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
        return Balance(
            agent_addr=address,
            available=to_decimal(state.available_micros),
            pending=to_decimal(state.pending_micros),
            escrowed=to_decimal(state.escrowed_micros),
            credit_limit=to_decimal(state.credit_limit_micros),
            credit_used=to_decimal(state.credit_used_micros),
            total_in=to_decimal(state.total_in_micros),
            total_out=to_decimal(state.total_out_micros),
            updated_at=updated_at,
            as_of_seq=seq,
        )

    def get_credit_info(self, agent: str) -> tuple[Decimal, Decimal]:
        balance = self.get_balance(agent)
        return balance.credit_limit, balance.credit_used

    def can_spend(self, agent: str, amount: Any) -> bool:
        wanted = parse_amount(amount)
        address = normalize_address(agent)
        state = self.service.read(lambda c: store.read_agents(c, [address])[address])
        return state.spendable_micros >= wanted

    def get_history(self, agent: str, limit: int = 50, *, before_seq: int | None = None) -> list[Entry]:
        """The agent's transactions, newest first (``before_seq`` pages further back)."""
        address = normalize_address(agent)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise InvalidArgument(f"limit must be 1..{MAX_HISTORY_LIMIT}", field="limit")
        if before_seq is not None:
            check_seq(before_seq, field="before_seq")
        txs = self.service.read(lambda c: store.agent_history(c, address, limit=limit, before_seq=before_seq))
        return [
            Entry(
                id=t.id, seq=t.seq, agent_addr=address, type=t.kind.value, amount=to_decimal(t.amount_micros),
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
