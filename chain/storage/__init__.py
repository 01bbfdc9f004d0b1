"""Durable storage (I/O): the committed state on SQLAlchemy (SQLite by default, PostgreSQL by URL)."""
