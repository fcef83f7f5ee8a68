"""Where recorded on-chain transfers were mined (``chain_refs``); withdrawals keyed on (chain, tx hash, log index).

Revision ID: 0004_chain_refs
Revises: 0004_events
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004_chain_refs"
down_revision = "0004_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_refs",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("tx_hash", sa.String(128), nullable=False),
        sa.Column("log_index", sa.BigInteger, nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=True),
        sa.Column("block_hash", sa.String(128), nullable=True),
        sa.Column("destination", sa.String(42), nullable=True),
    )
    op.create_index("ix_chain_refs_block_seq", "chain_refs", ["block_number", "seq"])
    op.create_index("ix_chain_refs_chain_tx", "chain_refs", ["chain_id", "tx_hash", "log_index"])
    # Transfers recorded before: a deposit's chain id and log index are in its metadata (0: not said).
    journal = sa.table("journal", sa.column("seq"), sa.column("kind"), sa.column("tx_hash"),
                       sa.column("metadata_json"))
    rows = op.get_bind().execute(sa.select(journal.c.seq, journal.c.kind, journal.c.tx_hash, journal.c.metadata_json)
                                 .where(journal.c.tx_hash.is_not(None))).all()
    refs = []
    for seq, kind, tx_hash, text in rows:
        meta = json.loads(text).get("meta", {})
        refs.append({"seq": seq, "kind": kind, "chain_id": meta.get("chain_id", 0), "tx_hash": tx_hash,
                     "log_index": meta.get("log_index", 0), "block_number": None, "block_hash": None,
                     "destination": None})
    columns = ("seq", "kind", "chain_id", "tx_hash", "log_index", "block_number", "block_hash", "destination")
    for start in range(0, len(refs), 10_000):
        op.bulk_insert(sa.table("chain_refs", *(sa.column(c) for c in columns)), refs[start:start + 10_000])
    # A withdrawal's natural key was its tx hash; it is now (chain id, tx hash, log index).
    keys = _unique_keys()
    op.execute(keys.update().where(keys.c.scope == "withdraw")
               .values(key=sa.literal("0:") + keys.c.key + sa.literal(":0")))


def _unique_keys() -> sa.TableClause:
    return sa.table("unique_keys", sa.column("scope", sa.String), sa.column("key", sa.String))


def downgrade() -> None:
    keys = _unique_keys()
    op.execute(keys.update().where(keys.c.scope == "withdraw", keys.c.key.like("0:%:0"))
               .values(key=sa.func.substr(keys.c.key, 3, sa.func.length(keys.c.key) - 4)))
    op.drop_index("ix_chain_refs_chain_tx", "chain_refs")
    op.drop_index("ix_chain_refs_block_seq", "chain_refs")
    op.drop_table("chain_refs")
