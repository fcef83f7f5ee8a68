"""The HTTP API (FastAPI). ``create_app(database_url, admin_secret)`` returns the app."""

from .app import create_app

__all__ = ["create_app"]
