"""The append-only record of administrative actions that move no money (the audit trail's second half).

Revision ID: 0004_admin_actions
Revises: 0004_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_admin_actions"
down_revision = "0004_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("initiator", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(100), nullable=True),
        sa.Column("agent", sa.String(42), nullable=True),
        sa.Column("details_json", sa.Text, nullable=False),
    )
    op.create_index("ix_admin_actions_agent_time", "admin_actions", ["agent", "occurred_at_us"])


def downgrade() -> None:
    op.drop_index("ix_admin_actions_agent_time", table_name="admin_actions")
    op.drop_table("admin_actions")
