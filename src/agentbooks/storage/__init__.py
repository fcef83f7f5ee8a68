"""Persistence: SQLAlchemy Core tables, engines, Alembic migrations and the journal store."""
