"""Random sequences of every operation against a plain in-memory model of the books.

The model below is written independently of ``agentbooks.domain``: dicts of
display-signed numbers and the rules of model.md, section 3. After every step
the ledger must agree with it exactly, and the books must keep every
invariant: each transaction sums to zero, the caches equal the sums of the
postings, ``A + P + E = totalIn − totalOut + CU`` for every agent, nothing
constrained is negative, and the hash chain re-walks from genesis.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from agentbooks import Ledger, LedgerError
from agentbooks.domain.hashing import GENESIS_HASH, recorded_hash
from agentbooks.domain.money import format_micros
from conftest import ALICE, BOB, CAROL, StepClock

AGENTS = [ALICE, BOB, CAROL]
REFS = ["r1", "r2", "r3"]
U = 1_000_000

agents = st.sampled_from(AGENTS)
refs = st.sampled_from(REFS)
amounts = st.one_of(st.integers(1, 30).map(lambda n: n * U), st.integers(1, 30 * U))
pairs = st.permutations(AGENTS).map(lambda p: (p[0], p[1]))


class ModelRefused(Exception):
    """The model refuses; ``codes`` are the error codes the ledger may give for it."""

    def __init__(self, *codes: str) -> None:
        self.codes = codes


class BooksModel:
    """Display-signed state; every change goes through ``apply`` so it can be reversed."""

    def __init__(self) -> None:
        self.v: Counter = Counter()  # (agent, field) and ("hold"/"escrow", agent, ref, field) → micros
        self.holds: set = set()  # (kind, agent, ref) ever created
        self.keys: set = set()  # natural keys used: ("deposit", hash) etc.
        self.limit_events: set = set()

    def get(self, *key) -> int:
        return self.v[key]

    def apply(self, delta: dict) -> None:
        after = Counter(self.v)
        after.update(delta)
        for key, value in after.items():
            field = key[-1]
            if value < 0 and field in ("available", "used", "remaining", "credit"):
                raise ModelRefused("negative")
            if field == "used" and value > after[(key[0], "limit")]:
                raise ModelRefused("over_limit")
            if field == "credit" and value > after[key[:-1] + ("remaining",)]:
                raise ModelRefused("negative")
        self.v = after

    # shapes
    def inflow(self, agent: str, amount: int, delta: dict) -> None:
        repay = min(amount, self.get(agent, "used") + delta.get((agent, "used"), 0))
        delta[(agent, "used")] = delta.get((agent, "used"), 0) - repay
        delta[(agent, "available")] = delta.get((agent, "available"), 0) + amount - repay

    def outflow(self, agent: str, amount: int, delta: dict) -> int:
        available, used, limit = self.get(agent, "available"), self.get(agent, "used"), self.get(agent, "limit")
        if amount > available + max(0, limit - used):
            raise ModelRefused("credit_limit_exceeded" if limit else "insufficient_balance")
        own = min(amount, available)
        delta[(agent, "available")] = delta.get((agent, "available"), 0) - own
        delta[(agent, "used")] = delta.get((agent, "used"), 0) + amount - own
        return amount - own

    def pending(self, agent: str) -> int:
        return sum(v for k, v in self.v.items() if k[0] == "hold" and k[1] == agent and k[3] == "remaining")

    def escrowed(self, agent: str) -> int:
        return sum(v for k, v in self.v.items() if k[0] == "escrow" and k[1] == agent and k[3] == "remaining")


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.ledger = Ledger.open(f"sqlite:///{Path(self.tmp.name) / 'books.db'}", clock=StepClock())
        self.model = BooksModel()
        self.counter = itertools.count()
        self.recorded: list[tuple[str, str, dict]] = []  # (tx id, kind, model delta)
        self.reversed: set[str] = set()
        self.key_of: dict[str, tuple] = {}  # tx id → the natural key it claimed (a reversal frees it)

    def teardown(self) -> None:
        self.ledger.close()
        self.tmp.cleanup()

    def attempt(self, kind: str, plan, call) -> bool:  # type: ignore[no-untyped-def]
        """Run the model's plan and the ledger's call; both must accept or refuse alike."""
        try:
            delta = plan()
        except ModelRefused as refused:
            try:
                call()
            except LedgerError as exc:
                assert exc.code in refused.codes, (kind, exc.code, refused.codes)
                event(f"{kind} refused")
                return False
            raise AssertionError(f"{kind}: ledger accepted what the model refuses ({refused.codes})")
        tx = call()
        self.model.apply(delta)
        self.recorded.append((tx.id, kind, delta))
        event(f"{kind} accepted")
        return True

    # --- rules -------------------------------------------------------------------

    @initialize(funds=st.lists(st.integers(0, 60), min_size=3, max_size=3),
                limits=st.lists(st.integers(0, 20), min_size=3, max_size=3))
    def open_the_day(self, funds, limits):
        """Agents start funded and with credit lines, so most operations can succeed."""
        for agent, units, limit in zip(AGENTS, funds, limits):
            if units:
                self.deposit(agent, units * U, replay=False)
            self.set_credit_limit(agent, limit * U)

    @rule(agent=agents, amount=amounts, replay=st.booleans())
    def deposit(self, agent, amount, replay):
        used_hashes = [k[1] for k in self.model.keys if k[0] == "deposit"]
        tx_hash = used_hashes[0] if replay and used_hashes else f"0xdep{next(self.counter)}"

        def plan():
            if ("deposit", tx_hash) in self.model.keys:
                raise ModelRefused("duplicate_deposit")
            delta = {(agent, "tin"): amount}
            self.model.inflow(agent, amount, delta)
            return delta

        if self.attempt("deposit", plan, lambda: self.ledger.deposit(agent, format_micros(amount), tx_hash)):
            self.model.keys.add(("deposit", tx_hash))
            self.key_of[self.recorded[-1][0]] = ("deposit", tx_hash)

    @rule(agent=agents, amount=amounts)
    def withdraw(self, agent, amount):
        def plan():
            if self.model.get(agent, "available") < amount:
                raise ModelRefused("insufficient_balance")
            return {(agent, "available"): -amount, (agent, "tout"): amount}

        self.attempt("withdraw", plan, lambda: self.ledger.withdraw(agent, format_micros(amount), f"0xw{next(self.counter)}"))

    @rule(agent=agents, amount=amounts)
    def spend(self, agent, amount):
        def plan():
            delta = {(agent, "tout"): amount}
            self.model.outflow(agent, amount, delta)
            return delta

        self.attempt("spend", plan, lambda: self.ledger.spend(agent, format_micros(amount), "sk-1"))

    @rule(agent=agents, amount=amounts, ref=refs)
    def hold(self, agent, amount, ref):
        def plan():
            if ("hold", agent, ref) in self.model.holds:
                raise ModelRefused("reference_in_use")
            delta: dict = {}
            gap = self.model.outflow(agent, amount, delta)
            delta[("hold", agent, ref, "remaining")] = amount
            delta[("hold", agent, ref, "credit")] = gap
            return delta

        if self.attempt("hold", plan, lambda: self.ledger.hold(agent, format_micros(amount), ref)):
            self.model.holds.add(("hold", agent, ref))

    def _pick(self, kind: str, agent: str, ref: str, amount: int, share: int) -> int:
        """Mostly a share of what the reference still holds (so it can succeed), else the raw amount."""
        remaining = self.model.get(kind, agent, ref, "remaining")
        return max(1, remaining * share // 100) if share and remaining else amount

    def _consume(self, agent, amount, ref, delta) -> None:
        if ("hold", agent, ref) not in self.model.holds:
            raise ModelRefused("unknown_hold")
        remaining = self.model.get("hold", agent, ref, "remaining")
        if amount > remaining:
            raise ModelRefused("hold_exceeded")
        credit = self.model.get("hold", agent, ref, "credit")
        delta[("hold", agent, ref, "remaining")] = -amount
        delta[("hold", agent, ref, "credit")] = -max(0, amount - (remaining - credit))  # own funds first

    @rule(agent=agents, amount=amounts, ref=refs, share=st.integers(0, 100))
    def confirm_hold(self, agent, amount, ref, share):
        amount = self._pick("hold", agent, ref, amount, share)
        def plan():
            delta = {(agent, "tout"): amount}
            self._consume(agent, amount, ref, delta)
            return delta

        self.attempt("confirm_hold", plan, lambda: self.ledger.confirm_hold(agent, format_micros(amount), ref))

    @rule(agent=agents, amount=amounts, ref=refs, share=st.integers(0, 100))
    def release_hold(self, agent, amount, ref, share):
        amount = self._pick("hold", agent, ref, amount, share)
        def plan():
            if ("hold", agent, ref) not in self.model.holds:
                raise ModelRefused("unknown_hold")
            if amount > self.model.get("hold", agent, ref, "remaining"):
                raise ModelRefused("hold_exceeded")
            credit_in_ref = min(amount, self.model.get("hold", agent, ref, "credit"))
            repay = min(credit_in_ref, self.model.get(agent, "used"))
            return {("hold", agent, ref, "remaining"): -amount, ("hold", agent, ref, "credit"): -credit_in_ref,
                    (agent, "used"): -repay, (agent, "available"): amount - repay}

        self.attempt("release_hold", plan, lambda: self.ledger.release_hold(agent, format_micros(amount), ref))

    @rule(pair=pairs, amount=amounts, fee_share=st.integers(0, 100), ref=refs, share=st.integers(0, 100))
    def settle_hold(self, pair, amount, fee_share, ref, share):
        buyer, seller = pair
        amount = self._pick("hold", buyer, ref, amount, share)
        fee = amount * fee_share // 100

        def plan():
            delta = {(buyer, "tout"): amount, (seller, "tin"): amount - fee}
            self._consume(buyer, amount, ref, delta)
            if amount - fee:
                self.model.inflow(seller, amount - fee, delta)
            return delta

        self.attempt("settle_hold", plan, lambda: self.ledger.settle_hold(
            buyer, seller, format_micros(amount), ref, fee=format_micros(fee)))

    @rule(agent=agents, amount=amounts, ref=refs)
    def escrow_lock(self, agent, amount, ref):
        def plan():
            if ("escrow", agent, ref) in self.model.holds:
                raise ModelRefused("reference_in_use")
            if self.model.get(agent, "available") < amount:
                raise ModelRefused("insufficient_balance")
            return {(agent, "available"): -amount, ("escrow", agent, ref, "remaining"): amount}

        if self.attempt("escrow_lock", plan, lambda: self.ledger.escrow_lock(agent, format_micros(amount), ref)):
            self.model.holds.add(("escrow", agent, ref))

    def _escrow_out(self, buyer, ref, total) -> dict:
        if ("escrow", buyer, ref) not in self.model.holds:
            raise ModelRefused("unknown_escrow")
        if total > self.model.get("escrow", buyer, ref, "remaining"):
            raise ModelRefused("escrow_exceeded")
        return {("escrow", buyer, ref, "remaining"): -total}

    @rule(pair=pairs, amount=amounts, ref=refs, share=st.integers(0, 100))
    def release_escrow(self, pair, amount, ref, share):
        buyer, seller = pair
        amount = self._pick("escrow", buyer, ref, amount, share)

        def plan():
            delta = self._escrow_out(buyer, ref, amount)
            delta.update({(buyer, "tout"): amount, (seller, "tin"): amount})
            self.model.inflow(seller, amount, delta)
            return delta

        self.attempt("release_escrow", plan, lambda: self.ledger.release_escrow(buyer, seller, format_micros(amount), ref))

    @rule(agent=agents, amount=amounts, ref=refs, share=st.integers(0, 100))
    def refund_escrow(self, agent, amount, ref, share):
        amount = self._pick("escrow", agent, ref, amount, share)
        def plan():
            delta = self._escrow_out(agent, ref, amount)
            self.model.inflow(agent, amount, delta)
            return delta

        self.attempt("refund_escrow", plan, lambda: self.ledger.refund_escrow(agent, format_micros(amount), ref))

    @rule(pair=pairs, share=st.integers(0, 100), ref=refs)
    def settle_escrow(self, pair, share, ref):
        buyer, seller = pair
        remaining = self.model.get("escrow", buyer, ref, "remaining")
        to_seller = remaining * share // 100

        def plan():
            delta = self._escrow_out(buyer, ref, remaining)
            if remaining == 0:
                raise ModelRefused("escrow_exceeded")  # nothing left to settle
            delta.update({(buyer, "tout"): to_seller, (seller, "tin"): to_seller})
            if to_seller:
                self.model.inflow(seller, to_seller, delta)
            if remaining - to_seller:
                self.model.inflow(buyer, remaining - to_seller, delta)
            return delta

        self.attempt("settle_escrow", plan, lambda: self.ledger.settle_escrow(buyer, seller, format_micros(to_seller), ref))

    @rule(agent=agents, amount=amounts, ref=refs)
    def refund(self, agent, amount, ref):
        def plan():
            if ("refund", agent, ref) in self.model.keys:
                raise ModelRefused("duplicate_refund")
            if amount > self.model.get(agent, "tout"):
                raise ModelRefused("refund_exceeds_paid")
            delta = {(agent, "tout"): -amount}
            self.model.inflow(agent, amount, delta)
            return delta

        if self.attempt("refund", plan, lambda: self.ledger.refund(agent, format_micros(amount), ref)):
            self.model.keys.add(("refund", agent, ref))
            self.key_of[self.recorded[-1][0]] = ("refund", agent, ref)

    @rule(agent=agents, limit=st.integers(0, 40).map(lambda n: n * U))
    def set_credit_limit(self, agent, limit):
        def plan():
            if limit < self.model.get(agent, "used"):
                raise ModelRefused("credit_limit_below_used")
            return {(agent, "limit"): limit - self.model.get(agent, "limit")}

        self.attempt("set_credit_limit", plan, lambda: self.ledger.set_credit_limit(agent, format_micros(limit)))

    @rule(agent=agents, amount=amounts)
    def use_credit(self, agent, amount):
        def plan():
            if self.model.get(agent, "used") + amount > self.model.get(agent, "limit"):
                raise ModelRefused("credit_limit_exceeded")
            return {(agent, "used"): amount, (agent, "available"): amount}

        self.attempt("use_credit", plan, lambda: self.ledger.use_credit(agent, format_micros(amount)))

    @rule(agent=agents, amount=amounts)
    def repay_credit(self, agent, amount):
        def plan():
            used = self.model.get(agent, "used")
            if used == 0:
                raise ModelRefused("no_outstanding_credit")
            repay = min(amount, used)
            if self.model.get(agent, "available") < repay:
                raise ModelRefused("insufficient_balance")
            return {(agent, "used"): -repay, (agent, "available"): -repay}

        self.attempt("repay_credit", plan, lambda: self.ledger.repay_credit(agent, format_micros(amount)))

    @rule(pair=pairs, amount=amounts)
    def transfer(self, pair, amount):
        sender, receiver = pair
        reference = f"inv-{next(self.counter)}"

        def plan():
            delta = {(sender, "tout"): amount, (receiver, "tin"): amount}
            self.model.outflow(sender, amount, delta)
            self.model.inflow(receiver, amount, delta)
            return delta

        self.attempt("transfer", plan, lambda: self.ledger.transfer(sender, receiver, format_micros(amount), reference))

    @rule(agent=agents, amount=amounts)
    def write_off_credit(self, agent, amount):
        def plan():
            used = self.model.get(agent, "used")
            if used == 0:
                raise ModelRefused("no_outstanding_credit")
            if amount > used:
                raise ModelRefused("invalid_argument")
            return {(agent, "used"): -amount, (agent, "tin"): amount}  # forgiven debt counts as an inflow

        self.attempt("write_off_credit", plan,
                     lambda: self.ledger.write_off_credit(agent, format_micros(amount), "will not repay"))

    @rule(amount=amounts, adjust=st.booleans())
    def platform_entry(self, amount, adjust):
        """Capital and adjusting entries move no agent's money: the model does not change."""
        reference = f"cap-{next(self.counter)}"
        if adjust:
            call = lambda: self.ledger.adjust(  # noqa: E731
                [{"account": "Equity:Capital", "debit": format_micros(amount)},
                 {"account": "Income:Fees", "credit": format_micros(amount)}], "reclassify")
        else:
            call = lambda: self.ledger.contribute_capital(format_micros(amount), reference)  # noqa: E731
        self.attempt("adjust" if adjust else "contribute_capital", dict, call)

    @rule(pick=st.integers(0, 10_000))
    def reverse(self, pick):
        if not self.recorded:
            return
        tx_id, kind, delta = self.recorded[pick % len(self.recorded)]

        def plan():
            if kind in ("set_credit_limit", "reversal", "close_period"):
                raise ModelRefused("not_reversible")
            if tx_id in self.reversed:
                raise ModelRefused("already_reversed")
            negated = {k: -v for k, v in delta.items()}
            probe = BooksModel()
            probe.v = Counter(self.model.v)
            try:
                probe.apply(negated)
            except ModelRefused:
                # The ledger names which rule the reversal would break; the model only knows one would.
                raise ModelRefused("insufficient_balance", "credit_limit_exceeded", "hold_exceeded",
                                   "escrow_exceeded") from None
            return negated

        if self.attempt("reversal", plan, lambda: self.ledger.reverse(tx_id, "state machine")):
            self.reversed.add(tx_id)
            self.model.keys.discard(self.key_of.pop(tx_id, None))  # a reversed deposit may come again

    # --- invariants --------------------------------------------------------------

    @invariant()
    def books_agree_with_the_model(self):
        head_seq, _ = self.ledger.head()
        for agent in AGENTS:
            cached = self.ledger.get_balance(agent)
            summed = self.ledger.get_balance(agent, as_of=head_seq)  # recomputed from the postings
            assert (cached.available, cached.pending, cached.escrowed, cached.credit_used, cached.credit_limit,
                    cached.total_in, cached.total_out) == (
                summed.available, summed.pending, summed.escrowed, summed.credit_used, summed.credit_limit,
                summed.total_in, summed.total_out), "balance cache differs from the sum of postings"
            m = self.model
            expected = (m.get(agent, "available"), m.pending(agent), m.escrowed(agent), m.get(agent, "used"),
                        m.get(agent, "limit"), m.get(agent, "tin"), m.get(agent, "tout"))
            actual = tuple(int(x.scaleb(6)) for x in (cached.available, cached.pending, cached.escrowed,
                                                     cached.credit_used, cached.credit_limit, cached.total_in,
                                                     cached.total_out))
            assert actual == expected, (agent, actual, expected)
            assert min(actual[:4]) >= 0 and cached.credit_used <= cached.credit_limit
            assert cached.available + cached.pending + cached.escrowed == (
                cached.total_in - cached.total_out + cached.credit_used)

    @invariant()
    def journal_balances_and_chains(self):
        prev = GENESIS_HASH
        sums: dict[str, int] = defaultdict(int)
        for tx in self.ledger.transactions():
            assert sum(p.amount_micros for p in tx.postings) == 0
            assert tx.prev_hash == prev
            recomputed = recorded_hash(tx)
            assert recomputed == tx.hash, f"hash chain broken at seq {tx.seq}"
            prev = tx.hash
            for p in tx.postings:
                sums[p.account] += p.amount_micros
        cached = {name: int(v.scaleb(6)) for name, v in self.ledger.rollup("").items()}
        assert {k: v for k, v in cached.items() if v} == {k: v for k, v in sums.items() if v}
        assert sum(cached.values()) == 0


LedgerMachine.TestCase.settings = settings(
    # Deeper runs: AGENTBOOKS_STATE_MACHINE_EXAMPLES=1000 python -m pytest tests/test_state_machine.py
    max_examples=int(os.environ.get("AGENTBOOKS_STATE_MACHINE_EXAMPLES", "60")), stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_ledger_state_machine = LedgerMachine.TestCase
