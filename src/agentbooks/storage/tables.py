"""The database schema (SQLAlchemy Core). Alembic migrations create it; a test proves they agree.

Money columns are BIGINT micro-units; times are BIGINT microseconds since the
Unix epoch (UTC), so both engines store and compare them exactly.

- ``journal``/``postings``/``agent_entries`` are the append-only books.
- ``balances``, ``agents`` and ``holds`` are caches of sums over those books,
  updated in the same database transaction and checked by ``verify``.
  ``balances`` is striped for the platform's hot accounts so concurrent
  writers do not queue on one ``Platform:Treasury`` row.
- ``journal_head`` is the single row that orders commits: it hands out
  gap-free sequence numbers and carries the hash chain's tip.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

# Platform accounts (treasury, fees, equity) have this many balance rows, so
# writers for different agents update different rows. Seeded by migration 0001.
PLATFORM_STRIPES = 16

ADDRESS = String(42)
ACCOUNT = String(80)
REFERENCE = String(128)
HASH = String(64)

journal = Table(
    "journal",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("occurred_at_us", BigInteger, nullable=False, index=True),
    Column("agent", ADDRESS, nullable=True),
    Column("counterparty", ADDRESS, nullable=True),
    Column("amount_micros", BigInteger, nullable=False),
    Column("reference", REFERENCE, nullable=True),
    Column("tx_hash", REFERENCE, nullable=True, index=True),
    Column("memo", Text, nullable=True),
    Column("credit_limit_micros", BigInteger, nullable=True),
    Column("reverses_seq", BigInteger, nullable=True, unique=True),
    Column("metadata_json", Text, nullable=False),
    Column("prev_hash", HASH, nullable=False),
    Column("hash", HASH, nullable=False),
)
Index("ix_journal_agent_kind_seq", journal.c.agent, journal.c.kind, journal.c.seq)

postings = Table(
    "postings",
    metadata,
    Column("seq", BigInteger, nullable=False),
    Column("idx", SmallInteger, nullable=False),
    Column("account", ACCOUNT, nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("reference", REFERENCE, nullable=True),
    PrimaryKeyConstraint("seq", "idx"),
)
Index("ix_postings_account_seq", postings.c.account, postings.c.seq)

agent_entries = Table(
    "agent_entries",
    metadata,
    Column("agent", ADDRESS, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("total_in_delta_micros", BigInteger, nullable=False),
    Column("total_out_delta_micros", BigInteger, nullable=False),
    PrimaryKeyConstraint("agent", "seq"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("name", ACCOUNT, primary_key=True),
    Column("account_type", String(16), nullable=False),
    Column("agent", ADDRESS, nullable=True),
)

balances = Table(
    "balances",
    metadata,
    Column("account", ACCOUNT, nullable=False),
    Column("stripe", SmallInteger, nullable=False),
    Column("balance_micros", BigInteger, nullable=False),
    PrimaryKeyConstraint("account", "stripe"),
)

agents = Table(
    "agents",
    metadata,
    Column("address", ADDRESS, primary_key=True),
    Column("total_in_micros", BigInteger, nullable=False),
    Column("total_out_micros", BigInteger, nullable=False),
    Column("credit_limit_micros", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=True),
    Column("updated_at_us", BigInteger, nullable=True),
)

holds = Table(
    "holds",
    metadata,
    Column("kind", String(8), nullable=False),
    Column("agent", ADDRESS, nullable=False),
    Column("reference", REFERENCE, nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("remaining_micros", BigInteger, nullable=False),
    Column("credit_micros", BigInteger, nullable=False),
    Column("confirmed_micros", BigInteger, nullable=False),
    Column("released_micros", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=True, index=True),
    Column("created_seq", BigInteger, nullable=False),
    Column("updated_seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("kind", "agent", "reference"),
)

unique_keys = Table(
    "unique_keys",
    metadata,
    Column("scope", String(16), nullable=False),
    Column("key", String(256), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("fingerprint", HASH, nullable=False),
    # An idempotency key whose request was refused keeps the refusal (error JSON; seqs 0): a key's
    # first answer is its answer for good. NULL for keys of recorded transactions.
    Column("refusal_json", Text, nullable=True),
    PrimaryKeyConstraint("scope", "key"),
)

journal_head = Table(
    "journal_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", HASH, nullable=False),
    Column("last_at_us", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("key_hash", HASH, nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("agent", ADDRESS, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("revoked_at_us", BigInteger, nullable=True),
)

# --- events out (the publisher's position, balance monitors, their webhook deliveries) ---
# The journal itself is the outbox: the publisher reads it by sequence and keeps here how far it
# has published, so it resumes after a crash without losing or reordering anything.

publisher_positions = Table(
    "publisher_positions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

balance_monitors = Table(
    "balance_monitors",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("target_kind", String(8), nullable=False),
    Column("target", ACCOUNT, nullable=False),
    Column("metric", String(24), nullable=False),
    Column("comparison", String(8), nullable=False),
    Column("threshold_micros", BigInteger, nullable=False),
    Column("webhook_url", String(2048), nullable=True),
    Column("webhook_secret", String(128), nullable=True),
    Column("after_seq", BigInteger, nullable=False),  # watches transactions after this sequence
    Column("created_at_us", BigInteger, nullable=False),
)

monitor_deliveries = Table(
    "monitor_deliveries",
    metadata,
    Column("monitor_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(12), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at_us", BigInteger, nullable=False),
    Column("last_error", String(500), nullable=True),
    PrimaryKeyConstraint("monitor_id", "seq"),
)
Index("ix_monitor_deliveries_due", monitor_deliveries.c.state, monitor_deliveries.c.next_attempt_at_us)

agent_profiles = Table(
    "agent_profiles",
    metadata,
    Column("address", ADDRESS, primary_key=True),
    Column("display_name", String(120), nullable=True),
    Column("metadata_json", Text, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)
