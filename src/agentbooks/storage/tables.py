"""The database schema (SQLAlchemy Core). Alembic migrations create it; a test proves they agree.

Money columns are BIGINT micro-units; times are BIGINT microseconds since the
Unix epoch (UTC), so both engines store and compare them exactly.

- ``journal``/``postings``/``agent_entries`` are the append-only books;
  ``transaction_metadata`` indexes the callers' own metadata of the journal rows.
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
    UniqueConstraint,
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
# The transaction listing's filters (``journal_store.find_transactions``), each in sequence order.
Index("ix_journal_kind_seq", journal.c.kind, journal.c.seq)
Index("ix_journal_reference_seq", journal.c.reference, journal.c.seq)
Index("ix_journal_amount_seq", journal.c.amount_micros, journal.c.seq)
# A moment's journal sequence (``journal_store.seq_at``): the last row at or before it, one index step.
Index("ix_journal_occurred_at_seq", journal.c.occurred_at_us, journal.c.seq)

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

# The callers' own metadata pairs (the journal's ``metadata.client``), one row each, so the listing finds
# a key/value in an index; written in the same statement as the journal rows they derive from.
transaction_metadata = Table(
    "transaction_metadata",
    metadata,
    Column("seq", BigInteger, nullable=False),
    Column("key", String(64), nullable=False),
    Column("value", String(256), nullable=False),
    PrimaryKeyConstraint("key", "value", "seq"),
)
Index("ix_transaction_metadata_key_seq", transaction_metadata.c.key, transaction_metadata.c.seq)

# Each involved agent's whole state after each transaction (display signs, as ``AgentState``), written
# with the transaction: a balance as of a past sequence is one index step, whatever the history's length.
agent_state_history = Table(
    "agent_state_history",
    metadata,
    Column("agent", ADDRESS, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("available_micros", BigInteger, nullable=False),
    Column("pending_micros", BigInteger, nullable=False),
    Column("escrowed_micros", BigInteger, nullable=False),
    Column("credit_used_micros", BigInteger, nullable=False),
    Column("credit_limit_micros", BigInteger, nullable=False),
    Column("total_in_micros", BigInteger, nullable=False),
    Column("total_out_micros", BigInteger, nullable=False),
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

# Where each on-chain transfer the journal records was mined: one row per deposit, withdrawal or
# confirmation that names one, written with its journal row, so reconciliation reads a block window
# by index instead of the whole journal. Rows without a block number are placed by journal time.
chain_refs = Table(
    "chain_refs",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("chain_id", BigInteger, nullable=False),
    Column("tx_hash", REFERENCE, nullable=False),
    Column("log_index", BigInteger, nullable=False),
    Column("block_number", BigInteger, nullable=True),
    Column("block_hash", REFERENCE, nullable=True),
    Column("destination", ADDRESS, nullable=True),
)
Index("ix_chain_refs_block_seq", chain_refs.c.block_number, chain_refs.c.seq)
Index("ix_chain_refs_tx_hash", chain_refs.c.tx_hash)

# Recorded reconciliation runs (``reconcile --record``): what was compared, over which window, and
# what came out, so the next run can say what changed and an auditor what was reconciled when.
reconcile_runs = Table(
    "reconcile_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("inputs_digest", HASH, nullable=False),
    Column("window_json", Text, nullable=False),
    Column("result_json", Text, nullable=False),
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
# Administrative actions that move no money (API keys issued and revoked, credit limits set,
# reversals requested, reconciliation and verification runs): append-only, never updated.
admin_actions = Table(
    "admin_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at_us", BigInteger, nullable=False),
    Column("action", String(32), nullable=False),
    Column("initiator", String(128), nullable=False),
    Column("request_id", String(100), nullable=True),
    Column("agent", ADDRESS, nullable=True),
    Column("details_json", Text, nullable=False),
)
Index("ix_admin_actions_agent_time", admin_actions.c.agent, admin_actions.c.occurred_at_us)

# --- on chain (issue 15): the deposit watcher's checkpoint and credits, the payout executor's records ---

CHAIN_HASH = String(66)  # 0x + 64 hex digits
WATCHER = String(160)  # "<chain id>:<token address>"

# One row per watcher: the last block it scanned and that block's hash. Moved by the watcher's page
# write in the same transaction as the deposits it credits (``driver_sql``'s chain_checkpoint_moves:
# a compare-and-set on the previous block, so two watchers never both move it from the same place).
chain_checkpoints = Table(
    "chain_checkpoints",
    metadata,
    Column("watcher", WATCHER, primary_key=True),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", CHAIN_HASH, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

# Append-only: every log the watcher credited, with the block it was in, so a later run can see
# that block leave the canonical chain. A log re-included in another block after a reorg is a new row.
chain_credits = Table(
    "chain_credits",
    metadata,
    Column("watcher", WATCHER, nullable=False),
    Column("tx_hash", CHAIN_HASH, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", CHAIN_HASH, nullable=False),
    PrimaryKeyConstraint("watcher", "tx_hash", "log_index", "block_hash"),
)
Index("ix_chain_credits_watcher_block", chain_credits.c.watcher, chain_credits.c.block_number)

# A payout's life: requested -> held -> signed (nonce, tx hash and the signed bytes recorded before
# the broadcast) -> submitted -> confirmed, or -> failed -> released; a refused hold: refused.
# client_ref is the agent's own.
payouts = Table(
    "payouts",
    metadata,
    Column("agent", ADDRESS, nullable=False),
    Column("client_ref", REFERENCE, nullable=False),
    Column("destination", ADDRESS, nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("hold_reference", REFERENCE, nullable=False),
    Column("chain_id", BigInteger, nullable=True),
    Column("sender", ADDRESS, nullable=True),
    Column("nonce", BigInteger, nullable=True),
    Column("tx_hash", CHAIN_HASH, nullable=True),
    Column("raw_tx", Text, nullable=True),
    Column("log_index", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("agent", "client_ref"),
    UniqueConstraint("chain_id", "sender", "nonce", name="uq_payouts_nonce"),
)
Index("ix_payouts_state", payouts.c.state)

agent_profiles = Table(
    "agent_profiles",
    metadata,
    Column("address", ADDRESS, primary_key=True),
    Column("display_name", String(120), nullable=True),
    Column("metadata_json", Text, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)
