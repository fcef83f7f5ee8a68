"""The Alembic migrations and the SQLAlchemy tables describe the same schema, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from agentbooks.storage.engine import head_revision, make_engine, migrate
from agentbooks.storage.tables import metadata


def test_migrations_match_the_tables(any_url):
    engine = make_engine(any_url)
    migrate(engine)
    migrate(engine)  # opening twice is a no-op
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == head_revision()
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []
