"""The platform's own books: capital, retained earnings and expense accounts; agents' display names.

Each new platform account gets its account row and its balance stripes (the
write path only updates balance rows, never inserts them). ``agent_profiles``
holds what an admin says about an agent (a display name, metadata): shown on
statements and exported as account metadata, never part of the money.

Revision ID: 0005_platform_books
Revises: 0005_chain_watch_payouts
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_platform_books"
down_revision = "0005_chain_watch_payouts"
branch_labels = None
depends_on = None

STRIPES = 16  # as 0001 seeded them
NEW_PLATFORM_ACCOUNTS = {
    "Equity:Capital": "equity",
    "Equity:Retained-Earnings": "equity",
    "Expenses:Network-Fees": "expense",
    "Expenses:Bad-Debt": "expense",
}


def upgrade() -> None:
    accounts = sa.table("accounts", sa.column("name", sa.String), sa.column("account_type", sa.String),
                        sa.column("agent", sa.String))
    balances = sa.table("balances", sa.column("account", sa.String), sa.column("stripe", sa.SmallInteger),
                        sa.column("balance_micros", sa.BigInteger))
    op.bulk_insert(accounts, [{"name": n, "account_type": t, "agent": None} for n, t in NEW_PLATFORM_ACCOUNTS.items()])
    op.bulk_insert(balances, [{"account": n, "stripe": s, "balance_micros": 0}
                              for n in NEW_PLATFORM_ACCOUNTS for s in range(STRIPES)])
    op.create_table(
        "agent_profiles",
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("display_name", sa.String(120), nullable=True),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_profiles")
    op.execute(sa.text("DELETE FROM balances WHERE account IN :names").bindparams(
        sa.bindparam("names", list(NEW_PLATFORM_ACCOUNTS), expanding=True)))
    op.execute(sa.text("DELETE FROM accounts WHERE name IN :names").bindparams(
        sa.bindparam("names", list(NEW_PLATFORM_ACCOUNTS), expanding=True)))
