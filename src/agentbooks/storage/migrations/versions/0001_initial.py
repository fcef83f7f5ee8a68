"""Initial schema: journal, postings, balance caches, holds, unique keys, chain head.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STRIPES = 16  # frozen here: later changes to PLATFORM_STRIPES need their own migration
PLATFORM_ACCOUNTS = {
    "Platform:Treasury": "asset",
    "Income:Fees": "income",
    "Equity:Opening": "equity",
}
GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "journal",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("agent", sa.String(42), nullable=True),
        sa.Column("counterparty", sa.String(42), nullable=True),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(128), nullable=True),
        sa.Column("tx_hash", sa.String(128), nullable=True),
        sa.Column("memo", sa.Text, nullable=True),
        sa.Column("credit_limit_micros", sa.BigInteger, nullable=True),
        sa.Column("reverses_seq", sa.BigInteger, nullable=True, unique=True),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_journal_occurred_at_us", "journal", ["occurred_at_us"])
    op.create_index("ix_journal_tx_hash", "journal", ["tx_hash"])
    op.create_index("ix_journal_agent_kind_seq", "journal", ["agent", "kind", "seq"])

    op.create_table(
        "postings",
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("idx", sa.SmallInteger, nullable=False),
        sa.Column("account", sa.String(80), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("reference", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("seq", "idx"),
    )
    op.create_index("ix_postings_account_seq", "postings", ["account", "seq"])

    op.create_table(
        "agent_entries",
        sa.Column("agent", sa.String(42), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("total_in_delta_micros", sa.BigInteger, nullable=False),
        sa.Column("total_out_delta_micros", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("agent", "seq"),
    )

    accounts = op.create_table(
        "accounts",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("account_type", sa.String(16), nullable=False),
        sa.Column("agent", sa.String(42), nullable=True),
    )
    balances = op.create_table(
        "balances",
        sa.Column("account", sa.String(80), nullable=False),
        sa.Column("stripe", sa.SmallInteger, nullable=False),
        sa.Column("balance_micros", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account", "stripe"),
    )
    op.create_table(
        "agents",
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("total_in_micros", sa.BigInteger, nullable=False),
        sa.Column("total_out_micros", sa.BigInteger, nullable=False),
        sa.Column("credit_limit_micros", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=True),
        sa.Column("updated_at_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "holds",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("agent", sa.String(42), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("remaining_micros", sa.BigInteger, nullable=False),
        sa.Column("credit_micros", sa.BigInteger, nullable=False),
        sa.Column("confirmed_micros", sa.BigInteger, nullable=False),
        sa.Column("released_micros", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=True),
        sa.Column("created_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("kind", "agent", "reference"),
    )
    op.create_index("ix_holds_expires_at_us", "holds", ["expires_at_us"])
    op.create_table(
        "unique_keys",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
    )
    head = op.create_table(
        "journal_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("last_at_us", sa.BigInteger, nullable=False),
    )

    op.bulk_insert(accounts, [{"name": n, "account_type": t, "agent": None} for n, t in PLATFORM_ACCOUNTS.items()])
    op.bulk_insert(
        balances,
        [{"account": n, "stripe": s, "balance_micros": 0} for n in PLATFORM_ACCOUNTS for s in range(STRIPES)],
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH, "last_at_us": 0}])


def downgrade() -> None:
    for name in ("journal_head", "unique_keys", "holds", "agents", "balances", "accounts",
                 "agent_entries", "postings", "journal"):
        op.drop_table(name)
