"""Engines for the two supported databases, and schema migration on open.

SQLite (WAL, synchronous=FULL) is the embedded default: every commit is
durable, and write transactions start with ``BEGIN IMMEDIATE`` so two writers
never deadlock upgrading a read lock. PostgreSQL is the production engine:
READ COMMITTED plus explicit row locks taken in one global order (see
``journal_store``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from ..domain.errors import InvalidArgument

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
WRITE = "agentbooks_write"  # execution option: this connection will write
# Execution option: this connection runs one SELECT, which is one snapshot by itself. SQLite then
# skips the explicit BEGIN (and so the COMMIT): a fifth of a balance read over HTTP was those two.
SINGLE_STATEMENT = "agentbooks_single_statement"
# Pooled connections kept open: at least the API's threads (anyio's default of 40) plus the writer,
# so concurrent reads never close and reopen connections the pool had no room to keep.
POOL_SIZE = 48
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, pool_size: int = POOL_SIZE) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a helpful text
        raise InvalidArgument(f"bad database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, in_memory=parsed.database in (None, "", ":memory:"), pool_size=pool_size)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":  # plain postgresql:// means psycopg 3 here
            parsed = parsed.set(drivername="postgresql+psycopg")
        # No pre-ping round trip per checkout: the service retries a write or
        # read whose pooled connection the server had dropped.
        return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size // 2, pool_recycle=1800)
    raise InvalidArgument(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")


def _sqlite_engine(url: str, *, in_memory: bool, pool_size: int) -> Engine:
    kwargs = {"poolclass": StaticPool} if in_memory else {"pool_size": pool_size, "max_overflow": pool_size // 2}
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # A writer takes the write lock up front: a deferred transaction that
        # upgrades later can fail with SQLITE_BUSY no busy timeout can cure.
        # Straight on the driver's connection: the same statement, without SQLAlchemy's execution machinery.
        options = conn.get_execution_options()
        if options.get(SINGLE_STATEMENT):
            return  # autocommit: the statement is its own transaction (the closing rollback is a no-op)
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if options.get(WRITE) else "BEGIN")

    return engine


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe when several processes open at once."""
    with engine.connect() as probe:
        current = MigrationContext.configure(probe).get_current_revision()
    if current == head_revision():
        return
    cfg = _alembic_config()
    with engine.connect().execution_options(**{WRITE: True}) as conn:
        with conn.begin():
            if engine.dialect.name == "postgresql":
                # Serialise concurrent first opens; the lock ends with the transaction.
                conn.execute(text("SELECT pg_advisory_xact_lock(7305931)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
