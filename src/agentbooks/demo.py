"""A scripted, realistic day of agent activity through every ledger operation.

The clock is scripted too, so the same script always produces the same
journal, hashes included: the demo's exports and reports are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .context import calling
from .domain.errors import LedgerError
from .ledger import Ledger

DEMO_START = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)

AGENTS = {
    "research-bot": "0x5aeda56215b167893e80b4fe645ba6d5bab767de",
    "travel-agent": "0x6813eb9362372eef6200f3b1dbc3f819671cba69",
    "data-vendor": "0x1eff47bc3a10a45d4b230b5d10e37751fe6aa718",
    "gpu-broker": "0xe1ab8145f7e55dc933d51a18c793f901a3a0b276",
    "translator": "0x2b5ad5c4795c026514f8317c7a215e218dccd6cf",
}


@dataclass
class ScriptedClock:
    """Advances a fixed step on every call: one journal transaction, one step."""

    now: datetime = DEMO_START
    step: timedelta = timedelta(minutes=7, seconds=13)
    calls: int = field(default=0)

    def __call__(self) -> datetime:
        self.calls += 1
        self.now += self.step
        return self.now


def run_demo_day(ledger: Ledger) -> list[str]:
    """Run the script; return a log line per step (refusals included, as in real traffic)."""
    a = AGENTS
    log: list[str] = []

    def step(label: str, call, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        try:
            with calling("demo", f"demo-{len(log) + 1:03d}"):  # deterministic: the samples stay reproducible
                tx = call(*args, **kwargs)
            log.append(f"#{tx.seq:<3} {label}")
        except LedgerError as exc:
            log.append(f"refused {label}: {exc.code}")

    # The platform's owners fund the treasury (the capital behind credit lines); agents get names.
    step("owners contribute 500 of capital", ledger.contribute_capital, "500", "seed-round-1", memo="founders")
    for label, address in a.items():
        ledger.set_agent_profile(address, display_name=label, metadata={"plan": "standard"})

    # Morning: agents fund their accounts on chain.
    step("research-bot deposits 250", ledger.deposit, a["research-bot"], "250.00", "0x" + "a1" * 32)
    step("travel-agent deposits 1200", ledger.deposit, a["travel-agent"], "1200", "0x" + "a2" * 32)
    step("data-vendor deposits 40", ledger.deposit, a["data-vendor"], "40.000000", "0x" + "a3" * 32)
    step("gpu-broker deposits 500 (two transfers in one tx)", ledger.deposit, a["gpu-broker"], "300", "0x" + "a4" * 32, log_index=0)
    step("gpu-broker second log in the same tx", ledger.deposit, a["gpu-broker"], "200", "0x" + "a4" * 32, log_index=1)
    step("replayed webhook for research-bot's deposit", ledger.deposit, a["research-bot"], "250.00", "0x" + "a1" * 32)

    # Credit lines for trusted agents.
    step("research-bot gets a 100 credit line", ledger.set_credit_limit, a["research-bot"], "100")
    step("translator gets a 50 credit line", ledger.set_credit_limit, a["translator"], "50")

    # Session-key spending through the day.
    for i, amount in enumerate(["0.42", "1.337", "12.5", "0.000001"]):
        step(f"research-bot spends {amount} via session key", ledger.spend, a["research-bot"], amount, f"sk-research-{i % 2}")
    step("translator spends 20 on credit", ledger.spend, a["translator"], "20", "sk-translator-0")

    # Two-phase transfers: hold, then confirm or release.
    step("travel-agent holds 300 for a flight booking", ledger.hold, a["travel-agent"], "300", "booking-7781")
    step("travel-agent's booking confirms 280 on chain", ledger.confirm_hold, a["travel-agent"], "280", "booking-7781", tx_hash="0x" + "b1" * 32)
    step("travel-agent's booking releases the 20 change", ledger.release_hold, a["travel-agent"], "20", "booking-7781")
    step("research-bot holds 300 (250-ish own + credit)", ledger.hold, a["research-bot"], "300", "api-batch-42")
    step("research-bot's transfer fails: release 300", ledger.release_hold, a["research-bot"], "300", "api-batch-42", reason="rpc timeout")
    step("gpu-broker holds 120 for a compute job", ledger.hold, a["gpu-broker"], "120", "job-99",
         expires_at=DEMO_START + timedelta(hours=4))

    # Escrow for buyer protection.
    step("travel-agent locks 150 in escrow for data", ledger.escrow_lock, a["travel-agent"], "150", "order-501")
    step("data delivered: release 150 to data-vendor", ledger.release_escrow, a["travel-agent"], a["data-vendor"], "150", "order-501")
    step("gpu-broker locks 80 in escrow for translation", ledger.escrow_lock, a["gpu-broker"], "80", "order-502")
    step("partial delivery: settle 60 to translator, refund 20", ledger.settle_escrow, a["gpu-broker"], a["translator"], "60", "order-502")
    step("research-bot locks 30 in escrow", ledger.escrow_lock, a["research-bot"], "30", "order-503")
    step("dispute won: refund research-bot's escrow", ledger.refund_escrow, a["research-bot"], "30", "order-503")

    # Marketplace settlement with a platform fee; internal transfer.
    step("travel-agent holds 100 for a marketplace order", ledger.hold, a["travel-agent"], "100", "mkt-9001")
    step("settle 100 to gpu-broker, 2.5 platform fee", ledger.settle_hold, a["travel-agent"], a["gpu-broker"], "100", "mkt-9001", fee="2.5")
    step("data-vendor pays translator 15", ledger.transfer, a["data-vendor"], a["translator"], "15", "inv-2026-11-24-1")

    # Credit: draw, repay; a refund of a failed spend.
    step("research-bot draws 25 of credit", ledger.use_credit, a["research-bot"], "25")
    step("research-bot repays 10 of credit", ledger.repay_credit, a["research-bot"], "10")
    step("refund research-bot's failed 12.5 spend", ledger.refund, a["research-bot"], "12.5", "sk-research-0:failed-1")
    step("refund again (duplicate, refused)", ledger.refund, a["research-bot"], "12.5", "sk-research-0:failed-1")

    # Mistakes are corrected by new transactions, never edits.
    with calling("demo", "demo-mistake"):
        mistaken = ledger.deposit(a["data-vendor"], "5", "0x" + "c1" * 32)
    log.append(f"#{mistaken.seq:<3} data-vendor deposit credited by mistake")
    step("reverse the mistaken deposit", ledger.reverse, mistaken.id, "credited to the wrong agent")
    step("over-limit spend (refused)", ledger.spend, a["translator"], "500", "sk-translator-0")

    # Evening: withdrawals and an expired hold swept.
    step("data-vendor withdraws 100 on chain", ledger.withdraw, a["data-vendor"], "100", "0x" + "d1" * 32)
    step("the platform pays the withdrawal's network fee", ledger.pay_network_fee, "0.021", "0x" + "d1" * 32,
         memo="paymaster")
    step("translator withdraws too much (refused)", ledger.withdraw, a["translator"], "1000", "0x" + "d2" * 32)
    for tx in ledger.sweep_expired_holds():
        log.append(f"#{tx.seq:<3} expired hold {tx.reference} released")
    return log
