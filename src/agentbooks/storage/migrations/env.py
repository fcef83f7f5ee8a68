"""Alembic environment: runs on the connection ``agentbooks.storage.engine.migrate`` hands it."""

from __future__ import annotations

from alembic import context

from agentbooks.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # invoked from the alembic command line
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
