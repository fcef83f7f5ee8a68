"""On chain: the deposit watcher's checkpoints and credits, the payout executor's records, Agent:Suspense.

Revision ID: 0005_chain_watch_payouts
Revises: 0005_chain_refs
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_chain_watch_payouts"
down_revision = "0005_chain_refs"
branch_labels = None
depends_on = None

SUSPENSE = "Agent:Suspense"  # USDC from senders who are no known agent (a liability; model.md section 5)


def upgrade() -> None:
    op.create_table(
        "chain_checkpoints",
        sa.Column("watcher", sa.String(160), primary_key=True),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "chain_credits",
        sa.Column("watcher", sa.String(160), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.PrimaryKeyConstraint("watcher", "tx_hash", "log_index", "block_hash"),
    )
    op.create_index("ix_chain_credits_watcher_block", "chain_credits", ["watcher", "block_number"])
    op.create_table(
        "payouts",
        sa.Column("agent", sa.String(42), nullable=False),
        sa.Column("client_ref", sa.String(128), nullable=False),
        sa.Column("destination", sa.String(42), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("hold_reference", sa.String(128), nullable=False),
        sa.Column("chain_id", sa.BigInteger, nullable=True),
        sa.Column("sender", sa.String(42), nullable=True),
        sa.Column("nonce", sa.BigInteger, nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("raw_tx", sa.Text, nullable=True),
        sa.Column("log_index", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("agent", "client_ref"),
        sa.UniqueConstraint("chain_id", "sender", "nonce", name="uq_payouts_nonce"),
    )
    op.create_index("ix_payouts_state", "payouts", ["state"])
    accounts = sa.table("accounts", sa.column("name"), sa.column("account_type"), sa.column("agent"))
    balances = sa.table("balances", sa.column("account"), sa.column("stripe"), sa.column("balance_micros"))
    op.bulk_insert(accounts, [{"name": SUSPENSE, "account_type": "liability", "agent": None}])
    # Agent:... rows are never striped (write_path._AGENT_PREFIXES): one balance row.
    op.bulk_insert(balances, [{"account": SUSPENSE, "stripe": 0, "balance_micros": 0}])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM balances WHERE account = :a").bindparams(a=SUSPENSE))
    op.execute(sa.text("DELETE FROM accounts WHERE name = :a").bindparams(a=SUSPENSE))
    op.drop_table("payouts")
    op.drop_table("chain_credits")
    op.drop_table("chain_checkpoints")
