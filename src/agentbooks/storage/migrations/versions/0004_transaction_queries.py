"""The transaction listing's indexes, and the callers' metadata pairs as an indexed side table.

Revision ID: 0004_transaction_queries
Revises: 0004_admin_actions
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_transaction_queries"
down_revision = "0004_admin_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_journal_kind_seq", "journal", ["kind", "seq"])
    op.create_index("ix_journal_reference_seq", "journal", ["reference", "seq"])
    op.create_index("ix_journal_amount_seq", "journal", ["amount_micros", "seq"])
    op.create_table(
        "transaction_metadata",
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("key", "value", "seq"),
    )
    op.create_index("ix_transaction_metadata_key_seq", "transaction_metadata", ["key", "seq"])


def downgrade() -> None:
    op.drop_index("ix_transaction_metadata_key_seq", "transaction_metadata")
    op.drop_table("transaction_metadata")
    for name in ("ix_journal_amount_seq", "ix_journal_reference_seq", "ix_journal_kind_seq"):
        op.drop_index(name, "journal")
