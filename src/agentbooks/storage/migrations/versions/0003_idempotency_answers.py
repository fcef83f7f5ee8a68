"""An idempotency key's first answer is kept whatever it was: a refusal is stored beside successes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The refused request's error ({"error", "message", "details"} as JSON); NULL for a recorded one.
    op.add_column("unique_keys", sa.Column("refusal_json", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("unique_keys", "refusal_json")
