"""Each involved agent's state after each transaction, and the journal by (time, sequence), so a
balance at a past moment is two index steps.

Rows exist from this migration on; a balance as of a transaction recorded before it is still summed
from the postings (``journal_store.agent_state_at``).

Revision ID: 0005_agent_state_history
Revises: 0004_transaction_queries
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_agent_state_history"
down_revision = "0004_transaction_queries"
branch_labels = None
depends_on = None

_MONEY = ("available_micros", "pending_micros", "escrowed_micros", "credit_used_micros", "credit_limit_micros",
          "total_in_micros", "total_out_micros")


def upgrade() -> None:
    op.create_table(
        "agent_state_history",
        sa.Column("agent", sa.String(42), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        *[sa.Column(name, sa.BigInteger, nullable=False) for name in _MONEY],
        sa.PrimaryKeyConstraint("agent", "seq"),
    )
    op.create_index("ix_journal_occurred_at_seq", "journal", ["occurred_at_us", "seq"])


def downgrade() -> None:
    op.drop_index("ix_journal_occurred_at_seq", "journal")
    op.drop_table("agent_state_history")
