"""A seeded generator of realistic random books (every operation kind), for export and report tests."""

from __future__ import annotations

import random

from agentbooks import Ledger, LedgerError
from agentbooks.domain.money import format_micros

AGENTS = [f"0x{i:040x}" for i in (0xA11CE, 0xB0B, 0xCA201, 0xD0D0)]


def fill_random(ledger: Ledger, seed: int, operations: int = 150, *, platform_books: bool = False) -> int:
    """Run ``operations`` random requests; refusals are part of real traffic. Returns how many were recorded.

    ``platform_books`` mixes in the platform's own entries: capital, opening balances, network fees,
    credit write-offs, adjusting entries and (on a period boundary) a close.
    """
    rng = random.Random(seed)
    recorded: list[str] = []
    holds: list[tuple[str, str]] = []
    escrows: list[tuple[str, str]] = []
    for i in range(operations):
        a, b = rng.sample(AGENTS, 2)
        amount = f"{rng.randint(0, 40)}.{rng.randint(0, 999999):06d}"
        if amount.startswith("0.000000"):
            amount = "0.000001"
        roll = rng.random()
        try:
            if platform_books and rng.random() < 0.25:
                tx = _platform_entry(ledger, rng, i, a, amount)
                if tx is None:
                    continue
            elif roll < 0.2:
                tx = ledger.deposit(a, amount, f"0x{seed:x}d{i}", log_index=rng.randint(0, 2))
            elif roll < 0.3:
                tx = ledger.spend(a, amount, f"sk-{i % 3}")
            elif roll < 0.35:
                tx = ledger.withdraw(a, amount, f"0x{seed:x}w{i}")
            elif roll < 0.45:
                tx = ledger.hold(a, amount, f"h{i}")
                holds.append((a, f"h{i}"))
            elif roll < 0.55 and holds:
                agent, ref = rng.choice(holds)
                remaining = ledger.get_hold(agent, ref).remaining_micros
                part_text = format_micros(max(1, remaining // rng.randint(1, 3)))
                step = rng.choice(["confirm_hold", "release_hold", "settle_hold"])
                if step == "settle_hold":
                    seller = rng.choice([x for x in AGENTS if x != agent])
                    tx = ledger.settle_hold(agent, seller, part_text, ref, fee="0.01")
                else:
                    tx = getattr(ledger, step)(agent, part_text, ref)
            elif roll < 0.62:
                tx = ledger.escrow_lock(a, amount, f"e{i}")
                escrows.append((a, f"e{i}"))
            elif roll < 0.7 and escrows:
                agent, ref = rng.choice(escrows)
                seller = rng.choice([x for x in AGENTS if x != agent])
                tx = rng.choice([
                    lambda: ledger.settle_escrow(agent, seller, "0.5", ref),
                    lambda: ledger.refund_escrow(agent, "1", ref),
                    lambda: ledger.release_escrow(agent, seller, "1", ref),
                ])()
            elif roll < 0.76:
                tx = ledger.set_credit_limit(a, str(rng.randint(0, 30)))
            elif roll < 0.82:
                tx = ledger.use_credit(a, amount)
            elif roll < 0.86:
                tx = ledger.repay_credit(a, amount)
            elif roll < 0.9:
                tx = ledger.refund(a, amount, f"f{i}")
            elif roll < 0.96:
                tx = ledger.transfer(a, b, amount, f"t{i}")
            elif recorded:
                tx = ledger.reverse(rng.choice(recorded), "random correction")
            else:
                continue
        except LedgerError:
            continue
        recorded.append(tx.id)
    return len(recorded)


def _platform_entry(ledger: Ledger, rng: random.Random, i: int, agent: str, amount: str):  # type: ignore[no-untyped-def]
    step = rng.choice(["capital", "opening", "fee", "write_off", "adjust", "close"])
    if step == "capital":
        return ledger.contribute_capital(amount, f"cap-{i}")
    if step == "opening":
        account = rng.choice(["Platform:Treasury", f"Agent:{agent}:Available"])
        return ledger.record_opening_balance(account, amount, f"open-{i}")
    if step == "fee":
        return ledger.pay_network_fee(f"0.{rng.randint(1, 99):02d}", f"0xfee{i}")
    if step == "write_off":
        used = ledger.get_balance(agent).credit_used
        return ledger.write_off_credit(agent, str(min(used, 1)), "will not repay") if used else None
    if step == "adjust":
        debit, credit = rng.sample(["Income:Fees", "Equity:Capital", "Expenses:Network-Fees", "Platform:Treasury"], 2)
        return ledger.adjust([{"account": debit, "debit": "0.25"}, {"account": credit, "credit": "0.25"}],
                             "reclassification")
    last = list(ledger.transactions(after_seq=max(0, ledger.head()[0] - 1)))
    return ledger.close_period(last[-1].occurred_at) if last else None
