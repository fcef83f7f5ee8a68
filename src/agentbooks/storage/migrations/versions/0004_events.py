"""Events out: the publisher's position in the journal, balance monitors and their webhook deliveries.

Revision ID: 0004_events
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_events"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publisher_positions",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "balance_monitors",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("target_kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(80), nullable=False),
        sa.Column("metric", sa.String(24), nullable=False),
        sa.Column("comparison", sa.String(8), nullable=False),
        sa.Column("threshold_micros", sa.BigInteger, nullable=False),
        sa.Column("webhook_url", sa.String(2048), nullable=True),
        sa.Column("webhook_secret", sa.String(128), nullable=True),
        sa.Column("after_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "monitor_deliveries",
        sa.Column("monitor_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at_us", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("monitor_id", "seq"),
    )
    op.create_index("ix_monitor_deliveries_due", "monitor_deliveries", ["state", "next_attempt_at_us"])


def downgrade() -> None:
    op.drop_index("ix_monitor_deliveries_due", "monitor_deliveries")
    op.drop_table("monitor_deliveries")
    op.drop_table("balance_monitors")
    op.drop_table("publisher_positions")
